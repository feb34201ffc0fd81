//! Shared by the emulator-backed tests: makes sure `cbtemulator` is
//! running (starting it through `scripts/servers/bigtable.sh` if not) and
//! builds configs pointing at it. A missing emulator fails the test with
//! the script's explanation; nothing is skipped.
#![allow(dead_code)]

use std::path::PathBuf;

/// Where `scripts/servers/bigtable.sh` starts the emulator.
pub const EMULATOR: &str = "127.0.0.1:8086";

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// Panics with a clear message when the emulator is neither running nor
/// startable.
pub fn ensure_emulator() {
    let script = workspace_root().join("scripts/servers/bigtable.sh");
    heroic_plugin_api::testkit::servers::ensure_server("Bigtable emulator", EMULATOR, &script);
}

/// A table name unique to this test process, so runs and test binaries do
/// not see each other's series.
pub fn unique_table(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}-{}-{:x}", std::process::id(), nanos % (1 << 32))
}

/// The plugin config for the emulator and `table`.
pub fn config(table: &str) -> serde_json::Value {
    serde_json::json!({
        "project": "heroic-test",
        "instance": "test",
        "table": table,
        "emulatorEndpoint": EMULATOR,
        "shortRpcTimeoutMs": 5000,
    })
}

/// `target/<profile>`: the directory above this test executable's `deps/`.
#[allow(unused_imports)]
pub use heroic_plugin_api::testkit::node::plugin_dir as profile_dir;

/// A runtime like the plugin's: multi-threaded, so that the bulk writer's
/// flusher runs beside the writers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A backend on a fresh table named after `name`, configured, with
/// `extra` keys over [`config`].
pub async fn backend_with(
    name: &str,
    extra: serde_json::Value,
) -> (heroic_plugin_bigtable::BigtableBackend, heroic_plugin_bigtable::BigtableConfig) {
    use heroic_plugin_api::sdk::MetricBackend;
    ensure_emulator();
    let mut json = config(&unique_table(name));
    for (key, value) in extra.as_object().expect("extra keys are an object") {
        json[key] = value.clone();
    }
    let config: heroic_plugin_bigtable::BigtableConfig = serde_json::from_value(json).expect("valid config");
    let backend = heroic_plugin_bigtable::BigtableBackend::create(config.clone()).await.expect("create");
    backend.configure().await.expect("configure");
    (backend, config)
}

/// The value of one of the backend's statistics.
pub fn stat(backend: &heroic_plugin_bigtable::BigtableBackend, name: &str) -> f64 {
    use heroic_plugin_api::sdk::MetricBackend;
    let stats = backend.statistics();
    stats.iter().find(|s| s.name.as_str() == name).unwrap_or_else(|| panic!("no statistic {name}: {stats:?}")).value
}

/// Bytes from hex digits, spaces and other separators ignored.
pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The reference's worked example row key.
pub fn worked_example_key() -> Vec<u8> {
    hex("06 06 73797374656d 02 04 04 686f7374 03 03 646231 \
         07 06 72c3a967696f6e 07 06 5ac3bc72696368 00 00 01 2e 00 00 00 00")
}

/// The series of [`worked_example_key`].
pub fn worked_example_series() -> heroic_plugin_api::types::Series {
    heroic_plugin_api::types::Series::new("system", [("host", "db1"), ("région", "Zürich")], [])
}

/// Every row of the table, read with the plugin's client and no filter.
pub async fn raw_rows(config: &heroic_plugin_bigtable::BigtableConfig) -> Vec<heroic_plugin_bigtable::read_rows::Row> {
    use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::RowSet;
    use heroic_plugin_bigtable::read_rows::range;
    let stats = std::sync::Arc::new(heroic_plugin_bigtable::stats::Stats::default());
    let client = heroic_plugin_bigtable::client::Client::connect(config, stats).await.unwrap();
    let mut rows = Vec::new();
    let all = RowSet { row_keys: vec![], row_ranges: vec![range(Vec::new(), None)] };
    client
        .read_rows(all, None, &mut |row| {
            rows.push(row);
            std::ops::ControlFlow::Continue(())
        })
        .await
        .unwrap();
    rows
}
