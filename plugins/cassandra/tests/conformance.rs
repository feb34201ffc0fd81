//! The conformance kit's whole metric suite against a real Cassandra or
//! ScyllaDB, with the plugin loaded through the real ABI.
//!
//! No CQL server can be installed on the machines this project is built on,
//! so every case is `#[ignore]`d. To run them:
//!
//! ```text
//! HEROIC_CASSANDRA_SEEDS=127.0.0.1:9042 cargo test -p heroic-plugin-cassandra --test conformance -- --ignored
//! ```
//!
//! Optional: `HEROIC_CASSANDRA_KEYSPACE` (default `heroic_test`, created
//! with replication factor 1), `HEROIC_CASSANDRA_USERNAME` and
//! `HEROIC_CASSANDRA_PASSWORD`. Each run creates its own table in that
//! keyspace (drop the keyspace to clean up).
//!

use std::sync::OnceLock;

use heroic_plugin_api::client::MetricBackendClient;
use heroic_plugin_api::testkit::load_metric_backend;

/// The plugin config for the server named by the environment.
fn config() -> serde_json::Value {
    let seeds = std::env::var("HEROIC_CASSANDRA_SEEDS").unwrap_or_default();
    assert!(
        !seeds.trim().is_empty(),
        "set HEROIC_CASSANDRA_SEEDS=host[:port][,host[:port]…] to the Cassandra or ScyllaDB to test against"
    );
    static TABLE: OnceLock<String> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        format!("conformance_{}_{secs}", std::process::id())
    });
    let mut config = serde_json::json!({
        "seeds": seeds.split(',').map(str::trim).collect::<Vec<_>>(),
        "keyspace": std::env::var("HEROIC_CASSANDRA_KEYSPACE").unwrap_or_else(|_| "heroic_test".into()),
        "table": table,
        "replicationFactor": 1,
    });
    if let (Ok(username), Ok(password)) =
        (std::env::var("HEROIC_CASSANDRA_USERNAME"), std::env::var("HEROIC_CASSANDRA_PASSWORD"))
    {
        config["authentication"] = serde_json::json!({ "type": "plain", "username": username, "password": password });
    }
    config
}

/// A backend on the run's table, which the first case creates: concurrent
/// `CREATE TABLE`s of one table from many sessions can make Cassandra's
/// schema disagree with itself.
async fn backend() -> MetricBackendClient {
    static CONFIGURED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let client = load_metric_backend("cassandra", config()).await;
    CONFIGURED
        .get_or_init(|| async { client.configure().await.expect("configure (create the keyspace and the table)") })
        .await;
    client
}

heroic_plugin_api::metric_backend_conformance!(
    #[ignore = "needs a live Cassandra or ScyllaDB: set HEROIC_CASSANDRA_SEEDS and run with --ignored"]
    mod metric_conformance,
    || backend()
);

/// Rows of 2^31 − 1 ms, not Bigtable's 2^32: offset 0 of a later row, and a
/// range ending exactly on a base, around this backend's own boundaries.
#[test]
#[ignore = "needs a live Cassandra or ScyllaDB: set HEROIC_CASSANDRA_SEEDS and run with --ignored"]
fn cassandra_row_edges() {
    use heroic_plugin_api::types::{FetchRequest, PointBatch, Series, SeriesPoints, TimeRange};
    const W: i64 = i32::MAX as i64;
    heroic_plugin_api::testkit::run_case("cassandra", "row_edges", async {
        let client = backend().await;
        let key = format!("cassandra-row-edges-{}", heroic_plugin_api::testkit::unique_id());
        let series = Series::new(key, [("k", "v")], []);
        let base = 700 * W;
        let times = [base - 1, base, base + 1, base + W - 1, base + W];
        let points: Vec<(i64, f64)> = times.iter().map(|&t| (t, t as f64)).collect();
        let batch = vec![SeriesPoints { series: series.clone(), points: PointBatch::from_pairs(&points) }];
        client.write(batch.into()).await.expect("write");
        for (start, end) in [(base - 2, base + W), (base - 1, base), (base, base + W), (base - W, base + 2 * W)] {
            let range = TimeRange::new(start, end);
            let request = FetchRequest { series: vec![series.clone()].into(), range, point_limit: 0 };
            let response = client.fetch(request).await.expect("fetch");
            let got: Vec<(i64, f64)> = response.series.iter().flat_map(|s| s.points.to_pairs()).collect();
            let expected: Vec<(i64, f64)> = points.iter().copied().filter(|p| range.contains(p.0)).collect();
            assert_eq!(got, expected, "({start}, {end}]");
        }
    });
}
