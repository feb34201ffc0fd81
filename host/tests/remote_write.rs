//! Prometheus remote-write, `POST /api/v1/write`:
//!
//! - a real Prometheus (Debian's `prometheus`) scrapes the node and
//!   remote-writes what it scraped back to it: the node then holds exactly
//!   the samples Prometheus holds, timestamps and values;
//! - vmagent (Debian's `victoria-metrics`) forwards samples pushed to it,
//!   and they arrive exactly;
//! - the answers a sender acts on: 204 written, 400 never storable (the
//!   sender drops the batch), 413 too large, 415 a protocol or encoding this
//!   node does not read; stale markers and non-finite values dropped and
//!   counted, the rest of the request written.

mod common;

use std::time::{Duration, Instant};

use common::prometheus::Prometheus;
use common::{local_config, Node};
use heroic::prometheus::remote_write::{Label, Sample, TimeSeries, WriteRequest, STALE_NAN};
use prost::Message;
use serde_json::{json, Value};

/// The node's raw points of the one series matching `filter`, up to `end`.
fn node_points(node: &Node, filter: Value, end: i64) -> Vec<(i64, f64)> {
    let body = json!({"filter": filter, "range": {"type": "absolute", "start": 0, "end": end}});
    let (status, reply) = node.post("/query/metrics", &body);
    assert_eq!(status, 200, "{reply}");
    let groups = reply["result"].as_array().unwrap();
    assert!(groups.len() <= 1, "one series expected: {reply}");
    groups
        .iter()
        .flat_map(|g| g["values"].as_array().unwrap())
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

/// Prometheus' raw samples of the one series `selector` matches, up to `end`.
fn prometheus_points(prometheus: &Prometheus, selector: &str, end: i64) -> Vec<(i64, f64)> {
    let time = format!("{}.{:03}", end / 1000, end % 1000);
    let reply = prometheus.api("query", &[("query", &format!("{selector}[10m]")), ("time", &time)]);
    let result = reply["data"]["result"].as_array().unwrap_or_else(|| panic!("{reply}"));
    assert_eq!(result.len(), 1, "one series expected for {selector}: {reply}");
    result[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| ((p[0].as_f64().unwrap() * 1000.0).round() as i64, p[1].as_str().unwrap().parse().unwrap()))
        .collect()
}

#[test]
fn a_real_prometheus_remote_writes_what_it_scrapes() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    let remote_write = format!(
        "remote_write:\n  - url: {}\n    queue_config: {{batch_send_deadline: 500ms, max_samples_per_send: 200}}\n    \
         metadata_config: {{send: false}}\n",
        node.url("/api/v1/write")
    );
    let prometheus = Prometheus::start(dir.path(), node.port, &remote_write);
    let up = || json!(["and", ["key", "up"], ["=", "job", "heroic"]]);
    let far = 253_402_300_799_999; // the end of year 9999
    let deadline = Instant::now() + Duration::from_secs(60);
    let cutoff = loop {
        let points = node_points(&node, up(), far);
        if points.len() >= 5 {
            break points.last().unwrap().0;
        }
        assert!(Instant::now() < deadline, "the node got {} samples of up in 60 s", points.len());
        std::thread::sleep(Duration::from_millis(500));
    };
    // Every sample scraped up to the cutoff has been sent by now (a batch
    // waits 500 ms at most).
    std::thread::sleep(Duration::from_secs(3));
    let cases = [
        ("up{job=\"heroic\"}", up()),
        ("scrape_samples_scraped{job=\"heroic\"}", json!(["key", "scrape_samples_scraped"])),
        ("heroic_build_info{job=\"heroic\"}", json!(["key", "heroic_build_info"])),
        (
            // The node counting the remote writes it answered.
            "heroic_http_requests_total{route=\"/api/v1/write\",method=\"POST\",status=\"204\"}",
            json!([
                "and",
                ["key", "heroic_http_requests_total"],
                ["=", "route", "/api/v1/write"],
                ["=", "method", "POST"],
                ["=", "status", "204"]
            ]),
        ),
    ];
    for (selector, filter) in cases {
        let want = prometheus_points(&prometheus, selector, cutoff);
        let got = node_points(&node, filter, cutoff);
        assert!(want.len() >= 3, "{selector}: Prometheus holds {want:?}");
        // Prometheus keeps only what it scraped since it started; the node
        // may hold the same. The node holds every sample Prometheus holds.
        assert_eq!(got, want, "{selector}");
    }
}

fn snappy(bytes: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(bytes).unwrap()
}

fn series(name: &str, labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    let mut all = vec![Label { name: "__name__".into(), value: name.into() }];
    all.extend(labels.iter().map(|(n, v)| Label { name: n.to_string(), value: v.to_string() }));
    let samples = samples.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect();
    TimeSeries { labels: all, samples, histograms: Vec::new() }
}

fn send(node: &Node, body: Vec<u8>, content_type: Option<&str>, encoding: Option<&str>) -> (u16, String) {
    let mut request = reqwest::blocking::Client::new().post(node.url("/api/v1/write")).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    if let Some(e) = encoding {
        request = request.header("content-encoding", e);
    }
    let resp = request.send().unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

fn scrape_value(node: &Node, sample: &str) -> f64 {
    let text = reqwest::blocking::get(node.url("/metrics")).unwrap().text().unwrap();
    common::sample_in(&text, sample).unwrap_or_else(|| panic!("no {sample} in the scrape"))
}

#[test]
fn remote_write_answers_as_prometheus_receivers_do() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    let proto = Some("application/x-protobuf");
    let snappy_enc = Some("snappy");
    let request = WriteRequest {
        timeseries: vec![
            series(
                "cpu",
                &[("host", "a"), ("dc", "")],
                &[(2000, 0.5), (1000, 0.25), (3000, f64::from_bits(STALE_NAN))],
            ),
            series("cpu", &[("host", "b")], &[(1000, f64::NAN), (2000, 1.5)]),
        ],
    };
    let (status, text) = send(&node, snappy(&request.encode_to_vec()), proto, snappy_enc);
    assert_eq!(status, 204, "{text}");
    let a = node_points(&node, json!(["and", ["key", "cpu"], ["=", "host", "a"]]), 10_000);
    assert_eq!(a, [(1000, 0.25), (2000, 0.5)]);
    let b = node_points(&node, json!(["and", ["key", "cpu"], ["=", "host", "b"]]), 10_000);
    assert_eq!(b, [(2000, 1.5)]);
    assert_eq!(scrape_value(&node, "heroic_write_dropped_samples_total{reason=\"stale\"}"), 1.0);
    assert_eq!(scrape_value(&node, "heroic_write_dropped_samples_total{reason=\"non_finite\"}"), 1.0);
    // An empty label is no label: `dc` is not a tag.
    let (_, tags) = node.post("/metadata/tags", &json!({"filter": ["key", "cpu"]}));
    assert!(!tags.to_string().contains("\"dc\""), "{tags}");

    // Never storable: 400, with the reason.
    let no_name = WriteRequest { timeseries: vec![TimeSeries { labels: vec![], samples: vec![], histograms: vec![] }] };
    for (body, reason) in [
        (b"plain text".to_vec(), "snappy"),
        (snappy(&[0xff; 32]), "protobuf"),
        (snappy(&no_name.encode_to_vec()), "no metric name"),
    ] {
        let (status, text) = send(&node, body, proto, snappy_enc);
        assert_eq!(status, 400, "{reason}: {text}");
        assert!(text.contains(reason), "{reason}: {text}");
    }
    // A body that would decompress to 1 GiB: refused from its header.
    let (status, text) = send(&node, vec![0x80, 0x80, 0x80, 0x80, 0x04], proto, snappy_enc);
    assert_eq!(status, 413, "{text}");
    // A message this node does not know, or a body that is not snappy: 415.
    let v3 = Some("application/x-protobuf;proto=io.prometheus.write.v3.Request");
    for (ct, enc) in [(v3, snappy_enc), (proto, None), (Some("application/json"), snappy_enc)] {
        let (status, text) = send(&node, snappy(&request.encode_to_vec()), ct, enc);
        assert_eq!(status, 415, "{ct:?} {enc:?}: {text}");
    }
    // Nothing to write is not an error.
    let (status, _) = send(&node, snappy(&[]), proto, snappy_enc);
    assert_eq!(status, 204);
    let (status, _) = node.get("/api/v1/write");
    assert_eq!(status, 405);
}

/// Remote-write 2.0 (`io.prometheus.write.v2.Request`): labels through the
/// symbols table, the written counts in the answer's headers, broken
/// references refused. (No 2.0 sender can be installed here: Debian's
/// Prometheus and vmagent send 1.0 only.)
#[test]
fn remote_write_2_0_is_read_and_answered_with_the_written_counts() {
    use heroic::prometheus::remote_write_v2::{Request, TimeSeries as SeriesV2};
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    let v2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
    let post = |request: &Request| {
        let reply = reqwest::blocking::Client::new()
            .post(node.url("/api/v1/write"))
            .header("content-type", v2)
            .header("content-encoding", "snappy")
            .header("x-prometheus-remote-write-version", "2.0.0")
            .body(snappy(&request.encode_to_vec()))
            .send()
            .unwrap();
        let header = |name: &str| reply.headers().get(name).map(|v| v.to_str().unwrap().to_string());
        let written = (
            header("x-prometheus-remote-write-samples-written"),
            header("x-prometheus-remote-write-histograms-written"),
        );
        (reply.status().as_u16(), written, reply.text().unwrap())
    };
    let samples = |s: &[(i64, f64)]| s.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect();
    let request = Request {
        symbols: ["", "__name__", "cpu", "host", "a", "b"].map(String::from).to_vec(),
        timeseries: vec![
            SeriesV2 {
                labels_refs: vec![1, 2, 3, 4],
                samples: samples(&[(2000, 0.5), (1000, 0.25)]),
                histograms: vec![],
            },
            SeriesV2 {
                labels_refs: vec![1, 2, 3, 5],
                samples: samples(&[(1000, f64::from_bits(STALE_NAN)), (2000, 1.5)]),
                histograms: vec![],
            },
        ],
    };
    let (status, written, text) = post(&request);
    assert_eq!(status, 204, "{text}");
    assert_eq!(written, (Some("3".into()), Some("0".into())), "the stale marker is not written");
    let a = node_points(&node, json!(["and", ["key", "cpu"], ["=", "host", "a"]]), 10_000);
    assert_eq!(a, [(1000, 0.25), (2000, 0.5)]);
    let b = node_points(&node, json!(["and", ["key", "cpu"], ["=", "host", "b"]]), 10_000);
    assert_eq!(b, [(2000, 1.5)]);

    let broken = Request {
        symbols: ["", "__name__", "cpu"].map(String::from).to_vec(),
        timeseries: vec![SeriesV2 { labels_refs: vec![1, 7], samples: samples(&[(1000, 1.0)]), histograms: vec![] }],
    };
    let (status, _, text) = post(&broken);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("refers to symbol 7"), "{text}");
}

/// The example Prometheus configuration is one Prometheus accepts, and it
/// writes to this route.
#[test]
fn the_example_prometheus_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/prometheus-remote-write.yml");
    let promtool = common::which("promtool").expect("no `promtool` on PATH: scripts/clients.sh installs prometheus");
    let out = std::process::Command::new(promtool).args(["check", "config", example]).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(example).unwrap();
    assert!(text.contains("url: http://127.0.0.1:8080/api/v1/write"), "{text}");
}

/// vmagent (Debian's `victoria-metrics`), a second real sender: samples
/// pushed to it in the Prometheus text format, with their own timestamps,
/// are forwarded by its remote-write and arrive at the node exactly.
#[test]
fn vmagent_forwards_to_the_node_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    let vmagent = common::which("vmagent").expect("no vmagent: scripts/clients.sh installs victoria-metrics");
    let port = common::free_port();
    let log = std::fs::File::create(dir.path().join("vmagent.log")).unwrap();
    let child = std::process::Command::new(vmagent)
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg(format!("-remoteWrite.url={}", node.url("/api/v1/write")))
        .arg(format!("-remoteWrite.tmpDataPath={}", dir.path().join("vmagent").display()))
        .arg("-remoteWrite.flushInterval=100ms")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start vmagent");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _vmagent = Kill(child);

    // Values with few digits: vmagent's own text parser (fastfloat) reads
    // long decimals to the nearest few ulps, not exactly.
    let samples: Vec<(i64, f64)> =
        (0..50).map(|i| (1_700_000_000_000 + i * 10_000, ((i as f64 * 0.37).sin() * 1e6).round() / 1e3)).collect();
    let text: String = samples
        .iter()
        .map(|(t, v)| format!("vm_forwarded{{host=\"a\",dc=\"x\"}} {v} {t}\n"))
        .chain(std::iter::once("vm_other{host=\"b\"} 1e-3 1700000000000\n".to_string()))
        .collect();
    let push = format!("http://127.0.0.1:{port}/api/v1/import/prometheus");
    let deadline = Instant::now() + Duration::from_secs(30);
    // vmagent needs a moment to listen.
    loop {
        match reqwest::blocking::Client::new().post(&push).body(text.clone()).send() {
            Ok(r) if r.status().is_success() => break,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            other => panic!("vmagent refused the push: {other:?}"),
        }
    }
    let far = 253_402_300_799_999;
    let filter = || json!(["and", ["key", "vm_forwarded"], ["=", "host", "a"], ["=", "dc", "x"]]);
    loop {
        let got = node_points(&node, filter(), far);
        if got.len() >= samples.len() {
            assert_eq!(got, samples);
            break;
        }
        assert!(Instant::now() < deadline, "the node got {} of {} samples from vmagent", got.len(), samples.len());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(node_points(&node, json!(["key", "vm_other"]), far), vec![(1_700_000_000_000, 1e-3)]);
}
