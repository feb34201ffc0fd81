//! `heroic-shell -P bigtable` against the Bigtable emulator that
//! `scripts/servers/bigtable.sh start` runs on 127.0.0.1:8086 (started by
//! scripts/test.sh): the profile's `-X` keys reach the plugin, and
//! `configure`, `write`, `keys`, `count-data`, `delete-keys` and
//! `data-migrate` work on a real metric backend with its own paging.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

const EMULATOR: &str = "127.0.0.1:8086";

fn emulator_is_up() -> bool {
    let addr: SocketAddr = EMULATOR.parse().unwrap();
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Runs the shell on the `bigtable` profile (a table of its own) plus
/// `local` for metadata and suggest; returns its JSON lines.
fn shell(table: &str, data_dir: &std::path::Path, args: &[&str]) -> Vec<Value> {
    let table = format!("bigtable.table={table}");
    let data_dir = format!("local.data_dir={}", data_dir.display());
    let output = Command::new(env!("CARGO_BIN_EXE_heroic-shell"))
        .arg("--plugin-dir")
        .arg(common::plugin_dir())
        .args(["-P", "bigtable", "-X", "bigtable.project=heroic-test", "-X", "bigtable.instance=test", "-X", &table])
        .args(["-X", &format!("bigtable.emulatorEndpoint={EMULATOR}"), "-P", "local", "-X", &data_dir])
        .args(args)
        .output()
        .expect("run heroic-shell");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?} failed ({}): {stderr}", output.status);
    String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn bigtable_profile_configure_write_list_count_delete() {
    assert!(
        emulator_is_up(),
        "the Bigtable emulator is not running on {EMULATOR}: run scripts/servers/bigtable.sh start"
    );
    let dir = tempfile::tempdir().unwrap();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let table = format!("shell-{}-{:x}", std::process::id(), nanos % (1 << 32));
    let run = |args: &[&str]| shell(&table, dir.path(), args);

    let configured = run(&["configure"]);
    assert_eq!(configured[0], json!({"role": "metrics", "id": "bigtable", "configured": true}));

    for host in ["a", "b", "c"] {
        let series = json!({"key": "cpu", "tags": {"host": host}}).to_string();
        run(&["write", "-s", &series, "-p", "1000=1", "-p", "2000=2"]);
    }
    // Pages of one series: the shell follows the plugin's cursor to the end.
    let keys = run(&["keys", "--backend", "bigtable", "--page-size", "1"]);
    let hosts: Vec<&str> = keys.iter().map(|k| k["series"]["tags"]["host"].as_str().unwrap()).collect();
    assert_eq!(hosts, ["a", "b", "c"], "{keys:?}");
    assert_eq!(
        run(&["count-data", "--backend", "bigtable"]),
        [json!({"backend": "bigtable", "series": 3, "points": 6})]
    );

    let dry = run(&["delete-keys", "host != a", "--backend", "bigtable", "--page-size", "1"]);
    assert_eq!(dry.last().unwrap(), &json!({"backend": "bigtable", "matched": 2, "deleted": 0, "dryRun": true}));
    assert_eq!(run(&["count-data", "--backend", "bigtable"])[0]["points"], 6, "a dry run deletes nothing");

    let deleted = run(&["delete-keys", "host != a", "--backend", "bigtable", "--page-size", "1", "--ok"]);
    assert_eq!(deleted.last().unwrap(), &json!({"backend": "bigtable", "matched": 2, "deleted": 2, "dryRun": false}));
    assert_eq!(
        run(&["count-data", "--backend", "bigtable"]),
        [json!({"backend": "bigtable", "series": 1, "points": 2})]
    );
    let fetched = run(&["fetch", "-s", r#"{"key": "cpu", "tags": {"host": "a"}}"#, "--backend", "bigtable"]);
    assert_eq!(fetched[0]["points"], json!([[1000, 1.0], [2000, 2.0]]));

    // data-migrate local → bigtable puts back what was deleted there (the
    // local backend had every write too), a page of one series at a time.
    let copied = run(&["data-migrate", "--from", "local", "--to", "bigtable", "--page-size", "1"]);
    assert_eq!(
        copied.last().unwrap(),
        &json!({"from": "local", "to": "bigtable", "series": 3, "points": 6, "dryRun": false, "resumed": false})
    );
    assert_eq!(
        run(&["count-data", "--backend", "bigtable"]),
        [json!({"backend": "bigtable", "series": 3, "points": 6})]
    );
    let fetched = run(&["fetch", "-s", r#"{"key": "cpu", "tags": {"host": "c"}}"#, "--backend", "bigtable"]);
    assert_eq!(fetched[0]["points"], json!([[1000, 1.0], [2000, 2.0]]));
}
