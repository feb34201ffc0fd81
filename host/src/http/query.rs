//! `POST /query/metrics`, `POST /query/batch` and the `/parser/*` endpoints,
//! with Heroic's request and response shapes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use heroic_query::request::Tracing;
use heroic_query::{plan, BatchRequest, Defaults, QueryMetrics};
use serde::Serialize;
use serde_json::Value;

use warp::reply::Response;

use crate::http::error::{ApiError, ApiResult};
use crate::http::response::QueryResponse;
use crate::http::stream;
use crate::node::Node;
use crate::query::admission::Retained;
use crate::query::run;
use crate::query::QueryOutcome;

/// Heroic answers a missing `X-Client-Id` with exactly this message.
const ANONYMOUS: &str = "Anonymous requests are not permitted";

/// Checks the client id rule of `/query/*`.
pub fn check_client_id(node: &Node, client_id: Option<&str>) -> ApiResult<()> {
    let present = client_id.is_some_and(|c| !c.trim().is_empty());
    if present || node.query.allow_anonymous {
        Ok(())
    } else {
        Err(ApiError::authentication(ANONYMOUS))
    }
}

/// Whether a `Content-Type` names plain text (HQL) rather than JSON.
pub fn is_text(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| c.trim().to_ascii_lowercase().starts_with("text/plain"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn defaults(node: &Node) -> ApiResult<Defaults> {
    let mut defaults = Defaults::default();
    let configured = heroic_query::request::FeatureSet::parse(node.query.features.iter().map(String::as_str))
        .map_err(|e| ApiError::internal(format!("invalid features in the config: {e}")))?;
    defaults.features = defaults.features.combine(&configured);
    Ok(defaults)
}

/// An answer, with the share of the node's query budget its values hold
/// until it has been sent.
struct Answer {
    response: QueryResponse,
    retained: Retained,
}

impl Answer {
    fn values(&self) -> usize {
        self.response.result.iter().map(|g| g.values.len()).sum()
    }
}

/// Runs `work` (a metadata or suggest lookup) in a query slot, within the
/// query timeout; dropped at the timeout, which cancels its plugin calls.
pub async fn admitted<T>(node: &Node, work: impl std::future::Future<Output = ApiResult<T>>) -> ApiResult<T> {
    let ticket = node.admission.admit().await?;
    let timeout = Duration::from_secs(node.query.timeout_secs);
    let result = tokio::time::timeout(timeout, work).await.map_err(|_| {
        ApiError::unavailable(format!("request timed out after {} s (query.timeout_secs)", timeout.as_secs()))
    })?;
    drop(ticket);
    result
}

/// Plans and runs one query in a query slot, within the configured timeout.
/// A query that times out is dropped, which cancels its calls into the
/// plugins.
async fn execute(node: &Node, request: &QueryMetrics) -> ApiResult<Answer> {
    let received = Instant::now();
    let (outcome, tracing, retained) = outcome(node, request).await?;
    let response = QueryResponse::new(outcome, tracing, received.elapsed().as_micros() as u64);
    Ok(Answer { response, retained })
}

/// What a query finds, before it is shaped as a response: its outcome,
/// whether a detailed trace was asked for, and the share of the node's
/// query budget the outcome holds (released when it is dropped).
pub(crate) async fn outcome(node: &Node, request: &QueryMetrics) -> ApiResult<(QueryOutcome, Tracing, Retained)> {
    let started = Instant::now();
    let result = run_planned(node, request).await;
    let metrics = &node.telemetry.queries;
    match &result {
        Ok((outcome, ..)) => metrics.answered(
            started.elapsed(),
            outcome.pre_aggregation_sample_size,
            outcome.limits.iter().map(|l| l.label()),
            !outcome.errors.is_empty(),
        ),
        Err(e) => metrics.failed(started.elapsed(), e.status),
    }
    result
}

async fn run_planned(node: &Node, request: &QueryMetrics) -> ApiResult<(QueryOutcome, Tracing, Retained)> {
    let plan = plan(request, now_ms(), &defaults(node)?)?;
    let mut ticket = node.admission.admit().await?;
    let timeout = Duration::from_secs(node.query.timeout_secs);
    let outcome = tokio::time::timeout(timeout, run(node, &plan, &mut ticket)).await.map_err(|_| {
        ApiError::unavailable(format!("query timed out after {} s (query.timeout_secs)", timeout.as_secs()))
    })??;
    Ok((outcome, plan.options.tracing.unwrap_or_default(), ticket.finish()))
}

fn parse_request(body: &[u8], text: bool) -> ApiResult<QueryMetrics> {
    if text {
        let hql = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the HQL body is not UTF-8"))?;
        return Ok(QueryMetrics::from_hql(hql));
    }
    let value: Value = crate::http::error::parse_json(body)?;
    Ok(QueryMetrics::from_json(&value)?)
}

pub async fn metrics(
    node: &Node,
    client_id: Option<String>,
    content_type: Option<String>,
    body: &[u8],
) -> ApiResult<Response> {
    let request = check_client_id(node, client_id.as_deref())
        .and_then(|()| parse_request(body, is_text(content_type.as_deref())))
        .inspect_err(|e| node.telemetry.queries.refused(e.status))?;
    let answer = execute(node, &request).await?;
    let values = answer.values();
    Ok(stream::json(answer.response, values, answer.retained))
}

pub async fn batch(node: &Node, client_id: Option<String>, body: &[u8]) -> ApiResult<Response> {
    check_client_id(node, client_id.as_deref())?;
    let value: Value = crate::http::error::parse_json(body)?;
    let batch = BatchRequest::from_json(&value)?;
    let runs = batch.queries.iter().map(|(name, q)| async move { (name.clone(), execute(node, q).await) });
    // Serialised as structs, not through `serde_json::Value`, so that each
    // response keeps Heroic's field order.
    #[derive(Serialize)]
    struct BatchResponse {
        results: BTreeMap<String, QueryResponse>,
    }
    let mut results = BTreeMap::new();
    let (mut values, mut retained) = (0, Vec::new());
    for (name, result) in futures::future::join_all(runs).await {
        match result {
            Ok(answer) => {
                values += answer.values();
                retained.push(answer.retained);
                results.insert(name, answer.response);
            }
            // One bad query fails the whole batch, as in Heroic. Its name
            // goes at the end: clients read a parse error's position from
            // the start of the message (`line:col: …`).
            Err(e) => return Err(ApiError { message: format!("{} (query {name:?})", e.message), ..e }),
        }
    }
    Ok(stream::json(BatchResponse { results }, values, retained))
}

pub fn parse_query(body: &[u8]) -> ApiResult<warp::reply::Json> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the HQL body is not UTF-8"))?;
    let query = heroic_query::hql::parse_query(text)?;
    Ok(warp::reply::json(&query.to_json(now_ms())?))
}

pub fn parse_filter(text: &str) -> ApiResult<warp::reply::Json> {
    let filter = heroic_query::hql::parse_filter(text)?;
    Ok(warp::reply::json(&heroic_query::filter::to_json(&filter)))
}
