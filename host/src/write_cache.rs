//! Remembers series recently written to metadata and suggest, so that a
//! series that keeps receiving points is not re-indexed on every write.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use heroic_plugin_api::types::Series;

pub struct WriteCache {
    ttl: Duration,
    max_series: usize,
    // Keyed by the series itself, not a hash of it: a hash collision here
    // would mean a series never reaches the metadata index, i.e. data that
    // can never be found.
    seen: Mutex<HashMap<Series, Instant>>,
}

impl WriteCache {
    pub fn new(ttl: Duration, max_series: usize) -> Self {
        WriteCache { ttl, max_series, seen: Mutex::new(HashMap::new()) }
    }

    /// Whether `series` was written less than the TTL ago.
    pub fn is_fresh(&self, series: &Series, now: Instant) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(series).is_some_and(|t| now.duration_since(*t) < self.ttl)
    }

    /// Records series that were just written successfully.
    pub fn remember<'a>(&self, series: impl IntoIterator<Item = &'a Series>, now: Instant) {
        if self.max_series == 0 {
            return;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        for s in series {
            if seen.len() >= self.max_series && !seen.contains_key(s) {
                // Full: drop expired entries; if that frees nothing, start
                // over. Forgetting only costs a redundant metadata write.
                let ttl = self.ttl;
                seen.retain(|_, t| now.duration_since(*t) < ttl);
                if seen.len() >= self.max_series {
                    seen.clear();
                }
            }
            seen.insert(s.clone(), now);
        }
    }

    pub fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_after_ttl_and_bounds_its_size() {
        let cache = WriteCache::new(Duration::from_secs(10), 2);
        let now = Instant::now();
        let a = Series::key_only("a");
        let b = Series::key_only("b");
        let c = Series::key_only("c");
        assert!(!cache.is_fresh(&a, now));
        cache.remember([&a, &b], now);
        assert!(cache.is_fresh(&a, now));
        assert!(!cache.is_fresh(&a, now + Duration::from_secs(11)));
        cache.remember([&c], now);
        assert!(cache.len() <= 2);
        assert!(cache.is_fresh(&c, now));
    }
}
