//! One pulling loop: Pull → hand the batch to the host → acknowledge once
//! the host answered `Ok` (its writes are durable), or, when it refused the
//! batch as transient, nack it and pause every loop with the SDK's backoff
//! (exponential, honouring the host's retry hint up to the longest pause).
//! A batch refused for good is bisected down to its poison messages
//! (`poison`), which are dead-lettered and acknowledged.
//!
//! While the host works on a batch its messages' ack deadlines are extended
//! (ModifyAckDeadline) every half deadline, so a slow write is not
//! redelivered to another consumer meanwhile.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use heroic_plugin_api::sdk::support::{Backoff, Gauge, HealthTracker, RetryPolicy};
use heroic_plugin_api::sdk::IngestSink;
use heroic_plugin_api::types::RawMessage;
use heroic_plugin_api::PluginError;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::client::{Client, Received};
use crate::config::Config;
use crate::dead_letter::DeadLetters;
use crate::stats::Stats;

/// What the host is handed for `messages`.
pub(crate) fn raw(messages: &[Received]) -> Vec<RawMessage> {
    messages.iter().map(|m| RawMessage { payload: m.payload.clone().into() }).collect()
}

/// The pause of every loop after refused batches.
struct Pause {
    /// `retryBackoffMinMs` doubling to `retryBackoffMaxMs` per refused
    /// batch; a written batch resets it.
    backoff: Backoff,
    /// When the current pause ends.
    until: Option<Instant>,
    /// From a refused batch to the next written one: the loops are held up
    /// by an outage, also while they pull between pauses.
    outage: bool,
}

/// State shared by the loops of one consumer.
pub struct Shared {
    pub config: Config,
    pub client: Client,
    pub stats: Stats,
    /// Where poison messages go before they are acknowledged.
    pub dead_letters: DeadLetters,
    /// When a poison message was last logged (at most one line per 5 s).
    pub(crate) poison_logged: Mutex<Option<Instant>>,
    /// Messages held right now (pulled, not yet acked or nacked).
    pub held: Gauge,
    /// Messages and payload bytes held (pulled, not yet acked or nacked).
    pub elements: Arc<Semaphore>,
    pub bytes: Arc<Semaphore>,
    /// How often held messages get their deadline extended.
    pub lease_period: Duration,
    pub stop: watch::Sender<bool>,
    pause: Mutex<Pause>,
    /// The last pull error until a pull succeeds, and whether the consumer
    /// is started (for `health`).
    pub health: HealthTracker,
}

impl Shared {
    pub fn new(config: Config, client: Client, lease_period: Duration) -> Self {
        let policy = RetryPolicy::new(
            Duration::from_millis(config.retry_backoff_min_ms),
            Duration::from_millis(config.retry_backoff_max_ms),
        )
        // Exact doublings, as documented: the pause is shared by every loop
        // of the consumer, so there is no lockstep within it to break.
        .without_jitter();
        Shared {
            dead_letters: DeadLetters::new(&config),
            poison_logged: Mutex::new(None),
            elements: Arc::new(Semaphore::new(config.max_outstanding_element_count)),
            bytes: Arc::new(Semaphore::new(config.max_outstanding_request_bytes.min(Semaphore::MAX_PERMITS))),
            config,
            client,
            stats: Stats::default(),
            held: Gauge::default(),
            lease_period,
            stop: watch::channel(false).0,
            pause: Mutex::new(Pause { backoff: policy.backoff(), until: None, outage: false }),
            health: HealthTracker::not_ready(NOT_CONSUMING),
        }
    }

    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn pause(&self) -> std::sync::MutexGuard<'_, Pause> {
        self.pause.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the loops are held up by refused batches: from a refusal
    /// until a batch is written again (not only during the pauses, or a
    /// look at `/status` between two of them would say all is well).
    pub fn paused(&self) -> bool {
        let pause = self.pause();
        pause.outage || pause.until.is_some_and(|u| u > Instant::now())
    }

    /// Starts the next, longer pause after a refused batch; answers it. A
    /// retry hint from the host lengthens it, up to the longest pause.
    fn failed(&self, hint: Option<Duration>) -> Duration {
        let mut pause = self.pause();
        let max = pause.backoff.policy().max;
        // No retry limit: the backoff always answers; `max` is its ceiling.
        let delay = pause.backoff.next_delay(hint.map(|h| h.min(max))).unwrap_or(max);
        pause.until = Some(Instant::now() + delay);
        pause.outage = true;
        delay
    }

    /// A written batch: the next pause starts from the shortest again.
    pub(crate) fn succeeded(&self) {
        let mut pause = self.pause();
        pause.backoff.reset();
        pause.outage = false;
    }

    /// Logs only the change from working to failing (every loop retries
    /// each second: one line per failure would flood the log).
    fn pull_failed(&self, error: String) {
        if self.health.failed(&error) {
            tracing::warn!(error = %error, subscription = %self.config.subscription_name(), "pubsub pull fails; retrying");
        }
    }

    fn pull_worked(&self) {
        if self.health.succeeded() {
            tracing::info!(subscription = %self.config.subscription_name(), "pubsub pull works again");
        }
    }

    fn pause_left(&self) -> Duration {
        self.pause().until.map_or(Duration::ZERO, |u| u.saturating_duration_since(Instant::now()))
    }
}

/// Why the consumer is not ready before `start` and after `stop`.
pub const NOT_CONSUMING: &str = "not consuming";

/// Runs `work` unless the consumer stops first (then `None`).
async fn unless_stopped<F: Future>(stop: &mut watch::Receiver<bool>, work: F) -> Option<F::Output> {
    if *stop.borrow() {
        return None;
    }
    tokio::select! {
        out = work => Some(out),
        _ = stop.wait_for(|s| *s) => None,
    }
}

pub struct Worker {
    pub shared: Arc<Shared>,
    pub sink: IngestSink,
    /// Cleared when the loop ends, however it ends (for `health`).
    pub alive: Arc<AtomicBool>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::SeqCst);
    }
}

impl Worker {
    pub async fn run(self) {
        let shared = self.shared.clone();
        let mut stop = shared.stop.subscribe();
        let pull_size = shared.config.pull_size();
        loop {
            let pause = shared.pause_left();
            if !pause.is_zero() && unless_stopped(&mut stop, tokio::time::sleep(pause)).await.is_none() {
                break;
            }
            let Some(Ok(permits)) =
                unless_stopped(&mut stop, shared.elements.clone().acquire_many_owned(pull_size as u32)).await
            else {
                break;
            };
            // A pull waiting on an empty subscription is cut at once by a
            // stop; what it might have been given comes back after the ack
            // deadline (never lost).
            let Some(pulled) =
                unless_stopped(&mut stop, shared.client.pull(pull_size, shared.config.pull_timeout())).await
            else {
                break;
            };
            match pulled {
                Ok(messages) => {
                    shared.pull_worked();
                    if !messages.is_empty() {
                        self.handle(messages, permits).await;
                    }
                }
                Err(e) => {
                    shared.stats.pull_errors.add(1);
                    shared.pull_failed(e.to_string());
                    let wait = Duration::from_millis(shared.config.retry_backoff_max_ms.min(1000));
                    if unless_stopped(&mut stop, tokio::time::sleep(wait)).await.is_none() {
                        break;
                    }
                }
            }
        }
    }

    /// Holds a pulled batch until it is acked or nacked.
    async fn handle(&self, messages: Vec<Received>, mut permits: OwnedSemaphorePermit) {
        let shared = &self.shared;
        let count = messages.len();
        shared.stats.received.add(count as u64);
        shared.held.add(count as i64);
        // Give back the element permits the pull did not use.
        if let Some(unused) = permits.split(permits.num_permits().saturating_sub(count)) {
            drop(unused);
        }
        let ack_ids: Vec<String> = messages.iter().map(|m| m.ack_id.clone()).collect();
        let size: usize = messages.iter().map(|m| m.payload.len()).sum();
        let work = async {
            // Bytes are known only after the pull: wait for room here, with
            // the deadlines of the batch being extended meanwhile. Held
            // until the batch is resolved (a poison message makes that
            // take several attempts).
            let room = shared.config.max_outstanding_request_bytes.min(Semaphore::MAX_PERMITS).min(u32::MAX as usize);
            let want = size.clamp(1, room) as u32;
            let bytes = shared.bytes.clone().acquire_many_owned(want).await;
            (self.sink.ingest(raw(&messages)).await, bytes)
        };
        let (result, _bytes) = self.leased(&ack_ids, work).await;
        match result {
            Ok(outcome) => {
                shared.succeeded();
                // Refused messages are acked with their batch, as the kafka
                // plugin commits them: retrying cannot make them valid.
                shared.stats.invalid.add(outcome.invalid);
                self.ack(ack_ids).await;
            }
            Err(e) if e.is_transient() => {
                shared.stats.ingest_errors.add(1);
                self.refused(&e, ack_ids).await
            }
            // Retrying the batch cannot help: find the messages at fault.
            Err(e) => self.isolate(&messages, e).await,
        }
        shared.held.sub(count as i64);
        drop(permits);
    }

    /// Acknowledges messages the host made durable (or that were
    /// dead-lettered).
    pub(crate) async fn ack(&self, ack_ids: Vec<String>) {
        let shared = &self.shared;
        let n = ack_ids.len() as u64;
        match shared.client.acknowledge(ack_ids).await {
            Ok(()) => {
                shared.stats.acked.add(n);
                shared.stats.batches_acked.add(1);
            }
            Err(e) => {
                // They are durable; Pub/Sub redelivers them after the
                // deadline and they are written again (a duplicate).
                shared.stats.ack_errors.add(1);
                tracing::warn!(error = %e, messages = n, "acknowledge failed; the batch will be redelivered");
            }
        }
    }

    /// The host refused messages as transient (a backend down), or their
    /// dead letters could not be stored: they are nacked for redelivery
    /// and every loop pauses.
    pub(crate) async fn refused(&self, e: &PluginError, ack_ids: Vec<String>) {
        let shared = &self.shared;
        // One line per refused batch: the backoff bounds them.
        let pause = shared.failed(e.retry_after());
        tracing::warn!(error = %e, messages = ack_ids.len(), pause_ms = pause.as_millis() as u64,
            "the host could not write a batch; nacking it for redelivery and pausing");
        self.nack(ack_ids).await;
    }

    /// Hands the messages back for immediate redelivery.
    async fn nack(&self, ack_ids: Vec<String>) {
        let n = ack_ids.len() as u64;
        match self.shared.client.modify_ack_deadline(ack_ids, 0).await {
            Ok(()) => self.shared.stats.nacked.add(n),
            Err(e) => {
                // They come back when their deadline passes instead.
                self.shared.stats.nack_errors.add(1);
                tracing::warn!(error = %e, messages = n, "nack failed; the messages come back after their deadline");
            }
        }
    }

    /// Runs `work`, extending the deadlines of `ack_ids` every lease period.
    pub(crate) async fn leased<F: Future>(&self, ack_ids: &[String], work: F) -> F::Output {
        let shared = &self.shared;
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = tokio::time::sleep(shared.lease_period) => {
                    match shared.client.modify_ack_deadline(ack_ids.to_vec(), shared.config.ack_deadline_seconds).await {
                        Ok(()) => shared.stats.deadline_extensions.add(1),
                        Err(e) => {
                            shared.stats.deadline_extension_errors.add(1);
                            tracing::warn!(error = %e, "extending ack deadlines failed; the batch may be redelivered");
                        }
                    }
                }
            }
        }
    }
}
