//! A plugin that panics returns an error to the request; the server keeps
//! serving, and the plugin's log lines appear in the host's log.

mod common;

use common::{sample_in, Node};
use serde_json::json;

fn write_body(key: &str) -> serde_json::Value {
    json!({"series": {"key": key, "tags": {"host": "a"}}, "data": {"type": "points", "data": [[1000, 1.5]]}})
}

#[test]
fn panicking_plugin_does_not_take_the_server_down() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        dir.path(),
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[plugins]\ndirs = [\"{plugins}\"]\n\
         [[metrics]]\nplugin = \"faulty\"\n[metrics.config]\npanic_on_key = \"boom\"\n",
    );
    let (status, body) = node.post("/write", &write_body("fine"));
    assert_eq!(status, 200, "{body}");

    // It would panic again: 400 (do not retry), naming the series.
    let (status, body) = node.post("/write", &write_body("boom"));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["type"], "error");
    let message = body["message"].as_str().unwrap();
    assert!(message.starts_with("series boom {host=a}: "), "{message}");
    assert!(message.contains("plugin panicked") && message.contains("faulty"), "{message}");

    // Still serving, and the backend still works for other series.
    let (status, body) = node.post("/write", &write_body("fine"));
    assert_eq!(status, 200, "{body}");
    let (status, _) = node.get("/status");
    assert_eq!(status, 200);

    // GET /metrics counts the panic as the write's error, by its kind.
    let scrape = node.scrape();
    let errors =
        r#"heroic_plugin_call_errors_total{role="metrics",id="faulty",plugin="faulty",operation="write",kind="panic"}"#;
    assert_eq!(sample_in(&scrape, errors), Some(1.0), "{scrape}");
    let calls = r#"heroic_plugin_calls_total{role="metrics",id="faulty",plugin="faulty",operation="write"}"#;
    assert_eq!(sample_in(&scrape, calls), Some(3.0), "{scrape}");

    let log = node.log();
    assert!(log.contains("faulty backend created"), "plugin log line missing:\n{log}");
    assert!(log.contains("plugin=\"faulty\""), "plugin name missing from its log lines:\n{log}");
}

#[test]
fn malformed_and_non_finite_writes_get_400_with_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        dir.path(),
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[plugins]\ndirs = [\"{plugins}\"]\n[[metrics]]\nplugin = \"faulty\"\n",
    );
    let (status, body) = node.request("POST", "/write", Some("{\"series\":".into()), "application/json");
    assert_eq!(status, 400);
    assert_eq!(body["type"], "json-parse-error");
    assert!(body["message"].as_str().unwrap().contains("EOF"), "{body}");

    let (status, body) = node.request(
        "POST",
        "/write",
        Some(r#"{"series":{"key":"a"},"data":{"type":"points","data":[[1,1e400]]}}"#.into()),
        "application/json",
    );
    assert_eq!(status, 400, "{body}");

    let (status, body) = node.get("/no/such/endpoint");
    assert_eq!(status, 404);
    assert_eq!(body["status"], 404);
}

/// A failed fetch drops the query's whole answer, with Heroic's shard
/// error, rather than presenting the series read before it as complete;
/// a batch keeps its other queries.
#[test]
fn a_failed_fetch_answers_no_groups_and_a_shard_error() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        dir.path(),
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[plugins]\ndirs = [\"{plugins}\"]\n\
         [[metrics]]\nplugin = \"faulty\"\n[metrics.config]\npanic_on_key = \"boom\"\n\
         [[metadata]]\nplugin = \"local\"\n[metadata.config]\ndata_dir = \"{dir}/metadata\"\n",
    );
    let (status, body) = node.post("/write", &write_body("fine"));
    assert_eq!(status, 200, "{body}");
    // Known to the metadata backend only: fetching it panics the plugin.
    let boom = json!({"key": "boom", "tags": {"host": "b"}}).to_string();
    let (status, body) = node.request("PUT", "/metadata/series", Some(boom), "application/json");
    assert_eq!(status, 200, "{body}");

    let query = |filter: serde_json::Value| {
        json!({"filter": filter, "aggregation": {"type": "sum", "size": "1s"},
               "range": {"type": "absolute", "start": 0, "end": 2000}, "features": ["-shift_range"]})
    };
    let batch = json!({"queries": {
        "fine": query(json!(["key", "fine"])),
        "both": query(json!(["or", ["key", "fine"], ["key", "boom"]])),
    }});
    let (status, reply) = node.post("/query/batch", &batch);
    assert_eq!(status, 200, "{reply}");
    let fine = &reply["results"]["fine"];
    assert_eq!((&fine["result"][0]["values"], &fine["errors"]), (&json!([[1000, 1.5]]), &json!([])), "{reply}");
    let both = &reply["results"]["both"];
    assert_eq!(both["result"], json!([]), "{reply}");
    let error = &both["errors"][0];
    assert_eq!((&error["type"], &error["nodes"], &error["shard"]), (&json!("shard"), &json!(["[local]"]), &json!({})));
    let message = error["error"].as_str().unwrap();
    assert!(message.starts_with("Some fetches failed (1) or were cancelled (0)"), "{message}");
    assert!(message.contains("panicked"), "{message}");
}
