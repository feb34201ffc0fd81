//! Reading points through a plugin's `fetch_buckets` (interface 1.3): the
//! plugin folds the points of each group into per-bucket partials and only
//! those cross the boundary (see `heroic_plugin_api::buckets` and
//! `heroic_query::aggregation::pushdown`). Used for every metric backend
//! that declares `FETCH_BUCKETS` when the query's aggregation can be
//! pushed down; the others are read point by point.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Instant;

use abi_stable::std_types::{RString, RVec};
use heroic_plugin_api::buckets::BucketFetchRequest;
use heroic_plugin_api::client::MetricBackendClient;
use heroic_plugin_api::types::Series;
use heroic_query::{AggregationSession, GroupKey, Pushdown, QueryPlan};

use super::admission::Ticket;
use super::outcome::{FetchKind, Halt, Limit, Progress, RequestError};
use super::{session_failed, while_reading, QUOTA_EXCEEDED};
use crate::backends::Named;
use crate::node::Node;

/// Cells (groups × buckets) of one call at most: the partials of a call
/// are held whole, so a query grouped by a tag with many values is split
/// into several calls.
const MAX_CELLS: usize = 1 << 21;

/// Series of one call at most.
const MAX_SERIES: usize = 50_000;

/// One call's series (a range of the query's), with the group of each.
struct Chunk {
    series: Range<usize>,
    groups: Vec<u32>,
    keys: Vec<GroupKey>,
}

/// Splits `series` into calls of at most [`MAX_SERIES`] series and
/// [`MAX_CELLS`] cells.
fn chunks(pushdown: &Pushdown, series: &[Series]) -> Vec<Chunk> {
    let buckets = pushdown.layout.count().max(1);
    let max_groups = (MAX_CELLS / buckets).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    while start < series.len() {
        let mut index: HashMap<GroupKey, u32> = HashMap::new();
        let (mut groups, mut keys) = (Vec::new(), Vec::new());
        let mut end = start;
        while end < series.len() && end - start < MAX_SERIES {
            let key = pushdown.group_of(&series[end]);
            let next = index.len() as u32;
            let g = match index.get(&key) {
                Some(g) => *g,
                None if index.len() < max_groups => {
                    index.insert(key.clone(), next);
                    keys.push(key);
                    next
                }
                None => break,
            };
            groups.push(g);
            end += 1;
        }
        out.push(Chunk { series: start..end, groups, keys });
        start = end;
    }
    out
}

/// Reads the points of `series` from `backend` folded into `session`.
///
/// With `last` (no backend reads `series` after this one), the series that
/// had data are moved into their groups instead of copied: each copy is a
/// dozen small allocations, and at 10,000 series that was a tenth of the
/// query.
#[allow(clippy::too_many_arguments)]
pub(super) async fn read(
    node: &Node,
    backend: &Named<MetricBackendClient>,
    pushdown: &Pushdown,
    plan: &QueryPlan,
    series: &mut [Series],
    last: bool,
    data_limit: u64,
    ticket: &mut Ticket,
    progress: &mut Progress,
    session: &mut AggregationSession,
) -> Result<(), Halt> {
    let stats = &node.admission.stats;
    for chunk in chunks(pushdown, series) {
        let chunk_series = &mut series[chunk.series.clone()];
        let request = BucketFetchRequest {
            series: chunk_series.to_vec().into(),
            groups: chunk.groups.clone().into(),
            group_count: chunk.keys.len() as u32,
            range: plan.range,
            layout: pushdown.layout,
            fields: pushdown.fields,
            // One more than allowed, so that reading exactly the limit is not a violation.
            point_limit: data_limit.saturating_sub(progress.sample_size).saturating_add(1),
        };
        let cells = request.cells() as u64;
        let started = Instant::now();
        let response = backend.client.fetch_buckets(request).await;
        progress.fetches_us.push((FetchKind::Buckets, started.elapsed().as_micros() as u64));
        let response = response.map_err(|e| {
            tracing::warn!(backend = %backend.id, error = %e, "bucket fetch failed: the query answers no groups");
            Halt::Stopped(RequestError::shard(format!(
                "Some fetches failed (1) or were cancelled (0), caused by metrics backend {:?}: {e}",
                backend.id
            )))
        })?;
        progress.sample_size += response.points;
        if progress.sample_size > data_limit {
            tracing::info!(data_limit, "query read more points than dataLimit");
            return Err(progress.stop(Limit::Quota, QUOTA_EXCEEDED.to_string()));
        }
        ticket.retain(session.retained() + cells, stats).await?;
        let mut members: Vec<Vec<Series>> = vec![Vec::new(); chunk.keys.len()];
        for &i in response.series_with_data.iter() {
            let (Some(&g), Some(s)) = (chunk.groups.get(i as usize), chunk_series.get_mut(i as usize)) else {
                return Err(Halt::Stopped(RequestError::shard(format!(
                    "metrics backend {:?} answered for an unknown series",
                    backend.id
                ))));
            };
            let s = match last {
                true => std::mem::replace(s, Series { key: RString::new(), tags: RVec::new(), resource: RVec::new() }),
                false => s.clone(),
            };
            members[g as usize].push(s);
        }
        for (g, (key, series)) in chunk.keys.iter().zip(members).enumerate() {
            session
                .update_partials(key, series, &response.partials, g)
                .map_err(|e| session_failed(progress, e, while_reading))?;
        }
        drop(response);
        ticket.retain(session.retained(), stats).await?;
    }
    Ok(())
}
