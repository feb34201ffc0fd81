//! An append-only record log with group commit: the building block of the
//! metric write-ahead log, the metric series catalog and the metadata
//! registry.
//!
//! Framing: every record is `len: u32 LE | crc32(payload): u32 LE | payload`,
//! and no record is empty (so a run of zero bytes, which a crash after the
//! file grew but before the data landed leaves, never reads as a record).
//!
//! Reading survives damage. A frame whose length runs past the end of the
//! file or whose checksum does not match is not a record; the reader then
//! looks for the next place where an intact frame starts, itself followed
//! by an intact frame or the end of the file (two checksums matching by
//! chance is not a real risk). Bytes skipped that way in the middle of the
//! file are reported (offset, length) and the records after them kept:
//! one flipped bit costs one record, not the rest of the log. Bytes after
//! the last intact record are a torn tail (a crash in the middle of a
//! write, or a zeroed end): opening a log truncates them, so that new
//! records are never hidden behind garbage.
//!
//! Group commit: [`RecordLog::append`] puts the framed record into a shared
//! pending buffer under a mutex. If no fsync is running, the caller becomes
//! the leader: it takes the whole pending buffer (its own record and those of
//! every writer that queued before it), writes it with one `write` and one
//! `fdatasync`, then wakes the others. Writers that arrive while a sync runs
//! queue up and are committed together by the next leader. So N concurrent
//! writers cost about two fsyncs, not N, and nobody returns before its
//! record is on disk.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, IoContext, Result};

const HEADER: usize = 8;

pub(crate) struct RecordLog {
    state: Mutex<State>,
    synced: Condvar,
}

struct State {
    path: PathBuf,
    file: Arc<File>,
    pending: Vec<u8>,
    /// Tickets handed out: one per `append` call.
    appended: u64,
    /// Every ticket up to this one is durable.
    synced: u64,
    syncing: bool,
    /// After a failed write or fsync the file's content is unknown (the page
    /// cache may have dropped dirty pages), so the log refuses further writes.
    failed: Option<String>,
}

/// Frames `payload` onto `out`. Payloads are never empty (see the module
/// docs); every caller writes at least a record type byte.
pub(crate) fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    debug_assert!(!payload.is_empty(), "empty records are not framed");
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// What reading a log found besides its intact records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Damage {
    /// Byte ranges skipped between intact records, as `(offset, length)`.
    pub(crate) skipped: Vec<(usize, usize)>,
    /// Bytes after the last intact record (a torn or zeroed tail).
    pub(crate) tail: usize,
}

impl Damage {
    /// Whether anything but intact records was found.
    pub(crate) fn any(&self) -> bool {
        !self.skipped.is_empty() || self.tail > 0
    }

    /// Bytes skipped in the middle of the log.
    pub(crate) fn skipped_bytes(&self) -> usize {
        self.skipped.iter().map(|(_, n)| n).sum()
    }
}

/// The end of the intact, non-empty record framed at `pos`, if there is one.
fn frame_at(data: &[u8], pos: usize) -> Option<usize> {
    let header = data.get(pos..pos.checked_add(HEADER)?)?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    let start = pos + HEADER;
    let end = start.checked_add(len).filter(|&e| len > 0 && e <= data.len())?;
    (crc32fast::hash(&data[start..end]) == crc).then_some(end)
}

/// The next offset after `from` where an intact record starts that is
/// followed by another intact record or by the end of the data.
fn resync(data: &[u8], from: usize) -> Option<usize> {
    (from + 1..data.len().saturating_sub(HEADER - 1))
        .find(|&q| frame_at(data, q).is_some_and(|end| end == data.len() || frame_at(data, end).is_some()))
}

/// Calls `each` with every intact record of `data` (and its offset);
/// returns the end of the last intact record and what was skipped.
pub(crate) fn scan(data: &[u8], mut each: impl FnMut(usize, &[u8])) -> (usize, Damage) {
    let (mut pos, mut good_end) = (0, 0);
    let mut damage = Damage::default();
    while pos < data.len() {
        match frame_at(data, pos) {
            Some(end) => {
                each(pos, &data[pos + HEADER..end]);
                pos = end;
                good_end = end;
            }
            None => match resync(data, pos) {
                Some(next) => {
                    damage.skipped.push((pos, next - pos));
                    pos = next;
                }
                None => break,
            },
        }
    }
    damage.tail = data.len() - good_end;
    (good_end, damage)
}

/// Fsyncs a directory so that a created, renamed or removed entry survives a
/// crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).ctx(dir)
}

impl RecordLog {
    /// Opens (or creates) the log at `path`, calling `each` with every intact
    /// record (and its offset), reports damaged stretches and truncates a
    /// torn tail. Returns the log and what was skipped or dropped.
    pub(crate) fn open(path: &Path, mut each: impl FnMut(usize, &[u8])) -> Result<(RecordLog, Damage)> {
        let existed = path.exists();
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path).ctx(path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).ctx(path)?;
        let (good, damage) = scan(&data, &mut each);
        for &(offset, bytes) in &damage.skipped {
            tracing::warn!(
                path = %path.display(),
                offset,
                bytes_lost = bytes,
                "skipped a damaged stretch of a log; the records after it are kept"
            );
        }
        if damage.tail > 0 {
            tracing::warn!(path = %path.display(), offset = good, bytes_lost = damage.tail, "dropping torn tail of log");
            file.set_len(good as u64).ctx(path)?;
            file.sync_all().ctx(path)?;
        }
        if !existed {
            if let Some(dir) = path.parent() {
                sync_dir(dir)?;
            }
        }
        Ok((RecordLog::from_file(path, file), damage))
    }

    fn from_file(path: &Path, file: File) -> RecordLog {
        RecordLog {
            state: Mutex::new(State {
                path: path.to_path_buf(),
                file: Arc::new(file),
                pending: Vec::new(),
                appended: 0,
                synced: 0,
                syncing: false,
                failed: None,
            }),
            synced: Condvar::new(),
        }
    }

    /// Appends records and returns once they are durable.
    pub(crate) fn append(&self, payloads: &[&[u8]]) -> Result<()> {
        self.append_with(payloads, || ())
    }

    /// Appends records, runs `applied` while still holding the log's lock (so
    /// in-memory state changes in the same order as the log), then waits
    /// until the records are durable.
    pub(crate) fn append_with<R>(&self, payloads: &[&[u8]], applied: impl FnOnce() -> R) -> Result<R> {
        let mut st = self.state.lock();
        if let Some(reason) = &st.failed {
            return Err(Error::Poisoned { path: st.path.clone(), reason: reason.clone() });
        }
        for p in payloads {
            frame(&mut st.pending, p);
        }
        let out = applied();
        st.appended += 1;
        let ticket = st.appended;
        loop {
            if let Some(reason) = &st.failed {
                return Err(Error::Poisoned { path: st.path.clone(), reason: reason.clone() });
            }
            if st.synced >= ticket {
                return Ok(out);
            }
            if st.syncing {
                self.synced.wait(&mut st);
                continue;
            }
            // Become the leader for everything queued so far.
            st.syncing = true;
            let buf = std::mem::take(&mut st.pending);
            let upto = st.appended;
            let file = st.file.clone();
            let path = st.path.clone();
            drop(st);
            let res = (&*file).write_all(&buf).and_then(|_| file.sync_data());
            st = self.state.lock();
            st.syncing = false;
            match res {
                Ok(()) => st.synced = upto,
                Err(e) => st.failed = Some(format!("write or fsync of {} failed: {e}", path.display())),
            }
            // Hand the buffer back so its allocation is reused.
            if st.pending.is_empty() {
                let mut buf = buf;
                buf.clear();
                st.pending = buf;
            }
            self.synced.notify_all();
        }
    }

    /// Makes everything queued durable in the current file, then switches to
    /// a new file at `new_path`, running `switched` under the lock so that no
    /// record lands between the switch and the caller's bookkeeping.
    pub(crate) fn rotate<R>(&self, new_path: &Path, switched: impl FnOnce() -> R) -> Result<R> {
        let mut st = self.state.lock();
        while st.syncing {
            self.synced.wait(&mut st);
        }
        if let Some(reason) = &st.failed {
            return Err(Error::Poisoned { path: st.path.clone(), reason: reason.clone() });
        }
        if !st.pending.is_empty() {
            let buf = std::mem::take(&mut st.pending);
            let res = (&*st.file).write_all(&buf).and_then(|_| st.file.sync_data());
            if let Err(e) = res {
                let reason = format!("write or fsync of {} failed: {e}", st.path.display());
                st.failed = Some(reason.clone());
                self.synced.notify_all();
                return Err(Error::Poisoned { path: st.path.clone(), reason });
            }
        }
        st.synced = st.appended;
        self.synced.notify_all();
        let file = OpenOptions::new().read(true).append(true).create(true).open(new_path).ctx(new_path)?;
        if let Some(dir) = new_path.parent() {
            sync_dir(dir)?;
        }
        st.file = Arc::new(file);
        st.path = new_path.to_path_buf();
        Ok(switched())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(path: &Path) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        RecordLog::open(path, |_, r| out.push(r.to_vec())).unwrap();
        out
    }

    #[test]
    fn records_survive_reopen_and_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let (log, damage) = RecordLog::open(&path, |_, _| ()).unwrap();
        assert!(!damage.any());
        log.append(&[b"one", b"two"]).unwrap();
        log.append(&[b"three"]).unwrap();
        drop(log);
        // Simulate a crash in the middle of a write: half a record at the end.
        let mut torn_bytes = Vec::new();
        frame(&mut torn_bytes, b"four-is-long");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&torn_bytes[..torn_bytes.len() - 3]).unwrap();
        drop(f);
        let (log, damage) = RecordLog::open(&path, |_, _| ()).unwrap();
        assert!(damage.tail > 0 && damage.skipped.is_empty(), "{damage:?}");
        log.append(&[b"five"]).unwrap();
        drop(log);
        let got = read_all(&path);
        assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec(), b"five".to_vec()]);
    }

    #[test]
    fn a_corrupted_last_record_is_a_torn_tail() {
        let mut data = Vec::new();
        frame(&mut data, b"aaaa");
        frame(&mut data, b"bbbb");
        let last = data.len() - 1;
        data[last] ^= 1;
        let mut n = 0;
        let (good, damage) = scan(&data, |_, _| n += 1);
        assert_eq!((n, good), (1, 12));
        assert_eq!(damage, Damage { skipped: vec![], tail: 12 });
    }

    #[test]
    fn zero_bytes_at_the_end_are_a_torn_tail_not_a_record() {
        let mut data = Vec::new();
        frame(&mut data, b"aaaa");
        data.extend_from_slice(&[0; 8]);
        let mut records = Vec::new();
        let (good, damage) = scan(&data, |_, r| records.push(r.to_vec()));
        assert_eq!(records, vec![b"aaaa".to_vec()]);
        assert_eq!((good, damage.tail), (12, 8));
    }

    /// A record's byte range in the log, and its payload.
    type Span = (usize, usize, Vec<u8>);

    /// Records of varied sizes, framed, with the byte range of each.
    fn sample() -> (Vec<u8>, Vec<Span>) {
        let mut data = Vec::new();
        let mut spans = Vec::new();
        for i in 0..12u8 {
            let payload: Vec<u8> =
                (0..(1 + (i as usize * 7) % 23)).map(|j| i.wrapping_mul(31).wrapping_add(j as u8)).collect();
            let start = data.len();
            frame(&mut data, &payload);
            spans.push((start, data.len(), payload));
        }
        (data, spans)
    }

    fn records_of(data: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        scan(data, |_, r| out.push(r.to_vec()));
        out
    }

    #[test]
    fn one_damaged_byte_anywhere_costs_only_its_own_record() {
        let (data, spans) = sample();
        for at in 0..data.len() {
            for damage in [0x01u8, 0xff] {
                let mut bad = data.clone();
                bad[at] ^= damage;
                let expected: Vec<Vec<u8>> =
                    spans.iter().filter(|(s, e, _)| !(*s..*e).contains(&at)).map(|(_, _, p)| p.clone()).collect();
                assert_eq!(records_of(&bad), expected, "byte {at} xor {damage:#x}");
            }
        }
    }

    #[test]
    fn a_zeroed_stretch_costs_only_the_records_it_touches() {
        let (data, spans) = sample();
        for from in (0..data.len()).step_by(3) {
            for len in [1, 8, 20] {
                let to = (from + len).min(data.len());
                let mut bad = data.clone();
                bad[from..to].fill(0);
                // A record survives if the zeros missed it (or wrote what was there).
                let expected: Vec<Vec<u8>> = spans
                    .iter()
                    .filter(|(s, e, _)| *e <= from || *s >= to || bad[*s..*e] == data[*s..*e])
                    .map(|(_, _, p)| p.clone())
                    .collect();
                assert_eq!(records_of(&bad), expected, "zeros at {from}..{to}");
            }
        }
    }

    #[test]
    fn a_truncated_log_keeps_every_whole_record() {
        let (data, spans) = sample();
        for cut in 0..=data.len() {
            let expected: Vec<Vec<u8>> =
                spans.iter().filter(|(_, e, _)| *e <= cut).map(|(_, _, p)| p.clone()).collect();
            let (good, damage) = scan(&data[..cut], |_, _| ());
            assert_eq!(records_of(&data[..cut]), expected, "cut at {cut}");
            assert_eq!(good + damage.tail, cut);
            assert!(damage.skipped.is_empty());
        }
    }

    #[test]
    fn a_log_damaged_in_the_middle_keeps_what_follows_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let (log, _) = RecordLog::open(&path, |_, _| ()).unwrap();
        log.append(&[b"one", b"two", b"three"]).unwrap();
        drop(log);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER + 3 + HEADER + 1] ^= 0x40; // inside "two"
        std::fs::write(&path, &bytes).unwrap();
        let (log, damage) = RecordLog::open(&path, |_, _| ()).unwrap();
        assert_eq!(damage.skipped, vec![(HEADER + 3, HEADER + 3)]);
        assert_eq!(damage.tail, 0);
        log.append(&[b"four"]).unwrap();
        drop(log);
        assert_eq!(read_all(&path), vec![b"one".to_vec(), b"three".to_vec(), b"four".to_vec()]);
    }

    #[test]
    fn concurrent_writers_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let (log, _) = RecordLog::open(&path, |_, _| ()).unwrap();
        let log = Arc::new(log);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..50u32 {
                        log.append(&[&[t as u8, i as u8]]).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(log);
        assert_eq!(read_all(&path).len(), 400);
    }
}
