//! Rebalances: the group moves partitions between its members. The
//! callback runs on the consuming thread, inside its poll: a revoked
//! partition's messages in flight are dropped from the thread's offsets
//! (never committed here: the new owner reads them again from the last
//! commit), an assigned one starts clean. After the poll the thread drops
//! the stale messages it still queues and sets the pause state of its new
//! assignment (`pausing`).

use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::TopicPartitionList;

use crate::logging::Context;

impl ConsumerContext for Context {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.shared.counters.rebalances.inc();
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut offsets = self.thread.offsets.lock();
            let dropped: usize = tpl.elements().iter().map(|e| offsets.revoke(e.partition())).sum();
            drop(offsets);
            tracing::info!(partitions = %describe(tpl), dropped_in_flight = dropped, "partitions revoked");
            self.thread.lags.lock().clear();
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let mut offsets = self.thread.offsets.lock();
                for e in tpl.elements() {
                    offsets.assign(e.partition());
                }
                drop(offsets);
                tracing::info!(partitions = %describe(tpl), "partitions assigned");
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => {
                // rdkafka unassigns everything after a failed rebalance.
                let dropped = self.thread.offsets.lock().revoke_all();
                tracing::warn!(error = %e, dropped_in_flight = dropped, "rebalance error; partitions unassigned");
            }
        }
    }
}

/// `topic/partition,…` for logs.
fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements().iter().map(|e| format!("{}/{}", e.topic(), e.partition())).collect::<Vec<_>>().join(",")
}
