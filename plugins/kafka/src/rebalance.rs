//! Rebalances: the group moves partitions between its members. Messages of
//! a partition this thread no longer owns must be neither written nor
//! committed by it: the new owner reads them again from the last commit.

use std::sync::atomic::Ordering;

use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::TopicPartitionList;

use crate::logging::Context;
use crate::offsets::Pending;
use crate::worker::Worker;

impl ConsumerContext for Context {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.shared.counters.rebalances.inc();
        match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::info!(partitions = %describe(tpl), "partitions assigned")
            }
            Rebalance::Revoke(tpl) => {
                // Batches of these partitions still waiting are abandoned by
                // the consuming loop (never committed).
                tracing::info!(partitions = %describe(tpl), "partitions revoked");
                self.thread.lag.store(-1, Ordering::Relaxed);
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

/// `topic/partition,…` for logs.
fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements().iter().map(|e| format!("{}/{}", e.topic(), e.partition())).collect::<Vec<_>>().join(",")
}

impl Worker<'_> {
    /// The partitions currently assigned to this thread.
    pub(crate) fn assigned(&self) -> Vec<i32> {
        self.consumer.assignment().map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect()).unwrap_or_default()
    }

    /// Drops messages of partitions this thread no longer owns.
    pub(crate) fn drop_revoked(&self, messages: &mut Vec<Pending>) {
        let assigned = self.assigned();
        let before = messages.len();
        messages.retain(|m| assigned.contains(&m.partition));
        self.abandon(before - messages.len());
    }
}
