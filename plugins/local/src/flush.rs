//! Recovery at open, flushing heads into segments, deletes and compaction of
//! the metric store (see `metrics.rs` for the sequence-number scheme).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use heroic_plugin_api::types::{PointBatch, Series, SeriesPoints, TimeRange};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::block_cache::BlockCache;
use crate::compacted::CompactedLog;
use crate::dir_lock::DirLock;
use crate::encoding::put_u64;
use crate::error::{IoContext, Result};
use crate::head::{merge_runs, Head};
use crate::log::{sync_dir, RecordLog};
use crate::read::Decoder;
use crate::segment::{parse_segment_name, BlockMeta, Segment, SegmentWriter};
use crate::store::{
    parse_catalog_record, BlockRef, Catalog, CatalogRecord, Inner, Mem, MetricOptions, MetricStore, Wake, REC_TOMBSTONE,
};
use crate::wal_record::{apply_points, encode_points, parse_define};

fn wal_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("wal-{seq:020}.log"))
}

pub(crate) fn parse_wal_name(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?.strip_suffix(".log")?.parse().ok()
}

pub(crate) fn open(dir: &Path, opts: MetricOptions) -> Result<MetricStore> {
    fs::create_dir_all(dir).ctx(dir)?;
    // Before reading anything: recovery below truncates and deletes files.
    let dir_lock = DirLock::acquire(dir)?;
    let catalog_path = dir.join("series.log");
    let mut catalog = Catalog::new();
    let mut tombstones: HashMap<u64, u64> = HashMap::new();
    let mut undecodable: Vec<usize> = Vec::new();
    let (catalog_log, catalog_damage) =
        CompactedLog::open(dir, "series", |offset, rec| match parse_catalog_record(rec) {
            Some(CatalogRecord::Def { id, series }) => {
                catalog.next_id = catalog.next_id.max(id + 1);
                catalog.define(id, &series);
            }
            Some(CatalogRecord::Tombstone { id, seq }) => {
                catalog.next_id = catalog.next_id.max(id + 1);
                let t = tombstones.entry(id).or_insert(0);
                *t = (*t).max(seq);
            }
            None => undecodable.push(offset),
        })?;
    for offset in &undecodable {
        // An intact frame this version cannot read: skipped like damage.
        tracing::warn!(path = %catalog_path.display(), offset, "skipped an undecodable series definition");
    }
    let catalog_damaged = catalog_damage.any() || !undecodable.is_empty();

    // Segments and WAL files present.
    let mut segments: Vec<(Segment, Vec<BlockMeta>)> = Vec::new();
    let mut wals: Vec<u64> = Vec::new();
    for entry in fs::read_dir(dir).ctx(dir)? {
        let entry = entry.ctx(dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            // An unfinished segment from a crashed flush; its WAL is still there.
            fs::remove_file(entry.path()).ctx(&entry.path())?;
        } else if parse_segment_name(&name).is_some() {
            segments.push(Segment::open(&entry.path())?);
        } else if let Some(seq) = parse_wal_name(&name) {
            wals.push(seq);
        }
    }
    // A compaction that crashed before removing its inputs leaves segments
    // whose range another segment covers: those are redundant.
    let ranges: Vec<(u64, u64)> = segments.iter().map(|(s, _)| (s.min_seq, s.max_seq)).collect();
    let covered = |s: &Segment| {
        ranges.iter().any(|&(lo, hi)| lo <= s.min_seq && s.max_seq <= hi && (lo, hi) != (s.min_seq, s.max_seq))
    };
    let mut mem = Mem {
        active: Head::default(),
        active_seq: 0,
        frozen: Vec::new(),
        blocks: Default::default(),
        segments: BTreeMap::new(),
        tombstones,
    };
    // Series ids are never handed out twice, even when the catalog lost the
    // definition of an id that data still refers to: the next id is above
    // every id in use anywhere (catalog, segments, write-ahead logs).
    let mut max_id_seen: Option<u64> = None;
    for (seg, metas) in segments {
        max_id_seen = max_id_seen.max(metas.iter().map(|m| m.series).max());
        if covered(&seg) {
            fs::remove_file(&seg.path).ctx(&seg.path)?;
            continue;
        }
        register(&mut mem, Arc::new(seg), metas);
    }
    let max_seg = mem.segments.keys().map(|k| k.1).max().unwrap_or(0);
    wals.sort_unstable();
    let max_seq = wals.last().copied().unwrap_or(0).max(max_seg);
    mem.active_seq = max_seq + 1;
    let (wal, _) = RecordLog::open(&wal_path(dir, mem.active_seq), |_, _| ())?;
    let inner = Arc::new(Inner {
        dir: dir.to_path_buf(),
        cache: BlockCache::new(opts.block_cache_bytes),
        opts,
        wal,
        catalog_log,
        catalog: RwLock::new(catalog),
        unsaved: Mutex::new(Vec::new()),
        saving: Mutex::new(()),
        settled: Mutex::new(0),
        defined: Condvar::new(),
        mem: RwLock::new(mem),
        flush_lock: Mutex::new(()),
        wake: Mutex::new(Wake::default()),
        wake_cond: Condvar::new(),
        flush_error: Mutex::new(None),
        _dir_lock: dir_lock,
    });
    // Replay one write-ahead log at a time and flush it before reading the
    // next, so that recovery holds one log's points in memory, not all.
    for &seq in &wals {
        max_id_seen = max_id_seen.max(replay(&inner, seq)?);
    }
    {
        let mut catalog = inner.catalog.write();
        if let Some(top) = max_id_seen {
            if top >= catalog.next_id {
                tracing::warn!(
                    path = %catalog_path.display(),
                    next_id = catalog.next_id,
                    highest_id_in_data = top,
                    "data refers to series ids the catalog does not define (a damaged catalog); new series get ids above them"
                );
                catalog.next_id = top + 1;
            }
        }
        if catalog_damaged {
            let mem = inner.mem.read();
            let orphans = mem.blocks.keys().filter(|id| !catalog.defines(**id)).count();
            tracing::warn!(path = %catalog_path.display(), series_without_definition = orphans, "the series catalog was damaged");
        }
    }
    let flusher = if inner.opts.background_flush {
        let inner = inner.clone();
        let handle = std::thread::Builder::new()
            .name("heroic-local-flush".into())
            .spawn(move || flusher(&inner))
            .map_err(|e| crate::error::Error::Io { path: dir.to_path_buf(), source: e })?;
        Some(handle)
    } else {
        None
    };
    Ok(MetricStore { inner, flusher })
}

/// Replays the write-ahead log `seq` into a frozen head and flushes it;
/// returns the highest series id it holds. A log already covered by a
/// segment (the crash came after the flush, before its removal) is removed.
/// When the flush fails (a full disk) the head stays in memory, to be
/// flushed by the background thread once it can.
fn replay(inner: &Inner, seq: u64) -> Result<Option<u64>> {
    let path = wal_path(&inner.dir, seq);
    if inner.mem.read().segments.keys().any(|&(lo, hi)| lo <= seq && seq <= hi) {
        fs::remove_file(&path).ctx(&path)?;
        return Ok(None);
    }
    let mut head = Head::default();
    let mut top = None;
    let mut defined = 0usize;
    let (log, damage) = RecordLog::open(&path, |offset, rec| {
        if let Some((id, series)) = parse_define(rec) {
            // Defined in the catalog (in memory now, on disk before this
            // log is removed) as when it was written.
            top = top.max(Some(id));
            defined += 1;
            inner.apply_durable(rec);
            let mut catalog = inner.catalog.write();
            if catalog.id_of(&series) != Some(id) {
                catalog.define(id, &series);
            }
            return;
        }
        match apply_points(rec, &mut head) {
            Some(t) => top = top.max(t),
            None => tracing::warn!(path = %path.display(), offset, "skipped an undecodable write-ahead log record"),
        }
    })?;
    drop(log);
    if damage.any() {
        tracing::warn!(
            path = %path.display(),
            skipped_bytes = damage.skipped_bytes(),
            tail_bytes = damage.tail,
            "recovered a damaged write-ahead log"
        );
    }
    tracing::info!(path = %path.display(), points = head.points, new_series = defined, "replayed a write-ahead log");
    inner.mem.write().frozen.push((seq, Arc::new(head)));
    let _g = inner.flush_lock.lock();
    if let Err(e) = flush_frozen_locked(inner) {
        tracing::error!(path = %path.display(), error = %e, "could not flush a replayed write-ahead log; keeping it in memory and retrying in the background");
        *inner.flush_error.lock() = Some(e.to_string());
    }
    Ok(top)
}

/// Adds a segment's blocks, leaving out those a tombstone hides.
fn register(mem: &mut Mem, seg: Arc<Segment>, metas: Vec<BlockMeta>) {
    for meta in metas {
        if mem.visible(meta.series, meta.seq) {
            // Most series have one block a segment: a first push would
            // reserve four (256 bytes a series, 25 MB at 100,000 series).
            let blocks = mem.blocks.entry(meta.series).or_insert_with(|| Vec::with_capacity(1));
            blocks.push(BlockRef { seg: seg.clone(), meta });
        }
    }
    mem.segments.insert((seg.min_seq, seg.max_seq), seg);
}

/// The background thread: flushes on request and on age, retries a failed
/// flush every tick, and makes a failed write-ahead log writable again
/// without waiting for a writer, so that `/status` turns healthy as soon as
/// the disk is.
fn flusher(inner: &Inner) {
    let mut tick = inner.opts.flush_interval.min(Duration::from_secs(1));
    if !inner.opts.flush_idle.is_zero() {
        tick = tick.min(inner.opts.flush_idle);
    }
    loop {
        let requested = {
            let mut wake = inner.wake.lock();
            if !wake.requested && !wake.stop {
                inner.wake_cond.wait_for(&mut wake, tick);
            }
            if wake.stop {
                return;
            }
            std::mem::take(&mut wake.requested)
        };
        let (due, behind) = {
            let mem = inner.mem.read();
            let head = &mem.active;
            let aged = head.created.elapsed() >= inner.opts.flush_interval;
            // A head worth a block that nobody writes to any more: ingest
            // paused, so the WAL's bytes can become compressed blocks now.
            let idle = !inner.opts.flush_idle.is_zero()
                && head.points >= inner.opts.block_points
                && head.last_write.elapsed() >= inner.opts.flush_idle;
            (!head.is_empty() && (aged || idle), !mem.frozen.is_empty())
        };
        if inner.wal.broken().is_some() {
            // Errors are logged by the log and reported by health.
            let _ = restart_wal(inner);
        }
        if inner.catalog_log.active().broken().is_some() {
            let _ = inner.catalog_log.active().recover();
        }
        // New series are saved to the catalog a second at most after
        // their write, which bounds the list kept for it in memory.
        if let Err(e) = inner.save_definitions() {
            // The catalog's log has said why, and health shows it.
            tracing::debug!(error = %e, "could not save new series to the catalog; retrying");
        }
        if requested || due || behind {
            // Failures are recorded (health, `Busy`) and retried next tick.
            let _ = flush(inner);
        }
    }
}

/// Flushes the active head and everything waiting; records the outcome
/// for health and for writers refused while flushing fails.
pub(crate) fn flush(inner: &Inner) -> Result<()> {
    let res: Result<()> = (|| {
        let _g = inner.flush_lock.lock();
        if !inner.mem.read().active.is_empty() {
            rotate_locked(inner)?;
        }
        flush_frozen_locked(inner)?;
        if inner.mem.read().segments.len() > inner.opts.compact_segments {
            compact_locked(inner)?;
        }
        Ok(())
    })();
    let mut last = inner.flush_error.lock();
    match &res {
        Ok(()) => {
            if let Some(was) = last.take() {
                tracing::info!(after = %was, "flushing works again");
            }
        }
        Err(e) => {
            if last.is_none() {
                tracing::error!(error = %e, "flush failed; retrying every second, data stays in the write-ahead log");
            }
            *last = Some(e.to_string());
        }
    }
    res
}

/// Freezes the active head and starts a new WAL file; returns the new
/// active sequence.
fn rotate_locked(inner: &Inner) -> Result<u64> {
    let new_seq = inner.mem.read().active_seq + 1;
    inner.wal.rotate(
        &wal_path(&inner.dir, new_seq),
        |rec| inner.apply_durable(rec),
        || {
            let mut mem = inner.mem.write();
            let old = std::mem::take(&mut mem.active);
            let old_seq = mem.active_seq;
            mem.frozen.push((old_seq, Arc::new(old)));
            mem.active_seq = new_seq;
        },
    )?;
    Ok(new_seq)
}

/// Makes a write-ahead log that failed a write writable again: when it
/// holds acknowledged records it is sealed and frozen (flushed later like
/// any other) and writes go on in a fresh file; when it holds none it is
/// cut back to empty and reused, so that a disk full for a while does not
/// leave a trail of empty files.
pub(crate) fn restart_wal(inner: &Inner) -> Result<()> {
    let _g = inner.flush_lock.lock();
    if inner.wal.broken().is_none() {
        return Ok(());
    }
    if inner.wal.durable_len() == 0 {
        return inner.wal.recover();
    }
    rotate_locked(inner)?;
    inner.request_flush();
    Ok(())
}

/// Writes every frozen head as a segment, then removes its WAL. First of
/// all the catalog saves the series those logs define: a segment makes its
/// log redundant (at open too), so it may not exist before they are saved.
fn flush_frozen_locked(inner: &Inner) -> Result<()> {
    inner.save_definitions()?;
    loop {
        let Some((seq, head)) = inner.mem.read().frozen.first().cloned() else { return Ok(()) };
        let mut writer = SegmentWriter::create(&inner.dir, seq, seq)?;
        for (id, run) in head.sorted_series() {
            if inner.mem.read().visible(id, seq) {
                writer.add_series(id, seq, &run.ts, &run.vals, inner.opts.block_points)?;
            }
        }
        let done = if writer.is_empty() {
            None // dropping the writer removes its file
        } else {
            Some(writer.finish()?)
        };
        {
            let mut mem = inner.mem.write();
            if let Some((seg, metas)) = done {
                register(&mut mem, Arc::new(seg), metas);
            }
            mem.frozen.remove(0);
        }
        let wal = wal_path(&inner.dir, seq);
        fs::remove_file(&wal).ctx(&wal)?;
        sync_dir(&inner.dir)?;
    }
}

pub(crate) fn delete(inner: &Inner, series: &[Series]) -> Result<u64> {
    let ids: Vec<u64> = series.iter().filter_map(|s| inner.id_of(s)).collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let _g = inner.flush_lock.lock();
    // Rotate so that every point written before the delete has a smaller
    // sequence than the tombstone, in memory and after a replay alike.
    let tomb = rotate_locked(inner)?;
    let deleted = tombstone_locked(inner, &ids, tomb)?;
    flush_frozen_locked(inner)?;
    Ok(deleted)
}

/// Deletes the points of `series` in `range`, atomically per series. After
/// a rotation to sequence T, the points to keep are read from the sources
/// below T, written again at T, and only then does a tombstone hide
/// everything below T. A crash in between leaves the old points (plus
/// copies of some of them, which change nothing), never a loss; writes that
/// arrive meanwhile are at T or above, so the tombstone leaves them alone.
pub(crate) fn delete_range(inner: &Inner, series: &[Series], range: TimeRange) -> Result<u64> {
    let ids: Vec<(&Series, u64)> = series.iter().filter_map(|s| Some((s, inner.id_of(s)?))).collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let _g = inner.flush_lock.lock();
    let tomb = rotate_locked(inner)?;
    let mut deleted = 0;
    for (s, id) in ids {
        let old = inner.read_before(id, tomb)?;
        if !old.ts.iter().any(|&t| range.contains(t)) {
            continue;
        }
        let mut keep = PointBatch::new();
        for (&t, &v) in old.ts.iter().zip(&old.vals) {
            if !range.contains(t) {
                keep.push(t, v);
            }
        }
        if !keep.is_empty() {
            let batch = [SeriesPoints { series: s.clone(), points: keep }];
            inner.append_points(&encode_points(&batch, &[id], inner.opts.max_record_points))?;
        }
        tombstone_locked(inner, &[id], tomb)?;
        deleted += 1;
    }
    flush_frozen_locked(inner)?;
    Ok(deleted)
}

/// Makes the sources of `ids` below sequence `tomb` invisible, durably
/// first; returns how many of them held data.
fn tombstone_locked(inner: &Inner, ids: &[u64], tomb: u64) -> Result<u64> {
    let payloads: Vec<Vec<u8>> = ids
        .iter()
        .map(|&id| {
            let mut p = vec![REC_TOMBSTONE];
            put_u64(&mut p, id);
            put_u64(&mut p, tomb);
            p
        })
        .collect();
    let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    inner.catalog_log.append(&refs)?;
    let mut deleted = 0;
    let mut mem = inner.mem.write();
    for &id in ids {
        let mut had = mem.frozen.iter().any(|(seq, h)| *seq < tomb && h.series.contains_key(&id));
        if let Some(blocks) = mem.blocks.get_mut(&id) {
            let before = blocks.len();
            blocks.retain(|b| b.meta.seq >= tomb);
            had |= blocks.len() < before;
        }
        deleted += u64::from(had);
        mem.tombstones.insert(id, tomb);
    }
    Ok(deleted)
}

/// Rewrites every segment into one: merges the blocks of each series (the
/// small blocks of frequent flushes become full ones), resolves overwrites
/// and drops deleted data.
pub(crate) fn compact_locked(inner: &Inner) -> Result<()> {
    type SeriesBlocks = Vec<(u64, Vec<BlockRef>)>;
    let (segments, mut blocks): (Vec<Arc<Segment>>, SeriesBlocks) = {
        let mem = inner.mem.read();
        (mem.segments.values().cloned().collect(), mem.blocks.iter().map(|(k, v)| (*k, v.clone())).collect())
    };
    if segments.len() <= 1 && blocks.iter().all(|(_, b)| b.len() <= 1) {
        return Ok(());
    }
    blocks.sort_unstable_by_key(|(id, _)| *id);
    let min = segments.iter().map(|s| s.min_seq).min().unwrap_or(0);
    let max = segments.iter().map(|s| s.max_seq).max().unwrap_or(0);
    let mut writer = SegmentWriter::create(&inner.dir, min, max)?;
    let mut decoder = Decoder::default();
    for (id, mut refs) in blocks {
        if refs.is_empty() {
            continue;
        }
        refs.sort_by_key(|b| (b.meta.seq, b.meta.min_ts));
        let seq = refs.iter().map(|b| b.meta.seq).max().unwrap_or(0);
        let run = merge_runs(decoder.read_blocks(&refs, TimeRange::ALL)?);
        writer.add_series(id, seq, &run.ts, &run.vals, inner.opts.block_points)?;
    }
    let (seg, metas) = writer.finish()?;
    let seg = Arc::new(seg);
    {
        let mut mem = inner.mem.write();
        mem.blocks.clear();
        mem.segments.clear();
        register(&mut mem, seg, metas);
    }
    for old in segments {
        if (old.min_seq, old.max_seq) != (min, max) {
            fs::remove_file(&old.path).ctx(&old.path)?;
        }
    }
    sync_dir(&inner.dir)
}
