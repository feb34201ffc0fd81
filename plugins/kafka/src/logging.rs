//! librdkafka's client callbacks: its log lines and errors go to the host's
//! log through `tracing`, and its periodic statistics give each thread's
//! lag. Warnings that repeat (a broker down, a failing backend) are logged
//! at most once per 5 s per kind, so a long outage does not flood the log.

use std::sync::Arc;

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;

use crate::log_forward::forward_log;
use crate::shared::Shared;
use crate::stats::ThreadState;

/// librdkafka callbacks of one consuming thread: logs, errors, statistics
/// (here) and rebalances (in `rebalance`).
pub(crate) struct Context {
    pub(crate) shared: Arc<Shared>,
    pub(crate) thread: Arc<ThreadState>,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        forward_log("librdkafka", level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.shared.counters.kafka_errors.inc();
        if self.shared.log_limited("kafka error") {
            tracing::warn!(error = %error, "kafka client error: {reason}");
        }
    }

    fn stats(&self, statistics: Statistics) {
        // Partition -1 is librdkafka's internal "unassigned" one, and a lag
        // of -1 means not known yet.
        let mut lags = Vec::new();
        for (name, topic) in &statistics.topics {
            for (id, p) in &topic.partitions {
                if *id >= 0 && p.consumer_lag >= 0 {
                    lags.push((name.clone(), *id, p.consumer_lag));
                }
            }
        }
        lags.sort();
        *self.thread.lags.lock() = lags;
    }
}
