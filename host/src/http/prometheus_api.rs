//! Prometheus' HTTP query API, so that Grafana's Prometheus data source
//! (and anything else that speaks it) can use the node:
//! `/api/v1/query`, `/api/v1/query_range`, `/api/v1/series`,
//! `/api/v1/labels`, `/api/v1/label/<name>/values` (GET, and POST with a
//! form body where Prometheus takes one), `/api/v1/status/buildinfo` and
//! `/api/v1/metadata`.
//!
//! PromQL is parsed and evaluated by `heroic_promql`; the points come from
//! the plugins (`prometheus::read`) within the same limits, query slots,
//! budget and timeout as Heroic's queries. Answers and errors have
//! Prometheus' shapes (`prometheus::answer`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use heroic_plugin_api::types::TimeRange;
use heroic_plugin_api::Filter as SeriesFilter;
use heroic_promql::{EvalRange, Labels, RangeError, Value};
use promql_parser::parser::Expr;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use crate::http::error::ApiError;
use crate::http::query::admitted;
use crate::node::Node;
use crate::prometheus::answer;
use crate::prometheus::params::{now_ms, parse_duration_ms, Params};
use crate::prometheus::read::{found, read, Budget, ReadError};
use crate::prometheus::selector::{Selector, NAME};
use crate::query::admission::Ticket;

/// How far back an instant selector looks for a sample (Prometheus'
/// default `--query.lookback-delta`).
const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// The Prometheus version whose API this node answers as: Grafana reads
/// `version` to choose the features it uses.
const PROMETHEUS_VERSION: &str = "2.42.0";

/// A PromQL error with Prometheus' status: 400 for the query's own fault
/// (`bad_data`), 503 past the deadline (`timeout`), else 422 (`execution`).
fn promql_error(e: heroic_promql::Error, timeout: Duration) -> ApiError {
    match e {
        heroic_promql::Error::Timeout => timed_out(timeout),
        e if e.is_bad_data() => ApiError::bad_request(e.to_string()),
        e => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}

fn timed_out(timeout: Duration) -> ApiError {
    ApiError::unavailable(format!("query timed out after {} s (query.timeout_secs)", timeout.as_secs()))
}

fn reply(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(answer::error)
}

/// `GET|POST /api/v1/query`: `query` at `time` (default now).
pub async fn query(node: &Node, params: Params) -> Response {
    reply(
        async {
            let text =
                params.get("query").ok_or_else(|| ApiError::bad_request("invalid parameter \"query\": missing"))?;
            let t = params.time("time", now_ms())?;
            let range = EvalRange { start_ms: t, end_ms: t, step_ms: 0, lookback_ms: LOOKBACK_MS };
            evaluate(node, text, range).await.map(|v| answer::value(&v))
        }
        .await,
    )
}

/// `GET|POST /api/v1/query_range`: `query` from `start` to `end` every `step`.
pub async fn query_range(node: &Node, params: Params) -> Response {
    reply(
        async {
            let text =
                params.get("query").ok_or_else(|| ApiError::bad_request("invalid parameter \"query\": missing"))?;
            let start = params.required_time("start")?;
            let end = params.required_time("end")?;
            let step = params.get("step").and_then(parse_duration_ms).ok_or_else(|| {
                ApiError::bad_request("invalid parameter \"step\": cannot parse it to a valid duration")
            })?;
            // A range query: a step of 0 is refused even at one time.
            if step <= 0 {
                return Err(ApiError::bad_request(format!("invalid parameter \"step\": {}", RangeError::Step)));
            }
            let range = EvalRange { start_ms: start, end_ms: end, step_ms: step, lookback_ms: LOOKBACK_MS };
            range.validate().map_err(|e| match e.parameter() {
                Some(p) => ApiError::bad_request(format!("invalid parameter \"{p}\": {e}")),
                None => ApiError::bad_request(e.to_string()),
            })?;
            // A step above 0 makes it a range query (a matrix), even when
            // `start` is `end`.
            evaluate(node, text, range).await.map(|v| answer::value(&v))
        }
        .await,
    )
}

/// Parses and evaluates `text`, reading its selections in a query slot,
/// within the query timeout and the node's query budget. Evaluation stops
/// at the same deadline: the slot is not given back while it runs.
async fn evaluate(node: &Node, text: &str, range: EvalRange) -> Result<Value, ApiError> {
    let timeout = Duration::from_secs(node.query.timeout_secs);
    let expr = heroic_promql::parse(text).map_err(|e| promql_error(e, timeout))?;
    let mut ticket = node.admission.admit().await?;
    let deadline = Instant::now() + timeout;
    let value = tokio::time::timeout(timeout, run(node, expr, range, &mut ticket, deadline))
        .await
        .map_err(|_| timed_out(timeout))??;
    drop(ticket);
    Ok(value)
}

async fn run(
    node: &Node,
    expr: Expr,
    range: EvalRange,
    ticket: &mut Ticket,
    deadline: Instant,
) -> Result<Value, ApiError> {
    let timeout = Duration::from_secs(node.query.timeout_secs);
    let wanted = heroic_promql::selections(&expr, &range);
    let mut budget = Budget { series: node.query.series_limit, samples: node.query.data_limit, read: 0, reduced: 0 };
    let began = Instant::now();
    let mut data = Vec::with_capacity(wanted.len());
    // Range functions over a selection are applied as its series are read
    // (see `heroic_promql::Reduction`): a chunk's samples are not all held.
    let reductions = heroic_promql::reductions(&expr, &range);
    for (selection, reduction) in wanted.iter().zip(&reductions) {
        let series = read(node, selection, reduction.as_ref(), deadline, &mut budget, ticket).await;
        data.push(series.map_err(|e| match e {
            ReadError::Api(e) => e,
            ReadError::Promql(e) => promql_error(e, timeout),
        })?);
    }
    let read_at = Instant::now();
    // Evaluation is CPU work of up to seconds: off the request threads. It
    // stops by itself at the deadline, so awaiting it keeps the slot and
    // the budget taken exactly as long as it runs.
    let evaluation =
        tokio::task::spawn_blocking(move || heroic_promql::evaluate_reduced(&expr, &range, data, Some(deadline)));
    let value = evaluation
        .await
        .map_err(|e| ApiError::internal(format!("query evaluation failed: {e}")))?
        .map_err(|e| promql_error(e, timeout));
    tracing::debug!(
        samples = budget.read,
        read_ms = (read_at - began).as_secs_f64() * 1e3,
        evaluate_ms = read_at.elapsed().as_secs_f64() * 1e3,
        "prometheus query: evaluated"
    );
    value
}

/// The selectors of `match[]` (every series without one when `required`
/// is false), and the time range of `start` and `end`.
fn selectors(params: &Params, required: bool) -> Result<(Vec<Selector>, TimeRange), ApiError> {
    let matches = params.all("match[]")?;
    if matches.is_empty() && required {
        return Err(ApiError::bad_request("no match[] parameter provided"));
    }
    let mut out = Vec::with_capacity(matches.len().max(1));
    for m in matches {
        match heroic_promql::parse(m).map_err(|e| ApiError::bad_request(e.to_string()))? {
            Expr::VectorSelector(vs) => out.push(Selector::new(&heroic_promql::matchers_with_name(&vs))),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "invalid parameter \"match[]\": {m:?} is not a series selector"
                )))
            }
        }
    }
    if out.is_empty() {
        out.push(Selector::all());
    }
    let start = params.time("start", i64::MIN)?;
    let end = params.time("end", i64::MAX)?;
    Ok((out, TimeRange::new(start.saturating_sub(1), end)))
}

/// The label sets of every series of `selectors` in `range`: at most
/// `query.series_limit` found by all of them together.
async fn label_sets(node: &Node, selectors: &[Selector], range: TimeRange) -> Result<BTreeSet<Labels>, ApiError> {
    let mut sets = BTreeSet::new();
    let mut left = node.query.series_limit;
    for s in selectors {
        if left == 0 {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("the selectors match more than {} series (query.series_limit)", node.query.series_limit),
            ));
        }
        let found = found(node, s, range, left).await?;
        left = left.saturating_sub(found.len() as u64);
        sets.extend(found.into_iter().map(|(_, labels)| labels));
    }
    Ok(sets)
}

/// `GET|POST /api/v1/series`: the label sets of the series of `match[]`.
pub async fn series(node: &Node, params: Params) -> Response {
    reply(
        async {
            let (selectors, range) = selectors(&params, true)?;
            let sets = admitted(node, label_sets(node, &selectors, range)).await?;
            Ok(answer::label_sets(sets.iter()))
        }
        .await,
    )
}

/// `GET|POST /api/v1/labels`: label names, `__name__` among them.
pub async fn labels(node: &Node, params: Params) -> Response {
    reply(
        async {
            let (selectors, range) = selectors(&params, false)?;
            if params.get("match[]").is_none() {
                let names = admitted(node, indexed(node, None, range)).await?;
                return Ok(answer::strings(names.iter().map(String::as_str)));
            }
            let sets = admitted(node, label_sets(node, &selectors, range)).await?;
            let names: BTreeSet<&str> = sets.iter().flat_map(|l| l.iter().map(|(n, _)| n)).collect();
            Ok(answer::strings(names.into_iter()))
        }
        .await,
    )
}

/// Without `match[]`: label names (`label` is `None`) or one label's
/// values from the metadata backends' key and tag lookups, not from every
/// series: Grafana's metric browser asks for `__name__`'s values each time
/// it opens, and a node may hold more series than `query.series_limit`.
async fn indexed(node: &Node, label: Option<&str>, range: TimeRange) -> Result<BTreeSet<String>, ApiError> {
    let failed = |id: &str, e: &dyn std::fmt::Display| ApiError::unavailable(format!("metadata backend {id:?}: {e}"));
    let mut out = BTreeSet::new();
    for b in &node.backends.metadata {
        match label {
            Some(NAME) => {
                let page = b.client.find_keys(&SeriesFilter::True, range, 0).await.map_err(|e| failed(&b.id, &e))?;
                out.extend(page.keys.iter().map(|k| k.to_string()));
            }
            Some(name) => {
                let filter = SeriesFilter::HasTag(name.to_string());
                let page = b.client.find_tags(&filter, range, 0).await.map_err(|e| failed(&b.id, &e))?;
                let values = page.tags.iter().filter(|t| t.key.as_str() == name).flat_map(|t| t.values.iter());
                out.extend(values.filter(|v| !v.is_empty()).map(|v| v.to_string()));
            }
            None => {
                // One value a key is enough to learn the keys.
                let page = b.client.find_tags(&SeriesFilter::True, range, 1).await.map_err(|e| failed(&b.id, &e))?;
                out.extend(page.tags.iter().map(|t| t.key.to_string()));
                let keys = b.client.find_keys(&SeriesFilter::True, range, 1).await.map_err(|e| failed(&b.id, &e))?;
                if !keys.keys.is_empty() {
                    out.insert(NAME.to_string());
                }
            }
        }
    }
    Ok(out)
}

/// `GET /api/v1/label/<name>/values`: the values of one label.
pub async fn label_values(node: &Node, name: String, params: Params) -> Response {
    reply(
        async {
            if !heroic_promql::is_label_name(&name) {
                return Err(ApiError::bad_request(format!("invalid label name: {name:?}")));
            }
            let (selectors, range) = selectors(&params, false)?;
            if params.get("match[]").is_none() {
                let values = admitted(node, indexed(node, Some(&name), range)).await?;
                return Ok(answer::strings(values.iter().map(String::as_str)));
            }
            let sets = admitted(node, label_sets(node, &selectors, range)).await?;
            let values: BTreeSet<&str> = sets.iter().map(|l| l.get(&name)).filter(|v| !v.is_empty()).collect();
            Ok(answer::strings(values.into_iter()))
        }
        .await,
    )
}

/// `GET /api/v1/status/buildinfo`.
pub fn buildinfo() -> Response {
    answer::data(&serde_json::json!({
        "version": PROMETHEUS_VERSION,
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
        "application": concat!("heroic-rs ", env!("CARGO_PKG_VERSION")),
    }))
}

/// `GET /api/v1/metadata`: metric types and help texts, which this node
/// does not keep (remote-write 1.0 does not carry them with the samples):
/// an empty map, as Prometheus answers for metrics without metadata.
pub fn metadata() -> Response {
    answer::data(&serde_json::json!({}))
}

/// The raw query string ("" when there is none).
fn query_string() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

/// The parameters of a GET (its query string) or of a POST (its query
/// string and its form body; a body of another type is not read).
fn params(max_body: u64) -> BoxedFilter<(Params,)> {
    let get = warp::get().and(query_string()).map(|q: String| Params::parse(&q, None));
    let post = warp::post()
        .and(query_string())
        .and(warp::header::optional::<String>("content-type"))
        .and(super::body(max_body))
        .map(|q: String, ct: Option<String>, body: Bytes| {
            let form = ct.is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
            Params::parse(&q, form.then_some(&body[..]))
        });
    get.or(post).unify().boxed()
}

/// Every route of Prometheus' query API.
pub fn routes(node: &Arc<Node>, max_body: u64) -> BoxedFilter<(Response,)> {
    let with_node = || super::with_node(node.clone());
    let query = warp::path!("api" / "v1" / "query")
        .and(params(max_body))
        .and(with_node())
        .then(|p: Params, n: Arc<Node>| async move { query(&n, p).await });
    let query_range = warp::path!("api" / "v1" / "query_range")
        .and(params(max_body))
        .and(with_node())
        .then(|p: Params, n: Arc<Node>| async move { query_range(&n, p).await });
    let series = warp::path!("api" / "v1" / "series")
        .and(params(max_body))
        .and(with_node())
        .then(|p: Params, n: Arc<Node>| async move { series(&n, p).await });
    let labels = warp::path!("api" / "v1" / "labels")
        .and(params(max_body))
        .and(with_node())
        .then(|p: Params, n: Arc<Node>| async move { labels(&n, p).await });
    let values = warp::path!("api" / "v1" / "label" / String / "values")
        .and(warp::get())
        .and(query_string())
        .and(with_node())
        .then(|name: String, q: String, n: Arc<Node>| async move {
            let name = percent_decoded(&name);
            label_values(&n, name, Params::parse(&q, None)).await
        });
    let buildinfo = warp::path!("api" / "v1" / "status" / "buildinfo").and(warp::get()).map(buildinfo);
    let metadata = warp::path!("api" / "v1" / "metadata").and(warp::get()).map(metadata);
    query
        .or(query_range)
        .unify()
        .or(series)
        .unify()
        .or(labels)
        .unify()
        .or(values)
        .unify()
        .or(buildinfo)
        .unify()
        .or(metadata)
        .unify()
        .boxed()
}

/// A path segment as its text (`%5F` is `_`).
fn percent_decoded(segment: &str) -> String {
    form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map_or_else(String::new, |(_, v)| v.into_owned())
}
