//! Heroic 2.x API fidelity (docs: /work/shared/spec/heroic-compat.md), over
//! HTTP on the real binary with the `local` plugin: `/status` and `GET /`
//! (§3), the endpoints and aliases (§6), `/write` bodies (§7), HQL filter
//! precedence (§8), error types (§9), suggest order and defaults (§10),
//! `OPTIONS` (§11) and `/cluster/*` (§14).

mod common;

use std::time::Duration;

use common::Node;
use serde_json::{json, Value};

/// examples/local.toml, with the port and plugin directory of this test run
/// and `extra` appended.
fn local_config(extra: &str) -> String {
    format!("{}\n{extra}\n", common::local_config())
}

fn write(node: &Node, key: &str, tags: Value) {
    let body = json!({"series": {"key": key, "tags": tags}, "data": {"type": "points", "data": [[1000, 1.0]]}});
    let (status, reply) = node.post("/write", &body);
    assert_eq!(status, 200, "{reply}");
}

/// One request with exactly these headers: status, headers, body.
fn send(
    node: &Node,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::blocking::Client::new()
        .request(method.parse().unwrap(), node.url(path))
        .timeout(Duration::from_secs(60));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.body(body.to_string()).send().unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", node.log()));
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let text = resp.text().unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// cpu{host=a,site=lon}, cpu{host=b,site=sto}, cpu{host=c,site=lon}, mem{host=a,site=lon}.
fn fixture() -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config(""));
    write(&node, "cpu", json!({"host": "a", "site": "lon"}));
    write(&node, "cpu", json!({"host": "b", "site": "sto"}));
    write(&node, "cpu", json!({"host": "c", "site": "lon"}));
    write(&node, "mem", json!({"host": "a", "site": "lon"}));
    (dir, node)
}

#[test]
fn status_service_info_backends_and_aliases() {
    let (_dir, node) = fixture();
    // §3: `service` is the `{name, version, id, commit}` of `GET /`.
    let (status, reply) = node.get("/status");
    assert_eq!(status, 200, "{reply}");
    let service = &reply["service"];
    assert_eq!(service["name"], "heroic", "examples/local.toml names the service: {reply}");
    assert_eq!(service["id"], "heroic", "{reply}");
    assert!(service["version"].is_string() && service["commit"].is_string(), "{reply}");
    assert_eq!(node.get("/").1, *service);
    assert_eq!(reply["cluster"], json!({"ok": true, "onlineNodes": 1, "offlineNodes": 0}));
    assert_eq!(reply["backends"], json!({"ok": true, "available": 1, "ready": 1}));
    assert_eq!(reply["metadataBackend"], json!({"ok": true, "available": 1, "ready": 1}));
    let consumers = &reply["consumers"];
    assert_eq!((consumers["ok"].clone(), consumers["available"].clone()), (json!(true), json!(0)), "{reply}");

    // §6: `GET /backends` lists metric, then metadata, then suggest backends.
    let (status, reply) = node.get("/backends");
    assert_eq!(status, 200, "{reply}");
    let data: Vec<&str> = reply["data"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    assert_eq!(data.len(), 3, "{reply}");
    for (line, role) in data.iter().zip(["metrics", "metadata", "suggest"]) {
        assert!(line.contains(role), "{role} expected in {line:?}");
    }

    // The aliases answer as what they stand for.
    let query = json!({"range": {"type": "absolute", "start": 0, "end": 10_000}, "filter": ["key", "cpu"]});
    let (status, reply) = node.post("/metrics", &query);
    assert_eq!((status, reply["result"].as_array().map(Vec::len)), (200, Some(3)), "{reply}");
    assert_eq!(node.post("/tags", &json!({})).1["tags"], node.post("/metadata/tags", &json!({})).1["tags"]);
    let (status, reply) = node.post("/keys", &json!({}));
    assert_eq!((status, reply["keys"].clone()), (200, json!(["cpu", "mem"])), "{reply}");
    // The alias of /query/* needs an X-Client-Id too.
    let (status, _, reply) =
        send(&node, "POST", "/metrics", &[("content-type", "application/json")], &query.to_string());
    assert_eq!((status, reply["type"].as_str()), (400, Some("authentication-error")), "{reply}");
}

#[test]
fn write_bodies_as_heroic() {
    let (_dir, node) = fixture();
    // §7: no `data` writes nothing.
    let (status, reply) = node.post("/write", &json!({"series": {"key": "cpu", "tags": {}}}));
    assert_eq!((status, reply), (200, json!({"times": []})));
    let (status, reply) = node
        .post("/write", &json!({"series": {"key": "w", "tags": {}}, "data": {"type": "points", "data": [[1, 2.0]]}}));
    assert_eq!(status, 200, "{reply}");
    assert!(!reply["times"].as_array().unwrap().is_empty(), "{reply}");
    // Types the plugin interface cannot carry are refused in Heroic's shape.
    let cardinality = json!({"series": {"key": "w", "tags": {}},
        "data": {"type": "cardinality", "data": [[1, 2]]}});
    let (status, reply) = node.post("/write", &cardinality);
    assert_eq!(status, 400, "{reply}");
    assert_eq!((reply["type"].as_str(), reply["path"].as_str()), (Some("json-error"), Some("data.type")), "{reply}");
    assert_eq!(reply["reason"], "Bad Request");
    let (status, reply) =
        node.post("/write", &json!({"series": {"key": "w", "tags": {}}, "data": {"type": "points", "data": []}}));
    assert_eq!(status, 400, "{reply}");
}

#[test]
fn the_ingestion_filter_drops_writes_as_heroic() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config("[ingestion]\nfilter = 'host = a'"));
    // §7: a series the filter drops answers 200 with no times, and is not stored.
    let body = |host: &str| json!({"series": {"key": "cpu", "tags": {"host": host}}, "data": {"type": "points", "data": [[1000, 1.0]]}});
    let (status, reply) = node.post("/write", &body("b"));
    assert_eq!((status, reply), (200, json!({"times": []})));
    let (status, reply) = node.post("/write", &body("a"));
    assert_eq!(status, 200, "{reply}");
    assert!(!reply["times"].as_array().unwrap().is_empty(), "{reply}");
    let (status, reply) = node.post("/metadata/series", &json!({"filter": ["key", "cpu"]}));
    assert_eq!(status, 200, "{reply}");
    let hosts: Vec<&str> =
        reply["series"].as_array().unwrap().iter().map(|s| s["tags"]["host"].as_str().unwrap()).collect();
    assert_eq!(hosts, ["a"], "{reply}");
}

#[test]
fn hql_filters_select_what_heroic_selects() {
    let (_dir, node) = fixture();
    // The series an HQL filter selects (`["q", hql]` is HQL inside JSON).
    let hosts = |hql: &str| -> Vec<String> {
        let (status, reply) = node.post("/metadata/series", &json!({"filter": ["q", hql]}));
        assert_eq!(status, 200, "{hql}: {reply}");
        let mut hosts: Vec<String> = reply["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| format!("{}/{}", s["key"].as_str().unwrap(), s["tags"]["host"].as_str().unwrap()))
            .collect();
        hosts.sort();
        hosts
    };
    // The same filter in a query.
    let (status, reply) = node.post_text("/query/metrics", "* from points(0, 10000) where !site = lon and host = a");
    assert_eq!((status, reply["result"].as_array().map(Vec::len)), (200, Some(2)), "{reply}");
    // §8: `or` binds tighter than `and`: `$key = mem and (host = a or host = b)`.
    assert_eq!(hosts("$key = mem and host = a or host = b"), ["mem/a"]);
    assert_eq!(hosts("($key = mem and host = a) or host = b"), ["cpu/b", "mem/a"]);
    // `!` negates everything to its right: `!(site = lon and host = a)`.
    assert_eq!(hosts("!site = lon and host = a"), ["cpu/b", "cpu/c"]);
    assert_eq!(hosts("!(site = lon) and host = b"), ["cpu/a", "cpu/b", "cpu/c", "mem/a"]);
    assert_eq!(hosts("(!site = lon) and host = b"), ["cpu/b"]);
    let (status, reply) = node.get("/parser/parse-filter?filter=a%20%3D%201%20and%20b%20%3D%202%20or%20c%20%3D%203");
    assert_eq!(status, 200, "{reply}");
    // (`and`/`or` terms come sorted: compare as a set.)
    let terms = reply.as_array().unwrap();
    assert_eq!((terms[0].as_str(), terms.len()), (Some("and"), 3), "{reply}");
    assert!(terms.contains(&json!(["=", "a", "1"])), "{reply}");
    assert!(terms.contains(&json!(["or", ["=", "b", "2"], ["=", "c", "3"]])), "{reply}");
}

#[test]
fn errors_have_heroics_types() {
    let (_dir, node) = fixture();
    // §9: HQL syntax errors: 1-based line, 0-based column, an end equal to the start.
    let (status, reply) = node.post_text("/parser/parse-filter", "a = 1 and");
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["type"], "parse-error", "{reply}");
    assert_eq!(
        [&reply["line"], &reply["col"], &reply["lineEnd"], &reply["colEnd"]],
        [&json!(1), &json!(9), &json!(1), &json!(9)]
    );
    assert!(reply["message"].as_str().unwrap().starts_with("1:9: "), "{reply}");
    // In a batch too, the message starts with the position; the query's name follows.
    let (status, reply) =
        node.post("/query/batch", &json!({"queries": {"A": {"query": "* from points(1h) where a = 1 and"}}}));
    assert_eq!((status, reply["type"].as_str()), (400, Some("parse-error")), "{reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(message.starts_with(&format!("{}:{}: ", reply["line"], reply["col"])), "{reply}");
    assert!(message.ends_with("(query \"A\")"), "{reply}");
    // Errors found after parsing: 0-based line, character offsets spanning the expression.
    let (status, reply) = node.post_text("/parser/parse-query", "sum(10m)\n| average(1w)");
    assert_eq!((status, reply["type"].as_str()), (400, Some("parse-error")), "{reply}");
    assert_eq!(
        [&reply["line"], &reply["col"], &reply["lineEnd"], &reply["colEnd"]],
        [&json!(1), &json!(19), &json!(1), &json!(20)],
        "{reply}"
    );
    assert!(reply["message"].as_str().unwrap().starts_with("1:19: "), "{reply}");
    let (status, reply) = node.post_text("/parser/parse-filter", "not a = 1");
    assert_eq!((status, reply["type"].as_str()), (400, Some("parse-error")), "{reply}");

    let json_ct = [("content-type", "application/json"), ("x-client-id", "t")];
    let (status, _, reply) = send(&node, "POST", "/query/metrics", &json_ct, "{\"range\": ");
    assert_eq!((status, reply["type"].as_str()), (400, Some("json-parse-error")), "{reply}");
    assert!(reply["line"].is_number() && reply["col"].is_number(), "{reply}");
    let (status, _, reply) = send(&node, "POST", "/query/metrics", &json_ct, "");
    assert_eq!(status, 400, "{reply}");
    assert_eq!((reply["type"].as_str(), reply["path"].as_str()), (Some("json-error"), Some("")), "{reply}");
    let (status, _, reply) = send(&node, "POST", "/query/batch", &[("content-type", "application/json")], "{}");
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["type"], "authentication-error");
    assert_eq!(reply["message"], "Anonymous requests are not permitted");
    let (status, reply) = node.get("/nope");
    assert_eq!(status, 404);
    assert_eq!(reply, json!({"type": "error", "message": "HTTP 404 Not Found", "reason": "Not Found", "status": 404}));
}

#[test]
fn suggestions_in_heroics_order() {
    let (_dir, node) = fixture();
    // §10: keys with the most values first: host (a, b, c), then site (lon, sto).
    let (status, reply) = node.post("/metadata/tag-values-suggest", &json!({}));
    assert_eq!(status, 200, "{reply}");
    let keys: Vec<&str> = reply["suggestions"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["host", "site"], "{reply}");
    let (_, reply) = node.post("/metadata/tag-values-suggest", &json!({"limit": 1}));
    assert_eq!(
        (reply["suggestions"][0]["key"].as_str(), reply["limited"].as_bool()),
        (Some("host"), Some(true)),
        "{reply}"
    );
    // `key` is optional: the values of every key.
    let (status, reply) = node.post("/metadata/tag-value-suggest", &json!({}));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["values"], json!(["a", "b", "c", "lon", "sto"]), "{reply}");
    assert_eq!(reply["limited"], false);
    let (_, reply) = node.post("/metadata/tag-value-suggest", &json!({"limit": 2}));
    assert_eq!((reply["values"].clone(), reply["limited"].clone()), (json!(["a", "b"]), json!(true)), "{reply}");
}

#[test]
fn options_and_the_cluster() {
    let (_dir, other) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let cluster = format!(
        "[cluster]\nnodes = [\"http://127.0.0.1:{}\", \"grpc://10.255.255.1:9698\"]\ntags = {{site = \"lon\"}}",
        other.port
    );
    let node = Node::start(dir.path(), &local_config(&cluster));

    // §11: OPTIONS answers on every path with its methods, /query/* without X-Client-Id.
    let (status, headers, _) = send(&node, "OPTIONS", "/query/batch", &[], "");
    assert_eq!((status, &headers["allow"]), (200, &"POST,OPTIONS".parse().unwrap()));
    let (status, headers, _) = send(&node, "OPTIONS", "/cluster/nodes", &[], "");
    assert_eq!((status, &headers["allow"]), (200, &"GET,POST,DELETE,OPTIONS".parse().unwrap()));
    assert_eq!(send(&node, "OPTIONS", "/nope", &[], "").0, 404);
    // CORS stays off unless configured: no CORS headers on a preflight.
    let preflight = [
        ("origin", "https://g.example"),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "content-type"),
    ];
    let (_, headers, _) = send(&node, "OPTIONS", "/query/metrics", &preflight, "");
    assert!(headers.get("access-control-allow-origin").is_none(), "{headers:?}");

    // §14: the configured nodes, and which of them answer.
    let (status, reply) = node.get("/cluster/nodes");
    assert_eq!(status, 200);
    assert_eq!(reply, json!([format!("http://127.0.0.1:{}", other.port), "grpc://10.255.255.1:9698"]));
    let (status, reply) = node.post("/cluster/refresh", &json!(null));
    assert_eq!((status, reply), (200, json!("")));
    let (status, reply) = node.get("/cluster/status");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["statistics"], json!({"onlineNodes": 2, "offlineNodes": 1}), "{reply}");
    let nodes = reply["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{reply}");
    assert_eq!((nodes[0]["version"].clone(), nodes[0]["tags"].clone()), (json!(0), json!({"site": "lon"})), "{reply}");
    assert!(nodes[0]["node"].as_str().unwrap().starts_with("LocalClusterNode("), "{reply}");
    let other_status = other.get("/cluster/status").1;
    assert_eq!(nodes[1]["id"], other_status["nodes"][0]["id"], "{reply}");
    assert_ne!(nodes[0]["id"], nodes[1]["id"]);
    assert_eq!(node.get("/status").1["cluster"], json!({"ok": true, "onlineNodes": 2, "offlineNodes": 1}));

    let (status, reply) =
        node.request("DELETE", "/cluster/nodes", Some("\"grpc://10.255.255.1:9698\"".into()), "application/json");
    assert_eq!((status, reply), (200, json!({"data": true})));
    let (status, reply) = node.post("/cluster/nodes", &json!("grpc://10.0.0.3:9698"));
    assert_eq!((status, reply), (200, json!({"data": true})));
    assert_eq!(
        node.get("/cluster/nodes").1,
        json!([format!("http://127.0.0.1:{}", other.port), "grpc://10.0.0.3:9698"])
    );
    let (status, reply) = node.post("/cluster/nodes", &json!("not a uri"));
    assert_eq!((status, reply["type"].as_str()), (400, Some("json-error")), "{reply}");

    // A single node: itself alone, no static nodes.
    assert_eq!(other.get("/cluster/nodes").1, json!([]));
    assert_eq!(other_status["statistics"], json!({"onlineNodes": 1, "offlineNodes": 0}));
}

#[test]
fn render_image_draws_a_query_as_png() {
    let (_dir, node) = fixture();
    for (host, slope) in [("a", 1.0), ("b", -1.0)] {
        let data: Vec<Value> = (1..10).map(|i| json!([i * 1000, 5.0 + slope * i as f64])).collect();
        let body = json!({"series": {"key": "cpu", "tags": {"host": host, "site": "lon"}}, "data": {"type": "points", "data": data}});
        assert_eq!(node.post("/write", &body).0, 200);
    }
    // §6: GET /render/image?q=<hql>&width&height&title&threshold&highlight → image/png.
    let path = "/render/image?q=*%20from%20points(0%2C%2010000)%20where%20%24key%20%3D%20cpu\
                &width=320&height=200&title=cpu&threshold=2.5&highlight=%7B%22host%22%3A%22a%22%7D";
    let resp = reqwest::blocking::get(node.url(path)).unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    let bytes = resp.bytes().unwrap();
    if let Ok(out) = std::env::var("HEROIC_TEST_SAVE_RENDER") {
        std::fs::write(out, &bytes).unwrap();
    }
    let mut reader = png::Decoder::new(std::io::Cursor::new(&bytes[..])).read_info().unwrap();
    let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut rgb).unwrap();
    assert_eq!((info.width, info.height), (320, 200));
    // The threshold line is red, and so is the highlighted group (host=a).
    let red = rgb[..info.buffer_size()].chunks(3).filter(|p| p[0] > 200 && p[1] < 60 && p[2] < 60).count();
    assert!(red > 300, "{red} red pixels");

    // Bad parameters are 400s in Heroic's error shape, bad HQL a parse error.
    for (path, kind) in [
        ("/render/image", "error"),
        ("/render/image?q=*%20from%20points(1h)&width=0", "error"),
        ("/render/image?q=*%20from%20points(1h)&threshold=x", "error"),
        ("/render/image?q=sum(10w)%20from%20points(1h)", "parse-error"),
    ] {
        let (status, reply) = node.get(path);
        assert_eq!((status, reply["type"].as_str()), (400, Some(kind)), "{path}: {reply}");
    }
    let (status, headers, _) = send(&node, "OPTIONS", "/render/image", &[], "");
    assert_eq!((status, &headers["allow"]), (200, &"GET,OPTIONS".parse::<reqwest::header::HeaderValue>().unwrap()));
}
