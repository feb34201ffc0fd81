//! Which partitions a thread holds back, and the offset commit.
//!
//! A partition is paused while the host refuses batches as transient (a
//! backend down: every partition of the thread), or while it has
//! `max_in_flight_per_partition` messages polled and not durable (until
//! half of them are), so that an outage or a slow backend does not make
//! the thread queue messages without bound. Pauses are set after every
//! poll, as changes; after a rebalance every assigned partition is set
//! explicitly (librdkafka may keep a partition paused across a revocation
//! and a new assignment).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};

use crate::worker::Worker;

impl Worker<'_> {
    /// After each poll: drops queued messages of partitions revoked in it,
    /// then sets the pauses.
    pub(crate) fn after_poll(&mut self) {
        let changed = self.thread.offsets.lock().take_changed();
        if changed {
            let offsets = self.thread.offsets.lock();
            let before = self.pending.len();
            self.pending.retain(|m| offsets.is_current(m.partition, m.generation));
            drop(offsets);
            self.abandon(before - self.pending.len());
        }
        self.sync_pauses(changed);
    }

    /// Pauses and resumes partitions to match what they should be; with
    /// `all`, sets every assigned partition whatever it was.
    pub(crate) fn sync_pauses(&mut self, all: bool) {
        let (assigned, full) = {
            let mut offsets = self.thread.offsets.lock();
            (offsets.assigned(), offsets.full())
        };
        let want: BTreeSet<i32> =
            if self.outage { assigned.iter().copied().collect() } else { full.into_iter().collect() };
        self.paused.retain(|p| assigned.contains(p));
        let pause: Vec<i32> = want.iter().copied().filter(|p| all || !self.paused.contains(p)).collect();
        let resume: Vec<i32> =
            assigned.iter().copied().filter(|p| !want.contains(p) && (all || self.paused.contains(p))).collect();
        if !pause.is_empty() {
            match self.consumer.pause(&self.list(&pause)) {
                Ok(()) => self.paused.extend(&pause),
                Err(e) => tracing::warn!(error = %e, partitions = ?pause, "cannot pause partitions"),
            }
            tracing::debug!(topic = self.topic, partitions = ?pause, outage = self.outage, "partitions paused");
        }
        if !resume.is_empty() {
            match self.consumer.resume(&self.list(&resume)) {
                Ok(()) => self.paused.retain(|p| !resume.contains(p)),
                Err(e) => tracing::warn!(error = %e, partitions = ?resume, "cannot resume partitions"),
            }
            tracing::debug!(topic = self.topic, partitions = ?resume, "partitions resumed");
        }
        self.thread.paused_partitions.store(self.paused.len(), Ordering::Relaxed);
    }

    fn list(&self, partitions: &[i32]) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition(self.topic, *p);
        }
        tpl
    }

    /// Counts and logs messages dropped uncommitted.
    pub(crate) fn abandon(&self, n: usize) {
        if n > 0 {
            self.shared.counters.abandoned.add(n as u64);
            tracing::info!(
                messages = n,
                topic = self.topic,
                "abandoned uncommitted messages (they will be read again)"
            );
        }
    }

    /// Commits, for each partition still assigned, up to its first message
    /// not yet durable (see `offsets`).
    pub(crate) fn commit(&self) {
        let next: BTreeMap<i32, i64> = self.thread.offsets.lock().to_commit();
        if next.is_empty() {
            return;
        }
        let mut offsets = TopicPartitionList::new();
        for (p, o) in &next {
            let _ = offsets.add_partition_offset(self.topic, *p, Offset::Offset(*o));
        }
        match self.consumer.commit(&offsets, CommitMode::Sync) {
            Ok(()) => {
                let acknowledged = self.thread.offsets.lock().committed(&next);
                self.shared.counters.committed.add(acknowledged);
                self.shared.counters.batches_committed.inc();
            }
            Err(e) => {
                // The next batch commits the same offsets or higher ones; a
                // rebalance makes the new owner re-read from the last
                // commit (duplicates, never losses).
                self.shared.counters.commit_errors.inc();
                if self.shared.log_limited("commit error") {
                    tracing::warn!(error = %e, topic = self.topic, "offset commit failed");
                }
            }
        }
    }
}
