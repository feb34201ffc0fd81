//! The plugin template as a third party would use it: a separate package,
//! built out of tree, that passes the conformance kit in its own
//! `cargo test` and loads into the host.
//!
//! The same template built against the previous minor version of the
//! interface (`--features heroic-plugin-api/previous-abi`, which leaves out
//! the newest minor version's additions) proves the compatibility promise:
//! a plugin built against the previous minor version (1.2) loads and serves
//! in today's 1.x host, and answers the interface's defaults for what it
//! does not have.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use common::Node;
use serde_json::json;

/// One build at a time: they are heavy, and the machine may have 2 cores.
static BUILD: Mutex<()> = Mutex::new(());

fn template_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("examples/plugin-template")
}

/// Runs cargo on the template in a target dir of its own per variant (the
/// workspace's is locked by the running `cargo test`, and two variants in
/// one dir overwrite each other's library, which cargo names without a
/// hash) and copies the library it built into a fresh directory.
fn build_template(variant: &str, args: &[&str], into: &Path) -> String {
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let target = common::plugin_dir().join(format!("plugin-template-{variant}"));
    let out = Command::new(env!("CARGO"))
        .args(args)
        .arg("--manifest-path")
        .arg(template_dir().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        // Three more builds of the SDK and its dependencies: without debug
        // info they take a fraction of the disk.
        .env("CARGO_PROFILE_DEV_DEBUG", "0")
        .output()
        .expect("run cargo");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "cargo {args:?} on the template failed:\n{stdout}\n{stderr}");
    let file = heroic_plugin_api::loader::library_file_name("template");
    std::fs::create_dir_all(into).unwrap();
    // `deps/` holds the library of this very build (`cargo test` does not
    // always copy it up to `debug/`).
    std::fs::copy(target.join("debug/deps").join(&file), into.join(&file)).expect("copy the template library");
    format!("{stdout}\n{stderr}")
}

/// A node with the template as its metric backend; writes and reads back.
fn serve_and_check(lib_dir: &Path, dir: &Path) -> Node {
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{{port}}\"\n[plugins]\ndirs = [\"{}\", \"{{plugins}}\"]\n\
         [[metrics]]\nplugin = \"template\"\n[metrics.config]\nmax_series = 10\n\
         [[metadata]]\nplugin = \"local\"\n[metadata.config]\ndata_dir = \"{{dir}}/metadata\"\n",
        lib_dir.display()
    );
    let node = Node::start(dir, &config);
    assert!(node.log().contains("template backend ready"), "{}", node.log());

    let body =
        json!({"series": {"key": "t", "tags": {"a": "b"}}, "data": {"type": "points", "data": [[10, 1.0], [20, 2.0]]}});
    let (status, reply) = node.post("/write", &body);
    assert_eq!(status, 200, "{reply}");
    let q = json!({"range": {"type": "absolute", "start": 0, "end": 100}, "filter": ["key", "t"]});
    let (status, reply) = node.post("/query/metrics", &q);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["result"][0]["values"], json!([[10, 1.0], [20, 2.0]]));
    node
}

#[test]
fn template_passes_the_conformance_kit_and_loads() {
    let dir = tempfile::tempdir().unwrap();
    let lib_dir = dir.path().join("lib");
    // `cargo test` builds the library, then runs the kit against it.
    let output = build_template("current", &["test"], &lib_dir);
    assert!(output.contains("metric_conformance::fetch_point_limit ... ok"), "{output}");
    assert!(output.contains("conformance metric: declared capabilities"), "the kit's summary is missing:\n{output}");

    let node = serve_and_check(&lib_dir, dir.path());
    let log = node.log();
    let this_version = heroic_plugin_api::ffi::API_VERSION;
    assert!(log.contains(&format!("interface={this_version}")) || log.contains(this_version), "{log}");
    assert!(log.contains("capabilities=[\"count_points\"]"), "the template declares count_points only:\n{log}");
}

#[test]
fn template_built_against_the_previous_minor_version_loads_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let lib_dir = dir.path().join("lib");
    build_template("1.2", &["build", "--features", "heroic-plugin-api/previous-abi"], &lib_dir);

    let node = serve_and_check(&lib_dir, dir.path());
    let log = node.log();
    assert!(log.contains("1.2.0"), "the plugin declares interface 1.2.0:\n{log}");
    assert!(log.contains("capabilities=[\"count_points\"]"), "the 1.2 plugin's own capabilities:\n{log}");
    // `fetch_buckets` came in 1.3: a 1.2 plugin lacks it and cannot
    // declare it, so an aggregation is read point by point through
    // `fetch` and answers the same.
    let q = json!({"range": {"type": "absolute", "start": 0, "end": 20}, "filter": ["key", "t"],
        "aggregation": {"type": "sum", "sampling": {"unit": "milliseconds", "value": 10}}});
    let (status, reply) = node.post("/query/metrics", &q);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["result"][0]["values"], json!([[10, 1.0], [20, 2.0]]), "{reply}");
    // The template declares no sample kind, so a distribution write (one
    // centroid, 5.0, in the small encoding) is a clear 400 and nothing
    // crashes.
    let body = json!({"series": {"key": "t"}, "data": {"type": "distributionPoints",
        "data": [{"value": "AAAAAkAUAAAAAAAAQBQAAAAAAABCyAAAAGQB9AABP4AAAECgAAA=", "timestamp": 10}]}});
    let (status, reply) = node.post("/write", &body);
    assert_eq!(status, 400, "{reply}");
    assert!(reply["message"].as_str().unwrap_or("").contains("cannot be stored"), "{reply}");
}

/// A plugin built with `panic = "abort"` would turn every panic the SDK
/// catches into an abort of the whole host: `export_plugin!` refuses to
/// compile it, saying what to change. (`cargo check` is enough to see it.)
#[test]
fn a_plugin_built_with_panic_abort_does_not_compile() {
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO"))
        .args(["check", "--lib", "--config", "profile.dev.panic=\"abort\"", "--manifest-path"])
        .arg(template_dir().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(common::plugin_dir().join("plugin-template-abort"))
        .env("CARGO_PROFILE_DEV_DEBUG", "0")
        .output()
        .expect("run cargo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a panic=abort plugin compiled:\n{stderr}");
    assert!(stderr.contains("heroic plugins must be built with `panic = \"unwind\"`"), "{stderr}");
}
