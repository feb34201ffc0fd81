//! Helpers for the Kafka consumer tests and bench: the test broker
//! (scripts/servers/kafka.sh, tansu on 127.0.0.1:9092), topics, a producer,
//! node configs and queries.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use serde_json::{json, Value};

pub use crate::common::sample_in;
use crate::common::Node;

pub const BROKER: &str = "127.0.0.1:9092";
/// First timestamp used by the tests (ms).
pub const T0: i64 = 1_600_000_000_000;

/// Fails the test, clearly, when the broker is not running.
pub fn require_broker() {
    heroic_plugin_api::testkit::servers::require_server("Kafka", BROKER, "scripts/servers/kafka.sh");
    let lib = crate::common::plugin_dir().join("libheroic_plugin_kafka.so");
    assert!(lib.exists(), "{} is missing: run `cargo build -p heroic-plugin-kafka` first", lib.display());
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

pub fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", BROKER).create().expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = futures::executor::block_on(admin.create_topics([&topic], &options)).expect("create topic");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("cannot create topic {t}: {e}"));
    }
}

#[derive(Default)]
pub struct Deliveries {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
}

pub struct Counting(pub Arc<Deliveries>);

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.0.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.0.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

pub struct TestProducer {
    producer: ThreadedProducer<Counting>,
    pub deliveries: Arc<Deliveries>,
    sent: u64,
}

impl TestProducer {
    pub fn new() -> Self {
        let deliveries = Arc::new(Deliveries::default());
        let producer = ClientConfig::new()
            .set("bootstrap.servers", BROKER)
            .set("linger.ms", "5")
            .set("queue.buffering.max.messages", "1000000")
            .create_with_context(Counting(deliveries.clone()))
            .expect("producer");
        TestProducer { producer, deliveries, sent: 0 }
    }

    /// Sends one message (round-robin over partitions via its key).
    pub fn send(&mut self, topic: &str, key: &str, payload: &[u8]) {
        let mut record = BaseRecord::to(topic).key(key).payload(payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        self.sent += 1;
    }

    /// Waits until every message sent is acknowledged by the broker.
    pub fn flush(&self) {
        self.producer.flush(Duration::from_secs(60)).expect("flush");
        assert_eq!(self.deliveries.failed.load(Ordering::Relaxed), 0, "some messages were not delivered");
        assert_eq!(self.deliveries.ok.load(Ordering::Relaxed), self.sent);
    }
}

/// A Spotify100 v1 message; the value is a function of (series, time).
pub fn message(key: &str, series: usize, i: usize) -> Vec<u8> {
    json!({
        "version": "1.1.0",
        "key": key,
        "host": format!("h{series}"),
        "time": T0 + i as i64 * 1000,
        "attributes": {"role": "test"},
        "value": value(series, i),
    })
    .to_string()
    .into_bytes()
}

pub fn value(series: usize, i: usize) -> f64 {
    series as f64 * 1000.0 + i as f64
}

/// A node config: one consumer (`kafka`) on `topics`, metrics to
/// `metrics_block`, metadata and suggest to `local`.
pub fn node_config(consumers: &str, metrics_block: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{{port}}"
[plugins]
dirs = ["{{plugins}}"]
{metrics_block}
[[metadata]]
plugin = "local"
[metadata.config]
data_dir = "{{dir}}/data/metadata"
[[suggest]]
plugin = "local"
[suggest.config]
data_dir = "{{dir}}/data/suggest"
{consumers}
"#
    )
}

pub const LOCAL_METRICS: &str = r#"
[[metrics]]
plugin = "local"
[metrics.config]
data_dir = "{dir}/data/metrics"
"#;

/// A `kafka` consumer with `threads` threads on `topic`; `extra` adds plugin settings.
pub fn kafka_consumer(id: &str, schema: &str, topic: &str, group: &str, threads: usize, extra: &str) -> String {
    format!(
        r#"
[[consumers]]
id = "{id}"
plugin = "kafka"
schema = "{schema}"
[consumers.config]
topics = ["{topic}"]
group_id = "{group}"
threads_per_topic = {threads}
{extra}
[consumers.config.config]
"bootstrap.servers" = "{BROKER}"
"session.timeout.ms" = "6000"
"auto.offset.reset" = "earliest"
"statistics.interval.ms" = "1000"
"#
    )
}

/// Every point of series with `key`, by host tag: host → [(t, v)].
pub fn points_by_host(node: &Node, key: &str, count: usize) -> std::collections::BTreeMap<String, Vec<(i64, f64)>> {
    node.points_by_host(key, T0 - 1, T0 + count as i64 * 1000)
}

pub fn total_points(by_host: &std::collections::BTreeMap<String, Vec<(i64, f64)>>) -> usize {
    by_host.values().map(Vec::len).sum()
}

/// Polls the query until `expected` points are there (or fails after `timeout`).
pub fn wait_for_points(node: &Node, key: &str, per_series: usize, expected: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut last = 0;
    while Instant::now() < deadline {
        last = total_points(&points_by_host(node, key, per_series));
        if last >= expected {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!(
        "only {last} of {expected} points arrived within {timeout:?}; /status: {}\nlog:\n{}",
        status(node),
        node.log()
    );
}

pub fn status(node: &Node) -> Value {
    node.get("/status").1
}

/// A statistic of consumer `id` from `/status`: a host counter
/// (`messagesConsumed`, `writeErrors` …) or a plugin one (`plugin.NAME`,
/// from `statistics`).
pub fn consumer_stat(status: &Value, id: &str, name: &str) -> f64 {
    let details = status["consumers"]["details"].as_array().expect("consumers.details");
    let c = details.iter().find(|d| d["id"] == id).unwrap_or_else(|| panic!("no consumer {id} in {status}"));
    let v = match name.strip_prefix("plugin.") {
        Some(p) => &c["statistics"][p],
        None => &c[name],
    };
    v.as_f64().unwrap_or_else(|| panic!("no {name} for {id} in {status}"))
}

pub fn scraped(node: &Node, sample: &str) -> Option<f64> {
    sample_in(&node.scrape(), sample)
}

/// Waits until `check` holds for the node's scrape.
pub fn wait_until_scraped(node: &Node, timeout: Duration, mut check: impl FnMut(&str) -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        let text = node.scrape();
        if check(&text) {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting on GET /metrics:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn wait_until(what: &str, node: &Node, timeout: Duration, mut check: impl FnMut(&Value) -> bool) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let s = status(node);
        if check(&s) {
            return s;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}; /status: {s}\nlog:\n{}", node.log());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
