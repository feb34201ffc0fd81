//! Consumer harness: a consumer plugin loaded through the ABI as the host
//! loads it ([`create_consumer`], [`start_consumer`]), fed to a
//! [`RecordingSink`] standing in for the host's write path. The sink records
//! every payload it made "durable", can refuse batches (a failing backend,
//! or one refusing a poison message for good) or hold them (a slow one),
//! and reports payloads that are not JSON as invalid, as the host does with
//! undecodable messages.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::RResult;
use async_ffi::FutureExt;

use crate::client::ConsumerClient;
use crate::ffi::{IngestSinkFfi, IngestSinkFfi_TO, PluginFuture};
use crate::types::{IngestOutcome, RawMessage};
use crate::{PluginError, RString, RVec};

/// What a [`RecordingSink`] saw, and how it behaves.
#[derive(Default)]
pub struct SinkState {
    /// Payload → how many times it was made durable.
    pub durable: Mutex<HashMap<Vec<u8>, u32>>,
    /// When set, every batch is refused (`Unavailable`).
    pub fail: AtomicBool,
    /// Batches refused.
    pub refused: AtomicU64,
    /// Batches that reached the sink.
    pub entered: AtomicU64,
    /// When set, every batch waits for a permit (a slow backend).
    pub gate: Option<Arc<tokio::sync::Semaphore>>,
    /// A batch holding a payload that contains these bytes is refused for
    /// good (`INVALID_INPUT`, as a backend refusing an oversized key), and
    /// nothing of it is made durable.
    pub poison: Option<Vec<u8>>,
    /// Batches refused for good because of `poison`.
    pub refused_permanently: AtomicU64,
}

impl SinkState {
    pub fn durable_set(&self) -> HashMap<Vec<u8>, u32> {
        self.durable.lock().unwrap().clone()
    }
}

/// The test's write path. Needs no runtime: it runs on the plugin's threads
/// (as the host's does).
pub struct RecordingSink(pub Arc<SinkState>);

impl IngestSinkFfi for RecordingSink {
    fn ingest(&self, batch: RVec<RawMessage>) -> PluginFuture<IngestOutcome> {
        let s = self.0.clone();
        async move {
            s.entered.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = &s.gate {
                gate.acquire().await.expect("gate open").forget();
            }
            if s.fail.load(Ordering::SeqCst) {
                s.refused.fetch_add(1, Ordering::SeqCst);
                return RResult::RErr(PluginError::unavailable("test backend down"));
            }
            if let Some(poison) = &s.poison {
                let has = |p: &[u8]| p.windows(poison.len().max(1)).any(|w| w == poison.as_slice());
                if batch.iter().any(|m| has(m.payload.as_slice())) {
                    s.refused_permanently.fetch_add(1, Ordering::SeqCst);
                    return RResult::RErr(PluginError::invalid_input("test backend refuses a poison series"));
                }
            }
            let mut outcome = IngestOutcome::default();
            let mut durable = s.durable.lock().unwrap();
            for m in batch.iter() {
                if serde_json::from_slice::<serde_json::Value>(m.payload.as_slice()).is_err() {
                    outcome.invalid += 1;
                    continue;
                }
                *durable.entry(m.payload.to_vec()).or_default() += 1;
                outcome.written += 1;
            }
            RResult::ROk(outcome)
        }
        .into_ffi()
    }
}

/// Loads `plugin` (see [`super::load_library`]) and creates a consumer from
/// `config`, without starting it.
pub fn create_consumer(plugin: &str, config: serde_json::Value) -> Result<ConsumerClient, PluginError> {
    let lib = super::load_library(plugin);
    let future = (lib.module.create_consumer())(RString::from(config.to_string()));
    futures::executor::block_on(future).into_result().map(ConsumerClient::new)
}

/// Creates and starts a consumer of `plugin` feeding a [`RecordingSink`] on
/// `state`; panics when either fails.
pub fn start_consumer(plugin: &str, config: serde_json::Value, state: &Arc<SinkState>) -> ConsumerClient {
    let consumer = create_consumer(plugin, config).unwrap_or_else(|e| panic!("create: {e}"));
    let sink = IngestSinkFfi_TO::from_value(RecordingSink(state.clone()), TD_Opaque);
    futures::executor::block_on(consumer.start(sink)).unwrap_or_else(|e| panic!("start: {e}"));
    consumer
}

/// The consumer's statistic `name`; panics when it reports none.
pub fn stat(consumer: &ConsumerClient, name: &str) -> u64 {
    let stats = consumer.statistics();
    let s = stats.iter().find(|s| s.name.as_str() == name).unwrap_or_else(|| panic!("no statistic {name}"));
    s.value as u64
}

/// Polls `check` every 50 ms; panics with the consumer's statistics when it
/// does not hold within `timeout`.
pub fn wait_until(what: &str, timeout: Duration, consumer: &ConsumerClient, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        if Instant::now() > deadline {
            let stats: Vec<String> = consumer.statistics().iter().map(|s| format!("{}={}", s.name, s.value)).collect();
            panic!("timed out waiting for {what}; statistics: {}", stats.join(" "));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
