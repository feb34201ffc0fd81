//! The metric backend: writes, fetches, deletes and counts points in
//! Heroic's ng layout (see `row_key` and `plan`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};
use heroic_plugin_api::sdk::support::{HealthTracker, PointBudget};
use heroic_plugin_api::sdk::MetricBackend;
use heroic_plugin_api::types::*;
use heroic_plugin_api::{PluginError, PluginResult, RVec};

use crate::client::{Client, Statements};
use crate::config::CassandraConfig;
use crate::error::CassandraError;
use crate::plan::{plan, RowRead};
use crate::row_key::{self, MAX_KEY_BYTES};
use crate::stats::Stats;

/// Longest varlong a base takes: a key is its series prefix plus this much.
const MAX_BASE_BYTES: usize = 10;

pub struct CassandraBackend {
    pub(crate) client: Client,
    pub(crate) config: CassandraConfig,
    pub(crate) stats: Arc<Stats>,
    /// The last failed call until the next success, for `health()`.
    health: HealthTracker,
}

/// The `LIMIT` of a query: what the fetch may still keep (a query cannot
/// return more), or everything.
fn query_limit(budget: &PointBudget) -> i32 {
    budget.remaining().map_or(i32::MAX, |left| left.min(i32::MAX as u64) as i32)
}

/// One query of a read.
#[derive(Debug, PartialEq)]
enum Query {
    /// Heroic's fetch: offsets `(after, upto]` of one row.
    Row { key: Vec<u8>, base: i64, after: i32, upto: i32 },
    /// Whole rows, by `IN`.
    Rows { keys: Vec<(Vec<u8>, i64)> },
}

/// Cells of one row as a query returns them.
struct RawRow {
    key: Vec<u8>,
    base: i64,
    /// `(offset, value)`.
    cells: Vec<(i32, f64)>,
}

/// Cells read from one row, with their timestamps.
struct RowPoints {
    request_index: usize,
    key: Vec<u8>,
    /// `(offset, timestamp, value)`, in offset order.
    cells: Vec<(i32, i64, f64)>,
}

/// One write batch: points of one partition.
struct WriteBatch {
    key: Arc<Vec<u8>>,
    cells: Vec<(i32, f64)>,
}

/// The queries answering `reads` (one series' plan) for each series: the
/// partly read rows one by one, the whole rows `per_query` at a time.
fn queries(series: &[Series], reads: &[RowRead], per_query: usize) -> Vec<(usize, Query)> {
    let mut queries = Vec::new();
    for (index, s) in series.iter().enumerate() {
        let prefix = row_key::series_prefix(s);
        if prefix.len() + MAX_BASE_BYTES > MAX_KEY_BYTES {
            continue; // never written: its keys are too large
        }
        let mut whole = Vec::new();
        for read in reads {
            match *read {
                RowRead::Part { base, after, upto } => {
                    queries.push((index, Query::Row { key: row_key::with_base(&prefix, base), base, after, upto }))
                }
                RowRead::Whole { base } => whole.push((row_key::with_base(&prefix, base), base)),
            }
        }
        for chunk in whole.chunks(per_query) {
            queries.push((index, Query::Rows { keys: chunk.to_vec() }));
        }
    }
    queries
}

impl CassandraBackend {
    /// Runs one query; keeps what the budget allows and what is in range.
    async fn run(
        &self,
        statements: &Statements,
        request_index: usize,
        query: Query,
        range: TimeRange,
        budget: &PointBudget,
    ) -> Result<Vec<RowPoints>, CassandraError> {
        if budget.is_spent() {
            return Ok(Vec::new());
        }
        let limit = query_limit(budget);
        let mut rows: Vec<RawRow> = match query {
            Query::Row { key, base, after, upto } => {
                let cells = self.client.read("fetch", &statements.fetch_row, (&key, after, upto, limit)).await?;
                vec![RawRow { key, base, cells }]
            }
            Query::Rows { keys } => {
                let list: Vec<&[u8]> = keys.iter().map(|(k, _)| k.as_slice()).collect();
                let found: Vec<(Vec<u8>, i32, f64)> =
                    self.client.read("fetch rows", &statements.fetch_rows, (&list, limit)).await?;
                let mut by_key: HashMap<Vec<u8>, Vec<(i32, f64)>> = HashMap::new();
                for (key, offset, value) in found {
                    by_key.entry(key).or_default().push((offset, value));
                }
                keys.into_iter()
                    .filter_map(|(key, base)| by_key.remove(&key).map(|cells| RawRow { key, base, cells }))
                    .collect()
            }
        };
        let mut keep = budget.claim(rows.iter().map(|r| r.cells.len()).sum());
        for row in &mut rows {
            let take = keep.min(row.cells.len());
            row.cells.truncate(take);
            keep -= take;
        }
        rows.retain(|row| !row.cells.is_empty());
        Ok(rows.into_iter().map(|row| self.in_range(request_index, row, range)).collect())
    }

    /// Timestamps of a row's cells, keeping those in range. The queries ask
    /// for the range only: anything else is foreign data (or a bug),
    /// counted rather than returned.
    fn in_range(&self, request_index: usize, row: RawRow, range: TimeRange) -> RowPoints {
        let RawRow { key, base, cells } = row;
        let total = cells.len();
        let cells: Vec<(i32, i64, f64)> = cells
            .into_iter()
            .filter_map(|(o, v)| row_key::timestamp_of(base, o).filter(|t| range.contains(*t)).map(|t| (o, t, v)))
            .collect();
        self.stats.invalid_rows.add((total - cells.len()) as u64);
        RowPoints { request_index, key, cells }
    }

    /// Reads the cells of every requested series in `range`.
    async fn read(
        &self,
        series: &[Series],
        range: TimeRange,
        budget: &PointBudget,
    ) -> Result<Vec<RowPoints>, CassandraError> {
        let statements = self.client.statements().await?;
        let queries = queries(series, &plan(range, self.config.window()), self.config.max_partitions_per_query);
        let found: Vec<Vec<RowPoints>> = stream::iter(queries)
            .map(|(index, query)| self.run(statements, index, query, range, budget))
            .buffer_unordered(self.config.read_concurrency)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Merges repeated series of a write (so "last write wins" holds within
    /// the batch), then sorts and de-duplicates each series' points.
    fn merge(batch: RVec<SeriesPoints>) -> BTreeMap<Series, PointBatch> {
        let mut merged: BTreeMap<Series, PointBatch> = BTreeMap::new();
        for item in batch {
            let points = merged.entry(item.series).or_default();
            points.timestamps.extend(item.points.timestamps.iter().copied());
            points.values.extend(item.points.values.iter().copied());
        }
        merged.values_mut().for_each(PointBatch::sort_dedup);
        merged
    }

    async fn do_write(&self, batch: RVec<SeriesPoints>) -> Result<(), CassandraError> {
        let (min, max) = self.config.window();
        let mut batches: Vec<WriteBatch> = Vec::new();
        let mut too_large: Vec<(usize, String)> = Vec::new();
        let mut out_of_window: Vec<i64> = Vec::new();
        let mut points = 0u64;
        for (series, merged) in Self::merge(batch) {
            let prefix = row_key::series_prefix(&series);
            if prefix.len() + MAX_BASE_BYTES > MAX_KEY_BYTES {
                self.stats.row_key_too_large.inc();
                too_large.push((prefix.len() + MAX_BASE_BYTES, series.key.to_string()));
                continue;
            }
            let mut current: Option<i64> = None;
            for (&t, &v) in merged.timestamps.iter().zip(merged.values.iter()) {
                if t < min || t > max {
                    out_of_window.push(t);
                    continue;
                }
                let base = row_key::base_of(t);
                // Points are sorted, so a row's points are consecutive.
                let full = batches.last().is_some_and(|b| b.cells.len() >= self.config.max_write_batch_size);
                if current != Some(base) || full {
                    let key = match (current == Some(base), batches.last()) {
                        (true, Some(last)) => last.key.clone(),
                        _ => Arc::new(row_key::with_base(&prefix, base)),
                    };
                    batches.push(WriteBatch { key, cells: Vec::new() });
                    current = Some(base);
                }
                batches.last_mut().expect("pushed above").cells.push((row_key::offset_of(t), v));
                points += 1;
            }
        }
        if !batches.is_empty() {
            let statements = self.client.statements().await?;
            stream::iter(batches.into_iter().map(Ok))
                .try_for_each_concurrent(self.config.write_concurrency, |b| async move {
                    let rows: Vec<(&[u8], i32, f64)> = b.cells.iter().map(|&(o, v)| (b.key.as_slice(), o, v)).collect();
                    self.client.batch("write", &statements.insert, &rows).await
                })
                .await?;
        }
        self.stats.points_written.add(points);
        if let Some((bytes, example)) = too_large.iter().min_by_key(|r| r.0).cloned() {
            return Err(CassandraError::RowKeyTooLarge {
                refused: too_large.len(),
                bytes,
                limit: MAX_KEY_BYTES,
                example,
            });
        }
        if let Some(&example) = out_of_window.first() {
            self.stats.points_out_of_window.add(out_of_window.len() as u64);
            return Err(CassandraError::OutOfWindow { refused: out_of_window.len(), min, max, example });
        }
        Ok(())
    }

    async fn do_fetch(&self, request: FetchRequest) -> Result<FetchResponse, CassandraError> {
        let budget = PointBudget::new(request.point_limit);
        let rows = self.read(&request.series, request.range, &budget).await?;
        let mut per_series: BTreeMap<usize, Vec<(i64, f64)>> = BTreeMap::new();
        for row in rows {
            per_series.entry(row.request_index).or_default().extend(row.cells.iter().map(|&(_, t, v)| (t, v)));
        }
        let mut read = 0;
        let series = per_series
            .into_iter()
            .map(|(index, mut points)| {
                // Rows come back in any order; offsets are unique per row.
                points.sort_unstable_by_key(|p| p.0);
                read += points.len() as u64;
                FetchedSeries {
                    request_index: index as u32,
                    // The resource is part of the row key: what was asked is what was read.
                    resource: request.series[index].resource.clone(),
                    points: PointBatch::from_pairs(&points),
                }
            })
            .collect();
        self.stats.points_read.add(read);
        // Queries ask for at most what is left, so a spent budget may hide
        // points beyond a query's LIMIT: that counts as limited too.
        Ok(FetchResponse { series, limited: budget.limited() || budget.is_spent() })
    }

    async fn do_delete(&self, series: RVec<Series>, range: TimeRange) -> Result<u64, CassandraError> {
        let rows = self.read(&series, range, &PointBudget::unlimited()).await?;
        let statements = self.client.statements().await?;
        let mut touched = vec![false; series.len()];
        let mut batches: Vec<(Vec<u8>, Vec<i32>)> = Vec::new();
        for row in rows.into_iter().filter(|r| !r.cells.is_empty()) {
            touched[row.request_index] = true;
            let offsets: Vec<i32> = row.cells.iter().map(|c| c.0).collect();
            for chunk in offsets.chunks(self.config.max_write_batch_size) {
                batches.push((row.key.clone(), chunk.to_vec()));
            }
        }
        let deleted: usize = batches.iter().map(|b| b.1.len()).sum();
        stream::iter(batches.into_iter().map(Ok))
            .try_for_each_concurrent(self.config.write_concurrency, |(key, offsets)| async move {
                let rows: Vec<(&[u8], i32)> = offsets.iter().map(|&o| (key.as_slice(), o)).collect();
                self.client.batch("delete", &statements.delete_point, &rows).await
            })
            .await?;
        self.stats.points_deleted.add(deleted as u64);
        Ok(touched.iter().filter(|t| **t).count() as u64)
    }

    async fn do_count(&self, series: RVec<Series>, range: TimeRange) -> Result<u64, CassandraError> {
        let rows = self.read(&series, range, &PointBudget::unlimited()).await?;
        Ok(rows.iter().map(|r| r.cells.len() as u64).sum())
    }

    /// Runs an operation, remembering its outcome for `health()`.
    pub(crate) async fn tracked<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, CassandraError>>,
    ) -> PluginResult<T> {
        let result = work.await;
        match &result {
            Ok(_) => {
                self.health.succeeded();
            }
            Err(e) if !e.is_caller_error() => {
                self.health.failed(e);
            }
            Err(_) => {}
        }
        result.map_err(PluginError::from)
    }
}

impl MetricBackend for CassandraBackend {
    type Config = CassandraConfig;

    async fn create(config: CassandraConfig) -> PluginResult<Self> {
        config.validate().map_err(|e| PluginError::from(CassandraError::Config(e)))?;
        let stats = Arc::new(Stats::default());
        let client = Client::connect(&config, stats.clone()).await?;
        tracing::info!(
            seeds = ?config.seed_addresses(),
            keyspace = %config.keyspace,
            table = %config.table,
            consistency = ?config.consistency_level,
            tls = config.tls.is_some(),
            "cassandra metric backend ready"
        );
        Ok(CassandraBackend { client, config, stats, health: HealthTracker::new() })
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
        self.tracked(self.client.configure()).await
    }

    fn health(&self) -> Health {
        // Unhealthy from a failed call until the next success; still ready:
        // the next call may well succeed.
        self.health.health("last cassandra call failed")
    }

    fn statistics(&self) -> Vec<Statistic> {
        self.stats.statistics()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_ask_for_what_the_budget_has_left() {
        let b = PointBudget::new(10);
        assert_eq!(query_limit(&b), 10);
        b.claim(4);
        assert_eq!(query_limit(&b), 6);
        assert_eq!(query_limit(&PointBudget::unlimited()), i32::MAX);
        assert_eq!(query_limit(&PointBudget::new(u64::MAX)), i32::MAX);
    }

    #[test]
    fn merge_keeps_the_last_write_of_a_timestamp() {
        let s = Series::new("m", [("a", "b")], []);
        let batch: RVec<SeriesPoints> = vec![
            SeriesPoints { series: s.clone(), points: PointBatch::from_pairs(&[(3, 1.0), (1, 1.0)]) },
            SeriesPoints { series: Series::key_only("other"), points: PointBatch::from_pairs(&[(1, 9.0)]) },
            SeriesPoints { series: s.clone(), points: PointBatch::from_pairs(&[(3, 2.0)]) },
        ]
        .into();
        let merged = CassandraBackend::merge(batch);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[&s].to_pairs(), vec![(1, 1.0), (3, 2.0)]);
    }

    #[test]
    fn whole_rows_are_read_in_chunks_and_huge_keys_not_at_all() {
        use crate::row_key::ROW_WIDTH as W;
        let a = Series::new("a", [("h", "1")], []);
        let huge = Series::new("x".repeat(70_000), Vec::<(&str, &str)>::new(), []);
        let reads = plan(TimeRange::new(W, 5 * W), (0, i64::MAX));
        // Row W from offset 1, rows 2W..4W whole, row 5W's offset 0.
        let got = queries(&[huge, a.clone()], &reads, 2);
        let key = |base: i64| row_key::encode(&a, base);
        assert_eq!(
            got,
            vec![
                (1, Query::Row { key: key(W), base: W, after: 0, upto: i32::MAX - 1 }),
                (1, Query::Row { key: key(5 * W), base: 5 * W, after: -1, upto: 0 }),
                (1, Query::Rows { keys: vec![(key(2 * W), 2 * W), (key(3 * W), 3 * W)] }),
                (1, Query::Rows { keys: vec![(key(4 * W), 4 * W)] }),
            ]
        );
    }
}
