//! The conformance kit's whole metric suite against the real Bigtable
//! emulator, with the plugin loaded through the real ABI (the cdylib cargo
//! builds into `target/<profile>/` for this test): once with the default
//! config (bulk writer), once with `disableBulkMutations`.

mod common;

use std::sync::OnceLock;

use heroic_plugin_api::testkit::load_metric_backend;

/// One table for every case of this process: cases use unique series keys.
fn table() -> &'static str {
    static TABLE: OnceLock<String> = OnceLock::new();
    TABLE.get_or_init(|| common::unique_table("conformance"))
}

heroic_plugin_api::metric_backend_conformance!(|| async {
    common::ensure_emulator();
    let client = load_metric_backend("bigtable", common::config(table())).await;
    client.configure().await.expect("configure (create the table and column families)");
    client
});

heroic_plugin_api::metric_backend_conformance!(mod direct_conformance, || async {
    common::ensure_emulator();
    let mut config = common::config(table());
    config["disableBulkMutations"] = serde_json::json!(true);
    let client = load_metric_backend("bigtable", config).await;
    client.configure().await.expect("configure (create the table and column families)");
    client
});

/// The config as the host hands it over (JSON through the ABI): a key the
/// plugin does not know, or both flush interval keys, fail `create` with a
/// `Config` error naming them.
#[test]
fn config_errors_are_reported_through_the_abi() {
    use heroic_plugin_api::ErrorKind;
    common::ensure_emulator();
    let lib = heroic_plugin_api::testkit::load_library("bigtable");
    let create = |extra: serde_json::Value| {
        let mut config = common::config(table());
        for (key, value) in extra.as_object().unwrap() {
            config[key] = value.clone();
        }
        let future = (lib.module.create_metric_backend())(config.to_string().into());
        common::runtime().block_on(future).into_result().err().expect("create refused")
    };
    let e = create(serde_json::json!({ "flushInterval": 2 }));
    assert_eq!(e.kind, ErrorKind::CONFIG, "{e}");
    assert!(e.message.contains("unknown field `flushInterval`"), "{e}");
    let e = create(serde_json::json!({ "flushIntervalSeconds": 2, "flushIntervalMs": 5 }));
    assert_eq!(e.kind, ErrorKind::CONFIG, "{e}");
    assert!(e.message.contains("mutually exclusive"), "{e}");
}
