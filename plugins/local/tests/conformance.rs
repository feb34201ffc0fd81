//! The whole conformance kit against `local`, loaded as a cdylib through
//! the plugin ABI exactly as the host loads it. Each case gets a fresh data
//! directory.

use heroic_plugin_api::testkit::{load_metadata_backend, load_metric_backend, load_suggest_backend};

heroic_plugin_api::metric_backend_conformance!(|| async {
    let dir = tempfile::tempdir().unwrap();
    (load_metric_backend("local", serde_json::json!({"data_dir": dir.path()})).await, dir)
});

heroic_plugin_api::metadata_backend_conformance!(|| async {
    let dir = tempfile::tempdir().unwrap();
    (load_metadata_backend("local", serde_json::json!({"data_dir": dir.path()})).await, dir)
});

heroic_plugin_api::suggest_backend_conformance!(|| async {
    let dir = tempfile::tempdir().unwrap();
    (load_suggest_backend("local", serde_json::json!({"data_dir": dir.path()})).await, dir)
});
