//! The plugin's config table and the librdkafka client config made from
//! it. Its `Debug` output hides the values of secret librdkafka properties,
//! and [`Config::scrub`] removes them from librdkafka's error messages.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use heroic_plugin_api::sdk::secret::{is_secret_key, REDACTED};
use heroic_plugin_api::sdk::support::RetryPolicy;
use heroic_plugin_api::{PluginError, PluginResult};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use serde::Deserialize;

/// The plugin's config table. `Debug` is written by hand: it hides the
/// values of secret librdkafka properties.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Topics to consume.
    pub topics: Vec<String>,
    /// The consumer group (librdkafka's `group.id`; may be given in `config` instead).
    pub group_id: Option<String>,
    /// Consuming threads per topic (Heroic's `threadsPerTopic`).
    #[serde(default = "default_threads")]
    pub threads_per_topic: usize,
    /// Any librdkafka property, passed through as is
    /// (`bootstrap.servers`, `session.timeout.ms`, `security.protocol` …).
    /// Values of secret ones (`sasl.password`, `ssl.key.password`,
    /// `sasl.oauthbearer.client.secret`, `ssl.key.pem` …; see
    /// [`is_secret_key`]) print as `<redacted>`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Messages handed to the host at most per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How long a thread waits to fill a batch once it has a message.
    #[serde(default = "default_linger")]
    pub batch_linger_ms: u64,
    /// First wait before retrying a batch the host refused.
    #[serde(default = "default_backoff_min")]
    pub retry_backoff_min_ms: u64,
    /// Longest wait between retries (the wait doubles up to this).
    #[serde(default = "default_backoff_max")]
    pub retry_backoff_max_ms: u64,
    /// Messages polled and not yet committed, at most, per partition; a
    /// partition that has this many is paused until half of them are
    /// durable. Default: 4 × `batch_size`.
    pub max_in_flight_per_partition: Option<usize>,
    /// Topic that messages the host refuses for good (poison messages) are
    /// produced to, with headers naming where they came from and why, before
    /// their offsets are committed. Produced with the same librdkafka
    /// properties as the consumer (`config`), less the consumer-only ones.
    pub dead_letter_topic: Option<String>,
    /// File poison messages are appended to (JSON Lines, payload in base64,
    /// fsynced before the commit) when no `dead_letter_topic` is set.
    /// Default: `dead-letter/kafka-<group>.jsonl`, relative to the node's
    /// working directory.
    pub dead_letter_file: Option<PathBuf>,
}

/// Where poison messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterTarget {
    Topic(String),
    File(PathBuf),
}

fn default_threads() -> usize {
    2
}
fn default_batch_size() -> usize {
    2000
}
fn default_linger() -> u64 {
    50
}
fn default_backoff_min() -> u64 {
    5
}
fn default_backoff_max() -> u64 {
    2000
}

/// librdkafka properties set unless the config gives them.
const DEFAULTS: [(&str, &str); 4] = [
    ("auto.offset.reset", "earliest"),
    // Group joins are slow with some brokers at librdkafka's 45 s default.
    ("session.timeout.ms", "6000"),
    ("statistics.interval.ms", "5000"),
    ("bootstrap.servers", "127.0.0.1:9092"),
];

impl Config {
    pub(crate) fn client_config(&self) -> PluginResult<ClientConfig> {
        if self.topics.is_empty() {
            return Err(PluginError::config("topics: at least one topic is needed"));
        }
        if self.threads_per_topic == 0 || self.batch_size == 0 {
            return Err(PluginError::config("threads_per_topic and batch_size must be at least 1"));
        }
        let mut c = ClientConfig::new();
        for (k, v) in DEFAULTS {
            c.set(k, v);
        }
        for (k, v) in &self.config {
            if k == "enable.auto.commit" && v != "false" {
                return Err(PluginError::config(
                    "config.\"enable.auto.commit\": offsets are committed by the plugin after durable writes; it cannot be enabled",
                ));
            }
            c.set(k, v);
        }
        match (&self.group_id, self.config.get("group.id")) {
            (Some(g), None) => {
                c.set("group.id", g);
            }
            (None, Some(_)) => {}
            (Some(_), Some(_)) => {
                return Err(PluginError::config(
                    "give the group either as group_id or as config.\"group.id\", not both",
                ))
            }
            (None, None) => return Err(PluginError::config("group_id: a consumer group is needed")),
        }
        c.set("enable.auto.commit", "false");
        c.set("enable.auto.offset.store", "false");
        c.set_log_level(RDKafkaLogLevel::Warning);
        if self.max_in_flight_per_partition == Some(0) {
            return Err(PluginError::config("max_in_flight_per_partition must be at least 1"));
        }
        match (&self.dead_letter_topic, &self.dead_letter_file) {
            (Some(_), Some(_)) => {
                return Err(PluginError::config("give either dead_letter_topic or dead_letter_file, not both"))
            }
            (Some(t), None) if t.is_empty() => return Err(PluginError::config("dead_letter_topic is empty")),
            _ => {}
        }
        Ok(c)
    }

    /// The librdkafka config of the dead-letter producer: the consumer's
    /// properties (brokers, security) without the consumer-only ones, and
    /// a bounded delivery time (the consuming thread waits for it).
    pub(crate) fn producer_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", "127.0.0.1:9092");
        // A lost dead letter is a lost message: every replica must have it.
        c.set("acks", "all");
        c.set("message.timeout.ms", "10000");
        for (k, v) in self.config.iter().filter(|(k, _)| !is_consumer_property(k)) {
            c.set(k, v);
        }
        c.set_log_level(RDKafkaLogLevel::Warning);
        c
    }

    /// Messages in flight per partition at which it is paused.
    pub fn in_flight_limit(&self) -> usize {
        self.max_in_flight_per_partition.unwrap_or(self.batch_size.saturating_mul(4)).max(1)
    }

    /// Where poison messages go: the topic, else the file (by default one
    /// per consumer group).
    pub fn dead_letter_target(&self) -> DeadLetterTarget {
        if let Some(topic) = &self.dead_letter_topic {
            return DeadLetterTarget::Topic(topic.clone());
        }
        let file = self.dead_letter_file.clone().unwrap_or_else(|| {
            let group = self.group_id.as_deref().or(self.config.get("group.id").map(String::as_str)).unwrap_or("");
            let safe: String =
                group.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
            PathBuf::from(format!("dead-letter/kafka-{safe}.jsonl"))
        });
        DeadLetterTarget::File(file)
    }
}

/// librdkafka properties that mean something to consumers only (a producer
/// warns about each); statistics are not wanted from the dead-letter
/// producer either.
fn is_consumer_property(key: &str) -> bool {
    const PREFIXES: [&str; 4] = ["group.", "fetch.", "offset.", "enable.auto."];
    const KEYS: [&str; 13] = [
        "partition.assignment.strategy",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "coordinator.query.interval.ms",
        "max.poll.interval.ms",
        "auto.commit.interval.ms",
        "queued.min.messages",
        "queued.max.messages.kbytes",
        "auto.offset.reset",
        "isolation.level",
        "enable.partition.eof",
        "check.crcs",
        "statistics.interval.ms",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p)) || KEYS.contains(&key) || key == "consume.callback.max.messages"
}

impl Config {
    /// How a refused batch is retried: after `retry_backoff_min_ms`,
    /// doubling up to `retry_backoff_max_ms`, until it is written. Exact
    /// doublings, as documented (and as Heroic waits).
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::new(
            Duration::from_millis(self.retry_backoff_min_ms),
            Duration::from_millis(self.retry_backoff_max_ms),
        )
        .without_jitter()
    }

    /// `text` with the value of every secret property replaced by
    /// `<redacted>`: librdkafka's messages about a property may quote it.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (key, value) in &self.config {
            if is_secret_key(key) && !value.is_empty() {
                text = text.replace(value.as_str(), REDACTED);
            }
        }
        text
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// The properties, secret values replaced.
        struct Properties<'a>(&'a BTreeMap<String, String>);
        impl fmt::Debug for Properties<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|(k, v)| (k, if is_secret_key(k) { REDACTED } else { v.as_str() })))
                    .finish()
            }
        }
        // Destructured so that a new field cannot be forgotten here.
        let Config {
            topics,
            group_id,
            threads_per_topic,
            config,
            batch_size,
            batch_linger_ms,
            retry_backoff_min_ms,
            retry_backoff_max_ms,
            max_in_flight_per_partition,
            dead_letter_topic,
            dead_letter_file,
        } = self;
        f.debug_struct("Config")
            .field("topics", topics)
            .field("group_id", group_id)
            .field("threads_per_topic", threads_per_topic)
            .field("config", &Properties(config))
            .field("batch_size", batch_size)
            .field("batch_linger_ms", batch_linger_ms)
            .field("retry_backoff_min_ms", retry_backoff_min_ms)
            .field("retry_backoff_max_ms", retry_backoff_max_ms)
            .field("max_in_flight_per_partition", max_in_flight_per_partition)
            .field("dead_letter_topic", dead_letter_topic)
            .field("dead_letter_file", dead_letter_file)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_json: serde_json::Value) -> PluginResult<Config> {
        heroic_plugin_api::sdk::export::parse_config(&toml_json.to_string())
    }

    #[test]
    fn config_defaults_and_checks() {
        let c = config(serde_json::json!({"topics": ["m"], "group_id": "g"})).unwrap();
        assert_eq!(c.threads_per_topic, 2);
        let cc = c.client_config().unwrap();
        assert_eq!(cc.get("enable.auto.commit"), Some("false"));
        assert_eq!(cc.get("group.id"), Some("g"));
        assert_eq!(cc.get("session.timeout.ms"), Some("6000"));

        let c =
            config(serde_json::json!({"topics": ["m"], "config": {"group.id": "x", "session.timeout.ms": "10000"}}))
                .unwrap();
        let cc = c.client_config().unwrap();
        assert_eq!((cc.get("group.id"), cc.get("session.timeout.ms")), (Some("x"), Some("10000")));

        assert!(config(serde_json::json!({"topics": ["m"]})).unwrap().client_config().is_err());
        let auto =
            config(serde_json::json!({"topics": ["m"], "group_id": "g", "config": {"enable.auto.commit": "true"}}))
                .unwrap();
        assert!(auto.client_config().unwrap_err().to_string().contains("enable.auto.commit"));
        assert!(config(serde_json::json!({"topics": ["m"], "group_id": "g", "typo": 1})).is_err());
    }

    #[test]
    fn dead_letters_and_the_in_flight_bound() {
        let c = config(serde_json::json!({"topics": ["m"], "group_id": "g/1", "batch_size": 100})).unwrap();
        assert_eq!(c.in_flight_limit(), 400);
        assert_eq!(c.dead_letter_target(), DeadLetterTarget::File("dead-letter/kafka-g_1.jsonl".into()));
        let c = config(serde_json::json!({"topics": ["m"], "group_id": "g", "max_in_flight_per_partition": 7,
            "dead_letter_topic": "poison", "config": {"bootstrap.servers": "b:9092", "sasl.password": "pw",
            "session.timeout.ms": "6000", "group.instance.id": "i", "fetch.max.bytes": "1000"}}))
        .unwrap();
        assert_eq!((c.in_flight_limit(), c.dead_letter_target()), (7, DeadLetterTarget::Topic("poison".into())));
        let p = c.producer_config();
        assert_eq!((p.get("bootstrap.servers"), p.get("sasl.password")), (Some("b:9092"), Some("pw")));
        assert_eq!(
            (p.get("session.timeout.ms"), p.get("group.instance.id"), p.get("fetch.max.bytes")),
            (None, None, None)
        );
        assert_eq!(p.get("group.id"), None);

        let both = config(serde_json::json!({"topics": ["m"], "group_id": "g", "dead_letter_topic": "t",
            "dead_letter_file": "/tmp/x"}))
        .unwrap();
        assert!(both.client_config().unwrap_err().to_string().contains("not both"));
        let zero = config(serde_json::json!({"topics": ["m"], "group_id": "g", "max_in_flight_per_partition": 0}));
        assert!(zero.unwrap().client_config().unwrap_err().to_string().contains("at least 1"));
    }

    #[test]
    fn debug_output_redacts_secret_properties() {
        let c = config(serde_json::json!({"topics": ["m"], "group_id": "g", "config": {
            "bootstrap.servers": "kafka-1:9093",
            "security.protocol": "SASL_SSL",
            "sasl.username": "heroic",
            "sasl.password": "hunter2-sasl",
            "ssl.key.password": "hunter2-key",
            "ssl.keystore.password": "hunter2-keystore",
            "sasl.oauthbearer.client.secret": "hunter2-oauth",
            "ssl.key.pem": "-----BEGIN PRIVATE KEY-----hunter2-pem",
        }}))
        .unwrap();
        for shown in [format!("{c:?}"), format!("{c:#?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("kafka-1:9093") && shown.contains("\"sasl.username\": \"heroic\""), "{shown}");
            assert!(shown.contains("\"sasl.password\": \"<redacted>\""), "{shown}");
        }
        // The values still reach librdkafka.
        assert_eq!(c.client_config().unwrap().get("sasl.password"), Some("hunter2-sasl"));
        let message = "property ssl.key.pem: hunter2-key and hunter2-sasl are bad, kafka-1:9093";
        assert_eq!(c.scrub(message), "property ssl.key.pem: <redacted> and <redacted> are bad, kafka-1:9093");
    }
}
