//! Distribution points over HTTP, on the real binary: `/write` of
//! `distributionPoints` (bytes in Heroic's t-digest format, built here by
//! hand from the layout com.tdunning t-digest 3.2 writes), the raw query,
//! `tdigest` with known data, and the answers of a node whose metric
//! backend cannot store them.

mod common;

use base64::Engine as _;
use common::Node;
use heroic_plugin_api::testkit::sketch::tdigest_verbose;
use serde_json::{json, Value};

fn local_node(dir: &std::path::Path) -> Node {
    let config = "[server]\nlisten = \"127.0.0.1:{port}\"\n[plugins]\ndirs = [\"{plugins}\"]\n\
         [[metrics]]\nplugin = \"local\"\n[metrics.config]\ndata_dir = \"{dir}/m\"\n\
         [[metadata]]\nplugin = \"local\"\n[metadata.config]\ndata_dir = \"{dir}/md\"\n";
    Node::start(dir, config)
}

/// `MergingDigest.asSmallBytes` of a digest holding `values` one centroid
/// each: `i32 2, f64 min, f64 max, f32 compression, i16 capacity, i16
/// buffer, i16 n, n × (f32 weight, f32 mean)`, big-endian.
fn small_bytes(values: &[f64]) -> Vec<u8> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mut out = 2i32.to_be_bytes().to_vec();
    out.extend_from_slice(&v[0].to_be_bytes());
    out.extend_from_slice(&v[v.len() - 1].to_be_bytes());
    out.extend_from_slice(&100f32.to_be_bytes());
    let n = v.len() as i16;
    for s in [n.max(100), n.max(100) * 5, n] {
        out.extend_from_slice(&s.to_be_bytes());
    }
    for x in &v {
        out.extend_from_slice(&1f32.to_be_bytes());
        out.extend_from_slice(&(*x as f32).to_be_bytes());
    }
    out
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn write(node: &Node, host: &str, samples: &[(i64, Vec<u8>)]) -> (u16, Value) {
    write_kind(node, "distributionPoints", host, samples)
}

fn write_kind(node: &Node, kind: &str, host: &str, samples: &[(i64, Vec<u8>)]) -> (u16, Value) {
    let data: Vec<Value> = samples.iter().map(|(t, b)| json!({"value": b64(b), "timestamp": t})).collect();
    let body = json!({"series": {"key": "latency", "tags": {"host": host}},
                      "data": {"type": kind, "data": data}});
    node.post("/write", &body)
}

fn query(node: &Node, body: Value) -> Value {
    let (status, reply) = node.post("/query/metrics", &body);
    assert_eq!(status, 200, "{reply}");
    reply
}

fn range(body: Value) -> Value {
    let mut body = body;
    body["filter"] = json!(["key", "latency"]);
    body["range"] = json!({"type": "absolute", "start": 0, "end": 2000});
    body["features"] = json!(["-shift_range"]);
    body
}

#[test]
fn written_distributions_come_back_raw_and_merged_into_percentiles() {
    let dir = tempfile::tempdir().unwrap();
    let node = local_node(dir.path());
    let low: Vec<f64> = (1..=100).map(f64::from).collect();
    let high: Vec<f64> = (1001..=1100).map(f64::from).collect();
    let first = small_bytes(&low[..50]);
    let (status, reply) = write(&node, "a", &[(100, first.clone()), (1500, tdigest_verbose(&high))]);
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = write(&node, "b", &[(600, small_bytes(&low[50..]))]);
    assert_eq!(status, 200, "{reply}");

    // Raw: one group per series, values as Heroic serialises them.
    let raw = query(&node, range(json!({"source": "distributionPoints"})));
    let groups = raw["result"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{raw}");
    assert_eq!(raw["errors"], json!([]), "{raw}");
    let a = groups.iter().find(|g| g["tags"]["host"] == "a").unwrap();
    assert_eq!(a["values"][0], json!({"value": b64(&first), "timestamp": 100}), "{raw}");
    assert_eq!(a["values"][1]["timestamp"], 1500, "{raw}");

    // tdigest over 1 s buckets: three groups, P50, P75, P99.
    let merged = query(&node, range(json!({"aggregation": {"type": "tdigest", "size": "1s"}})));
    let groups = merged["result"].as_array().unwrap();
    assert_eq!(groups.len(), 3, "{merged}");
    assert_eq!(merged["errors"], json!([]), "{merged}");
    for (stat, low_want, high_want) in [("P50", 50.5, 1050.5), ("P75", 75.5, 1075.5), ("P99", 99.5, 1099.5)] {
        let g = groups.iter().find(|g| g["tags"]["tdigeststat"] == stat).unwrap_or_else(|| panic!("{stat}: {merged}"));
        assert_eq!(g["cadence"], 1000, "{merged}");
        let values = g["values"].as_array().unwrap();
        assert_eq!(values.len(), 2, "{merged}");
        assert_eq!((values[0][0].as_i64(), values[1][0].as_i64()), (Some(1000), Some(2000)), "{merged}");
        let (lo, hi) = (values[0][1].as_f64().unwrap(), values[1][1].as_f64().unwrap());
        assert!((lo - low_want).abs() <= 2.0, "{stat} of 1..=100 (two sketches, two series): {lo}");
        assert!((hi - high_want).abs() <= 2.0, "{stat} of 1001..=1100: {hi}");
    }

    // group by host: each host its own three groups; the source is forced.
    let by_host = json!({"aggregation": {"type": "group", "of": ["host"], "each": {"type": "tdigest", "size": "1s"}}});
    let grouped = query(&node, range(by_host));
    assert_eq!(grouped["result"].as_array().unwrap().len(), 6, "{grouped}");
}

#[test]
fn tdigest_points_are_their_own_source_read_raw_and_merged() {
    let dir = tempfile::tempdir().unwrap();
    let node = local_node(dir.path());
    let low: Vec<f64> = (1..=100).map(f64::from).collect();
    let high: Vec<f64> = (1001..=1100).map(f64::from).collect();
    // The same series and timestamp as a distribution point: kept apart.
    let tdigest = small_bytes(&high);
    let (status, reply) = write_kind(&node, "tdigestPoints", "a", &[(100, tdigest.clone())]);
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = write(&node, "a", &[(100, small_bytes(&low))]);
    assert_eq!(status, 200, "{reply}");

    let raw = query(&node, range(json!({"source": "tdigestPoints"})));
    assert_eq!(raw["errors"], json!([]), "{raw}");
    let groups = raw["result"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{raw}");
    assert_eq!(groups[0]["type"], "tdigestPoints", "{raw}");
    assert_eq!(groups[0]["values"], json!([{"value": b64(&tdigest), "timestamp": 100}]), "{raw}");
    let raw = query(&node, range(json!({"source": "distributionPoints"})));
    assert_eq!(raw["result"][0]["type"], "distributionPoints", "{raw}");
    assert_ne!(raw["result"][0]["values"][0]["value"], json!(b64(&tdigest)), "{raw}");

    // tdigest over the tdigestPoints source merges those, not the
    // distribution points; as JSON and as HQL.
    let p50 = |reply: &Value| -> f64 {
        let groups = reply["result"].as_array().unwrap();
        assert_eq!(groups.len(), 3, "{reply}");
        let g = groups.iter().find(|g| g["tags"]["tdigeststat"] == "P50").unwrap();
        g["values"][0][1].as_f64().unwrap()
    };
    let merged =
        query(&node, range(json!({"source": "tdigestPoints", "aggregation": {"type": "tdigest", "size": "1s"}})));
    assert!((p50(&merged) - 1050.5).abs() <= 2.0, "{merged}");
    let hql = query(&node, range(json!({"query": "tdigest(1s) from tdigestPoints where $key = latency"})));
    assert!((p50(&hql) - 1050.5).abs() <= 2.0, "{hql}");
    // Without a source, tdigest reads distribution points, as in Heroic.
    let merged = query(&node, range(json!({"aggregation": {"type": "tdigest", "size": "1s"}})));
    assert!((p50(&merged) - 50.5).abs() <= 2.0, "{merged}");
}

#[test]
fn a_value_that_is_not_a_sketch_is_a_json_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = local_node(dir.path());
    let good = small_bytes(&[1.0, 2.0]);
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 3);
    let (status, reply) = write(&node, "a", &[(1, good), (2, truncated)]);
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["type"], "json-error", "{reply}");
    assert_eq!(reply["path"], "data.data[1].value", "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("t-digest"), "{reply}");
    let body = json!({"series": {"key": "latency"}, "data": {"type": "distributionPoints",
                      "data": [{"value": "not base64!", "timestamp": 1}]}});
    let (status, reply) = node.post("/write", &body);
    assert_eq!((status, &reply["path"]), (400, &json!("data.data[0].value")), "{reply}");
    // Nothing of the refused writes was stored.
    let raw = query(&node, range(json!({"source": "distributionPoints"})));
    assert_eq!(raw["result"], json!([]), "{raw}");
}

#[test]
fn a_backend_that_cannot_store_distributions_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[server]\nlisten = \"127.0.0.1:{port}\"\n[plugins]\ndirs = [\"{plugins}\"]\n\
         [[metrics]]\nplugin = \"faulty\"\n\
         [[metadata]]\nplugin = \"local\"\n[metadata.config]\ndata_dir = \"{dir}/md\"\n";
    let node = Node::start(dir.path(), config);
    let (status, reply) = write(&node, "a", &[(1, small_bytes(&[1.0]))]);
    assert_eq!(status, 400, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("cannot be stored"), "{reply}");

    // The batch: the distribution query carries the error, the points query is unaffected.
    let body =
        json!({"series": {"key": "latency", "tags": {"host": "a"}}, "data": {"type": "points", "data": [[10, 1.0]]}});
    assert_eq!(node.post("/write", &body).0, 200);
    let batch = json!({"queries": {
        "points": range(json!({})),
        "tdigest": range(json!({"aggregation": {"type": "tdigest", "size": "1s"}})),
    }});
    let (status, reply) = node.post("/query/batch", &batch);
    assert_eq!(status, 200, "{reply}");
    let r = &reply["results"];
    assert_eq!(r["points"]["result"][0]["values"], json!([[10, 1.0]]), "{reply}");
    assert_eq!(r["tdigest"]["result"], json!([]), "{reply}");
    assert_eq!(r["tdigest"]["errors"][0]["type"], "query", "{reply}");
    assert!(r["tdigest"]["errors"][0]["error"].as_str().unwrap().contains("can store"), "{reply}");
}
