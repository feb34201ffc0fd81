//! Counters shown in `/status` (the consumer's `statistics`).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use heroic_plugin_api::types::Statistic;

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
pub struct Stats {
    /// Messages pulled (a redelivered message counts again).
    pub received: Counter,
    /// Messages acknowledged after the host answered `Ok`.
    pub acked: Counter,
    pub batches_acked: Counter,
    /// Messages handed back (deadline 0) after the host refused their batch.
    pub nacked: Counter,
    /// Messages the host could not decode (acknowledged all the same).
    pub invalid: Counter,
    /// Batches the host refused (a backend failing).
    pub ingest_errors: Counter,
    pub pull_errors: Counter,
    /// Acknowledge calls that failed: their messages come back (duplicates).
    pub ack_errors: Counter,
    /// Nack calls that failed: their messages come back after the deadline.
    pub nack_errors: Counter,
    /// ModifyAckDeadline calls extending the deadline of held messages.
    pub deadline_extensions: Counter,
    pub deadline_extension_errors: Counter,
    /// Messages held right now (pulled, not yet acked or nacked).
    pub held: AtomicI64,
}

impl Stats {
    /// The counters as statistics, after the `gauges` given by the caller.
    pub fn report(&self, gauges: &[(&str, f64)]) -> Vec<Statistic> {
        let counters = [
            ("messages_received", &self.received),
            ("messages_acked", &self.acked),
            ("batches_acked", &self.batches_acked),
            ("messages_nacked", &self.nacked),
            ("messages_invalid", &self.invalid),
            ("ingest_errors", &self.ingest_errors),
            ("pull_errors", &self.pull_errors),
            ("ack_errors", &self.ack_errors),
            ("nack_errors", &self.nack_errors),
            ("deadline_extensions", &self.deadline_extensions),
            ("deadline_extension_errors", &self.deadline_extension_errors),
        ];
        gauges
            .iter()
            .map(|(n, v)| (*n, *v))
            .chain(counters.iter().map(|(n, c)| (*n, c.get() as f64)))
            .map(|(name, value)| Statistic { name: name.into(), value })
            .collect()
    }
}
