//! What `statistics()` reports: the counters of the whole consumer, and
//! per-thread state (alive, paused, lag) summed over the threads.

use std::sync::atomic::{AtomicBool, AtomicI64};

use heroic_plugin_api::sdk::support::Counter;

/// Per-thread state, read by `statistics()` and `health()`.
#[derive(Default)]
pub(crate) struct ThreadState {
    /// Cleared when the thread ends, however it ends.
    pub(crate) alive: AtomicBool,
    /// Set while the thread's partitions are paused (the host refuses
    /// batches).
    pub(crate) paused: AtomicBool,
    /// Sum of the consumer lag of the thread's partitions (-1: unknown).
    pub(crate) lag: AtomicI64,
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
        /// Batches the host refused (a backend failing).
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
            "ingest_errors",
            "commit_errors",
            "kafka_errors",
            "rebalances",
        ];
        assert_eq!(names, expected);
    }
}
