//! Counters shown in `/status` (the consumer's `statistics`), declared with
//! the SDK's counter set so that the list of names cannot drift from the
//! fields.

use heroic_plugin_api::sdk::support::Counter;

heroic_plugin_api::counter_set! {
    /// What the pulling loops count; reported after the consumer's gauges.
    #[derive(Default)]
    pub struct Stats {
        /// Messages pulled (a redelivered message counts again).
        pub received: Counter = "messages_received",
        /// Messages acknowledged after the host answered `Ok`.
        pub acked: Counter = "messages_acked",
        /// Batches acknowledged.
        pub batches_acked: Counter,
        /// Messages handed back (deadline 0) after the host refused their batch.
        pub nacked: Counter = "messages_nacked",
        /// Messages the host could not decode (acknowledged all the same).
        pub invalid: Counter = "messages_invalid",
        /// Messages the host refused for good, stored as dead letters and
        /// then acknowledged.
        pub dead_lettered: Counter = "messages_dead_lettered",
        /// Dead letters that could not be stored (the message is nacked,
        /// to be redelivered).
        pub dead_letter_errors: Counter,
        /// Batches (and parts of batches, while a poison message is
        /// isolated) the host refused.
        pub ingest_errors: Counter,
        /// Pull calls that failed.
        pub pull_errors: Counter,
        /// Acknowledge calls that failed: their messages come back (duplicates).
        pub ack_errors: Counter,
        /// Nack calls that failed: their messages come back after the deadline.
        pub nack_errors: Counter,
        /// ModifyAckDeadline calls extending the deadline of held messages.
        pub deadline_extensions: Counter,
        /// ModifyAckDeadline calls that failed (the batch may be redelivered).
        pub deadline_extension_errors: Counter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_keep_their_documented_names() {
        let names: Vec<String> = Stats::default().statistics().iter().map(|s| s.name.to_string()).collect();
        // As listed in the README (after the consumer's four gauges).
        let documented = [
            "messages_received",
            "messages_acked",
            "batches_acked",
            "messages_nacked",
            "messages_invalid",
            "messages_dead_lettered",
            "dead_letter_errors",
            "ingest_errors",
            "pull_errors",
            "ack_errors",
            "nack_errors",
            "deadline_extensions",
            "deadline_extension_errors",
        ];
        assert_eq!(names, documented);
    }
}
