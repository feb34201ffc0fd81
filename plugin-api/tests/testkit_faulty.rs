//! The conformance kit run against the in-memory fixture plugin
//! (`host/tests/fixtures/faulty-plugin`, an in-memory metric backend that
//! implements write and fetch only), loaded through the real ABI.
//!
//! Build the fixture first: `cargo build -p heroic-plugin-faulty` (with the
//! same `CARGO_TARGET_DIR`); it lands next to this test's `deps/` directory.

use heroic_plugin_api::testkit::{load_metric_backend, plugin_search_dirs};

heroic_plugin_api::metric_backend_conformance!(|| async { load_metric_backend("faulty", serde_json::json!({})).await });

/// The kit's loader finds the fixture by name and refuses an unknown plugin
/// with the directories it searched.
#[test]
fn loader_names_the_directories_searched() {
    let dirs = plugin_search_dirs();
    assert!(!dirs.is_empty());
    let err = std::panic::catch_unwind(|| heroic_plugin_api::testkit::find_library("no-such-plugin", &dirs))
        .expect_err("an unknown plugin must not be found");
    let message = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("no-such-plugin") && message.contains("faulty"), "{message}");
}
