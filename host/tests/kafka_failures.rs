//! The Kafka consumer when writes fail: poison messages (a backend refusing
//! a series for good, or panicking on it) are dead-lettered and committed
//! past without holding up the rest, and a rebalance during a backend
//! outage neither loses a message nor commits one before it is stored.
//! Same setup as `kafka_consumer.rs`: the real broker, the real `heroic`
//! binary, the `faulty` fixture plugin as the metric backend.

mod common;
mod kafka_common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use common::Node;
use kafka_common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// A Spotify100 message of series `host` (a host tag), point `i`.
fn message_of(key: &str, host: &str, i: usize) -> Vec<u8> {
    serde_json::json!({"version": "1.1.0", "key": key, "host": host, "time": T0 + i as i64 * 1000, "value": i as f64})
        .to_string()
        .into_bytes()
}

/// Every message of `topic` (one partition), read from its start, waiting
/// up to `timeout` for `expected` of them.
fn read_topic(topic: &str, expected: usize, timeout: Duration) -> Vec<rdkafka::message::OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", BROKER)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < expected && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push(m.detach());
        }
    }
    // Anything beyond what was expected would show up shortly after.
    while let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
        out.push(m.detach());
    }
    out
}

fn header(m: &rdkafka::message::OwnedMessage, name: &str) -> String {
    let headers = m.headers().expect("headers");
    let h = headers.iter().find(|h| h.key == name).unwrap_or_else(|| panic!("no header {name}"));
    String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()
}

/// Good, poison, good on one partition of each of two consumers: one
/// dead-letters to a topic (a backend refusing the series for good), the
/// other to a file (a backend panicking on it). The good messages are all
/// stored, each poison message is in its destination once, every offset is
/// committed, `/status` counts them, and messages sent afterwards still
/// flow (the consumer is not stuck).
#[test]
fn poison_messages_are_dead_lettered_and_committed_past() {
    require_broker();
    let (to_topic, to_file, dead_letters) = (unique("poison-t"), unique("poison-f"), unique("dead-letters"));
    create_topic(&to_topic, 1);
    create_topic(&to_file, 1);
    create_topic(&dead_letters, 1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dl/dead.jsonl");
    let metrics = "[[metrics]]\nplugin = \"faulty\"\n[metrics.config]\n\
                   invalid_on_tag = \"host=refused\"\npanic_on_tag = \"host=panics\"\n";
    let consumers = kafka_consumer(
        "t",
        "spotify100",
        &to_topic,
        &unique("g"),
        1,
        &format!("batch_size = 64\ndead_letter_topic = \"{dead_letters}\""),
    ) + &kafka_consumer(
        "f",
        "spotify100",
        &to_file,
        &unique("g"),
        1,
        &format!("batch_size = 64\ndead_letter_file = \"{}\"", file.display()),
    );
    let node = Node::start(dir.path(), &node_config(&consumers, metrics));

    let mut producer = TestProducer::new();
    let (refused, panics) = (message_of("poison", "refused", 7), message_of("poison", "panics", 7));
    for (topic, poison, host) in [(&to_topic, &refused, "t"), (&to_file, &panics, "f")] {
        for i in 0..40 {
            producer.send(topic, "k", &message_of("poison", host, i));
        }
        producer.send(topic, "k", poison);
        for i in 40..80 {
            producer.send(topic, "k", &message_of("poison", host, i));
        }
    }
    producer.flush();

    wait_for_points(&node, "poison", 200, 160, Duration::from_secs(120));
    let st = wait_until(
        "both poison messages dead-lettered and everything committed",
        &node,
        Duration::from_secs(60),
        |s| {
            ["t", "f"].iter().all(|c| {
                consumer_stat(s, c, "plugin.messages_dead_lettered") == 1.0
                    && consumer_stat(s, c, "plugin.messages_committed") == 81.0
            })
        },
    );
    for c in ["t", "f"] {
        assert_eq!(consumer_stat(&st, c, "plugin.dead_letter_errors"), 0.0, "{st}");
        assert_eq!(consumer_stat(&st, c, "plugin.messages_in_flight"), 0.0, "{st}");
        assert!(consumer_stat(&st, c, "writeErrors") >= 1.0, "{st}");
    }
    let by_host = points_by_host(&node, "poison", 200);
    for host in ["t", "f"] {
        let expected: Vec<(i64, f64)> = (0..80).map(|i| (T0 + i as i64 * 1000, i as f64)).collect();
        assert_eq!(by_host[host], expected, "every good message of {host} stored once");
    }
    assert!(!by_host.contains_key("refused"), "{by_host:?}");

    // The topic: the original payload, with where it came from and why.
    let letters = read_topic(&dead_letters, 1, Duration::from_secs(30));
    assert_eq!(letters.len(), 1, "one dead letter, produced once");
    assert_eq!(letters[0].payload(), Some(refused.as_slice()));
    assert_eq!(letters[0].key(), Some(b"k".as_slice()));
    assert_eq!(header(&letters[0], "heroic.source.topic"), to_topic);
    assert_eq!(header(&letters[0], "heroic.source.offset"), "40");
    assert_eq!(header(&letters[0], "heroic.error.kind"), "invalid input");
    assert!(header(&letters[0], "heroic.error").contains("refused on request"));

    // The file: one JSON line, fsynced before the commit.
    let text = std::fs::read_to_string(&file).expect("the dead-letter file");
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["kind"], "panic", "{text}");
    assert_eq!(lines[0]["source"]["topic"], to_file.as_str());
    assert_eq!(lines[0]["source"]["offset"], "40");
    let payload = base64::engine::general_purpose::STANDARD.decode(lines[0]["payload_base64"].as_str().unwrap());
    assert_eq!(payload.unwrap(), panics);

    let log = node.log();
    assert!(log.contains("dead-lettered it and committing past it"), "{log}");
    assert!(log.contains("plugin panicked"), "the panic reached the host as an error:\n{log}");

    // Not stuck: what comes next is written and committed.
    for i in 80..100 {
        producer.send(&to_topic, "k", &message_of("poison", "t", i));
    }
    producer.flush();
    wait_for_points(&node, "poison", 200, 180, Duration::from_secs(60));
    wait_until("the rest committed", &node, Duration::from_secs(30), |s| {
        consumer_stat(s, "t", "plugin.messages_committed") == 101.0
    });
}

/// Committed offsets of `group` on `topic`, by partition (-1: none).
fn committed(topic: &str, group: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", BROKER).set("group.id", group).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let tpl = consumer.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets");
    tpl.elements().iter().map(|e| (e.partition(), if let Offset::Offset(o) = e.offset() { o } else { -1 })).collect()
}

/// No partition is committed past a message whose point is not stored:
/// partition `p` holds series `h{p}`, the message at offset `k` its point
/// `k`.
fn assert_committed_only_stored(node: &Node, topic: &str, group: &str, partitions: i32, when: &str) -> i64 {
    let offsets = committed(topic, group, partitions);
    let by_host = points_by_host(node, "rebalance", 400);
    for (p, c) in &offsets {
        let stored: Vec<i64> =
            by_host.get(&format!("h{p}")).map(|v| v.iter().map(|(t, _)| (t - T0) / 1000).collect()).unwrap_or_default();
        for k in 0..*c {
            assert!(stored.contains(&k), "{when}: partition {p} committed to {c}, but its message {k} is not stored");
        }
    }
    offsets.values().sum()
}

fn produce(producer: &ThreadedProducer<Counting>, topic: &str, partitions: i32, range: std::ops::Range<usize>) {
    for k in range {
        for p in 0..partitions {
            let payload = message_of("rebalance", &format!("h{p}"), k);
            let record = BaseRecord::to(topic).partition(p).key("k").payload(&payload);
            producer.send(record).map_err(|(e, _)| e).expect("send");
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// Two members of one group (two nodes), the backend down, the second
/// member joining then leaving, then the backend back: every message is
/// stored, no offset is ever committed before its message is stored, and
/// in-flight messages stay bounded during the outage.
#[test]
fn a_rebalance_during_an_outage_loses_nothing_and_commits_nothing_early() {
    require_broker();
    let (topic, group, partitions) = (unique("rebalance"), unique("g"), 4);
    create_topic(&topic, partitions);
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("backend-down");
    let metrics =
        format!("[[metrics]]\nplugin = \"faulty\"\n[metrics.config]\nfail_while_exists = \"{}\"\n", flag.display());
    let settings = "batch_size = 10\nmax_in_flight_per_partition = 20\nretry_backoff_max_ms = 200";
    let config = node_config(&kafka_consumer("k", "spotify100", &topic, &group, 2, settings), &metrics);
    let a = Node::start(dir.path(), &config);
    let deliveries = std::sync::Arc::new(Deliveries::default());
    let producer: ThreadedProducer<Counting> = ClientConfig::new()
        .set("bootstrap.servers", BROKER)
        .create_with_context(Counting(deliveries.clone()))
        .expect("producer");

    // Healthy: 50 messages per partition stored and committed.
    produce(&producer, &topic, partitions, 0..50);
    wait_for_points(&a, "rebalance", 400, 200, Duration::from_secs(120));
    wait_until("phase 1 committed", &a, Duration::from_secs(30), |s| {
        consumer_stat(s, "k", "plugin.messages_committed") >= 200.0
    });

    // The backend goes down; 100 more per partition wait.
    std::fs::write(&flag, b"").unwrap();
    produce(&producer, &topic, partitions, 50..150);
    wait_until("write errors", &a, Duration::from_secs(60), |s| consumer_stat(s, "k", "writeErrors") >= 2.0);
    let in_flight_bound = (partitions * 20) as f64;

    // A second member joins: partitions move while nothing can be written.
    let rebalances = consumer_stat(&status(&a), "k", "plugin.rebalances");
    let dir_b = tempfile::tempdir().unwrap();
    let mut b = Node::start(dir_b.path(), &config);
    wait_until("the second member took partitions", &b, Duration::from_secs(60), |s| {
        consumer_stat(s, "k", "plugin.rebalances") >= 1.0 && consumer_stat(s, "k", "writeErrors") >= 1.0
    });
    let st = wait_until("the first member was rebalanced", &a, Duration::from_secs(30), |s| {
        consumer_stat(s, "k", "plugin.rebalances") >= rebalances + 2.0
    });
    assert!(consumer_stat(&st, "k", "plugin.messages_in_flight") <= in_flight_bound, "{st}");
    assert_eq!(assert_committed_only_stored(&a, &topic, &group, partitions, "after the join"), 200);

    // It leaves (a clean stop abandons what it held, uncommitted).
    let exit = b.stop().expect("b was running");
    assert!(exit.success(), "{}", b.log());
    let st = wait_until("the first member owns every partition again", &a, Duration::from_secs(60), |s| {
        consumer_stat(s, "k", "plugin.partitions_paused") >= partitions as f64
    });
    assert!(consumer_stat(&st, "k", "plugin.messages_in_flight") <= in_flight_bound, "bounded while down: {st}");
    assert_eq!(assert_committed_only_stored(&a, &topic, &group, partitions, "after the leave"), 200);
    // `/status` tells the truth meanwhile: the consumer is stuck, not ok.
    wait_until("the consumer reported paused", &a, Duration::from_secs(30), |s| {
        let detail = &s["consumers"]["details"][0];
        detail["ok"] == false && detail["message"].as_str().is_some_and(|m| m.contains("paused"))
    });
    assert_eq!(total_points(&points_by_host(&a, "rebalance", 400)), 200);

    // The backend is back: everything arrives, everything is committed.
    std::fs::remove_file(&flag).unwrap();
    wait_for_points(&a, "rebalance", 400, 600, Duration::from_secs(120));
    let st = wait_until("every offset committed", &a, Duration::from_secs(60), |_| {
        committed(&topic, &group, partitions).values().all(|c| *c == 150)
    });
    assert_eq!(assert_committed_only_stored(&a, &topic, &group, partitions, "at the end"), 600);
    assert_eq!(consumer_stat(&st, "k", "plugin.partitions_paused"), 0.0, "resumed: {st}");
    assert_eq!(st["consumers"]["consumingThreads"], 2, "{st}");
    wait_until("the consumer healthy again", &a, Duration::from_secs(30), |s| {
        s["consumers"]["details"][0]["ok"] == true
    });
    let by_host = points_by_host(&a, "rebalance", 400);
    for p in 0..partitions {
        let expected: Vec<(i64, f64)> = (0..150).map(|k| (T0 + k as i64 * 1000, k as f64)).collect();
        assert_eq!(by_host[&format!("h{p}")], expected, "partition {p}");
    }
    assert_eq!(deliveries.failed.load(std::sync::atomic::Ordering::Relaxed), 0);
}
