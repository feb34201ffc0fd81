//! librdkafka's log lines, of any of our clients (the consuming threads and
//! the dead-letter producer), at the matching `tracing` level. Kept apart
//! from `logging` so the dead-letter producer can use it without depending
//! on the consumer's context.

use rdkafka::config::RDKafkaLogLevel;

/// A librdkafka log line of `client` at the matching `tracing` level.
pub(crate) fn forward_log(client: &str, level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!(facility = fac, "{client}: {message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(facility = fac, "{client}: {message}"),
        _ => tracing::debug!(facility = fac, "{client}: {message}"),
    }
}
