//! Aggregation pushdown (`fetch_buckets`, interface 1.3) over HTTP, on the
//! real binary: the same queries answered by three nodes holding the same
//! points must agree.
//!
//! - `local`: folds into buckets while it decodes (its own `fetch_buckets`);
//! - `faulty` with `fetch_buckets = true`: the SDK's fold over `fetch`;
//! - `faulty` without it: points cross the boundary and the host folds them.
//!
//! And a plugin that answers malformed partials is a shard error of that
//! query, not a crash or a wrong answer.

mod common;

use common::Node;
use serde_json::{json, Value};

fn node(dir: &std::path::Path, metrics: &str) -> Node {
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{{port}}\"\n[plugins]\ndirs = [\"{{plugins}}\"]\n\
         [[metrics]]\n{metrics}\n\
         [[metadata]]\nplugin = \"local\"\n[metadata.config]\ndata_dir = \"{{dir}}/md\"\n"
    );
    Node::start(dir, &config)
}

/// Twelve series on four hosts and two roles, each with points at its own
/// irregular timestamps in `(0, 10000]`, values with two decimals.
fn write_data(node: &Node) {
    for i in 0..12i64 {
        let data: Vec<Value> = (0..40i64)
            .map(|j| {
                let t = 1 + j * 250 + (i * 37 + j * 11) % 200;
                let v = ((i * 131 + j * 71) % 2001 - 1000) as f64 / 100.0;
                json!([t, v])
            })
            .collect();
        let tags = json!({"host": format!("h{}", i % 4), "role": if i % 3 == 0 { "db" } else { "web" },
                          "instance": format!("i{i}")});
        let body = json!({"series": {"key": "cpu", "tags": tags}, "data": {"type": "points", "data": data}});
        let (status, reply) = node.post("/write", &body);
        assert_eq!(status, 200, "{reply}");
    }
}

fn query(node: &Node, aggregation: Value, features: Value) -> Value {
    let body = json!({
        "filter": ["key", "cpu"],
        "range": {"type": "absolute", "start": 0, "end": 10_000},
        "features": features,
        "aggregation": aggregation,
        "options": {"tracing": "DETAILED"},
    });
    let (status, reply) = node.post("/query/metrics", &body);
    assert_eq!(status, 200, "{reply}");
    reply
}

/// The names of the fetch calls in a detailed trace.
fn fetch_calls(reply: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        if let Some(name) = v["what"]["name"].as_str() {
            if let Some((_, call)) = name.rsplit_once("#fetch") {
                out.push(format!("fetch{call}"));
            }
        }
        for child in v["children"].as_array().into_iter().flatten() {
            walk(child, out);
        }
    }
    walk(&reply["trace"], &mut out);
    out
}

/// A value as text with every number to 9 decimals: sums folded in
/// another order differ in the last bits.
fn rounded(v: &Value) -> String {
    match v {
        Value::Number(n) => format!("{:.9}", n.as_f64().unwrap()),
        Value::Object(m) => m.iter().map(|(k, v)| format!("{k}={}", rounded(v))).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A group as compared: its tags, what else a client reads of it, its
/// values rounded.
type Group = (String, Value, Vec<(i64, String)>);

/// The groups of an answer, sorted by their tags, with what a client
/// reads of them (values to 1e-9).
fn groups(reply: &Value) -> Vec<Group> {
    let mut out: Vec<Group> = reply["result"]
        .as_array()
        .unwrap_or_else(|| panic!("no result: {reply}"))
        .iter()
        .map(|g| {
            let values =
                g["values"].as_array().unwrap().iter().map(|p| (p[0].as_i64().unwrap(), rounded(&p[1]))).collect();
            (g["tags"].to_string(), json!([g["tagCounts"], g["key"], g["cadence"]]), values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn pushed_down_aggregations_answer_as_the_points_do() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = [
        node(dirs[0].path(), "plugin = \"local\"\n[metrics.config]\ndata_dir = \"{dir}/m\""),
        node(dirs[1].path(), "plugin = \"faulty\"\n[metrics.config]\nfetch_buckets = true"),
        node(dirs[2].path(), "plugin = \"faulty\""),
    ];
    for n in &nodes {
        write_data(n);
    }
    let each = |kind: &str, size: &str| json!({"type": kind, "size": size});
    let cases = [
        (each("sum", "1s"), json!([])),
        (each("sum2", "1s"), json!([])),
        (each("average", "2s"), json!([])),
        (each("min", "500ms"), json!([])),
        (each("max", "1s"), json!(["-shift_range"])),
        (each("count", "1s"), json!([])),
        (each("spread", "1s"), json!([])),
        (json!({"type": "sum", "size": "1s", "extent": "3s"}), json!([])),
        (each("sum", "1s"), json!(["-end_bucket_stategy"])),
        (json!({"type": "group", "of": ["host"], "each": each("average", "1s")}), json!([])),
        (json!({"type": "group", "of": ["role", "host"], "each": each("max", "2s")}), json!([])),
        (json!({"type": "collapse", "of": ["host"], "each": each("sum", "1s")}), json!([])),
        (json!({"type": "group", "of": null, "each": each("count", "5s")}), json!([])),
        // Not pushed down (13 and on): still the same on every node.
        (each("stddev", "1s"), json!([])),
        (json!({"type": "chain", "chain": [each("sum", "1s"), each("max", "2s")]}), json!([])),
    ];
    for (i, (aggregation, features)) in cases.into_iter().enumerate() {
        let answers: Vec<Value> = nodes.iter().map(|n| query(n, aggregation.clone(), features.clone())).collect();
        // The first 13 cases are pushed down where the backend can fold;
        // the others are read point by point everywhere.
        let pushed = i < 13;
        for (node, answer) in answers.iter().enumerate() {
            let want = if pushed && node < 2 { "fetch_buckets" } else { "fetch" };
            let calls = fetch_calls(answer);
            assert!(!calls.is_empty() && calls.iter().all(|c| c == want), "{aggregation} on node {node}: {calls:?}");
        }
        let local = groups(&answers[0]);
        assert!(!local.is_empty() && !local[0].2.is_empty(), "{aggregation}: no answer: {}", answers[0]);
        for (i, other) in answers.iter().enumerate().skip(1) {
            assert_eq!(local, groups(other), "{aggregation} {features}: node {i} differs");
            assert_eq!(answers[0]["errors"], json!([]), "{}", answers[0]);
        }
        // Every point in the range was read, whichever way.
        let sizes: Vec<&Value> = answers.iter().map(|a| &a["preAggregationSampleSize"]).collect();
        assert!(sizes.iter().all(|s| *s == sizes[0]), "{aggregation}: sample sizes {sizes:?}");
    }
}

/// Two metric backends that both fold: each reads every series (the host
/// moves the series into their groups only after the last backend's call),
/// so every count doubles and the groups' tags are those of one backend.
#[test]
fn every_folding_backend_reads_every_series() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let one = node(dirs[0].path(), "plugin = \"local\"\n[metrics.config]\ndata_dir = \"{dir}/m\"");
    let two = node(
        dirs[1].path(),
        "id = \"a\"\nplugin = \"local\"\n[metrics.config]\ndata_dir = \"{dir}/m\"\n\
         [[metrics]]\nid = \"b\"\nplugin = \"faulty\"\n[metrics.config]\nfetch_buckets = true",
    );
    write_data(&one);
    write_data(&two);
    let aggregation = json!({"type": "group", "of": ["host"], "each": {"type": "count", "size": "1s"}});
    let single = groups(&query(&one, aggregation.clone(), json!([])));
    let double = query(&two, aggregation, json!([]));
    assert_eq!(fetch_calls(&double), ["fetch_buckets", "fetch_buckets"], "{double}");
    let double = groups(&double);
    assert_eq!(single.len(), 4, "{single:?}");
    for (a, b) in single.iter().zip(&double) {
        assert_eq!((&a.0, &a.1), (&b.0, &b.1), "tags and series of a group");
        let doubled: Vec<(i64, String)> =
            a.2.iter().map(|(t, v)| (*t, format!("{:.9}", 2.0 * v.parse::<f64>().unwrap()))).collect();
        assert_eq!(doubled, b.2, "counts of {}", a.0);
    }
}

#[test]
fn malformed_partials_or_a_panic_in_a_bucket_fetch_are_shard_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = node(dir.path(), "plugin = \"faulty\"\n[metrics.config]\nfetch_buckets = true\nbad_partials = true");
    write_data(&bad);
    let reply = query(&bad, json!({"type": "sum", "size": "1s"}), json!([]));
    assert_eq!(reply["result"], json!([]), "{reply}");
    let error = &reply["errors"][0];
    assert_eq!(error["type"], "shard", "{reply}");
    assert!(error["error"].as_str().unwrap().contains("bucket partials"), "{reply}");
    // Raw points do not use the bucket fetch: still answered.
    let raw = query(&bad, Value::Null, json!([]));
    assert_eq!(raw["result"].as_array().unwrap().len(), 12, "{raw}");

    let dir = tempfile::tempdir().unwrap();
    let panics =
        node(dir.path(), "plugin = \"faulty\"\n[metrics.config]\nfetch_buckets = true\npanic_on_key = \"cpu\"");
    let (status, _) =
        panics.request("PUT", "/metadata/series", Some(json!({"key": "cpu"}).to_string()), "application/json");
    assert_eq!(status, 200);
    let reply = query(&panics, json!({"type": "max", "size": "1s"}), json!([]));
    assert_eq!(reply["errors"][0]["type"], "shard", "{reply}");
    assert!(reply["errors"][0]["error"].as_str().unwrap().contains("panicked"), "{reply}");
    // The node still answers.
    assert_eq!(panics.get("/status").0, 200);
}
