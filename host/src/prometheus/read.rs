//! The points of PromQL selections, read as every query reads: series from
//! the metadata backends, points from every metric backend, through the
//! plugins, within the node's query limits and budget.
//!
//! A selection is held whole (PromQL's functions look at a window of
//! samples, and a range query at every window), except when it is the
//! range of a function such as `rate(m[5m])`: then each chunk of series is
//! reduced to the function's values on the blocking pool while the next
//! chunk is read, and its samples go (`heroic_promql::Reduction`). All the
//! samples read count against `query.data_limit` for the query and against
//! the node's query budget while it runs.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use heroic_plugin_api::types::{FetchRequest, FetchResponse, Series, TimeRange};
use heroic_promql::{Labels, RangeSeries, Reduction, Sample, Selection};
use warp::http::StatusCode;

use super::selector::{labels_of, Selector};
use crate::http::error::ApiError;
use crate::node::Node;
use crate::query::admission::Ticket;
use crate::query::find_series;

/// Series per fetch call.
const CHUNK: usize = 256;

/// Series per fetch call when each chunk is reduced as it is read: fewer,
/// so that less is held at once (two chunks' samples), yet enough that a
/// chunk is split over the threads of the reduction.
const REDUCED_CHUNK: usize = 64;

/// What one query may still read.
pub struct Budget {
    /// Series of one selection at most (`query.series_limit`).
    pub series: u64,
    /// Samples of all selections together at most (`query.data_limit`).
    pub samples: u64,
    /// Samples read so far.
    pub read: u64,
    /// Values the selections read so far were reduced to (held until the
    /// query is evaluated; at most `heroic_promql::MAX_SAMPLES`).
    pub reduced: usize,
}

impl Budget {
    /// What the query holds, or held, for the node's query budget: the
    /// samples read (counted whole, though a reduced chunk's go once
    /// reduced) and the values they were reduced to.
    fn held(&self) -> u64 {
        self.read.saturating_add(self.reduced as u64)
    }
}

/// Prometheus' status for a query that went over a limit (`execution`).
fn over_limit(message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// Why a selection was not read.
pub enum ReadError {
    /// A backend failed or a limit was passed.
    Api(ApiError),
    /// Reducing the series as they were read failed (a limit, the deadline).
    Promql(heroic_promql::Error),
}

impl From<ApiError> for ReadError {
    fn from(e: ApiError) -> ReadError {
        ReadError::Api(e)
    }
}

/// The series of `selection` with their samples in its time range, sorted
/// by labels, each with its samples in time order; with a `reduction`,
/// what it reduces them to instead (see `heroic_promql::Reduction`),
/// stopping at `deadline`.
pub async fn read(
    node: &Node,
    selection: &Selection,
    reduction: Option<&Reduction>,
    deadline: Instant,
    budget: &mut Budget,
    ticket: &mut Ticket,
) -> Result<Vec<RangeSeries>, ReadError> {
    let selector = Selector::new(&selection.matchers);
    // The plugins' ranges are (start, end]; the selection's are inclusive.
    let range = TimeRange::new(selection.first_ms.saturating_sub(1), selection.last_ms);
    let series = found(node, &selector, range, budget.series).await?;
    // A chunk of series is reduced as soon as it is read when it holds the
    // whole of each of its series: one metric backend, and no two series
    // with the same labels (resource variants of one series come in the
    // same answer).
    let mut reducing = reduction
        .filter(|_| node.backends.metrics.len() == 1 && labels_unique(&series))
        .map(|r| Reducing::new(r, deadline));
    let chunk_len = if reducing.is_some() { REDUCED_CHUNK } else { CHUNK };
    let mut all = Gathered::default();
    let outcome = async {
        for backend in &node.backends.metrics {
            for chunk in series.chunks(chunk_len) {
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
                match reducing.as_mut() {
                    None => all.add(&response, chunk, &backend.id, budget)?,
                    Some(reducing) => {
                        let mut part = Gathered::default();
                        part.add(&response, chunk, &backend.id, budget)?;
                        drop(response);
                        reducing.push(part.series(), budget).await?;
                    }
                }
                ticket.retain(budget.held(), &node.admission.stats).await?;
            }
        }
        Ok::<(), ReadError>(())
    }
    .await;
    match (outcome, reducing) {
        (Ok(()), Some(reducing)) => reducing.finish(budget).await,
        (Ok(()), None) => match reduction {
            None => Ok(all.series()),
            Some(reduction) => {
                // Read whole first (a series' samples may come from several
                // answers), then reduced.
                let mut reducing = Reducing::new(reduction, deadline);
                reducing.push(all.series(), budget).await?;
                reducing.finish(budget).await
            }
        },
        (Err(e), Some(reducing)) => {
            reducing.abandon().await;
            Err(e)
        }
        (Err(e), None) => Err(e),
    }
}

/// The chunks of one selection reduced on the blocking pool as they are
/// read: each while the next is read, so that about two chunks' samples
/// are held at a time.
struct Reducing {
    reduction: Arc<Reduction>,
    deadline: Instant,
    /// The chunk being reduced.
    running: Option<tokio::task::JoinHandle<Result<Vec<RangeSeries>, heroic_promql::Error>>>,
    /// What the chunks before it reduced to.
    done: Vec<RangeSeries>,
}

impl Reducing {
    fn new(reduction: &Reduction, deadline: Instant) -> Reducing {
        Reducing { reduction: Arc::new(reduction.clone()), deadline, running: None, done: Vec::new() }
    }

    /// Starts reducing `part` once the chunk before it is reduced.
    async fn push(&mut self, part: Vec<RangeSeries>, budget: &mut Budget) -> Result<(), ReadError> {
        self.collect(budget).await?;
        let (reduction, deadline) = (Arc::clone(&self.reduction), self.deadline);
        self.running = Some(tokio::task::spawn_blocking(move || reduction.reduce(&part, Some(deadline))));
        Ok(())
    }

    /// Waits for the chunk being reduced and keeps its values, counted
    /// against what evaluation may hold (for all selections together:
    /// they are all held until the query is evaluated).
    async fn collect(&mut self, budget: &mut Budget) -> Result<(), ReadError> {
        let Some(running) = self.running.take() else { return Ok(()) };
        let values = running
            .await
            .map_err(|e| ReadError::Api(ApiError::internal(format!("query evaluation failed: {e}"))))?
            .map_err(ReadError::Promql)?;
        budget.reduced = values.iter().fold(budget.reduced, |n, s| n.saturating_add(s.samples.len()));
        if budget.reduced > heroic_promql::MAX_SAMPLES {
            return Err(ReadError::Promql(heroic_promql::Error::TooManySamples { limit: heroic_promql::MAX_SAMPLES }));
        }
        self.done.extend(values);
        Ok(())
    }

    /// Every chunk's values, sorted by labels (each chunk was; the
    /// selection is too).
    async fn finish(mut self, budget: &mut Budget) -> Result<Vec<RangeSeries>, ReadError> {
        self.collect(budget).await?;
        self.done.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(self.done)
    }

    /// After a failure: the chunk being reduced is waited for (at most its
    /// 64 series, or the deadline) rather than left busy on the blocking
    /// pool after the query has given back its slot.
    async fn abandon(self) {
        if let Some(running) = self.running {
            let _ = running.await;
        }
    }
}

/// The samples of the series read so far, by labels.
#[derive(Default)]
struct Gathered {
    samples: BTreeMap<Labels, Vec<Sample>>,
    /// Answers read for each labels (several: more than one backend, or
    /// resource variants of a series).
    sources: BTreeMap<Labels, usize>,
}

impl Gathered {
    /// Adds the points of one fetch of `chunk`, counting them against the
    /// query's budget.
    fn add(
        &mut self,
        response: &FetchResponse,
        chunk: &[(Series, Labels)],
        backend: &str,
        budget: &mut Budget,
    ) -> Result<(), ApiError> {
        for fetched in response.series.iter() {
            // Resource variants of a series are that series (their
            // resource tags are not labels: see `selector`).
            let Some((_, labels)) = chunk.get(fetched.request_index as usize) else {
                return Err(ApiError::internal(format!("metrics backend {backend:?} answered for an unknown series")));
            };
            budget.read += fetched.points.len() as u64;
            if budget.read > budget.samples {
                return Err(over_limit(format!(
                    "query processing would load too many samples into memory (query.data_limit {})",
                    budget.samples
                )));
            }
            let p = &fetched.points;
            *self.sources.entry(labels.clone()).or_default() += 1;
            let samples = self.samples.entry(labels.clone()).or_default();
            samples.reserve_exact(p.len());
            samples.extend(p.timestamps.iter().zip(p.values.iter()).map(|(&t, &v)| Sample { t, v }));
        }
        Ok(())
    }

    /// The series with samples, sorted by labels, each in time order.
    fn series(self) -> Vec<RangeSeries> {
        let sources = self.sources;
        self.samples
            .into_iter()
            .filter(|(_, samples)| !samples.is_empty())
            .map(|(labels, mut samples)| {
                // Several backends (or resource variants) of one series:
                // one sample a timestamp, the first read.
                if sources.get(&labels).copied().unwrap_or(0) > 1 {
                    samples.sort_by_key(|s| s.t);
                    samples.dedup_by_key(|s| s.t);
                }
                RangeSeries { labels, samples }
            })
            .collect()
    }
}

/// Whether no two of `series` have the same labels.
fn labels_unique(series: &[(Series, Labels)]) -> bool {
    let mut seen = HashSet::with_capacity(series.len());
    series.iter().all(|(_, labels)| seen.insert(labels))
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
