//! An append-only record log with group commit: the building block of the
//! metric write-ahead log, the metric series catalog and the metadata
//! registry. Records are framed and read back as `frame.rs` describes;
//! opening a log truncates a torn tail, so that new records are never
//! hidden behind garbage.
//!
//! Group commit: [`RecordLog::append_applying`] puts the framed record into
//! a shared pending buffer under a mutex. If no fsync is running, the caller
//! becomes the leader: it takes the whole pending buffer (its own record and
//! those of every writer that queued before it), writes it with one `write`
//! and one `fdatasync`, then applies every record of the group to memory, in
//! log order, and wakes the others. Writers that arrive meanwhile queue up
//! and are committed together by the next leader. So N concurrent writers
//! cost about two fsyncs, not N; nobody returns before its record is on
//! disk; and memory only ever holds what is durable.
//!
//! Preallocation: a log grown by small records is extended ahead of its
//! records with written zeros (a quarter of its length, 4 to 64 KiB: see
//! `zeros_ahead`), so that most `fdatasync`s write only data pages: an
//! append that grows the file also has to write its inode, which doubles
//! an fsync's cost. A run of zeros is
//! never a record (see `frame.rs`), so the zeros after the last record are
//! free space, not damage; opening a log keeps them and a clean close cuts
//! them off. Large records are written as they come: zero-filling ahead of
//! them would double the bytes written to save one inode write.
//!
//! Failures: after a failed write or fsync, the group's writers get an error
//! and the log is *broken*: the file may end with part of the group, and the
//! page cache may have dropped pages, so later fsyncs prove nothing about
//! them. The next writer (or [`RecordLog::recover`]) truncates the file back
//! to the end of the last durable record and goes on; [`RecordLog::rotate`]
//! instead seals it there and continues in a fresh file. Either way the file
//! holds exactly the acknowledged records, and writes resume by themselves
//! once the disk accepts them again.
//!
//! Writers on an async executor must not block its threads on a condvar or
//! an fsync: they queue their records and await a future instead, and the
//! group is written by a leader on a thread that may block (`queued.rs`).
//! Both kinds of writer share the same groups.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::Waker;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, IoContext, Result};
use crate::frame::{frame, own_frames, scan, Damage};

mod queued;

pub(crate) use queued::Durable;
pub use queued::Leader;

pub(crate) struct RecordLog {
    state: Mutex<State>,
    done: Condvar,
}

/// How many zeros to write after a log's records that end at `end`: a
/// quarter of its length, between 4 and 64 KiB, up to a page boundary. A
/// log that grows often grows by larger steps (about a dozen inode writes
/// for its first 64 KiB, then one per 64 KiB), while a small log keeps
/// little free space (its size on disk is what the operator sees).
fn zeros_ahead(end: u64) -> u64 {
    (end + (end / 4).clamp(4 << 10, 64 << 10)).next_multiple_of(4 << 10) - end
}

/// Groups at least this large are written without zero-filling ahead.
const SMALL_GROUP: usize = 16 << 10;

/// Why the log refuses writes until it is recovered.
#[derive(Clone, Debug)]
pub(crate) struct Broken {
    pub(crate) reason: String,
    /// The disk is full (ENOSPC, EDQUOT): the operator's fix is space.
    pub(crate) storage_full: bool,
}

struct State {
    path: PathBuf,
    file: Arc<File>,
    pending: Vec<u8>,
    /// Tickets handed out: one per append.
    appended: u64,
    /// Tickets up to this one were taken by a leader (written or failed).
    taken: u64,
    /// Tickets up to this one are durable, except those in `failed`.
    synced: u64,
    /// Tickets whose write failed, as `(first, last, waiters not yet told)`.
    failed: Vec<(u64, u64, u64)>,
    /// Queued writers awaiting their ticket: woken once it is taken by a
    /// group that ended (see `queued.rs`).
    wakers: Vec<(u64, Waker)>,
    /// Tickets of queued writers that stopped waiting: nobody is to be told
    /// whether they failed.
    abandoned: Vec<u64>,
    /// A leader holds the claim to write the queued groups, one after
    /// another: blocked writers and queued ones wait for it.
    leading: bool,
    /// A group is being written and synced (the lock is not held then).
    writing: bool,
    /// Rotations, seals and recoveries waiting to run between two groups:
    /// a leader pauses for them, so that steady writes cannot starve them.
    wanted: usize,
    /// Tickets of the blocked writers waiting for their group: a blocked
    /// leader hands the claim on to one of them once its own group ended.
    blocked: Vec<u64>,
    /// Length of the file up to the end of the last durable record.
    durable_len: u64,
    /// Length of the file: `durable_len` and the zeros written ahead.
    allocated: u64,
    broken: Option<Broken>,
    /// Fault injection for the tests: every write fails like this.
    fail_writes: Option<io::ErrorKind>,
}

/// Fsyncs a directory so that a created, renamed or removed entry survives a
/// crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).ctx(dir)
}

fn is_storage_full(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}

impl State {
    /// Tells whether `ticket` failed, counting the waiter as told.
    fn take_failure(&mut self, ticket: u64) -> bool {
        let Some(i) = self.failed.iter().position(|&(lo, hi, _)| lo <= ticket && ticket <= hi) else {
            return false;
        };
        self.failed[i].2 -= 1;
        if self.failed[i].2 == 0 {
            self.failed.remove(i);
        }
        true
    }

    /// Whether the group of `ticket` has ended, well or not.
    fn resolved(&self, ticket: u64) -> bool {
        self.synced >= ticket || self.failed.iter().any(|&(lo, hi, _)| lo <= ticket && ticket <= hi)
    }

    /// How the group of `ticket` ended, counting the waiter as told;
    /// `None` while it has not.
    fn outcome(&mut self, ticket: u64) -> Option<Result<()>> {
        // Failures first: a later group's success moves `synced` past them.
        if self.take_failure(ticket) {
            Some(Err(self.error()))
        } else if self.synced >= ticket {
            Some(Ok(()))
        } else {
            None
        }
    }

    /// Whether a writer waits for a record that no group has taken yet,
    /// blocked or queued: it claims the lead once it is given up.
    fn successor_waits(&self) -> bool {
        let taken = self.taken;
        self.blocked.iter().any(|&t| t > taken) || self.wakers.iter().any(|&(t, _)| t > taken)
    }

    /// Fails every ticket queued but not yet taken by a leader.
    fn fail_pending(&mut self) {
        if self.appended > self.taken {
            self.push_failed(self.taken + 1, self.appended);
            self.taken = self.appended;
        }
        self.pending.clear();
    }

    /// Records that tickets `from..=upto` failed, for their waiters to learn.
    fn push_failed(&mut self, from: u64, upto: u64) {
        let before = self.abandoned.len();
        self.abandoned.retain(|&t| t < from || t > upto);
        let waiters = (upto - from + 1) - (before - self.abandoned.len()) as u64;
        if waiters > 0 {
            self.failed.push((from, upto, waiters));
        }
    }

    /// Wakes (and forgets) the queued writers whose ticket `due` picks;
    /// they register again if they still wait.
    fn wake_where(&mut self, due: impl Fn(&State, u64) -> bool) {
        let mut wakers = std::mem::take(&mut self.wakers);
        wakers.retain(|(ticket, waker)| {
            if due(self, *ticket) {
                waker.wake_by_ref();
                return false;
            }
            true
        });
        self.wakers = wakers;
    }

    fn error(&self) -> Error {
        match &self.broken {
            Some(b) => {
                Error::LogFailed { path: self.path.clone(), reason: b.reason.clone(), storage_full: b.storage_full }
            }
            None => Error::LogFailed {
                path: self.path.clone(),
                reason: "the write failed earlier".into(),
                storage_full: false,
            },
        }
    }

    fn mark_broken(&mut self, e: &io::Error) {
        let reason = format!("write or fsync of {} failed: {e}", self.path.display());
        if self.broken.is_none() {
            // Once per outage: the retries while it lasts would flood the log.
            tracing::error!(path = %self.path.display(), error = %e,
                "log write failed; refusing writes until the file can be written again");
        }
        self.broken = Some(Broken { reason, storage_full: is_storage_full(e) });
    }

    /// Cuts the zeros written ahead off the file (when a log is closed or
    /// sealed), so that a closed log is exactly its records. Best effort
    /// and without a sync: zeros that come back after a crash are free
    /// space all the same. A broken log is cut by its recovery instead.
    fn cut_free_space(&mut self) {
        if self.broken.is_none() && self.allocated > self.durable_len {
            if let Err(e) = self.file.set_len(self.durable_len) {
                tracing::debug!(path = %self.path.display(), error = %e, "could not cut the free space off a log");
            }
            self.allocated = self.durable_len;
        }
    }

    /// Cuts the file back to its durable records and reopens it. The cut
    /// drops every page written since the last good fsync, so nothing in
    /// the file depends on a failed one.
    fn recover_in_place(&mut self) -> Result<()> {
        if self.broken.is_none() {
            return Ok(());
        }
        let res = (|| {
            let file = open_rw(&self.path, false)?;
            file.set_len(self.durable_len)?;
            file.sync_all()?;
            Ok::<File, io::Error>(file)
        })();
        match res {
            Ok(file) => {
                self.file = Arc::new(file);
                self.allocated = self.durable_len;
                let was = self.broken.take();
                tracing::info!(path = %self.path.display(), after = ?was.map(|b| b.reason), "log writable again");
                Ok(())
            }
            Err(e) => {
                self.mark_broken(&e);
                Err(self.error())
            }
        }
    }
}

impl RecordLog {
    /// Opens (or creates) the log at `path`, calling `each` with every intact
    /// record (and its offset), reports damaged stretches and truncates a
    /// torn tail. Returns the log and what was skipped or dropped.
    pub(crate) fn open(path: &Path, mut each: impl FnMut(usize, &[u8])) -> Result<(RecordLog, Damage)> {
        let existed = path.exists();
        let mut file = open_rw(path, true).ctx(path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).ctx(path)?;
        let (good, damage) = scan(&data, &mut each);
        // Zeros after the last record are free space this log wrote ahead.
        let allocated = (good + damage.free) as u64;
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
        Ok((RecordLog::from_file(path, file, good as u64, allocated), damage))
    }

    /// Replaces the log at `path` (closing `old`, its open log) with one
    /// holding exactly `records`: written under a `.tmp` name, fsynced, then
    /// renamed over it, so a crash leaves the old log or the new one, never
    /// a mix. Used at open to drop what later records made dead.
    pub(crate) fn rewrite<'a>(
        path: &Path,
        old: RecordLog,
        records: impl IntoIterator<Item = Cow<'a, [u8]>>,
    ) -> Result<RecordLog> {
        drop(old);
        let tmp = path.with_extension("log.tmp");
        let mut data = Vec::new();
        for rec in records {
            frame(&mut data, &rec);
        }
        std::fs::write(&tmp, &data).ctx(&tmp)?;
        File::open(&tmp).and_then(|f| f.sync_all()).ctx(&tmp)?;
        std::fs::rename(&tmp, path).ctx(path)?;
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        Ok(RecordLog::open(path, |_, _| ())?.0)
    }

    fn from_file(path: &Path, file: File, len: u64, allocated: u64) -> RecordLog {
        RecordLog {
            state: Mutex::new(State {
                path: path.to_path_buf(),
                file: Arc::new(file),
                pending: Vec::new(),
                appended: 0,
                taken: 0,
                synced: 0,
                failed: Vec::new(),
                wakers: Vec::new(),
                abandoned: Vec::new(),
                leading: false,
                writing: false,
                wanted: 0,
                blocked: Vec::new(),
                durable_len: len,
                allocated,
                broken: None,
                fail_writes: None,
            }),
            done: Condvar::new(),
        }
    }

    /// Appends records and returns once they are durable.
    pub(crate) fn append(&self, payloads: &[&[u8]]) -> Result<()> {
        self.append_applying(payloads, |_| ())
    }

    /// Appends records and returns once they are durable. `apply` is called,
    /// after the fsync and in log order, with every record of each group
    /// this caller leads (its own and other writers'), so every caller of
    /// one log must pass the same `apply`. A failed group is applied to
    /// nothing and each of its writers gets the error.
    pub(crate) fn append_applying(&self, payloads: &[&[u8]], apply: impl Fn(&[u8])) -> Result<()> {
        let mut st = self.state.lock();
        if st.broken.is_some() && !st.leading && !st.writing {
            // Refuse at once while the file cannot be written, instead of
            // queueing a record that is bound to fail.
            st.recover_in_place()?;
        }
        for p in payloads {
            crate::frame::frame(&mut st.pending, p);
        }
        st.appended += 1;
        let ticket = st.appended;
        loop {
            if let Some(r) = st.outcome(ticket) {
                return r;
            }
            if !st.leading && st.appended > st.taken {
                // Records without a leader, ours among them: we lead.
                st.leading = true;
                self.lead_while_queued(&mut st, &apply, Some(ticket));
                continue;
            }
            st.blocked.push(ticket);
            self.done.wait(&mut st);
            if let Some(i) = st.blocked.iter().position(|&t| t == ticket) {
                st.blocked.swap_remove(i);
            }
        }
    }

    /// Leads group after group while records are queued, then gives up the
    /// claim (`leading`, which the caller holds). A blocked writer (`mine`:
    /// its ticket) stops once its own group has ended if another writer
    /// waits to take the claim over, so that it does not lead for others
    /// forever; a leader started for queued writers (`None`) goes on until
    /// the queue is empty.
    fn lead_while_queued(&self, st: &mut MutexGuard<'_, State>, apply: &impl Fn(&[u8]), mine: Option<u64>) {
        while st.appended > st.taken {
            if mine.is_some_and(|t| st.resolved(t)) && st.successor_waits() {
                break;
            }
            if st.wanted > 0 || st.writing {
                // A rotation, seal or recovery runs between groups.
                self.done.wait(st);
                continue;
            }
            if st.broken.is_some() && st.recover_in_place().is_err() {
                st.fail_pending();
                break;
            }
            self.lead_group(st, apply);
        }
        st.leading = false;
        if st.appended > st.taken {
            // Handed over: whoever waits for a record not yet taken claims.
            st.wake_where(|st, ticket| ticket > st.taken);
        }
        self.notify(st);
    }

    /// Writes and syncs everything queued, applies it, and wakes the
    /// writers. Called with the lock held and no group being written.
    fn lead_group(&self, st: &mut MutexGuard<'_, State>, apply: &impl Fn(&[u8])) {
        st.writing = true;
        let mut buf = std::mem::take(&mut st.pending);
        let (from, upto) = (st.taken + 1, st.appended);
        st.taken = upto;
        let (file, fail, at) = (st.file.clone(), st.fail_writes, st.durable_len);
        let end = at + buf.len() as u64;
        let zeros = match end > st.allocated && buf.len() < SMALL_GROUP {
            true => zeros_ahead(end),
            false => 0,
        };
        let res = MutexGuard::unlocked(st, || {
            let len = buf.len();
            buf.resize(len + zeros as usize, 0);
            let res = write_and_sync(&file, &buf, at, fail);
            buf.truncate(len);
            if res.is_ok() {
                // Still the only writer (`writing`), so groups are applied
                // in log order; new writers queue meanwhile.
                own_frames(&buf).for_each(apply);
            }
            res
        });
        st.writing = false;
        match res {
            Ok(()) => {
                st.synced = upto;
                st.durable_len = end;
                st.allocated = st.allocated.max(end + zeros);
                st.abandoned.retain(|&t| t > upto);
            }
            Err(e) => {
                st.mark_broken(&e);
                st.push_failed(from, upto);
            }
        }
        if st.pending.is_empty() {
            // Hand the buffer back so its allocation is reused.
            let mut buf = buf;
            buf.clear();
            st.pending = buf;
        }
        self.notify(st);
    }

    /// Wakes every writer waiting for a group to end, blocked or queued.
    fn notify(&self, st: &mut State) {
        // Those whose group ended learn how it went.
        self.done.notify_all();
        st.wake_where(State::resolved);
    }

    /// Makes the log writable again after a failure, in the same file (see
    /// the module docs). A no-op when it is not broken.
    pub(crate) fn recover(&self) -> Result<()> {
        self.between_groups().st.recover_in_place()
    }

    /// The log's state between two groups, for a rotation, seal or
    /// recovery: waits for the group being written, and holds back the
    /// next one until the returned guard is dropped.
    fn between_groups(&self) -> BetweenGroups<'_> {
        let mut st = self.state.lock();
        st.wanted += 1;
        while st.writing {
            self.done.wait(&mut st);
        }
        BetweenGroups { log: self, st }
    }

    /// Why the log refuses writes, if it does.
    pub(crate) fn broken(&self) -> Option<Broken> {
        self.state.lock().broken.clone()
    }

    /// Bytes of durable records in the current file.
    pub(crate) fn durable_len(&self) -> u64 {
        self.state.lock().durable_len
    }

    /// Makes everything queued durable in the current file (applying it),
    /// then switches to a new file at `new_path`, running `switched` under
    /// the lock so that no record lands between the switch and the caller's
    /// bookkeeping. A broken log is sealed at its last durable record (what
    /// is queued fails) and the new file starts clean.
    pub(crate) fn rotate<R>(&self, new_path: &Path, apply: impl Fn(&[u8]), switched: impl FnOnce() -> R) -> Result<R> {
        let mut guard = self.between_groups();
        let st = &mut guard.st;
        if st.broken.is_some() {
            st.fail_pending();
            self.notify(st);
            // Best effort: replaying the old file must not bring back a
            // write its writers were told failed.
            let cut = OpenOptions::new().append(true).open(&st.path).and_then(|f| {
                f.set_len(st.durable_len)?;
                f.sync_all()
            });
            if let Err(e) = cut {
                tracing::warn!(path = %st.path.display(), error = %e,
                    "could not cut a failed write off the sealed log; a restart may replay it");
            }
        } else if st.pending.is_empty() {
            st.synced = st.appended;
        } else {
            self.lead_group(st, &apply);
            if st.broken.is_some() {
                return Err(st.error());
            }
        }
        let file = open_rw(new_path, true).ctx(new_path)?;
        if let Some(dir) = new_path.parent() {
            sync_dir(dir)?;
        }
        st.cut_free_space();
        st.file = Arc::new(file);
        st.path = new_path.to_path_buf();
        st.durable_len = 0;
        st.allocated = 0;
        if let Some(b) = st.broken.take() {
            tracing::info!(path = %new_path.display(), after = %b.reason, "continuing in a fresh log file");
        }
        Ok(switched())
    }

    /// Makes everything queued durable, then renames the file to `sealed`
    /// and continues in a fresh, empty file at the log's path (see
    /// `compacted.rs`). Only for logs whose writers apply nothing (plain
    /// [`append`](Self::append)). A broken log is not sealed: it refuses
    /// with its error and stays as it is.
    pub(crate) fn seal(&self, sealed: &Path) -> Result<()> {
        let mut guard = self.between_groups();
        let st = &mut guard.st;
        if st.broken.is_none() && !st.pending.is_empty() {
            self.lead_group(st, &|_: &[u8]| ());
        }
        if st.broken.is_some() {
            return Err(st.error());
        }
        st.cut_free_space();
        let path = st.path.clone();
        std::fs::rename(&path, sealed).ctx(sealed)?;
        let fresh = open_rw(&path, true).and_then(|f| {
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
            Ok(f)
        });
        match fresh {
            Ok(file) => {
                st.file = Arc::new(file);
                st.durable_len = 0;
                st.allocated = 0;
                Ok(())
            }
            Err(e) => {
                // Put the old file back: writes go on where they were.
                let _ = std::fs::rename(sealed, &path);
                Err(e).ctx(&path)
            }
        }
    }

    /// Makes every later write fail with `kind` (`None`: succeed again).
    #[cfg(test)]
    pub(crate) fn fail_writes(&self, kind: Option<io::ErrorKind>) {
        self.state.lock().fail_writes = kind;
    }
}

/// See [`RecordLog::between_groups`].
struct BetweenGroups<'a> {
    log: &'a RecordLog,
    st: MutexGuard<'a, State>,
}

impl Drop for BetweenGroups<'_> {
    fn drop(&mut self) {
        self.st.wanted -= 1;
        self.log.notify(&mut self.st);
    }
}

impl Drop for RecordLog {
    fn drop(&mut self) {
        self.state.get_mut().cut_free_space();
    }
}

/// Opens a log for reading and positioned writes (not `append`: records
/// are written at the end of the durable ones, before the free space).
fn open_rw(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create(create).open(path)
}

/// The leader's write at `at` and sync (or the injected failure: part of
/// the buffer lands, then the error, as on a disk that fills up).
fn write_and_sync(file: &File, buf: &[u8], at: u64, fail: Option<io::ErrorKind>) -> io::Result<()> {
    if let Some(kind) = fail {
        let _ = file.write_all_at(&buf[..buf.len() / 2], at);
        return Err(io::Error::from(kind));
    }
    file.write_all_at(buf, at)?;
    file.sync_data()
}

#[cfg(test)]
mod tests;
