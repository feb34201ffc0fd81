//! The conformance kit's whole metric suite against the real Bigtable
//! emulator, with the plugin loaded through the real ABI (the cdylib cargo
//! builds into `target/<profile>/` for this test).

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
