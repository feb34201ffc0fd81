//! Spreads over HTTP, on the real binary: `/write` of `spreads`, the raw
//! `spreads` source, the aggregations that fold them (checked against
//! values worked out by hand), bad bodies, and the answers of a node whose
//! metric backend cannot store them.

mod common;

use common::Node;
use serde_json::{json, Value};

fn local_node(dir: &std::path::Path) -> Node {
    let config = "[server]\nlisten = \"127.0.0.1:{port}\"\n[plugins]\ndirs = [\"{plugins}\"]\n\
         [[metrics]]\nplugin = \"local\"\n[metrics.config]\ndata_dir = \"{dir}/m\"\n\
         [[metadata]]\nplugin = \"local\"\n[metadata.config]\ndata_dir = \"{dir}/md\"\n";
    Node::start(dir, config)
}

/// A spread of `values`.
fn spread(values: &[f64]) -> Value {
    json!({
        "count": values.len(),
        "sum": values.iter().sum::<f64>(),
        "sum2": values.iter().map(|v| v * v).sum::<f64>(),
        "min": values.iter().copied().fold(f64::INFINITY, f64::min),
        "max": values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

fn write(node: &Node, host: &str, samples: &[(i64, &[f64])]) -> (u16, Value) {
    let data: Vec<Value> = samples.iter().map(|(t, v)| json!([t, spread(v)])).collect();
    let body = json!({"series": {"key": "latency", "tags": {"host": host}},
                      "data": {"type": "spreads", "data": data}});
    node.post("/write", &body)
}

fn query(node: &Node, body: Value) -> Value {
    let (status, reply) = node.post("/query/metrics", &body);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["errors"], json!([]), "{reply}");
    reply
}

/// `(start, end]` = `(0, 2000]`, no range shifting, over `key latency`,
/// plus `extra` (source, aggregation).
fn over_range(extra: Value) -> Value {
    let mut body = json!({
        "filter": ["key", "latency"],
        "range": {"type": "absolute", "start": 0, "end": 2000},
        "features": ["-shift_range"],
        "source": "spreads",
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// The `[t, v]` points of the only group of `reply`.
fn only_points(reply: &Value) -> Vec<(i64, f64)> {
    let groups = reply["result"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{reply}");
    assert_eq!(groups[0]["type"], "points", "{reply}");
    groups[0]["values"].as_array().unwrap().iter().map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap())).collect()
}

#[test]
fn written_spreads_come_back_raw_and_folded_by_aggregations() {
    let dir = tempfile::tempdir().unwrap();
    let node = local_node(dir.path());
    // Host a: bucket (0, 1000] gets {1, 2, 3} and {4}; (1000, 2000] gets {10, 20}.
    let (status, reply) = write(&node, "a", &[(1500, &[10.0, 20.0]), (100, &[1.0, 2.0, 3.0]), (900, &[4.0])]);
    assert_eq!(status, 200, "{reply}");
    // Host b: (0, 1000] gets {5, 6}.
    let (status, reply) = write(&node, "b", &[(500, &[5.0, 6.0])]);
    assert_eq!(status, 200, "{reply}");

    // Raw: one group per series, sorted, Heroic's spreads shape.
    let raw = query(&node, over_range(json!({})));
    let groups = raw["result"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{raw}");
    let a = groups.iter().find(|g| g["tags"]["host"] == "a").unwrap();
    assert_eq!(a["type"], "spreads", "{raw}");
    assert_eq!(
        a["values"],
        json!([[100, {"count": 3, "sum": 6.0, "sum2": 14.0, "min": 1.0, "max": 3.0}],
               [900, {"count": 1, "sum": 4.0, "sum2": 16.0, "min": 4.0, "max": 4.0}],
               [1500, {"count": 2, "sum": 30.0, "sum2": 500.0, "min": 10.0, "max": 20.0}]]),
        "{raw}"
    );

    // Every series together, 1 s buckets: (0, 1000] holds 1..6, (1000, 2000] holds 10, 20.
    let agg = |kind: &str| query(&node, over_range(json!({"aggregation": {"type": kind, "size": "1s"}})));
    assert_eq!(only_points(&agg("sum")), vec![(1000, 21.0), (2000, 30.0)]);
    assert_eq!(only_points(&agg("sum2")), vec![(1000, 91.0), (2000, 500.0)]);
    assert_eq!(only_points(&agg("average")), vec![(1000, 3.5), (2000, 15.0)]);
    assert_eq!(only_points(&agg("min")), vec![(1000, 1.0), (2000, 10.0)]);
    assert_eq!(only_points(&agg("max")), vec![(1000, 6.0), (2000, 20.0)]);
    // Each spread is one sample: three in the first bucket, one in the second.
    assert_eq!(only_points(&agg("count")), vec![(1000, 3.0), (2000, 1.0)]);
    // Population standard deviation of 1..6 is √(35/12); of {10, 20} it is 5.
    let sd = only_points(&agg("stddev"));
    assert_eq!(sd.len(), 2, "{sd:?}");
    assert!((sd[0].1 - (35.0f64 / 12.0).sqrt()).abs() < 1e-9, "{sd:?}");
    assert!((sd[1].1 - 5.0).abs() < 1e-9, "{sd:?}");
    let merged = agg("spread");
    assert_eq!(
        merged["result"][0]["values"],
        json!([[1000, {"count": 6, "sum": 21.0, "sum2": 91.0, "min": 1.0, "max": 6.0}],
               [2000, {"count": 2, "sum": 30.0, "sum2": 500.0, "min": 10.0, "max": 20.0}]]),
        "{merged}"
    );
    // Grouped by host: each host folds its own spreads.
    let by_host = query(
        &node,
        over_range(json!({"aggregation": {"type": "group", "of": ["host"], "each": {"type": "sum", "size": "1s"}}})),
    );
    let groups = by_host["result"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{by_host}");
    let b = groups.iter().find(|g| g["tags"]["host"] == "b").unwrap();
    assert_eq!(b["values"], json!([[1000, 11.0]]), "{by_host}");

    // The points of the same series are another collection: not mixed in.
    let points = json!({"series": {"key": "latency", "tags": {"host": "a"}},
                        "data": {"type": "points", "data": [[700, 1000.0]]}});
    assert_eq!(node.post("/write", &points).0, 200);
    assert_eq!(only_points(&agg("max")), vec![(1000, 6.0), (2000, 20.0)], "spreads only");
    let pts = query(&node, over_range(json!({"source": "points"})));
    assert_eq!(pts["result"][0]["values"], json!([[700, 1000.0]]), "{pts}");
}

#[test]
fn bad_spreads_are_json_errors_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let node = local_node(dir.path());
    let bodies = [
        (json!([[1, {"count": 1, "sum": 1.0, "sum2": 1.0, "min": 1.0}]]), "max"),
        (json!([[1, {"count": -2, "sum": 1.0, "sum2": 1.0, "min": 1.0, "max": 1.0}]]), "count"),
        (json!([[1, 2.0]]), "spread"),
    ];
    for (data, word) in bodies {
        let body = json!({"series": {"key": "latency"}, "data": {"type": "spreads", "data": data}});
        let (status, reply) = node.post("/write", &body);
        assert_eq!(status, 400, "{reply}");
        assert_eq!(reply["type"], "json-error", "{reply}");
        assert!(reply["path"].as_str().unwrap().starts_with("data"), "{reply}");
        let message = reply["message"].as_str().unwrap();
        assert!(message.contains(word) || message.contains("invalid"), "{word}: {reply}");
    }
    let raw = query(&node, over_range(json!({})));
    assert_eq!(raw["result"], json!([]), "{raw}");
}

#[test]
fn a_backend_that_cannot_store_spreads_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[server]\nlisten = \"127.0.0.1:{port}\"\n[plugins]\ndirs = [\"{plugins}\"]\n\
         [[metrics]]\nplugin = \"faulty\"\n\
         [[metadata]]\nplugin = \"local\"\n[metadata.config]\ndata_dir = \"{dir}/md\"\n";
    let node = Node::start(dir.path(), config);
    let (status, reply) = write(&node, "a", &[(1, &[1.0])]);
    assert_eq!(status, 400, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("cannot be stored"), "{reply}");

    // In a batch the spreads query carries the error; the points query is unaffected.
    let body =
        json!({"series": {"key": "latency", "tags": {"host": "a"}}, "data": {"type": "points", "data": [[10, 1.0]]}});
    assert_eq!(node.post("/write", &body).0, 200);
    let batch = json!({"queries": {
        "points": over_range(json!({"source": "points"})),
        "spreads": over_range(json!({"aggregation": {"type": "sum", "size": "1s"}})),
    }});
    let (status, reply) = node.post("/query/batch", &batch);
    assert_eq!(status, 200, "{reply}");
    let r = &reply["results"];
    assert_eq!(r["points"]["result"][0]["values"], json!([[10, 1.0]]), "{reply}");
    assert_eq!(r["spreads"]["result"], json!([]), "{reply}");
    assert_eq!(r["spreads"]["errors"][0]["type"], "query", "{reply}");
    assert!(r["spreads"]["errors"][0]["error"].as_str().unwrap().contains("spreads"), "{reply}");
}
