//! A plugin that panics returns an error to the request; the server keeps
//! serving, and the plugin's log lines appear in the host's log.

mod common;

use common::Node;
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
