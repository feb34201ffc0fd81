//! Test harness: the plugin-api testkit's node harness (the real `heroic`
//! binary on a free port with a config written to a temp dir, talked to over
//! HTTP). Cargo builds this package's `heroic` into `target/<profile>/`
//! before running its tests, which is where the harness looks first.
#![allow(unused_imports, dead_code)]

pub mod prometheus;

pub use heroic_plugin_api::testkit::node::{
    free_port, heroic_binary, plugin_dir, sample_in, start_failure, values, write_config, Node,
};

/// examples/local.toml, with the port and plugin directory of this test run.
pub fn local_config() -> String {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/local.toml")).unwrap();
    example.replace("127.0.0.1:8080", "127.0.0.1:{port}").replace("dirs = []", "dirs = [\"{plugins}\"]")
}

/// `program` on `PATH`, as a shell would find it.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(program)).find(|p| p.is_file())
}
