//! Distribution values consumed from Kafka end to end: the real broker
//! (scripts/servers/kafka.sh), the real `heroic` binary with the `kafka`
//! and `local` plugins. Spotify100 v2 `distributionValue` and
//! Spotify100Proto `distribution_value` are stored as distribution points,
//! queried back raw and as percentiles; bad sketches are counted and
//! skipped; a backend that cannot store them has them dropped and counted
//! without blocking the points. These tests fail (they do not skip) when the
//! broker is not running.

mod common;
mod kafka_common;

use std::time::Duration;

use base64::Engine as _;
use common::Node;
use heroic::ingest::schema::proto;
use heroic_plugin_api::testkit::sketch::tdigest_verbose;
use kafka_common::*;
use serde_json::{json, Value};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A Spotify100 v2 message of series `key {host}` with a distribution value
/// given as its base64 text.
fn v2_distribution(key: &str, host: &str, time: i64, base64: &str) -> Vec<u8> {
    json!({"version": "2.0.0", "key": key, "host": host, "time": time, "value": {"distributionValue": base64}})
        .to_string()
        .into_bytes()
}

fn proto_double(key: &str, host: &str, time: i64, value: f64) -> proto::Metric {
    let mut m = proto::Metric { key: key.into(), time, ..Default::default() };
    m.tags.insert("host".into(), host.into());
    m.distribution_type_value = Some(proto::Value { value: Some(proto::value::Value::DoubleValue(value)) });
    m
}

fn proto_distribution(key: &str, host: &str, time: i64, bytes: Vec<u8>) -> proto::Metric {
    let mut m = proto::Metric { key: key.into(), time, ..Default::default() };
    m.tags.insert("host".into(), host.into());
    m.distribution_type_value = Some(proto::Value { value: Some(proto::value::Value::DistributionValue(bytes)) });
    m
}

fn query(node: &Node, key: &str, body: Value) -> Value {
    let mut body = body;
    body["filter"] = json!(["key", key]);
    body["range"] = json!({"type": "absolute", "start": T0, "end": T0 + 2000});
    body["features"] = json!(["-shift_range"]);
    let (status, reply) = node.post("/query/metrics", &body);
    assert_eq!(status, 200, "{reply}");
    reply
}

fn detail(status: &Value, id: &str) -> Value {
    let details = status["consumers"]["details"].as_array().expect("consumers.details");
    details.iter().find(|d| d["id"] == id).unwrap_or_else(|| panic!("no consumer {id} in {status}")).clone()
}

/// JSON and protobuf distributions (with doubles in the same batches) are
/// stored; bad ones are counted as invalid and skipped.
#[test]
fn distributions_are_stored_and_queryable_and_bad_ones_skipped() {
    require_broker();
    let (json_topic, proto_topic) = (unique("dist-json"), unique("dist-proto"));
    create_topic(&json_topic, 1);
    create_topic(&proto_topic, 1);
    let dir = tempfile::tempdir().unwrap();
    let consumers = kafka_consumer("json", "spotify100", &json_topic, &unique("g"), 1, "batch_size = 10")
        + &kafka_consumer("proto", "spotify100-proto", &proto_topic, &unique("g"), 1, "batch_size = 10");
    let node = Node::start(dir.path(), &node_config(&consumers, LOCAL_METRICS));

    let low: Vec<f64> = (1..=100).map(f64::from).collect();
    let high: Vec<f64> = (1001..=1100).map(f64::from).collect();
    let first = tdigest_verbose(&low[..50]);
    let mut producer = TestProducer::new();
    producer.send(&json_topic, "a", &v2_distribution("latency", "a", T0 + 100, &b64(&first)));
    // Not base64; base64 but no t-digest: both counted and skipped.
    producer.send(&json_topic, "a", &v2_distribution("latency", "a", T0 + 200, "not base64!"));
    producer.send(&json_topic, "a", &v2_distribution("latency", "a", T0 + 300, "AAE="));
    // Unpadded, as Jackson also reads it.
    let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(tdigest_verbose(&high));
    producer.send(&json_topic, "a", &v2_distribution("latency", "a", T0 + 1500, &unpadded));

    // One batch mixing doubles and a distribution, and one whose bad
    // sketch refuses it whole (its double included).
    let mixed = proto::Batch {
        metric: vec![
            proto_double("dist-points", "h0", T0 + 100, 1.5),
            proto_distribution("latency", "b", T0 + 600, tdigest_verbose(&low[50..])),
            proto_double("dist-points", "h0", T0 + 200, 2.5),
        ],
    };
    producer.send(&proto_topic, "b", &proto::encode_batch(&mixed));
    let bad = proto::Batch {
        metric: vec![
            proto_double("dist-points", "h0", T0 + 300, 9.0),
            proto_distribution("latency", "b", T0 + 700, vec![0, 0, 0, 1]),
        ],
    };
    producer.send(&proto_topic, "b", &proto::encode_batch(&bad));
    producer.flush();

    let st = wait_until("every message committed", &node, Duration::from_secs(120), |s| {
        consumer_stat(s, "json", "plugin.messages_committed") == 4.0
            && consumer_stat(s, "proto", "plugin.messages_committed") == 2.0
    });
    let (json_c, proto_c) = (detail(&st, "json"), detail(&st, "proto"));
    assert_eq!(json_c["decodeErrors"], json!({"malformed": 0, "invalid": 2, "unstorable": 0}), "{st}");
    assert_eq!(json_c["distributionsWritten"], 2, "{st}");
    assert_eq!(proto_c["decodeErrors"]["invalid"], 1, "{st}");
    assert_eq!(proto_c["distributionsWritten"], 1, "{st}");
    assert_eq!(proto_c["pointsWritten"], 2, "{st}");
    assert!(node.log().contains("not a serialised t-digest"), "{}", node.log());

    // Raw: one group per series, bytes as sent.
    let raw = query(&node, "latency", json!({"source": "distributionPoints"}));
    assert_eq!(raw["errors"], json!([]), "{raw}");
    let groups = raw["result"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{raw}");
    let a = groups.iter().find(|g| g["tags"]["host"] == "a").unwrap();
    assert_eq!(
        a["values"],
        json!([{"value": b64(&first), "timestamp": T0 + 100}, {"value": b64(&tdigest_verbose(&high)), "timestamp": T0 + 1500}]),
        "{raw}"
    );
    let b = groups.iter().find(|g| g["tags"]["host"] == "b").unwrap();
    assert_eq!(b["values"], json!([{"value": b64(&tdigest_verbose(&low[50..])), "timestamp": T0 + 600}]), "{raw}");

    // tdigest over 1 s: the two series' sketches of 1..=100 merge in the
    // first bucket, 1001..=1100 is the second.
    let merged = query(&node, "latency", json!({"aggregation": {"type": "tdigest", "size": "1s"}}));
    assert_eq!(merged["errors"], json!([]), "{merged}");
    let groups = merged["result"].as_array().unwrap();
    for (stat, low_want, high_want) in [("P50", 50.5, 1050.5), ("P99", 99.5, 1099.5)] {
        let g = groups.iter().find(|g| g["tags"]["tdigeststat"] == stat).unwrap_or_else(|| panic!("{stat}: {merged}"));
        let values = g["values"].as_array().unwrap();
        assert_eq!(values.len(), 2, "{merged}");
        assert_eq!((values[0][0].as_i64(), values[1][0].as_i64()), (Some(T0 + 1000), Some(T0 + 2000)), "{merged}");
        let (lo, hi) = (values[0][1].as_f64().unwrap(), values[1][1].as_f64().unwrap());
        assert!((lo - low_want).abs() <= 2.0, "{stat} of 1..=100: {lo}");
        assert!((hi - high_want).abs() <= 2.0, "{stat} of 1001..=1100: {hi}");
    }

    // The doubles of the good batch, not those of the refused one.
    let points = node.points_by_host("dist-points", T0, T0 + 2000);
    assert_eq!(points["h0"], vec![(T0 + 100, 1.5), (T0 + 200, 2.5)], "{points:?}");
}

/// A metric backend without the distributions capability: distribution
/// values are dropped and counted as `unstorable`, the points around them
/// (in the same batches) stored, every message acknowledged.
#[test]
fn distributions_a_backend_cannot_store_are_dropped_and_counted() {
    require_broker();
    let (json_topic, proto_topic) = (unique("undist-json"), unique("undist-proto"));
    create_topic(&json_topic, 1);
    create_topic(&proto_topic, 1);
    let dir = tempfile::tempdir().unwrap();
    let consumers = kafka_consumer("json", "spotify100", &json_topic, &unique("g"), 1, "batch_size = 10")
        + &kafka_consumer("proto", "spotify100-proto", &proto_topic, &unique("g"), 1, "batch_size = 10");
    let metrics = "[[metrics]]\nplugin = \"faulty\"\n";
    let node = Node::start(dir.path(), &node_config(&consumers, metrics));

    let mut producer = TestProducer::new();
    for i in 0..20 {
        producer.send(&json_topic, "a", &message("undist", 0, i));
        if i % 4 == 0 {
            let sketch = b64(&tdigest_verbose(&[i as f64, 2.0 * i as f64]));
            producer.send(&json_topic, "a", &v2_distribution("latency", "a", T0 + i as i64 * 1000, &sketch));
        }
    }
    let mixed = proto::Batch {
        metric: vec![
            proto_double("undist", "h1", T0, 7.0),
            proto_distribution("latency", "b", T0, tdigest_verbose(&[1.0, 2.0])),
        ],
    };
    producer.send(&proto_topic, "b", &proto::encode_batch(&mixed));
    producer.flush();

    let st = wait_until("every message committed", &node, Duration::from_secs(120), |s| {
        consumer_stat(s, "json", "plugin.messages_committed") == 25.0
            && consumer_stat(s, "proto", "plugin.messages_committed") == 1.0
    });
    assert_eq!(detail(&st, "json")["decodeErrors"]["unstorable"], 5, "{st}");
    assert_eq!(detail(&st, "proto")["decodeErrors"]["unstorable"], 1, "{st}");
    assert_eq!(consumer_stat(&st, "json", "distributionsWritten"), 0.0, "{st}");
    assert_eq!(consumer_stat(&st, "json", "writeErrors"), 0.0, "{st}");
    let by_host = points_by_host(&node, "undist", 20);
    assert_eq!(by_host["h0"].len(), 20, "{by_host:?}");
    assert_eq!(by_host["h1"], vec![(T0, 7.0)], "{by_host:?}");
    assert!(node.log().contains("dropping distribution values"), "{}", node.log());
}
