//! The points of PromQL selections, read as every query reads: series from
//! the metadata backends, points from every metric backend, through the
//! plugins, within the node's query limits and budget.
//!
//! The whole selection is held (PromQL's functions look at a window of
//! samples, and a range query at every window): what it holds counts
//! against `query.data_limit` for the query and against the node's query
//! budget while it runs.

use std::collections::BTreeMap;

use heroic_plugin_api::types::{FetchRequest, Series, TimeRange};
use heroic_promql::{Labels, RangeSeries, Sample, Selection};
use warp::http::StatusCode;

use super::selector::{labels_of, Selector};
use crate::http::error::ApiError;
use crate::node::Node;
use crate::query::admission::Ticket;
use crate::query::find_series;

/// Series per fetch call.
const CHUNK: usize = 256;

/// What one query may still read.
pub struct Budget {
    /// Series of one selection at most (`query.series_limit`).
    pub series: u64,
    /// Samples of all selections together at most (`query.data_limit`).
    pub samples: u64,
    /// Samples read so far.
    pub read: u64,
}

/// Prometheus' status for a query that went over a limit (`execution`).
fn over_limit(message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// The series of `selection` with their samples in its time range, sorted
/// by labels, each with its samples in time order.
pub async fn read(
    node: &Node,
    selection: &Selection,
    budget: &mut Budget,
    ticket: &mut Ticket,
) -> Result<Vec<RangeSeries>, ApiError> {
    let selector = Selector::new(&selection.matchers);
    // The plugins' ranges are (start, end]; the selection's are inclusive.
    let range = TimeRange::new(selection.first_ms.saturating_sub(1), selection.last_ms);
    let series = found(node, &selector, range, budget.series).await?;
    let mut out: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    let mut sources: BTreeMap<Labels, usize> = BTreeMap::new();
    for backend in &node.backends.metrics {
        for chunk in series.chunks(CHUNK) {
            let request = FetchRequest {
                series: chunk.iter().map(|(s, _)| s.clone()).collect::<Vec<Series>>().into(),
                range,
                // One more than allowed: reading exactly the limit is fine.
                point_limit: budget.samples.saturating_sub(budget.read).saturating_add(1),
            };
            let response = backend.client.fetch(request).await.map_err(|e| {
                tracing::warn!(backend = %backend.id, error = %e, "prometheus query: fetch failed");
                ApiError::unavailable(format!("metrics backend {:?}: {e}", backend.id))
            })?;
            for fetched in response.series.iter() {
                // Resource variants of a series are that series (their
                // resource tags are not labels: see `selector`).
                let Some((_, labels)) = chunk.get(fetched.request_index as usize) else {
                    return Err(ApiError::internal(format!(
                        "metrics backend {:?} answered for an unknown series",
                        backend.id
                    )));
                };
                let labels = labels.clone();
                budget.read += fetched.points.len() as u64;
                if budget.read > budget.samples {
                    return Err(over_limit(format!(
                        "query processing would load too many samples into memory (query.data_limit {})",
                        budget.samples
                    )));
                }
                let p = &fetched.points;
                *sources.entry(labels.clone()).or_default() += 1;
                let samples = out.entry(labels).or_default();
                samples.reserve_exact(p.len());
                samples.extend(p.timestamps.iter().zip(p.values.iter()).map(|(&t, &v)| Sample { t, v }));
            }
            ticket.retain(budget.read, &node.admission.stats).await?;
        }
    }
    Ok(out
        .into_iter()
        .filter(|(_, samples)| !samples.is_empty())
        .map(|(labels, mut samples)| {
            // Several backends (or resource variants) of one series: one
            // sample a timestamp, the first read.
            if sources.get(&labels).copied().unwrap_or(0) > 1 {
                samples.sort_by_key(|s| s.t);
                samples.dedup_by_key(|s| s.t);
            }
            RangeSeries { labels, samples }
        })
        .collect())
}

/// The series of `selector` in `range`, each with its labels: at most
/// `limit` (more is an error: a partial selection would answer wrongly).
pub async fn found(
    node: &Node,
    selector: &Selector,
    range: TimeRange,
    limit: u64,
) -> Result<Vec<(Series, Labels)>, ApiError> {
    let mut errors = Vec::new();
    let (series, limited) = find_series(node, &selector.filter, range, limit, &mut errors).await?;
    if let Some(e) = errors.first() {
        return Err(ApiError::unavailable(e["error"].as_str().unwrap_or("a metadata backend failed").to_string()));
    }
    if limited {
        return Err(over_limit(format!("the selector matches more than {limit} series (query.series_limit)")));
    }
    Ok(series
        .into_iter()
        .filter_map(|s| {
            let labels = labels_of(&s);
            selector.matches(&labels).then_some((s, labels))
        })
        .collect())
}
