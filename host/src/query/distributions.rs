//! Reads `distributionPoints` for a query: the raw samples, or `tdigest`
//! merging them per bucket (see `heroic_query::distribution`).
//!
//! Only the metric backends that declare `MetricCapabilities::DISTRIBUTIONS`
//! are read (the write path stores distributions in those alone). When no
//! backend of the node declares it, the query is answered on its own with
//! an error saying so; the other queries of a batch are unaffected.

use std::borrow::Cow;
use std::time::Instant;

use heroic_plugin_api::samples::{SampleFetchRequest, SampleKind};
use heroic_plugin_api::types::Series;
use heroic_query::distribution::DistributionSession;
use heroic_query::{QueryError, QueryPlan, ResultGroup};

use super::admission::Ticket;
use super::outcome::{Halt, Limit, Progress, RequestError};
use crate::node::Node;

/// Series per `fetch_samples` call: a sketch is ~2 KB, so fewer than for
/// points keeps one answer a modest allocation.
const CHUNK_SERIES: usize = 64;

/// Heroic's message for a read over `dataLimit`.
const QUOTA_EXCEEDED: &str = "Query exceeded quota";

/// The error of a query no backend of this node can answer.
pub fn no_backend_message(node: &Node) -> Option<String> {
    let kind = SampleKind::DISTRIBUTION;
    if node.backends.metrics.iter().any(|b| b.client.stores(kind)) {
        return None;
    }
    let ids: Vec<String> = node.backends.metrics.iter().map(|b| format!("{:?} ({})", b.id, b.plugin)).collect();
    Some(format!(
        "source distributionPoints: no metrics backend of this node can store {} (backends: {}; the local plugin can)",
        kind.name(),
        if ids.is_empty() { "none".to_string() } else { ids.join(", ") }
    ))
}

fn layout_failed(e: QueryError) -> Halt {
    match e {
        QueryError::Layout(m) => Halt::Stopped(RequestError::shard(m)),
        e => Halt::Stopped(RequestError::query(e.to_string())),
    }
}

/// Fetches the samples of `series` from every backend that stores them and
/// folds them into a distribution session.
pub async fn read(
    node: &Node,
    plan: &QueryPlan,
    series: &[Series],
    data_limit: u64,
    ticket: &mut Ticket,
    progress: &mut Progress,
) -> Result<Vec<ResultGroup>, Halt> {
    let mut session =
        DistributionSession::new(&plan.aggregation, plan.range, plan.bucket_strategy).map_err(layout_failed)?;
    let stats = &node.admission.stats;
    let kind = SampleKind::DISTRIBUTION;
    for backend in node.backends.metrics.iter().filter(|b| b.client.stores(kind)) {
        for chunk in series.chunks(CHUNK_SERIES) {
            let request = SampleFetchRequest {
                kind,
                series: chunk.to_vec().into(),
                range: plan.range,
                sample_limit: data_limit.saturating_sub(progress.sample_size).saturating_add(1),
            };
            let started = Instant::now();
            let response = backend.client.fetch_samples(request).await;
            progress.fetches_us.push(started.elapsed().as_micros() as u64);
            let response = response.map_err(|e| {
                tracing::warn!(backend = %backend.id, error = %e, "distribution fetch failed: the query answers no groups");
                Halt::Stopped(RequestError::shard(format!(
                    "Some fetches failed (1) or were cancelled (0), caused by metrics backend {:?}: {e}",
                    backend.id
                )))
            })?;
            let held: u64 = response.series.iter().map(|s| s.samples.len() as u64).sum();
            ticket.retain(session.retained() + held, stats).await?;
            for fetched in response.series.iter() {
                let Some(base) = chunk.get(fetched.request_index as usize) else {
                    return Err(Halt::Stopped(RequestError::shard(format!(
                        "metrics backend {:?} answered for an unknown series",
                        backend.id
                    ))));
                };
                progress.sample_size += fetched.samples.len() as u64;
                if progress.sample_size > data_limit {
                    tracing::info!(data_limit, "query read more distribution samples than dataLimit");
                    return Err(progress.stop(Limit::Quota, QUOTA_EXCEEDED.to_string()));
                }
                let s = if fetched.resource.is_empty() {
                    Cow::Borrowed(base)
                } else {
                    Cow::Owned(Series { resource: fetched.resource.clone(), ..base.clone() })
                };
                session.update(&s, &fetched.samples).map_err(|e| Halt::Stopped(RequestError::shard(e.to_string())))?;
            }
            ticket.retain(session.retained(), stats).await?;
        }
    }
    Ok(session.finish())
}
