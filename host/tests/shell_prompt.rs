//! `heroic-shell` without a task: tasks piped on stdin, one per line, and
//! the `heroic>` prompt on a real pseudo-terminal (util-linux `script`),
//! with tab completion and the history file.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The shell's arguments for the `local` profile with its data in `dir`.
fn local_args(dir: &Path) -> Vec<String> {
    let plugins = common::plugin_dir().display().to_string();
    let data = format!("local.data_dir={}", dir.join("data").display());
    ["--plugin-dir", &plugins, "-P", "local", "-X", &data, "--progress-interval", "0"].map(String::from).to_vec()
}

/// The shell on the `local` profile in `dir`, with `input` on its stdin.
fn piped(dir: &Path, input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_heroic-shell"))
        .args(local_args(dir))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn tasks_piped_on_stdin_run_in_order_and_a_failed_one_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"write -s '{"key": "piped", "tags": {"host": "a"}}' -p 1000=1.5 -p 2000=2.5
# comments and blank lines are skipped

fetch -s '{"key": "piped", "tags": {"host": "a"}}'
no-such-task
metadata-count
"#;
    let output = piped(dir.path(), script);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "a failed line fails the run: {stderr}");
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), 3, "write, fetch and metadata-count answered, in order: {lines:?}");
    assert_eq!(lines[0]["points"], json!(2), "{}", lines[0]);
    assert_eq!(lines[1]["points"], json!([[1000, 1.5], [2000, 2.5]]), "{}", lines[1]);
    assert_eq!(lines[2]["count"], json!(1), "{}", lines[2]);
    assert!(stderr.contains("error: line 5:") && stderr.contains("no-such-task"), "{stderr}");
    assert!(stderr.contains("1 task(s) failed"), "{stderr}");

    // All good: exit status 0; `exit` ends the run early.
    let output = piped(dir.path(), "metadata-count\nexit\nno-such-task\n");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 1);
}

/// What a program on a pseudo-terminal printed so far.
struct Screen(Arc<Mutex<String>>);

impl Screen {
    /// Waits (at most 60 s) until the output after `from` holds `text`;
    /// returns the position just past it.
    fn wait_for(&self, text: &str, from: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let seen = self.0.lock().unwrap().clone();
            if let Some(at) = seen.get(from..).and_then(|s| s.find(text)) {
                return from + at + text.len();
            }
            assert!(Instant::now() < deadline, "no {text:?} on the terminal; it shows:\n{seen}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn the_prompt_on_a_terminal_completes_runs_and_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let mut command = vec![env!("CARGO_BIN_EXE_heroic-shell").to_string()];
    command.extend(local_args(dir.path()));
    // `script` gives the shell a pseudo-terminal and relays its output.
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command.join(" "), "/dev/null"])
        .env("HEROIC_SHELL_HISTORY", &history)
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux script");
    let screen = Screen(Arc::new(Mutex::new(String::new())));
    let mut out = child.stdout.take().unwrap();
    let seen = screen.0.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut input = child.stdin.take().unwrap();
    let mut at = screen.wait_for("heroic> ", 0);
    // Tab completes the task name; the task answers as on the command line.
    input.write_all(b"backe\t\r").unwrap();
    at = screen.wait_for("\"plugin\":\"local\"", at);
    at = screen.wait_for("heroic> ", at);
    input.write_all(b"help\r").unwrap();
    at = screen.wait_for("metadata-fetch", at);
    at = screen.wait_for("heroic> ", at);
    input.write_all(b"no-such-task\r").unwrap();
    at = screen.wait_for("error:", at);
    screen.wait_for("heroic> ", at);
    input.write_all(b"exit\r").unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert!(status.success(), "{}", screen.0.lock().unwrap());
    let kept = std::fs::read_to_string(&history).unwrap();
    assert!(kept.lines().any(|l| l == "backends"), "the completed line is in the history: {kept}");
}
