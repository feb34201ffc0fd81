//! Google Pub/Sub consumer plugin: pulls Heroic metric messages from a
//! subscription and hands their payloads to the host in batches, at least
//! once.
//!
//! - [`config`]: the config table (Heroic's names) and where to connect.
//! - [`client`]: the gRPC subscriber on tonic (Pull, Acknowledge,
//!   ModifyAckDeadline, topic and subscription creation).
//! - [`worker`]: the pulling loops; each holds one batch at a time,
//!   acknowledges it once the host answered `Ok` (durable), nacks it when
//!   the host refused it, extends deadlines while it is held.
//! - [`dead_letter`]: where poison messages go (a topic, or the file).
//! - [`poison`]: batches the host refuses for good: bisected down to the
//!   poison messages, which are dead-lettered (topic or file) and acked.
//! - [`stats`]: counters for `/status` (the SDK's counter set).
//! - [`error`]: errors, mapped onto the host's error kinds.
//!
//! Unary Pull rather than StreamingPull: each pull is one batch for the
//! host, so acking exactly what was made durable is simple, and a stop or a
//! refused batch hands messages back at once (the emulator keeps messages
//! of a closed stream for about two ack deadlines). See README.md.

pub mod client;
pub mod config;
pub mod dead_letter;
pub mod error;
pub mod poison;
pub mod stats;
pub mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use heroic_plugin_api::sdk::support::statistic;
use heroic_plugin_api::sdk::{Consumer, IngestSink};
use heroic_plugin_api::types::{Health, Statistic};
use heroic_plugin_api::{PluginError, PluginResult};
use tokio::task::JoinHandle;

use crate::client::Client;
use crate::config::Config;
use crate::error::PubsubError;
use crate::worker::{Shared, Worker, NOT_CONSUMING};

pub struct PubsubConsumer {
    shared: Arc<Shared>,
    workers: Mutex<Vec<(Arc<AtomicBool>, JoinHandle<()>)>>,
}

impl Consumer for PubsubConsumer {
    type Config = Config;

    async fn create(config: Config) -> PluginResult<Self> {
        config.validate()?;
        let client = Client::connect(&config).await?;
        if config.configure {
            let topic = config.topic_name().unwrap_or_default();
            client.create_if_missing(&topic, config.ack_deadline_seconds).await?;
        }
        // Fail the node's start with a clear message rather than pull errors.
        if !client.subscription_exists().await? {
            return Err(PubsubError::Config(format!(
                "subscription {} does not exist (set configure = true and topic to create it)",
                config.subscription_name()
            ))
            .into());
        }
        // Held messages get their deadline extended every 5 s: half of
        // Pub/Sub's shortest deadline, since the subscription's own deadline
        // (which applies until the first extension) may be shorter than ours.
        let lease_period = Duration::from_secs(5);
        tracing::info!(subscription = %config.subscription_name(), threads = config.threads,
            dead_letters = ?config.dead_letter_target(), "pubsub consumer created");
        Ok(PubsubConsumer {
            shared: Arc::new(Shared::new(config, client, lease_period)),
            workers: Mutex::new(Vec::new()),
        })
    }

    async fn start(self: Arc<Self>, sink: IngestSink) -> PluginResult<()> {
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        if !workers.is_empty() {
            return Err(PluginError::internal("the pubsub consumer is already started"));
        }
        for _ in 0..self.shared.config.threads {
            let alive = Arc::new(AtomicBool::new(true));
            let worker = Worker { shared: self.shared.clone(), sink: sink.clone(), alive: alive.clone() };
            workers.push((alive, tokio::spawn(worker.run())));
        }
        self.shared.health.set_ready();
        Ok(())
    }

    async fn stop(&self) -> PluginResult<()> {
        self.shared.health.set_not_ready(NOT_CONSUMING);
        self.shared.stop.send_replace(true);
        let workers: Vec<_> = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, handle) in workers {
            if let Err(e) = handle.await {
                tracing::error!(error = %e, "a pubsub pulling loop panicked");
            }
        }
        tracing::info!(
            acked = self.shared.stats.acked.get(),
            nacked = self.shared.stats.nacked.get(),
            "pubsub consumer stopped"
        );
        Ok(())
    }

    fn health(&self) -> Health {
        let stopping = self.shared.stopping();
        let workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        let dead = workers.iter().filter(|(alive, _)| !alive.load(Ordering::SeqCst)).count();
        if dead > 0 && !stopping {
            return Health { ok: false, ready: false, message: format!("{dead} pulling loop(s) died").into() };
        }
        // Not ok while pulls fail (until one succeeds), nor while the host
        // refuses batches (still ready: it resumes by itself); ready between
        // `start` and `stop`.
        let health = self.shared.health.health("pulling fails");
        if health.ok && !stopping && self.shared.paused() {
            return Health { ok: false, ready: true, message: "paused: the host refuses writes; retrying".into() };
        }
        health
    }

    fn statistics(&self) -> Vec<Statistic> {
        let shared = &self.shared;
        let workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        let alive = workers.iter().filter(|(a, _)| a.load(Ordering::Relaxed)).count();
        let consuming = if shared.paused() { 0 } else { alive };
        let bytes = shared.config.max_outstanding_request_bytes.min(tokio::sync::Semaphore::MAX_PERMITS)
            - shared.bytes.available_permits();
        let mut stats = vec![
            statistic("consuming_threads", consuming as f64),
            statistic("total_threads", workers.len() as f64),
            statistic("messages_outstanding", shared.held.get() as f64),
            statistic("bytes_outstanding", bytes as f64),
        ];
        stats.extend(shared.stats.statistics());
        stats
    }
}

heroic_plugin_api::export_plugin! {
    name: "pubsub",
    consumer: PubsubConsumer,
}
