//! Node discovery against both test servers: `_nodes/http` and DNS.

use heroic_plugin_elasticsearch::client::EsClient;
use heroic_plugin_elasticsearch::config::{MetadataConfig, Role, Sniff};
use serde_json::json;

/// Panics with instructions when the `name` server is not running.
fn require_server(name: &str, addr: &str) {
    heroic_plugin_api::testkit::servers::require_server(name, addr, "scripts/servers/elasticsearch.sh");
}

async fn discovered(seed: &str, mode: Sniff) -> String {
    let c: MetadataConfig = serde_json::from_value(json!({"seeds": [seed]})).unwrap();
    let client = EsClient::new(&c.settings(Role::Metadata).unwrap()).unwrap();
    client.discover(mode).await.unwrap_or_else(|e| panic!("discovery through {seed}: {e}"));
    client.ping().await.unwrap();
    client.nodes()
}

#[tokio::test]
async fn nodes_api_discovery_osmem() {
    require_server("osmem-server", "127.0.0.1:9200");
    // Seeded with a name, discovered as the published address.
    assert_eq!(discovered("http://localhost:9200", Sniff::Nodes).await, "http://127.0.0.1:9200");
}

#[tokio::test]
async fn nodes_api_discovery_noida() {
    require_server("noida-db", "127.0.0.1:9202");
    assert_eq!(discovered("http://localhost:9202", Sniff::Nodes).await, "http://127.0.0.1:9202");
}

#[tokio::test]
async fn dns_discovery_lists_every_address() {
    require_server("osmem-server", "127.0.0.1:9200");
    let nodes = discovered("http://127.0.0.1:9200", Sniff::Dns).await;
    assert_eq!(nodes, "http://127.0.0.1:9200");
}
