//! Messages taken from Kafka and not yet acknowledged, and the offset
//! commit that acknowledges them once the host made them durable. Offsets
//! are committed by hand (auto-commit is off) and only for partitions this
//! thread still owns; whatever is not committed is read again by the group
//! (a duplicate, never a loss).

use std::collections::BTreeMap;

use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::worker::Worker;

/// A message taken from Kafka, not yet acknowledged.
pub(crate) struct Pending {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) payload: Vec<u8>,
}

impl Pending {
    /// Copies what the batch needs out of a polled message.
    pub(crate) fn of(message: &BorrowedMessage<'_>) -> Self {
        Pending {
            partition: message.partition(),
            offset: message.offset(),
            payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        }
    }
}

/// The offsets to commit for `batch`: per partition still `assigned`, the
/// highest offset + 1; and how many of the batch's messages they cover.
fn next_offsets(batch: &[Pending], assigned: &[i32]) -> (BTreeMap<i32, i64>, u64) {
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut committed = 0u64;
    for m in batch {
        if assigned.contains(&m.partition) {
            let e = next.entry(m.partition).or_insert(m.offset + 1);
            *e = (*e).max(m.offset + 1);
            committed += 1;
        }
    }
    (next, committed)
}

impl Worker<'_> {
    /// Counts and logs messages dropped uncommitted.
    pub(crate) fn abandon(&self, n: usize) {
        if n > 0 {
            self.shared.counters.abandoned.add(n as u64);
            tracing::info!(
                messages = n,
                "abandoned uncommitted messages (they will be read again)"
            );
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
        let topic = tpl
            .elements()
            .first()
            .map(|e| e.topic().to_string())
            .unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(partition: i32, offset: i64) -> Pending {
        Pending {
            partition,
            offset,
            payload: Vec::new(),
        }
    }

    #[test]
    fn commits_the_next_offset_of_each_partition_still_assigned() {
        let batch = [
            pending(0, 7),
            pending(1, 3),
            pending(0, 5),
            pending(2, 9),
            pending(1, 4),
        ];
        let (next, committed) = next_offsets(&batch, &[0, 1]);
        assert_eq!(next, BTreeMap::from([(0, 8), (1, 5)]));
        assert_eq!(
            committed, 4,
            "partition 2 was revoked: its message is not committed"
        );
        let (next, committed) = next_offsets(&batch, &[]);
        assert!(next.is_empty() && committed == 0);
    }
}
