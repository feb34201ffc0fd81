//! The plugin template builds as a separate package, exactly as a third
//! party would build it, and the host loads it.

mod common;

use std::process::Command;

use common::Node;
use serde_json::json;

#[test]
fn template_plugin_builds_out_of_tree_and_loads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let template = root.join("examples/plugin-template");
    // Its own target dir: the workspace's is locked by the running `cargo test`.
    let target = common::plugin_dir().join("plugin-template");
    let out = Command::new(env!("CARGO"))
        .args(["build", "--manifest-path"])
        .arg(template.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .output()
        .expect("run cargo");
    assert!(out.status.success(), "template build failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let lib_dir = target.join("debug");

    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{{port}}\"\n[plugins]\ndirs = [\"{}\", \"{{plugins}}\"]\n\
         [[metrics]]\nplugin = \"template\"\n[metrics.config]\nmax_series = 10\n\
         [[metadata]]\nplugin = \"local\"\n[metadata.config]\ndata_dir = \"{{dir}}/metadata\"\n",
        lib_dir.display()
    );
    let node = Node::start(dir.path(), &config);
    assert!(node.log().contains("template backend ready"), "{}", node.log());

    let body = json!({"series": {"key": "t", "tags": {"a": "b"}}, "data": {"type": "points", "data": [[10, 1.0], [20, 2.0]]}});
    let (status, reply) = node.post("/write", &body);
    assert_eq!(status, 200, "{reply}");
    let q = json!({"range": {"type": "absolute", "start": 0, "end": 100}, "filter": ["key", "t"]});
    let (status, reply) = node.post("/query/metrics", &q);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["result"][0]["values"], json!([[10, 1.0], [20, 2.0]]));
}
