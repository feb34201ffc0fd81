//! The consuming loop of one thread: poll until a batch is full or its
//! linger time passed, hand it to the host, and commit it once the host
//! answered `Ok`. While the host refuses it (a backend failing) the thread
//! pauses its partitions and retries the same batch with the SDK's backoff,
//! polling meanwhile so that the group keeps it and rebalances are served.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use heroic_plugin_api::sdk::IngestSink;
use heroic_plugin_api::types::RawMessage;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};

use crate::logging::Context;
use crate::offsets::{next_offsets, Pending};
use crate::shared::Shared;
use crate::stats::ThreadState;

/// One consuming thread.
pub(crate) struct Worker<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) thread: &'a ThreadState,
    pub(crate) consumer: &'a BaseConsumer<Context>,
    pub(crate) sink: &'a IngestSink,
}

impl Worker<'_> {
    fn stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::SeqCst)
    }

    /// Consumes until the consumer stops.
    pub(crate) fn run(&self) {
        let mut pending: Vec<Pending> = Vec::new();
        loop {
            self.fill(&mut pending);
            if pending.is_empty() {
                if self.stopping() {
                    break;
                }
                continue;
            }
            let size = self.shared.config.batch_size.min(pending.len());
            let batch: Vec<Pending> = pending.drain(..size).collect();
            self.deliver(batch, &mut pending);
            if self.stopping() {
                // What was polled but not handed over is simply not
                // committed: the group reads it again.
                self.abandon(pending.len());
                break;
            }
        }
    }

    /// Polls until a batch is full, the linger time after its first message
    /// passed, or the consumer stops.
    fn fill(&self, pending: &mut Vec<Pending>) {
        let linger = Duration::from_millis(self.shared.config.batch_linger_ms);
        let mut first: Option<Instant> = (!pending.is_empty()).then(Instant::now);
        while pending.len() < self.shared.config.batch_size && !self.stopping() {
            let timeout = match first {
                None => Duration::from_millis(100),
                Some(t) => match linger.checked_sub(t.elapsed()) {
                    Some(left) => left,
                    None => break,
                },
            };
            match self.consumer.poll(timeout) {
                None if first.is_none() => return,
                None => {}
                Some(Ok(m)) => {
                    self.shared.counters.consumed.inc();
                    pending.push(Pending::of(&m));
                    first.get_or_insert_with(Instant::now);
                }
                Some(Err(e)) => {
                    self.shared.counters.kafka_errors.inc();
                    if self.shared.log_limited("poll error") {
                        tracing::warn!(error = %e, "kafka poll error");
                    }
                }
            }
        }
    }

    /// Hands a batch to the host until it is durable (then commits), or the
    /// consumer stops, or all its partitions were revoked (then abandons it).
    fn deliver(&self, mut batch: Vec<Pending>, pending: &mut Vec<Pending>) {
        self.drop_revoked(&mut batch);
        let mut backoff = self.shared.retry.backoff();
        let max = self.shared.retry.max;
        let mut paused: Option<TopicPartitionList> = None;
        while !batch.is_empty() {
            let raw: Vec<RawMessage> = batch.iter().map(|m| RawMessage { payload: m.payload.clone().into() }).collect();
            match futures::executor::block_on(self.sink.ingest(raw)) {
                Ok(outcome) => {
                    self.shared.counters.invalid.add(outcome.invalid);
                    self.commit(&batch);
                    break;
                }
                Err(e) => {
                    self.shared.counters.ingest_errors.inc();
                    // A retry hint from the host lengthens the wait, within
                    // the documented longest one. No retry limit: the
                    // backoff always answers.
                    let wait = backoff.next_delay(e.retry_after().map(|h| h.min(max))).unwrap_or(max);
                    if self.shared.log_limited("ingest error") {
                        tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64,
                            "the host could not write a batch; pausing, will retry without committing");
                    }
                    if paused.is_none() {
                        if let Ok(tpl) = self.consumer.assignment() {
                            let _ = self.consumer.pause(&tpl);
                            paused = Some(tpl);
                        }
                        self.thread.paused.store(true, Ordering::Relaxed);
                    }
                    if self.stopping() {
                        self.abandon(batch.len());
                        break;
                    }
                    self.wait_serving(wait, pending);
                    self.drop_revoked(&mut batch);
                }
            }
        }
        if let Some(tpl) = paused {
            let _ = self.consumer.resume(&tpl);
            self.thread.paused.store(false, Ordering::Relaxed);
            tracing::info!("resumed consuming");
        }
    }

    /// Waits while still polling, so the group keeps this member and
    /// rebalances are served; messages still arriving (prefetched, or from
    /// newly assigned partitions) queue up after the batch being retried.
    fn wait_serving(&self, wait: Duration, pending: &mut Vec<Pending>) {
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stopping() {
                return;
            }
            if let Some(Ok(m)) = self.consumer.poll(left.min(Duration::from_millis(100))) {
                self.shared.counters.consumed.inc();
                pending.push(Pending::of(&m));
            }
        }
    }
}

/// Acknowledging: offsets are committed by hand, only for partitions this
/// thread still owns (see `offsets.rs`).
impl Worker<'_> {
    /// Counts and logs messages dropped uncommitted.
    pub(crate) fn abandon(&self, n: usize) {
        if n > 0 {
            self.shared.counters.abandoned.add(n as u64);
            tracing::info!(messages = n, "abandoned uncommitted messages (they will be read again)");
        }
    }

    /// Commits the batch's offsets for the partitions still assigned.
    pub(crate) fn commit(&self, batch: &[Pending]) {
        let (next, committed) = next_offsets(batch, &self.assigned());
        self.abandon(batch.len() - committed as usize);
        if next.is_empty() {
            return;
        }
        let Ok(tpl) = self.consumer.assignment() else {
            return;
        };
        let topic = tpl.elements().first().map(|e| e.topic().to_string()).unwrap_or_default();
        let mut offsets = TopicPartitionList::new();
        for (p, o) in next {
            let _ = offsets.add_partition_offset(&topic, p, Offset::Offset(o));
        }
        match self.consumer.commit(&offsets, CommitMode::Sync) {
            Ok(()) => {
                self.shared.counters.committed.add(committed);
                self.shared.counters.batches_committed.inc();
            }
            Err(e) => {
                // The next batch commits higher offsets; a rebalance makes
                // the new owner re-read from the last commit (duplicates,
                // never losses).
                self.shared.counters.commit_errors.inc();
                if self.shared.log_limited("commit error") {
                    tracing::warn!(error = %e, "offset commit failed");
                }
            }
        }
    }
}
