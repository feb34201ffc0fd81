//! The conformance kit's metadata and suggest suites against both test
//! servers (start them with `scripts/servers/elasticsearch.sh start`; the
//! README's test command does). A missing server fails every case with a
//! message saying so; nothing is skipped.
//!
//! Every case creates its own backend through the real ABI (the kit loads
//! `libheroic_plugin_elasticsearch` from this build's target directory);
//! cases isolate themselves by unique keys, so they share the indices.

use std::path::PathBuf;

use heroic_plugin_api::testkit::{load_metadata_backend, load_suggest_backend};
use serde_json::{json, Value};

const OSMEM: &str = "127.0.0.1:9200";
const NOIDA: &str = "127.0.0.1:9202";

/// Panics with instructions when the `name` server is not running.
fn require_server(name: &str, addr: &str) {
    heroic_plugin_api::testkit::servers::require_server(name, addr, "scripts/servers/elasticsearch.sh");
}

/// The newest build of the plugin library. `cargo test` rebuilds it in
/// `deps/` but copies it to `target/<profile>/` only on `cargo build`, and
/// the kit looks in `target/<profile>/` first, so it could load a stale
/// library after an edit; a path makes the kit load exactly this file.
fn plugin() -> String {
    let name = heroic_plugin_api::loader::library_file_name("elasticsearch");
    let newest = heroic_plugin_api::testkit::default_plugin_dirs()
        .into_iter()
        .map(|d: PathBuf| d.join(&name))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max();
    match newest {
        Some((_, path)) => path.display().to_string(),
        None => "elasticsearch".into(), // the kit's own search and error message
    }
}

fn base(addr: &str, role: &str) -> Value {
    json!({
        "seeds": [format!("http://{addr}")],
        "index": {"type": "single", "name": format!("conformance-{role}")},
        "configure": true,
        // Read-your-writes: the suites query right after writing.
        "refresh": "wait_for",
    })
}

fn rotating(addr: &str, role: &str) -> Value {
    let mut c = base(addr, role);
    c["index"] = json!({"type": "rotating", "pattern": "conformance-rot-%s", "interval": "1d", "max_read_indices": 2, "max_write_indices": 2});
    c
}

heroic_plugin_api::metadata_backend_conformance!(mod metadata_osmem, || async {
    require_server("osmem-server", OSMEM);
    load_metadata_backend(&plugin(), base(OSMEM, "metadata")).await
});

heroic_plugin_api::metadata_backend_conformance!(mod metadata_noida, || async {
    require_server("noida-db", NOIDA);
    load_metadata_backend(&plugin(), base(NOIDA, "metadata")).await
});

// Rotating indices with two read and two write indices: every series has
// two copies, which answers must not show.
heroic_plugin_api::metadata_backend_conformance!(mod metadata_rotating_osmem, || async {
    require_server("osmem-server", OSMEM);
    load_metadata_backend(&plugin(), rotating(OSMEM, "metadata")).await
});

// Regexes evaluated in the plugin instead of pushed down.
heroic_plugin_api::metadata_backend_conformance!(mod metadata_plugin_regex_noida, || async {
    require_server("noida-db", NOIDA);
    let mut c = base(NOIDA, "metadata");
    c["regex"] = json!("plugin");
    load_metadata_backend(&plugin(), c).await
});

heroic_plugin_api::suggest_backend_conformance!(mod suggest_osmem, || async {
    require_server("osmem-server", OSMEM);
    load_suggest_backend(&plugin(), base(OSMEM, "suggest")).await
});

heroic_plugin_api::suggest_backend_conformance!(mod suggest_noida, || async {
    require_server("noida-db", NOIDA);
    load_suggest_backend(&plugin(), base(NOIDA, "suggest")).await
});
