//! Heroic's getting-started lines, verbatim, with the task typed at the
//! prompt (here piped on stdin): against the Bigtable emulator and the
//! OpenSearch-API server that scripts/test.sh starts, and against a
//! Cassandra that is not there (no server can be had here), which must be
//! a connection error, not a usage error.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

fn require_server(what: &str, addr: &str) {
    let parsed: SocketAddr = addr.parse().unwrap();
    assert!(
        TcpStream::connect_timeout(&parsed, Duration::from_millis(500)).is_ok(),
        "{what} is not running on {addr}: scripts/test.sh starts it (scripts/servers/)"
    );
}

/// `heroic-shell ARGS`, then `configure` at its prompt.
fn configure_at_the_prompt(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_heroic-shell"))
        .arg("--plugin-dir")
        .arg(common::plugin_dir())
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run heroic-shell");
    child.stdin.take().unwrap().write_all(b"configure\n").unwrap();
    child.wait_with_output().unwrap()
}

fn configured(output: &Output) -> Vec<Value> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "failed ({}): {stderr}", output.status);
    let lines: Vec<Value> =
        String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty() && lines.iter().all(|l| l["configured"] == true), "{lines:?} {stderr}");
    lines
}

#[test]
fn bigtable() {
    const EMULATOR: &str = "127.0.0.1:8086";
    require_server("the Bigtable emulator", EMULATOR);
    // tools/heroic-shell -P bigtable -X bigtable.project=<project> -X bigtable.instance=<instance>
    //     -X bigtable.credentials=default -X bigtable.configure
    // heroic> configure
    let args = [
        "-P",
        "bigtable",
        "-X",
        "bigtable.project=heroic-test",
        "-X",
        "bigtable.instance=test",
        "-X",
        "bigtable.credentials=default",
        "-X",
        "bigtable.configure",
    ];
    // The emulator as Heroic users point at it: the environment variable.
    let lines = configured(&configure_at_the_prompt(&args, &[("BIGTABLE_EMULATOR_HOST", EMULATOR)]));
    assert_eq!(lines.len(), 1, "{lines:?}");
}

#[test]
fn elasticsearch() {
    const SERVER: &str = "127.0.0.1:9200";
    require_server("osmem-server (OpenSearch API)", SERVER);
    // tools/heroic-shell -P elasticsearch-suggest -P elasticsearch-metadata -X elasticsearch.seeds=<address>
    // heroic> configure
    let seeds = format!("elasticsearch.seeds={SERVER}");
    let args = ["-P", "elasticsearch-suggest", "-P", "elasticsearch-metadata", "-X", &seeds];
    let lines = configured(&configure_at_the_prompt(&args, &[]));
    assert_eq!(lines.len(), 2, "metadata and suggest: {lines:?}");
}

#[test]
fn cassandra_without_a_server_is_a_connection_error() {
    // tools/heroic-shell -P cassandra -X cassandra.seeds=<address1>,<address2> -X datastax.configure
    // heroic> configure
    let args = ["-P", "cassandra", "-X", "cassandra.seeds=127.0.0.1:1,127.0.0.1:2", "-X", "datastax.configure"];
    let output = configure_at_the_prompt(&args, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "a connection error, not a usage error (2): {stderr}");
    assert!(stderr.contains("cannot connect to cassandra at 127.0.0.1:1,127.0.0.1:2"), "{stderr}");
}
