//! `GET /metrics`, the node's Prometheus scrape: it parses as OpenMetrics
//! with a strict parser, its counters move by what a write and a query did,
//! every metric in it is listed in `docs/metrics.md`, and a real Prometheus
//! (Debian's `prometheus`, installed by `scripts/clients.sh`) scrapes it
//! and answers the same figures from its own store.

mod common;

use std::collections::BTreeMap;

use common::prometheus::Prometheus;
use common::{local_config, Node};
use openmetrics_parser::{LabelSet, OpenMetricsValue, Sample};
use serde_json::{json, Value};

/// One scrape: every sample as `name{label="value",…}` (labels sorted) →
/// value, with histograms as their `_count` and `_sum`.
struct Scrape {
    text: String,
    samples: BTreeMap<String, f64>,
    families: Vec<String>,
}

impl Scrape {
    fn of(node: &Node) -> Scrape {
        let resp = reqwest::blocking::get(node.url("/metrics")).unwrap();
        assert_eq!(resp.status(), 200);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
        let text = resp.text().unwrap();
        let parsed = openmetrics_parser::openmetrics::parse_openmetrics(&text)
            .unwrap_or_else(|e| panic!("the scrape is not OpenMetrics: {e:?}\n{text}"));
        let mut samples = BTreeMap::new();
        let mut families = Vec::new();
        for (name, family) in &parsed.families {
            families.push(name.clone());
            for sample in family.iter_samples() {
                let labels = sample.get_labelset().unwrap();
                for (suffix, value) in values(sample) {
                    samples.insert(sample_key(&format!("{name}{suffix}"), &labels), value);
                }
            }
        }
        families.sort();
        Scrape { text, samples, families }
    }

    /// A sample's value; 0 for one not (yet) in the scrape, as Prometheus
    /// reads a counter that has not been created.
    fn get(&self, key: &str) -> f64 {
        self.samples.get(key).copied().unwrap_or(0.0)
    }
}

fn values(sample: &Sample<OpenMetricsValue>) -> Vec<(&'static str, f64)> {
    match &sample.value {
        OpenMetricsValue::Counter(c) => vec![("_total", c.value.as_f64())],
        OpenMetricsValue::Gauge(v) | OpenMetricsValue::Unknown(v) => vec![("", v.as_f64())],
        OpenMetricsValue::Histogram(h) => {
            vec![("_count", h.count.unwrap_or(0) as f64), ("_sum", h.sum.as_ref().map(|s| s.as_f64()).unwrap_or(0.0))]
        }
        other => panic!("a metric type the node does not expose: {other:?}"),
    }
}

fn sample_key(name: &str, labels: &LabelSet) -> String {
    let mut labels: Vec<String> =
        labels.iter().filter(|(_, v)| !v.is_empty()).map(|(n, v)| format!("{n}=\"{v}\"")).collect();
    labels.sort();
    if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", labels.join(","))
    }
}

fn write_points(node: &Node, host: &str, points: Value) {
    let body = json!({"series": {"key": "cpu", "tags": {"host": host}}, "data": {"type": "points", "data": points}});
    let (status, reply) = node.post("/write", &body);
    assert_eq!(status, 200, "{reply}");
}

fn query(node: &Node) -> u16 {
    let q = json!({"range": {"type": "absolute", "start": 0, "end": 10_000}, "filter": ["key", "cpu"]});
    node.post("/query/metrics", &q).0
}

#[test]
fn counters_move_with_writes_and_queries() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    let before = Scrape::of(&node);
    assert_eq!(before.get("heroic_write_points_total"), 0.0);
    assert_eq!(before.get("heroic_queries_total{outcome=\"ok\"}"), 0.0, "{}", before.text);
    assert_eq!(before.get("heroic_component_up{id=\"local\",plugin=\"local\",role=\"metrics\"}"), 1.0);
    assert!(before.get("process_resident_memory_bytes") > 1e6, "{}", before.text);
    assert!(before.get("process_open_fds") > 0.0);
    assert!(before.get("process_max_fds") > 0.0);
    assert_eq!(before.get("heroic_query_slots"), 4.0, "examples/local.toml's max_concurrent");

    write_points(&node, "a", json!([[1000, 1.0], [2000, 2.0], [3000, 3.0]]));
    write_points(&node, "b", json!([[1000, 5.0]]));
    write_points(&node, "a", json!([[4000, 4.0]]));
    assert_eq!(query(&node), 200);
    assert_eq!(query(&node), 200);
    // A range that ends before it starts: refused.
    let bad = json!({"range": {"type": "absolute", "start": 10_000, "end": 0}, "filter": ["key", "cpu"]});
    assert_eq!(node.post("/query/metrics", &bad).0, 400);
    // Too many buckets: answered 200, with the failure in `errors` (Heroic).
    let sampling = json!({"type": "sum", "sampling": {"unit": "milliseconds", "value": 1}});
    let partial = json!({"range": {"type": "absolute", "start": 0, "end": 100_000_000_000_i64}, "filter": ["key", "cpu"], "aggregation": sampling});
    let (status, reply) = node.post("/query/metrics", &partial);
    assert_eq!(status, 200);
    assert!(!reply["errors"].as_array().unwrap().is_empty(), "{reply}");
    assert_eq!(node.get("/no/such/route").0, 404);

    let after = Scrape::of(&node);
    let moved = |key: &str| after.get(key) - before.get(key);
    assert_eq!(moved("heroic_write_points_total"), 5.0, "{}", after.text);
    assert_eq!(moved("heroic_write_series_total"), 3.0);
    assert_eq!(moved("heroic_write_new_series_total"), 2.0, "series a is new once");
    assert_eq!(moved("heroic_write_duration_seconds_count"), 3.0);
    assert_eq!(moved("heroic_write_failures_total"), 0.0);
    assert_eq!(moved("heroic_queries_total{outcome=\"ok\"}"), 2.0);
    assert_eq!(moved("heroic_queries_total{outcome=\"with_errors\"}"), 1.0);
    assert_eq!(moved("heroic_queries_total{outcome=\"client_error\"}"), 1.0);
    // Planned and run: the two answered and the one with errors.
    assert_eq!(moved("heroic_query_duration_seconds_count"), 3.0);
    assert_eq!(moved("heroic_query_points_read_count"), 3.0);
    assert_eq!(moved("heroic_query_points_read_sum"), 10.0, "each query read the 5 points");
    let requests = |route: &str, method: &str, status: u16| {
        after.get(&format!("heroic_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}"))
    };
    assert_eq!(requests("/write", "POST", 200), 3.0);
    assert_eq!(requests("/query/metrics", "POST", 200), 3.0);
    assert_eq!(requests("/query/metrics", "POST", 400), 1.0);
    // Paths outside the API are one label value, whatever a client sends.
    assert_eq!(requests("other", "GET", 404), 1.0);
    assert_eq!(after.get("heroic_http_request_duration_seconds_count{method=\"POST\",route=\"/write\"}"), 3.0);
    let calls = |role: &str, operation: &str| {
        after.get(&format!(
            "heroic_plugin_calls_total{{id=\"local\",operation=\"{operation}\",plugin=\"local\",role=\"{role}\"}}"
        ))
    };
    assert_eq!(calls("metrics", "write"), 3.0);
    assert!(calls("metrics", "fetch") + calls("metrics", "fetch_buckets") >= 2.0, "{}", after.text);
    assert!(calls("metadata", "find_series") >= 2.0, "{}", after.text);
    assert_eq!(
        after.get("heroic_component_statistic{id=\"local\",plugin=\"local\",role=\"metadata\",statistic=\"series\"}"),
        2.0
    );
    assert!(after.text.contains("heroic_build_info{version=\""), "{}", after.text);
}

/// Every metric family the node exposes has its line in docs/metrics.md,
/// and every one listed there is exposed (by a node with a local backend;
/// the consumer families are checked by their own tests' scrapes).
#[test]
fn every_metric_is_documented() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md")).unwrap();
    let documented: Vec<&str> = docs
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|name| name.starts_with("heroic_") || name.starts_with("process_"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    write_points(&node, "a", json!([[1000, 1.0]]));
    let scrape = Scrape::of(&node);
    for family in &scrape.families {
        assert!(
            documented.iter().any(|d| d.trim_end_matches("_total") == family.as_str()),
            "{family} is not in docs/metrics.md"
        );
    }
    for name in &documented {
        let family = name.trim_end_matches("_total");
        if !name.starts_with("heroic_consumer_") && !name.starts_with("heroic_plugin_call_errors") {
            assert!(scrape.families.iter().any(|f| f == family), "{name} is documented but not exposed");
        }
    }
}

#[test]
fn a_real_prometheus_scrapes_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    let prometheus = Prometheus::start(dir.path(), node.port, "");
    // The target is up: Prometheus read the scrape without an error.
    prometheus.await_value("up{job=\"heroic\"}", 1.0);
    write_points(&node, "a", json!([[1000, 1.0], [2000, 2.0]]));
    assert_eq!(query(&node), 200);
    prometheus.await_value("heroic_write_points_total{job=\"heroic\"}", 2.0);
    prometheus.await_value("heroic_queries_total{job=\"heroic\",outcome=\"ok\"}", 1.0);
    prometheus.await_value("sum(heroic_plugin_calls_total{role=\"metrics\",operation=\"write\"})", 1.0);
    prometheus.await_value("heroic_component_up{role=\"metrics\",id=\"local\"}", 1.0);
    // The write latency histogram, as Prometheus stored it.
    prometheus.await_value("heroic_write_duration_seconds_count{job=\"heroic\"}", 1.0);
}
