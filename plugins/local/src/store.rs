//! The state of the metric store that its parts share: the options, the
//! series catalog, the in-memory heads and blocks, and the handle itself.
//! `metrics.rs` (public API, write path, reads), `read.rs` (decoding) and
//! `flush.rs` (recovery, flush, delete, compaction) all build on it, and it
//! on none of them, so the store's files depend on each other in one
//! direction.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use heroic_plugin_api::types::Series;
use parking_lot::{Condvar, Mutex, RwLock};

use crate::block_cache::BlockCache;
use crate::compacted::CompactedLog;
use crate::dir_lock::DirLock;
use crate::encoding::{series_bytes, with_series_bytes, Reader};
use crate::error::{Error, Result};
use crate::head::Head;
use crate::log::RecordLog;
use crate::segment::{BlockMeta, Segment};
use crate::series_table::SeriesTable;
use crate::wal_record::{apply_points, REC_DEFINE};

/// Tuning of the metric store.
#[derive(Clone, Debug)]
pub struct MetricOptions {
    /// Flush the head to a segment once it holds this many points.
    pub flush_points: usize,
    /// Flush the head at least this often (it bounds WAL replay time).
    pub flush_interval: Duration,
    /// Flush the head once no point has been written for this long, if it
    /// holds at least a block's worth (`block_points`) of points: disk use
    /// settles soon after ingest pauses instead of after `flush_interval`.
    /// Zero turns it off.
    pub flush_idle: Duration,
    /// Points per compressed block at most.
    pub block_points: usize,
    /// Points per WAL record at most; larger writes are split.
    pub max_record_points: usize,
    /// Merge all segments into one when there are more than this many.
    pub compact_segments: usize,
    /// Refuse writes (retry later) while the heads waiting to be flushed
    /// hold more points than this: flushing fell behind or fails.
    pub head_limit_points: usize,
    /// Run a background thread that flushes on size and age.
    pub background_flush: bool,
    /// Bytes of decoded blocks kept for reads (0: none).
    pub block_cache_bytes: u64,
}

impl Default for MetricOptions {
    fn default() -> Self {
        MetricOptions {
            flush_points: 2_000_000,
            flush_interval: Duration::from_secs(300),
            flush_idle: Duration::from_secs(10),
            block_points: 8192,
            max_record_points: 65_536,
            compact_segments: 8,
            head_limit_points: 10_000_000,
            background_flush: true,
            block_cache_bytes: 128 << 20,
        }
    }
}

pub(crate) const REC_DEF: u8 = 1;
pub(crate) const REC_TOMBSTONE: u8 = 2;

/// A record of the series catalog (`series.log`).
pub(crate) enum CatalogRecord {
    /// `REC_DEF | id u64 | series`: a series and its id.
    Def { id: u64, series: Series },
    /// `REC_TOMBSTONE | id u64 | seq u64`: the series' points from sources
    /// below `seq` are deleted.
    Tombstone { id: u64, seq: u64 },
}

/// Decodes a catalog record; `None` when it does not decode.
pub(crate) fn parse_catalog_record(rec: &[u8]) -> Option<CatalogRecord> {
    let mut r = Reader::new(rec);
    match r.u8()? {
        REC_DEF => Some(CatalogRecord::Def { id: r.u64()?, series: r.series()? }),
        REC_TOMBSTONE => Some(CatalogRecord::Tombstone { id: r.u64()?, seq: r.u64()? }),
        _ => None,
    }
}

pub(crate) struct Catalog {
    /// Each series as its canonical bytes (`encoding::put_series`) with
    /// its id, found by the bytes' hash; every read looks up each of its
    /// series here. One allocation a series instead of a dozen, and a
    /// lookup compares one contiguous run of bytes kept in its entry
    /// instead of going through a map by id and chasing a pointer per tag:
    /// at 100,000 series both were per-series costs that showed (the
    /// catalog's memory, and a tenth of a query over every series).
    ids: SeriesTable<(u64, Box<[u8]>)>,
    /// The hash each id's entry is kept under in `ids`.
    by_id: foldhash::HashMap<u64, u64>,
    /// The defined ids, sorted (ids are handed out in order, so this is
    /// almost always a push), for listing series in creation order.
    ordered: Vec<u64>,
    pub(crate) next_id: u64,
    /// Series whose definition a writer is making durable, with the id it
    /// reserved: not usable until it is in `ids`.
    pub(crate) pending: foldhash::HashMap<Series, u64>,
    /// Ids reserved by a definition whose append failed: a retry defines
    /// the series with the same id, so that the catalog never holds two
    /// ids for it (the failed record may have reached the disk).
    pub(crate) retry: foldhash::HashMap<Series, u64>,
}

impl Catalog {
    /// The id of a (normalized) series.
    pub(crate) fn id_of(&self, s: &Series) -> Option<u64> {
        with_series_bytes(s, |bytes| self.ids.get(bytes, |(_, b)| **b == *bytes).map(|&(id, _)| id))
    }

    /// The canonical bytes of the series `id` names.
    fn bytes_of(&self, id: u64) -> Option<&[u8]> {
        let hash = *self.by_id.get(&id)?;
        self.ids.get_hashed(hash, |&(x, _)| x == id).map(|(_, b)| &**b)
    }

    /// Whether `id` names a series.
    pub(crate) fn defines(&self, id: u64) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Number of defined series.
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Defined ids of `start` or above, in order.
    pub(crate) fn defined_from(&self, start: u64) -> impl Iterator<Item = u64> + '_ {
        let from = self.ordered.partition_point(|&id| id < start);
        self.ordered[from..].iter().copied().filter(|&id| self.defines(id))
    }

    /// The series `id` names, read back from its bytes.
    pub(crate) fn series(&self, id: u64) -> Option<Series> {
        // The bytes were encoded here from a series, so they decode.
        Reader::new(self.bytes_of(id)?).series()
    }

    /// Defines `s` as `id`. A series defined again (a replayed record) takes
    /// its latest id, and its former id names nothing any more (it is
    /// neither listed nor counted); an id defined again names its latest
    /// series.
    pub(crate) fn define(&mut self, id: u64, s: &Series) {
        let bytes = series_bytes(s);
        let hash = self.ids.hash(&*bytes);
        if let Some((old, _)) = self.ids.remove_hashed(hash, |(_, b)| *b == bytes) {
            self.by_id.remove(&old);
        }
        if let Some(hash) = self.by_id.remove(&id) {
            // The id named another series: that one no longer has it.
            self.ids.remove_hashed(hash, |&(x, _)| x == id);
        }
        self.ids.insert_hashed(hash, (id, bytes));
        self.by_id.insert(id, hash);
        match self.ordered.binary_search(&id) {
            Ok(_) => {}
            Err(at) if at == self.ordered.len() => self.ordered.push(id),
            Err(at) => self.ordered.insert(at, id),
        }
    }

    pub(crate) fn new() -> Catalog {
        Catalog {
            ids: Default::default(),
            by_id: Default::default(),
            ordered: Vec::new(),
            next_id: 0,
            pending: Default::default(),
            retry: Default::default(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct BlockRef {
    pub(crate) seg: Arc<Segment>,
    pub(crate) meta: BlockMeta,
}

pub(crate) struct Mem {
    pub(crate) active: Head,
    pub(crate) active_seq: u64,
    /// Heads being flushed, oldest first, with their sequence.
    pub(crate) frozen: Vec<(u64, Arc<Head>)>,
    pub(crate) blocks: foldhash::HashMap<u64, Vec<BlockRef>>,
    pub(crate) segments: BTreeMap<(u64, u64), Arc<Segment>>,
    /// Series id → sources with a smaller sequence are deleted.
    pub(crate) tombstones: HashMap<u64, u64>,
}

impl Mem {
    /// Points in the heads (active and waiting to be flushed).
    pub(crate) fn head_points(&self) -> usize {
        self.active.points + self.frozen.iter().map(|f| f.1.points).sum::<usize>()
    }

    pub(crate) fn visible(&self, id: u64, seq: u64) -> bool {
        self.tombstones.get(&id).is_none_or(|&t| seq >= t)
    }
}

#[derive(Default)]
pub(crate) struct Wake {
    pub(crate) requested: bool,
    pub(crate) stop: bool,
}

pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) opts: MetricOptions,
    pub(crate) wal: RecordLog,
    pub(crate) catalog_log: CompactedLog,
    pub(crate) catalog: RwLock<Catalog>,
    /// Catalog records of series defined only in a write-ahead log so far,
    /// in log order: saved to the catalog before that log is removed, and
    /// every second (see `wal_record.rs`).
    pub(crate) unsaved: Mutex<Vec<Vec<u8>>>,
    /// One save of `unsaved` at a time (a save drains what it wrote).
    pub(crate) saving: Mutex<()>,
    /// Bumped (and `defined` notified) whenever pending definitions were
    /// settled, for writers waiting on another writer's definition.
    pub(crate) settled: Mutex<u64>,
    pub(crate) defined: Condvar,
    pub(crate) mem: RwLock<Mem>,
    /// One flush, delete or compaction at a time.
    pub(crate) flush_lock: Mutex<()>,
    pub(crate) wake: Mutex<Wake>,
    pub(crate) wake_cond: Condvar,
    /// Why the last flush failed, until one succeeds.
    pub(crate) flush_error: Mutex<Option<String>>,
    /// Decoded blocks of recent reads (not of compaction or checks).
    pub(crate) cache: BlockCache,
    /// Dropped with the last reference to the store (after the flusher
    /// thread has stopped), which unlocks the directory.
    pub(crate) _dir_lock: DirLock,
}

/// The embedded metric store. Cheap to share behind an `Arc`; every method
/// takes `&self` and is safe to call from many threads.
pub struct MetricStore {
    pub(crate) inner: Arc<Inner>,
    pub(crate) flusher: Option<JoinHandle<()>>,
}

/// The series in its normal form (tags sorted), borrowed when it already is.
pub(crate) fn normalized(series: &Series) -> std::borrow::Cow<'_, Series> {
    let sorted = |t: &[heroic_plugin_api::types::Tag]| t.windows(2).all(|w| w[0].key < w[1].key);
    if sorted(&series.tags) && sorted(&series.resource) {
        std::borrow::Cow::Borrowed(series)
    } else {
        let mut s = series.clone();
        s.normalize();
        std::borrow::Cow::Owned(s)
    }
}

impl Inner {
    /// The id of a series, if it was ever written.
    pub(crate) fn id_of(&self, series: &Series) -> Option<u64> {
        self.catalog.read().id_of(&normalized(series))
    }

    pub(crate) fn request_flush(&self) {
        self.wake.lock().requested = true;
        self.wake_cond.notify_all();
    }

    /// Appends points records to the write-ahead log; they reach the active
    /// head once durable (see `log.rs`), never before.
    pub(crate) fn append_points(&self, payloads: &[Vec<u8>]) -> Result<()> {
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        self.wal.append_applying(&refs, |rec| self.apply_durable(rec))
    }

    /// Applies a durable record: points to the active head; a definition
    /// to the list of those the catalog has yet to save. Called under the
    /// log's lock, so a log that is rotated away has had all of its
    /// definitions listed.
    pub(crate) fn apply_durable(&self, rec: &[u8]) {
        if rec.first() == Some(&REC_DEFINE) {
            // The catalog's record has the same layout after the kind.
            let mut def = rec.to_vec();
            def[0] = REC_DEF;
            self.unsaved.lock().push(def);
            return;
        }
        let mut mem = self.mem.write();
        if apply_points(rec, &mut mem.active).is_none() {
            // Records are encoded by this process; this cannot happen.
            tracing::error!(bytes = rec.len(), "a points record just written does not decode");
        }
    }

    /// Saves the definitions held only by write-ahead logs to the catalog
    /// (one fsync for all of them). Called before a log is removed; on
    /// failure they stay listed, and the log stays.
    pub(crate) fn save_definitions(&self) -> Result<()> {
        let _one = self.saving.lock();
        let defs: Vec<Vec<u8>> = self.unsaved.lock().clone();
        if defs.is_empty() {
            return Ok(());
        }
        let refs: Vec<&[u8]> = defs.iter().map(Vec::as_slice).collect();
        self.catalog_log.append(&refs)?;
        // Only appended to meanwhile, never reordered.
        self.unsaved.lock().drain(..defs.len());
        Ok(())
    }

    /// Refuses a write while the heads are over their bound, asking for a
    /// flush: the writer backs off instead of memory growing without end.
    pub(crate) fn check_room(&self) -> Result<()> {
        let points = self.mem.read().head_points();
        if points <= self.opts.head_limit_points {
            return Ok(());
        }
        self.request_flush();
        Err(Error::Busy { points, limit: self.opts.head_limit_points, cause: self.flush_error.lock().clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(i: usize) -> Series {
        Series::new("cpu", [("host", format!("h{i}").as_str()), ("role", "db")], [])
    }

    #[test]
    fn catalog_finds_lists_and_redefines_series_by_their_bytes() {
        let mut cat = Catalog::new();
        for i in 0..1_000 {
            cat.define(i as u64 * 2, &series(i));
        }
        assert_eq!(cat.len(), 1_000);
        for i in 0..1_000 {
            assert_eq!(cat.id_of(&series(i)), Some(i as u64 * 2));
        }
        assert_eq!(cat.id_of(&series(1_000)), None);
        assert!(cat.defines(4) && !cat.defines(5));
        let listed: Vec<(u64, Series)> = cat.defined_from(1_995).map(|id| (id, cat.series(id).unwrap())).collect();
        assert_eq!(listed, [(1_996, series(998)), (1_998, series(999))]);

        // A replayed record defines a series again with a later id: the
        // series has that id only.
        cat.define(5_000, &series(7));
        assert_eq!(cat.id_of(&series(7)), Some(5_000));
        assert!(!cat.defines(14));
        // An id defined again names its latest series; the one it named
        // before has no id any more.
        cat.define(16, &series(2_000));
        assert_eq!(cat.id_of(&series(2_000)), Some(16));
        assert_eq!(cat.id_of(&series(8)), None);
        assert_eq!(cat.len(), 1_000);
        let listed: Vec<(u64, Series)> = cat.defined_from(14).take(2).map(|id| (id, cat.series(id).unwrap())).collect();
        assert_eq!(listed, [(16, series(2_000)), (18, series(9))]);
        assert_eq!(cat.defined_from(0).count(), 1_000);
        assert_eq!(cat.defined_from(4_000).collect::<Vec<_>>(), [5_000]);
    }
}
