//! What `statistics()` reports: the counters of the whole consumer, and
//! per-thread state (alive, paused, lag, messages in flight) summed over
//! the threads.

use std::sync::atomic::{AtomicBool, AtomicUsize};

use heroic_plugin_api::sdk::support::Counter;
use parking_lot::Mutex;

use crate::offsets::Tracker;

/// Per-thread state, read by `statistics()` and `health()`, and by the
/// rebalance callback (which runs on the thread, inside its poll).
pub(crate) struct ThreadState {
    /// Cleared when the thread ends, however it ends.
    pub(crate) alive: AtomicBool,
    /// Set while the thread's partitions are paused because the host
    /// refuses batches (a backend transiently down).
    pub(crate) paused: AtomicBool,
    /// Partitions paused right now, for either reason (an outage, or too
    /// many messages in flight).
    pub(crate) paused_partitions: AtomicUsize,
    /// The consumer lag of each of the thread's partitions, as librdkafka's
    /// last statistics gave it: `(topic, partition, messages behind)`;
    /// empty while unknown (before the first statistics, after a revoke).
    pub(crate) lags: Mutex<Vec<(String, i32, i64)>>,
    /// The thread's partitions and their messages in flight. Never locked
    /// across a poll: the rebalance callback locks it from inside one.
    pub(crate) offsets: Mutex<Tracker>,
}

impl ThreadState {
    pub(crate) fn new(in_flight_limit: usize) -> Self {
        ThreadState {
            alive: AtomicBool::new(true),
            paused: AtomicBool::new(false),
            paused_partitions: AtomicUsize::new(0),
            lags: Mutex::new(Vec::new()),
            offsets: Mutex::new(Tracker::new(in_flight_limit)),
        }
    }
}

heroic_plugin_api::counter_set! {
    /// The consumer's counters, over all its threads.
    #[derive(Default)]
    pub(crate) struct Counters {
        /// Messages polled (a message read again after a rebalance counts again).
        pub(crate) consumed: Counter = "messages_consumed",
        /// Messages whose offsets were committed.
        pub(crate) committed: Counter = "messages_committed",
        /// Offset commits (one per written batch).
        pub(crate) batches_committed: Counter,
        /// Messages dropped uncommitted (revoked partitions, stop during
        /// failures): the group reads them again.
        pub(crate) abandoned: Counter = "messages_abandoned",
        /// Messages the host could not decode (committed all the same).
        pub(crate) invalid: Counter = "messages_invalid",
        /// Messages the host refused for good, sent to the dead-letter
        /// destination and then committed.
        pub(crate) dead_lettered: Counter = "messages_dead_lettered",
        /// Dead letters that could not be stored (the message is retried,
        /// not committed).
        pub(crate) dead_letter_errors: Counter,
        /// Batches (and parts of batches, while a poison message is
        /// isolated) the host refused.
        pub(crate) ingest_errors: Counter,
        /// Offset commits that failed.
        pub(crate) commit_errors: Counter,
        /// Errors librdkafka reported (polls, the client itself).
        pub(crate) kafka_errors: Counter,
        /// Rebalances seen (assignments, revocations, errors).
        pub(crate) rebalances: Counter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_keep_their_documented_names() {
        let names: Vec<String> = Counters::default().statistics().iter().map(|s| s.name.to_string()).collect();
        let expected = [
            "messages_consumed",
            "messages_committed",
            "batches_committed",
            "messages_abandoned",
            "messages_invalid",
            "messages_dead_lettered",
            "dead_letter_errors",
            "ingest_errors",
            "commit_errors",
            "kafka_errors",
            "rebalances",
        ];
        assert_eq!(names, expected);
    }
}
