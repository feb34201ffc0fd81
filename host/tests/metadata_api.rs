//! The metadata and suggest endpoints over HTTP, on the real binary with
//! the `local` plugin: Heroic's request bodies (including the Grafana data
//! source's), defaults and exact response shapes; merging with a failing
//! backend; `/status` answering 503 when a backend is not ok.

mod common;

use common::{local_config, Node};
use serde_json::{json, Value};

fn write(node: &Node, key: &str, tags: Value) {
    let body = json!({"series": {"key": key, "tags": tags}, "data": {"type": "points", "data": [[1000, 1.0]]}});
    let (status, reply) = node.post("/write", &body);
    assert_eq!(status, 200, "{reply}");
}

/// cpu{host=a,site=lon}, cpu{host=b,site=sto}, mem{host=a,site=lon}, disk-used{host=db1,role=db}.
fn fixture() -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &local_config());
    write(&node, "cpu", json!({"host": "a", "site": "lon"}));
    write(&node, "cpu", json!({"host": "b", "site": "sto"}));
    write(&node, "mem", json!({"host": "a", "site": "lon"}));
    write(&node, "disk-used", json!({"host": "db1", "role": "db"}));
    (dir, node)
}

/// A POST with the content type Java clients (and Grafana) send.
fn post(node: &Node, path: &str, body: Value) -> Value {
    let (status, reply) = node.request("POST", path, Some(body.to_string()), "application/json;charset=UTF-8");
    assert_eq!(status, 200, "{path} {body}: {reply}");
    reply
}

fn series_keys(reply: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = reply["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["key"].as_str().unwrap().to_string(), s["tags"]["host"].as_str().unwrap_or("").to_string()))
        .collect();
    out.sort();
    out
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn series_count_keys_and_tags() {
    let (_dir, node) = fixture();

    let reply = post(&node, "/metadata/series", json!({"filter": ["key", "cpu"]}));
    assert_eq!(reply["errors"], json!([]));
    assert_eq!(reply["limited"], false);
    assert_eq!(series_keys(&reply), pairs(&[("cpu", "a"), ("cpu", "b")]));
    // Heroic's Series shape.
    let one = &reply["series"][0];
    assert_eq!(one.as_object().unwrap().keys().collect::<Vec<_>>(), vec!["key", "resource", "tags"], "{one}");

    // limit 1 of 2 → limited; limit 2 of 2 → not limited.
    let reply = post(&node, "/metadata/series", json!({"filter": ["key", "cpu"], "limit": 1}));
    assert_eq!((reply["series"].as_array().unwrap().len(), &reply["limited"]), (1, &json!(true)));
    let reply = post(&node, "/metadata/series", json!({"filter": ["key", "cpu"], "limit": 2}));
    assert_eq!((reply["series"].as_array().unwrap().len(), &reply["limited"]), (2, &json!(false)));

    // Object form, a relative range, regex and Grafana's `!=`.
    let reply = post(
        &node,
        "/metadata/series",
        json!({"filter": {"type": "and", "filters": [["~", "host", "[ab]"], ["not", ["key", "mem"]]]},
               "range": {"type": "relative", "unit": "HOURS", "value": 1}}),
    );
    assert_eq!(series_keys(&reply), pairs(&[("cpu", "a"), ("cpu", "b")]));
    let reply = post(&node, "/metadata/series", json!({"filter": ["q", "host ~ \"d.*\" or $key = mem"]}));
    assert_eq!(series_keys(&reply), pairs(&[("disk-used", "db1"), ("mem", "a")]));
    // No filter: everything; Heroic's legacy matchKey/hasTags fields.
    assert_eq!(post(&node, "/metadata/series", json!({}))["series"].as_array().unwrap().len(), 4);
    let reply = post(&node, "/metadata/series", json!({"matchKey": "disk-used", "hasTags": ["role"]}));
    assert_eq!(series_keys(&reply), pairs(&[("disk-used", "db1")]));

    let reply = post(&node, "/metadata/series-count", json!({"filter": ["not", ["key", "cpu"]]}));
    assert_eq!(reply, json!({"errors": [], "count": 2, "limited": false}));
    let reply = post(&node, "/metadata/series-count", json!({"filter": ["true"], "limit": 3}));
    assert_eq!(reply, json!({"errors": [], "count": 3, "limited": true}));
    let reply = post(&node, "/metadata/series-count", json!({"filter": ["false"]}));
    assert_eq!(reply, json!({"errors": [], "count": 0, "limited": false}));

    // Every key, not the first 10 as Heroic on Elasticsearch.
    for i in 0..12 {
        write(&node, &format!("extra-{i:02}"), json!({"host": "x"}));
    }
    let reply = post(&node, "/metadata/keys", json!({}));
    assert_eq!(reply["size"], 15, "{reply}");
    assert_eq!(reply["duplicates"], 0);
    assert_eq!(
        reply["keys"].as_array().unwrap()[0..3],
        json!(["cpu", "disk-used", "extra-00"]).as_array().unwrap()[..]
    );
    let reply = post(&node, "/metadata/keys", json!({"filter": ["+", "site"]}));
    assert_eq!(reply, json!({"errors": [], "keys": ["cpu", "mem"], "size": 2, "duplicates": 0}));
    let reply = post(&node, "/metadata/keys", json!({"filter": ["^", "host", "d"]}));
    assert_eq!(reply["keys"], json!(["disk-used"]));

    // Tags work (Heroic's Elasticsearch backend always answered `{}`).
    let reply = post(&node, "/metadata/tags", json!({"filter": ["key", "cpu"]}));
    assert_eq!(reply, json!({"errors": [], "tags": {"host": ["a", "b"], "site": ["lon", "sto"]}, "size": 2}));
    let reply = post(&node, "/metadata/tags", json!({"filter": ["key", "cpu"], "limit": 1}));
    assert_eq!(reply["tags"], json!({"host": ["a"], "site": ["lon"]}));
}

#[test]
fn write_and_delete_series() {
    let (_dir, node) = fixture();
    let (status, reply) = node.request(
        "PUT",
        "/metadata/series",
        Some(json!({"key": "net", "tags": {"host": "c"}}).to_string()),
        "application/json",
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["errors"], json!([]));
    // One write per metadata and suggest backend.
    assert_eq!(reply["times"].as_array().unwrap().len(), 2, "{reply}");
    assert_eq!(post(&node, "/metadata/keys", json!({}))["keys"], json!(["cpu", "disk-used", "mem", "net"]));
    let reply = post(&node, "/metadata/key-suggest", json!({"key": "net"}));
    assert_eq!(reply["suggestions"][0]["key"], "net", "{reply}");

    // A series without a key is refused with the field named.
    let (status, reply) = node.request("PUT", "/metadata/series", Some(r#"{"tags":{}}"#.into()), "application/json");
    assert_eq!(status, 400, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("missing field `key`"), "{reply}");

    let (status, reply) = node.request(
        "DELETE",
        "/metadata/series",
        Some(json!({"filter": ["key", "net"]}).to_string()),
        "application/json",
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, json!({"errors": [], "deleted": 1, "failed": 0}));
    assert_eq!(post(&node, "/metadata/keys", json!({}))["keys"], json!(["cpu", "disk-used", "mem"]));

    // Deleting needs an explicit filter.
    let (status, reply) = node.request("DELETE", "/metadata/series", Some("{}".into()), "application/json");
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["path"], "filter", "{reply}");
    assert_eq!(post(&node, "/metadata/series-count", json!({}))["count"], 4);
}

#[test]
fn a_deleted_series_written_again_is_registered_at_once() {
    let (_dir, node) = fixture();
    let mem = json!({"filter": ["key", "mem"]});
    assert_eq!(series_keys(&post(&node, "/metadata/series", mem.clone())), pairs(&[("mem", "a")]));
    let (status, reply) = node.request("DELETE", "/metadata/series", Some(mem.to_string()), "application/json");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["deleted"], 1, "{reply}");
    assert_eq!(series_keys(&post(&node, "/metadata/series", mem.clone())), pairs(&[]));

    // The write cache (default TTL 4 h) remembered the
    // series from the fixture's write; the delete made it forget.
    write(&node, "mem", json!({"host": "a", "site": "lon"}));
    assert_eq!(series_keys(&post(&node, "/metadata/series", mem)), pairs(&[("mem", "a")]));
}

#[test]
fn suggestions_with_grafana_bodies() {
    let (_dir, node) = fixture();

    // Grafana: /metadata/key-suggest {key, filter, limit}.
    let reply = post(&node, "/metadata/key-suggest", json!({"key": "cp", "filter": ["true"], "limit": 10}));
    assert_eq!(reply, json!({"errors": [], "suggestions": [{"score": 2.5, "key": "cpu"}]}));
    // Nothing typed: every key, score 1, alphabetical; default limit 10.
    let reply = post(&node, "/metadata/key-suggest", json!({"filter": ["+", "host"]}));
    assert_eq!(
        reply["suggestions"],
        json!([{"score": 1.0, "key": "cpu"}, {"score": 1.0, "key": "disk-used"}, {"score": 1.0, "key": "mem"}])
    );
    let reply =
        post(&node, "/metadata/key-suggest", json!({"key": "", "filter": ["key", "mem"], "match": {"fuzzy": false}}));
    assert_eq!(reply["suggestions"], json!([{"score": 1.0, "key": "mem"}]));

    // Grafana: /metadata/tag-suggest {filter, limit, key, value}.
    let reply = post(
        &node,
        "/metadata/tag-suggest",
        json!({"filter": ["key", "cpu"], "limit": 10, "key": "host", "value": "a"}),
    );
    assert_eq!(reply, json!({"errors": [], "suggestions": [{"score": 9.0, "key": "host", "value": "a"}]}));
    let reply = post(&node, "/metadata/tag-suggest", json!({"key": "site", "limit": 1}));
    assert_eq!(reply["suggestions"].as_array().unwrap().len(), 1, "{reply}");
    assert_eq!(reply["suggestions"][0]["key"], "site");

    let reply = post(&node, "/metadata/tag-value-suggest", json!({"key": "host"}));
    assert_eq!(reply, json!({"errors": [], "values": ["a", "b", "db1"], "limited": false}));
    let reply = post(&node, "/metadata/tag-value-suggest", json!({"key": "host", "limit": 2, "filter": ["true"]}));
    assert_eq!(reply, json!({"errors": [], "values": ["a", "b"], "limited": true}));
    let reply = post(&node, "/metadata/tag-value-suggest", json!({"key": "host", "filter": ["~", "host", "[a-c]"]}));
    assert_eq!(reply["values"], json!(["a", "b"]));
    // Without `key`: the values of every key, as Heroic.
    let reply = post(&node, "/metadata/tag-value-suggest", json!({}));
    assert_eq!(reply, json!({"errors": [], "values": ["a", "b", "db", "db1", "lon", "sto"], "limited": false}));

    let reply = post(&node, "/metadata/tag-values-suggest", json!({"exclude": ["site"]}));
    assert_eq!(
        reply,
        json!({"errors": [], "limited": false, "suggestions": [
            {"key": "host", "values": ["a", "b", "db1"], "limited": false},
            {"key": "role", "values": ["db"], "limited": false}]})
    );
    let reply = post(&node, "/metadata/tag-values-suggest", json!({"groupLimit": 1, "limit": 1}));
    assert_eq!(reply["suggestions"], json!([{"key": "host", "values": ["a"], "limited": true}]));
    assert_eq!(reply["limited"], true);

    // Grafana: /metadata/tagkey-count {filter, limit}.
    let reply = post(&node, "/metadata/tagkey-count", json!({"filter": ["true"], "limit": 10}));
    assert_eq!(
        reply,
        json!({"errors": [], "limited": false, "suggestions": [
            {"key": "host", "count": 3, "exactValues": ["a", "b", "db1"]},
            {"key": "role", "count": 1, "exactValues": ["db"]},
            {"key": "site", "count": 2, "exactValues": ["lon", "sto"]}]})
    );
    let reply = post(&node, "/metadata/tagkey-count", json!({"filter": ["key", "disk-used"]}));
    assert_eq!(
        reply["suggestions"],
        json!([{"key": "host", "count": 1, "exactValues": ["db1"]}, {"key": "role", "count": 1, "exactValues": ["db"]}])
    );
}

#[test]
fn bad_bodies_get_400_with_the_field() {
    let (_dir, node) = fixture();
    let cases = [
        ("/metadata/series", json!({"filter": ["=", "host"]}), "filter"),
        ("/metadata/tags", json!({"filter": ["nope", "x"]}), "filter"),
        ("/metadata/keys", json!({"range": {"type": "relative", "unit": "WEEKS", "value": 1}}), "range.unit"),
        ("/metadata/key-suggest", json!({"limit": -1}), "limit"),
        ("/metadata/tag-suggest", json!({"key": 5}), "key"),
        ("/metadata/tag-values-suggest", json!({"exclude": "host"}), "exclude"),
        ("/metadata/series-count", json!({"filter": ["~", "host", "("]}), ""),
    ];
    for (path, body, field) in cases {
        let (status, reply) = node.post(path, &body);
        assert_eq!(status, 400, "{path} {body}: {reply}");
        assert_eq!(reply["type"], if field.is_empty() { "error" } else { "json-error" }, "{path} {body}: {reply}");
        if !field.is_empty() {
            let at = reply["path"].as_str().unwrap_or_else(|| panic!("{path} {body}: no path in {reply}"));
            assert!(at.starts_with(field), "{path} {body}: path {at:?}, expected {field:?}");
        }
    }
    let (status, reply) = node.request("POST", "/metadata/keys", Some("{\"filter\":".into()), "application/json");
    assert_eq!((status, reply["type"].as_str()), (400, Some("json-parse-error")), "{reply}");
}

/// A fake Elasticsearch node that answers the start-up ping (`GET /`) and
/// fails every other request with a 500, like a cluster that broke after
/// the node started.
fn broken_elasticsearch() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 65536];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = if request.starts_with("GET / ") {
                ("200 OK", r#"{"name":"fake","version":{"number":"7.17.0"},"tagline":"You Know, for Search"}"#)
            } else {
                (
                    "500 Internal Server Error",
                    r#"{"error":{"type":"test_failure","reason":"broken on purpose"},"status":500}"#,
                )
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    port
}

/// One `local` and one broken `elasticsearch` backend each for metadata
/// and suggest.
fn config_with_a_broken_backend() -> String {
    let port = broken_elasticsearch();
    let dead = format!("seeds = [\"http://127.0.0.1:{port}\"]\nmax_retries = 0\nrequest_timeout_ms = 2000\n");
    format!(
        "[server]\nlisten = \"127.0.0.1:{{port}}\"\n[plugins]\ndirs = [\"{{plugins}}\"]\n\
         [[metrics]]\nplugin = \"local\"\n[metrics.config]\ndata_dir = \"./data/metrics\"\n\
         [[metadata]]\nplugin = \"local\"\n[metadata.config]\ndata_dir = \"./data/metadata\"\n\
         [[metadata]]\nid = \"es-down\"\nplugin = \"elasticsearch\"\n[metadata.config]\n{dead}\
         [[suggest]]\nplugin = \"local\"\n[suggest.config]\ndata_dir = \"./data/suggest\"\n\
         [[suggest]]\nid = \"es-suggest-down\"\nplugin = \"elasticsearch\"\n[suggest.config]\n{dead}"
    )
}

#[test]
fn a_failing_backend_is_an_error_entry_and_the_others_answer() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &config_with_a_broken_backend());
    let (status, reply) = node.get("/status");
    assert_eq!(status, 200, "{reply}");

    // PUT writes where it can and reports the rest.
    let (status, reply) = node.request(
        "PUT",
        "/metadata/series",
        Some(json!({"key": "cpu", "tags": {"host": "a"}}).to_string()),
        "application/json",
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["times"].as_array().unwrap().len(), 4, "{reply}");
    let errors = reply["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{reply}");
    assert!(errors[0]["error"].as_str().unwrap().contains("es-down"), "{reply}");

    let reply = post(&node, "/metadata/series", json!({"filter": ["key", "cpu"]}));
    assert_eq!(series_keys(&reply), pairs(&[("cpu", "a")]));
    assert_eq!(reply["errors"].as_array().unwrap().len(), 1, "{reply}");
    assert_eq!(reply["errors"][0]["type"], "query");

    for (path, body, field, expected) in [
        ("/metadata/keys", json!({}), "keys", json!(["cpu"])),
        ("/metadata/tags", json!({}), "tags", json!({"host": ["a"]})),
        ("/metadata/series-count", json!({}), "count", json!(1)),
        ("/metadata/key-suggest", json!({"key": "cpu"}), "suggestions", json!([{"score": 4.5, "key": "cpu"}])),
        ("/metadata/tag-value-suggest", json!({"key": "host"}), "values", json!(["a"])),
        (
            "/metadata/tagkey-count",
            json!({}),
            "suggestions",
            json!([{"key": "host", "count": 1, "exactValues": ["a"]}]),
        ),
    ] {
        let reply = post(&node, path, body);
        assert_eq!(reply[field], expected, "{path}: {reply}");
        let errors = reply["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{path}: {reply}");
        assert!(errors[0]["error"].as_str().unwrap().contains("-down"), "{path}: {reply}");
    }

    // The failed backends are now unhealthy: /status says so with a 503.
    let (status, reply) = node.get("/status");
    assert_eq!(status, 503, "{reply}");
    assert_eq!(reply["ok"], false);
    assert_eq!(reply["metadataBackend"]["ok"], false, "{reply}");
    assert_eq!(reply["backends"]["ok"], true, "{reply}");
    assert_eq!(reply["service"]["id"], "heroic", "{reply}");
    assert_eq!(reply["service"]["name"], "The Heroic Time Series Database", "{reply}");
}
