//! `heroic-shell --connect`: the tasks that have an endpoint run against a
//! running `heroic` node over HTTP, with the answers they give in-process;
//! the others are refused with a reason; write tokens are sent.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:{port}"
[server.auth]
write_tokens = ["a-token-of-sixteen-or-more"]
[plugins]
dirs = ["{plugins}"]
[[metrics]]
plugin = "local"
config = { data_dir = "{dir}/data/metrics" }
[[metadata]]
plugin = "local"
config = { data_dir = "{dir}/data/metadata" }
[[suggest]]
plugin = "local"
config = { data_dir = "{dir}/data/metadata" }
"#;

fn shell(node: &common::Node, token: Option<&str>, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_heroic-shell"));
    command.arg("--connect").arg(format!("127.0.0.1:{}", node.port)).args(args).env_remove("HEROIC_SHELL_TOKEN");
    if let Some(token) = token {
        command.env("HEROIC_SHELL_TOKEN", token);
    }
    command
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn one(node: &common::Node, args: &[&str]) -> Value {
    let output = shell(node, Some("a-token-of-sixteen-or-more"), args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    let mut all = lines(&output);
    assert_eq!(all.len(), 1, "{args:?}: {all:?}");
    all.remove(0)
}

#[test]
fn tasks_run_against_a_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = common::Node::start(dir.path(), CONFIG);
    let series = r#"{"key": "cpu", "tags": {"host": "a", "site": "lon"}}"#;

    // A write needs the token, as over curl.
    let refused = shell(&node, None, &["write", "-s", series, "-p", "1000=1.5"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(1), "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"), "{}", String::from_utf8_lossy(&refused.stderr));
    let written = one(&node, &["write", "-s", series, "-p", "1000=1.5", "-p", "2000=2.5"]);
    assert_eq!(written["points"], 2, "{written}");

    // The node has the points: the shell's query answers as the node's endpoint.
    let hql = "sum(1s) from points(0, 4000) where $key = cpu";
    let answer = one(&node, &["query", hql, "--feature", "-shift_range"]);
    assert_eq!(answer["result"][0]["values"], json!([[1000, 1.5], [2000, 2.5]]), "{answer}");
    let (_, direct) = node.post("/metadata/series", &json!({"filter": ["key", "cpu"]}));
    assert_eq!(one(&node, &["metadata-fetch", "$key = cpu"]), direct);
    assert_eq!(one(&node, &["metadata-count"])["count"], 1);
    assert_eq!(one(&node, &["suggest-tag-value", "-k", "site"])["values"], json!(["lon"]));
    let backends = shell(&node, None, &["backends"]).output().unwrap();
    let backends = lines(&backends);
    assert_eq!(backends.len(), 3, "{backends:?}");
    assert!(backends.iter().all(|b| b["health"]["ok"] == true), "{backends:?}");

    // A bad query is the user's error (exit 2) with the node's message.
    let bad = shell(&node, None, &["query", "sum(1s) from"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));

    // Tasks that walk the backends themselves are refused, naming why.
    let keys = shell(&node, None, &["keys"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&keys.stderr);
    assert_eq!(keys.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("keys works on the backends themselves"), "{stderr}");

    // Piped tasks go to the node too.
    let mut child =
        shell(&node, None, &[]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"metadata-keys\nsuggest-key -k cp\n").unwrap();
    let piped = child.wait_with_output().unwrap();
    assert!(piped.status.success(), "{}", String::from_utf8_lossy(&piped.stderr));
    let piped = lines(&piped);
    assert_eq!((&piped[0]["keys"], &piped[1]["suggestions"][0]["key"]), (&json!(["cpu"]), &json!("cpu")), "{piped:?}");
}

#[test]
fn a_node_that_is_not_there_is_a_clear_error() {
    let port = common::free_port();
    let output = Command::new(env!("CARGO_BIN_EXE_heroic-shell"))
        .args(["--connect", &format!("127.0.0.1:{port}"), "metadata-count"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach the node at http://127.0.0.1:{port}/metadata/series-count")),
        "{stderr}"
    );
    let both = Command::new(env!("CARGO_BIN_EXE_heroic-shell"))
        .args(["--connect", "127.0.0.1:1", "-P", "local", "metadata-count"])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
}
