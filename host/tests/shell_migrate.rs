//! `data-migrate` and `metadata-migrate` on the real binary, between two
//! `local` backends of each role: what is copied, dry runs, a copy killed
//! half-way and resumed from its checkpoint, and the progress bar on a
//! terminal.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The backends of the tests, each `local` in a directory of its own:
/// metric backends `old` and `new`, metadata backends `old-meta` and
/// `new-meta` (role, id, directory under the test's).
const OLD_METRICS: (&str, &str, &str) = ("metrics", "old", "old/metrics");
const NEW_METRICS: (&str, &str, &str) = ("metrics", "new", "new/metrics");
const OLD_META: (&str, &str, &str) = ("metadata", "old-meta", "old/metadata");
const NEW_META: (&str, &str, &str) = ("metadata", "new-meta", "new/metadata");

/// Writes a config of `backends` to `dir/name`; its path.
fn config(dir: &Path, name: &str, backends: &[(&str, &str, &str)]) -> String {
    let mut text = format!("[plugins]\ndirs = [\"{}\"]\n", common::plugin_dir().display());
    for (role, id, data) in backends {
        let data = dir.join(data);
        text.push_str(&format!(
            "[[{role}]]\nid = \"{id}\"\nplugin = \"local\"\nconfig = {{ data_dir = \"{}\" }}\n",
            data.display()
        ));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The old backends alone (where the data is written first), and all four.
fn configs(dir: &Path) -> (String, String) {
    let old = config(dir, "old.toml", &[OLD_METRICS, OLD_META]);
    let both = config(dir, "both.toml", &[OLD_METRICS, NEW_METRICS, OLD_META, NEW_META]);
    (old, both)
}

fn shell(config: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_heroic-shell"));
    command.args(["--config", config, "--progress-interval", "0"]).args(args).env("RUST_LOG", "info");
    command
}

fn run(config: &str, args: &[&str]) -> Output {
    shell(config, args).output().unwrap()
}

/// Runs a task that must succeed; its last JSON line.
fn last_line(config: &str, args: &[&str]) -> Value {
    let output = run(config, args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?} failed ({}): {stderr}", output.status);
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_else(|| panic!("{args:?} printed nothing: {stderr}"))).unwrap()
}

/// 20 series of 50 points each in the old backends.
fn write_old_data(old: &str) {
    let mut script = String::new();
    for host in 0..20 {
        let points: Vec<(i64, f64)> = (1..=50).map(|i| (i * 1000, (host * 100 + i) as f64)).collect();
        let series = json!({"key": if host < 15 { "cpu" } else { "mem" }, "tags": {"host": format!("h{host:02}")}});
        script.push_str(&format!("write -s '{series}' --points-json '{}'\n", serde_json::to_string(&points).unwrap()));
    }
    let mut child = shell(old, &[]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), script.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn data_migrate_copies_points_and_resumes_after_being_killed() {
    let dir = tempfile::tempdir().unwrap();
    let (old, both) = configs(dir.path());
    write_old_data(&old);

    // A dry run counts, writes nothing.
    let dry = last_line(&both, &["data-migrate", "--from", "old", "--to", "new", "--dry-run"]);
    assert_eq!(
        dry,
        json!({"from": "old", "to": "new", "series": 20, "points": 1000, "dryRun": true, "resumed": false})
    );
    let count = |backend: &str, filter: &str| last_line(&both, &["count-data", filter, "--backend", backend]);
    assert_eq!(count("new", "true")["points"], 0);

    // A filter and a range narrow the copy: (10 s, 20 s] of cpu = 10 points each.
    let some = last_line(
        &both,
        &[
            "data-migrate",
            "$key = cpu and host = h03",
            "--from",
            "old",
            "--to",
            "new",
            "--start",
            "10000",
            "--end",
            "20000",
        ],
    );
    assert_eq!((&some["series"], &some["points"]), (&json!(1), &json!(10)), "{some}");
    assert_eq!(count("new", "true"), json!({"backend": "new", "series": 1, "points": 10}));

    // The whole copy, a page of one series at a time and slowed down to
    // 100 points a second, is killed once its checkpoint shows progress.
    let checkpoint = dir.path().join("copy.json");
    let checkpoint_arg = checkpoint.display().to_string();
    let copy = ["data-migrate", "--from", "old", "--to", "new", "--page-size", "1", "--checkpoint", &checkpoint_arg];
    let mut slow: Vec<&str> = copy.to_vec();
    slow.extend(["--rate", "100"]);
    let mut child = shell(&both, &slow).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let saved: Value = loop {
        if let Ok(text) = std::fs::read_to_string(&checkpoint) {
            let saved: Value = serde_json::from_str(&text).unwrap();
            if saved["series"].as_u64().unwrap() >= 2 {
                break saved;
            }
        }
        assert!(Instant::now() < deadline, "no checkpoint written");
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(saved["position"].is_string(), "{saved}");

    // Run again with the same checkpoint: it goes on from there, and
    // everything is in the new backend, exactly.
    let resumed = last_line(&both, &copy);
    assert_eq!((&resumed["resumed"], &resumed["series"], &resumed["points"]), (&json!(true), &json!(20), &json!(1000)));
    assert!(!checkpoint.exists(), "a finished copy removes its checkpoint");
    assert_eq!(count("new", "true"), json!({"backend": "new", "series": 20, "points": 1000}));
    for host in ["h00", "h07", "h19"] {
        let key = if host == "h19" { "mem" } else { "cpu" };
        let series = json!({"key": key, "tags": {"host": host}}).to_string();
        let fetch = |backend| last_line(&both, &["fetch", "-s", &series, "--backend", backend])["points"].clone();
        assert_eq!(fetch("new"), fetch("old"), "{host}");
    }

    // A checkpoint of another copy is refused, not silently reused.
    std::fs::write(&checkpoint, serde_json::to_string(&saved).unwrap()).unwrap();
    let other = run(&both, &["data-migrate", "--from", "new", "--to", "old", "--checkpoint", &checkpoint_arg]);
    assert_eq!(other.status.code(), Some(2), "{}", String::from_utf8_lossy(&other.stderr));
    assert!(String::from_utf8_lossy(&other.stderr).contains("belongs to another copy"));
    let same = run(&both, &["data-migrate", "--from", "old", "--to", "old"]);
    assert_eq!(same.status.code(), Some(2));
}

#[test]
fn metadata_migrate_copies_series_key_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let (old, both) = configs(dir.path());
    write_old_data(&old);
    assert_eq!(last_line(&both, &["metadata-count"])["count"], 20);

    let dry = last_line(&both, &["metadata-migrate", "--from", "old-meta", "--to", "new-meta", "--dry-run"]);
    assert_eq!(
        dry,
        json!({"from": "old-meta", "to": "new-meta", "keys": 2, "series": 20, "dryRun": true, "resumed": false})
    );

    let checkpoint = dir.path().join("meta.json").display().to_string();
    let copied = last_line(
        &both,
        &[
            "metadata-migrate",
            "host !^ h1",
            "--from",
            "old-meta",
            "--to",
            "new-meta",
            "--checkpoint",
            &checkpoint,
            "--page-size",
            "3",
        ],
    );
    assert_eq!((&copied["keys"], &copied["series"]), (&json!(1), &json!(10)), "h00-h09 are all cpu: {copied}");

    // Only the new backend, to see what it holds.
    let new_only = config(dir.path(), "new.toml", &[NEW_META]);
    let tags = last_line(&new_only, &["metadata-tags"]);
    assert_eq!(tags["tags"]["host"].as_array().unwrap().len(), 10, "{tags}");
    assert_eq!(last_line(&new_only, &["metadata-keys"])["keys"], json!(["cpu"]));

    // A copy of every series whose checkpoint says `cpu` was done goes on
    // with the keys after it.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let saved = json!({
        "task": "metadata-migrate", "from": "old-meta", "to": "new-meta", "filter": null,
        "range": [now - 7 * 86_400_000, now + 60_000], "position": "cpu", "series": 15, "points": 0,
    });
    std::fs::write(&checkpoint, saved.to_string()).unwrap();
    let resumed =
        last_line(&both, &["metadata-migrate", "--from", "old-meta", "--to", "new-meta", "--checkpoint", &checkpoint]);
    assert_eq!(
        resumed,
        json!({"from": "old-meta", "to": "new-meta", "keys": 2, "series": 20, "dryRun": false, "resumed": true})
    );
    assert_eq!(last_line(&new_only, &["metadata-keys"])["keys"], json!(["cpu", "mem"]));
    let tags = last_line(&new_only, &["metadata-tags"]);
    assert_eq!(tags["tags"]["host"].as_array().unwrap().len(), 15, "cpu h00-h09 and mem h15-h19: {tags}");
}

/// On a terminal (a pty from util-linux `script`), a long task draws a
/// progress bar; piped, it writes plain progress lines (the tests above).
#[test]
fn a_terminal_gets_a_progress_bar() {
    let dir = tempfile::tempdir().unwrap();
    let (old, both) = configs(dir.path());
    write_old_data(&old);
    let command = format!(
        "{} --config {both} metadata-migrate --from old-meta --to new-meta --rate 40",
        env!("CARGO_BIN_EXE_heroic-shell")
    );
    let output = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("TERM", "xterm")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux script");
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{screen}");
    // The bar: `[=====>    ] 1/2 keys, 15 series`, redrawn in place.
    assert!(screen.contains("metadata-migrate old-meta: ["), "{screen}");
    assert!(screen.contains("/2 keys"), "{screen}");
    assert!(screen.contains("\"series\":20"), "{screen}");
}
