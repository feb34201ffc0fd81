//! librdkafka's client callbacks: its log lines and errors go to the host's
//! log through `tracing`, and its periodic statistics give each thread's
//! lag. Warnings that repeat (a broker down, a failing backend) are logged
//! at most once per 5 s per kind, so a long outage does not flood the log.

use std::sync::atomic::Ordering;
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
        let mut lag = 0i64;
        let mut known = false;
        for topic in statistics.topics.values() {
            for (id, p) in &topic.partitions {
                if *id >= 0 && p.consumer_lag >= 0 {
                    lag += p.consumer_lag;
                    known = true;
                }
            }
        }
        self.thread.lag.store(if known { lag } else { -1 }, Ordering::Relaxed);
    }
}
