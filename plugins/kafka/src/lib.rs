//! Kafka consumer plugin: takes Heroic metric messages from Kafka topics and
//! hands them to the host in batches, at least once.
//!
//! - Each topic is read by `threads_per_topic` threads, each with its own
//!   librdkafka consumer in the group (`group_id`), so partitions spread
//!   over threads (and over nodes of the same group).
//! - Offsets are committed by hand, and only after the host answered `Ok`
//!   to the batch, i.e. after its points are durable in every backend.
//!   Auto-commit is off and cannot be turned on.
//! - When the host answers an error (a backend is failing), the thread
//!   pauses its partitions, keeps serving the group (heartbeats,
//!   rebalances) and retries the same batch with exponential backoff
//!   (`retry_backoff_min_ms` doubling to `retry_backoff_max_ms`). Nothing
//!   after the last durable write is committed.
//! - Rebalances: messages of partitions revoked while waiting are abandoned
//!   (not written, never committed: the new owner reads them again from the
//!   last commit); offsets are only committed for partitions still assigned.
//! - Statistics: consumed, committed, abandoned, ingest errors, retries,
//!   rebalances, lag (from librdkafka's statistics, every
//!   `statistics.interval.ms`), consuming and total threads.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use heroic_plugin_api::sdk::{Consumer, IngestSink};
use heroic_plugin_api::types::{Health, RawMessage, Statistic};
use heroic_plugin_api::{PluginError, PluginResult};
use parking_lot::Mutex;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

pub mod config;

pub use config::Config;

/// Per-thread state, read by `statistics()`.
#[derive(Default)]
struct ThreadState {
    alive: AtomicBool,
    paused: AtomicBool,
    /// Sum of the consumer lag of the thread's partitions (-1: unknown).
    lag: AtomicI64,
}

#[derive(Default)]
struct Counters {
    consumed: AtomicU64,
    committed: AtomicU64,
    batches_committed: AtomicU64,
    abandoned: AtomicU64,
    ingest_errors: AtomicU64,
    commit_errors: AtomicU64,
    kafka_errors: AtomicU64,
    rebalances: AtomicU64,
    invalid: AtomicU64,
}

struct Shared {
    config: Config,
    client_config: ClientConfig,
    stopping: AtomicBool,
    started: AtomicBool,
    counters: Counters,
    threads: Mutex<Vec<Arc<ThreadState>>>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    log_at: Mutex<HashMap<&'static str, Instant>>,
}

impl Shared {
    /// Logs at most once per 5 s per kind of event.
    fn log_limited(&self, what: &'static str) -> bool {
        let mut at = self.log_at.lock();
        let now = Instant::now();
        match at.get(what) {
            Some(t) if now.duration_since(*t) < Duration::from_secs(5) => false,
            _ => {
                at.insert(what, now);
                true
            }
        }
    }
}

/// librdkafka callbacks: logs, errors, statistics, rebalances.
struct Context {
    shared: Arc<Shared>,
    thread: Arc<ThreadState>,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(facility = fac, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(facility = fac, "librdkafka: {message}"),
            _ => tracing::debug!(facility = fac, "librdkafka: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.shared.counters.kafka_errors.fetch_add(1, Ordering::Relaxed);
        if self.shared.log_limited("kafka error") {
            tracing::warn!(error = %error, "kafka client error: {reason}");
        }
    }

    fn stats(&self, statistics: Statistics) {
        let mut lag = 0i64;
        let mut known = false;
        for topic in statistics.topics.values() {
            for (id, p) in &topic.partitions {
                if *id >= 0 && p.consumer_lag >= 0 {
                    lag += p.consumer_lag;
                    known = true;
                }
            }
        }
        self.thread.lag.store(if known { lag } else { -1 }, Ordering::Relaxed);
    }
}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.shared.counters.rebalances.fetch_add(1, Ordering::Relaxed);
        match rebalance {
            Rebalance::Assign(tpl) => tracing::info!(partitions = %describe(tpl), "partitions assigned"),
            Rebalance::Revoke(tpl) => {
                // Batches of these partitions still waiting are abandoned by
                // the consuming loop (never committed).
                tracing::info!(partitions = %describe(tpl), "partitions revoked");
                self.thread.lag.store(-1, Ordering::Relaxed);
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements().iter().map(|e| format!("{}/{}", e.topic(), e.partition())).collect::<Vec<_>>().join(",")
}

/// A message taken from Kafka, not yet acknowledged.
struct Pending {
    partition: i32,
    offset: i64,
    payload: Vec<u8>,
}

pub struct KafkaConsumer {
    shared: Arc<Shared>,
}

impl Consumer for KafkaConsumer {
    type Config = Config;

    async fn create(config: Config) -> PluginResult<Self> {
        let client_config = config.client_config()?;
        // Build (and drop) one client now so that a bad librdkafka property
        // fails the node's start with librdkafka's own message.
        client_config
            .create::<BaseConsumer>()
            .map_err(|e| PluginError::config(format_args!("invalid librdkafka config: {}", config.scrub(&e.to_string()))))?;
        tracing::info!(topics = ?config.topics, threads_per_topic = config.threads_per_topic, "kafka consumer created");
        Ok(KafkaConsumer {
            shared: Arc::new(Shared {
                config,
                client_config,
                stopping: AtomicBool::new(false),
                started: AtomicBool::new(false),
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
                let thread = Arc::new(ThreadState { alive: AtomicBool::new(true), paused: AtomicBool::new(false), lag: AtomicI64::new(-1) });
                let context = Context { shared: shared.clone(), thread: thread.clone() };
                let consumer: BaseConsumer<Context> = shared
                    .client_config
                    .create_with_context(context)
                    .map_err(|e| {
                        PluginError::config(format_args!("cannot create the kafka consumer: {}", shared.config.scrub(&e.to_string())))
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
                            Worker { shared: &shared, thread: &thread, consumer: &consumer, sink: &sink }.run()
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
        shared.started.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn stop(&self) -> PluginResult<()> {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let handles: Vec<JoinHandle<()>> = std::mem::take(&mut *self.shared.handles.lock());
        tokio::task::spawn_blocking(move || {
            for h in handles {
                let _ = h.join();
            }
        })
        .await
        .map_err(|e| PluginError::internal(format_args!("joining the consuming threads: {e}")))?;
        tracing::info!(
            committed = self.shared.counters.committed.load(Ordering::Relaxed),
            "kafka consumer stopped"
        );
        Ok(())
    }

    fn health(&self) -> Health {
        let threads = self.shared.threads.lock();
        let dead = threads.iter().filter(|t| !t.alive.load(Ordering::SeqCst)).count();
        let stopping = self.shared.stopping.load(Ordering::SeqCst);
        if dead > 0 && !stopping {
            return Health { ok: false, ready: false, message: format!("{dead} consuming thread(s) died").into() };
        }
        let ready = self.shared.started.load(Ordering::SeqCst) && !stopping;
        Health { ok: true, ready, message: if ready { "".into() } else { "not consuming".into() } }
    }

    fn statistics(&self) -> Vec<Statistic> {
        let c = &self.shared.counters;
        let threads = self.shared.threads.lock();
        let consuming =
            threads.iter().filter(|t| t.alive.load(Ordering::Relaxed) && !t.paused.load(Ordering::Relaxed)).count();
        let lags: Vec<i64> = threads.iter().map(|t| t.lag.load(Ordering::Relaxed)).filter(|l| *l >= 0).collect();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let mut out = vec![
            stat("consuming_threads", consuming as f64),
            stat("total_threads", threads.len() as f64),
            stat("messages_consumed", get(&c.consumed)),
            stat("messages_committed", get(&c.committed)),
            stat("batches_committed", get(&c.batches_committed)),
            stat("messages_abandoned", get(&c.abandoned)),
            stat("messages_invalid", get(&c.invalid)),
            stat("ingest_errors", get(&c.ingest_errors)),
            stat("commit_errors", get(&c.commit_errors)),
            stat("kafka_errors", get(&c.kafka_errors)),
            stat("rebalances", get(&c.rebalances)),
        ];
        if !lags.is_empty() {
            out.push(stat("lag", lags.iter().sum::<i64>() as f64));
        }
        out
    }
}

fn stat(name: &str, value: f64) -> Statistic {
    Statistic { name: name.into(), value }
}

/// One consuming thread.
struct Worker<'a> {
    shared: &'a Shared,
    thread: &'a ThreadState,
    consumer: &'a BaseConsumer<Context>,
    sink: &'a IngestSink,
}

impl Worker<'_> {
    fn stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::SeqCst)
    }

    fn run(&self) {
        let mut pending: Vec<Pending> = Vec::new();
        loop {
            self.fill(&mut pending);
            if pending.is_empty() {
                if self.stopping() {
                    break;
                }
                continue;
            }
            let size = self.shared.config.batch_size.min(pending.len());
            let batch: Vec<Pending> = pending.drain(..size).collect();
            self.deliver(batch, &mut pending);
            if self.stopping() {
                // What was polled but not handed over is simply not
                // committed: the group reads it again.
                self.abandon(pending.len());
                break;
            }
        }
    }

    /// Polls until a batch is full, the linger time after its first message
    /// passed, or the consumer stops.
    fn fill(&self, pending: &mut Vec<Pending>) {
        let linger = Duration::from_millis(self.shared.config.batch_linger_ms);
        let mut first: Option<Instant> = (!pending.is_empty()).then(Instant::now);
        while pending.len() < self.shared.config.batch_size && !self.stopping() {
            let timeout = match first {
                None => Duration::from_millis(100),
                Some(t) => match linger.checked_sub(t.elapsed()) {
                    Some(left) => left,
                    None => break,
                },
            };
            match self.consumer.poll(timeout) {
                None if first.is_none() => return,
                None => {}
                Some(Ok(m)) => {
                    self.shared.counters.consumed.fetch_add(1, Ordering::Relaxed);
                    pending.push(Pending {
                        partition: m.partition(),
                        offset: m.offset(),
                        payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    });
                    first.get_or_insert_with(Instant::now);
                }
                Some(Err(e)) => {
                    self.shared.counters.kafka_errors.fetch_add(1, Ordering::Relaxed);
                    if self.shared.log_limited("poll error") {
                        tracing::warn!(error = %e, "kafka poll error");
                    }
                }
            }
        }
    }

    /// The partitions currently assigned to this thread.
    fn assigned(&self) -> Vec<i32> {
        self.consumer
            .assignment()
            .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
            .unwrap_or_default()
    }

    /// Drops messages of partitions this thread no longer owns.
    fn drop_revoked(&self, messages: &mut Vec<Pending>) {
        let assigned = self.assigned();
        let before = messages.len();
        messages.retain(|m| assigned.contains(&m.partition));
        self.abandon(before - messages.len());
    }

    fn abandon(&self, n: usize) {
        if n > 0 {
            self.shared.counters.abandoned.fetch_add(n as u64, Ordering::Relaxed);
            tracing::info!(messages = n, "abandoned uncommitted messages (they will be read again)");
        }
    }

    /// Hands a batch to the host until it is durable (then commits), or the
    /// consumer stops, or all its partitions were revoked (then abandons it).
    fn deliver(&self, mut batch: Vec<Pending>, pending: &mut Vec<Pending>) {
        self.drop_revoked(&mut batch);
        let config = &self.shared.config;
        let mut backoff = Duration::from_millis(config.retry_backoff_min_ms);
        let mut paused: Option<TopicPartitionList> = None;
        while !batch.is_empty() {
            let raw: Vec<RawMessage> = batch.iter().map(|m| RawMessage { payload: m.payload.clone().into() }).collect();
            match futures::executor::block_on(self.sink.ingest(raw)) {
                Ok(outcome) => {
                    self.shared.counters.invalid.fetch_add(outcome.invalid, Ordering::Relaxed);
                    self.commit(&batch);
                    break;
                }
                Err(e) => {
                    self.shared.counters.ingest_errors.fetch_add(1, Ordering::Relaxed);
                    if self.shared.log_limited("ingest error") {
                        tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                            "the host could not write a batch; pausing, will retry without committing");
                    }
                    if paused.is_none() {
                        if let Ok(tpl) = self.consumer.assignment() {
                            let _ = self.consumer.pause(&tpl);
                            paused = Some(tpl);
                        }
                        self.thread.paused.store(true, Ordering::Relaxed);
                    }
                    if self.stopping() {
                        self.abandon(batch.len());
                        break;
                    }
                    self.wait_serving(backoff, pending);
                    backoff = (backoff * 2).min(Duration::from_millis(config.retry_backoff_max_ms));
                    self.drop_revoked(&mut batch);
                }
            }
        }
        if let Some(tpl) = paused {
            let _ = self.consumer.resume(&tpl);
            self.thread.paused.store(false, Ordering::Relaxed);
            tracing::info!("resumed consuming");
        }
    }

    /// Waits while still polling, so the group keeps this member and
    /// rebalances are served; messages still arriving (prefetched, or from
    /// newly assigned partitions) queue up after the batch being retried.
    fn wait_serving(&self, wait: Duration, pending: &mut Vec<Pending>) {
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stopping() {
                return;
            }
            if let Some(Ok(m)) = self.consumer.poll(left.min(Duration::from_millis(100))) {
                self.shared.counters.consumed.fetch_add(1, Ordering::Relaxed);
                pending.push(Pending {
                    partition: m.partition(),
                    offset: m.offset(),
                    payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                });
            }
        }
    }

    /// Commits the batch's offsets for the partitions still assigned.
    fn commit(&self, batch: &[Pending]) {
        let assigned = self.assigned();
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let mut committed = 0u64;
        for m in batch {
            if assigned.contains(&m.partition) {
                let e = next.entry(m.partition).or_insert(m.offset + 1);
                *e = (*e).max(m.offset + 1);
                committed += 1;
            }
        }
        self.abandon(batch.len() - committed as usize);
        if next.is_empty() {
            return;
        }
        let Ok(tpl) = self.consumer.assignment() else { return };
        let topic = tpl.elements().first().map(|e| e.topic().to_string()).unwrap_or_default();
        let mut offsets = TopicPartitionList::new();
        for (p, o) in next {
            let _ = offsets.add_partition_offset(&topic, p, Offset::Offset(o));
        }
        match self.consumer.commit(&offsets, CommitMode::Sync) {
            Ok(()) => {
                self.shared.counters.committed.fetch_add(committed, Ordering::Relaxed);
                self.shared.counters.batches_committed.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                // The next batch commits higher offsets; a rebalance makes
                // the new owner re-read from the last commit (duplicates,
                // never losses).
                self.shared.counters.commit_errors.fetch_add(1, Ordering::Relaxed);
                if self.shared.log_limited("commit error") {
                    tracing::warn!(error = %e, "offset commit failed");
                }
            }
        }
    }
}

heroic_plugin_api::export_plugin! {
    name: "kafka",
    consumer: KafkaConsumer,
}
