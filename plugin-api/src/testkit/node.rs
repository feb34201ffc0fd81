//! End-to-end harness: runs the real `heroic` binary on a free port with a
//! config written to a (temp) directory, waits until it answers, and talks
//! to it over HTTP. Shared by the host's integration tests and the plugins'
//! end-to-end tests.
//!
//! The binary is [`heroic_binary`]: `$HEROIC_BIN`, else `heroic` next to the
//! running test (`target/<profile>/`), else the newest of
//! `target/{debug,release}/heroic` (`$CARGO_TARGET_DIR` honoured). It is not
//! built by the tests of other packages: build it first
//! (`cargo build -p heroic`, same profile and `CARGO_TARGET_DIR`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// `target/<profile>`: where cargo put the running test's build, the
/// workspace's plugin libraries and binaries (`{plugins}` in configs).
pub fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().expect("test executable directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("target/<profile>/deps/<test>").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The `heroic` binary the nodes run; see the module documentation. Panics
/// with a hint when none is built.
pub fn heroic_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("HEROIC_BIN").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "HEROIC_BIN={} is not a file", path.display());
        return path;
    }
    let name = format!("heroic{}", std::env::consts::EXE_SUFFIX);
    let own = plugin_dir().join(&name);
    if own.is_file() {
        return own;
    }
    let mut targets: Vec<PathBuf> = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).into_iter().collect();
    targets.extend(plugin_dir().parent().map(Path::to_path_buf));
    let newest = targets
        .iter()
        .flat_map(|t| ["debug", "release"].map(|profile| t.join(profile).join(&name)))
        .filter(|p| p.is_file())
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    newest.unwrap_or_else(|| {
        panic!(
            "no heroic binary in {} nor in target/{{debug,release}}: build it first (`cargo build -p heroic`, \
             same profile and CARGO_TARGET_DIR) or set HEROIC_BIN",
            own.display()
        )
    })
}

pub fn free_port() -> u16 {
    super::free_port()
}

/// Writes `config` to `dir/heroic.toml`, with `{port}` (a free port, also
/// returned), `{plugins}` ([`plugin_dir`]) and `{dir}` substituted.
pub fn write_config(dir: &Path, config: &str) -> (PathBuf, u16) {
    let port = free_port();
    let text = config
        .replace("{port}", &port.to_string())
        .replace("{plugins}", &plugin_dir().display().to_string())
        .replace("{dir}", &dir.display().to_string());
    let path = dir.join("heroic.toml");
    std::fs::write(&path, text).unwrap();
    (path, port)
}

/// A running `heroic`; killed when dropped.
pub struct Node {
    pub child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    log_path: PathBuf,
    /// Environment changes for the process: set (`Some`) or removed (`None`).
    env: Vec<(String, Option<String>)>,
}

impl Node {
    /// Starts a node on `config` (see [`write_config`]), with `dir` as
    /// working directory, and waits until it answers `GET /status`.
    pub fn start(dir: &Path, config: &str) -> Node {
        Node::start_with_env(dir, config, &[])
    }

    /// [`Node::start`] with environment variables set (`Some`) or removed
    /// (`None`), e.g. `("BIGTABLE_EMULATOR_HOST", None)`.
    pub fn start_with_env(dir: &Path, config: &str, env: &[(&str, Option<&str>)]) -> Node {
        let (config_path, port) = write_config(dir, config);
        let env = env.iter().map(|(k, v)| (k.to_string(), v.map(str::to_string))).collect();
        let mut node = Node::spawn(dir, config_path, port, env);
        node.wait_ready();
        node
    }

    /// Starts `heroic` on a written config without waiting for it.
    pub fn spawn_on(dir: &Path, config_path: PathBuf, port: u16) -> Node {
        Node::spawn(dir, config_path, port, Vec::new())
    }

    fn spawn(dir: &Path, config_path: PathBuf, port: u16, env: Vec<(String, Option<String>)>) -> Node {
        let log_path = dir.join(format!("heroic-{port}-{}.log", std::process::id()));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut command = Command::new(heroic_binary());
        command.arg("--config").arg(&config_path).current_dir(dir).env("RUST_LOG", "info");
        for (key, value) in &env {
            match value {
                Some(v) => command.env(key, v),
                None => command.env_remove(key),
            };
        }
        let child = command.stdout(Stdio::null()).stderr(log).spawn().expect("start heroic");
        Node { child: Some(child), port, dir: dir.to_path_buf(), config_path, log_path, env }
    }

    /// Restarts on the same config, port and environment.
    pub fn restart(&mut self) {
        self.stop();
        let next = Node::spawn(&self.dir.clone(), self.config_path.clone(), self.port, self.env.clone());
        *self = next;
        self.wait_ready();
    }

    /// Waits (60 s at most) until the node answers `GET /status`; panics
    /// with its log when it exits or does not answer in time.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("heroic exited early ({status}); log:\n{}", self.log());
            }
            if reqwest::blocking::get(self.url("/status")).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("heroic did not become ready; log:\n{}", self.log());
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// The node's log (its stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request("POST", path, Some(body.to_string()), "application/json")
    }

    pub fn post_text(&self, path: &str, body: &str) -> (u16, Value) {
        self.request("POST", path, Some(body.to_string()), "text/plain")
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.request("GET", path, None, "application/json")
    }

    /// One request; the answer's status and body (JSON, else the text as a
    /// JSON string).
    pub fn request(&self, method: &str, path: &str, body: Option<String>, content_type: &str) -> (u16, Value) {
        let client = reqwest::blocking::Client::new();
        let mut req = client
            .request(method.parse().unwrap(), self.url(path))
            .header("content-type", content_type)
            .header("x-client-id", "tests")
            .timeout(Duration::from_secs(120));
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().unwrap_or_else(|e| panic!("{method} {path} failed: {e}; heroic log:\n{}", self.log()));
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// The node's `GET /metrics` scrape (see [`sample_in`]).
    pub fn scrape(&self) -> String {
        let (status, text) = self.get("/metrics");
        assert_eq!(status, 200, "GET /metrics: {text}");
        text.as_str().unwrap_or_else(|| panic!("GET /metrics is not text: {text}")).to_string()
    }

    /// The points of every series matching `["key", key]` in
    /// `[start, end]`, by their `host` tag (`""` without one): host → [(t, v)].
    pub fn points_by_host(&self, key: &str, start: i64, end: i64) -> BTreeMap<String, Vec<(i64, f64)>> {
        let q = json!({"range": {"type": "absolute", "start": start, "end": end}, "filter": ["key", key]});
        let (status, reply) = self.post("/query/metrics", &q);
        assert_eq!(status, 200, "{reply}");
        let mut out = BTreeMap::new();
        for group in reply["result"].as_array().unwrap_or_else(|| panic!("no result in {reply}")) {
            let host = group["tags"]["host"].as_str().unwrap_or("").to_string();
            out.entry(host).or_insert_with(Vec::new).extend(values(group));
        }
        out
    }

    /// SIGTERM, then wait for a clean exit (SIGKILL after 30 s).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// SIGKILL: a crash, no chance to flush anything.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.crash();
    }
}

/// The value of `sample` in a `GET /metrics` scrape, found by the exact
/// text before its value (`name{label="value",…}`, labels in the order the
/// node writes them).
pub fn sample_in(scrape: &str, sample: &str) -> Option<f64> {
    scrape.lines().find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

/// The `[t, v]` pairs of one result group of `/query/metrics`.
pub fn values(group: &Value) -> Vec<(i64, f64)> {
    group["values"]
        .as_array()
        .unwrap_or_else(|| panic!("no values in {group}"))
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

/// Runs `heroic` on a config expected to fail at start; returns its log.
pub fn start_failure(dir: &Path, config: &str) -> String {
    let (config_path, _) = write_config(dir, config);
    let out = Command::new(heroic_binary())
        .arg("--config")
        .arg(&config_path)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .output()
        .expect("run heroic");
    assert!(!out.status.success(), "heroic should have failed to start");
    String::from_utf8_lossy(&out.stderr).into_owned()
}
