//! The Kafka consumer end to end: the real broker (scripts/servers/kafka.sh),
//! the real `heroic` binary with the `kafka` and `local` plugins, messages
//! produced with rdkafka. These tests fail (they do not skip) when the
//! broker is not running.

mod common;
mod kafka_common;

use std::time::Duration;

use common::Node;
use heroic::ingest::schema::proto;
use kafka_common::*;

/// 100,000 messages over 500 series: every point queryable exactly once.
#[test]
fn hundred_thousand_messages_all_stored_exactly_once() {
    require_broker();
    let (series, per_series) = (500usize, 200usize);
    let topic = unique("e2e");
    create_topic(&topic, 4);
    let dir = tempfile::tempdir().unwrap();
    let config = node_config(&kafka_consumer("k", "spotify100", &topic, &unique("g"), 2, ""), LOCAL_METRICS);
    let node = Node::start(dir.path(), &config);

    let mut producer = TestProducer::new();
    for i in 0..per_series {
        for s in 0..series {
            producer.send(&topic, &format!("h{s}"), &message("e2e", s, i));
        }
    }
    producer.flush();

    let total = series * per_series;
    wait_for_points(&node, "e2e", per_series, total, Duration::from_secs(300));
    let by_host = points_by_host(&node, "e2e", per_series);
    assert_eq!(by_host.len(), series);
    for s in 0..series {
        let expected: Vec<(i64, f64)> = (0..per_series).map(|i| (T0 + i as i64 * 1000, value(s, i))).collect();
        assert_eq!(by_host[&format!("h{s}")], expected, "series h{s}");
    }
    let st = wait_until("every message committed", &node, Duration::from_secs(60), |s| {
        consumer_stat(s, "k", "plugin.messages_committed") >= total as f64
    });
    // Redelivery after the group's first rebalance may repeat a few.
    assert!(consumer_stat(&st, "k", "messagesConsumed") >= total as f64, "{st}");
    assert_eq!(st["consumers"]["decodeErrors"], 0, "{st}");
    assert_eq!(st["consumers"]["available"], 1, "{st}");
    assert_eq!(st["consumers"]["totalThreads"], 2, "{st}");
}

/// SIGKILL while consuming, then restart: every produced point is there.
#[test]
fn crash_mid_run_loses_nothing() {
    require_broker();
    let (series, per_series) = (100usize, 400usize);
    let topic = unique("crash");
    create_topic(&topic, 4);
    let dir = tempfile::tempdir().unwrap();
    let consumer = kafka_consumer("k", "spotify100", &topic, &unique("g"), 2, "batch_size = 200");
    let mut node = Node::start(dir.path(), &node_config(&consumer, LOCAL_METRICS));

    // Produce in the background, paced, so that the crash hits a live run.
    let producer_topic = topic.clone();
    let producer = std::thread::spawn(move || {
        let mut producer = TestProducer::new();
        for i in 0..per_series {
            for s in 0..series {
                producer.send(&producer_topic, &format!("h{s}"), &message("crash", s, i));
            }
            if i % 20 == 19 {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        producer.flush();
    });
    let total = series * per_series;
    let st = wait_until("some messages committed", &node, Duration::from_secs(120), |s| {
        consumer_stat(s, "k", "plugin.messages_committed") >= 2000.0
    });
    let committed = consumer_stat(&st, "k", "plugin.messages_committed");
    node.crash();
    assert!(committed < total as f64, "the crash came after everything was consumed ({committed})");
    node.restart();
    producer.join().unwrap();

    wait_for_points(&node, "crash", per_series, total, Duration::from_secs(300));
    let by_host = points_by_host(&node, "crash", per_series);
    for s in 0..series {
        let expected: Vec<(i64, f64)> = (0..per_series).map(|i| (T0 + i as i64 * 1000, value(s, i))).collect();
        assert_eq!(by_host[&format!("h{s}")], expected, "series h{s}");
    }
}

/// The metric backend fails for a while: consumption pauses, nothing is
/// committed past the last durable write, and it resumes by itself.
#[test]
fn failing_backend_pauses_without_committing_and_resumes() {
    require_broker();
    let topic = unique("faulty");
    create_topic(&topic, 2);
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("backend-down");
    let metrics =
        format!("[[metrics]]\nplugin = \"faulty\"\n[metrics.config]\nfail_while_exists = \"{}\"\n", flag.display());
    let consumer = kafka_consumer("k", "spotify100", &topic, &unique("g"), 2, "batch_size = 100");
    let node = Node::start(dir.path(), &node_config(&consumer, &metrics));
    let series = 10;

    // Phase 1: healthy.
    let mut producer = TestProducer::new();
    for i in 0..50 {
        for s in 0..series {
            producer.send(&topic, &format!("h{s}"), &message("faulty", s, i));
        }
    }
    producer.flush();
    wait_for_points(&node, "faulty", 100, 500, Duration::from_secs(120));
    wait_until("phase 1 committed", &node, Duration::from_secs(30), |s| {
        consumer_stat(s, "k", "plugin.messages_committed") >= 500.0
    });
    std::thread::sleep(Duration::from_millis(500));
    let committed_before = consumer_stat(&status(&node), "k", "plugin.messages_committed");

    // Phase 2: the backend fails; new messages are consumed but not written.
    std::fs::write(&flag, b"").unwrap();
    for i in 50..100 {
        for s in 0..series {
            producer.send(&topic, &format!("h{s}"), &message("faulty", s, i));
        }
    }
    producer.flush();
    let st =
        wait_until("write errors", &node, Duration::from_secs(60), |s| consumer_stat(s, "k", "writeErrors") >= 3.0);
    assert!(st["consumers"]["consumingThreads"].as_u64().unwrap() < 2, "a failing thread pauses: {st}");
    std::thread::sleep(Duration::from_secs(3));
    let st = status(&node);
    assert_eq!(
        consumer_stat(&st, "k", "plugin.messages_committed"),
        committed_before,
        "committed past the last durable write: {st}"
    );
    let errors = consumer_stat(&st, "k", "writeErrors");
    assert!(errors < 100.0, "retries back off instead of spinning: {errors} errors in ~3 s");
    assert_eq!(total_points(&points_by_host(&node, "faulty", 100)), 500);

    // Phase 3: the backend is back; everything arrives, all is committed.
    std::fs::remove_file(&flag).unwrap();
    wait_for_points(&node, "faulty", 100, 1000, Duration::from_secs(120));
    let st = wait_until("everything committed", &node, Duration::from_secs(60), |s| {
        consumer_stat(s, "k", "plugin.messages_committed") >= committed_before + 500.0
    });
    assert_eq!(st["consumers"]["consumingThreads"], 2, "{st}");
    let by_host = points_by_host(&node, "faulty", 100);
    for s in 0..series {
        let expected: Vec<(i64, f64)> = (0..100).map(|i| (T0 + i as i64 * 1000, value(s, i))).collect();
        assert_eq!(by_host[&format!("h{s}")], expected);
    }
}

/// Malformed messages between valid ones (JSON and protobuf consumers):
/// counted by reason in /status; every valid message around them stored.
#[test]
fn malformed_messages_are_counted_and_skipped() {
    require_broker();
    let (json_topic, proto_topic) = (unique("mixed-json"), unique("mixed-proto"));
    create_topic(&json_topic, 2);
    create_topic(&proto_topic, 2);
    let dir = tempfile::tempdir().unwrap();
    let consumers = kafka_consumer("json", "spotify100", &json_topic, &unique("g"), 1, "batch_size = 50")
        + &kafka_consumer("proto", "spotify100-proto", &proto_topic, &unique("g"), 1, "batch_size = 50");
    let node = Node::start(dir.path(), &node_config(&consumers, LOCAL_METRICS));

    let mut producer = TestProducer::new();
    let (mut malformed, mut invalid) = (0, 0);
    for i in 0..300 {
        producer.send(&json_topic, "a", &message("mixed", 0, i));
        match i % 10 {
            3 => {
                producer.send(&json_topic, "a", b"{not json");
                malformed += 1;
            }
            5 => {
                producer.send(&json_topic, "a", br#"{"version":"1.0.0","key":"mixed","value":1}"#);
                invalid += 1;
            }
            7 => {
                // Base64, but two bytes are no t-digest.
                let t = T0 + i as i64 * 1000;
                let m =
                    format!(r#"{{"version":"2.0.0","key":"mixed","time":{t},"value":{{"distributionValue":"AAE="}}}}"#);
                producer.send(&json_topic, "a", m.as_bytes());
                invalid += 1;
            }
            _ => {}
        }
    }
    // Protobuf: batches of 10 points of series `h1`, with junk between.
    for b in 0..30 {
        let metric = (0..10)
            .map(|j| {
                let i = b * 10 + j;
                let mut m = proto::Metric {
                    key: "mixed".into(),
                    time: T0 + i as i64 * 1000,
                    value: value(1, i),
                    ..Default::default()
                };
                m.tags.insert("host".into(), "h1".into());
                m.tags.insert("role".into(), "test".into());
                m
            })
            .collect();
        producer.send(&proto_topic, "b", &proto::encode_batch(&proto::Batch { metric }));
        if b % 3 == 0 {
            producer.send(&proto_topic, "b", b"\x00\x01 not snappy");
        }
    }
    producer.flush();

    wait_for_points(&node, "mixed", 300, 600, Duration::from_secs(120));
    let by_host = points_by_host(&node, "mixed", 300);
    for s in [0, 1] {
        let expected: Vec<(i64, f64)> = (0..300).map(|i| (T0 + i as i64 * 1000, value(s, i))).collect();
        assert_eq!(by_host[&format!("h{s}")], expected, "h{s}");
    }
    let st = wait_until("all decode errors counted", &node, Duration::from_secs(30), |s| {
        s["consumers"]["decodeErrors"].as_u64() == Some(malformed + invalid + 10)
    });
    let json = st["consumers"]["details"].as_array().unwrap().iter().find(|d| d["id"] == "json").unwrap().clone();
    assert_eq!(json["decodeErrors"]["malformed"], malformed, "{st}");
    assert_eq!(json["decodeErrors"]["invalid"], invalid, "{st}");
    assert_eq!(json["decodeErrors"]["unstorable"], 0, "{st}");
    let proto_consumer =
        st["consumers"]["details"].as_array().unwrap().iter().find(|d| d["id"] == "proto").unwrap().clone();
    assert_eq!(proto_consumer["decodeErrors"]["malformed"], 10, "{st}");
    assert_eq!(proto_consumer["schema"], "spotify100-proto");
    // Refused messages are still acknowledged: nothing to retry.
    wait_until("everything committed", &node, Duration::from_secs(30), |s| {
        consumer_stat(s, "json", "plugin.messages_committed") == (300 + malformed + invalid) as f64
            && consumer_stat(s, "proto", "plugin.messages_committed") == 40.0
    });
    assert!(node.log().contains("skipping a message that does not decode"));

    // The same figures in GET /metrics, and the lag of every partition.
    let sample = |name: &str, labels: &str| format!("heroic_consumer_{name}{{consumer=\"json\"{labels}}}");
    let refused = |outcome: &str| sample("messages_refused_total", &format!(",outcome=\"{outcome}\""));
    assert_eq!(scraped(&node, &refused("malformed")), Some(malformed as f64));
    assert_eq!(scraped(&node, &refused("invalid")), Some(invalid as f64));
    assert_eq!(scraped(&node, &sample("points_written_total", "")), Some(300.0));
    // Every message has the same key, so one partition holds them all:
    // its lag is known (librdkafka gives none for a partition never read).
    let lag = |p: usize| sample("lag_messages", &format!(",partition=\"{json_topic}/{p}\""));
    wait_until_scraped(&node, Duration::from_secs(30), |text| {
        let lags: Vec<f64> = (0..2).filter_map(|p| sample_in(text, &lag(p))).collect();
        lags == [0.0]
    });
}

/// The documented example config parses and names the kafka consumer.
#[test]
fn example_consumer_config_parses() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/consumer-kafka.toml");
    let config = heroic::config::Config::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.consumers.len(), 1);
    assert_eq!(config.consumers[0].plugin, "kafka");
    assert_eq!(config.consumers[0].schema, Some(heroic::ingest::Schema::Spotify100));
    assert_eq!(config.metrics[0].plugin, "local");
    // Consumer-only settings are refused elsewhere, and bad filters at load.
    let bad = "[[metrics]]\nplugin = \"local\"\nschema = \"spotify100\"\n";
    assert!(heroic::config::Config::from_toml(bad).unwrap_err().contains("consumer setting"));
    let bad = "[ingestion]\nfilter = \"key = \"\n";
    assert!(heroic::config::Config::from_toml(bad).unwrap_err().contains("ingestion.filter"));
    let bad = "[[consumers]]\nplugin = \"kafka\"\nschema = \"avro\"\n";
    assert!(heroic::config::Config::from_toml(bad).unwrap_err().contains("unknown consumer schema"));
}
