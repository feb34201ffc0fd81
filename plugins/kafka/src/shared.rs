//! State shared by the consumer and its threads, with what every part
//! reads from it: rate-limited warnings and the statistics. Its own file so
//! that the consumer, its threads and the librdkafka callbacks all depend
//! on it, and it on none of them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use heroic_plugin_api::sdk::support::{statistic, HealthTracker, RetryPolicy};
use heroic_plugin_api::types::Statistic;
use parking_lot::Mutex;
use rdkafka::config::ClientConfig;

use crate::config::Config;
use crate::dead_letter::DeadLetters;
use crate::stats::{Counters, ThreadState};

/// State shared by the consumer and its threads.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) client_config: ClientConfig,
    /// How a refused batch is retried (see [`Config::retry_policy`]).
    pub(crate) retry: RetryPolicy,
    /// Where poison messages go before they are committed past.
    pub(crate) dead_letters: DeadLetters,
    pub(crate) stopping: AtomicBool,
    /// Ready between `start` and `stop`.
    pub(crate) health: HealthTracker,
    pub(crate) counters: Counters,
    pub(crate) threads: Mutex<Vec<Arc<ThreadState>>>,
    pub(crate) handles: Mutex<Vec<JoinHandle<()>>>,
    /// When each kind of repeated warning was last logged.
    pub(crate) log_at: Mutex<HashMap<&'static str, Instant>>,
}

/// The shortest interval between two lines of one kind of warning.
const LOG_INTERVAL: Duration = Duration::from_secs(5);

impl Shared {
    /// Whether a warning of kind `what` may be logged now: at most once per
    /// 5 s per kind.
    pub(crate) fn log_limited(&self, what: &'static str) -> bool {
        let mut at = self.log_at.lock();
        let now = Instant::now();
        match at.get(what) {
            Some(t) if now.duration_since(*t) < LOG_INTERVAL => false,
            _ => {
                at.insert(what, now);
                true
            }
        }
    }
}

impl Shared {
    /// The thread gauges (threads consuming, messages in flight, partitions
    /// paused), then the counters, then the lag when any thread knows it.
    pub(crate) fn statistics(&self) -> Vec<Statistic> {
        let threads = self.threads.lock();
        let consuming =
            threads.iter().filter(|t| t.alive.load(Ordering::Relaxed) && !t.paused.load(Ordering::Relaxed)).count();
        let lags: Vec<(String, i32, i64)> = threads.iter().flat_map(|t| t.lags.lock().clone()).collect();
        let in_flight: usize = threads.iter().map(|t| t.offsets.lock().in_flight()).sum();
        let paused: usize = threads.iter().map(|t| t.paused_partitions.load(Ordering::Relaxed)).sum();
        let mut out = vec![
            statistic("consuming_threads", consuming as f64),
            statistic("total_threads", threads.len() as f64),
            statistic("messages_in_flight", in_flight as f64),
            statistic("partitions_paused", paused as f64),
        ];
        out.extend(self.counters.statistics());
        if !lags.is_empty() {
            out.push(statistic("lag", lags.iter().map(|l| l.2).sum::<i64>() as f64));
            // One per partition, `lag/<topic>/<partition>` (a topic name
            // cannot hold a `/`): the host's `/metrics` labels them.
            out.extend(lags.iter().map(|(topic, p, lag)| statistic(&format!("lag/{topic}/{p}"), *lag as f64)));
        }
        out
    }
}
