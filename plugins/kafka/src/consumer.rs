//! The consumer as the host sees it: creating it checks the librdkafka
//! config, `start` runs one consuming thread per topic and
//! `threads_per_topic`, `stop` joins them, and `health` / `statistics`
//! read the state they share.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use heroic_plugin_api::sdk::support::HealthTracker;
use heroic_plugin_api::sdk::{Consumer, IngestSink};
use heroic_plugin_api::types::{Health, Statistic};
use heroic_plugin_api::{PluginError, PluginResult};
use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, Consumer as _};

use crate::config::Config;
use crate::dead_letter::DeadLetters;
use crate::logging::Context;
use crate::shared::Shared;
use crate::stats::{Counters, ThreadState};
use crate::worker::Worker;

/// Why the consumer is not ready before `start` and after `stop`.
const NOT_CONSUMING: &str = "not consuming";

/// The `kafka` consumer.
pub struct KafkaConsumer {
    shared: Arc<Shared>,
}

impl Consumer for KafkaConsumer {
    type Config = Config;

    async fn create(config: Config) -> PluginResult<Self> {
        let client_config = config.client_config()?;
        // Build (and drop) one client now so that a bad librdkafka property
        // fails the node's start with librdkafka's own message.
        client_config.create::<BaseConsumer>().map_err(|e| {
            PluginError::config(format_args!("invalid librdkafka config: {}", config.scrub(&e.to_string())))
        })?;
        let dead_letters = DeadLetters::new(&config)?;
        tracing::info!(topics = ?config.topics, threads_per_topic = config.threads_per_topic,
            dead_letters = %dead_letters.describe(), "kafka consumer created");
        Ok(KafkaConsumer {
            shared: Arc::new(Shared {
                retry: config.retry_policy(),
                dead_letters,
                config,
                client_config,
                stopping: AtomicBool::new(false),
                health: HealthTracker::not_ready(NOT_CONSUMING),
                counters: Counters::default(),
                threads: Mutex::new(Vec::new()),
                handles: Mutex::new(Vec::new()),
                log_at: Mutex::new(HashMap::new()),
            }),
        })
    }

    async fn start(self: Arc<Self>, sink: IngestSink) -> PluginResult<()> {
        let shared = &self.shared;
        let mut handles = shared.handles.lock();
        for topic in &shared.config.topics {
            for n in 0..shared.config.threads_per_topic {
                let thread = Arc::new(ThreadState::new(shared.config.in_flight_limit()));
                let context = Context { shared: shared.clone(), thread: thread.clone() };
                let consumer: BaseConsumer<Context> =
                    shared.client_config.create_with_context(context).map_err(|e| {
                        PluginError::config(format_args!(
                            "cannot create the kafka consumer: {}",
                            shared.config.scrub(&e.to_string())
                        ))
                    })?;
                consumer
                    .subscribe(&[topic.as_str()])
                    .map_err(|e| PluginError::unavailable(format_args!("cannot subscribe to {topic}: {e}")))?;
                shared.threads.lock().push(thread.clone());
                let (shared, sink, topic) = (shared.clone(), sink.clone(), topic.clone());
                let handle = std::thread::Builder::new()
                    .name(format!("kafka-{topic}-{n}"))
                    .spawn(move || {
                        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            Worker::new(&shared, &thread, &consumer, &sink, &topic).run()
                        }));
                        if result.is_err() {
                            tracing::error!(topic = %topic, "consuming thread panicked; it consumes no more");
                        }
                        thread.alive.store(false, Ordering::SeqCst);
                    })
                    .map_err(|e| PluginError::internal(format_args!("cannot start a thread: {e}")))?;
                handles.push(handle);
            }
        }
        shared.health.set_ready();
        Ok(())
    }

    async fn stop(&self) -> PluginResult<()> {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.health.set_not_ready(NOT_CONSUMING);
        let handles: Vec<JoinHandle<()>> = std::mem::take(&mut *self.shared.handles.lock());
        tokio::task::spawn_blocking(move || {
            for h in handles {
                let _ = h.join();
            }
        })
        .await
        .map_err(|e| PluginError::internal(format_args!("joining the consuming threads: {e}")))?;
        tracing::info!(committed = self.shared.counters.committed.get(), "kafka consumer stopped");
        Ok(())
    }

    fn health(&self) -> Health {
        let threads = self.shared.threads.lock();
        let dead = threads.iter().filter(|t| !t.alive.load(Ordering::SeqCst)).count();
        let stopping = self.shared.stopping.load(Ordering::SeqCst);
        if dead > 0 && !stopping {
            return Health { ok: false, ready: false, message: format!("{dead} consuming thread(s) died").into() };
        }
        // Paused for an outage: consuming is stuck until the host takes
        // writes again, which `/status` must show (still ready: it resumes
        // by itself).
        let waiting = threads.iter().filter(|t| t.paused.load(Ordering::Relaxed)).count();
        let health = self.shared.health.health("kafka consumer failed");
        if waiting > 0 && health.ok && !stopping {
            let message = format!("{waiting} consuming thread(s) paused: the host refuses writes; retrying");
            return Health { ok: false, ready: true, message: message.into() };
        }
        health
    }

    fn statistics(&self) -> Vec<Statistic> {
        self.shared.statistics()
    }
}
