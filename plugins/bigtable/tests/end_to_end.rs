//! The real `heroic` binary with `examples/bigtable.toml` (Bigtable metrics
//! on the emulator, `local` metadata and suggest): writes over HTTP, then
//! queries with aggregations over HTTP.
//!
//! `heroic` belongs to another package, so `CARGO_BIN_EXE_heroic` is not
//! available here: the test looks for it in `target/<profile>/`, next to the
//! plugin libraries, and fails with a hint when it is not built (build the
//! whole workspace first: `cargo build --workspace`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn heroic_binary() -> PathBuf {
    let path = common::profile_dir().join(format!("heroic{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is not built; build the whole workspace first (`cargo build --workspace`, \
         or `cargo build -p heroic` with the same profile and CARGO_TARGET_DIR)",
        path.display()
    );
    path
}

/// `examples/bigtable.toml` itself (not a copy that could drift from it)
/// with the test's port, table, plugin directory and data directories.
fn config(dir: &Path, port: u16, table: &str) -> String {
    let example = std::fs::read_to_string(common::workspace_root().join("examples/bigtable.toml")).unwrap();
    let plugins = common::profile_dir().display().to_string();
    let mut text = example;
    for (starts, with) in [
        ("listen =", format!("listen = \"127.0.0.1:{port}\"")),
        ("table =", format!("table = \"{table}\"")),
        ("dirs =", format!("dirs = [{plugins:?}]")),
    ] {
        assert!(text.lines().any(|l| l.starts_with(starts)), "examples/bigtable.toml has no line starting with {starts:?}");
        text = text.lines().map(|l| if l.starts_with(starts) { with.clone() } else { l.to_string() }).collect::<Vec<_>>().join("\n");
    }
    text.replace("\"./data/", &format!("\"{}/data/", dir.display()))
}

struct Node {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Node {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = reqwest::blocking::Client::new()
            .post(self.url(path))
            .header("content-type", "application/json")
            .header("x-client-id", "test")
            .timeout(Duration::from_secs(120))
            .body(body.to_string())
            .send()
            .unwrap_or_else(|e| panic!("POST {path} failed: {e}; heroic log:\n{}", self.log()));
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, table: &str) -> Node {
    let port = heroic_plugin_api::testkit::free_port();
    let config_path = dir.join("heroic.toml");
    std::fs::write(&config_path, config(dir, port, table)).unwrap();
    let log = dir.join("heroic.log");
    let child = Command::new(heroic_binary())
        .arg("--config")
        .arg(&config_path)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .env_remove("BIGTABLE_EMULATOR_HOST")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start heroic");
    let mut node = Node { child, port, log };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            panic!("heroic exited early ({status}); log:\n{}", node.log());
        }
        if reqwest::blocking::get(node.url("/status")).is_ok_and(|r| r.status().is_success()) {
            return node;
        }
        assert!(Instant::now() < deadline, "heroic did not become ready; log:\n{}", node.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn values(response: &Value) -> Vec<(i64, f64)> {
    let groups = response["result"].as_array().unwrap_or_else(|| panic!("no result in {response}"));
    assert_eq!(groups.len(), 1, "one group expected: {response}");
    groups[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

#[test]
fn heroic_with_bigtable_writes_and_queries_over_http() {
    common::ensure_emulator();
    let dir = tempfile::tempdir().unwrap();
    let table = common::unique_table("e2e");
    let node = start(dir.path(), &table);

    // Heroic's AbstractClusterQueryIT data: s1 = {10:1, 30:2}, s2 = {10:1, 20:4},
    // shifted to seconds so 10 s buckets hold one point per series.
    for (host, points) in [("a", json!([[10_000, 1.0], [30_000, 2.0]])), ("b", json!([[10_000, 1.0], [20_000, 4.0]]))] {
        let body = json!({
            "series": { "key": "e2e-cpu", "tags": { "host": host } },
            "data": { "type": "points", "data": points },
        });
        let (status, answer) = node.post("/write", &body);
        assert_eq!(status, 200, "write: {answer}; log:\n{}", node.log());
    }

    let query = |aggregation: Value| {
        json!({
            "range": { "type": "absolute", "start": 0, "end": 100_000 },
            "filter": ["key", "e2e-cpu"],
            "aggregation": aggregation,
        })
    };
    let sum = json!({ "type": "sum", "sampling": { "unit": "seconds", "value": 10 } });
    let (status, answer) = node.post("/query/metrics", &query(sum));
    assert_eq!(status, 200, "query: {answer}; log:\n{}", node.log());
    assert_eq!(answer["errors"].as_array().map_or(0, Vec::len), 0, "errors: {answer}");
    assert_eq!(values(&answer), vec![(10_000, 2.0), (20_000, 4.0), (30_000, 2.0)], "{answer}");

    let max = json!({ "type": "max", "sampling": { "unit": "seconds", "value": 20 } });
    let (status, answer) = node.post("/query/metrics", &query(max));
    assert_eq!(status, 200, "query: {answer}");
    let got = values(&answer);
    // Whatever the bucket alignment, the largest bucket maximum is 4 and
    // every bucket maximum is one of the values written.
    assert!(got.iter().any(|p| p.1 == 4.0), "max over 20 s buckets: {answer}");
    assert!(got.iter().all(|p| [1.0, 2.0, 4.0].contains(&p.1)), "max over 20 s buckets: {answer}");

    // The only metric backend is the Bigtable plugin, and it reports healthy.
    let status: Value = reqwest::blocking::get(node.url("/status")).unwrap().json().unwrap();
    let components = status["components"].as_array().unwrap_or_else(|| panic!("status: {status}"));
    let bigtable = components.iter().find(|c| c["role"] == "metrics").unwrap_or_else(|| panic!("status: {status}"));
    assert_eq!(bigtable["ok"], true, "status: {status}");
}
