//! The metric backend: writes, fetches, deletes and counts points, and
//! writes and fetches samples (distribution points in Heroic's layout,
//! t-digest points and spreads alike in families of their own; see
//! `row_key`, `plan` and `cells`).

use std::sync::Arc;

use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::mutation::{self, DeleteFromColumn};
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::Mutation;
use heroic_plugin_api::samples::*;
use heroic_plugin_api::sdk::support::{HealthTracker, PointBudget};
use heroic_plugin_api::sdk::MetricBackend;
use heroic_plugin_api::types::*;
use heroic_plugin_api::{PluginError, PluginResult, RVec};

use crate::cells::{merge, CellStore, RowMutations};
use crate::client::Client;
use crate::config::BigtableConfig;
use crate::error::BigtableError;
use crate::stats::Stats;

pub struct BigtableBackend {
    pub(crate) client: Arc<Client>,
    pub(crate) config: BigtableConfig,
    pub(crate) stats: Arc<Stats>,
    /// The last failed call until the next success, for `health()`.
    health: HealthTracker,
    /// Writes and reads of cells, whatever their family.
    cells: CellStore,
}

impl BigtableBackend {
    /// Points go to `pointsFamily` as 8-byte big-endian doubles.
    async fn do_write(&self, batch: RVec<SeriesPoints>) -> Result<(), BigtableError> {
        let items = batch.into_iter().map(|SeriesPoints { series, points }| {
            let cells = points.timestamps.iter().zip(points.values.iter());
            (series, cells.map(|(&t, &v)| (t, v.to_be_bytes().to_vec())).collect())
        });
        self.cells.write(&self.config.points_family, merge(items), &self.stats.points_written).await
    }

    async fn do_fetch(&self, request: FetchRequest) -> Result<FetchResponse, BigtableError> {
        let budget = PointBudget::new(request.point_limit);
        let family = &self.config.points_family;
        let rows = self.cells.read(family, &request.series, request.range, false, &budget).await?;
        let groups = self.cells.group(rows, |value| Some(f64::from_be_bytes(value.as_slice().try_into().ok()?)));
        let mut read = 0u64;
        let series = groups
            .into_iter()
            .map(|((index, resource), points)| {
                read += points.len() as u64;
                let mut batch = PointBatch::with_capacity(points.len());
                for (t, v) in points {
                    batch.push(t, v);
                }
                FetchedSeries { request_index: index as u32, resource: resource.into(), points: batch }
            })
            .collect();
        self.stats.points_read.add(read);
        Ok(FetchResponse { series, limited: budget.limited() })
    }

    async fn do_delete(&self, series: RVec<Series>, range: TimeRange) -> Result<u64, BigtableError> {
        let family = &self.config.points_family;
        let rows = self.cells.read(family, &series, range, true, &PointBudget::unlimited()).await?;
        let mut touched = vec![false; series.len()];
        let mut deleted = 0u64;
        let mut mutations = Vec::new();
        for row in rows {
            touched[row.request_index] = true;
            deleted += row.cells.len() as u64;
            let cells = row
                .cells
                .into_iter()
                .map(|(_, qualifier, _)| Mutation {
                    mutation: Some(mutation::Mutation::DeleteFromColumn(DeleteFromColumn {
                        family_name: family.clone(),
                        column_qualifier: qualifier,
                        time_range: None,
                    })),
                })
                .collect();
            mutations.push(RowMutations { key: row.key, mutations: cells });
        }
        // Deletes are rare shell tasks: their own calls, not the bulk writer.
        self.cells.send(mutations).await?;
        self.stats.points_deleted.add(deleted);
        Ok(touched.iter().filter(|t| **t).count() as u64)
    }

    async fn do_count(&self, series: RVec<Series>, range: TimeRange) -> Result<u64, BigtableError> {
        let family = &self.config.points_family;
        let rows = self.cells.read(family, &series, range, true, &PointBudget::unlimited()).await?;
        Ok(rows.iter().map(|r| r.cells.len() as u64).sum())
    }

    /// The column family holding samples of `kind`, if this backend stores
    /// them.
    fn family_of(&self, kind: SampleKind) -> Option<&str> {
        match kind {
            SampleKind::DISTRIBUTION => Some(&self.config.distributions_family),
            SampleKind::TDIGEST => Some(&self.config.tdigests_family),
            SampleKind::SPREAD => Some(&self.config.spreads_family),
            _ => None,
        }
    }

    /// Samples go to their kind's family as they are: the cell value is
    /// the sample's bytes (for distribution points the serialised t-digest,
    /// byte for byte: Heroic's layout, so both sides read what the other
    /// wrote), under the same row key and qualifier as a point.
    async fn do_write_samples(
        &self,
        family: &str,
        kind: SampleKind,
        batch: RVec<SeriesSamples>,
    ) -> Result<(), BigtableError> {
        let mut items = Vec::with_capacity(batch.len());
        for SeriesSamples { series, samples } in batch {
            // Checked before slicing: the batch comes from another library.
            samples.validate().map_err(|e| BigtableError::InvalidInput(format!("series {:?}: {e}", series.key)))?;
            if kind == SampleKind::SPREAD {
                if let Some((t, bytes)) = samples.iter().find(|(_, b)| b.len() != Spread::ENCODED_LEN) {
                    return Err(BigtableError::InvalidInput(format!(
                        "series {:?}: the spread at {t} has {} bytes, not {}",
                        series.key,
                        bytes.len(),
                        Spread::ENCODED_LEN
                    )));
                }
            }
            items.push((series, samples.iter().map(|(t, bytes)| (t, bytes.to_vec())).collect()));
        }
        self.cells.write(family, merge(items), &self.stats.samples_written).await
    }

    async fn do_fetch_samples(
        &self,
        family: &str,
        request: SampleFetchRequest,
    ) -> Result<SampleFetchResponse, BigtableError> {
        let budget = PointBudget::new(request.sample_limit);
        let rows = self.cells.read(family, &request.series, request.range, false, &budget).await?;
        let mut read = 0u64;
        let series = self
            .cells
            .group(rows, Some)
            .into_iter()
            .map(|((index, resource), samples)| {
                read += samples.len() as u64;
                let bytes = samples.iter().map(|s| s.1.len()).sum();
                let mut batch = SampleBatch::with_capacity(samples.len(), bytes);
                for (t, value) in samples {
                    batch.push(t, &value);
                }
                FetchedSamples { request_index: index as u32, resource: resource.into(), samples: batch }
            })
            .collect();
        self.stats.samples_read.add(read);
        Ok(SampleFetchResponse { series, limited: budget.limited() })
    }

    /// Runs an operation, remembering its outcome for `health()`.
    async fn tracked<T>(&self, work: impl std::future::Future<Output = Result<T, BigtableError>>) -> PluginResult<T> {
        let result = work.await;
        // An oversized key is the caller's fault, not the backend's health.
        if !matches!(result, Err(BigtableError::RowKeyTooLarge { .. })) {
            self.health.record(&result);
        }
        result.map_err(PluginError::from)
    }
}

impl MetricBackend for BigtableBackend {
    type Config = BigtableConfig;

    async fn create(config: BigtableConfig) -> PluginResult<Self> {
        config.validate().map_err(|e| PluginError::from(BigtableError::Config(e)))?;
        let stats = Arc::new(Stats::default());
        let client = Arc::new(Client::connect(&config, stats.clone()).await?);
        let cells = CellStore::new(client.clone(), config.clone(), stats.clone());
        tracing::info!(
            table = client.table_name(),
            target = ?config.target().ok(),
            bulk = cells.is_bulk(),
            "bigtable metric backend ready"
        );
        Ok(BigtableBackend { client, config, stats, health: HealthTracker::new(), cells })
    }

    async fn write(&self, batch: RVec<SeriesPoints>) -> PluginResult<()> {
        self.tracked(self.do_write(batch)).await
    }

    async fn fetch(&self, request: FetchRequest) -> PluginResult<FetchResponse> {
        self.tracked(self.do_fetch(request)).await
    }

    fn capabilities(&self) -> MetricCapabilities {
        MetricCapabilities::LIST_SERIES
            | MetricCapabilities::DELETE_POINTS
            | MetricCapabilities::COUNT_POINTS
            | MetricCapabilities::DISTRIBUTIONS
            | MetricCapabilities::TDIGESTS
            | MetricCapabilities::SPREADS
    }

    async fn write_samples(&self, kind: SampleKind, batch: RVec<SeriesSamples>) -> PluginResult<()> {
        let Some(family) = self.family_of(kind) else {
            return Err(PluginError::unsupported(&format!("write_samples of {}", kind.name())));
        };
        self.tracked(self.do_write_samples(family, kind, batch)).await
    }

    async fn fetch_samples(&self, request: SampleFetchRequest) -> PluginResult<SampleFetchResponse> {
        let Some(family) = self.family_of(request.kind) else {
            return Err(PluginError::unsupported(&format!("fetch_samples of {}", request.kind.name())));
        };
        self.tracked(self.do_fetch_samples(family, request)).await
    }

    async fn list_series(&self, cursor: Option<String>, limit: u64) -> PluginResult<SeriesListPage> {
        self.tracked(crate::listing::list_series(&self.client, &self.stats, cursor, limit)).await
    }

    async fn delete_points(&self, series: RVec<Series>, range: TimeRange) -> PluginResult<u64> {
        self.tracked(self.do_delete(series, range)).await
    }

    async fn count_points(&self, series: RVec<Series>, range: TimeRange) -> PluginResult<u64> {
        self.tracked(self.do_count(series, range)).await
    }

    async fn configure(&self) -> PluginResult<()> {
        self.tracked(self.client.ensure_table(&self.config.families())).await
    }

    async fn shutdown(&self) -> PluginResult<()> {
        self.cells.shutdown().await;
        Ok(())
    }

    fn health(&self) -> Health {
        // Unhealthy from a failed call until the next success; still ready:
        // the next call may well succeed.
        self.health.health("last bigtable call failed")
    }

    fn statistics(&self) -> Vec<Statistic> {
        self.stats.statistics()
    }
}
