//! Reads samples other than points for a query: `distributionPoints` and
//! `tdigestPoints` (raw, or `tdigest` merging them per bucket, see
//! `heroic_query::distribution`) and `spreads` (folded by the aggregation
//! session like points).
//!
//! Only the metric backends that declare the kind's capability
//! (`DISTRIBUTIONS`, `TDIGESTS`, `SPREADS`) are read: the write path stores the kind in
//! those alone. When no backend of the node declares it, the query is
//! answered on its own with an error saying so; the other queries of a
//! batch are unaffected.

use std::borrow::Cow;
use std::time::Instant;

use heroic_plugin_api::samples::{SampleBatch, SampleFetchRequest, SampleKind, Spread};
use heroic_plugin_api::types::Series;
use heroic_query::distribution::DistributionSession;
use heroic_query::request::Source;
use heroic_query::{AggregationSession, QueryError, QueryPlan, ResultGroup, SpreadValue};

use super::admission::Ticket;
use super::outcome::{FetchKind, Halt, Limit, Progress, RequestError};
use crate::node::Node;

/// Series per `fetch_samples` call: a sketch is ~2 KB, so fewer than for
/// points keeps one answer a modest allocation.
const CHUNK_SERIES: usize = 64;

/// Heroic's message for a read over `dataLimit`.
const QUOTA_EXCEEDED: &str = "Query exceeded quota";

/// The sample kind a source reads, if it is one read through
/// `fetch_samples`.
pub fn kind_of(source: Source) -> Option<SampleKind> {
    match source {
        Source::DistributionPoints => Some(SampleKind::DISTRIBUTION),
        Source::TdigestPoints => Some(SampleKind::TDIGEST),
        Source::Spreads => Some(SampleKind::SPREAD),
        _ => None,
    }
}

/// The error of a query no backend of this node can answer.
pub fn no_backend_message(node: &Node, kind: SampleKind) -> Option<String> {
    if node.backends.metrics.iter().any(|b| b.client.stores(kind)) {
        return None;
    }
    let ids: Vec<String> = node.backends.metrics.iter().map(|b| format!("{:?} ({})", b.id, b.plugin)).collect();
    Some(format!(
        "source {name}: no metrics backend of this node can store {name} (backends: {}; the local plugin can)",
        if ids.is_empty() { "none".to_string() } else { ids.join(", ") },
        name = kind.name(),
    ))
}

fn layout_failed(e: QueryError) -> Halt {
    match e {
        QueryError::Layout(m) => Halt::Stopped(RequestError::shard(m)),
        e => Halt::Stopped(RequestError::query(e.to_string())),
    }
}

/// What the fetched samples are folded into.
trait Fold {
    /// What it keeps, counted against the node's budget.
    fn retained(&self) -> u64;
    /// Folds the samples of one series.
    fn update(&mut self, series: &Series, samples: &SampleBatch) -> Result<(), Halt>;
}

impl Fold for DistributionSession {
    fn retained(&self) -> u64 {
        DistributionSession::retained(self)
    }

    fn update(&mut self, series: &Series, samples: &SampleBatch) -> Result<(), Halt> {
        DistributionSession::update(self, series, samples)
            .map_err(|e| Halt::Stopped(RequestError::shard(e.to_string())))
    }
}

/// Spreads decoded into a buffer reused for every series, then folded by
/// the aggregation session.
struct SpreadFold<'a> {
    session: &'a mut AggregationSession,
    decoded: Vec<(i64, SpreadValue)>,
    /// The session's error that stopped the read, mapped by the caller
    /// (it needs the query's progress, which the read holds).
    failed: Option<QueryError>,
}

impl Fold for SpreadFold<'_> {
    fn retained(&self) -> u64 {
        self.session.retained()
    }

    fn update(&mut self, series: &Series, samples: &SampleBatch) -> Result<(), Halt> {
        self.decoded.clear();
        for (t, bytes) in samples.iter() {
            // A backend answering bytes that are not a spread is broken:
            // this shard's answer cannot be trusted.
            let s = Spread::decode(bytes).ok_or_else(|| {
                Halt::Stopped(RequestError::shard(format!(
                    "series {:?}: a stored spread has {} bytes, not {}",
                    series.key,
                    bytes.len(),
                    Spread::ENCODED_LEN
                )))
            })?;
            self.decoded.push((t, SpreadValue { count: s.count, sum: s.sum, sum2: s.sum2, min: s.min, max: s.max }));
        }
        self.session.update_spreads(series, &self.decoded).map_err(|e| {
            self.failed = Some(e);
            Halt::Stopped(RequestError::query("aggregation session failed"))
        })
    }
}

/// Reads sketches (`distributionPoints` or `tdigestPoints`, as `kind`
/// says) into a distribution session.
pub async fn read_sketches(
    node: &Node,
    plan: &QueryPlan,
    kind: SampleKind,
    series: &[Series],
    data_limit: u64,
    ticket: &mut Ticket,
    progress: &mut Progress,
) -> Result<Vec<ResultGroup>, Halt> {
    let mut session = DistributionSession::new(&plan.aggregation, plan.range, plan.bucket_strategy)
        .map_err(layout_failed)?
        .reading(kind);
    let budget = ReadBudget { data_limit, ticket, progress };
    fetch_into(node, plan, kind, series, budget, &mut session).await?;
    Ok(session.finish())
}

/// Why reading spreads stopped.
pub enum SpreadsStopped {
    /// A limit, a failed fetch or the node's budget.
    Halt(Halt),
    /// The aggregation session refused the data (`aggregationLimit` …).
    Session(QueryError),
}

/// Reads `spreads` into the query's aggregation session (set up by the
/// caller, which finishes it).
pub async fn read_spreads(
    node: &Node,
    plan: &QueryPlan,
    series: &[Series],
    budget: ReadBudget<'_>,
    session: &mut AggregationSession,
) -> Result<(), SpreadsStopped> {
    let mut fold = SpreadFold { session, decoded: Vec::new(), failed: None };
    let read = fetch_into(node, plan, SampleKind::SPREAD, series, budget, &mut fold).await;
    match (read, fold.failed) {
        (_, Some(e)) => Err(SpreadsStopped::Session(e)),
        (Err(halt), None) => Err(SpreadsStopped::Halt(halt)),
        (Ok(()), None) => Ok(()),
    }
}

/// The limits a read counts against.
pub struct ReadBudget<'a> {
    pub data_limit: u64,
    pub ticket: &'a mut Ticket,
    pub progress: &'a mut Progress,
}

/// Fetches the samples of `kind` of `series` from every backend that
/// stores them, a chunk of series at a time, and folds them.
async fn fetch_into(
    node: &Node,
    plan: &QueryPlan,
    kind: SampleKind,
    series: &[Series],
    budget: ReadBudget<'_>,
    fold: &mut (dyn Fold + Send),
) -> Result<(), Halt> {
    let ReadBudget { data_limit, ticket, progress } = budget;
    let stats = &node.admission.stats;
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
            progress.fetches_us.push((FetchKind::Samples, started.elapsed().as_micros() as u64));
            let response = response.map_err(|e| {
                tracing::warn!(backend = %backend.id, kind = kind.name(), error = %e, "sample fetch failed: the query answers no groups");
                Halt::Stopped(RequestError::shard(format!(
                    "Some fetches failed (1) or were cancelled (0), caused by metrics backend {:?}: {e}",
                    backend.id
                )))
            })?;
            let held: u64 = response.series.iter().map(|s| s.samples.len() as u64).sum();
            ticket.retain(fold.retained() + held, stats).await?;
            for fetched in response.series.iter() {
                let Some(base) = chunk.get(fetched.request_index as usize) else {
                    return Err(Halt::Stopped(RequestError::shard(format!(
                        "metrics backend {:?} answered for an unknown series",
                        backend.id
                    ))));
                };
                if let Err(e) = fetched.samples.validate() {
                    return Err(Halt::Stopped(RequestError::shard(format!(
                        "metrics backend {:?} answered a malformed sample batch: {e}",
                        backend.id
                    ))));
                }
                progress.sample_size += fetched.samples.len() as u64;
                if progress.sample_size > data_limit {
                    tracing::info!(data_limit, kind = kind.name(), "query read more samples than dataLimit");
                    return Err(progress.stop(Limit::Quota, QUOTA_EXCEEDED.to_string()));
                }
                let s = if fetched.resource.is_empty() {
                    Cow::Borrowed(base)
                } else {
                    Cow::Owned(Series { resource: fetched.resource.clone(), ..base.clone() })
                };
                fold.update(&s, &fetched.samples)?;
            }
            ticket.retain(fold.retained(), stats).await?;
        }
    }
    Ok(())
}
