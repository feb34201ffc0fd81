//! The write path shared by `POST /write` and the consumers: points to every
//! metric backend, new series to every metadata and suggest backend, all in
//! parallel. A write is acknowledged only when all of them succeeded.

use std::time::{Duration, Instant};

use futures::future::join_all;
use heroic_plugin_api::samples::{SampleKind, SeriesSamples};
use heroic_plugin_api::types::{Series, SeriesPoints};
use heroic_plugin_api::{PluginError, RVec};

use crate::backends::Backends;
use crate::config::IngestionConfig;
use crate::telemetry::writes::WriteMetrics;
use crate::write_cache::WriteCache;

/// A write that did not reach every backend; nothing may be acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("write failed on {}", .failures.iter().map(|(role, id, e)| format!("{role} backend {id:?}: {e}")).collect::<Vec<_>>().join("; "))]
pub struct WriteError {
    pub failures: Vec<(&'static str, String, PluginError)>,
}

impl WriteError {
    /// Whether retrying later may succeed (every failure is transient).
    pub fn is_transient(&self) -> bool {
        self.failures.iter().all(|(_, _, e)| e.kind.is_transient())
    }
}

/// How long each part of a write took, in nanoseconds (Heroic's `times`).
#[derive(Debug, Default)]
pub struct WriteReport {
    pub times_ns: Vec<u64>,
}

pub struct Writer {
    cache: WriteCache,
    config: IngestionConfig,
    metrics: WriteMetrics,
}

async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, u64) {
    let start = Instant::now();
    let out = f.await;
    (out, start.elapsed().as_nanos() as u64)
}

impl Writer {
    pub fn new(config: IngestionConfig, metrics: WriteMetrics) -> Self {
        let cache = WriteCache::new(Duration::from_secs(config.write_cache_ttl_secs), config.write_cache_max_series);
        Writer { cache, config, metrics }
    }

    pub async fn write(&self, backends: &Backends, batch: Vec<SeriesPoints>) -> Result<WriteReport, WriteError> {
        let series: Vec<&Series> = batch.iter().map(|sp| &sp.series).collect();
        let (now, generation, new_series) = self.new_series(&series);
        let counts = (batch.len(), batch.iter().map(|sp| sp.points.len() as u64).sum());
        let metric_writes = async {
            if !self.config.update_metrics {
                return Vec::new();
            }
            let n = backends.metrics.len();
            let mut batch = Some(batch);
            let futures = backends.metrics.iter().enumerate().map(|(i, b)| {
                // Only copy the points when there is more than one backend.
                let this =
                    if i + 1 == n { batch.take().unwrap_or_default() } else { batch.clone().unwrap_or_default() };
                async move { (b.id.clone(), timed(b.client.write(RVec::from(this))).await) }
            });
            join_all(futures.collect::<Vec<_>>()).await
        };
        self.finish_write(backends, metric_writes, new_series, now, generation, counts).await
    }

    /// Writes samples of `kind` (distribution points …) to the metric
    /// backends that declare they store it, and new series to metadata and
    /// suggest, as [`write`](Self::write) does for points. The caller checks
    /// first that some backend stores the kind.
    pub async fn write_samples(
        &self,
        backends: &Backends,
        kind: SampleKind,
        batch: Vec<SeriesSamples>,
    ) -> Result<WriteReport, WriteError> {
        let series: Vec<&Series> = batch.iter().map(|ss| &ss.series).collect();
        let (now, generation, new_series) = self.new_series(&series);
        let counts = (batch.len(), batch.iter().map(|ss| ss.samples.len() as u64).sum());
        let metric_writes = async {
            if !self.config.update_metrics {
                return Vec::new();
            }
            let targets = backends.metrics.iter().filter(|b| b.client.stores(kind));
            // Sketches are small next to a request: one copy per backend.
            let futures = targets.map(|b| {
                let batch = batch.clone();
                async move { (b.id.clone(), timed(b.client.write_samples(kind, batch)).await) }
            });
            join_all(futures.collect::<Vec<_>>()).await
        };
        self.finish_write(backends, metric_writes, new_series, now, generation, counts).await
    }

    /// The series of a batch that metadata and suggest have not seen lately.
    fn new_series(&self, series: &[&Series]) -> (Instant, u64, Vec<Series>) {
        let now = Instant::now();
        let generation = self.cache.generation();
        let new_series: Vec<Series> = if self.config.update_metadata || self.config.update_suggestions {
            series.iter().filter(|s| !self.cache.is_fresh(s, now)).map(|s| (*s).clone()).collect()
        } else {
            Vec::new()
        };
        (now, generation, new_series)
    }

    /// Runs the metric writes with the metadata and suggest writes of
    /// `new_series`, in parallel; acknowledged only when all succeeded.
    /// `(series, points)` are the batch's, for the node's metrics.
    async fn finish_write(
        &self,
        backends: &Backends,
        metric_writes: impl std::future::Future<Output = Vec<(String, (Result<(), PluginError>, u64))>>,
        new_series: Vec<Series>,
        now: Instant,
        generation: u64,
        (series, points): (usize, u64),
    ) -> Result<WriteReport, WriteError> {
        let metadata_writes = async {
            if !self.config.update_metadata || new_series.is_empty() {
                return Vec::new();
            }
            join_all(
                backends
                    .metadata
                    .iter()
                    .map(|b| async { (b.id.clone(), timed(b.client.write(new_series.clone())).await) }),
            )
            .await
        };
        let suggest_writes = async {
            if !self.config.update_suggestions || new_series.is_empty() {
                return Vec::new();
            }
            join_all(
                backends
                    .suggest
                    .iter()
                    .map(|b| async { (b.id.clone(), timed(b.client.write(new_series.clone())).await) }),
            )
            .await
        };
        let (m, md, s) = tokio::join!(metric_writes, metadata_writes, suggest_writes);

        let mut report = WriteReport::default();
        let mut failures = Vec::new();
        for (role, results) in [("metrics", m), ("metadata", md), ("suggest", s)] {
            for (id, (result, ns)) in results {
                report.times_ns.push(ns);
                if let Err(e) = result {
                    tracing::warn!(role, backend = %id, error = %e, "write failed");
                    failures.push((role, id, e));
                }
            }
        }
        if !failures.is_empty() {
            self.metrics.failed(now.elapsed());
            return Err(WriteError { failures });
        }
        self.cache.remember(new_series.iter(), now, generation);
        self.metrics.written(series, points, new_series.len(), now.elapsed());
        Ok(report)
    }

    /// Whether this node writes to its metric backends
    /// (`ingestion.updateMetrics`).
    pub fn writes_metrics(&self) -> bool {
        self.config.update_metrics
    }

    /// Forgets which series were written: call after deleting series from
    /// metadata, or a deleted series written again stays unregistered
    /// until the cache's TTL.
    pub fn series_deleted(&self) {
        self.cache.invalidate();
    }
}
