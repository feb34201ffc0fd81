//! Test harness: runs the real `heroic` binary on a free port with a config
//! written to a temp dir, and talks to it over HTTP.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where cargo put the workspace's plugin libraries (`target/<profile>`).
pub fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_path_buf()
}

pub fn free_port() -> u16 {
    heroic_plugin_api::testkit::free_port()
}

pub struct Node {
    pub child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    log_path: PathBuf,
}

/// Writes `config` (with `{port}`, `{plugins}` and `{dir}` substituted) and
/// starts `heroic` on it, from `dir` as working directory.
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

impl Node {
    /// Starts a node and waits until it answers `GET /status`.
    pub fn start(dir: &Path, config: &str) -> Node {
        let (config_path, port) = write_config(dir, config);
        let mut node = Node::spawn_on(dir, config_path, port);
        node.wait_ready();
        node
    }

    pub fn spawn_on(dir: &Path, config_path: PathBuf, port: u16) -> Node {
        let log_path = dir.join(format!("heroic-{port}-{}.log", std::process::id()));
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_heroic"))
            .arg("--config")
            .arg(&config_path)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start heroic");
        Node { child: Some(child), port, dir: dir.to_path_buf(), config_path, log_path }
    }

    /// Restarts on the same config and port.
    pub fn restart(&mut self) {
        self.stop();
        let next = Node::spawn_on(&self.dir.clone(), self.config_path.clone(), self.port);
        *self = next;
        self.wait_ready();
    }

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

    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
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
        let resp = req.send().expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        unsafe_kill(child.id(), "TERM");
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

fn unsafe_kill(pid: u32, signal: &str) {
    let _ = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
}

impl Drop for Node {
    fn drop(&mut self) {
        self.crash();
    }
}

/// Runs `heroic` on a config expected to fail at start; returns its log.
pub fn start_failure(dir: &Path, config: &str) -> String {
    let (config_path, _) = write_config(dir, config);
    let out = Command::new(env!("CARGO_BIN_EXE_heroic"))
        .arg("--config")
        .arg(&config_path)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .output()
        .expect("run heroic");
    assert!(!out.status.success(), "heroic should have failed to start");
    String::from_utf8_lossy(&out.stderr).into_owned()
}
