//! Where a poison message goes before its offset is committed: produced to
//! `dead_letter_topic` (the original key and payload, with headers naming
//! its source and the host's error), or appended to the local dead-letter
//! file. Either way the call returns only once the dead letter is durable
//! (the broker acknowledged it with `acks = all`; the file is fsynced), and
//! a failure means "do not commit, retry later".

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use heroic_plugin_api::sdk::support::{DeadLetter, DeadLetterFile};
use heroic_plugin_api::{PluginError, PluginResult};
use parking_lot::Mutex;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientContext;

use crate::config::{Config, DeadLetterTarget};
use crate::offsets::Pending;

/// Headers of a dead letter produced to Kafka.
pub const HEADER_TOPIC: &str = "heroic.source.topic";
pub const HEADER_PARTITION: &str = "heroic.source.partition";
pub const HEADER_OFFSET: &str = "heroic.source.offset";
pub const HEADER_KIND: &str = "heroic.error.kind";
pub const HEADER_ERROR: &str = "heroic.error";

/// The dead-letter destination of one consumer.
pub(crate) enum DeadLetters {
    Topic { topic: String, producer: FutureProducer<ProducerLog> },
    File(DeadLetterFile),
}

impl DeadLetters {
    pub(crate) fn new(config: &Config) -> PluginResult<Self> {
        Ok(match config.dead_letter_target() {
            DeadLetterTarget::Topic(topic) => {
                let producer = config.producer_config().create_with_context(ProducerLog::default()).map_err(|e| {
                    PluginError::config(format_args!(
                        "cannot create the dead-letter producer: {}",
                        config.scrub(&e.to_string())
                    ))
                })?;
                DeadLetters::Topic { topic, producer }
            }
            DeadLetterTarget::File(path) => DeadLetters::File(DeadLetterFile::new(path)),
        })
    }

    /// Where dead letters go, for logs.
    pub(crate) fn describe(&self) -> String {
        match self {
            DeadLetters::Topic { topic, .. } => format!("topic {topic}"),
            DeadLetters::File(file) => format!("file {}", file.path().display()),
        }
    }

    /// Stores `message` of `topic` as a dead letter with `error`; `Ok` once
    /// durable. Blocks the consuming thread (at most librdkafka's
    /// `message.timeout.ms`, 10 s unless configured).
    pub(crate) fn store(&self, topic: &str, message: &Pending, error: &PluginError) -> Result<(), String> {
        match self {
            DeadLetters::Topic { topic: to, producer } => {
                let (partition, offset) = (message.partition.to_string(), message.offset.to_string());
                let headers = OwnedHeaders::new()
                    .insert(Header { key: HEADER_TOPIC, value: Some(topic) })
                    .insert(Header { key: HEADER_PARTITION, value: Some(&partition) })
                    .insert(Header { key: HEADER_OFFSET, value: Some(&offset) })
                    .insert(Header { key: HEADER_KIND, value: Some(error.kind.as_str()) })
                    .insert(Header { key: HEADER_ERROR, value: Some(error.message.as_str()) });
                let mut record = FutureRecord::to(to).payload(&message.payload).headers(headers);
                if let Some(key) = &message.key {
                    record = record.key(key);
                }
                let delivery = producer.send_result(record).map_err(|(e, _)| e.to_string())?;
                match futures::executor::block_on(delivery) {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(e.to_string()),
                    Err(_) => Err("the dead-letter producer went away".into()),
                }
            }
            DeadLetters::File(file) => {
                let source = BTreeMap::from([
                    ("topic".to_string(), topic.to_string()),
                    ("partition".to_string(), message.partition.to_string()),
                    ("offset".to_string(), message.offset.to_string()),
                ]);
                file.append(&DeadLetter::now(source, error, message.payload.clone()))
                    .map_err(|e| format!("{}: {e}", file.path().display()))
            }
        }
    }
}

/// The dead-letter producer's librdkafka logs and errors, to the host's log
/// (errors at most once per 5 s: a broker down repeats them).
#[derive(Default)]
pub(crate) struct ProducerLog {
    last_error: Mutex<Option<Instant>>,
}

impl ClientContext for ProducerLog {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        crate::log_forward::forward_log("librdkafka dead-letter producer", level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let mut last = self.last_error.lock();
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
            *last = Some(Instant::now());
            tracing::warn!(error = %error, "kafka dead-letter producer error: {reason}");
        }
    }
}
