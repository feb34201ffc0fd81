//! End to end: the real `heroic` binary with an `examples/elasticsearch.toml`
//! style config (local metrics, Elasticsearch metadata and suggest) on a
//! free port, against each test server: writes over HTTP, then filters and
//! suggestions over HTTP.
//!
//! The node harness is the plugin-api testkit's (`testkit::node`); it looks
//! for the binary in this test's target directory
//! (`target/<profile>/heroic`), which holds it when the whole workspace is
//! built (`cargo build --workspace`, as the README's test command does).

use std::path::PathBuf;

use heroic_plugin_api::testkit::node::Node;
use serde_json::{json, Value};

/// Panics with instructions when the `name` server is not running.
fn require_server(name: &str, addr: &str) {
    heroic_plugin_api::testkit::servers::require_server(name, addr, "scripts/servers/elasticsearch.sh");
}

/// A node and its directory, removed after the node is stopped (fields drop
/// in order).
struct Running {
    node: Node,
    _dir: DirGuard,
}

struct DirGuard(PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start_node(es: &str, run: &str) -> Running {
    let dir = std::env::temp_dir().join(format!("heroic-es-e2e-{run}"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:{{port}}"

[plugins]
dirs = ["{{plugins}}"]

[[metrics]]
plugin = "local"
[metrics.config]
data_dir = "{{dir}}/metrics"

[[metadata]]
plugin = "elasticsearch"
configure = true
[metadata.config]
seeds = ["http://{es}"]
index = {{ type = "rotating", pattern = "e2e-{run}-%s", interval = "7d" }}
refresh = "wait_for"

[[suggest]]
plugin = "elasticsearch"
configure = true
[suggest.config]
seeds = ["http://{es}"]
index = {{ type = "single", name = "e2e-{run}-suggest" }}
refresh = "wait_for"

[query]
allow_anonymous = true
"#
    );
    let node = Node::start(&dir, &config);
    Running { node, _dir: DirGuard(dir) }
}

/// POSTs and insists on 200 with a clear message naming the endpoint.
fn post(node: &Running, path: &str, body: Value) -> Value {
    let (status, answer) = node.node.post(path, &body);
    assert_eq!(status, 200, "POST {path} {body}: http {status}: {answer}");
    answer
}

fn run(es: &str) {
    // Unique per run: index names and series keys do not meet earlier runs'.
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    // The server's port tells the two parallel tests apart: they start in
    // the same millisecond, and sharing a directory would mix their configs.
    let server_port = es.rsplit(':').next().unwrap_or("0");
    let run = format!("r{}x{}p{server_port}", std::process::id(), millis % 100_000_000);
    let node = start_node(es, &run);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let key = format!("{run}-cpu");
    let other = format!("{run}-memory");
    for (k, host, role) in
        [(&key, "db1", "database"), (&key, "db2", "database"), (&key, "web1", "frontend"), (&other, "db1", "database")]
    {
        post(
            &node,
            "/write",
            json!({
                "series": {"key": k, "tags": {"host": host, "role": role, "run": run}},
                "data": {"type": "points", "data": [[now - 1000, 1.0], [now, 2.0]]},
            }),
        );
    }
    let run_f = json!(["=", "run", run]);

    // Filters.
    let series = |filter: Value| -> Vec<String> {
        let a = post(&node, "/metadata/series", json!({"filter": filter}));
        let mut hosts: Vec<String> = a["series"]
            .as_array()
            .unwrap_or_else(|| panic!("no series in {a}"))
            .iter()
            .map(|s| format!("{}/{}", s["key"].as_str().unwrap(), s["tags"]["host"].as_str().unwrap()))
            .collect();
        hosts.sort();
        hosts
    };
    let k = |h: &str| format!("{key}/{h}");
    assert_eq!(series(json!(["and", run_f, ["key", key]])), vec![k("db1"), k("db2"), k("web1")]);
    assert_eq!(series(json!(["and", run_f, ["^", "host", "web"]])), vec![k("web1")]);
    assert_eq!(
        series(json!(["and", run_f, ["~", "host", "db[0-9]"], ["=", "role", "database"], ["key", key]])),
        vec![k("db1"), k("db2")]
    );
    assert_eq!(series(json!(["and", run_f, ["not", ["+", "role"]]])), Vec::<String>::new());
    let count = post(&node, "/metadata/series-count", json!({"filter": run_f}));
    assert_eq!(count["count"], 4, "{count}");

    // Keys and tags: full answers.
    let keys = post(&node, "/metadata/keys", json!({"filter": run_f}));
    let mut ks: Vec<&str> = keys["keys"].as_array().unwrap().iter().filter_map(|k| k.as_str()).collect();
    ks.sort();
    assert_eq!(ks, vec![key.as_str(), other.as_str()], "{keys}");
    let tags = post(&node, "/metadata/tags", json!({"filter": run_f}));
    assert_eq!(tags["tags"]["host"].as_array().map(|a| a.len()), Some(3), "{tags}");

    // Suggestions.
    let typed = format!("{run}-cp");
    let a = post(&node, "/metadata/key-suggest", json!({"key": typed, "filter": run_f}));
    assert_eq!(a["suggestions"][0]["key"], json!(key), "{a}");
    let a = post(&node, "/metadata/tag-suggest", json!({"key": "ro", "value": "front", "filter": run_f}));
    assert_eq!(a["suggestions"][0]["key"], "role", "{a}");
    assert_eq!(a["suggestions"][0]["value"], "frontend", "{a}");
    let a = post(&node, "/metadata/tag-value-suggest", json!({"key": "host", "filter": run_f}));
    let mut values: Vec<&str> = a["values"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    values.sort();
    assert_eq!(values, vec!["db1", "db2", "web1"], "{a}");
    let a = post(&node, "/metadata/tagkey-count", json!({"filter": run_f}));
    assert!(
        a["suggestions"].as_array().is_some_and(|s| s.iter().any(|s| s["key"] == "host" && s["count"] == 3)),
        "{a}"
    );
    let a = post(&node, "/metadata/tag-values-suggest", json!({"filter": run_f, "exclude": ["run"]}));
    assert!(a["suggestions"].as_array().is_some_and(|s| s.iter().any(|s| s["key"] == "role")), "{a}");
}

#[test]
fn end_to_end_osmem() {
    require_server("osmem-server", "127.0.0.1:9200");
    run("127.0.0.1:9200");
}

#[test]
fn end_to_end_noida() {
    require_server("noida-db", "127.0.0.1:9202");
    run("127.0.0.1:9202");
}
