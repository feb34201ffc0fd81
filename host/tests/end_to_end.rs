//! The README's promise, end to end on the real binary and the `local`
//! plugin: a write is queryable, survives a clean restart and a crash, and
//! a query over HTTP gives Heroic's response shape.

mod common;

use common::{local_config, Node};
use serde_json::{json, Value};

fn write(node: &Node, key: &str, host: &str, points: Value) {
    let body = json!({"series": {"key": key, "tags": {"host": host}}, "data": {"type": "points", "data": points}});
    let (status, reply) = node.post("/write", &body);
    assert_eq!(status, 200, "{reply}");
    assert!(reply["times"].is_array(), "{reply}");
}

fn raw_query(node: &Node, key: &str) -> Value {
    let q = json!({"range": {"type": "absolute", "start": 0, "end": 10_000}, "filter": ["key", key]});
    let (status, reply) = node.post("/query/metrics", &q);
    assert_eq!(status, 200, "{reply}");
    reply
}

fn values_by_host(reply: &Value) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = reply["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["tags"]["host"].as_str().unwrap_or("").to_string(), g["values"].clone()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn write_query_restart_and_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &local_config());

    write(&node, "cpu", "a", json!([[1000, 1.5], [2000, 2.5], [3000, 3.5]]));
    write(&node, "cpu", "b", json!([[1000, 10.0], [3000, 30.0]]));
    let expected = vec![
        ("a".to_string(), json!([[1000, 1.5], [2000, 2.5], [3000, 3.5]])),
        ("b".to_string(), json!([[1000, 10.0], [3000, 30.0]])),
    ];

    let reply = raw_query(&node, "cpu");
    assert_eq!(values_by_host(&reply), expected);
    // Heroic's response fields are all there.
    for field in [
        "queryId",
        "range",
        "trace",
        "limits",
        "cached",
        "commonTags",
        "commonResource",
        "result",
        "preAggregationSampleSize",
        "errors",
    ] {
        assert!(reply.get(field).is_some(), "missing {field}: {reply}");
    }
    assert_eq!(reply["preAggregationSampleSize"], 5);
    assert_eq!(reply["result"][0]["type"], "points");

    // Data is under ./data of the working directory, as documented.
    assert!(dir.path().join("data/metrics").is_dir());

    node.restart();
    assert_eq!(values_by_host(&raw_query(&node, "cpu")), expected, "after a clean restart");

    // An acknowledged write survives a crash (SIGKILL, no flush).
    write(&node, "cpu", "c", json!([[4000, 4.0]]));
    node.crash();
    node.restart();
    let after_crash = values_by_host(&raw_query(&node, "cpu"));
    assert_eq!(after_crash.len(), 3, "{after_crash:?}");
    assert_eq!(after_crash[2], ("c".to_string(), json!([[4000, 4.0]])));
}

#[test]
fn aggregated_hql_query_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    write(&node, "mem", "a", json!([[1000, 1.0], [2000, 2.0], [3000, 3.0]]));
    write(&node, "mem", "b", json!([[1000, 10.0], [3000, 30.0]]));

    let (status, reply) = node.post_text("/query/metrics", "sum(1s) from points(0, 4000) where $key = mem");
    assert_eq!(status, 200, "{reply}");
    let groups = reply["result"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{reply}");
    assert_eq!(groups[0]["values"], json!([[1000, 11.0], [2000, 2.0], [3000, 33.0]]));
    assert_eq!(groups[0]["cadence"], 1000);
    assert_eq!(groups[0]["tagCounts"], json!({"host": 2}));
    assert_eq!(groups[0]["key"], "mem");
}

#[test]
fn queries_need_a_client_id() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    let (status, reply) = node.request(
        "POST",
        "/query/metrics",
        Some(r#"{"range":{"type":"relative","unit":"HOURS","value":1}}"#.into()),
        "application/json",
    );
    // The harness always sends a client id; check the rule with a raw request.
    assert_eq!(status, 200, "{reply}");
    let raw = reqwest::blocking::Client::new()
        .post(node.url("/query/metrics"))
        .header("content-type", "application/json")
        .body(r#"{"range":{"type":"relative","unit":"HOURS","value":1}}"#)
        .send()
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    let body: Value = raw.json().unwrap();
    assert_eq!(body["message"], "Anonymous requests are not permitted");
}

#[test]
fn graceful_shutdown_exits_cleanly_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &local_config());
    write(&node, "disk", "a", json!([[1000, 1.0]]));
    let status = node.stop().expect("was running");
    assert!(status.success(), "exit status {status}: {}", node.log());
    assert!(node.log().contains("stopped"), "{}", node.log());
    node.restart();
    assert_eq!(values_by_host(&raw_query(&node, "disk")), vec![("a".to_string(), json!([[1000, 1.0]]))]);
}
