//! A record log whose older records are kept compressed: the series
//! catalog (`series.log`) and the metadata and suggest registries
//! (`registry.log`). Their records are series (keys and tags), which repeat
//! a lot and compress about 8×; kept plain they would outweigh the points
//! of short series on disk.
//!
//! Files, for a log named `registry`:
//! - `registry.log`: the active [`RecordLog`], appended to as before;
//! - `registry-<k>.sealed`: an active log renamed by a compaction, not yet
//!   absorbed into a snapshot;
//! - `registry-<k>.snap`: every record of the sealed logs up to `k` (and of
//!   older snapshots), in order, as framed chunks of about [`CHUNK`] bytes
//!   of framed records, each compressed with zstd.
//!
//! Records are read back in order: the newest snapshot, the sealed logs
//! above it, the active log. A compaction, once the active log holds
//! [`COMPACT_AT`] bytes, seals it (under the log's lock, so writers wait only
//! for a rename), then writes snapshot `k` from the previous snapshot's
//! chunks, copied as they are, and the sealed logs' records, compressed
//! (`.tmp`, fsync, rename, directory fsync), and only then removes what it
//! absorbed. A crash at any point leaves either the old snapshot with the
//! sealed logs or the new snapshot, never a record twice or lost; opening
//! removes what a later snapshot already holds.
//!
//! Damage costs what it touches, as in a plain log: a damaged chunk of a
//! snapshot loses its records (about a thousand series), reported like a
//! damaged stretch of a log.

use std::fs;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::error::{IoContext, Result};
use crate::frame::{frame, scan, Damage, HEADER};
use crate::log::{sync_dir, Durable, RecordLog};

/// The active log is compacted once it holds this many bytes.
pub(crate) const COMPACT_AT: u64 = 64 << 10;

/// Plain bytes of framed records per compressed chunk (at least).
const CHUNK: usize = 64 << 10;

/// A chunk's payload: this type byte, the plain length (u32 LE), zstd data.
const CHUNK_ZSTD: u8 = b'Z';

/// A decompressed chunk is refused above this size (a damaged length must
/// not allocate without bound).
const CHUNK_MAX_PLAIN: usize = 256 << 20;

pub(crate) struct CompactedLog {
    log: RecordLog,
    dir: PathBuf,
    name: &'static str,
    /// Number of the next sealed log; taken (locked) by the one compaction
    /// running at a time.
    next_seal: Mutex<u64>,
    /// Why the last compaction failed, until one succeeds: shown by health
    /// (the records stay readable and durable, but the log grows and
    /// opening reads more until compaction works again).
    failed: Mutex<Option<String>>,
}

/// The files of a compacted log, in the order their records are read.
#[derive(Debug, Default)]
pub(crate) struct Files {
    /// The newest snapshot, and its number.
    pub(crate) snapshot: Option<(u64, PathBuf)>,
    /// Sealed logs not absorbed by that snapshot, oldest first.
    pub(crate) sealed: Vec<(u64, PathBuf)>,
    /// Snapshots and sealed logs a newer snapshot holds (left by a crash).
    pub(crate) stale: Vec<PathBuf>,
    /// Unfinished snapshots of an interrupted compaction.
    pub(crate) unfinished: Vec<PathBuf>,
    /// The active log.
    pub(crate) active: PathBuf,
}

fn numbered(file: &str, name: &str, ext: &str) -> Option<u64> {
    file.strip_prefix(name)?.strip_prefix('-')?.strip_suffix(ext)?.parse().ok()
}

/// Lists the files of the log `name` in `dir` (read only).
pub(crate) fn files(dir: &Path, name: &str) -> Result<Files> {
    let mut snaps = Vec::new();
    let mut sealed = Vec::new();
    let mut files = Files { active: dir.join(format!("{name}.log")), ..Files::default() };
    for entry in fs::read_dir(dir).ctx(dir)? {
        let entry = entry.ctx(dir)?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(k) = numbered(&file, name, ".snap") {
            snaps.push((k, entry.path()));
        } else if let Some(k) = numbered(&file, name, ".sealed") {
            sealed.push((k, entry.path()));
        } else if numbered(&file, name, ".snap.tmp").is_some() {
            files.unfinished.push(entry.path());
        }
    }
    snaps.sort();
    sealed.sort();
    let covered = snaps.last().map_or(0, |(k, _)| *k);
    files.snapshot = snaps.pop();
    files.stale = snaps.into_iter().map(|(_, p)| p).collect();
    for (k, p) in sealed {
        if k <= covered {
            files.stale.push(p);
        } else {
            files.sealed.push((k, p));
        }
    }
    Ok(files)
}

/// Calls `each` with every record of the snapshot `data` (with the offset
/// of its chunk); returns the chunks' damage, a chunk that does not
/// decompress counted as a damaged stretch.
pub(crate) fn read_snapshot(data: &[u8], mut each: impl FnMut(usize, &[u8])) -> Damage {
    let mut bad = Vec::new();
    let (_, mut damage) = scan(data, |offset, chunk| match decompress(chunk) {
        Some(plain) => {
            let (_, inner) = scan(&plain, |_, rec| each(offset, rec));
            if inner.any() {
                bad.push((offset, chunk.len()));
            }
        }
        None => bad.push((offset, chunk.len())),
    });
    damage.skipped.extend(bad);
    damage
}

fn decompress(chunk: &[u8]) -> Option<Vec<u8>> {
    let (&kind, rest) = chunk.split_first()?;
    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    if kind != CHUNK_ZSTD || len > CHUNK_MAX_PLAIN {
        return None;
    }
    let plain = zstd::bulk::decompress(&rest[4..], len).ok()?;
    (plain.len() == len).then_some(plain)
}

/// Frames `plain` (framed records) onto `out` as one compressed chunk.
fn put_chunk(out: &mut Vec<u8>, plain: &[u8]) -> Result<()> {
    let mut payload = vec![CHUNK_ZSTD];
    payload.extend_from_slice(&(plain.len() as u32).to_le_bytes());
    let z = zstd::bulk::compress(plain, 3).map_err(|e| crate::Error::Codec(format!("zstd: {e}")))?;
    payload.extend_from_slice(&z);
    frame(out, &payload);
    Ok(())
}

/// Compresses records (payloads) into chunks framed onto `out`.
fn put_records<'a>(out: &mut Vec<u8>, records: impl IntoIterator<Item = &'a [u8]>) -> Result<()> {
    let mut plain = Vec::with_capacity(CHUNK + 1024);
    for rec in records {
        frame(&mut plain, rec);
        if plain.len() >= CHUNK {
            put_chunk(out, &plain)?;
            plain.clear();
        }
    }
    if !plain.is_empty() {
        put_chunk(out, &plain)?;
    }
    Ok(())
}

fn merge(into: &mut Damage, d: Damage) {
    into.skipped.extend(d.skipped);
    into.tail += d.tail;
}

impl CompactedLog {
    /// Opens (or creates) the log `name` in `dir`, calling `each` with every
    /// intact record in order (and an offset in its file, for messages).
    /// Returns the log and the damage found in all its files.
    pub(crate) fn open(dir: &Path, name: &'static str, mut each: impl FnMut(usize, &[u8])) -> Result<(Self, Damage)> {
        let found = files(dir, name)?;
        let mut damage = Damage::default();
        if !found.stale.is_empty() || !found.unfinished.is_empty() {
            for p in found.stale.iter().chain(&found.unfinished) {
                fs::remove_file(p).ctx(p)?;
            }
            sync_dir(dir)?;
        }
        let mut last = 0;
        if let Some((k, path)) = &found.snapshot {
            let data = fs::read(path).ctx(path)?;
            let d = read_snapshot(&data, &mut each);
            for &(offset, bytes) in &d.skipped {
                tracing::warn!(path = %path.display(), offset, bytes_lost = bytes,
                    "skipped a damaged chunk of a snapshot; the records after it are kept");
            }
            merge(&mut damage, d);
            last = *k;
        }
        for (k, path) in &found.sealed {
            let data = fs::read(path).ctx(path)?;
            let (_, d) = scan(&data, &mut each);
            for &(offset, bytes) in &d.skipped {
                tracing::warn!(path = %path.display(), offset, bytes_lost = bytes,
                    "skipped a damaged stretch of a log; the records after it are kept");
            }
            merge(&mut damage, d);
            last = last.max(*k);
        }
        let (log, d) = RecordLog::open(&found.active, each)?;
        merge(&mut damage, d);
        let log = CompactedLog {
            log,
            dir: dir.to_path_buf(),
            name,
            next_seal: Mutex::new(last + 1),
            failed: Mutex::new(None),
        };
        if !found.sealed.is_empty() {
            // A compaction was interrupted: finish it.
            let finished = log.absorb(last);
            log.record_outcome(&finished);
        }
        Ok((log, damage))
    }

    /// Appends records and returns once they are durable; compacts the log
    /// when its active file has grown enough (a failed compaction is logged
    /// and retried by a later write; the records stay readable either way).
    pub(crate) fn append(&self, payloads: &[&[u8]]) -> Result<()> {
        self.log.append(payloads)?;
        self.compact_if_due();
        Ok(())
    }

    /// Queues records without waiting (see `log/queued.rs`).
    pub(crate) fn enqueue(&self, payloads: &[&[u8]]) -> Option<u64> {
        self.log.enqueue(payloads)
    }

    /// Resolves once the records queued as `ticket` are durable; `start`
    /// gets [`lead_queued`](Self::lead_queued) run (see `log/queued.rs`).
    pub(crate) fn durable<'a>(&'a self, ticket: u64, start: &'a (dyn Fn() + Sync)) -> Durable<'a> {
        self.log.durable(ticket, start)
    }

    /// Writes what is queued, then compacts as [`append`](Self::append)
    /// does. Blocks.
    pub(crate) fn lead_queued(&self) {
        self.log.lead_queued(|_| ());
        self.compact_if_due();
    }

    fn compact_if_due(&self) {
        if self.log.durable_len() >= COMPACT_AT {
            if let Some(mut next) = self.next_seal.try_lock() {
                let compacted = self.compact(&mut next);
                self.record_outcome(&compacted);
            }
        }
    }

    /// Keeps the failure of a compaction for [`trouble`](Self::trouble)
    /// (logged once, not at every retry), or clears it on success.
    fn record_outcome(&self, outcome: &Result<()>) {
        let mut failed = self.failed.lock();
        match outcome {
            Ok(()) => {
                if let Some(was) = failed.take() {
                    tracing::info!(dir = %self.dir.display(), log = self.name, after = %was, "compacting the log works again");
                }
            }
            Err(e) => {
                if failed.is_none() {
                    tracing::warn!(dir = %self.dir.display(), log = self.name, error = %e,
                        "could not compact a log; its records are kept and it is retried as the log grows");
                }
                *failed = Some(e.to_string());
            }
        }
    }

    /// Why compacting the log fails, while it does.
    pub(crate) fn trouble(&self) -> Option<String> {
        let failed = self.failed.lock();
        failed.as_ref().map(|e| format!("compacting {}.log fails (its records are kept; retried): {e}", self.name))
    }

    fn sealed_path(&self, k: u64) -> PathBuf {
        self.dir.join(format!("{}-{k:08}.sealed", self.name))
    }

    fn snapshot_path(&self, k: u64) -> PathBuf {
        self.dir.join(format!("{}-{k:08}.snap", self.name))
    }

    /// Seals the active log as number `*next` and absorbs it.
    fn compact(&self, next: &mut u64) -> Result<()> {
        let k = *next;
        self.log.seal(&self.sealed_path(k))?;
        *next = k + 1;
        self.absorb(k)
    }

    /// Writes snapshot `k`: the chunks of the newest snapshot below it, then
    /// the records of every sealed log up to `k`; then removes those.
    fn absorb(&self, k: u64) -> Result<()> {
        let found = files(&self.dir, self.name)?;
        let mut out = Vec::new();
        if let Some((_, path)) = &found.snapshot {
            let data = fs::read(path).ctx(path)?;
            // Intact chunks as they are (a damaged one was reported at open).
            scan(&data, |_, chunk| frame(&mut out, chunk));
        }
        let mut absorbed: Vec<&PathBuf> = found.snapshot.iter().map(|(_, p)| p).collect();
        for (_, path) in found.sealed.iter().filter(|(s, _)| *s <= k) {
            let data = fs::read(path).ctx(path)?;
            let mut spans = Vec::new();
            scan(&data, |offset, rec| spans.push((offset + HEADER, rec.len())));
            put_records(&mut out, spans.iter().map(|&(at, len)| &data[at..at + len]))?;
            absorbed.push(path);
        }
        self.write_snapshot(k, &out)?;
        for path in absorbed {
            fs::remove_file(path).ctx(path)?;
        }
        sync_dir(&self.dir)
    }

    fn write_snapshot(&self, k: u64, data: &[u8]) -> Result<()> {
        let path = self.snapshot_path(k);
        let tmp = path.with_extension("snap.tmp");
        fs::write(&tmp, data).ctx(&tmp)?;
        fs::File::open(&tmp).and_then(|f| f.sync_all()).ctx(&tmp)?;
        fs::rename(&tmp, &path).ctx(&path)?;
        sync_dir(&self.dir)
    }

    /// Replaces every record with `records` (the live ones, at open): the
    /// active log is sealed and a snapshot of `records` written over all
    /// of it.
    pub(crate) fn rewrite<'a>(&self, records: impl IntoIterator<Item = &'a [u8]>) -> Result<()> {
        let mut next = self.next_seal.lock();
        let k = *next;
        self.log.seal(&self.sealed_path(k))?;
        *next = k + 1;
        let found = files(&self.dir, self.name)?;
        let mut out = Vec::new();
        put_records(&mut out, records)?;
        self.write_snapshot(k, &out)?;
        for path in found.snapshot.iter().map(|(_, p)| p).chain(found.sealed.iter().map(|(_, p)| p)) {
            fs::remove_file(path).ctx(path)?;
        }
        sync_dir(&self.dir)
    }

    /// The active log (for health and recovery).
    pub(crate) fn active(&self) -> &RecordLog {
        &self.log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(dir: &Path) -> (Vec<Vec<u8>>, Damage) {
        let mut out = Vec::new();
        let (_, damage) = CompactedLog::open(dir, "reg", |_, r| out.push(r.to_vec())).unwrap();
        (out, damage)
    }

    fn rec(i: u32) -> Vec<u8> {
        format!("series-{i:06}-host-h{:02}-role-r{}", i % 100, i % 10).into_bytes()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        n.sort();
        n
    }

    #[test]
    fn records_move_into_compressed_snapshots_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let n = 20_000;
        {
            let (log, _) = CompactedLog::open(dir.path(), "reg", |_, _| ()).unwrap();
            for i in 0..n {
                log.append(&[&rec(i)]).unwrap();
            }
        }
        let files = names(dir.path());
        assert!(files.iter().any(|f| f.ends_with(".snap")), "{files:?}");
        assert!(!files.iter().any(|f| f.ends_with(".sealed") || f.ends_with(".tmp")), "{files:?}");
        let plain: usize = (0..n).map(|i| rec(i).len() + 8).sum();
        let on_disk: u64 = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
        assert!(on_disk * 4 < plain as u64, "{on_disk} bytes on disk for {plain} plain");
        let (got, damage) = read_all(dir.path());
        assert!(!damage.any(), "{damage:?}");
        assert_eq!(got, (0..n).map(rec).collect::<Vec<_>>());
    }

    /// Every point a compaction can be cut at leaves the same records.
    #[test]
    fn an_interrupted_compaction_loses_and_repeats_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let n = 6_000;
        {
            let (log, _) = CompactedLog::open(dir.path(), "reg", |_, _| ()).unwrap();
            for i in 0..n {
                log.append(&[&rec(i)]).unwrap();
            }
        }
        let want: Vec<Vec<u8>> = (0..n).map(rec).collect();
        let snap = names(dir.path()).into_iter().find(|f| f.ends_with(".snap")).unwrap();
        let k = numbered(&snap, "reg", ".snap").unwrap();
        let snap_path = dir.path().join(&snap);

        // Crash after sealing, before the snapshot: the sealed log is there.
        let sealed_case = tempfile::tempdir().unwrap();
        for f in names(dir.path()) {
            fs::copy(dir.path().join(&f), sealed_case.path().join(&f)).unwrap();
        }
        let active = sealed_case.path().join("reg.log");
        fs::rename(&active, sealed_case.path().join(format!("reg-{:08}.sealed", k + 1))).unwrap();
        fs::write(sealed_case.path().join(format!("reg-{:08}.snap.tmp", k + 1)), b"half a snapshot").unwrap();
        assert_eq!(read_all(sealed_case.path()).0, want);
        // Opening finished the compaction.
        let files = names(sealed_case.path());
        assert!(files.contains(&format!("reg-{:08}.snap", k + 1)), "{files:?}");
        assert!(!files.iter().any(|f| f.ends_with(".sealed") || f.ends_with(".tmp")), "{files:?}");
        assert_eq!(read_all(sealed_case.path()).0, want);

        // Crash after the new snapshot, before removing what it absorbed:
        // an old snapshot and a sealed log it holds.
        let stale_case = tempfile::tempdir().unwrap();
        for f in names(dir.path()) {
            fs::copy(dir.path().join(&f), stale_case.path().join(&f)).unwrap();
        }
        fs::copy(&snap_path, stale_case.path().join(format!("reg-{:08}.snap", k - 1))).unwrap();
        fs::write(stale_case.path().join(format!("reg-{k:08}.sealed")), b"absorbed already").unwrap();
        assert_eq!(read_all(stale_case.path()).0, want);
        assert_eq!(names(stale_case.path()), names(dir.path()));
    }

    /// A compaction that cannot write its snapshot is reported until one
    /// succeeds, and loses nothing meanwhile.
    #[test]
    fn a_failing_compaction_is_reported_until_one_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = CompactedLog::open(dir.path(), "reg", |_, _| ()).unwrap();
        // The first snapshot's temporary file cannot be created: a
        // directory is in its place.
        let blocker = dir.path().join(format!("reg-{:08}.snap.tmp", 1));
        fs::create_dir(&blocker).unwrap();
        let mut i = 0;
        while log.trouble().is_none() {
            log.append(&[&rec(i)]).unwrap();
            i += 1;
            assert!(i < 20_000, "no compaction was attempted");
        }
        let trouble = log.trouble().unwrap();
        assert!(trouble.contains("compacting reg.log fails") && trouble.contains("snap.tmp"), "{trouble}");
        fs::remove_dir(&blocker).unwrap();
        while log.trouble().is_some() {
            log.append(&[&rec(i)]).unwrap();
            i += 1;
            assert!(i < 40_000, "compaction did not recover");
        }
        drop(log);
        let (got, damage) = read_all(dir.path());
        assert!(!damage.any(), "{damage:?}");
        assert_eq!(got, (0..i).map(rec).collect::<Vec<_>>());
    }

    #[test]
    fn a_damaged_chunk_costs_its_records_only() {
        let dir = tempfile::tempdir().unwrap();
        let n = 10_000;
        {
            let (log, _) = CompactedLog::open(dir.path(), "reg", |_, _| ()).unwrap();
            for i in 0..n {
                log.append(&[&rec(i)]).unwrap();
            }
        }
        let snap = names(dir.path()).into_iter().find(|f| f.ends_with(".snap")).unwrap();
        let path = dir.path().join(snap);
        let mut bytes = fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        fs::write(&path, &bytes).unwrap();
        let (got, damage) = read_all(dir.path());
        assert_eq!(damage.skipped.len(), 1, "{damage:?}");
        let lost = n as usize - got.len();
        assert!(lost > 0 && lost < 2_000, "{lost} records lost");
        // What is left is still in order.
        assert!(got.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_rewrite_keeps_only_the_records_given() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (log, _) = CompactedLog::open(dir.path(), "reg", |_, _| ()).unwrap();
            for i in 0..5_000 {
                log.append(&[&rec(i)]).unwrap();
            }
            let live: Vec<Vec<u8>> = (0..10).map(rec).collect();
            log.rewrite(live.iter().map(Vec::as_slice)).unwrap();
            log.append(&[b"after"]).unwrap();
        }
        let mut want: Vec<Vec<u8>> = (0..10).map(rec).collect();
        want.push(b"after".to_vec());
        assert_eq!(read_all(dir.path()).0, want);
    }
}
