//! Create-only bulk writes, as Heroic does them: a write-if-absent cache,
//! then a rate limiter, then `create` operations. A version conflict means
//! the document exists (a duplicate, counted); any other failed item is
//! retried with backoff and, if it still fails, reported, never ignored.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use elasticsearch::http::Method;
use heroic_plugin_api::sdk::support::{Counter, RetryPolicy};
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::client::{Body, EsClient};
use crate::config::Settings;
use crate::error::{Error, Result};

/// One document to create.
#[derive(Debug, Clone)]
pub struct Doc {
    pub index: String,
    pub id: String,
    pub source: Value,
}

heroic_plugin_api::counter_set! {
    /// The writer's counters, reported as statistics before the client's.
    #[derive(Debug, Default)]
    pub struct WriteStats {
        /// Documents created.
        pub created: Counter,
        /// Documents that existed already (version conflict).
        pub duplicates: Counter,
        /// Documents not sent: written recently (the write cache).
        pub cache_hits: Counter = "write-cache-hits",
        /// Bulk items that failed (each attempt counts).
        pub item_failures: Counter = "bulk-item-failures",
        /// Bulk items sent again after failing.
        pub item_retries: Counter = "bulk-item-retries",
        /// Bulk items still failing after every retry.
        pub failed: Counter = "bulk-items-failed",
    }
}

/// Token bucket: `rate` documents per second, bursts up to one second's worth.
struct RateLimiter {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    fn new(rate: f64) -> Self {
        RateLimiter { rate, state: Mutex::new((rate, Instant::now())) }
    }

    /// Waits until `n` documents may be sent (blocking the writer, like
    /// Heroic's limiter, so back-pressure reaches the ingestion path).
    async fn acquire(&self, n: usize) {
        if self.rate <= 0.0 {
            return;
        }
        let wait = {
            let mut s = self.state.lock();
            let now = Instant::now();
            s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * self.rate).min(self.rate);
            s.1 = now;
            s.0 -= n as f64;
            (s.0 < 0.0).then(|| Duration::from_secs_f64(-s.0 / self.rate))
        };
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Remembers (index, id) pairs written recently, so re-writes of known
/// series (every write of points carries its series) cost no request.
struct WriteCache {
    ttl: Duration,
    max: usize,
    seen: Mutex<HashMap<String, Instant>>,
}

impl WriteCache {
    fn contains(&self, key: &str) -> bool {
        let seen = self.seen.lock();
        seen.get(key).is_some_and(|t| t.elapsed() < self.ttl)
    }

    fn insert(&self, keys: impl IntoIterator<Item = String>) {
        if self.ttl.is_zero() || self.max == 0 {
            return;
        }
        let mut seen = self.seen.lock();
        for k in keys {
            if seen.len() >= self.max {
                // Clearing beats an LRU here: entries only save requests.
                seen.clear();
            }
            seen.insert(k, Instant::now());
        }
    }

    fn clear(&self) {
        self.seen.lock().clear();
    }
}

pub struct Writer {
    limiter: RateLimiter,
    cache: WriteCache,
    bulk_size: usize,
    retry: RetryPolicy,
    refresh: Option<&'static str>,
    pub stats: WriteStats,
}

fn cache_key(doc: &Doc) -> String {
    format!("{}/{}", doc.index, doc.id)
}

impl Writer {
    pub fn new(settings: &Settings) -> Self {
        let f = &settings.fields;
        Writer {
            limiter: RateLimiter::new(f.writes_per_second),
            cache: WriteCache {
                ttl: settings.write_cache_duration,
                max: f.write_cache_max_size,
                seen: Mutex::new(HashMap::new()),
            },
            bulk_size: f.bulk_size,
            retry: settings.retry_policy(),
            refresh: f.refresh.as_param(),
            stats: WriteStats::default(),
        }
    }

    /// Forgets what was written (after a delete, the series may come back).
    pub fn forget(&self) {
        self.cache.clear();
    }

    /// Creates every document not already in the cache.
    pub async fn create(&self, client: &EsClient, docs: Vec<Doc>) -> Result<()> {
        let mut fresh: Vec<Doc> = Vec::with_capacity(docs.len());
        let mut keys = std::collections::HashSet::new();
        for d in docs {
            let key = cache_key(&d);
            if self.cache.contains(&key) || !keys.insert(key) {
                self.stats.cache_hits.inc();
            } else {
                fresh.push(d);
            }
        }
        for chunk in fresh.chunks(self.bulk_size) {
            self.limiter.acquire(chunk.len()).await;
            self.create_chunk(client, chunk.to_vec()).await?;
            self.cache.insert(chunk.iter().map(cache_key));
        }
        Ok(())
    }

    async fn create_chunk(&self, client: &EsClient, mut pending: Vec<Doc>) -> Result<()> {
        let total = pending.len();
        let mut backoff = self.retry.backoff();
        loop {
            let failed = self.bulk_once(client, &pending).await?;
            if failed.is_empty() {
                return Ok(());
            }
            self.stats.item_failures.add(failed.len() as u64);
            let Some(delay) = backoff.next_delay(None) else {
                self.stats.failed.add(failed.len() as u64);
                let first = failed[0].1.clone();
                return Err(Error::Bulk { failed: failed.len(), total, first });
            };
            self.stats.item_retries.add(failed.len() as u64);
            tracing::warn!(failed = failed.len(), total, delay_ms = delay.as_millis() as u64, first = %failed[0].1,
                "bulk items failed; retrying them");
            pending = failed.into_iter().map(|(d, _)| d).collect();
            tokio::time::sleep(delay).await;
        }
    }

    /// Sends one bulk; returns the items that failed for another reason
    /// than "already exists", with the reason.
    async fn bulk_once(&self, client: &EsClient, docs: &[Doc]) -> Result<Vec<(Doc, String)>> {
        let mut body = String::with_capacity(docs.len() * 200);
        for d in docs {
            body.push_str(&json!({"create": {"_index": d.index, "_id": d.id}}).to_string());
            body.push('\n');
            body.push_str(&d.source.to_string());
            body.push('\n');
        }
        let query: Vec<(&str, &str)> = self.refresh.map(|r| vec![("refresh", r)]).unwrap_or_default();
        let answer = client.ok("bulk create", Method::Post, "_bulk", &query, Some(Body::Ndjson(body))).await?;
        let items = answer["items"].as_array().ok_or_else(|| Error::Decode {
            op: "bulk create".into(),
            reason: format!("no items in {}", crate::client::error_reason(&answer)),
        })?;
        if items.len() != docs.len() {
            return Err(Error::Decode {
                op: "bulk create".into(),
                reason: format!("{} items for {} documents", items.len(), docs.len()),
            });
        }
        let mut failed = Vec::new();
        for (item, doc) in items.iter().zip(docs) {
            let r = &item["create"];
            let status = r["status"].as_u64().unwrap_or(0);
            match status {
                200..=299 => {
                    self.stats.created.inc();
                }
                409 => {
                    self.stats.duplicates.inc();
                }
                _ => {
                    let reason = format!("{} {}: http {status}: {}", doc.index, doc.id, crate::client::error_reason(r));
                    failed.push((doc.clone(), reason));
                }
            }
        }
        Ok(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rate_limiter_spaces_out_writes() {
        let l = RateLimiter::new(100.0);
        let start = Instant::now();
        l.acquire(100).await; // the initial burst
        l.acquire(20).await; // 20 more at 100/s: ~200 ms
        assert!(start.elapsed() >= Duration::from_millis(150), "{:?}", start.elapsed());
    }

    #[test]
    fn write_cache_expires_and_clears_when_full() {
        let c = WriteCache { ttl: Duration::from_secs(60), max: 2, seen: Mutex::new(HashMap::new()) };
        c.insert(["a".to_string(), "b".to_string()]);
        assert!(c.contains("a") && c.contains("b"));
        c.insert(["c".to_string()]);
        assert!(!c.contains("a") && c.contains("c"));
        let c = WriteCache { ttl: Duration::ZERO, max: 2, seen: Mutex::new(HashMap::new()) };
        c.insert(["a".to_string()]);
        assert!(!c.contains("a"));
    }
}
