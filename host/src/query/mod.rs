//! Runs a planned query: metadata lookup, chunked fetches fed into a
//! streaming aggregation session, limits, and partial errors.
//!
//! Memory stays bounded: points are fetched a chunk of series at a time
//! (the next chunk is read while the current one is folded, so two are
//! held at most; chunks are sized from the points per series seen so far,
//! by [`chunker`], as PromQL's reads are)
//! and folded into the session, never held all at once; the data limit
//! caps how many points a query may read at all, and what the session keeps
//! is taken from the node's budget ([`admission`]).

use std::borrow::Cow;
use std::time::Instant;

use futures::future::maybe_done;
use futures::FutureExt;
use heroic_plugin_api::filter::SeriesMatcher;
use heroic_plugin_api::samples::SampleKind;
use heroic_plugin_api::types::{FetchRequest, MetadataCapabilities, Series, TimeRange};
use heroic_plugin_api::Filter;
use heroic_query::request::Source;
use heroic_query::{AggregationSession, QueryError, QueryPlan, ResultGroup};
use serde_json::Value;

use crate::http::error::ApiError;
use crate::node::Node;

pub mod admission;
pub(crate) mod chunker;
mod common;
mod outcome;
mod pushdown;
mod samples;

use admission::Ticket;
use chunker::Chunker;
pub use common::{common_tags, TagValues};
use outcome::{FetchKind, Halt, Progress};
pub use outcome::{Limit, QueryOutcome, RequestError, LOCAL_NODE};

/// Series per fetch call at most: large enough that the boundary crossing
/// is noise.
const FETCH_CHUNK_SERIES: usize = 256;

/// Series of the first fetch call, before anything is known of how many
/// points a series has in the range.
const FIRST_CHUNK_SERIES: usize = 32;

/// Points one fetch call should return, by estimate: later chunks are sized
/// from the points per series seen so far, so that a chunk of dense series
/// stays a modest allocation (32 MiB) however long the range is.
const FETCH_CHUNK_POINTS: u64 = 2 * 1024 * 1024;

/// A metadata backend's failure, in the `errors` of the metadata endpoints.
fn query_error(message: impl Into<String>) -> Value {
    serde_json::json!({"type": "query", "error": message.into()})
}

/// Finds the series of `filter` on every metadata backend. A backend that
/// cannot evaluate regexes gets a relaxed filter; the host finishes it here.
pub async fn find_series(
    node: &Node,
    filter: &Filter,
    range: TimeRange,
    limit: u64,
    errors: &mut Vec<Value>,
) -> Result<(Vec<Series>, bool), ApiError> {
    let matcher: SeriesMatcher = filter.compile().map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut found: Vec<Series> = Vec::new();
    let mut limited = false;
    for backend in &node.backends.metadata {
        let relax = filter.contains_regex() && !backend.client.capabilities().contains(MetadataCapabilities::REGEX);
        let (sent, sent_limit) = if relax { (filter.without_regex(), 0) } else { (filter.clone(), limit) };
        match backend.client.find_series(&sent, range, sent_limit).await {
            Ok(page) => {
                limited |= page.limited;
                found.extend(page.series.into_iter().filter(|s| !relax || matcher.matches(s)));
            }
            Err(e) => errors.push(query_error(format!("metadata backend {:?}: {e}", backend.id))),
        }
    }
    // Unique (backends may overlap, or repeat a series), in the order the
    // backends answered: hashing is linear where a sort of 100,000 series
    // compared their tags for a tenth of the query.
    let mut seen: foldhash::HashSet<&Series> =
        foldhash::HashSet::with_capacity_and_hasher(found.len(), Default::default());
    let unique: Vec<bool> = found.iter().map(|s| seen.insert(s)).collect();
    drop(seen);
    let mut series = found;
    if unique.contains(&false) {
        let mut keep = unique.into_iter();
        series.retain(|_| keep.next().unwrap_or(false));
    }
    if limit > 0 && series.len() as u64 > limit {
        series.truncate(limit as usize);
        limited = true;
    }
    Ok((series, limited))
}

/// The lower of a query's own limit and the config's: a client may lower a
/// limit, never raise it.
fn ceiling(asked: Option<u64>, configured: u64) -> u64 {
    asked.map_or(configured, |a| a.min(configured))
}

/// Heroic's message for a read that went over `dataLimit` or
/// `aggregationLimit` without a failed fetch.
const QUOTA_EXCEEDED: &str = "Query exceeded quota";

/// Runs `plan` against the node's backends. The points and buckets it keeps
/// are taken from the node's budget through `ticket`.
///
/// Limits, backend failures and an aggregation that cannot be laid out end
/// the query with an answer (no groups, `limits`, `errors`), as in Heroic;
/// only a failure of the request itself (the node's query budget, a filter
/// that does not compile …) is an `Err`.
pub async fn run(node: &Node, plan: &QueryPlan, ticket: &mut Ticket) -> Result<QueryOutcome, ApiError> {
    let mut progress = Progress::new(plan.options.fail_on_limits.unwrap_or(node.query.fail_on_limits));
    match read(node, plan, ticket, &mut progress).await {
        Ok(groups) => Ok(progress.outcome(plan, groups, Vec::new())),
        Err(Halt::Stopped(error)) => {
            tracing::info!(?error, limits = ?progress.limits, "query answered without groups");
            Ok(progress.outcome(plan, Vec::new(), vec![error]))
        }
        Err(Halt::Failed(e)) => Err(e),
    }
}

/// A failed aggregation session: over `aggregationLimit` it stops the query
/// (`message` is Heroic's for where it happened), a bucket layout error is
/// this shard's error, anything else fails the request.
fn session_failed(progress: &mut Progress, error: QueryError, message: impl FnOnce(u64) -> String) -> Halt {
    match error {
        QueryError::AggregationLimit { limit } => progress.stop(Limit::Aggregation, message(limit)),
        QueryError::Layout(m) => Halt::Stopped(RequestError::shard(m)),
        e => Halt::Failed(e.into()),
    }
}

/// Reading after the session is set up: over a limit, the answer would be
/// partial.
fn while_reading(_limit: u64) -> String {
    QUOTA_EXCEEDED.to_string()
}

async fn read(
    node: &Node,
    plan: &QueryPlan,
    ticket: &mut Ticket,
    progress: &mut Progress,
) -> Result<Vec<ResultGroup>, Halt> {
    if let Some(reason) = &plan.unavailable {
        return Err(Halt::Stopped(RequestError::query(reason.as_str())));
    }
    let sample_kind = samples::kind_of(plan.source);
    if let Some(kind) = sample_kind {
        if let Some(reason) = samples::no_backend_message(node, kind) {
            return Err(Halt::Stopped(RequestError::query(reason)));
        }
    }
    let defaults = &node.query;
    let series_limit = ceiling(plan.options.series_limit, defaults.series_limit);
    let data_limit = ceiling(plan.options.data_limit, defaults.data_limit);
    let group_limit = ceiling(plan.options.group_limit, defaults.group_limit);
    let stats = &node.admission.stats;

    // Set up first: an aggregation whose buckets alone go over
    // aggregationLimit, or that cannot be laid out, is refused before any
    // backend is asked.
    let mut session = plan.session(Some(defaults.aggregation_limit)).map_err(|e| {
        session_failed(progress, e, |limit| {
            format!("aggregation needs to retain more data then what is allowed: {limit}")
        })
    })?;
    ticket.retain(session.retained(), stats).await?;
    let mut metadata_errors = Vec::new();
    let (mut series, series_limited) =
        find_series(node, &plan.filter, plan.range, series_limit, &mut metadata_errors).await?;
    if !metadata_errors.is_empty() {
        // Series would be missing from the aggregation: the shard answers
        // nothing rather than a partial answer that looks complete.
        let messages: Vec<String> =
            metadata_errors.iter().map(|e| e["error"].as_str().unwrap_or_default().to_string()).collect();
        return Err(Halt::Stopped(RequestError::shard(messages.join("; "))));
    }
    if series_limited {
        progress.hit(
            Limit::Series,
            format!("The number of series requested is more than the allowed limit of [{series_limit}]"),
        )?;
    }
    if series.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(kind @ (SampleKind::DISTRIBUTION | SampleKind::TDIGEST)) = samples::kind_of(plan.source) {
        let groups = samples::read_sketches(node, plan, kind, &series, data_limit, ticket, progress).await?;
        return limit_groups(groups, group_limit, progress);
    }
    if plan.source == Source::Spreads {
        let budget = samples::ReadBudget { data_limit, ticket: &mut *ticket, progress: &mut *progress };
        match samples::read_spreads(node, plan, &series, budget, &mut session).await {
            Ok(()) => {}
            Err(samples::SpreadsStopped::Halt(halt)) => return Err(halt),
            Err(samples::SpreadsStopped::Session(e)) => return Err(session_failed(progress, e, while_reading)),
        }
        return finish(session, ticket, group_limit, progress, stats).await;
    }

    // Aggregations a plugin can fold itself (`fetch_buckets`) cost one call
    // per backend and nothing per point at the boundary.
    let pushed = session.pushdown();
    let backends = node.backends.metrics.len();
    for (b, backend) in node.backends.metrics.iter().enumerate() {
        if let Some(pd) = pushed.as_ref().filter(|_| backend.client.folds_buckets()) {
            let last = b + 1 == backends;
            pushdown::read(node, backend, pd, plan, &mut series, last, data_limit, ticket, progress, &mut session)
                .await?;
            continue;
        }
        let fetch = |chunk: &[Series], read: u64| {
            let request = FetchRequest {
                series: chunk.to_vec().into(),
                range: plan.range,
                // One more than allowed, so that reading exactly the limit is not a violation.
                point_limit: data_limit.saturating_sub(read).saturating_add(1),
            };
            let started = Instant::now();
            Box::pin(maybe_done(backend.client.fetch(request).map(move |r| (r, started.elapsed()))))
        };
        let mut chunker = Chunker::new(FIRST_CHUNK_SERIES, FETCH_CHUNK_SERIES, FETCH_CHUNK_POINTS);
        let first_len = chunker.next_len(series.len());
        let mut next = (first_len > 0).then(|| (0..first_len, fetch(&series[..first_len], 0)));
        while let Some((range, mut current)) = next.take() {
            current.as_mut().await;
            let (response, took) = current.as_mut().take_output().expect("awaited");
            progress.fetches_us.push((FetchKind::Points, took.as_micros() as u64));
            let chunk = &series[range.clone()];
            let response = match response {
                Ok(r) => r,
                Err(e) => {
                    // Heroic drops the whole shard on a failed fetch: what
                    // was folded so far would be presented as complete.
                    tracing::warn!(backend = %backend.id, error = %e, "fetch failed: the query answers no groups");
                    return Err(Halt::Stopped(RequestError::shard(format!(
                        "Some fetches failed (1) or were cancelled (0), caused by metrics backend {:?}: {e}",
                        backend.id
                    ))));
                }
            };
            chunker.saw(chunk.len(), response.series.iter().map(|s| s.points.len() as u64).sum());
            // Start the next fetch (a first poll makes the call) before
            // folding this one: the backend decodes while the host
            // aggregates. Its point limit does not count this chunk yet, so
            // it may read one chunk more than needed; the limit itself is
            // enforced here, as each series is folded.
            let start = range.end;
            let len = chunker.next_len(series.len() - start);
            next = (len > 0).then(|| (start..start + len, fetch(&series[start..start + len], progress.sample_size)));
            if let Some((_, n)) = next.as_mut() {
                let _ = futures::poll!(n.as_mut());
            }
            // The chunk's points count against the node's budget while they
            // are held, as well as what the session keeps of them.
            let chunk_points: u64 = response.series.iter().map(|s| s.points.len() as u64).sum();
            ticket.retain(session.retained() + chunk_points, stats).await?;
            for fetched in response.series.iter() {
                let Some(base) = chunk.get(fetched.request_index as usize) else {
                    return Err(Halt::Stopped(RequestError::shard(format!(
                        "metrics backend {:?} answered for an unknown series",
                        backend.id
                    ))));
                };
                progress.sample_size += fetched.points.len() as u64;
                if progress.sample_size > data_limit {
                    tracing::info!(data_limit, "query read more points than dataLimit");
                    return Err(progress.stop(Limit::Quota, QUOTA_EXCEEDED.to_string()));
                }
                let s = if fetched.resource.is_empty() {
                    Cow::Borrowed(base)
                } else {
                    Cow::Owned(Series { resource: fetched.resource.clone(), ..base.clone() })
                };
                session
                    .update(&s, &fetched.points.timestamps, &fetched.points.values)
                    .map_err(|e| session_failed(progress, e, while_reading))?;
            }
            drop(response);
            ticket.retain(session.retained(), stats).await?;
        }
    }

    finish(session, ticket, group_limit, progress, stats).await
}

/// The groups of a finished session, cut to `groupLimit`.
async fn finish(
    session: AggregationSession,
    ticket: &mut Ticket,
    group_limit: u64,
    progress: &mut Progress,
    stats: &admission::AdmissionStats,
) -> Result<Vec<ResultGroup>, Halt> {
    let groups = session.finish().map_err(|e| session_failed(progress, e, while_reading))?;
    // A shard whose groups all hold no data contributes none (Heroic).
    if groups.iter().all(|g| g.values.is_empty()) {
        return Ok(Vec::new());
    }
    ticket.retain(groups.iter().map(|g| g.values.len() as u64).sum(), stats).await?;
    limit_groups(groups, group_limit, progress)
}

/// Cuts the groups to `groupLimit`, flagging the limit.
fn limit_groups(
    mut groups: Vec<ResultGroup>,
    group_limit: u64,
    progress: &mut Progress,
) -> Result<Vec<ResultGroup>, Halt> {
    // Only more groups than the limit is flagged (Heroic also flagged
    // exactly the limit at the API, a quirk not kept).
    if groups.len() as u64 > group_limit {
        progress.hit(
            Limit::Group,
            format!("The number of result groups is more than the allowed limit of [{group_limit}]"),
        )?;
        groups.truncate(group_limit as usize);
    }
    Ok(groups)
}
