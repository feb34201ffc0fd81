//! The node's consumers: plugins that take messages from a queue and hand
//! them to the host in batches.
//!
//! Each consumer gets a host-implemented [`IngestSinkFfi`]. Its `ingest`
//! only sends the batch over a bounded tokio channel to a task on the host
//! runtime and returns a future awaiting the answer on a oneshot channel:
//! nothing in it needs the host's runtime, so the plugin may poll it on its
//! own threads (see docs/plugin-abi.md). The host task runs the batch
//! through the [`Pipeline`] (decode, filter, write) and answers `Ok` only
//! once the write is durable; the plugin acknowledges only then.
//!
//! At shutdown the consumers are stopped before the backends, so batches in
//! flight are finished and acknowledged (or abandoned unacknowledged).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::RResult;
use heroic_plugin_api::async_ffi::FutureExt;
use heroic_plugin_api::client::ConsumerClient;
use heroic_plugin_api::ffi::{IngestSinkBox, IngestSinkFfi, IngestSinkFfi_TO, PluginFuture};
use heroic_plugin_api::types::{Health, IngestOutcome, RawMessage, Series, Statistic};
use heroic_plugin_api::{PluginError, PluginResult, RVec};
use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::ingest::{IngestStats, Ingestion, Pipeline, WriteTarget};
use crate::plugins::{PluginRegistry, PluginSetupError};

/// How long a consumer may take to stop (finish its in-flight batches).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

struct Job {
    batch: RVec<RawMessage>,
    reply: oneshot::Sender<PluginResult<IngestOutcome>>,
}

/// The sink handed to a consumer plugin.
struct HostSink {
    tx: mpsc::Sender<Job>,
}

impl IngestSinkFfi for HostSink {
    // Called by the plugin through `extern "C"`: nothing here may panic (the
    // work itself runs in a host task, whose panic drops `reply`).
    fn ingest(&self, batch: RVec<RawMessage>) -> PluginFuture<IngestOutcome> {
        let tx = self.tx.clone();
        async move {
            let (reply, answer) = oneshot::channel();
            let result = if tx.send(Job { batch, reply }).await.is_err() {
                Err(PluginError::unavailable("the node is shutting down"))
            } else {
                answer
                    .await
                    .unwrap_or_else(|_| Err(PluginError::internal("the host dropped the batch (see the host's log)")))
            };
            RResult::from(result)
        }
        .into_ffi()
    }
}

/// One configured consumer.
pub struct ConsumerHandle {
    pub id: String,
    pub plugin: String,
    pub client: ConsumerClient,
    pub pipeline: Arc<Pipeline>,
    started: AtomicBool,
}

/// What `/status` shows of one consumer.
pub struct ConsumerReport<'a> {
    pub id: &'a str,
    pub plugin: &'a str,
    pub schema: &'static str,
    pub started: bool,
    pub health: Health,
    pub stats: &'a IngestStats,
    /// The plugin's own statistics (consumed, committed, lag, threads …).
    pub plugin_stats: Vec<Statistic>,
}

impl ConsumerReport<'_> {
    /// A plugin statistic by name.
    pub fn plugin_stat(&self, name: &str) -> Option<f64> {
        self.plugin_stats.iter().find(|s| s.name.as_str() == name).map(|s| s.value)
    }
}

pub struct Consumers {
    pub list: Vec<Arc<ConsumerHandle>>,
    ingestion: Arc<Ingestion>,
}

impl Consumers {
    /// Whether the node's ingestion filter lets this series be written.
    pub fn admits(&self, series: &Series) -> bool {
        self.ingestion.admits(series)
    }

    /// Creates (but does not start) every consumer of the config.
    pub async fn create(config: &Config, registry: &mut PluginRegistry) -> Result<Consumers, PluginSetupError> {
        let ingestion = Ingestion::new(&config.ingestion).map_err(|e| PluginSetupError::Create {
            role: "ingestion",
            id: "filter".into(),
            plugin: "-".into(),
            error: PluginError::config(e),
        })?;
        let mut list = Vec::new();
        for c in &config.consumers {
            let client = registry.consumer(c).await?;
            let schema = c.schema.unwrap_or_default();
            tracing::info!(consumer = c.id(), plugin = %c.plugin, schema = schema.name(), "consumer created");
            list.push(Arc::new(ConsumerHandle {
                id: c.id().to_string(),
                plugin: c.plugin.clone(),
                client,
                pipeline: Arc::new(Pipeline::new(c.id(), schema)),
                started: AtomicBool::new(false),
            }));
        }
        Ok(Consumers { list, ingestion: Arc::new(ingestion) })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Starts every consumer, each with its own sink and host task.
    pub async fn start(&self, target: &Arc<impl WriteTarget>) -> Result<(), PluginSetupError> {
        for handle in &self.list {
            let (tx, rx) = mpsc::channel::<Job>(64);
            tokio::spawn(dispatch(rx, Arc::downgrade(target), handle.clone(), self.ingestion.clone()));
            let sink: IngestSinkBox = IngestSinkFfi_TO::from_value(HostSink { tx }, TD_Opaque);
            handle.client.start(sink).await.map_err(|error| PluginSetupError::Create {
                role: "consumer",
                id: handle.id.clone(),
                plugin: handle.plugin.clone(),
                error,
            })?;
            handle.started.store(true, Ordering::SeqCst);
            tracing::info!(consumer = %handle.id, "consumer started");
        }
        Ok(())
    }

    /// Stops every consumer (in parallel); each finishes what is in flight.
    pub async fn stop(&self) {
        let stops = self.list.iter().filter(|h| h.started.swap(false, Ordering::SeqCst)).map(|h| async move {
            tracing::info!(consumer = %h.id, "stopping consumer");
            match tokio::time::timeout(STOP_TIMEOUT, h.client.stop()).await {
                Ok(Ok(())) => tracing::info!(consumer = %h.id, "consumer stopped"),
                Ok(Err(e)) => tracing::warn!(consumer = %h.id, error = %e, "consumer failed to stop cleanly"),
                Err(_) => tracing::warn!(consumer = %h.id, timeout_secs = STOP_TIMEOUT.as_secs(), "consumer did not stop in time"),
            }
        });
        futures::future::join_all(stops).await;
    }

    pub fn reports(&self) -> Vec<ConsumerReport<'_>> {
        self.list
            .iter()
            .map(|h| ConsumerReport {
                id: &h.id,
                plugin: &h.plugin,
                schema: h.pipeline.schema.name(),
                started: h.started.load(Ordering::SeqCst),
                health: h.client.health(),
                stats: &h.pipeline.stats,
                plugin_stats: h.client.statistics(),
            })
            .collect()
    }
}

/// Runs the batches of one consumer, each in its own task (the ingestion
/// semaphore bounds how many write at once).
async fn dispatch<T: WriteTarget>(
    mut rx: mpsc::Receiver<Job>,
    target: Weak<T>,
    handle: Arc<ConsumerHandle>,
    ingestion: Arc<Ingestion>,
) {
    while let Some(job) = rx.recv().await {
        let Some(target) = target.upgrade() else { break };
        let handle = handle.clone();
        let ingestion = ingestion.clone();
        tokio::spawn(async move {
            let result = handle.pipeline.ingest(&*target, &ingestion, job.batch).await;
            let _ = job.reply.send(result);
        });
    }
}
