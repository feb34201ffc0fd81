//! The metric backend: writes, fetches, deletes and counts points in
//! Heroic's layout (see `row_key` and `plan`).

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::mutate_rows_request::Entry;
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::mutation::{self, DeleteFromColumn, SetCell};
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::Mutation;
use heroic_plugin_api::sdk::support::{HealthTracker, PointBudget};
use heroic_plugin_api::sdk::MetricBackend;
use heroic_plugin_api::types::*;
use heroic_plugin_api::{PluginError, PluginResult, RVec};

use crate::bulk::{Bulk, BulkSettings};
use crate::client::Client;
use crate::config::BigtableConfig;
use crate::error::{BigtableError, EntryTally};
use crate::plan::{filter, plan};
use crate::read_rows::Row;
use crate::row_key::{self, MAX_ROW_KEY_BYTES};
use crate::stats::Stats;

pub struct BigtableBackend {
    pub(crate) client: Arc<Client>,
    pub(crate) config: BigtableConfig,
    pub(crate) stats: Arc<Stats>,
    /// The last failed call until the next success, for `health()`.
    health: HealthTracker,
    /// The bulk writer; `None` with `disableBulkMutations`.
    bulk: Option<Bulk>,
}

/// One answer of a fetch: the request index and a resource variant.
type VariantKey = (usize, Vec<Tag>);

/// One row's worth of mutations, before packing into MutateRows calls.
struct RowMutations {
    key: Vec<u8>,
    mutations: Vec<Mutation>,
}

/// Cells read from one row that match the request.
struct RowCells {
    request_index: usize,
    resource: Vec<Tag>,
    key: Vec<u8>,
    /// `(timestamp, qualifier, value)`; the value is empty when stripped.
    cells: Vec<(i64, Vec<u8>, Vec<u8>)>,
}

impl BigtableBackend {
    /// Packs row mutations into MutateRows calls of at most
    /// `maxWriteBatchSize` cell mutations each; a row with more cells is
    /// split into several entries (its cells are distinct, so the order in
    /// which Bigtable applies the entries does not matter).
    fn pack(&self, rows: Vec<RowMutations>) -> Vec<Vec<Entry>> {
        let max = self.config.max_write_batch_size;
        let mut calls = Vec::new();
        let mut call: Vec<Entry> = Vec::new();
        let mut in_call = 0;
        for row in rows {
            let mut mutations = row.mutations;
            while !mutations.is_empty() {
                if in_call == max {
                    calls.push(std::mem::take(&mut call));
                    in_call = 0;
                }
                let take = mutations.len().min(max - in_call);
                let rest = mutations.split_off(take);
                in_call += mutations.len();
                call.push(Entry { row_key: row.key.clone(), mutations, idempotency: None });
                mutations = rest;
            }
        }
        if !call.is_empty() {
            calls.push(call);
        }
        calls
    }

    /// Sends MutateRows calls, `writeConcurrency` at a time, and answers
    /// for all their entries once every call has finished.
    async fn send(&self, calls: Vec<Vec<Entry>>) -> Result<(), BigtableError> {
        let mut tally = EntryTally::new(calls.iter().map(Vec::len).sum());
        let outcomes: Vec<Vec<Option<BigtableError>>> = stream::iter(calls)
            .map(|entries| self.client.mutate_rows_each(entries))
            .buffer_unordered(self.config.write_concurrency)
            .collect()
            .await;
        outcomes.into_iter().flatten().for_each(|failure| tally.add(failure));
        tally.finish()
    }

    /// Applies a write's rows: through the bulk writer, which cuts and
    /// coalesces the entries into its own batches, or in the write's own
    /// calls.
    async fn apply(&self, rows: Vec<RowMutations>) -> Result<(), BigtableError> {
        let calls = self.pack(rows);
        match &self.bulk {
            Some(bulk) => bulk.submit(calls.into_iter().flatten().collect()).await,
            None => self.send(calls).await,
        }
    }

    /// Reads the cells of every requested series in the range, applying the
    /// point budget. `strip` leaves values out (deletes and counts).
    async fn read_cells(
        &self,
        series: &[Series],
        range: TimeRange,
        strip: bool,
        budget: &PointBudget,
    ) -> Result<Vec<RowCells>, BigtableError> {
        let family = self.config.points_family.as_str();
        let reads: Vec<(usize, crate::plan::Read)> = series
            .iter()
            .enumerate()
            .flat_map(|(i, s)| plan(&row_key::series_prefix(s), range).into_iter().map(move |r| (i, r)))
            .collect();
        let results: Vec<Result<Vec<RowCells>, BigtableError>> = stream::iter(reads)
            .map(|(index, read)| async move {
                let mut found = Vec::new();
                // Once a read found a point too many, the others stop: the
                // answer is `limited` whatever they would add.
                if budget.limited() {
                    return Ok(found);
                }
                let wanted = &series[index];
                let mut visit = |row: Row| -> ControlFlow<()> {
                    let Some(cells) = self.cells_of(row, index, wanted, range) else {
                        return ControlFlow::Continue(());
                    };
                    let mut cells = cells;
                    let taken = budget.claim(cells.cells.len());
                    cells.cells.truncate(taken);
                    if !cells.cells.is_empty() {
                        found.push(cells);
                    }
                    if budget.limited() {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                };
                self.client.read_rows(read.rows, Some(filter(family, read.offsets, strip)), &mut visit).await?;
                Ok(found)
            })
            .buffer_unordered(self.config.read_concurrency)
            .collect()
            .await;
        let mut all = Vec::new();
        for r in results {
            all.extend(r?);
        }
        Ok(all)
    }

    /// The cells of `row` that belong to the request: the row key must
    /// decode, a requested resource must match exactly (an empty one matches
    /// every variant, as in Heroic), and timestamps must be in range.
    fn cells_of(&self, row: Row, request_index: usize, wanted: &Series, range: TimeRange) -> Option<RowCells> {
        let decoded = match row_key::decode(&row.key) {
            Ok(decoded) => decoded,
            Err(e) => {
                self.stats.invalid_cells.inc();
                tracing::warn!(error = %e, "skipping a row whose key does not decode");
                return None;
            }
        };
        if !wanted.resource.is_empty() && decoded.series.resource != wanted.resource {
            return None;
        }
        let mut cells = Vec::with_capacity(row.cells.len());
        for cell in row.cells {
            match row_key::timestamp_of(decoded.base, &cell.qualifier) {
                Some(t) if range.contains(t) => cells.push((t, cell.qualifier, cell.value)),
                Some(_) => {}
                None => self.stats.invalid_cells.inc(),
            }
        }
        Some(RowCells { request_index, resource: decoded.series.resource.into_vec(), key: row.key, cells })
    }

    async fn do_write(&self, batch: RVec<SeriesPoints>) -> Result<(), BigtableError> {
        // Merge repeated series first so that a rewrite of the same point in
        // one batch lands in one row entry, where "last write wins" holds.
        let mut order: Vec<Series> = Vec::new();
        let mut merged: HashMap<Series, PointBatch> = HashMap::new();
        for item in batch {
            let SeriesPoints { series, points } = item;
            match merged.get_mut(&series) {
                Some(existing) => {
                    existing.timestamps.extend(points.timestamps.iter().copied());
                    existing.values.extend(points.values.iter().copied());
                }
                None => {
                    order.push(series.clone());
                    merged.insert(series, points);
                }
            }
        }
        let family = &self.config.points_family;
        let mut rows: Vec<RowMutations> = Vec::new();
        let mut refused: Vec<(usize, String)> = Vec::new();
        let mut points = 0u64;
        for series in order {
            let mut batch = merged.remove(&series).expect("every ordered series was merged");
            batch.sort_dedup();
            let prefix = row_key::series_prefix(&series);
            let suffix = row_key::resource_suffix(&series.resource);
            let key_len = prefix.len() + 8 + suffix.len();
            if key_len >= MAX_ROW_KEY_BYTES {
                // Heroic drops these silently; here they are counted and
                // the write reports them, after storing everything else.
                self.stats.row_key_too_large.inc();
                refused.push((key_len, series.key.to_string()));
                continue;
            }
            let mut row_base = None;
            for (&t, &v) in batch.timestamps.iter().zip(batch.values.iter()) {
                let base = row_key::base_of(t);
                let cell = Mutation {
                    mutation: Some(mutation::Mutation::SetCell(SetCell {
                        family_name: family.clone(),
                        column_qualifier: row_key::qualifier_of(t).to_vec(),
                        // A fixed timestamp: a rewrite replaces the cell and
                        // a retried mutation is idempotent.
                        timestamp_micros: 0,
                        value: v.to_be_bytes().to_vec(),
                    })),
                };
                // Points are sorted, so one row's points are consecutive.
                match rows.last_mut() {
                    Some(row) if row_base == Some(base) => row.mutations.push(cell),
                    _ => {
                        let mut key = row_key::with_base(&prefix, base);
                        key.extend_from_slice(&suffix);
                        rows.push(RowMutations { key, mutations: vec![cell] });
                        row_base = Some(base);
                    }
                }
                points += 1;
            }
        }
        let row_count = rows.iter().map(|r| r.mutations.len() as u64).sum::<u64>();
        self.apply(rows).await?;
        self.stats.points_written.add(points);
        self.stats.row_mutations.add(row_count);
        if let Some((bytes, example)) = refused.iter().min_by_key(|r| r.0).cloned() {
            return Err(BigtableError::RowKeyTooLarge {
                refused: refused.len(),
                bytes,
                limit: MAX_ROW_KEY_BYTES,
                example,
            });
        }
        Ok(())
    }

    async fn do_fetch(&self, request: FetchRequest) -> Result<FetchResponse, BigtableError> {
        let budget = PointBudget::new(request.point_limit);
        let rows = self.read_cells(&request.series, request.range, false, &budget).await?;
        // Group rows into (request, resource variant) answers.
        let mut groups: HashMap<VariantKey, Vec<(i64, f64)>> = HashMap::new();
        let mut read = 0u64;
        for row in rows {
            let points = groups.entry((row.request_index, row.resource)).or_default();
            for (t, _, value) in row.cells {
                match <[u8; 8]>::try_from(value.as_slice()) {
                    Ok(bytes) => points.push((t, f64::from_be_bytes(bytes))),
                    Err(_) => self.stats.invalid_cells.inc(),
                }
            }
            read += points.len() as u64;
        }
        self.stats.points_read.add(read);
        let mut keys: Vec<VariantKey> = groups.keys().cloned().collect();
        keys.sort();
        let series = keys
            .into_iter()
            .map(|key| {
                let mut points = groups.remove(&key).expect("key taken from the map");
                points.sort_by_key(|p| p.0);
                let mut batch = PointBatch::with_capacity(points.len());
                for (t, v) in points {
                    batch.push(t, v);
                }
                FetchedSeries { request_index: key.0 as u32, resource: key.1.into(), points: batch }
            })
            .collect();
        Ok(FetchResponse { series, limited: budget.limited() })
    }

    async fn do_delete(&self, series: RVec<Series>, range: TimeRange) -> Result<u64, BigtableError> {
        let rows = self.read_cells(&series, range, true, &PointBudget::unlimited()).await?;
        let family = &self.config.points_family;
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
        self.send(self.pack(mutations)).await?;
        self.stats.points_deleted.add(deleted);
        Ok(touched.iter().filter(|t| **t).count() as u64)
    }

    async fn do_count(&self, series: RVec<Series>, range: TimeRange) -> Result<u64, BigtableError> {
        let rows = self.read_cells(&series, range, true, &PointBudget::unlimited()).await?;
        Ok(rows.iter().map(|r| r.cells.len() as u64).sum())
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
        let bulk = (!config.disable_bulk_mutations)
            .then(|| Bulk::start(client.clone(), BulkSettings::from_config(&config), stats.clone()));
        tracing::info!(
            table = client.table_name(),
            target = ?config.target().ok(),
            bulk = bulk.is_some(),
            "bigtable metric backend ready"
        );
        Ok(BigtableBackend { client, config, stats, health: HealthTracker::new(), bulk })
    }

    async fn write(&self, batch: RVec<SeriesPoints>) -> PluginResult<()> {
        self.tracked(self.do_write(batch)).await
    }

    async fn fetch(&self, request: FetchRequest) -> PluginResult<FetchResponse> {
        self.tracked(self.do_fetch(request)).await
    }

    fn capabilities(&self) -> MetricCapabilities {
        MetricCapabilities::LIST_SERIES | MetricCapabilities::DELETE_POINTS | MetricCapabilities::COUNT_POINTS
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
        let mut families = vec![self.config.points_family.clone()];
        families.extend(self.config.extra_families.iter().filter(|f| **f != self.config.points_family).cloned());
        self.tracked(self.client.ensure_table(&families)).await
    }

    async fn shutdown(&self) -> PluginResult<()> {
        if let Some(bulk) = &self.bulk {
            bulk.shutdown().await;
        }
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
