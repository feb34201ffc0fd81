//! Which offsets a thread may commit. Every message polled is in flight
//! until it is resolved (written durably, or dead-lettered); a partition's
//! commit is the offset of its first message still in flight (or one past
//! the last resolved one), so it never passes a message that is not
//! durable, whatever order the messages of a batch are resolved in.
//!
//! The state of a partition lives from its assignment to its revocation.
//! Revoking drops it, messages in flight and all: the new owner reads them
//! again from the last commit, and nothing of them is committed here. A
//! partition assigned again starts clean, in a new generation, so that a
//! message polled before the revocation (still in a batch being retried)
//! is recognised as stale and neither written nor committed.
//!
//! In-flight messages per partition are bounded: [`Tracker::full`] tells
//! which partitions to pause, until they drain to half the bound.

use std::collections::{BTreeMap, BTreeSet};

use rdkafka::message::{BorrowedMessage, Message};

/// A message taken from Kafka, not yet acknowledged.
pub(crate) struct Pending {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    /// The partition's generation when the message was polled.
    pub(crate) generation: u64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) payload: Vec<u8>,
}

impl Pending {
    /// Copies what the batch needs out of a polled message.
    pub(crate) fn of(message: &BorrowedMessage<'_>, generation: u64) -> Self {
        Pending {
            partition: message.partition(),
            offset: message.offset(),
            generation,
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        }
    }
}

/// One assigned partition.
#[derive(Debug, Default)]
struct Partition {
    generation: u64,
    /// Polled, not resolved.
    in_flight: BTreeSet<i64>,
    /// Resolved, not yet covered by a commit.
    resolved: BTreeSet<i64>,
    /// The last offset committed in this generation.
    committed: Option<i64>,
    /// Whether the partition is held back for having too many in flight.
    full: bool,
}

impl Partition {
    /// Where a commit would put the partition: its first message in flight,
    /// else one past its last resolved one.
    fn commit_point(&self) -> Option<i64> {
        match self.in_flight.first() {
            Some(first) => Some(*first),
            None => self.resolved.last().map(|last| last + 1),
        }
    }
}

/// The messages in flight of one thread, by partition.
#[derive(Debug)]
pub(crate) struct Tracker {
    partitions: BTreeMap<i32, Partition>,
    next_generation: u64,
    /// In-flight messages per partition at which it is paused.
    limit: usize,
    /// Set by every assignment or revocation, cleared by
    /// [`Tracker::take_changed`]: the thread then drops stale messages and
    /// sets the pause state of the new assignment.
    changed: bool,
}

impl Tracker {
    pub(crate) fn new(limit: usize) -> Self {
        Tracker { partitions: BTreeMap::new(), next_generation: 1, limit: limit.max(1), changed: false }
    }

    /// The partition is (again) this thread's: it starts clean.
    pub(crate) fn assign(&mut self, partition: i32) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.partitions.insert(partition, Partition { generation, ..Partition::default() });
        self.changed = true;
    }

    /// The partition is no longer this thread's: its messages in flight are
    /// dropped, never to be committed here. Answers how many.
    pub(crate) fn revoke(&mut self, partition: i32) -> usize {
        self.changed = true;
        self.partitions.remove(&partition).map_or(0, |p| p.in_flight.len())
    }

    /// Revokes every partition (a failed rebalance unassigns them all).
    pub(crate) fn revoke_all(&mut self) -> usize {
        let partitions: Vec<i32> = self.partitions.keys().copied().collect();
        partitions.into_iter().map(|p| self.revoke(p)).sum()
    }

    pub(crate) fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The partitions assigned, in order.
    pub(crate) fn assigned(&self) -> Vec<i32> {
        self.partitions.keys().copied().collect()
    }

    /// Records a polled message; answers its generation, or `None` when its
    /// partition is not assigned (the message must be dropped).
    pub(crate) fn polled(&mut self, partition: i32, offset: i64) -> Option<u64> {
        let p = self.partitions.get_mut(&partition)?;
        p.in_flight.insert(offset);
        Some(p.generation)
    }

    /// Whether a message polled in `generation` is still this thread's.
    pub(crate) fn is_current(&self, partition: i32, generation: u64) -> bool {
        self.partitions.get(&partition).is_some_and(|p| p.generation == generation)
    }

    /// The message is durable (or dead-lettered): it no longer holds back
    /// the commit. Stale messages are ignored.
    pub(crate) fn resolved(&mut self, partition: i32, generation: u64, offset: i64) {
        if let Some(p) = self.partitions.get_mut(&partition).filter(|p| p.generation == generation) {
            if p.in_flight.remove(&offset) {
                p.resolved.insert(offset);
            }
        }
    }

    /// Offsets to commit: per partition whose commit point moved past
    /// resolved messages since the last commit.
    pub(crate) fn to_commit(&self) -> BTreeMap<i32, i64> {
        self.partitions
            .iter()
            .filter_map(|(id, p)| {
                let point = p.commit_point()?;
                let moved = p.committed.is_none_or(|c| point > c) && p.resolved.first().is_some_and(|r| *r < point);
                moved.then_some((*id, point))
            })
            .collect()
    }

    /// The commit of `offsets` succeeded; answers how many messages it
    /// acknowledged. Partitions revoked meanwhile are skipped.
    pub(crate) fn committed(&mut self, offsets: &BTreeMap<i32, i64>) -> u64 {
        let mut acknowledged = 0;
        for (id, offset) in offsets {
            if let Some(p) = self.partitions.get_mut(id) {
                let rest = p.resolved.split_off(offset);
                acknowledged += p.resolved.len() as u64;
                p.resolved = rest;
                p.committed = Some(p.committed.map_or(*offset, |c| c.max(*offset)));
            }
        }
        acknowledged
    }

    /// Messages in flight over every partition.
    pub(crate) fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.in_flight.len()).sum()
    }

    /// Updates which partitions are held back for having too many messages
    /// in flight: from `limit` until they drain to half of it. Answers them.
    pub(crate) fn full(&mut self) -> Vec<i32> {
        let limit = self.limit;
        let mut out = Vec::new();
        for (id, p) in &mut self.partitions {
            let n = p.in_flight.len();
            p.full = if p.full { n > limit / 2 } else { n >= limit };
            if p.full {
                out.push(*id);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(t: &mut Tracker, partition: i32, offsets: std::ops::Range<i64>) -> u64 {
        offsets.map(|o| t.polled(partition, o).expect("assigned")).last().unwrap_or(0)
    }

    #[test]
    fn commits_up_to_the_first_message_not_yet_durable() {
        let mut t = Tracker::new(100);
        t.assign(0);
        t.assign(1);
        let g0 = poll(&mut t, 0, 10..15);
        let g1 = poll(&mut t, 1, 3..5);
        assert!(t.to_commit().is_empty(), "nothing resolved, nothing to commit");

        // Resolved out of order (a bisected batch): 10, 11 and 13 are
        // durable, 12 is not; the commit stops at 12.
        for o in [13, 10, 11] {
            t.resolved(0, g0, o);
        }
        t.resolved(1, g1, 3);
        assert_eq!(t.to_commit(), BTreeMap::from([(0, 12), (1, 4)]));
        assert_eq!(t.committed(&t.to_commit()), 3, "10, 11 and 3 acknowledged");
        assert!(t.to_commit().is_empty(), "nothing moved since");

        t.resolved(0, g0, 12);
        t.resolved(0, g0, 14);
        assert_eq!(t.to_commit(), BTreeMap::from([(0, 15)]), "one past the last, once all are durable");
        assert_eq!(t.committed(&t.to_commit()), 3);
        assert_eq!(t.in_flight(), 1, "partition 1's offset 4");
    }

    #[test]
    fn a_revoked_partition_is_never_committed_and_starts_clean_when_assigned_again() {
        let mut t = Tracker::new(100);
        t.assign(0);
        t.assign(1);
        let old = poll(&mut t, 0, 0..10);
        let g1 = poll(&mut t, 1, 0..2);
        t.resolved(0, old, 0);
        t.take_changed();

        assert_eq!(t.revoke(0), 9, "in-flight messages dropped");
        assert!(t.take_changed());
        // A batch written after the revocation: ignored, not committed.
        t.resolved(0, old, 1);
        t.resolved(1, g1, 0);
        assert_eq!(t.to_commit(), BTreeMap::from([(1, 1)]), "only the partition still owned");
        assert_eq!(t.polled(0, 10), None, "a message of a revoked partition is refused");

        // Assigned again: the group re-delivers from the last commit; the
        // messages polled before are stale and hold nothing back.
        t.assign(0);
        assert!(!t.is_current(0, old));
        let new = poll(&mut t, 0, 0..3);
        assert!(t.is_current(0, new));
        t.resolved(0, old, 2);
        assert!(!t.to_commit().contains_key(&0));
        t.resolved(0, new, 0);
        assert_eq!(t.to_commit().get(&0), Some(&1));

        assert_eq!(t.revoke_all(), 3, "partition 1's offset 1 and partition 0's 1 and 2");
        assert!(t.to_commit().is_empty() && t.assigned().is_empty());
    }

    #[test]
    fn a_full_partition_is_held_back_until_it_drains_to_half() {
        let mut t = Tracker::new(4);
        t.assign(0);
        t.assign(1);
        let g = poll(&mut t, 0, 0..3);
        poll(&mut t, 1, 0..1);
        assert!(t.full().is_empty());
        t.polled(0, 3);
        assert_eq!(t.full(), vec![0], "4 in flight: full");
        t.resolved(0, g, 0);
        assert_eq!(t.full(), vec![0], "3 left: still held back");
        t.resolved(0, g, 1);
        assert!(t.full().is_empty(), "2 left, half the bound: resumed");
        t.polled(0, 4);
        assert!(t.full().is_empty(), "3: below the bound again");
    }
}
