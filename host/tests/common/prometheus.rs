//! A real Prometheus server (Debian's `prometheus`, installed by
//! `scripts/clients.sh`) for the tests: it scrapes a node every second and
//! may remote-write to it; killed when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Prometheus {
    child: Child,
    pub port: u16,
}

impl Prometheus {
    /// Scrapes `127.0.0.1:target_port` every second as job `heroic`;
    /// `extra` is appended to the configuration (e.g. a `remote_write`).
    pub fn start(dir: &Path, target_port: u16, extra: &str) -> Prometheus {
        let binary = super::which("prometheus").expect("no `prometheus` on PATH: scripts/clients.sh installs it");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\n\
                 scrape_configs:\n  - job_name: heroic\n    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n\
                 {extra}"
            ),
        )
        .unwrap();
        let port = super::free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Prometheus { child, port }
    }

    /// Prometheus' JSON answer to `GET /api/v1/<path>` with `params`.
    pub fn api(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let url = format!("http://127.0.0.1:{}/api/v1/{path}", self.port);
        match reqwest::blocking::Client::new().get(&url).query(params).send() {
            Ok(resp) => resp.json().unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    /// Waits until an instant query answers `want`; panics with Prometheus'
    /// last answer after 30 s.
    pub fn await_value(&self, promql: &str, want: f64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = Value::Null;
        while Instant::now() < deadline {
            last = self.api("query", &[("query", promql)]);
            let value = last["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse::<f64>().ok());
            if value == Some(want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("prometheus never answered {want} to {promql}; last answer: {last}");
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
