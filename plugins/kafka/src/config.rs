//! The plugin's config table and the librdkafka client config made from
//! it. Its `Debug` output hides the values of secret librdkafka properties,
//! and [`Config::scrub`] removes them from librdkafka's error messages.

use std::collections::BTreeMap;
use std::fmt;
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
        Ok(c)
    }
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
