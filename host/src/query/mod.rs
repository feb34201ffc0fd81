//! Runs a planned query: metadata lookup, chunked fetches fed into a
//! streaming aggregation session, limits, and partial errors.
//!
//! Memory stays bounded: points are fetched a chunk of series at a time
//! (the next chunk is read while the current one is folded, so two are
//! held at most; chunks are sized from the points per series seen so far)
//! and folded into the session, never held all at once; the data limit
//! caps how many points a query may read at all, and what the session keeps
//! is taken from the node's budget ([`admission`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use futures::future::maybe_done;
use heroic_plugin_api::filter::SeriesMatcher;
use heroic_plugin_api::types::{FetchRequest, MetadataCapabilities, Series, TimeRange};
use heroic_plugin_api::Filter;
use heroic_query::{QueryError, QueryPlan, ResultGroup};
use serde::Serialize;
use serde_json::Value;

use crate::http::error::ApiError;
use crate::node::Node;

pub mod admission;

use admission::Ticket;

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

/// Sizes fetch chunks from the density seen so far.
#[derive(Default)]
struct Chunker {
    series_seen: u64,
    points_seen: u64,
}

impl Chunker {
    fn next_len(&self, remaining: usize) -> usize {
        let len = if self.series_seen == 0 {
            FIRST_CHUNK_SERIES
        } else {
            let per_series = self.points_seen.div_ceil(self.series_seen).max(1);
            usize::try_from(FETCH_CHUNK_POINTS / per_series).unwrap_or(usize::MAX).clamp(1, FETCH_CHUNK_SERIES)
        };
        len.min(remaining)
    }

    fn saw(&mut self, series: usize, points: u64) {
        self.series_seen += series as u64;
        self.points_seen += points;
    }
}

/// A limit that was hit (`limits` in the response).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Limit {
    Series,
    Group,
    Quota,
    Aggregation,
}

/// What a query produced, before it is turned into Heroic's JSON.
pub struct QueryOutcome {
    pub range: TimeRange,
    pub groups: Vec<ResultGroup>,
    pub limits: BTreeSet<Limit>,
    pub errors: Vec<Value>,
    pub pre_aggregation_sample_size: u64,
    pub elapsed_us: u64,
}

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
    let mut found: BTreeSet<Series> = BTreeSet::new();
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
    let mut series: Vec<Series> = found.into_iter().collect();
    if limit > 0 && series.len() as u64 > limit {
        series.truncate(limit as usize);
        limited = true;
    }
    Ok((series, limited))
}

/// Limits hit, errors and points read so far by one query.
struct Progress {
    limits: BTreeSet<Limit>,
    errors: Vec<Value>,
    sample_size: u64,
    started: Instant,
    fail_on_limits: bool,
}

impl Progress {
    fn outcome(self, plan: &QueryPlan, groups: Vec<ResultGroup>) -> QueryOutcome {
        QueryOutcome {
            range: plan.range,
            groups,
            limits: self.limits,
            errors: self.errors,
            pre_aggregation_sample_size: self.sample_size,
            elapsed_us: self.started.elapsed().as_micros() as u64,
        }
    }

    /// Records a limit that was hit without stopping the query; with
    /// `failOnLimits` the query fails instead.
    fn hit(&mut self, limit: Limit, message: &str) -> Result<(), ApiError> {
        if self.fail_on_limits {
            return Err(ApiError::bad_request(format!("query failed: {message} (failOnLimits is set)")));
        }
        self.limits.insert(limit);
        Ok(())
    }

    /// A query stopped by a data or aggregation limit: no groups, the limit
    /// named in `limits` and explained in `errors`.
    fn stop(mut self, plan: &QueryPlan, limit: Limit, message: String) -> Result<QueryOutcome, ApiError> {
        self.hit(limit, &message)?;
        self.errors.push(query_error(message));
        Ok(self.outcome(plan, Vec::new()))
    }

    /// Ends a query whose aggregation session failed: going over
    /// `aggregationLimit` (when the session is set up, fed or finished)
    /// stops it like the data limit does; any other error fails it.
    fn session_failed(self, plan: &QueryPlan, error: QueryError) -> Result<QueryOutcome, ApiError> {
        match error {
            QueryError::AggregationLimit { limit } => self.stop(
                plan,
                Limit::Aggregation,
                format!("aggregation retained more than {limit} points or buckets (aggregationLimit)"),
            ),
            e => Err(e.into()),
        }
    }
}

/// The lower of a query's own limit and the config's: a client may lower a
/// limit, never raise it.
fn ceiling(asked: Option<u64>, configured: u64) -> u64 {
    asked.map_or(configured, |a| a.min(configured))
}

/// Runs `plan` against the node's backends. The points and buckets it keeps
/// are taken from the node's budget through `ticket`.
pub async fn run(node: &Node, plan: &QueryPlan, ticket: &mut Ticket) -> Result<QueryOutcome, ApiError> {
    let defaults = &node.query;
    let series_limit = ceiling(plan.options.series_limit, defaults.series_limit);
    let data_limit = ceiling(plan.options.data_limit, defaults.data_limit);
    let group_limit = ceiling(plan.options.group_limit, defaults.group_limit);
    let stats = &node.admission.stats;
    let mut progress = Progress {
        limits: BTreeSet::new(),
        errors: Vec::new(),
        sample_size: 0,
        started: Instant::now(),
        fail_on_limits: plan.options.fail_on_limits.unwrap_or(defaults.fail_on_limits),
    };

    // Set up first: an aggregation whose buckets alone go over
    // aggregationLimit is refused before any backend is asked.
    let mut session = match plan.session(Some(defaults.aggregation_limit)) {
        Ok(s) => s,
        Err(e) => return progress.session_failed(plan, e),
    };
    ticket.retain(session.retained(), stats).await?;
    let (series, series_limited) =
        find_series(node, &plan.filter, plan.range, series_limit, &mut progress.errors).await?;
    if series_limited {
        progress.hit(Limit::Series, &format!("more than {series_limit} series matched (seriesLimit)"))?;
    }

    for backend in &node.backends.metrics {
        let fetch = |chunk: &[Series], read: u64| {
            let request = FetchRequest {
                series: chunk.to_vec().into(),
                range: plan.range,
                // One more than allowed, so that reading exactly the limit is not a violation.
                point_limit: data_limit.saturating_sub(read).saturating_add(1),
            };
            Box::pin(maybe_done(backend.client.fetch(request)))
        };
        let mut chunker = Chunker::default();
        let first_len = chunker.next_len(series.len());
        let mut next = (first_len > 0).then(|| (0..first_len, fetch(&series[..first_len], 0)));
        while let Some((range, mut current)) = next.take() {
            current.as_mut().await;
            let response = current.as_mut().take_output().expect("awaited");
            let chunk = &series[range.clone()];
            if let Ok(r) = &response {
                chunker.saw(chunk.len(), r.series.iter().map(|s| s.points.len() as u64).sum());
            }
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
            let response = match response {
                Ok(r) => r,
                Err(e) => {
                    let message = format!("metrics backend {:?}: some fetches failed: {e}", backend.id);
                    progress.errors.push(query_error(message));
                    break;
                }
            };
            // The chunk's points count against the node's budget while they
            // are held, as well as what the session keeps of them.
            let chunk_points: u64 = response.series.iter().map(|s| s.points.len() as u64).sum();
            ticket.retain(session.retained() + chunk_points, stats).await?;
            for fetched in response.series.iter() {
                let Some(base) = chunk.get(fetched.request_index as usize) else {
                    let message = format!("metrics backend {:?} answered for an unknown series", backend.id);
                    progress.errors.push(query_error(message));
                    continue;
                };
                progress.sample_size += fetched.points.len() as u64;
                if progress.sample_size > data_limit {
                    return progress.stop(
                        plan,
                        Limit::Quota,
                        format!("query read more than {data_limit} points (dataLimit)"),
                    );
                }
                let s = if fetched.resource.is_empty() {
                    Cow::Borrowed(base)
                } else {
                    Cow::Owned(Series { resource: fetched.resource.clone(), ..base.clone() })
                };
                if let Err(e) = session.update(&s, &fetched.points.timestamps, &fetched.points.values) {
                    return progress.session_failed(plan, e);
                }
            }
            drop(response);
            ticket.retain(session.retained(), stats).await?;
        }
    }

    let mut groups = match session.finish() {
        Ok(g) => g,
        Err(e) => return progress.session_failed(plan, e),
    };
    ticket.retain(groups.iter().map(|g| g.values.len() as u64).sum(), stats).await?;
    if groups.len() as u64 > group_limit {
        progress.hit(Limit::Group, &format!("more than {group_limit} groups (groupLimit)"))?;
        groups.truncate(group_limit as usize);
    }
    Ok(progress.outcome(plan, groups))
}

/// Values of each tag across every series of the result (`commonTags`).
pub fn common_tags<'a>(series: impl Iterator<Item = &'a Series>, resource: bool) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in series {
        let tags = if resource { &s.resource } else { &s.tags };
        for t in tags.iter() {
            out.entry(t.key.to_string()).or_default().insert(t.value.to_string());
        }
    }
    out
}
