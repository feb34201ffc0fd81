//! `heroic-shell` on the real binary and the `local` plugin: every task's
//! output, the dry runs that must not delete, and the errors a user sees.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

/// Runs `heroic-shell` in `cwd` with `args`; the plugins are those of this test run.
fn run_shell(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heroic-shell"))
        .arg("--plugin-dir")
        .arg(common::plugin_dir())
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "info")
        .output()
        .expect("run heroic-shell")
}

fn stdout_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A shell on the `local` profile with its data in a temp dir.
struct LocalShell {
    dir: tempfile::TempDir,
    data_dir: PathBuf,
}

impl LocalShell {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("heroic-data");
        LocalShell { dir, data_dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        let data_dir = format!("local.data_dir={}", self.data_dir.display());
        let mut all = vec!["-P", "local", "-X", &data_dir, "--progress-interval", "0"];
        all.extend_from_slice(args);
        run_shell(self.dir.path(), &all)
    }

    /// A `heroic` node on the same data directories as the shell (the
    /// layout of the `local` profile: suggest shares the metadata registry).
    fn node(&self) -> common::Node {
        let d = self.data_dir.display().to_string();
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:{{port}}\"\n[plugins]\ndirs = [\"{{plugins}}\"]\n\
             [[metrics]]\nplugin = \"local\"\n[metrics.config]\ndata_dir = \"{d}/metrics\"\n\
             [[metadata]]\nplugin = \"local\"\n[metadata.config]\ndata_dir = \"{d}/metadata\"\n\
             [[suggest]]\nplugin = \"local\"\n[suggest.config]\ndata_dir = \"{d}/metadata\"\n"
        );
        common::Node::start(self.dir.path(), &config)
    }

    /// Runs a task that must succeed; its JSON lines.
    fn ok(&self, args: &[&str]) -> Vec<Value> {
        let output = self.run(args);
        assert!(output.status.success(), "{args:?} failed ({}): {}", output.status, stderr(&output));
        stdout_lines(&output)
    }

    /// Runs a task that must succeed with exactly one line of output.
    fn one(&self, args: &[&str]) -> Value {
        let mut lines = self.ok(args);
        assert_eq!(lines.len(), 1, "{args:?}: {lines:?}");
        lines.remove(0)
    }

    fn write(&self, series: Value, points: Value) {
        let written = self.one(&["write", "-s", &series.to_string(), "--points-json", &points.to_string()]);
        assert_eq!(written["points"], points.as_array().unwrap().len(), "{written}");
    }
}

fn series_of(lines: &[Value]) -> Vec<String> {
    let mut out: Vec<String> =
        lines.iter().filter_map(|l| l.get("series")).map(|s| format!("{}{}", s["key"], s["tags"])).collect();
    out.sort();
    out
}

#[test]
fn write_fetch_query_keys_count_and_delete() {
    let shell = LocalShell::new();
    shell.write(json!({"key": "cpu", "tags": {"host": "a"}}), json!([[1000, 1.5], [2000, 2.5]]));
    shell.write(json!({"key": "cpu", "tags": {"host": "b"}}), json!([[1000, 10.0], [3000, 30.0]]));
    let written =
        shell.one(&["write", "-s", r#"{"key": "mem", "tags": {"host": "a"}}"#, "-p", "1000=7", "-p", "500=6"]);
    assert_eq!((&written["points"], &written["series"]["key"]), (&json!(2), &json!("mem")));
    assert!(shell.data_dir.join("metrics").is_dir(), "local.data_dir holds a directory per role");

    // fetch: raw points, (start, end].
    let cpu_a = r#"{"key": "cpu", "tags": {"host": "a"}}"#;
    let fetched = shell.one(&["fetch", "-s", cpu_a]);
    assert_eq!((&fetched["backend"], &fetched["points"]), (&json!("local"), &json!([[1000, 1.5], [2000, 2.5]])));
    assert_eq!(shell.one(&["fetch", "-s", cpu_a, "--start", "1000"])["points"], json!([[2000, 2.5]]));

    // query: Heroic's response, in Heroic's field order.
    let hql = "sum(1s) from points(0, 4000) where $key = cpu";
    let output = shell.run(&["query", hql, "--feature", "-shift_range"]);
    assert!(output.stdout.starts_with(b"{\"queryId\":"), "{}", String::from_utf8_lossy(&output.stdout));
    let answer = &stdout_lines(&output)[0];
    assert_eq!(answer["result"][0]["values"], json!([[1000, 11.5], [2000, 2.5], [3000, 30.0]]), "{answer}");
    assert_eq!(answer["preAggregationSampleSize"], 4);
    let limited = shell.one(&["query", hql, "--feature", "-shift_range", "--series-limit", "1"]);
    assert_eq!(limited["limits"], json!(["SERIES"]), "{limited}");

    // keys: every series of the metric backend, progress on stderr.
    let output = shell.run(&["keys"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        series_of(&stdout_lines(&output)),
        ["\"cpu\"{\"host\":\"a\"}", "\"cpu\"{\"host\":\"b\"}", "\"mem\"{\"host\":\"a\"}"]
    );
    let progress = stderr(&output);
    assert!(
        progress.contains("task=\"keys\"") && progress.contains("position=3") && progress.contains("done"),
        "{progress}"
    );
    assert_eq!(shell.ok(&["keys", "--limit", "2", "--page-size", "1"]).len(), 2);
    assert_eq!(series_of(&shell.ok(&["keys", "host = b"])), ["\"cpu\"{\"host\":\"b\"}"]);

    // count-data: series and points, in a range.
    assert_eq!(shell.one(&["count-data", "$key = cpu"]), json!({"backend": "local", "series": 2, "points": 4}));
    assert_eq!(shell.one(&["count-data", "$key = cpu", "--start", "1000"])["points"], 2);
    assert_eq!(shell.one(&["count-data"])["points"], 6);

    // delete-keys without --ok: prints what it would delete, deletes nothing.
    let output = shell.run(&["delete-keys", "$key = cpu and host = a"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = stdout_lines(&output);
    assert_eq!(series_of(&lines), ["\"cpu\"{\"host\":\"a\"}"]);
    assert_eq!(lines.last().unwrap(), &json!({"backend": "local", "matched": 1, "deleted": 0, "dryRun": true}));
    assert!(stderr(&output).contains("dry run"), "{}", stderr(&output));
    assert_eq!(shell.one(&["count-data", "$key = cpu"])["points"], 4, "a dry run deletes nothing");

    // With --ok the points are gone; other series keep theirs.
    let lines = shell.ok(&["delete-keys", "$key = cpu and host = a", "--ok"]);
    assert_eq!(lines.last().unwrap(), &json!({"backend": "local", "matched": 1, "deleted": 1, "dryRun": false}));
    assert_eq!(shell.ok(&["fetch", "-s", cpu_a]), Vec::<Value>::new());
    assert_eq!(shell.one(&["count-data", "$key = cpu"]), json!({"backend": "local", "series": 1, "points": 2}));

    // A range deletes only the points in it.
    shell.ok(&["delete-keys", "host = b", "--start", "2000", "--ok"]);
    assert_eq!(
        shell.one(&["fetch", "-s", r#"{"key": "cpu", "tags": {"host": "b"}}"#])["points"],
        json!([[1000, 10.0]])
    );
}

#[test]
fn metadata_and_suggest_tasks() {
    let shell = LocalShell::new();
    shell.write(json!({"key": "cpu", "tags": {"host": "a", "site": "lon"}}), json!([[1000, 1.0]]));
    shell.write(json!({"key": "cpu", "tags": {"host": "b", "site": "sto"}}), json!([[1000, 1.0]]));
    shell.write(json!({"key": "mem", "tags": {"host": "a", "site": "lon"}}), json!([[1000, 1.0]]));

    let found = shell.one(&["metadata-fetch", "$key = cpu"]);
    assert_eq!((&found["errors"], &found["limited"]), (&json!([]), &json!(false)));
    assert_eq!(found["series"].as_array().unwrap().len(), 2, "{found}");
    assert_eq!(shell.one(&["metadata-fetch", "$key = cpu", "--limit", "1"])["limited"], true);
    assert_eq!(shell.one(&["metadata-count"]), json!({"errors": [], "count": 3, "limited": false}));
    assert_eq!(shell.one(&["metadata-keys"])["keys"], json!(["cpu", "mem"]));
    assert_eq!(shell.one(&["metadata-tags", "host = a"])["tags"], json!({"host": ["a"], "site": ["lon"]}));

    // metadata-write registers a series without points.
    let written = shell.one(&["metadata-write", "-s", r#"{"key": "disk", "tags": {"host": "c", "site": "lon"}}"#]);
    assert_eq!(written["errors"], json!([]));
    assert_eq!(written["times"].as_array().unwrap().len(), 2, "one metadata and one suggest backend: {written}");
    assert_eq!(shell.one(&["metadata-count"])["count"], 4);
    assert_eq!(shell.ok(&["keys", "$key = disk"]), Vec::<Value>::new(), "no points, so not in the metric backend");

    let keys = shell.one(&["suggest-key", "-k", "cp"]);
    assert_eq!(keys["suggestions"][0]["key"], "cpu", "{keys}");
    let tags = shell.one(&["suggest-tag", "-k", "si", "-v", "st"]);
    assert_eq!(
        (&tags["suggestions"][0]["key"], &tags["suggestions"][0]["value"]),
        (&json!("site"), &json!("sto")),
        "{tags}"
    );
    assert_eq!(shell.one(&["suggest-tag-value", "-k", "site"])["values"], json!(["lon", "sto"]));
    assert_eq!(shell.one(&["suggest-tag-value", "-k", "host", "$key = cpu"])["values"], json!(["a", "b"]));
    let values = shell.one(&["suggest-tag-values", "-e", "host"]);
    assert_eq!(values["suggestions"], json!([{"key": "site", "values": ["lon", "sto"], "limited": false}]));
    let counts = shell.one(&["suggest-tag-key-count"]);
    assert_eq!(
        counts["suggestions"][0],
        json!({"key": "host", "count": 3, "exactValues": ["a", "b", "c"]}),
        "{counts}"
    );

    // metadata-delete: a dry run lists, --ok deletes.
    let dry = shell.one(&["metadata-delete", "host = a"]);
    assert_eq!((dry["dryRun"].clone(), dry["series"].as_array().unwrap().len()), (json!(true), 2), "{dry}");
    assert_eq!(shell.one(&["metadata-count"])["count"], 4, "a dry run deletes nothing");
    assert_eq!(shell.one(&["metadata-delete", "host = a", "--ok"]), json!({"errors": [], "deleted": 2, "failed": 0}));
    assert_eq!(shell.one(&["metadata-count"])["count"], 2);
    assert_eq!(shell.one(&["metadata-keys"])["keys"], json!(["cpu", "disk"]));
}

#[test]
fn configure_backends_statistics_and_parse_query() {
    let shell = LocalShell::new();
    shell.write(json!({"key": "cpu"}), json!([[1000, 1.0]]));

    let configured = shell.ok(&["configure"]);
    let roles: Vec<(&str, bool)> =
        configured.iter().map(|l| (l["role"].as_str().unwrap(), l["configured"] == true)).collect();
    assert_eq!(roles, [("metrics", true), ("metadata", true), ("suggest", true)]);

    let backends = shell.ok(&["backends"]);
    assert_eq!(backends.len(), 3);
    for b in &backends {
        assert_eq!(
            (&b["id"], &b["plugin"], &b["health"]["ok"]),
            (&json!("local"), &json!("local"), &json!(true)),
            "{b}"
        );
    }

    let statistics = shell.ok(&["statistics"]);
    assert_eq!(statistics[0]["role"], "metrics");
    assert_eq!(statistics[0]["statistics"]["series"], 1.0, "{}", statistics[0]);

    // parse-query needs no backends.
    let dir = tempfile::tempdir().unwrap();
    let output = run_shell(dir.path(), &["parse-query", "average(1m) by host from points(1h) where $key = cpu"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let parsed = &stdout_lines(&output)[0];
    assert_eq!(parsed["filter"], json!(["key", "cpu"]));
    assert_eq!(parsed["aggregation"]["of"], json!(["host"]));
    let output = run_shell(dir.path(), &["parse-query", "average(1m) by"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("error: 1:14: expected an expression"), "{}", stderr(&output));
}

#[test]
fn errors_are_clear_and_fail_the_exit_code() {
    let shell = LocalShell::new();
    let dir = shell.dir.path();

    let output = run_shell(dir, &["-P", "memory", "keys"]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains(
            "unknown profile \"memory\"; available profiles: local, bigtable, cassandra, elasticsearch-metadata, elasticsearch-suggest"
        ),
        "{message}"
    );

    let output = shell.run(&["-X", "local.bogus=1", "keys"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("metrics \"local\" (plugin \"local\"): config error"), "{message}");
    assert!(message.contains("unknown field `bogus`"), "{message}");

    let output = shell.run(&["write", "-s", "{\"key\": cpu}", "-p", "1000=1"]);
    assert_ne!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty());
    assert!(
        stderr(&output).contains("error: invalid --series \"{\\\"key\\\": cpu}\": expected value at line 1 column 9"),
        "{}",
        stderr(&output)
    );
    assert_eq!(shell.ok(&["keys"]), Vec::<Value>::new(), "nothing was written");

    let output = shell.run(&["-X", "bigtable.project=p", "keys"]);
    assert!(stderr(&output).contains("profile bigtable is not selected (add -P bigtable)"), "{}", stderr(&output));
    let output = run_shell(dir, &["keys"]);
    assert!(stderr(&output).contains("no backends: give --config FILE and/or -P PROFILE"), "{}", stderr(&output));
    let output = shell.run(&["count-data", "host ="]);
    assert!(stderr(&output).contains("invalid filter \"host =\""), "{}", stderr(&output));
    let output = shell.run(&["delete-keys", "--ok"]);
    assert_eq!(output.status.code(), Some(2), "delete-keys needs a filter: {}", stderr(&output));
    let output = shell.run(&["keys", "--backend", "nope"]);
    assert!(stderr(&output).contains("no metric backend \"nope\"; metric backends: local"), "{}", stderr(&output));
}

#[test]
fn a_running_node_locks_the_shell_out_of_its_data() {
    let shell = LocalShell::new();
    let d = shell.data_dir.display().to_string();
    let mut node = shell.node();
    let pid = node.child.as_ref().unwrap().id();

    let output = shell.run(&["keys"]);
    assert_ne!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty());
    let message = stderr(&output);
    // Whichever backend the shell opens first is refused.
    assert!(message.contains(&format!("data directory {d}/")), "{message}");
    assert!(
        message.contains(&format!("is in use by another process (pid {pid}); stop it or use another data_dir")),
        "{message}"
    );

    // The lock goes with the node's process.
    node.stop();
    assert_eq!(shell.ok(&["keys"]), Vec::<Value>::new());
}

#[test]
fn config_file_as_heroic_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/local.toml")).unwrap();
    std::fs::write(dir.path().join("local.toml"), example).unwrap();
    let with_config = |args: &[&str]| {
        let output = run_shell(dir.path(), &[&["--config", "local.toml"], args].concat());
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        stdout_lines(&output)
    };

    with_config(&["write", "-s", r#"{"key": "cpu", "tags": {"host": "a"}}"#, "-p", "1000=1", "-p", "2000=2"]);
    // Relative data directories are relative to the working directory, as for `heroic`.
    assert!(dir.path().join("data/metrics").is_dir());
    let answer = &with_config(&["query", "* from points(0, 3000) where host = a", "--feature=-shift_range"])[0];
    assert_eq!(answer["result"][0]["values"], json!([[1000, 1.0], [2000, 2.0]]), "{answer}");
    assert_eq!(with_config(&["metadata-keys"])[0]["keys"], json!(["cpu"]));

    // `-P local` without a data dir reads the same ./data as examples/local.toml.
    let output = run_shell(dir.path(), &["-P", "local", "count-data"]);
    assert_eq!(stdout_lines(&output), [json!({"backend": "local", "series": 1, "points": 2})], "{}", stderr(&output));

    // A profile is added to the config's backends; ids must not collide.
    let output = run_shell(dir.path(), &["--config", "local.toml", "-P", "local", "keys"]);
    assert!(
        stderr(&output).contains("the config already has a metrics backend with id \"local\""),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_metric_backend_that_cannot_list_falls_back_to_the_metadata() {
    // The `faulty` fixture keeps points in memory and has no `list_series`.
    let dir = tempfile::tempdir().unwrap();
    let config = "[[metrics]]\nplugin = \"faulty\"\n[[metadata]]\nplugin = \"local\"\n[metadata.config]\ndata_dir = \"./metadata\"\n";
    std::fs::write(dir.path().join("faulty.toml"), config).unwrap();
    let run = |args: &[&str]| run_shell(dir.path(), &[&["--config", "faulty.toml"], args].concat());

    let output = run(&["write", "-s", r#"{"key": "cpu", "tags": {"host": "a"}}"#, "-p", "1000=1"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run(&["count-data", "$key = cpu"]);
    assert!(output.status.success(), "{}", stderr(&output));
    // The series comes from the metadata; its points died with the last process.
    assert_eq!(stdout_lines(&output), [json!({"backend": "faulty", "series": 1, "points": 0})]);
    assert!(
        stderr(&output).contains("cannot list its series; using the series the metadata backends know"),
        "{}",
        stderr(&output)
    );
}

/// `check-data` reads a data directory without opening the stores: it runs
/// next to the node using it, changes no byte, and reports damage with the
/// file, offset and bytes concerned (exit status 1).
#[test]
fn check_data_reports_damage_without_changing_anything() {
    let shell = LocalShell::new();
    for (key, t) in [("cpu-a", "1000"), ("cpu-b", "2000"), ("cpu-c", "3000")] {
        shell.ok(&[
            "write",
            "--series",
            &format!(r#"{{"key": "{key}", "tags": {{"host": "h"}}}}"#),
            "-p",
            &format!("{t}=1"),
        ]);
    }
    let mut node = shell.node();
    let clean = shell.ok(&["check-data"]);
    let summaries: Vec<&Value> = clean.iter().filter(|l| l.get("checked").is_some()).collect();
    assert_eq!(summaries.len(), 3, "{clean:?}");
    assert!(summaries.iter().all(|l| l["damage"] == 0), "{clean:?}");
    assert!(summaries[0]["checked"].as_str().unwrap().contains("3 series"), "{clean:?}");
    node.stop();

    let catalog = shell.data_dir.join("metrics/series.log");
    let mut bytes = std::fs::read(&catalog).unwrap();
    let at = bytes.windows(5).position(|w| w == b"cpu-b").unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(&catalog, &bytes).unwrap();
    let output = shell.run(&["check-data"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("damage found: metrics backend"), "{}", stderr(&output));
    let lines = stdout_lines(&output);
    let skipped =
        lines.iter().find(|l| l["damage"] == true && l["path"].as_str().is_some_and(|p| p.ends_with("series.log")));
    let skipped = skipped.unwrap_or_else(|| panic!("no finding for series.log: {lines:?}"));
    assert!(skipped["bytes"].as_u64() > Some(0) && skipped["offset"].as_u64() > Some(0), "{skipped}");
    assert!(
        lines.iter().any(|l| l["message"].as_str().is_some_and(|m| m.contains("1 series hold points"))),
        "{lines:?}"
    );
    assert_eq!(std::fs::read(&catalog).unwrap(), bytes, "the check changed series.log");
}

/// `metadata-load` rebuilds lost metadata from the metric backend's own
/// list of series; `--dry-run` only counts, a filter narrows it.
#[test]
fn metadata_load_rebuilds_the_metadata_from_the_metric_backend() {
    let shell = LocalShell::new();
    shell.write(json!({"key": "cpu", "tags": {"host": "a"}}), json!([[1000, 1.0]]));
    shell.write(json!({"key": "mem", "tags": {"host": "a"}}), json!([[1000, 2.0]]));
    let count = || shell.one(&["metadata-count"])["count"].clone();
    assert_eq!(count(), json!(2));
    let lose_metadata = || {
        shell.one(&["metadata-delete", "true", "--ok"]);
        assert_eq!(count(), json!(0), "metadata lost");
    };
    lose_metadata();

    let dry = shell.one(&["metadata-load", "--dry-run"]);
    assert_eq!(dry, json!({"backend": "local", "series": 2, "written": 0, "dryRun": true, "resumed": false}));
    assert_eq!(count(), json!(0), "a dry run writes nothing");

    let loaded = shell.one(&["metadata-load", "--rate", "1000"]);
    assert_eq!(loaded, json!({"backend": "local", "series": 2, "written": 2, "dryRun": false, "resumed": false}));
    assert_eq!(count(), json!(2));
    let suggested = shell.one(&["suggest-key", "--key", "cp"]);
    assert!(suggested.to_string().contains("cpu"), "suggest is loaded too: {suggested}");

    lose_metadata();
    let loaded = shell.one(&["metadata-load", "$key = mem"]);
    assert_eq!((&loaded["series"], &loaded["written"]), (&json!(1), &json!(1)), "{loaded}");
    assert_eq!(count(), json!(1));

    // Killed after its first page (one series a second), a load with a
    // checkpoint goes on from there when run again.
    lose_metadata();
    let checkpoint = shell.dir.path().join("load.json");
    let checkpoint_arg = checkpoint.display().to_string();
    let data_dir = format!("local.data_dir={}", shell.data_dir.display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_heroic-shell"))
        .arg("--plugin-dir")
        .arg(common::plugin_dir())
        .args(["-P", "local", "-X", &data_dir, "metadata-load", "--page-size", "1", "--rate", "1"])
        .args(["--checkpoint", &checkpoint_arg])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !checkpoint.exists() {
        assert!(std::time::Instant::now() < deadline, "no checkpoint written");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let resumed = shell.one(&["metadata-load", "--page-size", "1", "--checkpoint", &checkpoint_arg]);
    assert_eq!(resumed, json!({"backend": "local", "series": 2, "written": 2, "dryRun": false, "resumed": true}));
    assert_eq!(count(), json!(2));
    assert!(!checkpoint.exists());
}
