//! The dead-letter destination of a consumer, built from its config: a
//! topic, or the local dead-letter file. Its own file so that the pulling
//! loops (which hold it) and the poison handling (which uses it) both
//! depend on it, and it on neither.

use std::sync::Arc;

use heroic_plugin_api::sdk::support::DeadLetterFile;

use crate::config::{Config, DeadLetterTarget};

/// The dead-letter destination of one consumer.
pub enum DeadLetters {
    /// A topic's full name.
    Topic(String),
    File(Arc<DeadLetterFile>),
}

impl DeadLetters {
    pub fn new(config: &Config) -> Self {
        match config.dead_letter_target() {
            DeadLetterTarget::Topic(topic) => DeadLetters::Topic(topic),
            DeadLetterTarget::File(path) => DeadLetters::File(Arc::new(DeadLetterFile::new(path))),
        }
    }

    /// Where dead letters go, for logs.
    pub fn describe(&self) -> String {
        match self {
            DeadLetters::Topic(topic) => format!("topic {topic}"),
            DeadLetters::File(file) => format!("file {}", file.path().display()),
        }
    }
}
