//! The cell path shared by every kind of value stored in Heroic's layout:
//! points (family `points`, 8-byte doubles) and distribution samples
//! (family `distributionPoints`, raw t-digest bytes) use the same row keys,
//! the same 4-byte offset qualifiers and the same reads, so one write path
//! and one read path serve both, parameterised by the column family and
//! with the values as bytes. Bulk batching, the row-key limit, retries and
//! error mapping are therefore the same for every kind.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::mutate_rows_request::Entry;
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::mutation::{self, SetCell};
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::Mutation;
use heroic_plugin_api::sdk::support::{Counter, PointBudget};
use heroic_plugin_api::types::{Series, Tag, TimeRange};

use crate::bulk::{Bulk, BulkSettings};
use crate::client::Client;
use crate::config::BigtableConfig;
use crate::error::{BigtableError, EntryTally};
use crate::plan::{filter, plan, Read};
use crate::read_rows::Row;
use crate::row_key::{self, MAX_ROW_KEY_BYTES};
use crate::stats::Stats;

/// One answer of a read: the request index and a resource variant.
pub type VariantKey = (usize, Vec<Tag>);

/// One cell to write or read back: its timestamp and value bytes.
pub type Cell = (i64, Vec<u8>);

/// The cells of one series to write, sorted by timestamp without
/// duplicates (see [`merge`]).
pub struct SeriesCells {
    pub series: Series,
    pub cells: Vec<Cell>,
}

/// One row's worth of mutations, before packing into MutateRows calls.
pub struct RowMutations {
    pub key: Vec<u8>,
    pub mutations: Vec<Mutation>,
}

/// Cells read from one row that match the request.
pub struct RowCells {
    pub request_index: usize,
    pub resource: Vec<Tag>,
    pub key: Vec<u8>,
    /// `(timestamp, qualifier, value)`; the value is empty when stripped.
    pub cells: Vec<(i64, Vec<u8>, Vec<u8>)>,
}

/// Merges repeated series of a batch and sorts each one's cells, the last
/// write of a timestamp winning: a rewrite in one batch then lands in one
/// row entry, where "last write wins" holds.
pub fn merge(items: impl IntoIterator<Item = (Series, Vec<Cell>)>) -> Vec<SeriesCells> {
    let mut order: Vec<Series> = Vec::new();
    let mut merged: HashMap<Series, Vec<Cell>> = HashMap::new();
    for (series, cells) in items {
        match merged.get_mut(&series) {
            Some(existing) => existing.extend(cells),
            None => {
                order.push(series.clone());
                merged.insert(series, cells);
            }
        }
    }
    order
        .into_iter()
        .map(|series| {
            let mut cells = merged.remove(&series).expect("every ordered series was merged");
            sort_dedup(&mut cells);
            SeriesCells { series, cells }
        })
        .collect()
}

/// Sorts by timestamp keeping the last of equal timestamps; free when
/// already strictly sorted (the usual case).
fn sort_dedup(cells: &mut Vec<Cell>) {
    if cells.windows(2).all(|w| w[0].0 < w[1].0) {
        return;
    }
    cells.sort_by_key(|c| c.0); // stable: later writes stay later
    let mut out: Vec<Cell> = Vec::with_capacity(cells.len());
    for cell in cells.drain(..) {
        match out.last_mut() {
            Some(last) if last.0 == cell.0 => *last = cell,
            _ => out.push(cell),
        }
    }
    *cells = out;
}

/// Writes and reads cells of any family of the table.
pub struct CellStore {
    client: Arc<Client>,
    config: BigtableConfig,
    stats: Arc<Stats>,
    /// The bulk writer; `None` with `disableBulkMutations`.
    bulk: Option<Bulk>,
}

impl CellStore {
    pub fn new(client: Arc<Client>, config: BigtableConfig, stats: Arc<Stats>) -> Self {
        let bulk = (!config.disable_bulk_mutations)
            .then(|| Bulk::start(client.clone(), BulkSettings::from_config(&config), stats.clone()));
        CellStore { client, config, stats, bulk }
    }

    /// Whether writes go through the bulk writer.
    pub fn is_bulk(&self) -> bool {
        self.bulk.is_some()
    }

    /// Sends what the bulk writer holds and refuses further writes.
    pub async fn shutdown(&self) {
        if let Some(bulk) = &self.bulk {
            bulk.shutdown().await;
        }
    }

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

    /// Sends row mutations in their own MutateRows calls (never through the
    /// bulk writer), `writeConcurrency` at a time, and answers for all their
    /// entries once every call has finished.
    pub async fn send(&self, rows: Vec<RowMutations>) -> Result<(), BigtableError> {
        let calls = self.pack(rows);
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
        match &self.bulk {
            Some(bulk) => bulk.submit(self.pack(rows).into_iter().flatten().collect()).await,
            None => self.send(rows).await,
        }
    }

    /// Writes the cells of every series into `family`, adding the number
    /// of cells applied to `written`. A series whose row key would reach
    /// 4,000 bytes is refused (counted, and reported after everything else
    /// is stored).
    pub async fn write(&self, family: &str, batch: Vec<SeriesCells>, written: &Counter) -> Result<(), BigtableError> {
        let mut rows: Vec<RowMutations> = Vec::new();
        let mut refused: Vec<(usize, String)> = Vec::new();
        let mut cell_count = 0u64;
        for SeriesCells { series, cells } in batch {
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
            for (t, value) in cells {
                let base = row_key::base_of(t);
                let cell = Mutation {
                    mutation: Some(mutation::Mutation::SetCell(SetCell {
                        family_name: family.to_string(),
                        column_qualifier: row_key::qualifier_of(t).to_vec(),
                        // A fixed timestamp: a rewrite replaces the cell and
                        // a retried mutation is idempotent.
                        timestamp_micros: 0,
                        value,
                    })),
                };
                // Cells are sorted, so one row's cells are consecutive.
                match rows.last_mut() {
                    Some(row) if row_base == Some(base) => row.mutations.push(cell),
                    _ => {
                        let mut key = row_key::with_base(&prefix, base);
                        key.extend_from_slice(&suffix);
                        rows.push(RowMutations { key, mutations: vec![cell] });
                        row_base = Some(base);
                    }
                }
                cell_count += 1;
            }
        }
        self.apply(rows).await?;
        written.add(cell_count);
        self.stats.row_mutations.add(cell_count);
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

    /// Reads the cells of `family` of every requested series in the range,
    /// applying the budget. `strip` leaves values out (deletes and counts).
    pub async fn read(
        &self,
        family: &str,
        series: &[Series],
        range: TimeRange,
        strip: bool,
        budget: &PointBudget,
    ) -> Result<Vec<RowCells>, BigtableError> {
        let reads: Vec<(usize, Read)> = series
            .iter()
            .enumerate()
            .flat_map(|(i, s)| plan(&row_key::series_prefix(s), range).into_iter().map(move |r| (i, r)))
            .collect();
        let results: Vec<Result<Vec<RowCells>, BigtableError>> = stream::iter(reads)
            .map(|(index, read)| async move {
                let mut found = Vec::new();
                // Once a read found a cell too many, the others stop: the
                // answer is `limited` whatever they would add.
                if budget.limited() {
                    return Ok(found);
                }
                let wanted = &series[index];
                let mut visit = |row: Row| -> ControlFlow<()> {
                    let Some(mut cells) = self.cells_of(row, index, wanted, range) else {
                        return ControlFlow::Continue(());
                    };
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

    /// Groups rows read into answers per (request, resource variant),
    /// sorted by that key and then by timestamp, with values turned into
    /// `V` by `decode`; a value that does not decode is skipped and counted
    /// in `invalid_cells` (foreign data in the table).
    pub fn group<V>(
        &self,
        rows: Vec<RowCells>,
        decode: impl Fn(Vec<u8>) -> Option<V>,
    ) -> Vec<(VariantKey, Vec<(i64, V)>)> {
        let mut groups: HashMap<VariantKey, Vec<(i64, V)>> = HashMap::new();
        for row in rows {
            let values = groups.entry((row.request_index, row.resource)).or_default();
            for (t, _, value) in row.cells {
                match decode(value) {
                    Some(v) => values.push((t, v)),
                    None => self.stats.invalid_cells.inc(),
                }
            }
        }
        let mut groups: Vec<(VariantKey, Vec<(i64, V)>)> = groups.into_iter().collect();
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, values) in &mut groups {
            // Rows of one variant come from reads that finished in any order.
            values.sort_by_key(|v| v.0);
        }
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_the_last_write_of_a_timestamp() {
        let a = Series::new("a", [("t", "1")], []);
        let b = Series::new("b", [("t", "1")], []);
        let merged = merge(vec![
            (a.clone(), vec![(30, b"x".to_vec()), (10, b"first".to_vec())]),
            (b.clone(), vec![(5, b"b".to_vec())]),
            (a.clone(), vec![(10, b"second".to_vec())]),
        ]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].series, a);
        assert_eq!(merged[0].cells, vec![(10, b"second".to_vec()), (30, b"x".to_vec())]);
        assert_eq!(merged[1].series, b);
        assert_eq!(merged[1].cells, vec![(5, b"b".to_vec())]);
    }
}
