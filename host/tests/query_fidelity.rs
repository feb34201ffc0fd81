//! Heroic's answers, item by item of the compatibility spec
//! (shared/spec/heroic-compat.md), on the real binary with the `local`
//! plugin: `commonTags` (§1), a batch whose failing queries are answered on
//! their own (§2), the trace (§4), and `tpl` / `group-unique` (§12). Limits
//! (§5) are in query_api.rs, a failed fetch in plugin_faults.rs, the Grafana
//! data source (§13) in grafana_datasource.rs.

mod common;

use common::{local_config, Node};
use serde_json::{json, Value};

fn write(node: &Node, series: Value, points: Value) {
    let (status, reply) = node.post("/write", &json!({"series": series, "data": {"type": "points", "data": points}}));
    assert_eq!(status, 200, "{reply}");
}

/// Heroic's cluster test data, s1 = {10:1, 30:2} on shard a (site lon,
/// resource pod p1), s2 = {10:1, 20:4} on shard b (no site, pod p2).
fn fixture() -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    let a = json!({"key": "test", "tags": {"shard": "a", "site": "lon"}, "resource": {"pod": "p1"}});
    write(&node, a, json!([[10, 1.0], [30, 2.0]]));
    let b = json!({"key": "test", "tags": {"shard": "b"}, "resource": {"pod": "p2"}});
    write(&node, b, json!([[10, 1.0], [20, 4.0]]));
    (dir, node)
}

/// A query over `$key = test` in (0, 40], without shift_range.
fn query(aggregation: Value) -> Value {
    json!({
        "aggregation": aggregation,
        "filter": ["key", "test"],
        "range": {"type": "absolute", "start": 0, "end": 40},
        "features": ["-shift_range"],
    })
}

fn metrics(node: &Node, body: &Value) -> Value {
    let (status, reply) = node.post("/query/metrics", body);
    assert_eq!(status, 200, "{body}: {reply}");
    reply
}

#[test]
fn common_tags_are_the_keys_of_every_group() {
    let (_dir, node) = fixture();
    // Two groups: `site` is only in shard a's, so it is not common.
    let by_shard = json!({"type": "group", "of": ["shard"], "each": {"type": "sum", "size": "10ms"}});
    let reply = metrics(&node, &query(by_shard));
    assert_eq!(reply["result"].as_array().unwrap().len(), 2, "{reply}");
    assert_eq!(reply["commonTags"], json!({"shard": ["a", "b"]}), "{reply}");
    assert_eq!(reply["commonResource"], json!({"pod": ["p1", "p2"]}), "{reply}");
    // One group holding both series: every key of it is common.
    let reply = metrics(&node, &query(json!({"type": "sum", "size": "10ms"})));
    assert_eq!(reply["commonTags"], json!({"shard": ["a", "b"], "site": ["lon"]}), "{reply}");
    // No groups: nothing in common.
    let mut none = query(json!({"type": "sum", "size": "10ms"}));
    none["filter"] = json!(["key", "nothing"]);
    let reply = metrics(&node, &none);
    assert_eq!((&reply["result"], &reply["commonTags"]), (&json!([]), &json!({})), "{reply}");
}

/// Asserts an `errors` entry of Heroic's shard shape.
fn assert_shard_error(reply: &Value, contains: &str) {
    assert_eq!(reply["result"], json!([]), "{reply}");
    let errors = reply["errors"].as_array().unwrap_or_else(|| panic!("{reply}"));
    assert_eq!(errors.len(), 1, "{reply}");
    let e = &errors[0];
    assert_eq!(e["type"], "shard", "{reply}");
    assert_eq!((e["nodes"].is_array(), &e["shard"]), (true, &json!({})), "{reply}");
    assert!(e["error"].as_str().unwrap().contains(contains), "{reply}");
}

fn assert_query_error(reply: &Value, contains: &str) {
    assert_eq!(reply["result"], json!([]), "{reply}");
    assert_eq!(reply["errors"].as_array().map(Vec::len), Some(1), "{reply}");
    assert_eq!(reply["errors"][0]["type"], "query", "{reply}");
    assert!(reply["errors"][0]["error"].as_str().unwrap().contains(contains), "{reply}");
}

#[test]
fn a_batch_answers_each_query_on_its_own() {
    let (_dir, node) = fixture();
    let sampled = |sampling: Value| json!({"type": "sum", "sampling": sampling});
    let mut no_series = query(json!({"type": "sum", "size": "10ms"}));
    no_series["filter"] = json!(["key", "nothing"]);
    // A source no plugin interface carries: an error of that query alone.
    let mut unstored = query(Value::Null);
    unstored["source"] = json!("cardinality");
    let mut wide = query(json!({"type": "sum", "size": "1ms"}));
    wide["range"] = json!({"type": "absolute", "start": 0, "end": 100_001});
    let batch = json!({"queries": {
        "ok": query(json!({"type": "sum", "size": "10ms"})),
        // Grafana's 200 ms interval, over (0, 40 s]: one bucket at 200.
        "subSecond": {"aggregation": sampled(json!({"unit": "seconds", "value": 0.2})), "filter": ["key", "test"],
                      "range": {"type": "absolute", "start": 0, "end": 40_000}, "features": ["-shift_range"]},
        // No time group-by: the default size.
        "nullSampling": query(sampled(json!({"unit": "seconds", "value": null}))),
        // Under a millisecond: no bucket can be laid out.
        "zeroSize": query(sampled(json!({"unit": "seconds", "value": 0.0001}))),
        "tooManyBuckets": wide,
        "tdigest": query(json!({"type": "group", "of": null, "each": [{"type": "tdigest", "sampling": {"unit": "seconds", "value": 1}}]})),
        "unstored": unstored,
        "noSeries": no_series,
    }});
    let (status, reply) = node.post("/query/batch", &batch);
    assert_eq!(status, 200, "{reply}");
    let r = &reply["results"];
    assert_eq!(r.as_object().unwrap().len(), 8, "{reply}");

    assert_eq!(r["ok"]["errors"], json!([]), "{reply}");
    assert_eq!(r["ok"]["result"][0]["values"], json!([[10, 2.0], [20, 4.0], [30, 2.0]]), "{reply}");
    assert_eq!(r["subSecond"]["result"][0]["values"], json!([[200, 8.0]]), "{reply}");
    assert_eq!(r["subSecond"]["result"][0]["cadence"], 200, "{reply}");
    assert_eq!(r["nullSampling"]["errors"], json!([]), "{reply}");
    assert_eq!(r["nullSampling"]["result"][0]["cadence"], 1, "{reply}");
    assert_shard_error(&r["zeroSize"], "bucket size 0 ms");
    assert_shard_error(&r["tooManyBuckets"], "100001 buckets");
    // Read like any bucketed aggregation now: 1 s buckets over (0, 40 ms]
    // cannot be laid out, an error of this query alone.
    assert_shard_error(&r["tdigest"], "0 buckets");
    assert_query_error(&r["unstored"], "cardinality");
    assert_eq!((&r["noSeries"]["result"], &r["noSeries"]["errors"]), (&json!([]), &json!([])), "{reply}");

    // A batch without queries; one whose body does not map is refused whole.
    let (status, reply) = node.post("/query/batch", &json!({}));
    assert_eq!((status, reply), (200, json!({"results": {}})));
    let bad = json!({"queries": {"ok": query(Value::Null), "bad": query(json!({"type": "frobnicate"}))}});
    let (status, reply) = node.post("/query/batch", &bad);
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["path"], "queries.bad.aggregation.type", "{reply}");
}

/// The names down the first child of each level of a trace.
fn trace_path(trace: &Value) -> Vec<String> {
    let mut names = Vec::new();
    let mut at = trace;
    while at.is_object() {
        assert!(at["elapsed"].is_u64(), "{trace}");
        names.push(at["what"]["name"].as_str().unwrap().to_string());
        at = &at["children"][0];
    }
    names
}

#[test]
fn the_trace_is_always_an_object() {
    let (_dir, node) = fixture();
    let top = "com.spotify.heroic.CoreQueryManager#query";
    let with = |tracing: Value| {
        let mut body = query(json!({"type": "sum", "size": "10ms"}));
        if !tracing.is_null() {
            body["options"] = json!({"tracing": tracing});
        }
        metrics(&node, &body)["trace"].clone()
    };
    let shard_path = vec![
        top.to_string(),
        "com.spotify.heroic.CoreQueryManager#query_shard[{}]".to_string(),
        "[local]#query".to_string(),
        "com.spotify.heroic.metric.LocalMetricManager#query".to_string(),
    ];
    // Absent means "default".
    for tracing in [Value::Null, json!(true), json!("DEFAULT")] {
        let trace = with(tracing.clone());
        assert_eq!(trace_path(&trace), shard_path, "{tracing}: {trace}");
        assert_eq!(trace["children"][0]["children"][0]["children"][0]["children"], json!([]), "{trace}");
    }
    // Off: the top level stays, one null per shard.
    for tracing in [json!(false), json!("none")] {
        let trace = with(tracing.clone());
        assert_eq!(trace["what"]["name"], top, "{tracing}: {trace}");
        assert_eq!(trace["children"], json!([null]), "{tracing}: {trace}");
    }
    // Detailed: one entry per fetch under the metric manager (a fetch the
    // plugin folds into buckets is named for it, see docs/query.md).
    let trace = with(json!("detailed"));
    let fetches = &trace["children"][0]["children"][0]["children"][0]["children"];
    assert!(!fetches.as_array().unwrap().is_empty(), "{trace}");
    let name = fetches[0]["what"]["name"].as_str().unwrap_or_default();
    assert!(
        [
            "com.spotify.heroic.metric.LocalMetricManager#fetch",
            "com.spotify.heroic.metric.LocalMetricManager#fetch_buckets"
        ]
        .contains(&name),
        "{trace}"
    );
}

#[test]
fn template_and_group_unique_aggregations() {
    let (_dir, node) = fixture();
    let reply = metrics(&node, &query(json!({"type": "tpl", "size": "10ms"})));
    assert_eq!(reply["result"][0]["values"], json!([[10, 0.0], [20, 0.0], [30, 0.0], [40, 0.0]]), "{reply}");

    let unique = json!({"type": "group-unique", "sampling": {"unit": "milliseconds", "value": 20}});
    let reply = metrics(&node, &query(unique));
    let group = &reply["result"][0];
    assert_eq!(group["type"], "groups", "{reply}");
    // At 10 both series have a sample; the first (shard a's) is kept.
    let want = json!([
        [20, [{"type": "points", "data": [[10, 1.0], [20, 4.0]]}]],
        [40, [{"type": "points", "data": [[30, 2.0]]}]],
    ]);
    assert_eq!(group["values"], want, "{reply}");
    assert_eq!(group["cadence"], 20, "{reply}");
}
