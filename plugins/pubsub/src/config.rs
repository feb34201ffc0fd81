//! The plugin's config table. Names follow Heroic's Pub/Sub consumer module
//! (camelCase: `project`, `topic`, `subscription`,
//! `maxOutstandingElementCount` …) so an existing Heroic config carries over.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::PubsubError;

/// `[consumers.config]` of a `plugin = "pubsub"` consumer.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Google Cloud project id of the subscription (and topic); required.
    pub project: String,
    /// Topic the subscription reads; needed only when `configure` creates
    /// the subscription.
    pub topic: Option<String>,
    /// Subscription to pull from (id, or `projects/P/subscriptions/S`); required.
    pub subscription: String,
    /// Create the topic and the subscription when missing (Heroic creates
    /// both at start).
    pub configure: bool,
    /// Concurrent pulling loops (Heroic's `threadsPerSubscription`). Each
    /// holds at most one batch at a time.
    #[serde(alias = "threadsPerSubscription")]
    pub threads: usize,
    /// Messages asked for per Pull, i.e. the largest batch handed to the host
    /// (Pub/Sub returns at most 1000; the emulator at most 100).
    pub max_messages_per_pull: usize,
    /// Messages held (pulled, not yet acknowledged) at most, over all loops.
    pub max_outstanding_element_count: usize,
    /// Payload bytes held at most, over all loops.
    pub max_outstanding_request_bytes: usize,
    /// Largest gRPC response accepted, in bytes (Heroic's `maxInboundMessageSize`).
    pub max_inbound_message_size: usize,
    /// Ack deadline, in seconds: set on a subscription `configure` creates,
    /// and the extension asked for (modifyAckDeadline) while a batch is held
    /// longer than about half of it. 10..=600.
    pub ack_deadline_seconds: u32,
    /// Longest wait of one Pull on an empty subscription, in milliseconds. A
    /// waiting pull is cut at this deadline and simply repeated (the emulator
    /// otherwise holds it ~90 s, which would also hold up a stop).
    pub pull_timeout_ms: u64,
    /// Deadline of the other calls (acknowledge, modifyAckDeadline, admin),
    /// in milliseconds.
    pub rpc_timeout_ms: u64,
    /// First pause of the loops after the host refused a batch (whose
    /// messages are nacked, so Pub/Sub redelivers them).
    pub retry_backoff_min_ms: u64,
    /// Longest pause (it doubles per refused batch up to this).
    pub retry_backoff_max_ms: u64,
    /// How to authenticate against real Pub/Sub. Ignored (no credentials)
    /// when an emulator is used.
    pub credentials: Credentials,
    /// `host:port` of a Pub/Sub emulator, spoken to in plaintext without
    /// credentials. When unset, `$PUBSUB_EMULATOR_HOST` is used if set,
    /// else `endpoint` over TLS. Only loopback hosts are accepted unless
    /// `emulatorAllowRemote` is set.
    pub emulator_endpoint: Option<String>,
    /// Allow an emulator (from `emulatorEndpoint` or the variable) on a host
    /// other than loopback: plain text and no authentication across the
    /// network, logged as a warning at each connect. Off by default, so that
    /// a variable left set cannot silently turn TLS off in production.
    pub emulator_allow_remote: bool,
    /// Pub/Sub endpoint (TLS) when no emulator is used (Heroic's `endpoint`).
    pub endpoint: String,
    /// Topic (id, or `projects/P/topics/T`) that messages the host refuses
    /// for good (poison messages) are published to, with their attributes
    /// and the reason, before they are acknowledged.
    pub dead_letter_topic: Option<String>,
    /// File poison messages are appended to (JSON Lines, payload in base64,
    /// fsynced before the ack) when no `deadLetterTopic` is set. Default:
    /// `dead-letter/pubsub-<subscription>.jsonl`, relative to the node's
    /// working directory.
    pub dead_letter_file: Option<PathBuf>,
}

/// Where poison messages go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeadLetterTarget {
    /// A topic's full name.
    Topic(String),
    File(PathBuf),
}

/// How to get OAuth2 tokens for real Pub/Sub (same shape as the bigtable
/// plugin's `credentials`).
pub use heroic_gcp::Credentials;

impl Default for Config {
    /// Heroic's defaults where Heroic has the setting. `project` and
    /// `subscription` have none: `validate` refuses them empty.
    fn default() -> Self {
        Config {
            project: String::new(),
            topic: None,
            subscription: String::new(),
            configure: false,
            threads: 8,
            max_messages_per_pull: 1000,
            max_outstanding_element_count: 20_000,
            max_outstanding_request_bytes: 1_000_000_000,
            max_inbound_message_size: 20 << 20,
            ack_deadline_seconds: 60,
            pull_timeout_ms: 10_000,
            rpc_timeout_ms: 10_000,
            retry_backoff_min_ms: 100,
            retry_backoff_max_ms: 10_000,
            credentials: Credentials::Default,
            emulator_endpoint: None,
            emulator_allow_remote: false,
            endpoint: "https://pubsub.googleapis.com".into(),
            dead_letter_topic: None,
            dead_letter_file: None,
        }
    }
}

/// Where and how to connect, once the emulator settings are resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// Plaintext, no credentials.
    Emulator(heroic_gcp::Emulator),
    /// TLS with tokens from `credentials`.
    Cloud { endpoint: String, credentials: Credentials },
}

impl Config {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), PubsubError> {
        let bad = |m: String| Err(PubsubError::Config(m));
        if self.project.is_empty() || self.subscription.is_empty() {
            return bad("project and subscription are required".into());
        }
        if self.configure && self.topic.as_deref().unwrap_or("").is_empty() {
            return bad("configure = true needs the topic the subscription reads".into());
        }
        if self.threads == 0 || self.max_messages_per_pull == 0 || self.max_outstanding_element_count == 0 {
            return bad("threads, maxMessagesPerPull and maxOutstandingElementCount must be at least 1".into());
        }
        if self.max_outstanding_request_bytes == 0 {
            return bad("maxOutstandingRequestBytes must be at least 1".into());
        }
        if !(10..=600).contains(&self.ack_deadline_seconds) {
            return bad(format!("ackDeadlineSeconds must be 10..=600, got {}", self.ack_deadline_seconds));
        }
        if self.pull_timeout_ms == 0 || self.rpc_timeout_ms == 0 {
            return bad("pullTimeoutMs and rpcTimeoutMs must be at least 1".into());
        }
        if self.retry_backoff_min_ms > self.retry_backoff_max_ms {
            return bad("retryBackoffMinMs must not exceed retryBackoffMaxMs".into());
        }
        match (&self.dead_letter_topic, &self.dead_letter_file) {
            (Some(_), Some(_)) => return bad("give either deadLetterTopic or deadLetterFile, not both".into()),
            (Some(t), None) if t.is_empty() => return bad("deadLetterTopic is empty".into()),
            _ => {}
        }
        self.target()?;
        Ok(())
    }

    /// The config key wins over `$PUBSUB_EMULATOR_HOST`; an emulator that
    /// is not on loopback is refused unless `emulatorAllowRemote` is set.
    pub fn target(&self) -> Result<Target, PubsubError> {
        let emulator = heroic_gcp::emulator(
            "emulatorEndpoint",
            self.emulator_endpoint.as_deref(),
            "PUBSUB_EMULATOR_HOST",
            self.emulator_allow_remote,
        )?;
        Ok(match emulator {
            Some(emulator) => Target::Emulator(emulator),
            None => Target::Cloud { endpoint: self.endpoint.clone(), credentials: self.credentials.clone() },
        })
    }

    /// `projects/P/subscriptions/S` (a full name is kept as is).
    pub fn subscription_name(&self) -> String {
        full_name(&self.project, "subscriptions", &self.subscription)
    }

    /// `projects/P/topics/T`, when a topic is configured.
    pub fn topic_name(&self) -> Option<String> {
        self.topic.as_deref().map(|t| full_name(&self.project, "topics", t))
    }

    /// Where poison messages go: the topic, else the file (by default one
    /// per subscription).
    pub fn dead_letter_target(&self) -> DeadLetterTarget {
        if let Some(topic) = &self.dead_letter_topic {
            return DeadLetterTarget::Topic(full_name(&self.project, "topics", topic));
        }
        DeadLetterTarget::File(self.dead_letter_file.clone().unwrap_or_else(|| {
            let name = self.subscription.rsplit('/').next().unwrap_or_default();
            let safe: String =
                name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
            PathBuf::from(format!("dead-letter/pubsub-{safe}.jsonl"))
        }))
    }

    /// Messages asked for per Pull: never more than may be outstanding.
    pub fn pull_size(&self) -> usize {
        self.max_messages_per_pull.min(self.max_outstanding_element_count).min(1000)
    }

    pub fn pull_timeout(&self) -> Duration {
        Duration::from_millis(self.pull_timeout_ms)
    }

    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.rpc_timeout_ms)
    }

    pub fn ack_deadline(&self) -> Duration {
        Duration::from_secs(u64::from(self.ack_deadline_seconds))
    }
}

fn full_name(project: &str, kind: &str, id: &str) -> String {
    if id.starts_with("projects/") {
        id.to_string()
    } else {
        format!("projects/{project}/{kind}/{id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> heroic_plugin_api::PluginResult<Config> {
        heroic_plugin_api::sdk::export::parse_config(&v.to_string())
    }

    #[test]
    fn defaults_names_and_checks() {
        let c = parse(serde_json::json!({"project": "p1x", "subscription": "sub"})).unwrap();
        c.validate().unwrap();
        assert_eq!((c.threads, c.max_outstanding_element_count, c.ack_deadline_seconds), (8, 20_000, 60));
        assert_eq!(c.subscription_name(), "projects/p1x/subscriptions/sub");
        assert_eq!(c.topic_name(), None);
        assert_eq!(c.credentials, Credentials::Default);

        let c = parse(serde_json::json!({"project": "p", "subscription": "projects/o/subscriptions/s",
            "threadsPerSubscription": 3, "emulatorEndpoint": "127.0.0.1:8085", "credentials": {"type": "none"}}))
        .unwrap();
        assert_eq!((c.threads, c.subscription_name()), (3, "projects/o/subscriptions/s".to_string()));
        let Ok(Target::Emulator(e)) = c.target() else { panic!("{:?}", c.target()) };
        assert_eq!((e.url.as_str(), e.remote), ("http://127.0.0.1:8085", false));

        let err =
            |v: serde_json::Value| parse(v).and_then(|c| c.validate().map_err(Into::into)).unwrap_err().to_string();
        assert!(err(serde_json::json!({"project": "p", "subscription": "s", "typo": 1})).contains("typo"));
        assert!(err(serde_json::json!({"project": "p"})).contains("required"));
        assert!(err(serde_json::json!({"project": "p", "subscription": "s", "configure": true})).contains("topic"));
        assert!(
            err(serde_json::json!({"project": "p", "subscription": "s", "ackDeadlineSeconds": 5})).contains("10..=600")
        );
        assert!(err(serde_json::json!({"project": "p", "subscription": "s", "threads": 0})).contains("at least 1"));
        let remote =
            err(serde_json::json!({"project": "p", "subscription": "s", "emulatorEndpoint": "pubsub-emu:8085"}));
        assert!(
            remote.contains("emulatorEndpoint = \"pubsub-emu:8085\"") && remote.contains("only allowed to loopback"),
            "{remote}"
        );
        let c = parse(serde_json::json!({"project": "p", "subscription": "s",
            "emulatorEndpoint": "pubsub-emu:8085", "emulatorAllowRemote": true}))
        .unwrap();
        c.validate().unwrap();
        assert!(matches!(c.target(), Ok(Target::Emulator(e)) if e.remote));
    }

    #[test]
    fn dead_letter_destination() {
        let c = parse(serde_json::json!({"project": "p", "subscription": "projects/o/subscriptions/s1"})).unwrap();
        assert_eq!(c.dead_letter_target(), DeadLetterTarget::File("dead-letter/pubsub-s1.jsonl".into()));
        let c = parse(serde_json::json!({"project": "p", "subscription": "s", "deadLetterTopic": "poison"})).unwrap();
        c.validate().unwrap();
        assert_eq!(c.dead_letter_target(), DeadLetterTarget::Topic("projects/p/topics/poison".into()));
        let c =
            parse(serde_json::json!({"project": "p", "subscription": "s", "deadLetterFile": "/var/dl.jsonl"})).unwrap();
        assert_eq!(c.dead_letter_target(), DeadLetterTarget::File("/var/dl.jsonl".into()));
        let both = parse(serde_json::json!({"project": "p", "subscription": "s", "deadLetterFile": "/x",
            "deadLetterTopic": "t"}))
        .unwrap();
        assert!(both.validate().unwrap_err().to_string().contains("not both"));
    }
}
