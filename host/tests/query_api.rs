//! The query API over HTTP on the real binary with the `local` plugin:
//! Heroic's cluster test cases (AbstractClusterQueryIT) with their exact
//! values, limits, the Grafana data source's `/query/batch` body and filter
//! sugar, the parser endpoints, and 400s that say what and where.

mod common;

use common::{local_config, Node};
use serde_json::{json, Value};

fn write(node: &Node, key: &str, shard: &str, points: Value) {
    let body = json!({"series": {"key": key, "tags": {"shard": shard}}, "data": {"type": "points", "data": points}});
    let (status, reply) = node.post("/write", &body);
    assert_eq!(status, 200, "{reply}");
}

/// Heroic's cluster test data: s1 = {10:1, 30:2}, s2 = {10:1, 20:4}, as
/// two distinct series of key `test`.
fn cluster_fixture() -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    write(&node, "test", "a", json!([[10, 1.0], [30, 2.0]]));
    write(&node, "test", "b", json!([[10, 1.0], [20, 4.0]]));
    (dir, node)
}

/// Runs `aggregation` over `$key = test` in (0, 40], without shift_range.
fn query_with(node: &Node, aggregation: &str, options: Value) -> (u16, Value) {
    let body = json!({
        "query": format!("{aggregation} where $key = test"),
        "range": {"type": "absolute", "start": 0, "end": 40},
        "features": ["-com.spotify.heroic.shift_range"],
        "options": options,
    });
    node.post("/query/metrics", &body)
}

fn query(node: &Node, aggregation: &str) -> Value {
    let (status, reply) = query_with(node, aggregation, json!({}));
    assert_eq!(status, 200, "{aggregation}: {reply}");
    assert_eq!(reply["errors"], json!([]), "{aggregation}: {reply}");
    reply
}

fn only_group(reply: &Value) -> &Value {
    let groups = reply["result"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{reply}");
    &groups[0]
}

#[test]
fn heroic_cluster_query_cases() {
    let (_dir, node) = cluster_fixture();

    // basicQueryTest: one group of the two series.
    let reply = query(&node, "sum(10ms)");
    let g = only_group(&reply);
    assert_eq!(g["values"], json!([[10, 2.0], [20, 4.0], [30, 2.0]]));
    assert_eq!(g["cadence"], 10);
    assert_eq!(g["type"], "points");
    assert_eq!(g["key"], "test");
    assert_eq!(g["tagCounts"], json!({"shard": 2}));
    assert_eq!(reply["range"], json!({"start": 0, "end": 40}));
    assert_eq!(reply["limits"], json!([]));
    assert_eq!(reply["preAggregationSampleSize"], 4);
    assert_eq!(reply["commonTags"], json!({"shard": ["a", "b"]}));

    // filterQueryTest: per series, the 2 largest, then the smallest of those.
    let reply = query(&node, "average(10ms) by * | topk(2) | bottomk(1)");
    let g = only_group(&reply);
    assert_eq!(g["values"], json!([[10, 1.0], [20, 4.0]]));
    assert_eq!(g["tags"], json!({"shard": "b"}));

    // deltaPerSecondQueryTest.
    let reply = query(&node, "max | deltaPerSecond | notNegative");
    assert_eq!(only_group(&reply)["values"], json!([[20, 300.0]]));

    // cardinalityTest: an empty bucket counts 0.
    let reply = query(&node, "cardinality(10ms)");
    assert_eq!(only_group(&reply)["values"], json!([[10, 1.0], [20, 1.0], [30, 1.0], [40, 0.0]]));

    // The same sum as a JSON aggregation and a JSON filter.
    let body = json!({
        "aggregation": {"type": "sum", "sampling": {"unit": "milliseconds", "value": 10}},
        "filter": ["and", ["key", "test"], ["+", "shard"]],
        "range": {"type": "absolute", "start": 0, "end": 40},
        "features": ["-shift_range"],
    });
    let (status, reply) = node.post("/query/metrics", &body);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(only_group(&reply)["values"], json!([[10, 2.0], [20, 4.0], [30, 2.0]]));

    // A text/plain HQL body with a charset.
    let (status, reply) = node.request(
        "POST",
        "/query/metrics",
        Some("sum(10ms) from points(0, 40) where $key = test and shard = a".into()),
        "text/plain;charset=UTF-8",
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(only_group(&reply)["values"], json!([[10, 1.0], [30, 2.0]]));
}

#[test]
fn limits_are_reported_or_fail_the_query() {
    let (_dir, node) = cluster_fixture();

    // dataLimit: 4 points read, 3 allowed → QUOTA, an error, no groups.
    let (status, reply) = query_with(&node, "sum(10ms)", json!({"dataLimit": 3}));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["limits"], json!(["QUOTA"]));
    assert_eq!(reply["result"], json!([]));
    assert_eq!(reply["errors"], json!([{"type": "query", "error": "Query exceeded quota"}]), "{reply}");
    // Exactly the limit is fine.
    let (_, reply) = query_with(&node, "sum(10ms)", json!({"dataLimit": 4}));
    assert_eq!(reply["limits"], json!([]), "{reply}");
    assert_eq!(only_group(&reply)["values"], json!([[10, 2.0], [20, 4.0], [30, 2.0]]));

    // testGroupLimit: limits=[GROUP], one group kept, no error.
    let (status, reply) = query_with(&node, "sum(10ms) by shard", json!({"groupLimit": 1}));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["limits"], json!(["GROUP"]));
    assert_eq!(reply["errors"], json!([]));
    assert_eq!(reply["result"].as_array().unwrap().len(), 1);

    // seriesLimit: one of the two series.
    let (status, reply) = query_with(&node, "sum(10ms)", json!({"seriesLimit": 1}));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["limits"], json!(["SERIES"]));
    assert_eq!(only_group(&reply)["values"].as_array().unwrap().len(), 2, "{reply}");

    // groupLimitFailure, seriesLimitFailure, and the data and aggregation
    // limits with failOnLimits: still 200 (a batch keeps its other queries),
    // no groups, the limit and Heroic's message.
    for (options, limit, error) in [
        (
            json!({"groupLimit": 1, "failOnLimits": true}),
            "GROUP",
            "The number of result groups is more than the allowed limit of [1]",
        ),
        (
            json!({"seriesLimit": 1, "failOnLimits": true}),
            "SERIES",
            "The number of series requested is more than the allowed limit of [1]",
        ),
        (json!({"dataLimit": 3, "failOnLimits": true}), "QUOTA", "Query exceeded quota"),
        // The buckets of a group count when the group sees data: while reading.
        (json!({"aggregationLimit": 2, "failOnLimits": true}), "AGGREGATION", "Query exceeded quota"),
    ] {
        let (status, reply) = query_with(&node, "sum(10ms) by shard", options.clone());
        assert_eq!(status, 200, "{options}: {reply}");
        assert_eq!(reply["result"], json!([]), "{options}: {reply}");
        assert_eq!(reply["limits"], json!([limit]), "{options}: {reply}");
        assert_eq!(reply["errors"], json!([{"type": "query", "error": error}]), "{options}: {reply}");
    }
    // Exactly groupLimit groups is not over it (Heroic flagged it, a quirk).
    let (_, reply) = query_with(&node, "sum(10ms) by shard", json!({"groupLimit": 2, "failOnLimits": true}));
    assert_eq!((&reply["limits"], reply["result"].as_array().unwrap().len()), (&json!([]), 2), "{reply}");

    // aggregationLimit: 2 groups of 40 buckets held, 2 allowed.
    let (status, reply) = query_with(&node, "sum(1ms) by shard", json!({"aggregationLimit": 2}));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["limits"], json!(["AGGREGATION"]), "{reply}");
}

#[test]
fn aggregation_limit_counts_top_level_buckets() {
    let (_dir, node) = cluster_fixture();

    // sum(1ms) over (0, 40] with no group sets up 40 buckets.
    let (status, reply) = query_with(&node, "sum(1ms)", json!({"aggregationLimit": 39}));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["limits"], json!(["AGGREGATION"]), "{reply}");
    assert_eq!(reply["result"], json!([]), "{reply}");
    let setup = json!([{"type": "query", "error": "aggregation needs to retain more data then what is allowed: 39"}]);
    assert_eq!(reply["errors"], setup, "{reply}");
    // Exactly the limit is fine.
    let (_, reply) = query_with(&node, "sum(1ms)", json!({"aggregationLimit": 40}));
    assert_eq!(reply["limits"], json!([]), "{reply}");
    assert_eq!(only_group(&reply)["values"], json!([[10, 2.0], [20, 4.0], [30, 2.0]]));
    // A later chain step's buckets count too: 40 + 4.
    let (_, reply) = query_with(&node, "sum(1ms) | max(10ms)", json!({"aggregationLimit": 43}));
    assert_eq!(reply["limits"], json!(["AGGREGATION"]), "{reply}");

    // With failOnLimits, the same answer.
    let (status, reply) = query_with(&node, "sum(1ms)", json!({"aggregationLimit": 39, "failOnLimits": true}));
    assert_eq!(status, 200, "{reply}");
    assert_eq!((&reply["limits"], &reply["errors"]), (&json!(["AGGREGATION"]), &setup), "{reply}");

    // Over the fixed 100,000-bucket cap, whatever the limits: the shard
    // answers nothing, with the layout error (not a limit).
    let (status, reply) = query_with(&node, "sum(1ms) from points(0, 100001)", json!({"aggregationLimit": 10}));
    assert_eq!(status, 200, "{reply}");
    assert_eq!((&reply["result"], &reply["limits"]), (&json!([]), &json!([])), "{reply}");
    assert_eq!(reply["errors"][0]["type"], "shard", "{reply}");
    assert!(reply["errors"][0]["error"].as_str().unwrap().contains("100001 buckets"), "{reply}");
}

#[test]
fn configured_limits_are_ceilings_a_query_may_only_lower() {
    let dir = tempfile::tempdir().unwrap();
    let config = local_config()
        .replace("allow_anonymous = false", "allow_anonymous = true\naggregation_limit = 2\ngroup_limit = 1");
    let node = Node::start(dir.path(), &config);
    write(&node, "test", "a", json!([[10, 1.0], [30, 2.0]]));
    write(&node, "test", "b", json!([[10, 1.0], [20, 4.0]]));

    for aggregation in ["sum(1ms) by shard", "sum(1ms)"] {
        let (status, reply) = query_with(&node, aggregation, json!({}));
        assert_eq!(status, 200, "{aggregation}: {reply}");
        assert_eq!(reply["limits"], json!(["AGGREGATION"]), "{aggregation}: {reply}");
    }
    // Asking for more than the config allows changes nothing.
    let (_, reply) = query_with(&node, "sum(1ms) by shard", json!({"aggregationLimit": 1000, "groupLimit": 10}));
    assert_eq!(reply["limits"], json!(["AGGREGATION"]), "{reply}");
    let (_, reply) = query_with(&node, "sum(40ms) by shard", json!({"groupLimit": 10}));
    assert_eq!(reply["limits"], json!(["GROUP"]), "{reply}");
    assert_eq!(reply["result"].as_array().unwrap().len(), 1, "{reply}");
    // Asking for less is honoured.
    let (_, reply) = query_with(&node, "sum(40ms)", json!({"aggregationLimit": 0}));
    assert_eq!(reply["limits"], json!(["AGGREGATION"]), "{reply}");

    // allow_anonymous: no X-Client-Id needed.
    let raw = reqwest::blocking::Client::new()
        .post(node.url("/query/metrics"))
        .header("content-type", "text/plain")
        .body("sum(10ms) from points(0, 40) where $key = test")
        .send()
        .unwrap();
    assert_eq!(raw.status().as_u16(), 200);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The body the Grafana Heroic data source sends for one panel query.
fn grafana_batch(filter: Value) -> Value {
    json!({"queries": {"A": {
        "filter": filter,
        "aggregators": [{"type": "group", "of": ["shard"], "each": [{"type": "sum", "sampling": {"unit": "seconds", "value": 60}}]}],
        "features": ["com.spotify.heroic.distributed_aggregations"],
        "range": {"type": "relative", "unit": "HOURS", "value": 6},
    }}})
}

/// Sum of every value per `shard` of a batch answer.
fn sums_by_shard(reply: &Value) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = reply["results"]["A"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{reply}"))
        .iter()
        .map(|g| {
            let total = g["values"].as_array().unwrap().iter().map(|p| p[1].as_f64().unwrap()).sum();
            (g["tags"]["shard"].as_str().unwrap().to_string(), total)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn grafana_batch_body_and_filter_sugar() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    let t = (now_ms() - 30 * 60_000) / 60_000 * 60_000 + 1;
    write(&node, "k", "a", json!([[t, 1.0], [t + 60_000, 2.0]]));
    write(&node, "k", "b", json!([[t, 10.0]]));
    write(&node, "k", "c", json!([[t, 100.0]]));

    let batch = |filter: Value| {
        let (status, reply) = node.request(
            "POST",
            "/query/batch",
            Some(grafana_batch(filter).to_string()),
            "application/json;charset=UTF-8",
        );
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["results"]["A"]["errors"], json!([]), "{reply}");
        reply
    };
    let s = |v: &[(&str, f64)]| v.iter().map(|(a, b)| (a.to_string(), *b)).collect::<Vec<_>>();

    let reply = batch(json!(["and", ["key", "k"], ["=", "shard", "a"]]));
    assert_eq!(sums_by_shard(&reply), s(&[("a", 3.0)]));
    let group = &reply["results"]["A"]["result"][0];
    assert_eq!(group["cadence"], 60_000);
    assert_eq!(group["values"].as_array().unwrap().len(), 2, "{reply}");

    let reply = batch(json!(["and", ["key", "k"], ["!=", "shard", "a"]]));
    assert_eq!(sums_by_shard(&reply), s(&[("b", 10.0), ("c", 100.0)]));
    let reply = batch(json!(["and", ["key", "k"], ["!^", "shard", "c"]]));
    assert_eq!(sums_by_shard(&reply), s(&[("a", 3.0), ("b", 10.0)]));
    let reply = batch(json!(["and", ["key", "k"], ["=~", "shard", "[ab]"]]));
    assert_eq!(sums_by_shard(&reply), s(&[("a", 3.0), ("b", 10.0)]));
    let reply = batch(json!(["and", ["key", "k"], ["q", "shard !~ \"[ab]\""]]));
    assert_eq!(sums_by_shard(&reply), s(&[("c", 100.0)]));

    // A top-level range fills in for a query without one.
    let body = json!({"range": {"type": "relative", "unit": "HOURS", "value": 1},
                      "queries": {"x": {"query": "sum(1m) where $key = k and shard = b"}}});
    let (status, reply) = node.post("/query/batch", &body);
    assert_eq!(status, 200, "{reply}");
    let range = &reply["results"]["x"]["range"];
    let span = range["end"].as_i64().unwrap() - range["start"].as_i64().unwrap();
    assert_eq!(span, 3_600_000, "{reply}");
    assert_eq!(reply["results"]["x"]["result"][0]["values"], json!([[t - 1 + 60_000, 10.0]]));
}

#[test]
fn parser_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());

    let (status, reply) = node.get("/parser/parse-filter?filter=host%20%3D%20a");
    assert_eq!((status, reply), (200, json!(["=", "host", "a"])));
    let (status, reply) = node.request(
        "POST",
        "/parser/parse-filter",
        Some("$key = cpu and role ^ db".into()),
        "text/plain;charset=UTF-8",
    );
    assert_eq!(status, 200, "{reply}");
    let parts = reply.as_array().unwrap();
    assert_eq!(parts[0], "and");
    assert!(parts.contains(&json!(["key", "cpu"])) && parts.contains(&json!(["^", "role", "db"])), "{reply}");
    let (status, reply) = node.post_text("/parser/parse-filter", "host in [a, b] and !+role");
    assert_eq!(status, 200, "{reply}");
    let text = reply.to_string();
    assert!(text.contains(r#"["=","host","a"]"#) && text.contains(r#"["not",["+","role"]]"#), "{text}");

    let (status, reply) =
        node.post_text("/parser/parse-query", "average(10m) by host from points(1h) where $key = system");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["filter"], json!(["key", "system"]));
    assert_eq!(reply["source"], "points");
    assert_eq!(reply["aggregation"]["type"], "group");
    assert_eq!(reply["aggregation"]["of"], json!(["host"]));
    assert_eq!(reply["aggregation"]["each"]["type"], "average");
    assert_eq!(reply["range"]["type"], "relative", "{reply}");

    let (status, reply) = node.post_text("/parser/parse-filter", "host = ");
    assert_eq!(status, 400, "{reply}");
    assert_eq!((reply["line"].clone(), reply["col"].is_number()), (json!(1), true), "{reply}");
}

#[test]
fn bad_queries_get_400_saying_what_and_where() {
    let (_dir, node) = cluster_fixture();

    // HQL: line and column.
    for (hql, what) in [
        ("frobnicate(10ms) from points(0, 40)", "frobnicate"),
        ("sum(10x) from points(0, 40)", "duration"),
        ("sum(10ms from points(0, 40)", ""),
        ("sum(10ms)\nfrom points(0, 40)\nwhere host = = a", ""),
        ("topk(k=\"two\") from points(0, 40)", "k"),
    ] {
        let (status, reply) = node.post_text("/query/metrics", hql);
        assert_eq!(status, 400, "{hql}: {reply}");
        assert_eq!(reply["type"], "parse-error", "{hql}: {reply}");
        let message = reply["message"].as_str().unwrap();
        assert!(message.contains(what), "{hql}: {message}");
        assert!(reply["line"].is_number() && reply["col"].is_number(), "{hql}: no position in {reply}");
    }
    let (_, reply) = node.post_text("/query/metrics", "sum(10ms)\nfrom points(0, 40)\nwhere host = = a");
    assert_eq!(reply["line"], 3, "{reply}");

    // JSON: the path of the offending field.
    for (body, path) in [
        (json!({"aggregation": {"type": "frobnicate"}}), "aggregation"),
        (
            json!({"aggregation": {"type": "sum", "sampling": {"unit": "fortnights", "value": 1}}}),
            "aggregation.sampling",
        ),
        (json!({"aggregation": {"type": "topk", "k": "two"}}), "aggregation.k"),
        (json!({"aggregation": {"type": "sum", "size": "10x"}}), "aggregation.size"),
        (json!({"filter": ["=", "host"]}), "filter"),
        (json!({"range": {"type": "relative", "unit": "WEEKS", "value": 1}}), "range.unit"),
        (json!({"aggregators": [{"type": "group", "of": ["h"], "each": [{"type": "nope"}]}]}), "aggregators"),
    ] {
        let (status, reply) = node.post("/query/metrics", &body);
        assert_eq!(status, 400, "{body}: {reply}");
        let at = reply["path"].as_str().unwrap_or_else(|| panic!("{body}: no path in {reply}"));
        assert!(at.starts_with(path), "{body}: path {at:?}, expected {path:?}");
    }

    // In a batch, the failing query is named.
    let (status, reply) = node.post("/query/batch", &json!({"queries": {"bad": {"query": "sum("}}}));
    assert_eq!(status, 400, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("bad"), "{reply}");
}

#[test]
fn non_finite_values_are_rejected_at_write() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    for data in ["[[1, NaN]]", "[[1, 1e999]]", "[[1, null]]", "[[1, \"Infinity\"]]"] {
        let body = format!(r#"{{"series":{{"key":"n"}},"data":{{"type":"points","data":{data}}}}}"#);
        let (status, reply) = node.request("POST", "/write", Some(body), "application/json");
        assert_eq!(status, 400, "{data}: {reply}");
        // Not JSON (NaN, 1e999): json-parse-error; not a number: json-error.
        assert!(reply["type"].as_str().unwrap().starts_with("json-"), "{data}: {reply}");
    }
    // Nothing was stored.
    let (_, reply) = node.post("/metadata/series-count", &json!({"filter": ["key", "n"]}));
    assert_eq!(reply["count"], 0, "{reply}");
}
