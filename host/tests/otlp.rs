//! OTLP/HTTP metrics, `POST /v1/metrics`:
//!
//! - OpenTelemetry's own JavaScript SDK and OTLP/HTTP exporters (JSON, and
//!   protobuf gzip-compressed; `host/tests/otel/`, installed by
//!   `scripts/clients.sh`) export a counter, an up-down counter, a gauge
//!   and a histogram twice: the node then holds exactly those values,
//!   under the names and labels Prometheus' OTLP receiver gives them;
//! - delta temporality is dropped and counted, as Prometheus drops it, and
//!   the rest of the export is written;
//! - the answers a sender acts on, in the request's encoding: 200 (with a
//!   partial success when something was dropped), 400 never storable, 413
//!   too large, 415 a media type or encoding this node does not read.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use common::{local_config, Node};
use serde_json::Value;

fn sender_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/otel"))
}

/// Runs the SDK's exporter against the node (see `otel/send.mjs`).
fn send(node: &Node, encoding: &str, instance: &str, temporality: &str, gzip: bool) {
    let node_js = common::which("node").expect("no `node` on PATH: the OTLP tests run OpenTelemetry's JavaScript SDK");
    assert!(
        sender_dir().join("node_modules/@opentelemetry/sdk-metrics").is_dir(),
        "OpenTelemetry's SDK is not installed in host/tests/otel: run scripts/clients.sh"
    );
    let mut cmd = Command::new(node_js);
    cmd.current_dir(sender_dir()).arg("send.mjs").args([&node.url("/v1/metrics"), encoding, instance, temporality]);
    if gzip {
        cmd.arg("gzip");
    }
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the OTLP exporter failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("exported 2"), "two exports expected:\n{stdout}\n{stderr}");
}

/// Every series of `selector` with its raw values of the last hour, by its
/// labels written `name{a=b,…}` (`job` and `instance` left out).
fn raw(node: &Node, selector: &str) -> BTreeMap<String, Vec<f64>> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 60;
    let form = [("query", format!("{selector}[1h]")), ("time", now.to_string())];
    let reply: Value =
        reqwest::blocking::Client::new().post(node.url("/api/v1/query")).form(&form).send().unwrap().json().unwrap();
    let result = reply["data"]["result"].as_array().unwrap_or_else(|| panic!("{selector}: {reply}"));
    result
        .iter()
        .map(|s| {
            let metric = s["metric"].as_object().unwrap();
            let labels: Vec<String> = metric
                .iter()
                .filter(|(k, _)| !["__name__", "job", "instance"].contains(&k.as_str()))
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect();
            let name = format!("{}{{{}}}", metric["__name__"].as_str().unwrap(), labels.join(","));
            let values =
                s["values"].as_array().unwrap().iter().map(|p| p[1].as_str().unwrap().parse().unwrap()).collect();
            (name, values)
        })
        .collect()
}

fn scrape_value(node: &Node, sample: &str) -> f64 {
    let text = reqwest::blocking::get(node.url("/metrics")).unwrap().text().unwrap();
    let line = text.lines().find(|l| l.starts_with(sample)).unwrap_or_else(|| panic!("no {sample} in the scrape"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// `want` in the order of `got`'s keys (`le=10}` sorts before `le=1}`).
fn assert_values(got: &BTreeMap<String, Vec<f64>>, want: &[(&str, &[f64])], context: &str) {
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    let want_names: Vec<&str> = want.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, want_names, "{context}: the series");
    for (name, values) in want {
        let g = &got[*name];
        assert_eq!(g.len(), values.len(), "{context}: {name}: {g:?}");
        for (a, b) in g.iter().zip(values.iter()) {
            assert!((a - b).abs() < 1e-9, "{context}: {name}: {g:?}, expected {values:?}");
        }
    }
}

#[test]
fn the_opentelemetry_sdk_s_exports_arrive_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    send(&node, "json", "i-json", "cumulative", false);
    send(&node, "proto", "i-proto", "cumulative", true);
    for instance in ["i-json", "i-proto"] {
        let got = raw(&node, &format!("{{job=\"otel-test\",instance=\"{instance}\"}}"));
        // Two exports of cumulative values: every series twice.
        let sum = 0.05 + 0.5 + 0.5 + 5.0 + 50.0;
        assert_values(
            &got,
            &[
                ("http_duration_seconds_bucket{le=+Inf}", &[5.0, 5.0]),
                ("http_duration_seconds_bucket{le=0.1}", &[1.0, 1.0]),
                ("http_duration_seconds_bucket{le=10}", &[4.0, 4.0]),
                ("http_duration_seconds_bucket{le=1}", &[3.0, 3.0]),
                ("http_duration_seconds_count{}", &[5.0, 5.0]),
                ("http_duration_seconds_sum{}", &[sum, sum]),
                ("http_requests_total{route=/a}", &[5.0, 8.0]),
                ("pool_size_bytes{}", &[7.0, 5.0]),
                ("room_temp_celsius{}", &[21.5, 22.0]),
                ("target_info{host_name=h1}", &[1.0, 1.0]),
            ],
            instance,
        );
    }
    // PromQL over them, as a dashboard would ask.
    let got = raw(&node, "http_requests_total{route=\"/a\"}");
    assert_eq!(got.len(), 1, "one series of both instances' labels once `instance` is left out: {got:?}");
}

#[test]
fn delta_temporality_is_dropped_and_counted_the_rest_written() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    send(&node, "json", "i-delta", "delta", false);
    let got = raw(&node, "{job=\"otel-test\"}");
    // The up-down counter stays cumulative under a delta preference (as the
    // SDK's own default rules say); the gauge has no temporality.
    assert_values(
        &got,
        &[
            ("pool_size_bytes{}", &[7.0, 5.0]),
            ("room_temp_celsius{}", &[21.5, 22.0]),
            ("target_info{host_name=h1}", &[1.0, 1.0]),
        ],
        "delta",
    );
    let dropped = scrape_value(&node, "heroic_write_dropped_samples_total{reason=\"delta_temporality\"}");
    assert!(dropped >= 2.0, "the counter's and the histogram's delta points are counted: {dropped}");
}

fn post(node: &Node, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> (u16, String, Vec<u8>) {
    let mut request =
        reqwest::blocking::Client::new().post(node.url("/v1/metrics")).header("content-type", content_type).body(body);
    if let Some(e) = encoding {
        request = request.header("content-encoding", e);
    }
    let reply = request.send().unwrap();
    let status = reply.status().as_u16();
    let ct = reply.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, ct, reply.bytes().unwrap().to_vec())
}

#[test]
fn answers_are_what_otlp_senders_act_on() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    let json = "application/json";
    let protobuf = "application/x-protobuf";

    // An empty request is a success.
    let (status, ct, body) = post(&node, protobuf, None, Vec::new());
    assert_eq!((status, ct.as_str()), (200, protobuf));
    assert!(body.is_empty(), "an empty ExportMetricsServiceResponse: {body:?}");
    let (status, _, body) = post(&node, json, None, b"{}".to_vec());
    assert_eq!((status, String::from_utf8_lossy(&body).as_ref()), (200, "{}"));

    // A delta sum beside a gauge: the gauge is written, the sum reported.
    let mixed = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
        {"name":"d","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{"asInt":"1","timeUnixNano":"1700000000000000000"}]}},
        {"name":"g","gauge":{"dataPoints":[{"asDouble":2.5,"timeUnixNano":"1700000000000000000"}]}}]}]}]}"#;
    let (status, _, body) = post(&node, json, None, mixed.to_vec());
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["partialSuccess"]["rejectedDataPoints"], "1", "{answer}");
    assert!(answer["partialSuccess"]["errorMessage"].as_str().unwrap().contains("delta_temporality=1"), "{answer}");
    let (status, reply) = node.post(
        "/query/metrics",
        &serde_json::json!({"filter": ["key", "g"], "range": {"type": "absolute", "start": 0, "end": 1_800_000_000_000i64}}),
    );
    assert_eq!(status, 200);
    assert_eq!(reply["result"][0]["values"], serde_json::json!([[1_700_000_000_000i64, 2.5]]), "{reply}");

    // Never storable: 400 with a google.rpc.Status in the request's encoding.
    let (status, ct, body) = post(&node, json, None, b"{\"resourceMetrics\": 7}".to_vec());
    assert_eq!((status, ct.as_str()), (400, json));
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["code"], 3, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("not an OTLP ExportMetricsServiceRequest"), "{answer}");
    let (status, ct, body) = post(&node, protobuf, None, vec![0xff; 32]);
    assert_eq!((status, ct.as_str()), (400, protobuf));
    assert!(!body.is_empty());

    // A gzip bomb: refused at the size limit, not inflated whole.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 80 << 20]).unwrap();
    let (status, _, _) = post(&node, protobuf, Some("gzip"), gz.finish().unwrap());
    assert_eq!(status, 413);

    // Media types and encodings not read here.
    assert_eq!(post(&node, "text/plain", None, b"x".to_vec()).0, 415);
    assert_eq!(post(&node, protobuf, Some("br"), b"x".to_vec()).0, 415);
}

/// A metric backend that fails: 503 with `Retry-After` (which OTLP senders
/// retry, unlike a 500), in OTLP's error shape; once it is back, the same
/// request is written.
#[test]
fn a_failing_backend_answers_503_and_the_retry_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("down");
    std::fs::write(&flag, b"").unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{{port}}\"\n[plugins]\ndirs = [\"{{plugins}}\"]\n\
         [[metrics]]\nplugin = \"faulty\"\n[metrics.config]\nfail_while_exists = \"{}\"\n",
        flag.display()
    );
    let node = Node::start(dir.path(), &config);
    let body = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
        {"name":"g","gauge":{"dataPoints":[{"asDouble":2.5,"timeUnixNano":"1700000000000000000"}]}}]}]}]}"#;
    let json = "application/json";
    let (status, _, reply) = post(&node, json, None, body.to_vec());
    let answer: Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["code"], 14, "UNAVAILABLE: {answer}");
    std::fs::remove_file(&flag).unwrap();
    let (status, _, reply) = post(&node, json, None, body.to_vec());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
}
