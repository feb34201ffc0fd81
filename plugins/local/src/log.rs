//! An append-only record log with group commit: the building block of the
//! metric write-ahead log, the metric series catalog and the metadata
//! registry.
//!
//! Framing: every record is `len: u32 LE | crc32(payload): u32 LE | payload`.
//! A reader stops at the first record whose length runs past the end of the
//! file or whose checksum does not match: that is a torn tail left by a crash
//! in the middle of a write, and everything before it is intact (it was
//! fsynced before any later write was acknowledged). Opening a log truncates
//! such a tail, so that new records are never hidden behind garbage.
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

/// Frames `payload` onto `out`.
pub(crate) fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Calls `each` with every intact record of `data`; returns the length of
/// the intact prefix.
pub(crate) fn scan(data: &[u8], mut each: impl FnMut(&[u8])) -> usize {
    let mut pos = 0;
    while data.len() - pos >= HEADER {
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().expect("4 bytes"));
        let start = pos + HEADER;
        let Some(end) = start.checked_add(len).filter(|&e| e <= data.len()) else { break };
        if crc32fast::hash(&data[start..end]) != crc {
            break;
        }
        each(&data[start..end]);
        pos = end;
    }
    pos
}

/// Fsyncs a directory so that a created, renamed or removed entry survives a
/// crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).ctx(dir)
}

impl RecordLog {
    /// Opens (or creates) the log at `path`, calling `each` with every intact
    /// record, and truncates a torn tail. Returns the log and whether a torn
    /// tail was dropped.
    pub(crate) fn open(path: &Path, each: impl FnMut(&[u8])) -> Result<(RecordLog, bool)> {
        let existed = path.exists();
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path).ctx(path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).ctx(path)?;
        let good = scan(&data, each);
        let torn = good < data.len();
        if torn {
            tracing::warn!(path = %path.display(), dropped = data.len() - good, "dropping torn tail of log");
            file.set_len(good as u64).ctx(path)?;
            file.sync_all().ctx(path)?;
        }
        if !existed {
            if let Some(dir) = path.parent() {
                sync_dir(dir)?;
            }
        }
        Ok((RecordLog::from_file(path, file), torn))
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
        RecordLog::open(path, |r| out.push(r.to_vec())).unwrap();
        out
    }

    #[test]
    fn records_survive_reopen_and_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let (log, torn) = RecordLog::open(&path, |_| ()).unwrap();
        assert!(!torn);
        log.append(&[b"one", b"two"]).unwrap();
        log.append(&[b"three"]).unwrap();
        drop(log);
        // Simulate a crash in the middle of a write: half a record at the end.
        let mut torn_bytes = Vec::new();
        frame(&mut torn_bytes, b"four-is-long");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&torn_bytes[..torn_bytes.len() - 3]).unwrap();
        drop(f);
        let (log, torn) = RecordLog::open(&path, |_| ()).unwrap();
        assert!(torn);
        log.append(&[b"five"]).unwrap();
        drop(log);
        let got = read_all(&path);
        assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec(), b"five".to_vec()]);
    }

    #[test]
    fn corrupted_checksum_stops_the_scan() {
        let mut data = Vec::new();
        frame(&mut data, b"aaaa");
        frame(&mut data, b"bbbb");
        let last = data.len() - 1;
        data[last] ^= 1;
        let mut n = 0;
        let good = scan(&data, |_| n += 1);
        assert_eq!((n, good), (1, 12));
    }

    #[test]
    fn concurrent_writers_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let (log, _) = RecordLog::open(&path, |_| ()).unwrap();
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
