//! Messages taken from Kafka and not yet acknowledged, and the offset
//! commit that acknowledges them once the host made them durable. Offsets
//! are committed by hand (auto-commit is off) and only for partitions this
//! thread still owns; whatever is not committed is read again by the group
//! (a duplicate, never a loss).

use std::collections::BTreeMap;

use rdkafka::message::{BorrowedMessage, Message};

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
pub(crate) fn next_offsets(batch: &[Pending], assigned: &[i32]) -> (BTreeMap<i32, i64>, u64) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(partition: i32, offset: i64) -> Pending {
        Pending { partition, offset, payload: Vec::new() }
    }

    #[test]
    fn commits_the_next_offset_of_each_partition_still_assigned() {
        let batch = [pending(0, 7), pending(1, 3), pending(0, 5), pending(2, 9), pending(1, 4)];
        let (next, committed) = next_offsets(&batch, &[0, 1]);
        assert_eq!(next, BTreeMap::from([(0, 8), (1, 5)]));
        assert_eq!(committed, 4, "partition 2 was revoked: its message is not committed");
        let (next, committed) = next_offsets(&batch, &[]);
        assert!(next.is_empty() && committed == 0);
    }
}
