//! Prometheus' query API against a real Prometheus (Debian's 2.42): the
//! same samples are backfilled into Prometheus (`promtool tsdb
//! create-blocks-from openmetrics`) and remote-written to the node, then
//! every query of [`QUERIES`] is asked of both, as an instant query at
//! several times and as a range query, and the answers must agree: the
//! same result type, the same label sets, the same timestamps, values
//! within floating-point tolerance. The metadata routes (`series`,
//! `labels`, `label/<name>/values`) must agree exactly.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::prometheus::Prometheus;
use common::{local_config, Node};
use heroic::prometheus::remote_write::{Label, Sample, TimeSeries, WriteRequest};
use prost::Message;
use serde_json::Value;

/// The data's first sample, in seconds (2023-11-14).
const START: i64 = 1_700_000_000;
/// A sample every 15 s for an hour.
const STEP: i64 = 15;
const SAMPLES: i64 = 240;

/// A small deterministic generator: the data is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A test series: name, labels, samples (seconds, value).
type TestSeries = (String, Vec<(String, String)>, Vec<(i64, f64)>);

/// A request the API refuses: route, parameters, status, `errorType`.
type Refused<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str);

/// The test data.
fn data() -> Vec<TestSeries> {
    let mut rng = Lcg(42);
    let mut out = Vec::new();
    let labels = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    // Counters, with a reset in some series and a series that stops early.
    for job in ["api", "db"] {
        for instance in ["0", "1", "2", "3"] {
            for code in ["200", "500"] {
                let mut value = (rng.next() * 100.0).floor();
                let reset_at = if instance == "1" { SAMPLES / 2 } else { -1 };
                let stop_at = if instance == "3" && code == "500" { SAMPLES / 3 } else { SAMPLES };
                let rate = if code == "200" { 10.0 } else { 1.0 };
                let samples = (0..stop_at)
                    .map(|i| {
                        if i == reset_at {
                            value = 0.0;
                        }
                        value += (rng.next() * rate * STEP as f64).floor();
                        (START + i * STEP, value)
                    })
                    .collect();
                out.push((
                    "http_requests_total".into(),
                    labels(&[("job", job), ("instance", instance), ("code", code)]),
                    samples,
                ));
            }
        }
    }
    // Gauges with two decimals.
    for room in ["hall", "kitchen", "lab", "office", "store"] {
        let mut value = 15.0 + rng.next() * 10.0;
        let samples = (0..SAMPLES)
            .map(|i| {
                value += rng.next() - 0.5;
                (START + i * STEP, (value * 100.0).round() / 100.0)
            })
            .collect();
        out.push(("temperature".into(), labels(&[("room", room)]), samples));
    }
    // Many counters of one metric: more series than one fetch asks for
    // (256) and samples enough for several threads, so that reading,
    // reducing as read and evaluating span chunks and threads.
    for cpu in 0..600 {
        let mut value = 0.0;
        let samples = (0..SAMPLES)
            .map(|i| {
                value += (rng.next() * 50.0).floor();
                (START + i * STEP, value)
            })
            .collect();
        out.push(("node_cpu_seconds_total".into(), labels(&[("cpu", &cpu.to_string())]), samples));
    }
    // A classic histogram: cumulative bucket counters.
    let bounds = ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"];
    for job in ["api", "db"] {
        let mut counts = [0.0f64; 6];
        let mut series: Vec<Vec<(i64, f64)>> = vec![Vec::new(); bounds.len()];
        for i in 0..SAMPLES {
            for _ in 0..20 {
                let latency = rng.next() * rng.next() * 1.5;
                for (b, bound) in bounds.iter().enumerate() {
                    if *bound == "+Inf" || latency <= bound.parse::<f64>().unwrap() {
                        counts[b] += 1.0;
                    }
                }
            }
            for (b, s) in series.iter_mut().enumerate() {
                s.push((START + i * STEP, counts[b]));
            }
        }
        for (bound, samples) in bounds.iter().zip(series) {
            out.push(("request_duration_seconds_bucket".into(), labels(&[("job", job), ("le", bound)]), samples));
        }
    }
    out
}

/// The data as OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`.
fn openmetrics(data: &[TestSeries]) -> String {
    let mut text = String::new();
    let mut families: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, labels, samples) in data {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let lines = families.entry(name).or_default();
        for (t, v) in samples {
            lines.push(format!("{name}{{{}}} {v} {t}", labels.join(",")));
        }
    }
    for (name, lines) in families {
        text.push_str(&format!("# TYPE {name} gauge\n"));
        for l in lines {
            text.push_str(&l);
            text.push('\n');
        }
    }
    text.push_str("# EOF\n");
    text
}

/// The data as one remote-write request to the node.
fn remote_write(node: &Node, data: &[TestSeries]) {
    let timeseries = data
        .iter()
        .map(|(name, labels, samples)| {
            let mut all = vec![Label { name: "__name__".into(), value: name.clone() }];
            all.extend(labels.iter().map(|(k, v)| Label { name: k.clone(), value: v.clone() }));
            let samples = samples.iter().map(|&(t, value)| Sample { value, timestamp: t * 1000 }).collect();
            TimeSeries { labels: all, samples, histograms: Vec::new() }
        })
        .collect();
    let body = snap::raw::Encoder::new().compress_vec(&WriteRequest { timeseries }.encode_to_vec()).unwrap();
    let resp = reqwest::blocking::Client::new()
        .post(node.url("/api/v1/write"))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204, "{}", resp.text().unwrap_or_default());
}

/// PromQL asked of both; each is compared as an instant query at several
/// times and as a range query over the data.
const QUERIES: &[&str] = &[
    // Selectors, the four matchers, offset.
    "http_requests_total",
    r#"http_requests_total{job="api",code!="500"}"#,
    r#"http_requests_total{instance=~"[0-2]",code="500"}"#,
    r#"http_requests_total{instance!~"1|2",job="db"}"#,
    r#"{__name__=~"temp.*"}"#,
    "temperature offset 10m",
    "temperature offset -5m",
    // Rates and windows.
    "rate(http_requests_total[5m])",
    "rate(node_cpu_seconds_total[5m])",
    "sum(increase(node_cpu_seconds_total[10m]))",
    "rate(http_requests_total[1m] offset 5m)",
    "irate(http_requests_total[1m])",
    "increase(http_requests_total[10m])",
    "delta(temperature[10m])",
    "idelta(temperature[2m])",
    "avg_over_time(temperature[5m])",
    "min_over_time(temperature[5m])",
    "max_over_time(temperature[5m])",
    "sum_over_time(temperature[5m])",
    "count_over_time(http_requests_total[3m])",
    "last_over_time(temperature[5m])",
    "quantile_over_time(0.9, temperature[10m])",
    "stddev_over_time(temperature[10m])",
    // Aggregations.
    "sum(rate(http_requests_total[5m]))",
    "sum by (job) (rate(http_requests_total[5m]))",
    "avg without (instance) (rate(http_requests_total[5m]))",
    "max by (code) (http_requests_total)",
    "min(temperature)",
    "count by (job) (http_requests_total)",
    "topk(2, temperature)",
    "bottomk(2, temperature)",
    "quantile(0.5, temperature)",
    "stddev(temperature)",
    // Binary operators.
    "temperature * 2 + 1",
    "2 / temperature",
    "temperature > 20",
    "temperature > bool 20",
    "-temperature",
    r#"http_requests_total{code="500"} / ignoring(code) http_requests_total{code="200"}"#,
    r#"sum by (job) (rate(http_requests_total{code="500"}[5m])) / on(job) sum by (job) (rate(http_requests_total[5m]))"#,
    // Histograms and functions.
    "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.5, rate(request_duration_seconds_bucket[5m]))",
    "abs(-temperature)",
    "clamp_max(temperature, 20)",
    "round(temperature)",
    "time()",
    "vector(1)",
    "scalar(sum(temperature))",
];

fn node_api(node: &Node, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let resp = reqwest::blocking::Client::new().get(node.url(&format!("/api/v1/{path}"))).query(params).send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

/// The same as a POST with a form body, as Grafana sends long queries.
fn node_form(node: &Node, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let resp = reqwest::blocking::Client::new().post(node.url(&format!("/api/v1/{path}"))).form(params).send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

/// A Prometheus value: "NaN", "+Inf", decimals.
fn number(v: &Value) -> f64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a value: {v}"))
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-300)
}

/// Compares two `data` objects of a query answer.
fn same_answer(want: &Value, got: &Value, what: &str) {
    assert_eq!(got["resultType"], want["resultType"], "{what}: result type\nprometheus: {want}\nnode: {got}");
    let kind = want["resultType"].as_str().unwrap();
    if kind == "scalar" {
        assert_eq!(got["result"][0], want["result"][0], "{what}: time");
        assert!(
            close(number(&want["result"][1]), number(&got["result"][1])),
            "{what}\nprometheus: {want}\nnode: {got}"
        );
        return;
    }
    let by_labels = |v: &Value| -> BTreeMap<String, Vec<(f64, f64)>> {
        v["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let points: Vec<Value> =
                    if kind == "vector" { vec![s["value"].clone()] } else { s["values"].as_array().unwrap().clone() };
                (s["metric"].to_string(), points.iter().map(|p| (p[0].as_f64().unwrap(), number(&p[1]))).collect())
            })
            .collect()
    };
    let (want_series, got_series) = (by_labels(want), by_labels(got));
    assert_eq!(
        got_series.keys().collect::<Vec<_>>(),
        want_series.keys().collect::<Vec<_>>(),
        "{what}: label sets\nprometheus: {want}\nnode: {got}"
    );
    for (labels, want_points) in &want_series {
        let got_points = &got_series[labels];
        assert_eq!(got_points.len(), want_points.len(), "{what} {labels}: points\nprometheus: {want}\nnode: {got}");
        for (w, g) in want_points.iter().zip(got_points) {
            assert!(w.0 == g.0 && close(w.1, g.1), "{what} {labels}: {g:?} where Prometheus has {w:?}");
        }
    }
}

#[test]
fn promql_answers_as_prometheus_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = data();
    // Backfill Prometheus' TSDB before it starts.
    let input = dir.path().join("data.om");
    std::fs::write(&input, openmetrics(&data)).unwrap();
    let promtool = common::which("promtool").expect("no promtool: scripts/clients.sh installs prometheus");
    let out = Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(dir.path().join("tsdb"))
        .output()
        .unwrap();
    assert!(out.status.success(), "promtool: {}", String::from_utf8_lossy(&out.stderr));

    let node = Node::start(dir.path(), &local_config());
    remote_write(&node, &data);
    let prometheus = Prometheus::start(dir.path(), node.port, "");
    let ready = std::time::Instant::now();
    while prometheus.api("query", &[("query", "count(temperature)"), ("time", &(START + 600).to_string())])["data"]
        ["result"][0]["value"][1]
        != "5"
    {
        assert!(ready.elapsed().as_secs() < 60, "prometheus did not load the backfilled blocks");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }

    let end = START + (SAMPLES - 1) * STEP;
    let times = [START + 7, START + 600, START + 1800 + 7, end, end + 200];
    let (range_start, range_end) = ((START + 300).to_string(), (end + 120).to_string());
    for query in QUERIES {
        // Each query must have data somewhere: an empty answer matches an
        // empty answer, and proves nothing.
        let mut samples_compared = 0;
        for t in times {
            let t = t.to_string();
            let params = [("query", *query), ("time", t.as_str())];
            let want = prometheus.api("query", &params);
            let (status, got) = node_api(&node, "query", &params);
            assert_eq!(want["status"], "success", "{query}: {want}");
            assert_eq!(status, 200, "{query} at {t}: {got}");
            same_answer(&want["data"], &got["data"], &format!("{query} at {t}"));
            samples_compared += want["data"]["result"].as_array().map_or(1, Vec::len);
        }
        let params = [("query", *query), ("start", range_start.as_str()), ("end", range_end.as_str()), ("step", "60")];
        let want = prometheus.api("query_range", &params);
        // POST with a form body for the range queries, GET for the instant ones.
        let (status, got) = node_form(&node, "query_range", &params);
        assert_eq!(status, 200, "{query} range: {got}");
        same_answer(&want["data"], &got["data"], &format!("{query} over a range"));
        assert!(samples_compared > 0, "{query}: Prometheus answered nothing at every time");
    }

    // The metadata routes.
    let (start, end) = (START.to_string(), end.to_string());
    let window = [("start", start.as_str()), ("end", end.as_str())];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        window.iter().copied().chain(extra.iter().copied()).collect()
    };
    let cases: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("series".into(), with(&[("match[]", "temperature"), ("match[]", r#"http_requests_total{instance="1"}"#)])),
        ("labels".into(), with(&[("match[]", r#"{__name__=~"http.*|temp.*|request.*"}"#)])),
        ("labels".into(), with(&[("match[]", "temperature")])),
        ("label/job/values".into(), with(&[("match[]", r#"{__name__=~"http.*|request.*"}"#)])),
        ("label/__name__/values".into(), with(&[("match[]", r#"{__name__=~"http.*|temp.*|request.*"}"#)])),
        ("label/le/values".into(), with(&[("match[]", "request_duration_seconds_bucket")])),
    ];
    for (path, params) in cases {
        let want = prometheus.api(&path, &params);
        let (status, got) = node_api(&node, &path, &params);
        assert_eq!(status, 200, "{path}: {got}");
        assert_eq!(want["status"], "success", "{path}: {want}");
        let sorted = |v: &Value| {
            let mut items: Vec<String> = v["data"].as_array().unwrap().iter().map(Value::to_string).collect();
            items.sort();
            items
        };
        assert_eq!(sorted(&got), sorted(&want), "{path} {params:?}");
    }
}

/// Without `match[]`, label names and values come from the metadata
/// backends' key and tag lookups: the same answers as with a `match[]`
/// that selects every series.
#[test]
fn label_routes_without_match_answer_as_with_a_match_of_everything() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    remote_write(&node, &data());
    let everything = [("match[]", r#"{__name__=~".+"}"#)];
    for path in ["labels", "label/__name__/values", "label/job/values", "label/le/values", "label/nope/values"] {
        let (status, all) = node_api(&node, path, &[]);
        let (_, matched) = node_api(&node, path, &everything);
        assert_eq!(status, 200, "{path}: {all}");
        assert_eq!(all, matched, "{path}");
    }
    let (_, names) = node_api(&node, "label/__name__/values", &[]);
    assert_eq!(
        names["data"],
        serde_json::json!([
            "http_requests_total",
            "node_cpu_seconds_total",
            "request_duration_seconds_bucket",
            "temperature"
        ])
    );
}

#[test]
fn the_query_api_refuses_what_it_cannot_answer_as_prometheus_does() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    let cases: &[Refused] = &[
        ("query", &[("query", "sum(")], 400, "bad_data"),
        ("query", &[], 400, "bad_data"),
        ("query", &[("query", "up"), ("time", "yesterday")], 400, "bad_data"),
        ("query", &[("query", "rate(up[5m])[30m:1m]")], 400, "bad_data"),
        ("query_range", &[("query", "up"), ("start", "10"), ("end", "5"), ("step", "1")], 400, "bad_data"),
        ("query_range", &[("query", "up"), ("start", "0"), ("end", "100000"), ("step", "1")], 400, "bad_data"),
        ("query_range", &[("query", "up"), ("start", "0"), ("end", "10"), ("step", "0")], 400, "bad_data"),
        ("query_range", &[("query", "up"), ("start", ""), ("end", "10"), ("step", "1")], 400, "bad_data"),
        ("series", &[], 400, "bad_data"),
        ("series", &[("match[]", "sum(up)")], 400, "bad_data"),
        ("label/not-a-name/values", &[], 400, "bad_data"),
    ];
    for (path, params, status, kind) in cases {
        let (got_status, got) = node_api(&node, path, params);
        assert_eq!((got_status, got["status"].as_str()), (*status, Some("error")), "{path} {params:?}: {got}");
        assert_eq!(got["errorType"], *kind, "{path} {params:?}: {got}");
        assert!(!got["error"].as_str().unwrap_or_default().is_empty(), "{path} {params:?}: {got}");
    }
    // Hostile texts: deep nesting and long operator chains are refused
    // before they reach a recursive parser, and the node goes on.
    let deep = format!("{}1{}", "(".repeat(50_000), ")".repeat(50_000));
    let chain = format!("1{}", "+1".repeat(30_000));
    let unary = format!("{}1", "-".repeat(50_000));
    for text in [deep, chain, unary] {
        let (status, got) = node_form(&node, "query", &[("query", text.as_str()), ("time", "100")]);
        assert_eq!((status, got["errorType"].as_str()), (400, Some("bad_data")), "{got}");
    }
    // An unsupported construct is named.
    let (_, got) = node_api(&node, "query", &[("query", "rate(up[5m])[30m:1m]")]);
    assert!(got["error"].as_str().unwrap().contains("subquer"), "{got}");
    // Grafana's first calls.
    let (status, info) = node_api(&node, "status/buildinfo", &[]);
    assert_eq!(status, 200);
    assert!(info["data"]["version"].as_str().unwrap().starts_with("2."), "{info}");
    let (status, one) = node_api(&node, "query", &[("query", "1+1"), ("time", "100")]);
    assert_eq!((status, &one["data"]), (200, &serde_json::json!({"resultType": "scalar", "result": [100, "2"]})));
    // A range query of one step is still a range query.
    let (status, one) =
        node_api(&node, "query_range", &[("query", "1+1"), ("start", "100"), ("end", "100"), ("step", "15")]);
    let want = serde_json::json!({"resultType": "matrix", "result": [{"metric": {}, "values": [[100, "2"]]}]});
    assert_eq!((status, &one["data"]), (200, &want));
}

/// A metric backend that fails while a selection is being reduced chunk
/// by chunk: the query answers 503 with the backend's error, nothing is
/// left running, and the node answers the next query whole.
#[test]
fn a_fetch_failing_mid_selection_fails_the_query_and_the_next_one_answers() {
    let dir = tempfile::tempdir().unwrap();
    let local = local_config();
    let metrics_start = local.find("[[metrics]]").unwrap();
    let metrics_end = local.find("[[metadata]]").unwrap();
    // The faulty plugin fails fetching series of `boom` (tagged `fail`);
    // its points are in memory, its series in the local metadata backend.
    let config = format!(
        "{}[[metrics]]\nplugin = \"faulty\"\n[metrics.config]\nfail_fetch_on_tag = \"fail=yes\"\n\n{}",
        &local[..metrics_start],
        &local[metrics_end..]
    );
    let node = Node::start(dir.path(), &config);
    let counter = |i: i64| (0..SAMPLES).map(|k| (START + k * STEP, (k * (i + 1)) as f64)).collect::<Vec<_>>();
    let labels = |i: i64| vec![("instance".to_string(), i.to_string())];
    // More than one chunk (64 series) of `a` first, then `boom`: the fetch
    // that fails comes while the chunks before it are reduced.
    let mut data: Vec<TestSeries> = (0..100).map(|i| ("a".to_string(), labels(i), counter(i))).collect();
    let failing = |i: i64| vec![("fail".to_string(), "yes".to_string()), ("instance".to_string(), i.to_string())];
    data.extend((0..10).map(|i| ("boom".to_string(), failing(i), counter(i))));
    remote_write(&node, &data);
    let end = (START + (SAMPLES - 1) * STEP).to_string();
    let at = |query: &'static str| [("query", query), ("start", "1700000300"), ("step", "60"), ("end", end.as_str())];
    let (status, answer) = node_api(&node, "query_range", &at(r#"sum(rate({__name__=~"a|boom"}[5m]))"#));
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["errorType"], "unavailable", "{answer}");
    assert!(answer["error"].as_str().unwrap_or("").contains("faulty"), "{answer}");
    // The same series without `boom`: every instance's rate, summed.
    let (status, answer) = node_api(&node, "query_range", &at("sum(rate(a[5m]))"));
    assert_eq!(status, 200, "{answer}");
    let values = answer["data"]["result"][0]["values"].as_array().unwrap();
    assert!(values.len() > 40, "{answer}");
    let per_second: f64 = (1..=100).map(|i| i as f64 / STEP as f64).sum();
    for v in values {
        assert!(close(number(&v[1]), per_second), "{v} != {per_second}");
    }
}
