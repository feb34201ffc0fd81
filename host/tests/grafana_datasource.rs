//! Every request shape Heroic's Grafana data source
//! (`spotify/spotify-heroic-datasource`) sends, replayed against the real
//! binary with its headers, checking the fields it reads (spec §13).

mod common;

use common::{local_config, Node};
use serde_json::{json, Value};

const CLIENT_ID: &str = "spotify-heroic-datasource";
const JSON: &str = "application/json;charset=UTF-8";
const FEATURES: &str = "com.spotify.heroic.distributed_aggregations";

/// A request as the data source sends it: its client id, and its content
/// type (`text/plain;charset=UTF-8` and no client id for the parser).
fn send(node: &Node, method: &str, path: &str, body: Option<String>, content_type: &str) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let mut request = client.request(method.parse().unwrap(), node.url(path)).header("content-type", content_type);
    if path != "/parser/parse-filter" {
        request = request.header("x-client-id", CLIENT_ID);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn post(node: &Node, path: &str, body: &Value) -> Value {
    let (status, reply) = send(node, "POST", path, Some(body.to_string()), JSON);
    assert_eq!(status, 200, "{path} {body}: {reply}");
    reply
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// What the data source reads of one query's answer: a `result` whose
/// groups have values and tag maps, `limits` as strings, `errors` as
/// `{type, error}` strings, `commonTags` / `commonResource` as maps of lists.
fn assert_readable(name: &str, answer: &Value) {
    let groups = answer["result"].as_array().unwrap_or_else(|| panic!("{name}: no result in {answer}"));
    for g in groups {
        assert!(g["values"].is_array(), "{name}: {g}");
        for field in ["tags", "tagCounts", "resource", "resourceCounts"] {
            assert!(g[field].is_object(), "{name}: {field} in {g}");
        }
    }
    assert!(answer["limits"].as_array().unwrap().iter().all(Value::is_string), "{name}: {answer}");
    for e in answer["errors"].as_array().unwrap() {
        assert!(e["type"].as_str().is_some_and(|t| !t.is_empty()) && e["error"].is_string(), "{name}: {e}");
    }
    for field in ["commonTags", "commonResource"] {
        let common = answer[field].as_object().unwrap_or_else(|| panic!("{name}: {field} in {answer}"));
        assert!(common.values().all(Value::is_array), "{name}: {answer}");
    }
}

/// The aggregators of a panel query: `group` of a sampled aggregation.
fn grouped(of: Value, kind: &str, seconds: Value) -> Value {
    let each = match kind {
        "delta" | "deltaPerSecond" | "notNegative" | "stddev" => json!({"type": kind}),
        _ => json!({"type": kind, "sampling": {"unit": "seconds", "value": seconds}}),
    };
    json!([{"type": "group", "of": of, "each": [each]}])
}

fn panel(filter: Value, aggregators: Value, range: Value) -> Value {
    json!({"filter": filter, "aggregators": aggregators, "features": [FEATURES], "range": range,
           "clientContext": {"dashboardId": "d1", "panelId": "2"}})
}

#[test]
fn every_request_the_data_source_sends() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    let t = now_ms() - 20 * 60_000;
    for (host, role, v) in [("db1", "db", 1.0), ("db2", "db", 2.0), ("web1", "web", 3.0)] {
        let body = json!({"series": {"key": "system", "tags": {"host": host, "role": role}},
                          "data": {"type": "points", "data": [[t, v], [t + 60_000, v * 2.0]]}});
        let (status, reply) = send(&node, "POST", "/write", Some(body.to_string()), JSON);
        assert_eq!(status, 200, "{reply}");
    }
    let relative = json!({"type": "relative", "unit": "HOURS", "value": 1});
    let absolute = json!({"type": "absolute", "start": t - 60_000, "end": t + 120_000});
    let filter = json!(["and", ["key", "system"], ["=", "role", "db"]]);

    // 1. /query/batch: every aggregation of the query editor, each `of`,
    // fractional and null intervals, the filter forms and both ranges.
    let mut queries = serde_json::Map::new();
    let kinds = [
        "average",
        "count",
        "delta",
        "deltaPerSecond",
        "ratePerSecond",
        "max",
        "min",
        "notNegative",
        "stddev",
        "sum",
        "sum2",
        "tdigest",
    ];
    for (i, kind) in kinds.iter().enumerate() {
        let of = [json!(null), json!([]), json!(["host"])][i % 3].clone();
        queries.insert(kind.to_string(), panel(filter.clone(), grouped(of, kind, json!(60)), relative.clone()));
    }
    queries
        .insert("subSecond".into(), panel(filter.clone(), grouped(json!(null), "sum", json!(0.2)), absolute.clone()));
    queries.insert(
        "noInterval".into(),
        panel(filter.clone(), grouped(json!(["host"]), "max", Value::Null), relative.clone()),
    );
    for (kind, field, value) in [
        ("topk", "k", json!(1)),
        ("bottomk", "k", json!(1)),
        ("abovek", "k", json!(1)),
        ("belowk", "k", json!(5)),
        ("pointsabove", "threshold", json!(1)),
        ("pointsbelow", "threshold", json!(3)),
    ] {
        let mut filter_k = json!({"type": kind, field: value});
        if field == "k" {
            filter_k["of"] = json!({"type": "empty"});
        }
        let mut aggregators = grouped(json!(["host"]), "average", json!(60));
        aggregators.as_array_mut().unwrap().push(filter_k);
        queries.insert(kind.to_string(), panel(filter.clone(), aggregators, relative.clone()));
    }
    let filters = [
        ("negated", json!(["and", ["key", "system"], ["not", ["=", "role", "web"]]])),
        ("prefix", json!(["and", ["key", "system"], ["^", "host", "db"]])),
        ("custom", json!(["q", "$key = system and role = db"])),
        ("variable", json!(["and", ["q", "role = db"], ["key", "system"]])),
        ("adHoc", json!(["and", ["key", "system"], ["and", ["=", "role", "db"], ["not", ["^", "host", "web"]]]])),
    ];
    for (name, f) in &filters {
        queries
            .insert(name.to_string(), panel(f.clone(), grouped(json!(["host"]), "sum", json!(60)), absolute.clone()));
    }
    let reply = post(&node, "/query/batch", &json!({"queries": queries}));
    let results = reply["results"].as_object().unwrap();
    assert_eq!(results.len(), queries.len(), "{reply}");
    for (name, answer) in results {
        assert_readable(name, answer);
        if name != "tdigest" {
            assert_eq!(answer["errors"], json!([]), "{name}: {answer}");
        }
    }
    let hosts = |name: &str| -> Vec<String> {
        let mut hosts: Vec<String> = results[name]["result"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| !g["values"].as_array().unwrap().is_empty())
            .map(|g| g["tags"]["host"].as_str().unwrap_or("*").to_string())
            .collect();
        hosts.sort();
        hosts
    };
    assert_eq!(hosts("max"), ["db1", "db2"], "{reply}");
    assert_eq!(hosts("noInterval"), ["db1", "db2"], "{reply}");
    assert_eq!(results["sum"]["result"][0]["values"].as_array().unwrap().len(), 2, "{reply}");
    // The 200 ms interval sums each point into its own bucket.
    assert_eq!(results["subSecond"]["result"][0]["cadence"], 200, "{reply}");
    assert_eq!(results["topk"]["result"].as_array().unwrap().len(), 1, "{reply}");
    assert_eq!(hosts("topk"), ["db2"], "{reply}");
    for (name, _) in &filters {
        assert_eq!(hosts(name), ["db1", "db2"], "{name}: {reply}");
    }
    // tdigest: no distribution data here, so no groups and no error.
    assert_eq!(results["tdigest"]["result"], json!([]), "{reply}");
    assert_eq!(results["tdigest"]["errors"], json!([]), "{reply}");
    // `commonTags` keys are the table's columns.
    assert_eq!(results["max"]["commonTags"]["role"], json!(["db"]), "{reply}");

    // 2. Annotations: /query/metrics with no aggregation.
    let annotations = json!({"filter": filter, "aggregators": [], "features": [FEATURES], "range": absolute});
    let reply = post(&node, "/query/metrics", &annotations);
    let groups = reply["result"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{reply}");
    for g in groups {
        assert!(g["tags"].is_object() && g["hash"].is_string() && g["values"].as_array().unwrap().len() == 2, "{g}");
    }

    // 3. The test button: /status, of which `service` is shown.
    let (status, reply) = send(&node, "GET", "/status", None, JSON);
    assert_eq!(status, 200, "{reply}");
    assert!(!reply["service"].is_null(), "{reply}");

    // 4-6. Suggestions while typing.
    let reply = post(&node, "/metadata/key-suggest", &json!({"key": "sys", "filter": filter, "limit": 100}));
    assert_eq!(reply["suggestions"][0]["key"], "system", "{reply}");
    let suggest = |key: Value, value: Option<&str>, limit: u64| {
        let mut body = json!({"filter": ["key", "system"], "limit": limit, "key": key});
        if let Some(v) = value {
            body["value"] = json!(v);
        }
        post(&node, "/metadata/tag-suggest", &body)
    };
    let reply = suggest(json!("host"), Some("db"), 100);
    let pairs: Vec<(&str, &str)> = reply["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["key"].as_str().unwrap(), s["value"].as_str().unwrap()))
        .collect();
    assert!(pairs.contains(&("host", "db1")) && pairs.contains(&("host", "db2")), "{reply}");
    let reply = suggest(Value::Null, None, 500);
    assert!(reply["suggestions"].as_array().unwrap().iter().any(|s| s["key"] == "role"), "{reply}");
    let reply = post(&node, "/metadata/tagkey-count", &json!({"filter": ["key", "system"], "limit": 100}));
    let keys: Vec<&str> = reply["suggestions"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["host", "role"], "{reply}");

    // 7. Filter validation: text/plain, no client id; success or failure.
    let text = "text/plain;charset=UTF-8";
    let (status, reply) = send(&node, "POST", "/parser/parse-filter", Some("role = db and host ^ db".into()), text);
    assert_eq!(status, 200, "{reply}");
    let (status, _) = send(&node, "POST", "/parser/parse-filter", Some("role = = db".into()), text);
    assert_eq!(status, 400);
}
