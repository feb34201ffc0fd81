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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use heroic_plugin_api::client::MetricBackendClient;
use heroic_plugin_api::types::{FetchRequest, FetchResponse, PointBatch, Series, TimeRange};
use heroic_promql::{Labels, RangeSeries, ReadSamples, ReadSeries, Reduction, Sample, Selection};
use warp::http::StatusCode;

use super::selector::{labels_of, Selector};
use crate::backends::Named;
use crate::http::error::ApiError;
use crate::node::Node;
use crate::query::admission::Ticket;
use crate::query::chunker::Chunker;
use crate::query::find_series;

/// Series per fetch call.
const CHUNK: usize = 256;

/// Sizing of the fetch calls when each chunk is reduced as it is read
/// (`Chunker`): the first chunk's series; then as many series as hold
/// about `REDUCED_POINTS` samples (2 MB), whether the series are few and
/// long or many and short. Enough that a chunk is split over the threads
/// of the reduction and the calls are few (at 100,000 short series, 64 a
/// call made 1,563 calls and reductions); little enough that the two
/// chunks held at once stay small (measured at 10,000 series × 864
/// points: chunks of 512 Ki samples were no faster and peaked 50 MB
/// higher).
const REDUCED_FIRST: usize = 64;
const REDUCED_MOST: usize = 8192;
const REDUCED_POINTS: u64 = 128 * 1024;

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
    let mut series = found(node, &selector, range, budget.series).await?;
    if let (Some(reduction), [backend]) = (reduction, node.backends.metrics.as_slice()) {
        // A chunk of series is reduced as soon as it is read when it holds
        // the whole of each of its series: one metric backend (resource
        // variants of one series come in the same answer), and no two
        // series with the same labels. Sorted first, the chunks (and what
        // they reduce to) come in the answer's order.
        series.sort_unstable_by(|a, b| a.1.cmp(&b.1));
        if series.windows(2).all(|w| w[0].1 != w[1].1) {
            let reducing = Reducing::new(reduction, deadline);
            return read_reduced(node, backend, series, range, reducing, budget, ticket).await;
        }
    }
    let mut all = Gathered::default();
    for backend in &node.backends.metrics {
        for chunk in series.chunks(CHUNK) {
            let request = FetchRequest {
                series: chunk.iter().map(|(s, _)| s.clone()).collect::<Vec<Series>>().into(),
                range,
                point_limit: point_limit(budget),
            };
            let response = fetch(backend, request).await?;
            all.add(&response, chunk, &backend.id, budget)?;
            ticket.retain(budget.held(), &node.admission.stats).await?;
        }
    }
    match reduction {
        None => Ok(all.series()),
        Some(reduction) => {
            // Read whole first (a series' samples may come from several
            // answers), then reduced.
            let mut reducing = Reducing::new(reduction, deadline);
            reducing.push_whole(all.series(), budget).await?;
            reducing.finish(budget).await
        }
    }
}

/// [`read`] of series sorted by labels, each once, from one metric
/// backend: each chunk reduced on the blocking pool while the next is read.
/// The series move into the fetch requests and their labels into the
/// values: nothing is copied per series.
async fn read_reduced(
    node: &Node,
    backend: &Named<MetricBackendClient>,
    series: Vec<(Series, Labels)>,
    range: TimeRange,
    mut reducing: Reducing,
    budget: &mut Budget,
    ticket: &mut Ticket,
) -> Result<Vec<RangeSeries>, ReadError> {
    let mut chunker = Chunker::new(REDUCED_FIRST, REDUCED_MOST, REDUCED_POINTS);
    let mut series = series.into_iter();
    let outcome = async {
        loop {
            let len = chunker.next_len(series.len());
            if len == 0 {
                break;
            }
            let (chunk, labels): (Vec<Series>, Vec<Labels>) = series.by_ref().take(len).unzip();
            let request = FetchRequest { series: chunk.into(), range, point_limit: point_limit(budget) };
            let response = fetch(backend, request).await?;
            let points = count_chunk(&response, labels.len(), &backend.id, budget)?;
            chunker.saw(len, points);
            reducing.push(response, labels, budget).await?;
            ticket.retain(budget.held(), &node.admission.stats).await?;
        }
        Ok::<(), ReadError>(())
    }
    .await;
    match outcome {
        Ok(()) => reducing.finish(budget).await,
        Err(e) => {
            reducing.abandon().await;
            Err(e)
        }
    }
}

/// One more sample than the query may still read: reading exactly the
/// limit is fine.
fn point_limit(budget: &Budget) -> u64 {
    budget.samples.saturating_sub(budget.read).saturating_add(1)
}

async fn fetch(backend: &Named<MetricBackendClient>, request: FetchRequest) -> Result<FetchResponse, ApiError> {
    backend.client.fetch(request).await.map_err(|e| {
        tracing::warn!(backend = %backend.id, error = %e, "prometheus query: fetch failed");
        ApiError::unavailable(format!("metrics backend {:?}: {e}", backend.id))
    })
}

/// Counts `points` more samples read against the query's limit.
fn count_read(budget: &mut Budget, points: usize) -> Result<(), ApiError> {
    budget.read += points as u64;
    if budget.read > budget.samples {
        return Err(over_limit(format!(
            "query processing would load too many samples into memory (query.data_limit {})",
            budget.samples
        )));
    }
    Ok(())
}

/// Checks that a fetch whose request held `asked` series answered only
/// those, and counts its points against the query's budget.
fn count_chunk(response: &FetchResponse, asked: usize, backend: &str, budget: &mut Budget) -> Result<u64, ApiError> {
    let mut points = 0;
    for fetched in response.series.iter() {
        if fetched.request_index as usize >= asked {
            return Err(ApiError::internal(format!("metrics backend {backend:?} answered for an unknown series")));
        }
        count_read(budget, fetched.points.len())?;
        points += fetched.points.len() as u64;
    }
    Ok(points)
}

/// The series of one fetch (checked by [`count_chunk`]) whose request held
/// series of `labels`, in that order, those without samples left out:
/// borrowing the answer's columns, or merged when a series was answered
/// more than once (resource variants).
fn read_series(response: &FetchResponse, labels: Vec<Labels>) -> Vec<ReadSeries<'_>> {
    let mut slots: Vec<Option<ReadSamples<'_>>> = labels.iter().map(|_| None).collect();
    let mut merged = Vec::new();
    for fetched in response.series.iter() {
        let p = &fetched.points;
        let Some(slot) = slots.get_mut(fetched.request_index as usize) else { continue };
        // Columns of two lengths (a plugin's bug) hold as many points as
        // the shorter, as zipping them gives.
        let len = p.timestamps.len().min(p.values.len());
        if len == 0 {
            continue;
        }
        match slot {
            None => *slot = Some(ReadSamples::Columns { times: &p.timestamps[..len], values: &p.values[..len] }),
            Some(ReadSamples::Columns { times, values }) => {
                let mut samples = Vec::new();
                append_columns(&mut samples, times, values);
                append_samples(&mut samples, p);
                merged.push(fetched.request_index as usize);
                *slot = Some(ReadSamples::Samples(samples));
            }
            Some(ReadSamples::Samples(samples)) => append_samples(samples, p),
        }
    }
    for index in merged {
        if let Some(Some(ReadSamples::Samples(samples))) = slots.get_mut(index) {
            one_per_timestamp(samples);
        }
    }
    labels
        .into_iter()
        .zip(slots)
        .filter_map(|(labels, samples)| Some(ReadSeries { labels, samples: samples? }))
        .collect()
}

/// Appends a plugin's points to a series' samples.
fn append_samples(samples: &mut Vec<Sample>, points: &PointBatch) {
    append_columns(samples, &points.timestamps, &points.values);
}

fn append_columns(samples: &mut Vec<Sample>, times: &[i64], values: &[f64]) {
    samples.reserve_exact(times.len());
    samples.extend(times.iter().zip(values).map(|(&t, &v)| Sample { t, v }));
}

/// The samples of a series read from several answers (several backends,
/// or resource variants): one a timestamp, the first read.
fn one_per_timestamp(samples: &mut Vec<Sample>) {
    samples.sort_by_key(|s| s.t);
    samples.dedup_by_key(|s| s.t);
}

/// The chunks of one selection reduced on the blocking pool as they are
/// read: each while the next is read, so that about two chunks' samples
/// are held at a time. (Two reductions at once while the next chunk was
/// read were no faster on two cores, and held more.)
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

    /// Starts reducing a chunk (checked by [`count_chunk`]) of series of
    /// `labels` once the chunk before it is reduced. Its samples are read
    /// where the answer holds them, on the blocking pool: nothing is
    /// copied per series on the task that reads the next chunk.
    async fn push(
        &mut self,
        response: FetchResponse,
        labels: Vec<Labels>,
        budget: &mut Budget,
    ) -> Result<(), ReadError> {
        self.collect(budget).await?;
        let (reduction, deadline) = (Arc::clone(&self.reduction), self.deadline);
        self.running = Some(tokio::task::spawn_blocking(move || {
            reduction.reduce_read(read_series(&response, labels), Some(deadline))
        }));
        Ok(())
    }

    /// Starts reducing series read whole (see [`push`](Self::push)).
    async fn push_whole(&mut self, part: Vec<RangeSeries>, budget: &mut Budget) -> Result<(), ReadError> {
        self.collect(budget).await?;
        let (reduction, deadline) = (Arc::clone(&self.reduction), self.deadline);
        self.running = Some(tokio::task::spawn_blocking(move || reduction.reduce(part, Some(deadline))));
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

    /// Every chunk's values, sorted by labels (the chunks came in order).
    async fn finish(mut self, budget: &mut Budget) -> Result<Vec<RangeSeries>, ReadError> {
        self.collect(budget).await?;
        debug_assert!(self.done.is_sorted_by(|a, b| a.labels < b.labels), "chunks reduced out of order");
        Ok(self.done)
    }

    /// After a failure: the chunk being reduced is waited for (at most its
    /// ~128 Ki samples, or the deadline) rather than left busy on the blocking
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
            count_read(budget, fetched.points.len())?;
            let p = &fetched.points;
            *self.sources.entry(labels.clone()).or_default() += 1;
            let samples = self.samples.entry(labels.clone()).or_default();
            append_samples(samples, p);
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
                    one_per_timestamp(&mut samples);
                }
                RangeSeries { labels, samples }
            })
            .collect()
    }
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

#[cfg(test)]
mod tests {
    use heroic_plugin_api::types::FetchedSeries;

    use super::*;

    fn fetched(request_index: u32, points: &[(i64, f64)]) -> FetchedSeries {
        FetchedSeries { request_index, resource: Default::default(), points: PointBatch::from_pairs(points) }
    }

    fn labels(instance: &str) -> Labels {
        Labels::new([("instance".to_string(), instance.to_string())])
    }

    fn budget(samples: u64) -> Budget {
        Budget { series: 100, samples, read: 0, reduced: 0 }
    }

    #[test]
    fn a_chunk_is_read_in_request_order_with_its_variants_merged() {
        let response = FetchResponse {
            series: vec![
                fetched(2, &[(10, 1.0), (30, 3.0)]),
                fetched(0, &[(10, 0.5)]),
                // A resource variant of series 2: merged in time order, the
                // first answer's sample kept at a shared timestamp.
                fetched(2, &[(20, 2.0), (30, 9.0)]),
                fetched(1, &[]),
                // A plugin's bug: columns of two lengths hold the shorter's
                // points, none here: the next answer is b's only one, and
                // is kept as answered (two samples at one time).
                FetchedSeries {
                    request_index: 1,
                    resource: Default::default(),
                    points: PointBatch { timestamps: vec![10, 20].into(), values: Vec::new().into() },
                },
                fetched(1, &[(5, 1.0), (5, 2.0)]),
            ]
            .into(),
            limited: false,
        };
        let mut budget = budget(100);
        let points = count_chunk(&response, 3, "m", &mut budget).unwrap();
        // The odd answer counts its timestamps.
        assert_eq!((points, budget.read), (9, 9));
        let part = read_series(&response, vec![labels("a"), labels("b"), labels("c")]);
        let got: Vec<(Labels, Vec<(i64, f64)>)> = part
            .into_iter()
            .map(|s| {
                let samples = match s.samples {
                    ReadSamples::Columns { times, values } => {
                        times.iter().copied().zip(values.iter().copied()).collect()
                    }
                    ReadSamples::Samples(samples) => samples.iter().map(|s| (s.t, s.v)).collect(),
                };
                (s.labels, samples)
            })
            .collect();
        assert_eq!(
            got,
            [
                (labels("a"), vec![(10, 0.5)]),
                (labels("b"), vec![(5, 1.0), (5, 2.0)]),
                (labels("c"), vec![(10, 1.0), (20, 2.0), (30, 3.0)])
            ],
        );
    }

    #[test]
    fn a_chunk_over_the_limit_or_answering_an_unknown_series_is_refused() {
        let over = FetchResponse { series: vec![fetched(0, &[(1, 1.0), (2, 2.0), (3, 3.0)])].into(), limited: false };
        let Err(e) = count_chunk(&over, 1, "m", &mut budget(2)) else { panic!("over the limit") };
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.message.contains("query.data_limit 2"), "{}", e.message);

        let unknown = FetchResponse { series: vec![fetched(1, &[(1, 1.0)])].into(), limited: false };
        let Err(e) = count_chunk(&unknown, 1, "m", &mut budget(10)) else { panic!("unknown") };
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(e.message.contains("unknown series"), "{}", e.message);
    }
}
