//! The SDK backends: the engine behind Heroic's metric, metadata and suggest
//! traits. The engine is synchronous (it fsyncs), so every call runs on the
//! plugin runtime's blocking pool instead of stalling its async workers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use heroic_plugin_api::abi_stable::std_types::RVec;
use heroic_plugin_api::buckets::{BucketFetchRequest, BucketFetchResponse};
use heroic_plugin_api::error::{PluginError, PluginResult};
use heroic_plugin_api::samples::*;
use heroic_plugin_api::sdk::support::statistic;
use heroic_plugin_api::sdk::{runtime, MetadataBackend, MetricBackend, Query, SuggestBackend};
use heroic_plugin_api::types::*;
use serde::Deserialize;

use crate::error::Error;
use crate::fold::SmallRead;
use crate::metadata::MetadataStore;
use crate::metrics::{Leader, MetricOptions, MetricStore};
use crate::samples::SampleStore;
use crate::suggest::{SuggestOptions, SuggestStore};

/// How long a writer refused for a full disk, a failed log or a full head
/// should wait: the background thread retries every second.
const RETRY_AFTER: Duration = Duration::from_secs(1);

fn plugin_error(e: Error) -> PluginError {
    match &e {
        Error::InvalidInput(_) | Error::Filter(_) => PluginError::invalid_input(e),
        // Config, not Unavailable: retrying does not help while the other
        // process runs; an operator has to stop it or change `data_dir`.
        Error::Locked { .. } => PluginError::config(e),
        Error::LogFailed { storage_full: true, .. } | Error::Busy { .. } => {
            PluginError::resource_exhausted(e).with_retry_after(RETRY_AFTER)
        }
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
            PluginError::resource_exhausted(e).with_retry_after(RETRY_AFTER)
        }
        // A failed write or fsync, a read-only or vanished disk: the store
        // recovers by itself once the disk is back.
        Error::LogFailed { .. } | Error::Io { .. } => PluginError::unavailable(e).with_retry_after(RETRY_AFTER),
        Error::Corrupt { .. } | Error::Codec(_) => PluginError::internal(e),
    }
}

/// Health from a store's own account of what stops it taking writes.
/// Unhealthy with `trouble` (writes fail); else healthy, with `warning`
/// as its message when something degrades without failing a call (a log
/// that cannot be compacted).
fn health_of(trouble: Option<String>, warning: Option<String>) -> Health {
    match (trouble, warning) {
        (Some(t), _) => Health::unhealthy(t),
        (None, Some(w)) => Health { message: w.into(), ..Health::healthy() },
        (None, None) => Health::healthy(),
    }
}

/// Runs blocking engine work off the async workers.
/// Runs `f` on the calling task: for work held in memory that takes
/// microseconds, where a hop to the blocking pool and back (two thread
/// wake-ups) would cost more than the work.
fn inline<T>(f: impl FnOnce() -> crate::Result<T>) -> PluginResult<T> {
    f().map_err(plugin_error)
}

/// A fetch of at most this many series runs on the calling task (its
/// blocks are few, and mostly in the decoded-block cache).
const INLINE_FETCH_SERIES: usize = 4;

/// Starts the leader of a log's queued writes on the blocking pool, where
/// it may wait for fsyncs (see `log/queued.rs`). Should the pool refuse it
/// (shutting down), dropping the leader runs it here.
fn lead(leader: Leader) {
    drop(runtime().spawn_blocking(move || leader.run()));
}

/// A write to a registry (metadata or suggest, which may share it): the
/// fsync awaited, or on a blocking thread when the registry asks for it.
async fn write_registry(store: &Arc<MetadataStore>, series: RVec<Series>) -> PluginResult<()> {
    match store.write_queued(&series, lead).await {
        Some(r) => r.map(|_| ()).map_err(plugin_error),
        None => {
            let store = store.clone();
            blocking(move || store.write(&series).map(|_| ())).await
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> crate::Result<T> + Send + 'static) -> PluginResult<T> {
    match runtime().spawn_blocking(f).await {
        Ok(r) => r.map_err(plugin_error),
        Err(e) => Err(PluginError::internal(format_args!("local storage task failed: {e}"))),
    }
}

/// Config of the `local` metric backend.
#[derive(Deserialize, Debug, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Directory of the write-ahead log, series catalog and segment files.
    pub data_dir: PathBuf,
    /// Flush the in-memory head to a segment once it holds this many points.
    pub flush_points: usize,
    /// Flush the head at least this often, in seconds (bounds WAL replay at start).
    pub flush_interval_seconds: u64,
    /// Flush the head once nothing has been written for this many seconds,
    /// if it holds at least `block_points` points, so that disk use settles
    /// soon after ingest pauses; 0 turns it off.
    pub flush_idle_seconds: u64,
    /// Points per compressed block at most (bigger compresses better, smaller reads less).
    pub block_points: usize,
    /// Points per write-ahead log record at most; larger writes are split.
    pub max_record_points: usize,
    /// Merge all segments into one when there are more than this many.
    pub compact_segments: usize,
    /// Refuse writes (503 with Retry-After; consumers pause) while more
    /// points than this wait in memory to be flushed, because flushing fell
    /// behind or fails (a full disk). Bounds memory and write-ahead log size.
    pub head_limit_points: usize,
    /// A write that finds more than `head_limit_points` waiting because
    /// flushing is behind (not failing) waits up to this many seconds for
    /// the flush to make room before it is refused: backpressure slows a
    /// fast writer instead of failing it. 0 refuses at once.
    pub head_full_wait_seconds: u64,
    /// Memory for decoded blocks that reads keep for the next read, in MiB
    /// (0 turns the cache off). Default: a tenth of the memory the process
    /// may use (its container's limit, else the machine's), between 32 MiB
    /// and 4 GiB. Decoded blocks are compact (regular timestamps and
    /// 2-decimal gauges take ~4 bytes a point): 1 GiB holds ~250 M points.
    pub block_cache_mb: Option<u64>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        let o = MetricOptions::default();
        MetricsConfig {
            data_dir: PathBuf::from("./data/metrics"),
            flush_points: o.flush_points,
            flush_interval_seconds: o.flush_interval.as_secs(),
            flush_idle_seconds: o.flush_idle.as_secs(),
            block_points: o.block_points,
            max_record_points: o.max_record_points,
            compact_segments: o.compact_segments,
            head_limit_points: o.head_limit_points,
            head_full_wait_seconds: 10,
            block_cache_mb: None,
        }
    }
}

pub struct LocalMetrics {
    store: Arc<MetricStore>,
    /// Distribution points, in `<data_dir>/distributions` (covered by the
    /// metric store's directory lock).
    distributions: Arc<SampleStore>,
    /// Spreads, in `<data_dir>/spreads`.
    spreads: Arc<SampleStore>,
    /// T-digest points, in `<data_dir>/tdigests`.
    tdigests: Arc<SampleStore>,
    /// See [`MetricsConfig::head_full_wait_seconds`].
    head_full_wait: Duration,
}

impl LocalMetrics {
    /// The store of samples of `kind`, or the error for a kind not stored.
    fn samples(&self, kind: SampleKind, operation: &str) -> PluginResult<Arc<SampleStore>> {
        match kind {
            SampleKind::DISTRIBUTION => Ok(self.distributions.clone()),
            SampleKind::SPREAD => Ok(self.spreads.clone()),
            SampleKind::TDIGEST => Ok(self.tdigests.clone()),
            _ => Err(PluginError::unsupported(&format!("{operation} of {}", kind.name()))),
        }
    }
}

impl MetricBackend for LocalMetrics {
    type Config = MetricsConfig;

    async fn create(c: MetricsConfig) -> PluginResult<Self> {
        if c.block_points == 0 || c.max_record_points == 0 || c.flush_points == 0 || c.flush_interval_seconds == 0 {
            return Err(PluginError::config(
                "flush_points, flush_interval_seconds, block_points and max_record_points must be positive",
            ));
        }
        if c.head_limit_points < c.flush_points {
            return Err(PluginError::config(format_args!(
                "head_limit_points ({}) must be at least flush_points ({})",
                c.head_limit_points, c.flush_points
            )));
        }
        let opts = MetricOptions {
            flush_points: c.flush_points,
            flush_interval: Duration::from_secs(c.flush_interval_seconds),
            flush_idle: Duration::from_secs(c.flush_idle_seconds),
            block_points: c.block_points,
            max_record_points: c.max_record_points,
            compact_segments: c.compact_segments,
            head_limit_points: c.head_limit_points,
            background_flush: true,
            block_cache_bytes: c
                .block_cache_mb
                .map_or_else(crate::memory::default_block_cache_bytes, |mb| mb.saturating_mul(1 << 20)),
        };
        tracing::info!(data_dir = %c.data_dir.display(), block_cache_mb = opts.block_cache_bytes >> 20,
            configured = c.block_cache_mb.is_some(), "decoded-block cache");
        let head_full_wait = Duration::from_secs(c.head_full_wait_seconds);
        let (store, distributions, spreads, tdigests) = blocking(move || {
            // The points store first: it takes the directory's lock.
            let store = MetricStore::open(&c.data_dir, opts)?;
            let distributions =
                SampleStore::open(&c.data_dir.join("distributions"), SampleKind::DISTRIBUTION.name(), None)?;
            let spreads =
                SampleStore::open(&c.data_dir.join("spreads"), SampleKind::SPREAD.name(), Some(Spread::ENCODED_LEN))?;
            let tdigests = SampleStore::open(&c.data_dir.join("tdigests"), SampleKind::TDIGEST.name(), None)?;
            Ok((store, distributions, spreads, tdigests))
        })
        .await?;
        Ok(LocalMetrics {
            store: Arc::new(store),
            distributions: Arc::new(distributions),
            spreads: Arc::new(spreads),
            tdigests: Arc::new(tdigests),
            head_full_wait,
        })
    }

    async fn write(&self, batch: RVec<SeriesPoints>) -> PluginResult<()> {
        let mut deadline = None;
        loop {
            // The fsync is awaited, not waited for on a blocking thread.
            let Some(written) = self.store.write_queued(&batch, lead).await else {
                let store = self.store.clone();
                return blocking(move || store.write(&batch)).await;
            };
            match written {
                // Backpressure: refused, with nothing written, only because
                // the background flush is behind (not failing); wait up to
                // `head_full_wait` for it to make room, then write again.
                Err(Error::Busy { cause: None, .. })
                    if *deadline.get_or_insert_with(|| tokio::time::Instant::now() + self.head_full_wait)
                        > tokio::time::Instant::now() =>
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                written => return written.map_err(plugin_error),
            }
        }
    }

    async fn fetch(&self, request: FetchRequest) -> PluginResult<FetchResponse> {
        if request.series.len() <= INLINE_FETCH_SERIES {
            return inline(|| self.store.fetch(&request));
        }
        let store = self.store.clone();
        blocking(move || store.fetch(&request)).await
    }

    fn capabilities(&self) -> MetricCapabilities {
        MetricCapabilities::LIST_SERIES
            | MetricCapabilities::DELETE_POINTS
            | MetricCapabilities::COUNT_POINTS
            | MetricCapabilities::DISTRIBUTIONS
            | MetricCapabilities::SPREADS
            | MetricCapabilities::TDIGESTS
            | MetricCapabilities::FETCH_BUCKETS
    }

    async fn fetch_buckets(&self, request: BucketFetchRequest) -> PluginResult<BucketFetchResponse> {
        request.validate().map_err(PluginError::invalid_input)?;
        let store = self.store.clone();
        match inline(|| self.store.fetch_buckets_if_small(&request))? {
            SmallRead::Done(answer) => Ok(answer),
            SmallRead::Planned(plans) => blocking(move || store.fold_planned(&request, plans)).await,
            SmallRead::NotSmall => blocking(move || store.fetch_buckets(&request)).await,
        }
    }

    async fn write_samples(&self, kind: SampleKind, batch: RVec<SeriesSamples>) -> PluginResult<()> {
        let store = self.samples(kind, "write_samples")?;
        blocking(move || store.write(&batch)).await
    }

    async fn fetch_samples(&self, request: SampleFetchRequest) -> PluginResult<SampleFetchResponse> {
        let store = self.samples(request.kind, "fetch_samples")?;
        blocking(move || Ok(store.fetch(&request.series, request.range, request.sample_limit))).await
    }

    async fn list_series(&self, cursor: Option<String>, limit: u64) -> PluginResult<SeriesListPage> {
        let store = self.store.clone();
        blocking(move || store.list_series(cursor.as_deref(), limit as usize)).await
    }

    async fn delete_points(&self, series: RVec<Series>, range: TimeRange) -> PluginResult<u64> {
        let store = self.store.clone();
        blocking(move || store.delete_range(&series, range)).await
    }

    async fn count_points(&self, series: RVec<Series>, range: TimeRange) -> PluginResult<u64> {
        let store = self.store.clone();
        blocking(move || series.iter().map(|s| store.count(s, range)).sum()).await
    }

    async fn shutdown(&self) -> PluginResult<()> {
        let store = self.store.clone();
        blocking(move || store.flush()).await
    }

    fn health(&self) -> Health {
        let samples = [&self.distributions, &self.spreads, &self.tdigests];
        health_of(self.store.trouble().or_else(|| samples.iter().find_map(|s| s.trouble())), self.store.warning())
    }

    fn statistics(&self) -> Vec<Statistic> {
        let s = self.store.stats();
        vec![
            statistic("series", s.series as f64),
            statistic("head-points", s.head_points as f64),
            statistic("segments", s.segments as f64),
            statistic("blocks", s.blocks as f64),
            statistic("block-points", s.block_points as f64),
            statistic("segment-bytes", s.segment_bytes as f64),
            statistic("block-cache-hits", s.cache_hits as f64),
            statistic("block-cache-misses", s.cache_misses as f64),
            statistic("block-cache-bytes", s.cache_bytes as f64),
            statistic("distribution-series", self.distributions.series() as f64),
            statistic("spread-series", self.spreads.series() as f64),
            statistic("tdigest-series", self.tdigests.series() as f64),
        ]
    }
}

/// Config of the `local` metadata backend.
#[derive(Deserialize, Debug, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct MetadataConfig {
    /// Directory of the series registry. A suggest backend of this plugin
    /// given the same directory shares the registry: one copy of each
    /// series, one sync a write for both.
    pub data_dir: PathBuf,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig { data_dir: PathBuf::from("./data/metadata") }
    }
}

pub struct LocalMetadata {
    store: Arc<MetadataStore>,
}

impl MetadataBackend for LocalMetadata {
    type Config = MetadataConfig;

    async fn create(c: MetadataConfig) -> PluginResult<Self> {
        let store = blocking(move || MetadataStore::open_shared(&c.data_dir)).await?;
        Ok(LocalMetadata { store })
    }

    async fn write(&self, series: RVec<Series>) -> PluginResult<()> {
        write_registry(&self.store, series).await
    }

    async fn find_series(&self, q: Query) -> PluginResult<SeriesPage> {
        // The index is in memory.
        inline(|| self.store.find_series(&q.filter, q.limit))
    }

    async fn count_series(&self, q: Query) -> PluginResult<CountResult> {
        inline(|| self.store.count_series(&q.filter, q.limit))
    }

    fn capabilities(&self) -> MetadataCapabilities {
        MetadataCapabilities::REGEX | MetadataCapabilities::DELETE_SERIES
    }

    async fn delete_series(&self, q: Query) -> PluginResult<DeleteResult> {
        let store = self.store.clone();
        blocking(move || store.delete_series(&q.filter, q.limit)).await
    }

    async fn find_keys(&self, q: Query) -> PluginResult<KeysPage> {
        let store = self.store.clone();
        blocking(move || store.find_keys(&q.filter, q.limit)).await
    }

    async fn find_tags(&self, q: Query) -> PluginResult<TagsPage> {
        let store = self.store.clone();
        blocking(move || store.find_tags(&q.filter, q.limit)).await
    }

    fn health(&self) -> Health {
        health_of(self.store.trouble(), self.store.warning())
    }

    fn statistics(&self) -> Vec<Statistic> {
        vec![statistic("series", self.store.len() as f64)]
    }
}

/// Config of the `local` suggest backend.
#[derive(Deserialize, Debug, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct SuggestConfig {
    /// Directory of the suggest registry; the metadata backend's
    /// `data_dir` to share its registry (see `MetadataConfig::data_dir`).
    pub data_dir: PathBuf,
    /// Suggestions returned when a request gives no limit.
    pub default_limit: usize,
    /// Suggestions returned at most, whatever a request asks for.
    pub max_limit: usize,
}

impl Default for SuggestConfig {
    fn default() -> Self {
        let o = SuggestOptions::default();
        SuggestConfig {
            data_dir: PathBuf::from("./data/suggest"),
            default_limit: o.default_limit,
            max_limit: o.max_limit,
        }
    }
}

pub struct LocalSuggest {
    store: Arc<SuggestStore>,
}

impl SuggestBackend for LocalSuggest {
    type Config = SuggestConfig;

    async fn create(c: SuggestConfig) -> PluginResult<Self> {
        let opts = SuggestOptions { default_limit: c.default_limit, max_limit: c.max_limit };
        let store = blocking(move || SuggestStore::open_shared(&c.data_dir, opts)).await?;
        Ok(LocalSuggest { store: Arc::new(store) })
    }

    async fn write(&self, series: RVec<Series>) -> PluginResult<()> {
        write_registry(&self.store.store, series).await
    }

    async fn key_suggest(&self, q: Query, key: Option<String>) -> PluginResult<Vec<KeySuggestion>> {
        let store = self.store.clone();
        blocking(move || store.key_suggest(&q.filter, key.as_deref(), q.limit)).await
    }

    async fn tag_suggest(
        &self,
        q: Query,
        key: Option<String>,
        value: Option<String>,
    ) -> PluginResult<Vec<TagSuggestion>> {
        let store = self.store.clone();
        blocking(move || store.tag_suggest(&q.filter, key.as_deref(), value.as_deref(), q.limit)).await
    }

    async fn tag_value_suggest(&self, q: Query, key: String) -> PluginResult<TagValueSuggestion> {
        let store = self.store.clone();
        blocking(move || store.tag_value_suggest(&q.filter, &key, q.limit)).await
    }

    async fn tag_values_suggest(
        &self,
        q: Query,
        exclude: Vec<String>,
        group_limit: u64,
    ) -> PluginResult<TagValuesSuggestion> {
        let store = self.store.clone();
        blocking(move || store.tag_values_suggest(&q.filter, &exclude, group_limit, q.limit)).await
    }

    async fn tag_key_count(&self, q: Query, exact_limit: u64) -> PluginResult<TagKeyCountResult> {
        let store = self.store.clone();
        blocking(move || store.tag_key_count(&q.filter, exact_limit, q.limit)).await
    }

    fn health(&self) -> Health {
        health_of(self.store.trouble(), self.store.warning())
    }

    fn statistics(&self) -> Vec<Statistic> {
        vec![statistic("series", self.store.len() as f64)]
    }
}

heroic_plugin_api::export_plugin! {
    name: "local",
    metrics: LocalMetrics,
    metadata: LocalMetadata,
    suggest: LocalSuggest,
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::path::Path;

    use heroic_plugin_api::error::ErrorKind;

    use super::*;

    /// A second backend on the same directory fails `create` with a config
    /// error naming the directory and the holder; dropping the first one
    /// unlocks the directory.
    fn exclusive<T, F: Future<Output = PluginResult<T>>>(dir: &Path, create: impl Fn() -> F) {
        let first = runtime().block_on(create()).unwrap_or_else(|e| panic!("first open: {e}"));
        let Err(e) = runtime().block_on(create()) else { panic!("a second open of {} succeeded", dir.display()) };
        assert_eq!(e.kind, ErrorKind::CONFIG, "{e}");
        let expected = format!(
            "data directory {} is in use by another process (pid {}); stop it or use another data_dir",
            dir.display(),
            std::process::id()
        );
        assert!(e.to_string().contains(&expected), "{e}");
        drop(first);
        runtime().block_on(create()).unwrap_or_else(|e| panic!("open after the first was dropped: {e}"));
    }

    #[test]
    fn each_backend_locks_its_data_dir() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("metrics");
        exclusive(&dir, || LocalMetrics::create(MetricsConfig { data_dir: dir.clone(), ..Default::default() }));
    }

    /// A writer faster than the flush is slowed down, not refused: a write
    /// finding the head over its bound waits for the flush to make room.
    #[test]
    fn a_write_waits_for_a_flush_that_is_behind() {
        let root = tempfile::tempdir().unwrap();
        let config = MetricsConfig {
            data_dir: root.path().join("metrics"),
            flush_points: 1000,
            head_limit_points: 1000,
            ..Default::default()
        };
        let metrics = runtime().block_on(LocalMetrics::create(config)).unwrap();
        let s = Series::new("fast", [("host", "a")], [("pod", "p1")]);
        for round in 0..5i64 {
            // Each write alone is over the bound: the next finds the head full.
            let pairs: Vec<(i64, f64)> = (0..5000).map(|i| (round * 5000 + i + 1, i as f64)).collect();
            let batch = RVec::from(vec![SeriesPoints { series: s.clone(), points: PointBatch::from_pairs(&pairs) }]);
            runtime().block_on(metrics.write(batch)).unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        assert_eq!(metrics.store.count(&s, TimeRange::ALL).unwrap(), 25_000);
    }

    /// Metadata and suggest backends of one process given one directory
    /// share its registry; another opener (another process) is still
    /// refused, until both backends are gone.
    #[test]
    fn metadata_and_suggest_on_one_dir_share_its_registry() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("series");
        let metadata = runtime().block_on(LocalMetadata::create(MetadataConfig { data_dir: dir.clone() })).unwrap();
        let suggest = runtime()
            .block_on(LocalSuggest::create(SuggestConfig { data_dir: dir.clone(), ..Default::default() }))
            .unwrap();
        assert!(Arc::ptr_eq(&metadata.store, &suggest.store.store), "one registry");
        let s = Series::new("shared", [("host", "a")], [("pod", "p1")]);
        runtime().block_on(metadata.write(RVec::from(vec![s.clone()]))).unwrap();
        runtime().block_on(suggest.write(RVec::from(vec![s]))).unwrap();
        assert_eq!(suggest.store.len(), 1);
        let Err(e) = MetadataStore::open(&dir) else { panic!("a foreign opener got the shared directory") };
        assert!(e.to_string().contains("in use by another process"), "{e}");
        drop(metadata);
        assert!(MetadataStore::open(&dir).is_err(), "still held by the suggest backend");
        drop(suggest);
        let store = MetadataStore::open(&dir).unwrap();
        assert_eq!(store.len(), 1, "durable");
    }
}
