//! Shared by the emulator-backed tests: starts the emulator through
//! `scripts/servers/pubsub.sh` (a no-op when it runs already; a test fails,
//! never skips, when it cannot), and talks to it over its REST API to create
//! topics and subscriptions, publish, and look at what is left.
#![allow(dead_code)]

pub mod harness;

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

/// Where `scripts/servers/pubsub.sh` starts the emulator.
pub const EMULATOR: &str = "127.0.0.1:8085";
pub const PROJECT: &str = "heroic-test";

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// `target/<profile>`: the directory above this test executable's `deps/`.
#[allow(unused_imports)]
pub use heroic_plugin_api::testkit::node::plugin_dir as profile_dir;

/// Panics when the emulator cannot be started (with the script's output).
pub fn ensure_emulator() {
    let script = workspace_root().join("scripts/servers/pubsub.sh");
    heroic_plugin_api::testkit::servers::ensure_server("Pub/Sub emulator", EMULATOR, &script);
}

/// A name unique to this run (Pub/Sub names start with a letter).
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{:x}", std::process::id(), nanos % (1 << 40))
}

fn rest(method: &str, path: &str, body: Value) -> Value {
    let url = format!("http://{EMULATOR}/v1/projects/{PROJECT}/{path}");
    let response = reqwest::blocking::Client::new()
        .request(method.parse().unwrap(), &url)
        .json(&body)
        .timeout(Duration::from_secs(30))
        .send()
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status();
    let text = response.text().unwrap_or_default();
    assert!(status.is_success(), "{method} {url}: {status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Creates a topic and a subscription on it (ack deadline `ack_deadline` s).
pub fn create(topic: &str, subscription: &str, ack_deadline: u32) {
    ensure_emulator();
    rest("PUT", &format!("topics/{topic}"), json!({}));
    rest(
        "PUT",
        &format!("subscriptions/{subscription}"),
        json!({"topic": format!("projects/{PROJECT}/topics/{topic}"), "ackDeadlineSeconds": ack_deadline}),
    );
}

/// Publishes every payload (in requests of 500 messages).
pub fn publish(topic: &str, payloads: &[Vec<u8>]) {
    let engine = base64::engine::general_purpose::STANDARD;
    for chunk in payloads.chunks(500) {
        let messages: Vec<Value> = chunk.iter().map(|p| json!({"data": engine.encode(p)})).collect();
        let reply = rest("POST", &format!("topics/{topic}:publish"), json!({"messages": messages}));
        assert_eq!(reply["messageIds"].as_array().map(Vec::len), Some(chunk.len()), "{reply}");
    }
}

/// Messages the subscription would deliver now (pulled and left to expire:
/// only for checking that a subscription is drained).
pub fn available(subscription: &str) -> usize {
    let reply = rest(
        "POST",
        &format!("subscriptions/{subscription}:pull"),
        json!({"returnImmediately": true, "maxMessages": 100}),
    );
    reply["receivedMessages"].as_array().map_or(0, Vec::len)
}

/// Pulls (and acknowledges) what `subscription` delivers now: each
/// message's data (decoded) and attributes.
pub fn drain(subscription: &str) -> Vec<(Vec<u8>, Value)> {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    loop {
        let reply = rest(
            "POST",
            &format!("subscriptions/{subscription}:pull"),
            json!({"returnImmediately": true, "maxMessages": 100}),
        );
        let received = reply["receivedMessages"].as_array().cloned().unwrap_or_default();
        if received.is_empty() {
            return out;
        }
        let ack_ids: Vec<Value> = received.iter().map(|m| m["ackId"].clone()).collect();
        for m in received {
            let data = engine.decode(m["message"]["data"].as_str().unwrap_or_default()).expect("base64 data");
            out.push((data, m["message"]["attributes"].clone()));
        }
        rest("POST", &format!("subscriptions/{subscription}:acknowledge"), json!({"ackIds": ack_ids}));
    }
}

/// A Spotify100 v1 message of series `host`, `i`-th point.
pub fn spotify100(key: &str, host: usize, i: usize) -> Vec<u8> {
    json!({"version": "1.1.0", "key": key, "host": format!("h{host}"), "time": T0 + i as i64 * 1000,
           "attributes": {"role": "test"}, "value": value(host, i)})
    .to_string()
    .into_bytes()
}

/// First timestamp of the test messages (ms).
pub const T0: i64 = 1_600_000_000_000;

pub fn value(host: usize, i: usize) -> f64 {
    host as f64 * 1000.0 + i as f64
}

/// The plugin config for the emulator and `subscription`.
pub fn config(subscription: &str, extra: Value) -> Value {
    let mut c = json!({
        "project": PROJECT,
        "subscription": subscription,
        "emulatorEndpoint": EMULATOR,
        "pullTimeoutMs": 2000,
        "retryBackoffMinMs": 50,
        "retryBackoffMaxMs": 500,
    });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        c[k] = v;
    }
    c
}
