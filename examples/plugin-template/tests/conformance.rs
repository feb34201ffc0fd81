//! The conformance kit: every behaviour the host expects of a metric
//! backend, run against this plugin loaded through the real ABI, exactly as
//! the host loads it. `cargo test` builds the library first (it is this
//! package's `cdylib`), then each case creates a fresh backend from the
//! config below.
//!
//! Undeclared optional operations (see `capabilities()` in `src/lib.rs`)
//! are reported as SKIPPED; a declared one that answers `Unsupported`, or an
//! undeclared one that works, fails.

heroic_plugin_api::metric_backend_conformance!(|| async {
    heroic_plugin_api::testkit::load_metric_backend("template", serde_json::json!({ "max_series": 1000 })).await
});
