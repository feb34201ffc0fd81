//! The consuming loop of one thread: poll until a batch is full or its
//! linger time passed, hand it to the host, commit what is durable.
//!
//! What the host answers decides what happens to the batch:
//! - `Ok`: its messages are durable; their offsets are committed.
//! - a transient error (a backend down): the thread pauses its partitions,
//!   waits with the SDK's backoff while still polling (the group keeps it,
//!   rebalances are served) and retries the same messages.
//! - a permanent error (a backend refuses a series for good, or panics on
//!   it): retrying the whole batch cannot help, so it is bisected
//!   ([`Bisect`]) down to the messages that fail on their own; each is
//!   stored in the dead-letter destination, then committed past.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use heroic_plugin_api::sdk::support::Bisect;
use heroic_plugin_api::sdk::IngestSink;
use heroic_plugin_api::types::RawMessage;
use heroic_plugin_api::PluginError;
use rdkafka::consumer::BaseConsumer;
use rdkafka::message::{BorrowedMessage, Message};

use crate::logging::Context;
use crate::offsets::Pending;
use crate::shared::Shared;
use crate::stats::ThreadState;

/// One consuming thread.
pub(crate) struct Worker<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) thread: &'a ThreadState,
    pub(crate) consumer: &'a BaseConsumer<Context>,
    pub(crate) sink: &'a IngestSink,
    /// The topic this thread consumes.
    pub(crate) topic: &'a str,
    /// Polled, not yet handed to the host, in poll order.
    pub(crate) pending: VecDeque<Pending>,
    /// Partitions this thread paused (see `pausing`).
    pub(crate) paused: BTreeSet<i32>,
    /// Set while the host refuses batches as transient (a backend down):
    /// every partition of the thread is paused meanwhile.
    pub(crate) outage: bool,
}

impl<'a> Worker<'a> {
    pub(crate) fn new(
        shared: &'a Shared,
        thread: &'a ThreadState,
        consumer: &'a BaseConsumer<Context>,
        sink: &'a IngestSink,
        topic: &'a str,
    ) -> Self {
        Worker {
            shared,
            thread,
            consumer,
            sink,
            topic,
            pending: VecDeque::new(),
            paused: BTreeSet::new(),
            outage: false,
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::SeqCst)
    }

    /// Consumes until the consumer stops.
    pub(crate) fn run(mut self) {
        loop {
            self.fill();
            if self.pending.is_empty() {
                if self.stopping() {
                    break;
                }
                continue;
            }
            let size = self.shared.config.batch_size.min(self.pending.len());
            let batch: Vec<Pending> = self.pending.drain(..size).collect();
            self.deliver(batch);
            self.commit();
            if self.stopping() {
                // What was polled but not handed over is simply not
                // committed: the group reads it again.
                self.abandon(self.pending.len());
                break;
            }
        }
    }

    /// Polls once; a message goes to `pending`. Then applies what a
    /// rebalance inside the poll changed, and the pauses.
    fn poll_once(&mut self, timeout: Duration) -> bool {
        let consumer = self.consumer;
        let got = match consumer.poll(timeout) {
            None => false,
            Some(Ok(m)) => {
                self.shared.counters.consumed.inc();
                self.take(&m);
                true
            }
            Some(Err(e)) => {
                self.shared.counters.kafka_errors.inc();
                if self.shared.log_limited("poll error") {
                    tracing::warn!(error = %e, "kafka poll error");
                }
                false
            }
        };
        self.after_poll();
        got
    }

    /// Tracks a polled message as in flight and queues it.
    fn take(&mut self, m: &BorrowedMessage<'_>) {
        let generation = self.thread.offsets.lock().polled(m.partition(), m.offset());
        match generation {
            Some(generation) => self.pending.push_back(Pending::of(m, generation)),
            // Its partition is not (or no longer) this thread's: its owner
            // reads it.
            None => self.abandon(1),
        }
    }

    /// Polls until a batch is full, the linger time after its first message
    /// passed, or the consumer stops.
    fn fill(&mut self) {
        let linger = Duration::from_millis(self.shared.config.batch_linger_ms);
        let mut first: Option<Instant> = (!self.pending.is_empty()).then(Instant::now);
        while self.pending.len() < self.shared.config.batch_size && !self.stopping() {
            let timeout = match first {
                None => Duration::from_millis(100),
                Some(t) => match linger.checked_sub(t.elapsed()) {
                    Some(left) => left,
                    None => break,
                },
            };
            if self.poll_once(timeout) {
                first.get_or_insert_with(Instant::now);
            } else if first.is_none() && self.pending.is_empty() {
                return;
            }
        }
    }

    /// Hands a batch to the host until every message of it is resolved
    /// (durable or dead-lettered), or the consumer stops during a failure
    /// (the rest is abandoned, uncommitted). Messages of partitions revoked
    /// meanwhile are dropped on the way.
    fn deliver(&mut self, batch: Vec<Pending>) {
        let mut slots: Vec<Option<Pending>> = batch.into_iter().map(Some).collect();
        let mut bisect = Bisect::new(slots.len());
        let mut backoff = self.shared.retry.backoff();
        let max = self.shared.retry.max;
        while let Some(range) = bisect.current() {
            let live = self.live(&mut slots, range);
            if live.is_empty() {
                bisect.resolved();
                continue;
            }
            let raw: Vec<RawMessage> = live
                .iter()
                .filter_map(|i| slots[*i].as_ref())
                .map(|m| RawMessage { payload: m.payload.clone().into() })
                .collect();
            let failure = match futures::executor::block_on(self.sink.ingest(raw)) {
                Ok(outcome) => {
                    self.shared.counters.invalid.add(outcome.invalid);
                    self.resolve(&slots, &live);
                    bisect.resolved();
                    None
                }
                Err(e) => {
                    self.shared.counters.ingest_errors.inc();
                    if e.is_transient() {
                        Some(e)
                    } else if bisect.split() {
                        if self.shared.log_limited("isolating") {
                            tracing::warn!(error = %e, topic = self.topic, messages = live.len(),
                                "the host refuses a batch for good; splitting it to find the messages at fault");
                        }
                        None
                    } else {
                        // One message the host refuses for good: poison.
                        match slots[live[0]].as_ref().map(|m| self.dead_letter(m, &e)) {
                            Some(Err(dead_letter_error)) => Some(PluginError::unavailable(dead_letter_error)),
                            _ => {
                                self.resolve(&slots, &live);
                                bisect.resolved();
                                None
                            }
                        }
                    }
                }
            };
            match failure {
                None => self.recovered(&mut backoff),
                Some(e) => {
                    // A retry hint from the host lengthens the wait, within
                    // the documented longest one. No retry limit: the
                    // backoff always answers.
                    let wait = backoff.next_delay(e.retry_after().map(|h| h.min(max))).unwrap_or(max);
                    if self.shared.log_limited("ingest error") {
                        tracing::warn!(error = %e, topic = self.topic, retry_in_ms = wait.as_millis() as u64,
                            "the host could not write a batch; pausing, will retry without committing");
                    }
                    if !self.outage {
                        self.outage = true;
                        self.thread.paused.store(true, Ordering::Relaxed);
                        self.sync_pauses(false);
                    }
                    if self.stopping() {
                        let left = bisect.unresolved().filter(|i| slots[*i].is_some()).count();
                        self.abandon(left);
                        break;
                    }
                    self.wait_serving(wait);
                }
            }
        }
        // The batch is over (resolved, revoked, or given up at a stop):
        // the next one finds out whether the outage lasts; until then the
        // partitions must not stay paused, or nothing would show it.
        self.recovered(&mut backoff);
    }

    /// The indices of `range` whose message is still this thread's; stale
    /// ones (their partition was revoked) are dropped and counted.
    fn live(&self, slots: &mut [Option<Pending>], range: std::ops::Range<usize>) -> Vec<usize> {
        let offsets = self.thread.offsets.lock();
        let mut stale = 0;
        let mut live = Vec::new();
        for i in range {
            match &slots[i] {
                Some(m) if offsets.is_current(m.partition, m.generation) => live.push(i),
                Some(_) => {
                    slots[i] = None;
                    stale += 1;
                }
                None => {}
            }
        }
        drop(offsets);
        self.abandon(stale);
        live
    }

    /// The messages at `indices` are durable or dead-lettered.
    fn resolve(&self, slots: &[Option<Pending>], indices: &[usize]) {
        let mut offsets = self.thread.offsets.lock();
        for m in indices.iter().filter_map(|i| slots[*i].as_ref()) {
            offsets.resolved(m.partition, m.generation, m.offset);
        }
    }

    /// After an attempt that went through (or a batch left behind): the
    /// outage, if any, is over; the partitions resume.
    fn recovered(&mut self, backoff: &mut heroic_plugin_api::sdk::support::Backoff) {
        if self.outage {
            self.outage = false;
            backoff.reset();
            self.thread.paused.store(false, Ordering::Relaxed);
            self.sync_pauses(false);
            tracing::info!(topic = self.topic, "resumed consuming");
        }
    }

    /// Stores a poison message in the dead-letter destination; `Err` (a
    /// reason) when that fails: the message is then retried, not committed.
    fn dead_letter(&self, m: &Pending, error: &PluginError) -> Result<(), String> {
        let dead_letters = &self.shared.dead_letters;
        match dead_letters.store(self.topic, m, error) {
            Ok(()) => {
                self.shared.counters.dead_lettered.inc();
                if self.shared.log_limited("dead letter") {
                    tracing::warn!(group = ?self.shared.config.group_id, topic = self.topic, partition = m.partition,
                        offset = m.offset, kind = %error.kind, reason = %error.message,
                        destination = %dead_letters.describe(),
                        "the host refuses a message for good; dead-lettered it and committing past it");
                }
                Ok(())
            }
            Err(e) => {
                self.shared.counters.dead_letter_errors.inc();
                if self.shared.log_limited("dead letter error") {
                    tracing::warn!(topic = self.topic, partition = m.partition, offset = m.offset, error = %e,
                        destination = %dead_letters.describe(),
                        "cannot store a poison message as a dead letter; retrying without committing");
                }
                Err(format!("cannot store a dead letter in the {}: {e}", dead_letters.describe()))
            }
        }
    }

    /// Waits while still polling, so the group keeps this member and
    /// rebalances are served; messages still arriving (prefetched, or from
    /// newly assigned partitions before their pause) queue up after the
    /// batch being retried.
    fn wait_serving(&mut self, wait: Duration) {
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stopping() {
                return;
            }
            self.poll_once(left.min(Duration::from_millis(100)));
        }
    }
}
