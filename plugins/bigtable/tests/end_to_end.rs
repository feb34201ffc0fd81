//! The real `heroic` binary with `examples/bigtable.toml` (Bigtable metrics
//! on the emulator, `local` metadata and suggest): writes over HTTP, then
//! queries with aggregations over HTTP.
//!
//! The node harness is the plugin-api testkit's (`testkit::node`). `heroic`
//! belongs to another package: the harness looks for it in
//! `target/<profile>/`, next to the plugin libraries, and fails with a hint
//! when it is not built (build the whole workspace first:
//! `cargo build --workspace`).

mod common;

use heroic_plugin_api::testkit::node::Node;
use serde_json::{json, Value};

/// `examples/bigtable.toml` itself (not a copy that could drift from it)
/// with the harness's port, plugin directory and data directory and the
/// test's table.
fn config(table: &str) -> String {
    let example = std::fs::read_to_string(common::workspace_root().join("examples/bigtable.toml")).unwrap();
    let mut text = example;
    for (starts, with) in [
        ("listen =", "listen = \"127.0.0.1:{port}\"".to_string()),
        ("table =", format!("table = \"{table}\"")),
        ("dirs =", "dirs = [\"{plugins}\"]".to_string()),
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(starts)),
            "examples/bigtable.toml has no line starting with {starts:?}"
        );
        text = text
            .lines()
            .map(|l| if l.starts_with(starts) { with.clone() } else { l.to_string() })
            .collect::<Vec<_>>()
            .join("\n");
    }
    text.replace("\"./data/", "\"{dir}/data/")
}

fn start(dir: &std::path::Path, table: &str) -> Node {
    Node::start_with_env(dir, &config(table), &[("BIGTABLE_EMULATOR_HOST", None)])
}

fn values(response: &Value) -> Vec<(i64, f64)> {
    let groups = response["result"].as_array().unwrap_or_else(|| panic!("no result in {response}"));
    assert_eq!(groups.len(), 1, "one group expected: {response}");
    heroic_plugin_api::testkit::node::values(&groups[0])
}

#[test]
fn heroic_with_bigtable_writes_and_queries_over_http() {
    common::ensure_emulator();
    let dir = tempfile::tempdir().unwrap();
    let table = common::unique_table("e2e");
    let node = start(dir.path(), &table);

    // Heroic's AbstractClusterQueryIT data: s1 = {10:1, 30:2}, s2 = {10:1, 20:4},
    // shifted to seconds so 10 s buckets hold one point per series.
    for (host, points) in [("a", json!([[10_000, 1.0], [30_000, 2.0]])), ("b", json!([[10_000, 1.0], [20_000, 4.0]]))] {
        let body = json!({
            "series": { "key": "e2e-cpu", "tags": { "host": host } },
            "data": { "type": "points", "data": points },
        });
        let (status, answer) = node.post("/write", &body);
        assert_eq!(status, 200, "write: {answer}; log:\n{}", node.log());
    }

    let query = |aggregation: Value| {
        json!({
            "range": { "type": "absolute", "start": 0, "end": 100_000 },
            "filter": ["key", "e2e-cpu"],
            "aggregation": aggregation,
        })
    };
    let sum = json!({ "type": "sum", "sampling": { "unit": "seconds", "value": 10 } });
    let (status, answer) = node.post("/query/metrics", &query(sum));
    assert_eq!(status, 200, "query: {answer}; log:\n{}", node.log());
    assert_eq!(answer["errors"].as_array().map_or(0, Vec::len), 0, "errors: {answer}");
    assert_eq!(values(&answer), vec![(10_000, 2.0), (20_000, 4.0), (30_000, 2.0)], "{answer}");

    let max = json!({ "type": "max", "sampling": { "unit": "seconds", "value": 20 } });
    let (status, answer) = node.post("/query/metrics", &query(max));
    assert_eq!(status, 200, "query: {answer}");
    let got = values(&answer);
    // Whatever the bucket alignment, the largest bucket maximum is 4 and
    // every bucket maximum is one of the values written.
    assert!(got.iter().any(|p| p.1 == 4.0), "max over 20 s buckets: {answer}");
    assert!(got.iter().all(|p| [1.0, 2.0, 4.0].contains(&p.1)), "max over 20 s buckets: {answer}");

    // The only metric backend is the Bigtable plugin, and it reports healthy.
    let status: Value = reqwest::blocking::get(node.url("/status")).unwrap().json().unwrap();
    let components = status["components"].as_array().unwrap_or_else(|| panic!("status: {status}"));
    let bigtable = components.iter().find(|c| c["role"] == "metrics").unwrap_or_else(|| panic!("status: {status}"));
    assert_eq!(bigtable["ok"], true, "status: {status}");
}
