//! A running node: its backends, write path and settings, shared by every
//! request handler.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use heroic_plugin_api::samples::{SampleKind, SeriesSamples};
use heroic_plugin_api::types::SeriesPoints;

use crate::backends::Backends;
use crate::cluster::Cluster;
use crate::config::{Config, QueryConfig, ServerConfig};
use crate::consumers::Consumers;
use crate::http::access::{Access, Tokens};
use crate::http::cors::Cors;
use crate::ingest::WriteTarget;
use crate::plugins::{PluginRegistry, PluginSetupError};
use crate::query::admission::Admission;
use crate::telemetry::Telemetry;
use crate::writer::{WriteError, WriteReport, Writer};

pub struct Node {
    pub id: String,
    pub server: ServerConfig,
    pub query: QueryConfig,
    pub backends: Backends,
    pub writer: Writer,
    /// Consumers feeding the write path (started once the node exists).
    pub consumers: Consumers,
    /// Query slots and the node's budget of retained query data.
    pub admission: Admission,
    /// CORS, and the checks on routes that change data.
    pub access: Arc<Access>,
    /// This node and the other nodes `/cluster/*` reports.
    pub cluster: Cluster,
    pub started: Instant,
    /// The counters and histograms of `GET /metrics`.
    pub telemetry: Telemetry,
    stopping: AtomicBool,
}

/// Consumers write through the node's write path.
impl WriteTarget for Node {
    async fn write(&self, batch: Vec<SeriesPoints>) -> Result<WriteReport, WriteError> {
        Node::write(self, batch).await
    }

    async fn write_samples(&self, kind: SampleKind, batch: Vec<SeriesSamples>) -> Result<WriteReport, WriteError> {
        self.writer.write_samples(&self.backends, kind, batch).await
    }

    fn stores(&self, kind: SampleKind) -> bool {
        self.stores_samples(kind)
    }
}

impl Node {
    /// Loads the plugins and creates every backend of the config.
    pub async fn start(config: Config) -> Result<Arc<Node>, PluginSetupError> {
        crate::alloc::tune();
        let tokens = Tokens::load(&config.server.auth).map_err(PluginSetupError::Environment)?;
        let access = Arc::new(Access { cors: Cors::new(&config.server.cors_allowed_origins), tokens });
        let telemetry = Telemetry::default();
        let mut registry = PluginRegistry::new(config.plugins.search_dirs()).observed_by(telemetry.calls.clone());
        let backends = Backends::start(&config, &mut registry).await?;
        let consumers = Consumers::create(&config, &mut registry).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let cluster = Cluster::new(&config.cluster, &id, local_description(&id, &config));
        let node = Arc::new(Node {
            id,
            cluster,
            admission: Admission::new(&config.query),
            server: config.server,
            query: config.query,
            backends,
            writer: Writer::new(config.ingestion, telemetry.writes.clone()),
            telemetry,
            consumers,
            access,
            started: Instant::now(),
            stopping: AtomicBool::new(false),
        });
        node.consumers.start(&node).await?;
        if !node.cluster.static_nodes().await.is_empty() {
            let n = node.clone();
            tokio::spawn(async move { n.cluster.refresh().await });
        }
        Ok(node)
    }

    pub async fn write(&self, batch: Vec<SeriesPoints>) -> Result<WriteReport, WriteError> {
        self.writer.write(&self.backends, batch).await
    }

    /// Whether samples of `kind` can be written: some metric backend
    /// stores them, or the node writes no metrics (only their series).
    pub fn stores_samples(&self, kind: SampleKind) -> bool {
        !self.writer.writes_metrics() || self.backends.metrics.iter().any(|b| b.client.stores(kind))
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Marks the node as stopping (new requests get 503), then flushes and
    /// closes the backends. Call after the HTTP server has drained.
    pub async fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Consumers first: their in-flight batches still need the backends.
        self.consumers.stop().await;
        self.backends.shutdown().await;
    }

    pub fn mark_stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }
}

/// The `node` text of this node in `/cluster/status`, worded as Heroic's.
fn local_description(id: &str, config: &Config) -> String {
    let tags: Vec<String> = config.cluster.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "LocalClusterNode(localMetadata=NodeMetadata(version=0, id={id}, tags={{{}}}, service=ServiceInfo(name={}, \
         version={}, id={}, commit={})))",
        tags.join(", "),
        config.server.service,
        env!("CARGO_PKG_VERSION"),
        config.server.id,
        option_env!("HEROIC_COMMIT").unwrap_or("HEAD"),
    )
}
