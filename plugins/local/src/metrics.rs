//! The metric store: write-ahead log + in-memory head + immutable compressed
//! segments. This file holds the public API, the write path and reads;
//! `flush.rs` holds recovery, flush, delete and compaction.
//!
//! Sequence numbers tie the pieces together: the active head and its WAL
//! file `wal-<seq>.log` share a sequence; a flush freezes the head, starts
//! `wal-<seq+1>.log`, writes the frozen head as a segment and only then
//! removes its WAL. Every block remembers the sequence its points came from,
//! which gives "last write wins" across sources (higher sequence wins) and
//! makes deletes cheap (a tombstone hides everything below a sequence).

use std::collections::HashMap;
use std::path::Path;

use heroic_plugin_api::abi_stable::std_types::{RNone, RSome, RString};
use heroic_plugin_api::buckets::{BucketFetchRequest, BucketFetchResponse};
use heroic_plugin_api::types::{
    FetchRequest, FetchResponse, PointBatch, Series, SeriesListPage, SeriesPoints, TimeRange,
};

use crate::error::{Error, Result};
use crate::fold::SmallRead;
pub use crate::log::Leader;
use crate::read::Plan;
use crate::store::{normalized, Inner, Mem};
use crate::wal_record::{encode_define, encode_points};

pub use crate::store::{MetricOptions, MetricStore};

/// Figures about the store, for `/status`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricStats {
    pub series: u64,
    pub head_points: u64,
    pub segments: u64,
    pub blocks: u64,
    pub block_points: u64,
    pub segment_bytes: u64,
    /// Reads of a block answered by the decoded-block cache, and not.
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Bytes of decoded blocks the cache holds.
    pub cache_bytes: u64,
}

impl MetricStore {
    /// Opens (or creates) a store in `dir`, replaying any write-ahead log
    /// left by a crash.
    pub fn open(dir: impl AsRef<Path>, opts: MetricOptions) -> Result<MetricStore> {
        crate::flush::open(dir.as_ref(), opts)
    }

    /// Writes points; returns once they are durable (fsynced in the WAL).
    /// Concurrent callers share fsyncs (group commit). Refused, to be
    /// retried later, while the heads are over `head_limit_points` or the
    /// disk refuses writes.
    pub fn write(&self, batch: &[SeriesPoints]) -> Result<()> {
        let inner = &*self.inner;
        validate(batch)?;
        inner.check_room()?;
        let (ids, mut defs) = inner.reserve_ids(batch.iter().map(|sp| &sp.series))?;
        // New series are defined in the same group of log records as the
        // points that use them: durable together, under one fsync.
        let mut payloads = std::mem::take(&mut defs.payloads);
        payloads.extend(encode_points(batch, &ids, inner.opts.max_record_points));
        let appended = if payloads.is_empty() {
            Ok(())
        } else if inner.wal.broken().is_some() {
            crate::flush::restart_wal(inner).and_then(|()| inner.append_points(&payloads))
        } else {
            inner.append_points(&payloads)
        };
        inner.settle(defs, appended.is_ok());
        appended?;
        if inner.mem.read().active.points >= inner.opts.flush_points {
            if self.flusher.is_some() {
                inner.request_flush();
            } else {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// [`write`](Self::write) for a caller on an async executor, whose
    /// threads must not block: the work in memory runs on the calling
    /// thread and the fsync is awaited (see `log/queued.rs`). When the log
    /// has no leader, `start_leader` gets one, to run on a thread that may
    /// block (dropped unrun, it runs all the same).
    ///
    /// `None`, having written nothing, when the write would first have to
    /// wait for something else (another writer's definition of one of its
    /// series, a log to recover) or the store has no flusher: the caller
    /// then runs [`write`](Self::write) on a thread that may block.
    pub async fn write_queued(
        &self,
        batch: &[SeriesPoints],
        start_leader: impl Fn(Leader) + Sync,
    ) -> Option<Result<()>> {
        let inner = &*self.inner;
        // Without a flusher, a full head is flushed by the writer: blocking.
        self.flusher.as_ref()?;
        if let Err(e) = validate(batch).and_then(|()| inner.check_room()) {
            return Some(Err(e));
        }
        let (ids, mut defs) = match inner.try_reserve_ids(batch.iter().map(|sp| &sp.series)) {
            Ok(Some(reserved)) => reserved,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        let mut payloads = std::mem::take(&mut defs.payloads);
        payloads.extend(encode_points(batch, &ids, inner.opts.max_record_points));
        // Settled however this ends, even if the caller stops waiting:
        // other writers of these series wait for it.
        let mut unsettled = Unsettled { inner, defs: Some(defs) };
        if payloads.is_empty() {
            unsettled.settle(true);
            return Some(Ok(()));
        }
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        let ticket = inner.wal.enqueue(&refs)?;
        drop(refs);
        drop(payloads);
        let start = || {
            let inner = self.inner.clone();
            start_leader(Leader::new(move || inner.wal.lead_queued(|rec| inner.apply_durable(rec))));
        };
        let appended = inner.wal.durable(ticket, &start).await;
        unsettled.settle(appended.is_ok());
        if let Err(e) = appended {
            return Some(Err(e));
        }
        if inner.mem.read().active.points >= inner.opts.flush_points {
            inner.request_flush();
        }
        Some(Ok(()))
    }

    /// Reads points in `(start, end]` for every requested series.
    pub fn fetch(&self, req: &FetchRequest) -> Result<FetchResponse> {
        self.inner.fetch(req)
    }

    /// Points in `(start, end]` folded into per-bucket partials (aggregation
    /// pushdown).
    pub fn fetch_buckets(&self, req: &BucketFetchRequest) -> Result<BucketFetchResponse> {
        self.inner.fetch_buckets(req)
    }

    /// [`fetch_buckets`](Self::fetch_buckets) when it is quick (a few
    /// series, their blocks decoded in the cache): it then runs on the
    /// calling thread (see [`SmallRead`]).
    pub(crate) fn fetch_buckets_if_small(&self, req: &BucketFetchRequest) -> Result<SmallRead> {
        self.inner.fetch_buckets_if_small(req)
    }

    /// Folds the plans a [`SmallRead::Planned`] gave back.
    pub(crate) fn fold_planned(&self, req: &BucketFetchRequest, plans: Vec<Plan>) -> Result<BucketFetchResponse> {
        self.inner.fold_planned(req, plans)
    }

    /// Points of one series in `range`, sorted and unique.
    pub fn fetch_one(&self, series: &Series, range: TimeRange) -> Result<PointBatch> {
        let req = FetchRequest { series: vec![series.clone()].into(), range, point_limit: 0 };
        let mut resp = self.fetch(&req)?;
        Ok(resp.series.pop().map(|s| s.points).unwrap_or_default())
    }

    /// Number of points of `series` in `range`.
    pub fn count(&self, series: &Series, range: TimeRange) -> Result<u64> {
        Ok(self.fetch_one(series, range)?.len() as u64)
    }

    /// A page of series that hold data, in creation order. `cursor` is the
    /// `next_cursor` of the previous page.
    pub fn list_series(&self, cursor: Option<&str>, limit: usize) -> Result<SeriesListPage> {
        let after = match cursor {
            None => None,
            Some(c) => Some(c.parse::<u64>().map_err(|_| Error::InvalidInput(format!("bad cursor {c:?}")))?),
        };
        let limit = if limit == 0 { usize::MAX } else { limit };
        let cat = self.inner.catalog.read();
        let mem = self.inner.mem.read();
        let start = after.map_or(0, |a| a + 1);
        let mut out = Vec::new();
        let mut last = None;
        let mut more = false;
        for id in cat.defined_from(start) {
            if !self.inner.has_data(&mem, id) {
                continue;
            }
            if out.len() == limit {
                more = true;
                break;
            }
            out.extend(cat.series(id));
            last = Some(id);
        }
        let next_cursor = match (more, last) {
            (true, Some(id)) => RSome(RString::from(id.to_string())),
            _ => RNone,
        };
        Ok(SeriesListPage { series: out.into(), next_cursor })
    }

    /// Deletes all points of these series; returns how many had data.
    pub fn delete(&self, series: &[Series]) -> Result<u64> {
        crate::flush::delete(&self.inner, series)
    }

    /// Deletes the points of these series in `range`; returns how many had
    /// points there. Atomic per series (see `flush::delete_range`).
    pub fn delete_range(&self, series: &[Series], range: TimeRange) -> Result<u64> {
        if range == TimeRange::ALL {
            return self.delete(series);
        }
        crate::flush::delete_range(&self.inner, series, range)
    }

    /// Writes the head to a segment now and truncates the WAL.
    pub fn flush(&self) -> Result<()> {
        crate::flush::flush(&self.inner)
    }

    /// Merges every segment into one now.
    pub fn compact(&self) -> Result<()> {
        let _g = self.inner.flush_lock.lock();
        crate::flush::compact_locked(&self.inner)
    }

    pub fn stats(&self) -> MetricStats {
        let series = self.inner.catalog.read().len() as u64;
        let mem = self.inner.mem.read();
        let blocks = mem.blocks.values().flatten();
        let (cache_hits, cache_misses, cache_bytes) = self.inner.cache.stats();
        MetricStats {
            cache_hits,
            cache_misses,
            cache_bytes,
            series,
            head_points: mem.head_points() as u64,
            segments: mem.segments.len() as u64,
            blocks: blocks.clone().count() as u64,
            block_points: blocks.map(|b| u64::from(b.meta.count)).sum(),
            segment_bytes: mem.segments.values().map(|s| s.size).sum(),
        }
    }

    /// Why the store cannot take writes now, if it cannot: a log whose write
    /// failed, a failing flush, or heads over their bound. Clears by itself
    /// once the disk takes writes again.
    pub fn trouble(&self) -> Option<String> {
        let inner = &self.inner;
        if let Some(b) = inner.wal.broken().or_else(|| inner.catalog_log.active().broken()) {
            return Some(b.reason);
        }
        if let Some(e) = inner.flush_error.lock().clone() {
            return Some(format!("flushing fails: {e}"));
        }
        inner.check_room().err().map(|e| e.to_string())
    }

    /// What degrades without failing writes: the catalog cannot be
    /// compacted.
    pub fn warning(&self) -> Option<String> {
        self.inner.catalog_log.trouble()
    }

    /// Flushes and stops the background thread. Dropping the store without
    /// closing is safe (the WAL is replayed at the next open), only slower.
    pub fn close(mut self) -> Result<()> {
        self.stop_flusher();
        self.flush()
    }

    fn stop_flusher(&mut self) {
        if let Some(handle) = self.flusher.take() {
            self.inner.wake.lock().stop = true;
            self.inner.wake_cond.notify_all();
            let _ = handle.join();
        }
    }
}

impl Drop for MetricStore {
    fn drop(&mut self) {
        self.stop_flusher();
    }
}

/// Refuses a batch whose series have as many timestamps as values.
fn validate(batch: &[SeriesPoints]) -> Result<()> {
    for sp in batch {
        if sp.points.timestamps.len() != sp.points.values.len() {
            return Err(Error::InvalidInput(format!(
                "series {:?} has {} timestamps but {} values",
                sp.series.key,
                sp.points.timestamps.len(),
                sp.points.values.len()
            )));
        }
    }
    Ok(())
}

/// Reserved definitions of a queued write, given back if it is dropped
/// before its records are known to be durable.
struct Unsettled<'a> {
    inner: &'a Inner,
    defs: Option<Definitions>,
}

impl Unsettled<'_> {
    fn settle(&mut self, durable: bool) {
        if let Some(defs) = self.defs.take() {
            self.inner.settle(defs, durable);
        }
    }
}

impl Drop for Unsettled<'_> {
    fn drop(&mut self) {
        self.settle(false);
    }
}

/// New series with the ids reserved for them, and their log records.
#[derive(Default)]
pub(crate) struct Definitions {
    series: Vec<(Series, u64)>,
    payloads: Vec<Vec<u8>>,
}

impl Inner {
    /// The id of each series: known ones from the catalog; new ones
    /// reserved, with the definition records the caller must make durable
    /// and then [`settle`](Self::settle). A series another writer is
    /// defining is waited for: its id is not usable before its definition
    /// is durable. The lock is not held across an fsync, so concurrent
    /// writers of new series share one (the log's group commit).
    pub(crate) fn reserve_ids<'a>(
        &self,
        series: impl Iterator<Item = &'a Series> + Clone,
    ) -> Result<(Vec<u64>, Definitions)> {
        loop {
            let generation = *self.settled.lock();
            if let Some(reserved) = self.try_reserve_ids(series.clone())? {
                return Ok(reserved);
            }
            let mut settled = self.settled.lock();
            if *settled == generation {
                // Bounded: a writer always settles what it reserved.
                self.defined.wait_for(&mut settled, std::time::Duration::from_millis(100));
            }
        }
    }

    /// [`reserve_ids`](Self::reserve_ids) without waiting: `None`, with
    /// nothing reserved, when another writer is defining one of the series.
    pub(crate) fn try_reserve_ids<'a>(
        &self,
        series: impl Iterator<Item = &'a Series> + Clone,
    ) -> Result<Option<(Vec<u64>, Definitions)>> {
        {
            let cat = self.catalog.read();
            let found: Option<Vec<u64>> = series.clone().map(|s| cat.id_of(&normalized(s))).collect();
            if let Some(ids) = found {
                return Ok(Some((ids, Definitions::default())));
            }
        }
        let mut cat = self.catalog.write();
        let mut defs = Definitions::default();
        let mut ids = Vec::new();
        // A set, not a list: a batch of many new series (a fresh
        // deployment) must not cost a comparison per pair of them.
        let mut own: HashMap<Series, u64> = HashMap::new();
        for s in series {
            let s = normalized(s);
            if let Some(id) = cat.id_of(&s).or_else(|| own.get(&*s).copied()) {
                ids.push(id);
                continue;
            }
            if cat.pending.contains_key(&*s) {
                // Give back what was reserved so far.
                for (s, id) in defs.series {
                    cat.pending.remove(&s);
                    cat.retry.insert(s, id);
                }
                return Ok(None);
            }
            let id = match cat.retry.remove(&*s) {
                Some(id) => id,
                None => {
                    cat.next_id += 1;
                    cat.next_id - 1
                }
            };
            let s = s.into_owned();
            defs.payloads.push(encode_define(id, &s));
            cat.pending.insert(s.clone(), id);
            own.insert(s.clone(), id);
            defs.series.push((s, id));
            ids.push(id);
        }
        Ok(Some((ids, defs)))
    }

    /// Publishes reserved definitions once their records are durable, or,
    /// when the append failed, keeps their ids for the retry (the failed
    /// record may have reached the disk, and a series must never get two
    /// ids).
    pub(crate) fn settle(&self, defs: Definitions, durable: bool) {
        if defs.series.is_empty() {
            return;
        }
        {
            let mut cat = self.catalog.write();
            for (s, id) in defs.series {
                cat.pending.remove(&s);
                if durable {
                    cat.define(id, &s);
                } else {
                    cat.retry.insert(s, id);
                }
            }
        }
        *self.settled.lock() += 1;
        self.defined.notify_all();
    }

    fn has_data(&self, mem: &Mem, id: u64) -> bool {
        mem.blocks.get(&id).is_some_and(|b| !b.is_empty())
            || mem.active.series.contains_key(&id)
            || mem.frozen.iter().any(|(seq, h)| h.series.contains_key(&id) && mem.visible(id, *seq))
    }
}
