//! Group commit for writers on an async executor, which must not block its
//! threads: a writer queues its records ([`RecordLog::enqueue`]) and awaits
//! a [`Durable`] future, and the group is written, synced and applied by a
//! leader ([`RecordLog::lead_queued`], wrapped in a [`Leader`]) that the
//! future has the caller start on a thread that may block, only when no
//! leader is running. A leader goes on while writers queue behind it, so
//! under steady load one thread writes group
//! after group and each writer costs one wake-up, not a thread hop and a
//! condvar wait of its own. Blocked writers (`append_applying`) and queued
//! ones share the same groups.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::RecordLog;
use crate::error::Result;

/// The leader of a log's queued writes, as the store that owns the log
/// builds it (it applies what is written): call [`run`](Self::run) on a
/// thread that may block. Dropped unrun, it runs then, so that no queued
/// write is left without a leader.
pub struct Leader(Option<Box<dyn FnOnce() + Send>>);

impl Leader {
    pub(crate) fn new(lead: impl FnOnce() + Send + 'static) -> Leader {
        Leader(Some(Box::new(lead)))
    }

    pub fn run(mut self) {
        self.lead();
    }

    fn lead(&mut self) {
        if let Some(lead) = self.0.take() {
            lead();
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.lead();
    }
}

impl RecordLog {
    /// Queues records for the next group without waiting, and returns their
    /// ticket for [`durable`](Self::durable). `None`, with nothing queued,
    /// while the log is broken: recovering it takes syscalls, so the caller
    /// uses the blocking [`append_applying`](Self::append_applying), which
    /// recovers first.
    pub(crate) fn enqueue(&self, payloads: &[&[u8]]) -> Option<u64> {
        let mut st = self.state.lock();
        if st.broken.is_some() {
            return None;
        }
        for p in payloads {
            crate::frame::frame(&mut st.pending, p);
        }
        st.appended += 1;
        Some(st.appended)
    }

    /// Writes, syncs and applies (as [`append_applying`](Self::append_applying)
    /// does) group after group until nothing is queued. Blocks: run it on a
    /// thread that may, when a [`Durable`] calls for it.
    pub(crate) fn lead_queued(&self, apply: impl Fn(&[u8])) {
        let mut st = self.state.lock();
        self.lead_while_queued(&mut st, &apply, None);
    }

    /// Resolves once the records of `ticket` are durable (and applied), or
    /// their write failed. Whenever records wait with no leader, the future
    /// claims the lead and calls `start`, which must get
    /// [`lead_queued`](Self::lead_queued) run on a thread that may block.
    pub(crate) fn durable<'a>(&'a self, ticket: u64, start: &'a (dyn Fn() + Sync)) -> Durable<'a> {
        Durable { log: self, ticket, start, done: false }
    }
}

/// See [`RecordLog::durable`]. Dropped unresolved, its records are still
/// written (they are in the queue), but nobody is told how it went.
pub(crate) struct Durable<'a> {
    log: &'a RecordLog,
    ticket: u64,
    start: &'a (dyn Fn() + Sync),
    done: bool,
}

impl Future for Durable<'_> {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let ticket = self.ticket;
        let mut st = self.log.state.lock();
        if let Some(r) = st.outcome(ticket) {
            drop(st);
            self.done = true;
            return Poll::Ready(r);
        }
        match st.wakers.iter_mut().find(|(t, _)| *t == ticket) {
            Some((_, w)) => w.clone_from(cx.waker()),
            None => st.wakers.push((ticket, cx.waker().clone())),
        }
        // Claimed under the lock, so that exactly one leader is started;
        // started outside it, as the leader takes the lock.
        let lead = !st.leading && st.appended > st.taken;
        st.leading |= lead;
        drop(st);
        if lead {
            (self.start)();
        }
        Poll::Pending
    }
}

impl Drop for Durable<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut st = self.log.state.lock();
        st.wakers.retain(|(t, _)| *t != self.ticket);
        if !st.take_failure(self.ticket) && st.synced < self.ticket {
            // Its group has not ended: keep it out of the failure count.
            st.abandoned.push(self.ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};
    use std::task::{Wake, Waker};

    use parking_lot::Mutex;

    use super::*;
    use crate::log::tests::read_all;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll_once(f: Pin<&mut Durable<'_>>, waker: &Waker) -> Poll<Result<()>> {
        f.poll(&mut Context::from_waker(waker))
    }

    /// A `start` that counts how often a leader was called for.
    fn starts() -> (Arc<AtomicUsize>, impl Fn() + Sync) {
        let n = Arc::new(AtomicUsize::new(0));
        let counted = n.clone();
        (n, move || {
            counted.fetch_add(1, Ordering::SeqCst);
        })
    }

    #[test]
    fn queued_writes_are_led_in_order_and_their_waiters_woken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let (log, _) = RecordLog::open(&path, |_, _| ()).unwrap();
        let (started, start) = starts();
        let first = log.enqueue(&[b"one"]).unwrap();
        let second = log.enqueue(&[b"two", b"three"]).unwrap();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut waiting = Box::pin(log.durable(first, &start));
        assert!(poll_once(waiting.as_mut(), &waker).is_pending(), "not durable before it is led");
        let mut behind = Box::pin(log.durable(second, &start));
        assert!(poll_once(behind.as_mut(), &waker).is_pending());
        assert_eq!(started.load(Ordering::SeqCst), 1, "one leader for both");

        let applied = Mutex::new(Vec::new());
        log.lead_queued(|r| applied.lock().push(r.to_vec()));
        assert_eq!(count.0.load(Ordering::SeqCst), 2, "both waiters are woken");
        assert!(matches!(poll_once(waiting.as_mut(), &waker), Poll::Ready(Ok(()))));
        assert!(matches!(poll_once(behind.as_mut(), &waker), Poll::Ready(Ok(()))));
        let want = vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()];
        assert_eq!(*applied.lock(), want);

        let fourth = log.enqueue(&[b"four"]).unwrap();
        assert!(poll_once(pin!(log.durable(fourth, &start)), &waker).is_pending());
        assert_eq!(started.load(Ordering::SeqCst), 2, "the leader is gone once the queue is empty");
        log.lead_queued(|_| ());
        drop((waiting, behind));
        drop(log);
        assert_eq!(read_all(&path), [want, vec![b"four".to_vec()]].concat());
    }

    #[test]
    fn a_failed_group_fails_its_queued_writers_and_the_log_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let (log, _) = RecordLog::open(&path, |_, _| ()).unwrap();
        let (_, start) = starts();
        log.append(&[b"before"]).unwrap();
        log.fail_writes(Some(io::ErrorKind::StorageFull));
        let told = log.enqueue(&[b"lost"]).unwrap();
        // A writer that stops waiting before the group ends is not owed an
        // answer: the failure must not be kept for it forever.
        let gone = log.enqueue(&[b"lost too"]).unwrap();
        drop(log.durable(gone, &start));
        log.lead_queued(|_| ());
        let waker = Waker::noop();
        let Poll::Ready(Err(e)) = poll_once(pin!(log.durable(told, &start)), waker) else { panic!("not failed") };
        assert!(e.to_string().contains("No space") || format!("{e:?}").contains("storage_full: true"), "{e:?}");
        assert!(log.state.lock().failed.is_empty(), "every failure was told");
        assert!(log.enqueue(&[b"refused"]).is_none(), "a broken log sends writers to the blocking path");

        log.fail_writes(None);
        log.append(&[b"after"]).unwrap();
        let q = log.enqueue(&[b"queued"]).unwrap();
        log.lead_queued(|_| ());
        assert!(matches!(poll_once(pin!(log.durable(q, &start)), waker), Poll::Ready(Ok(()))));
        drop(log);
        assert_eq!(read_all(&path), vec![b"before".to_vec(), b"after".to_vec(), b"queued".to_vec()]);
    }

    /// A blocked writer that leads hands the lead over to a queued writer
    /// waiting behind it once its own group has ended, so that its caller
    /// is not kept leading for others; records nobody waits for yet it
    /// leads itself.
    #[test]
    fn a_blocked_leader_hands_over_to_the_queued_writers_behind_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let (log, _) = RecordLog::open(&path, |_, _| ()).unwrap();
        let log = Arc::new(log);
        let (started, start) = starts();
        let blocked_leader = |record: &'static [u8]| {
            let (in_apply, wait_in_apply) = mpsc::channel();
            let (release, released) = mpsc::channel::<()>();
            let released = Mutex::new(released);
            let log = log.clone();
            let thread = std::thread::spawn(move || {
                log.append_applying(&[record], |r| {
                    if r == record {
                        in_apply.send(()).unwrap();
                        released.lock().recv().unwrap();
                    }
                })
            });
            wait_in_apply.recv().unwrap();
            (thread, release)
        };

        let (leader, release) = blocked_leader(b"blocked");
        let q = log.enqueue(&[b"queued"]).unwrap();
        let mut waiting = Box::pin(log.durable(q, &start));
        assert!(poll_once(waiting.as_mut(), Waker::noop()).is_pending());
        assert_eq!(started.load(Ordering::SeqCst), 0, "a leader is running");
        release.send(()).unwrap();
        leader.join().unwrap().unwrap();
        assert!(poll_once(waiting.as_mut(), Waker::noop()).is_pending(), "handed over, not led");
        assert_eq!(started.load(Ordering::SeqCst), 1, "the queued writer claimed the lead");
        log.lead_queued(|_| ());
        assert!(matches!(poll_once(waiting.as_mut(), Waker::noop()), Poll::Ready(Ok(()))));
        drop(waiting);

        let (leader, release) = blocked_leader(b"blocked again");
        let unpolled = log.enqueue(&[b"not awaited yet"]).unwrap();
        release.send(()).unwrap();
        leader.join().unwrap().unwrap();
        assert!(matches!(poll_once(pin!(log.durable(unpolled, &start)), Waker::noop()), Poll::Ready(Ok(()))));
        assert_eq!(started.load(Ordering::SeqCst), 1, "led by the blocked writer");

        // And the other way round: a blocked writer waits for the leader
        // claimed by a queued one.
        let q = log.enqueue(&[b"claimed"]).unwrap();
        let mut waiting = Box::pin(log.durable(q, &start));
        assert!(poll_once(waiting.as_mut(), Waker::noop()).is_pending());
        assert_eq!(started.load(Ordering::SeqCst), 2);
        let blocked = {
            let log = log.clone();
            std::thread::spawn(move || log.append(&[b"behind the claim"]))
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        log.lead_queued(|_| ());
        blocked.join().unwrap().unwrap();
        assert!(matches!(poll_once(waiting.as_mut(), Waker::noop()), Poll::Ready(Ok(()))));
        drop(waiting);
        drop(log);
        assert_eq!(read_all(&path).len(), 6);
    }
}
