//! Hostile and careless clients against a real node: nothing they send may
//! crash it, exhaust it, escape a filter or let a foreign web page in.

mod common;

use std::time::{Duration, Instant};

use common::{heroic_binary, start_failure, write_config, Node};
use serde_json::{json, Value};

/// A node with everything on local disk, plus `extra` config.
fn local_node(dir: &std::path::Path, extra: &str) -> Node {
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{{port}}\"\n{extra}\n[plugins]\ndirs = [\"{{plugins}}\"]\n\
         [[metrics]]\nplugin = \"local\"\n[metrics.config]\ndata_dir = \"{{dir}}/m\"\n\
         [[metadata]]\nplugin = \"local\"\n[metadata.config]\ndata_dir = \"{{dir}}/md\"\n\
         [[suggest]]\nplugin = \"local\"\n[suggest.config]\ndata_dir = \"{{dir}}/s\"\n"
    );
    Node::start(dir, &config)
}

/// A node whose points are kept by the `faulty` test plugin (configured by
/// `faulty`) and whose series by a local metadata backend.
fn faulty_node(dir: &std::path::Path, faulty: &str, query: &str) -> Node {
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{{port}}\"\n[plugins]\ndirs = [\"{{plugins}}\"]\n\
         [[metrics]]\nplugin = \"faulty\"\n[metrics.config]\n{faulty}\n\
         [[metadata]]\nplugin = \"local\"\n[metadata.config]\ndata_dir = \"{{dir}}/md\"\n\
         [query]\n{query}\n"
    );
    Node::start(dir, &config)
}

fn write(node: &Node, key: &str, host: &str, points: &[(i64, f64)]) {
    let body = json!({"series": {"key": key, "tags": {"host": host}}, "data": {"type": "points", "data": points}});
    let (status, reply) = node.post("/write", &body);
    assert_eq!(status, 200, "{reply}");
}

/// One request with the given headers; status, headers and body.
fn send(
    node: &Node,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let client = reqwest::blocking::Client::new();
    let mut req = client.request(method.parse().unwrap(), node.url(path)).timeout(Duration::from_secs(60));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.body(body.to_string()).send().unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", node.log()));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn assert_alive(node: &Node) {
    let (status, body) = node.get("/status");
    assert_eq!(status, 200, "the node must still answer: {body}\n{}", node.log());
}

#[test]
fn deeply_nested_filters_and_queries_get_400_and_the_node_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let node = local_node(dir.path(), "");
    // The reported crash: 20,000 `!` (20 KB), no X-Client-Id needed.
    let bangs = format!("{}$key = a", "!".repeat(20_000));
    let (status, body) = node.post_text("/parser/parse-filter", &bangs);
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("nesting limit"), "{body}");
    let (status, body) = node.get(&format!("/parser/parse-filter?filter={}", "(".repeat(5_000)));
    assert_eq!(status, 400, "{body}");
    for hql in [format!("{}sum(1m)", "(".repeat(20_000)), format!("* from points(1h) where {bangs}")] {
        let (status, body) = node.post_text("/query/metrics", &hql);
        assert_eq!(status, 400, "{body}");
        let (status, body) = node.post_text("/parser/parse-query", &hql);
        assert_eq!(status, 400, "{body}");
    }
    // JSON forms: a filter, an aggregation and a metadata filter.
    let mut filter = json!(["key", "a"]);
    for _ in 0..100 {
        filter = json!(["not", filter]);
    }
    let mut aggregation = json!({"type": "sum"});
    for _ in 0..100 {
        aggregation = json!([aggregation]);
    }
    let (status, body) = node
        .post("/query/metrics", &json!({"filter": filter, "range": {"type": "relative", "value": 1, "unit": "HOURS"}}));
    assert_eq!(status, 400, "{body}");
    let (status, body) = node.post("/query/metrics", &json!({"aggregation": aggregation}));
    assert_eq!(status, 400, "{body}");
    let (status, body) = node.post("/metadata/series", &json!({"filter": filter}));
    assert_eq!(status, 400, "{body}");
    // Deeper than JSON parsing goes at all.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (status, _) = node.request("POST", "/query/metrics", Some(deep), "application/json");
    assert_eq!(status, 400);
    assert_alive(&node);
}

#[test]
fn a_regex_cannot_escape_its_anchors() {
    let dir = tempfile::tempdir().unwrap();
    let node = local_node(dir.path(), "");
    write(&node, "cpu", "web1", &[(1_000, 1.0)]);
    write(&node, "cpu", "db1", &[(1_000, 2.0)]);
    let range = json!({"type": "absolute", "start": 0, "end": 10_000});
    let found = |filter: Value| {
        let (status, body) = node.post("/metadata/series", &json!({"filter": filter, "range": range}));
        (status, body)
    };
    let (status, body) = found(json!(["~", "host", "zzz)|(.*"]));
    assert_eq!(status, 400, "an unbalanced pattern must be refused, not match every series: {body}");
    let (status, body) =
        node.post("/query/metrics", &json!({"query": "* from points(0, 10000) where host ~ \"zzz)|(.*\""}));
    assert_eq!(status, 400, "{body}");
    // The whole value must match.
    let (status, body) = found(json!(["~", "host", "web"]));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["series"].as_array().unwrap().len(), 0, "{body}");
    let (_, body) = found(json!(["~", "host", "zz|db1"]));
    assert_eq!(body["series"].as_array().unwrap().len(), 1, "{body}");
}

#[test]
fn cross_site_pages_can_neither_write_nor_read_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let node = local_node(dir.path(), "");
    let point = r#"{"series":{"key":"csrf","tags":{}},"data":{"type":"points","data":[[1000,1.0]]}}"#;
    // A "simple" cross-site request: no preflight, text/plain.
    let (status, headers, body) =
        send(&node, "POST", "/write", &[("origin", "https://evil.example"), ("content-type", "text/plain")], point);
    assert_eq!(status, 403, "{body}");
    assert!(headers.get("access-control-allow-origin").is_none());
    let (status, _, body) = send(&node, "POST", "/write", &[("content-type", "text/plain")], point);
    assert_eq!(status, 415, "{body}");
    let (status, _, body) =
        send(&node, "POST", "/write", &[("content-type", "application/x-www-form-urlencoded")], point);
    assert_eq!(status, 415, "{body}");
    let (status, _, body) = send(&node, "POST", "/write", &[], point);
    assert_eq!(status, 415, "{body}");
    let (status, _, body) = send(
        &node,
        "DELETE",
        "/metadata/series",
        &[("origin", "https://evil.example"), ("content-type", "application/json")],
        "{}",
    );
    assert_eq!(status, 403, "{body}");
    // Nothing was stored.
    assert!(node.points_by_host("csrf", 0, 10_000).is_empty());
    // No answer invites a foreign page to read it, preflights included.
    let (_, headers, _) = send(&node, "GET", "/status", &[("origin", "https://evil.example")], "");
    assert!(headers.get("access-control-allow-origin").is_none());
    let preflight = [
        ("origin", "https://evil.example"),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "content-type"),
    ];
    let (status, headers, _) = send(&node, "OPTIONS", "/query/metrics", &preflight, "");
    assert_eq!(status, 200);
    assert!(headers.get("access-control-allow-origin").is_none());
    // Same-origin and non-browser clients still write.
    let (status, _, body) = send(
        &node,
        "POST",
        "/write",
        &[("content-type", "application/json"), ("origin", &format!("http://127.0.0.1:{}", node.port))],
        point,
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn allowed_origins_get_cors_answers_and_preflights() {
    let dir = tempfile::tempdir().unwrap();
    let node = local_node(dir.path(), "cors_allowed_origins = [\"https://grafana.example.com\"]");
    let preflight = [
        ("origin", "https://grafana.example.com"),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "content-type, x-client-id"),
    ];
    // Preflights are answered on /query/* too, without an X-Client-Id.
    for path in ["/query/metrics", "/write", "/metadata/series"] {
        let (status, headers, _) = send(&node, "OPTIONS", path, &preflight, "");
        assert_eq!(status, 200, "{path}");
        assert_eq!(headers["access-control-allow-origin"], "https://grafana.example.com", "{path}");
        assert_eq!(headers["access-control-allow-methods"], "POST");
        assert_eq!(headers["access-control-allow-headers"], "content-type, x-client-id");
    }
    let hql = "* from points(0, 10000) where $key = cpu";
    let (status, headers, body) = send(
        &node,
        "POST",
        "/query/metrics",
        &[("origin", "https://grafana.example.com"), ("x-client-id", "g"), ("content-type", "text/plain")],
        hql,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["access-control-allow-origin"], "https://grafana.example.com");
    let point = r#"{"series":{"key":"x","tags":{}},"data":{"type":"points","data":[[1000,1.0]]}}"#;
    let (status, _, body) = send(
        &node,
        "POST",
        "/write",
        &[("origin", "https://grafana.example.com"), ("content-type", "application/json")],
        point,
    );
    assert_eq!(status, 200, "{body}");
    let (status, headers, _) = send(
        &node,
        "POST",
        "/write",
        &[("origin", "https://other.example.com"), ("content-type", "application/json")],
        point,
    );
    assert_eq!(status, 403);
    assert!(headers.get("access-control-allow-origin").is_none());
}

#[test]
fn write_tokens_guard_the_routes_that_change_data() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokens"), "# one per line\nfrom-the-file-0123456789\n").unwrap();
    let node = local_node(
        dir.path(),
        "[server.auth]\nwrite_tokens = [\"from-the-config-0123456789\"]\nwrite_tokens_file = \"{dir}/tokens\"",
    );
    let point = r#"{"series":{"key":"t","tags":{}},"data":{"type":"points","data":[[1000,1.0]]}}"#;
    let json_ct = ("content-type", "application/json");
    let (status, headers, body) = send(&node, "POST", "/write", &[json_ct], point);
    assert_eq!(status, 401, "{body}");
    assert!(headers["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let (status, _, _) =
        send(&node, "POST", "/write", &[json_ct, ("authorization", "Bearer wrong-token-0123456789")], point);
    assert_eq!(status, 401);
    for token in ["from-the-config-0123456789", "from-the-file-0123456789"] {
        let (status, _, body) =
            send(&node, "POST", "/write", &[json_ct, ("authorization", &format!("Bearer {token}"))], point);
        assert_eq!(status, 200, "{body}");
    }
    let (status, _, _) = send(&node, "DELETE", "/metadata/series", &[json_ct], "{}");
    assert_eq!(status, 401);
    // Prometheus remote-write is a write like the others.
    let remote_write = [("content-type", "application/x-protobuf"), ("content-encoding", "snappy")];
    let (status, _, body) = send(&node, "POST", "/api/v1/write", &remote_write, "");
    assert_eq!(status, 401, "{body}");
    // Reads need no token.
    assert_eq!(node.points_by_host("t", 0, 10_000).len(), 1);
    assert!(!node.log().contains("from-the-config"), "tokens must not be logged");
}

#[test]
fn bodies_are_limited_per_route() {
    let dir = tempfile::tempdir().unwrap();
    let node = local_node(dir.path(), "max_request_body_bytes = 65536");
    let big = format!("{{\"query\": \"{}\"}}", "x".repeat(100_000));
    let (status, body) = node.request("POST", "/query/metrics", Some(big.clone()), "application/json");
    assert_eq!(status, 413, "{body}");
    let (status, _) = node.request("POST", "/metadata/series", Some(big), "application/json");
    assert_eq!(status, 413);
    // /write keeps the large limit.
    let points: Vec<(i64, f64)> = (1..=20_000).map(|i| (i * 1000, i as f64)).collect();
    let body = json!({"series": {"key": "big"}, "data": {"type": "points", "data": points}}).to_string();
    assert!(body.len() > 65_536);
    let (status, reply) = node.request("POST", "/write", Some(body.clone()), "application/json");
    assert_eq!(status, 200, "{reply}");

    // Sent in chunks, without a Content-Length: read as any body, and cut
    // off once past the limit.
    let chunked = |path: &str, body: String| {
        let reader = std::io::Cursor::new(body.into_bytes());
        let reply = reqwest::blocking::Client::new()
            .post(node.url(path))
            .header("content-type", "application/json")
            .body(reqwest::blocking::Body::new(reader))
            .send()
            .unwrap();
        (reply.status().as_u16(), reply.text().unwrap())
    };
    let (status, reply) = chunked("/write", body);
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = chunked("/query/metrics", format!("{{\"query\": \"{}\"}}", "x".repeat(100_000)));
    assert_eq!(status, 413, "{reply}");
    assert!(reply.contains("limit of 65536 bytes"), "{reply}");
    assert_alive(&node);
}

#[test]
fn a_client_cannot_raise_the_configured_limits() {
    let dir = tempfile::tempdir().unwrap();
    let node = local_node(dir.path(), "[query]\ndata_limit = 100\nseries_limit = 2\n");
    for host in ["a", "b", "c"] {
        let points: Vec<(i64, f64)> = (1..=50).map(|i| (i * 1000, i as f64)).collect();
        write(&node, "lim", host, &points);
    }
    let range = json!({"type": "absolute", "start": 0, "end": 100_000});
    let (status, body) = node.post(
        "/query/metrics",
        &json!({"range": range, "filter": ["key", "lim"], "options": {"dataLimit": 1_000_000, "seriesLimit": 1000}}),
    );
    assert_eq!(status, 200, "{body}");
    let limits: Vec<&str> = body["limits"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert!(limits.contains(&"SERIES"), "{body}");
    // Lowering is allowed.
    let (_, body) =
        node.post("/query/metrics", &json!({"range": range, "filter": ["key", "lim"], "options": {"dataLimit": 10}}));
    assert!(body["limits"].as_array().unwrap().iter().any(|l| l == "QUOTA"), "{body}");
}

#[test]
fn excess_queries_wait_then_get_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let node = faulty_node(dir.path(), "fetch_delay_ms = 3000", "max_concurrent = 1\nqueue_timeout_ms = 200");
    write(&node, "slow", "a", &[(1_000, 1.0)]);
    let url = node.url("/query/metrics");
    let slow = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .post(url)
            .header("x-client-id", "t")
            .header("content-type", "text/plain")
            .timeout(Duration::from_secs(60))
            .body("* from points(0, 10000) where $key = slow")
            .send()
            .unwrap()
            .status()
            .as_u16()
    });
    std::thread::sleep(Duration::from_millis(800));
    let started = Instant::now();
    let (status, headers, body) = send(
        &node,
        "POST",
        "/query/metrics",
        &[("x-client-id", "t"), ("content-type", "text/plain")],
        "* from points(0, 10000) where $key = slow",
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(headers["retry-after"], "1");
    assert!(body["message"].as_str().unwrap().contains("query.max_concurrent"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(2), "refused after the queue timeout, not after the slow query");
    // Metadata lookups take a query slot too.
    let (status, body) = node.post("/metadata/series", &json!({"filter": ["key", "slow"]}));
    assert_eq!(status, 503, "{body}");
    assert_alive(&node);
    assert_eq!(slow.join().unwrap(), 200);
}

#[test]
fn a_query_that_times_out_stops_its_plugin_work() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("cancelled");
    let node = faulty_node(
        dir.path(),
        &format!("fetch_delay_ms = 30000\ncancelled_flag = \"{}\"", flag.display()),
        "timeout_secs = 1",
    );
    write(&node, "slow", "a", &[(1_000, 1.0)]);
    let (status, body) = node.post_text("/query/metrics", "* from points(0, 10000) where $key = slow");
    assert_eq!(status, 503, "{body}");
    assert!(body["message"].as_str().unwrap().contains("timed out"), "{body}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !flag.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(flag.exists(), "the plugin's fetch was not cancelled\n{}", node.log());
}

#[test]
fn a_client_that_goes_away_stops_its_query() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("cancelled");
    let node = faulty_node(dir.path(), &format!("fetch_delay_ms = 30000\ncancelled_flag = \"{}\"", flag.display()), "");
    write(&node, "slow", "a", &[(1_000, 1.0)]);
    let result = reqwest::blocking::Client::new()
        .post(node.url("/query/metrics"))
        .header("x-client-id", "t")
        .header("content-type", "text/plain")
        .timeout(Duration::from_millis(500))
        .body("* from points(0, 10000) where $key = slow")
        .send();
    assert!(result.is_err(), "the client gave up");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !flag.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(flag.exists(), "the query went on after its client left\n{}", node.log());
}

#[test]
fn invalid_settings_stop_the_node_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = write_config(
        dir.path(),
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[plugins]\ndirs = [\"{plugins}\"]\n[[metrics]]\nplugin = \"local\"\n[metrics.config]\ndata_dir = \"{dir}/m\"\n",
    );
    for bad in ["0", "many", "100000"] {
        let out = std::process::Command::new(heroic_binary())
            .arg("--config")
            .arg(&config)
            .env("HEROIC_PLUGIN_THREADS", bad)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{log}");
        assert!(log.contains("HEROIC_PLUGIN_THREADS must be a whole number from 1 to 1024"), "{log}");
        assert!(!log.contains("panic"), "{log}");
    }
    for (setting, expected) in [
        ("[query]\nmax_concurrent = 0", "query.max_concurrent must be at least 1"),
        ("[server]\nmax_request_body_bytes = 0", "server.max_request_body_bytes must be at least 1"),
        ("[server]\ncors_allowed_origins = [\"grafana.example.com\"]", "is not an origin"),
        ("[server.auth]\nwrite_tokens = [\"short\"]", "too short"),
        ("[query]\nmax_retained_points = 10", "max_retained_points"),
    ] {
        let config = format!("{setting}\n[plugins]\ndirs = [\"{{plugins}}\"]\n");
        let log = start_failure(dir.path(), &config);
        assert!(log.contains(expected), "{setting}: {log}");
    }
}

#[test]
fn slow_or_oversized_request_heads_are_cut_off() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let node = local_node(dir.path(), "header_read_timeout_secs = 1");
    // A client that starts a request and never finishes its headers.
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", node.port)).unwrap();
    slow.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    assert!(started.elapsed() < Duration::from_secs(5), "the half-sent request was not cut off");
    // Headers of 100 KiB.
    let mut big = std::net::TcpStream::connect(("127.0.0.1", node.port)).unwrap();
    let head = format!("GET /status HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(100 * 1024));
    let _ = big.write_all(head.as_bytes());
    big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_alive(&node);
}
