//! The ingestion pipeline shared by every consumer plugin.
//!
//! A consumer hands the host a batch of raw messages. The pipeline decodes
//! them with the consumer's [`Schema`], counts and skips (with a logged
//! sample) the ones that do not decode or validate, drops series refused by
//! the node's ingestion filter, groups the rest into one [`SeriesPoints`]
//! per series (and distribution values into one [`SeriesSamples`] per
//! series) and writes them through the node's [`crate::writer::Writer`]
//! (metrics, then new series to metadata and suggest through the write
//! cache). It answers `Ok` only once both writes are durable everywhere.
//! Distribution values that no metric backend can store are dropped and
//! counted (`unstorable`), never retried: no retry could store them. An
//! error says whether a retry can help ([`refused`]): a transient one makes
//! the consumer keep its offsets, back off and retry; a permanent one makes
//! it split the batch to find the messages at fault and dead-letter them.
//!
//! Backpressure: at most `ingestion.max_concurrent_writes` points are being
//! written at once over the whole node; new series are written to metadata
//! and suggest at `ingestion.metadata_rate_limit` per second at most.

pub mod filter;
pub mod samples;
pub mod schema;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use heroic_plugin_api::filter::SeriesMatcher;
use heroic_plugin_api::samples::{SampleKind, SeriesSamples};
use heroic_plugin_api::types::{IngestOutcome, PointBatch, RawMessage, Series, SeriesPoints};
use heroic_plugin_api::{ErrorKind, PluginError, PluginResult, RVec};
use tokio::sync::Semaphore;

use crate::config::IngestionConfig;
use crate::write_cache::WriteCache;
use crate::writer::{WriteError, WriteReport};

pub use filter::compile_filter;
use samples::Distributions;
pub use schema::{InvalidMessage, Metric, Schema, Value};

/// Where the pipeline writes: the node's write path. A trait rather than
/// the node itself, so that ingestion does not depend on the node that owns
/// it (the node implements it).
pub trait WriteTarget: Send + Sync + 'static {
    /// Writes to every backend; resolves once durable everywhere.
    fn write(
        &self,
        batch: Vec<SeriesPoints>,
    ) -> impl std::future::Future<Output = Result<WriteReport, WriteError>> + Send;

    /// Writes samples of `kind` to the metric backends that store it;
    /// resolves once durable everywhere.
    fn write_samples(
        &self,
        kind: SampleKind,
        batch: Vec<SeriesSamples>,
    ) -> impl std::future::Future<Output = Result<WriteReport, WriteError>> + Send;

    /// Whether samples of `kind` can be written: some metric backend
    /// stores them (or the node writes no metrics at all).
    fn stores(&self, kind: SampleKind) -> bool;
}

/// Counters of one consumer's ingestion, for `/status`.
#[derive(Default)]
pub struct IngestStats {
    /// Messages received from the plugin.
    pub messages: AtomicU64,
    /// Messages refused: not decodable (`malformed`) or failing
    /// validation (`invalid`, a bad distribution value among them).
    pub malformed: AtomicU64,
    pub invalid: AtomicU64,
    /// Distribution values (one per metric) dropped because no metric
    /// backend of the node can store them.
    pub unstorable: AtomicU64,
    /// Metrics dropped by the ingestion filter.
    pub filtered: AtomicU64,
    /// Points written durably.
    pub points_written: AtomicU64,
    /// Distribution values written durably.
    pub distributions_written: AtomicU64,
    /// Batches acknowledged to the plugin (`Ok`).
    pub batches_ok: AtomicU64,
    /// Batches refused to the plugin because a backend write failed.
    pub write_errors: AtomicU64,
}

impl IngestStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn decode_errors(&self) -> u64 {
        Self::get(&self.malformed) + Self::get(&self.invalid) + Self::get(&self.unstorable)
    }
}

/// Lets a log line through at most once per interval, counting the rest.
pub struct LogLimiter {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogLimiter {
    pub fn new(interval: Duration) -> Self {
        LogLimiter { interval, state: Mutex::new((None, 0)) }
    }

    /// `Some(suppressed since the last line)` when a line may be logged now.
    pub fn allow(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < self.interval => {
                state.1 += 1;
                None
            }
            _ => {
                let suppressed = state.1;
                *state = (Some(now), 0);
                Some(suppressed)
            }
        }
    }
}

/// A token bucket for new series per second (burst: one second's worth).
struct RateLimiter {
    per_sec: f64,
    state: tokio::sync::Mutex<(f64, Instant)>,
}

impl RateLimiter {
    fn new(per_sec: f64) -> Self {
        RateLimiter { per_sec, state: tokio::sync::Mutex::new((per_sec, Instant::now())) }
    }

    /// Waits until `n` tokens are available and takes them. Callers queue
    /// on the mutex, so they are served in order.
    async fn acquire(&self, n: usize) {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        state.0 = (state.0 + now.duration_since(state.1).as_secs_f64() * self.per_sec).min(self.per_sec.max(1.0));
        state.1 = now;
        state.0 -= n as f64;
        if state.0 < 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(-state.0 / self.per_sec)).await;
        }
    }
}

/// What every consumer of a node shares: the filter and the limits.
pub struct Ingestion {
    filter: Option<SeriesMatcher>,
    permits: Arc<Semaphore>,
    max_permits: usize,
    metadata_limit: Option<(RateLimiter, WriteCache)>,
}

impl Ingestion {
    pub fn new(config: &IngestionConfig) -> Result<Self, String> {
        let filter = config.filter.as_deref().map(compile_filter).transpose()?;
        let max_permits = config.max_concurrent_writes.clamp(1, Semaphore::MAX_PERMITS);
        let metadata_limit = config.metadata_rate_limit.map(|r| {
            let cache =
                WriteCache::new(Duration::from_secs(config.write_cache_ttl_secs), config.write_cache_max_series);
            (RateLimiter::new(r), cache)
        });
        Ok(Ingestion { filter, permits: Arc::new(Semaphore::new(max_permits)), max_permits, metadata_limit })
    }

    /// Whether the ingestion filter lets this series be written (`/write`
    /// drops what it refuses, as consumers do).
    pub fn admits(&self, series: &Series) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(series))
    }
}

/// One consumer's pipeline: its schema, its counters.
pub struct Pipeline {
    pub consumer: String,
    pub schema: Schema,
    pub stats: IngestStats,
    invalid_log: LogLimiter,
    error_log: LogLimiter,
    unstorable_log: LogLimiter,
}

/// Messages of a batch decoded, filtered and grouped by series.
#[derive(Debug, Default)]
pub struct Decoded {
    pub series: Vec<SeriesPoints>,
    pub points: usize,
    pub distributions: Distributions,
    pub written_messages: u64,
    pub invalid: u64,
    pub filtered: u64,
}

impl Pipeline {
    pub fn new(consumer: impl Into<String>, schema: Schema) -> Self {
        Pipeline {
            consumer: consumer.into(),
            schema,
            stats: IngestStats::default(),
            invalid_log: LogLimiter::new(Duration::from_secs(10)),
            error_log: LogLimiter::new(Duration::from_secs(5)),
            unstorable_log: LogLimiter::new(Duration::from_secs(10)),
        }
    }

    /// Decodes a batch; refused messages are counted and a sample logged.
    pub fn decode(&self, batch: &[RawMessage], filter: Option<&SeriesMatcher>) -> Decoded {
        let mut out = Decoded::default();
        let mut index: HashMap<Series, usize> = HashMap::new();
        self.stats.messages.fetch_add(batch.len() as u64, Ordering::Relaxed);
        for message in batch {
            let metrics = match self.schema.decode(message.payload.as_slice()) {
                Ok(m) => m,
                Err(e) => {
                    self.count_invalid(&e, message.payload.as_slice());
                    out.invalid += 1;
                    continue;
                }
            };
            let (mut points, mut distributions) = (0usize, 0usize);
            for Metric { series, time, value } in metrics {
                if filter.is_some_and(|f| !f.matches(&series)) {
                    out.filtered += 1;
                    continue;
                }
                let value = match value {
                    Value::Double(v) => v,
                    Value::Distribution(bytes) => {
                        distributions += 1;
                        out.distributions.push(series, time, &bytes);
                        continue;
                    }
                };
                points += 1;
                let i = *index.entry(series).or_insert_with_key(|s| {
                    out.series.push(SeriesPoints { series: s.clone(), points: PointBatch::new() });
                    out.series.len() - 1
                });
                out.series[i].points.push(time, value);
            }
            out.points += points;
            if points + distributions > 0 {
                out.written_messages += 1;
            }
            if points == 0 && distributions > 0 {
                out.distributions.only_messages += 1;
            }
        }
        self.stats.filtered.fetch_add(out.filtered, Ordering::Relaxed);
        out
    }

    fn count_invalid(&self, e: &InvalidMessage, payload: &[u8]) {
        let counter = match e {
            InvalidMessage::Malformed(_) => &self.stats.malformed,
            InvalidMessage::Invalid(_) => &self.stats.invalid,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(suppressed) = self.invalid_log.allow() {
            let sample = String::from_utf8_lossy(&payload[..payload.len().min(200)]).into_owned();
            tracing::warn!(
                consumer = %self.consumer,
                schema = self.schema.name(),
                reason = e.reason(),
                error = %e,
                sample = %sample,
                similar_suppressed = suppressed,
                "skipping a message that does not decode"
            );
        }
    }

    /// Decodes and writes a batch; `Ok` once every valid message is durable.
    pub async fn ingest(
        &self,
        target: &impl WriteTarget,
        ingestion: &Ingestion,
        batch: RVec<RawMessage>,
    ) -> PluginResult<IngestOutcome> {
        let mut decoded = self.decode(batch.as_slice(), ingestion.filter.as_ref());
        let mut outcome =
            IngestOutcome { written: decoded.written_messages, invalid: decoded.invalid, filtered: decoded.filtered };
        let mut distributions = std::mem::take(&mut decoded.distributions);
        if !distributions.is_empty() && !target.stores(SampleKind::DISTRIBUTION) {
            // Permanent until the node is configured otherwise: retrying
            // would block the partition for nothing, so they are dropped.
            self.drop_unstorable(&distributions);
            // A message of distributions only was skipped, not written: the
            // plugin reports it with the invalid ones (acknowledged, counted).
            outcome.written -= distributions.only_messages;
            outcome.invalid += distributions.only_messages;
            distributions = Distributions::default();
        }
        if decoded.series.is_empty() && distributions.is_empty() {
            self.stats.batches_ok.fetch_add(1, Ordering::Relaxed);
            return Ok(outcome);
        }
        let wanted = (decoded.points + distributions.samples).clamp(1, ingestion.max_permits) as u32;
        let _permit = ingestion
            .permits
            .acquire_many(wanted)
            .await
            .map_err(|_| PluginError::unavailable("the node is shutting down"))?;
        if let Some((limiter, seen)) = &ingestion.metadata_limit {
            let now = Instant::now();
            let new: Vec<&Series> = decoded
                .series
                .iter()
                .map(|sp| &sp.series)
                .chain(distributions.series())
                .filter(|s| !seen.is_fresh(s, now))
                .collect();
            if !new.is_empty() {
                limiter.acquire(new.len()).await;
                seen.remember(new, now, seen.generation());
            }
        }
        let points = decoded.points as u64;
        let samples = distributions.samples as u64;
        match write_both(target, decoded.series, distributions).await {
            Ok(()) => {
                self.stats.points_written.fetch_add(points, Ordering::Relaxed);
                self.stats.distributions_written.fetch_add(samples, Ordering::Relaxed);
                self.stats.batches_ok.fetch_add(1, Ordering::Relaxed);
                Ok(outcome)
            }
            Err(e) => {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                let error = refused(&e);
                if let Some(suppressed) = self.error_log.allow() {
                    let next = if error.is_transient() {
                        "the consumer keeps its offsets and retries later"
                    } else {
                        "a retry cannot help: the consumer isolates the messages at fault"
                    };
                    tracing::warn!(consumer = %self.consumer, kind = %error.kind, error = %e,
                        similar_suppressed = suppressed, "batch not written; {next}");
                }
                Err(error)
            }
        }
    }

    /// Counts and logs (rate-limited) distribution values dropped because
    /// no metric backend stores them.
    fn drop_unstorable(&self, distributions: &Distributions) {
        self.stats.unstorable.fetch_add(distributions.samples as u64, Ordering::Relaxed);
        if let Some(suppressed) = self.unstorable_log.allow() {
            tracing::warn!(
                consumer = %self.consumer,
                kind = SampleKind::DISTRIBUTION.name(),
                dropped = distributions.samples,
                similar_suppressed = suppressed,
                "dropping distribution values: no metrics backend of this node can store them \
                 (configure one with the distributions capability, such as local)"
            );
        }
    }
}

/// Writes the points and the distribution values of a batch in parallel;
/// `Ok` only when both are durable, else every failure of both.
async fn write_both(
    target: &impl WriteTarget,
    points: Vec<SeriesPoints>,
    distributions: Distributions,
) -> Result<(), WriteError> {
    let points = async {
        if points.is_empty() {
            return Ok(());
        }
        target.write(points).await.map(drop)
    };
    let samples = async {
        if distributions.is_empty() {
            return Ok(());
        }
        target.write_samples(SampleKind::DISTRIBUTION, distributions.into_batches()).await.map(drop)
    };
    match tokio::join!(points, samples) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Err(mut a), Err(b)) => {
            a.failures.extend(b.failures);
            Err(a)
        }
    }
}

/// The answer to a consumer whose batch a backend refused, with a kind that
/// says whether retrying the same batch can help.
///
/// - Transient when any failure is: that backend may take the batch later,
///   and a permanent failure elsewhere is found again on the retry, whereas
///   calling the batch poison now would dead-letter messages that only met
///   an outage. It then carries the longest retry hint of the failures.
/// - The first failure's kind when every failure is tied to the data
///   ([`ErrorKind::is_input_specific`]: `INVALID_INPUT`, `PANIC`): the
///   consumer splits the batch to find the messages at fault and
///   dead-letters them instead of retrying.
/// - Otherwise (`INTERNAL`, `CONFIG` …: a broken backend, not a bad
///   message) `UNAVAILABLE`: the consumer backs off and retries, loudly,
///   rather than dead-letter every message while the backend is broken.
pub fn refused(e: &WriteError) -> PluginError {
    let errors = || e.failures.iter().map(|(_, _, pe)| pe);
    let transient = errors().find(|pe| pe.is_transient());
    if transient.is_none() && errors().all(|pe| pe.kind.is_input_specific()) {
        let kind = errors().next().map_or(ErrorKind::INTERNAL, |pe| pe.kind);
        return PluginError::new(kind, e);
    }
    let kind = transient.map_or(ErrorKind::UNAVAILABLE, |pe| pe.kind);
    let error = PluginError::new(kind, e);
    match errors().filter_map(PluginError::retry_after).max() {
        Some(hint) => error.with_retry_after(hint),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> RawMessage {
        RawMessage { payload: s.as_bytes().to_vec().into() }
    }

    fn json(key: &str, host: &str, time: i64, value: f64) -> RawMessage {
        msg(&format!(r#"{{"version":"1.0.0","key":"{key}","host":"{host}","time":{time},"value":{value}}}"#))
    }

    #[test]
    fn groups_by_series_and_skips_invalid() {
        let p = Pipeline::new("c", Schema::Spotify100);
        let batch = vec![json("cpu", "a", 1, 1.0), msg("garbage"), json("cpu", "b", 1, 2.0), json("cpu", "a", 2, 3.0)];
        let d = p.decode(&batch, None);
        assert_eq!((d.points, d.invalid, d.written_messages, d.series.len()), (3, 1, 3, 2));
        assert_eq!(d.series[0].points.timestamps.as_slice(), &[1, 2]);
        assert_eq!(p.stats.decode_errors(), 1);
        assert_eq!(IngestStats::get(&p.stats.messages), 4);
    }

    #[test]
    fn ingestion_filter_drops_other_series() {
        let p = Pipeline::new("c", Schema::Spotify100);
        let filter = compile_filter(r#"host = "a""#).unwrap();
        let d = p.decode(&[json("cpu", "a", 1, 1.0), json("cpu", "b", 1, 2.0)], Some(&filter));
        assert_eq!((d.points, d.filtered), (1, 1));
        assert!(compile_filter("host = ").is_err());
    }

    #[test]
    fn refused_batches_are_transient_when_any_failure_is() {
        let failed = |errors: Vec<PluginError>| WriteError {
            failures: errors.into_iter().enumerate().map(|(i, e)| ("metrics", format!("b{i}"), e)).collect(),
        };
        let poison = || PluginError::invalid_input("row key over the limit");
        let down = |ms| PluginError::unavailable("down").with_retry_after(Duration::from_millis(ms));

        // Only permanent failures: the first one's kind, no hint.
        let e = refused(&failed(vec![poison(), PluginError::new(ErrorKind::PANIC, "boom")]));
        assert_eq!((e.kind, e.retry_after()), (ErrorKind::INVALID_INPUT, None));
        assert!(!e.is_transient());
        let e = refused(&failed(vec![PluginError::new(ErrorKind::PANIC, "boom"), poison()]));
        assert_eq!(e.kind, ErrorKind::PANIC);
        assert!(e.message.contains("b0") && e.message.contains("boom"), "{}", e.message);

        // One transient failure among permanent ones: retry, with the
        // longest hint of all.
        let e = refused(&failed(vec![poison(), down(300), PluginError::timeout("slow"), down(1200)]));
        assert_eq!((e.kind, e.retry_after()), (ErrorKind::UNAVAILABLE, Some(Duration::from_millis(1200))));
        let e = refused(&failed(vec![PluginError::resource_exhausted("quota"), poison()]));
        assert_eq!((e.kind, e.retry_after()), (ErrorKind::RESOURCE_EXHAUSTED, None));

        // A broken backend (no message to blame): retried, never
        // dead-lettered, also next to a message-specific failure.
        let e = refused(&failed(vec![PluginError::internal("bad state")]));
        assert_eq!(e.kind, ErrorKind::UNAVAILABLE);
        assert!(e.message.contains("bad state"), "{}", e.message);
        assert!(refused(&failed(vec![poison(), PluginError::config("no table")])).is_transient());

        // No failure listed (cannot happen): not retried blindly.
        assert_eq!(refused(&failed(Vec::new())).kind, ErrorKind::INTERNAL);
    }

    #[test]
    fn log_limiter_counts_suppressed_lines() {
        let l = LogLimiter::new(Duration::from_secs(60));
        assert_eq!(l.allow(), Some(0));
        assert_eq!(l.allow(), None);
        assert_eq!(l.allow(), None);
    }

    #[tokio::test]
    async fn rate_limiter_spaces_out_new_series() {
        let r = RateLimiter::new(100.0);
        let start = Instant::now();
        r.acquire(100).await; // the burst
        r.acquire(20).await; // 0.2 s more
        assert!(start.elapsed() >= Duration::from_millis(150), "{:?}", start.elapsed());
    }
}
