//! Remembers series recently written to metadata and suggest, so that a
//! series that keeps receiving points is not re-indexed on every write.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use heroic_plugin_api::types::Series;

pub struct WriteCache {
    ttl: Duration,
    max_series: usize,
    // Keyed by a 128-bit fingerprint of the series, not the series itself
    // (a copy of each series held ~500 bytes at 100,000 series). A
    // collision would mean a series never reaches the metadata index, so
    // the fingerprint is two SipHash-1-3 with independent secret keys: a
    // keyed pseudo-random function, which input cannot be crafted to
    // collide without the keys, and whose chance collision at a billion
    // series is ~1e-21.
    seen: Mutex<Seen>,
    keys: (RandomState, RandomState),
}

#[derive(Default)]
struct Seen {
    series: HashMap<u128, Instant>,
    /// Bumped by [`WriteCache::invalidate`]: a write that started before
    /// may have registered a series the delete then removed, so it must not
    /// be remembered.
    generation: u64,
}

impl WriteCache {
    pub fn new(ttl: Duration, max_series: usize) -> Self {
        WriteCache {
            ttl,
            max_series,
            seen: Mutex::new(Seen::default()),
            keys: (RandomState::new(), RandomState::new()),
        }
    }

    fn fingerprint(&self, series: &Series) -> u128 {
        (u128::from(self.keys.0.hash_one(series)) << 64) | u128::from(self.keys.1.hash_one(series))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `series` was written less than the TTL ago.
    pub fn is_fresh(&self, series: &Series, now: Instant) -> bool {
        let key = self.fingerprint(series);
        self.lock().series.get(&key).is_some_and(|t| now.duration_since(*t) < self.ttl)
    }

    /// The current generation; read it before a write and hand it to
    /// [`remember`](Self::remember) after.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Forgets every series. Called after series were deleted from
    /// metadata, so that writing one of them again registers it at once
    /// instead of after the TTL. Clearing it all is simpler than finding
    /// the deleted series (the delete answers only a count) and cheap:
    /// deletes are rare, and forgetting costs one redundant metadata write
    /// per live series.
    pub fn invalidate(&self) {
        let mut seen = self.lock();
        seen.series.clear();
        seen.generation += 1;
    }

    /// Records series that were just written successfully by a write that
    /// started at `generation`; ignored if the cache was invalidated since.
    pub fn remember<'a>(&self, series: impl IntoIterator<Item = &'a Series>, now: Instant, generation: u64) {
        if self.max_series == 0 {
            return;
        }
        let keys: Vec<u128> = series.into_iter().map(|s| self.fingerprint(s)).collect();
        let mut guard = self.lock();
        if guard.generation != generation {
            return;
        }
        let seen = &mut guard.series;
        for key in keys {
            if seen.len() >= self.max_series && !seen.contains_key(&key) {
                // Full: drop expired entries; if that frees nothing, start
                // over. Forgetting only costs a redundant metadata write.
                let ttl = self.ttl;
                seen.retain(|_, t| now.duration_since(*t) < ttl);
                if seen.len() >= self.max_series {
                    seen.clear();
                }
            }
            seen.insert(key, now);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().series.len()
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
        cache.remember([&a, &b], now, cache.generation());
        assert!(cache.is_fresh(&a, now));
        assert!(!cache.is_fresh(&a, now + Duration::from_secs(11)));
        cache.remember([&c], now, cache.generation());
        assert!(cache.len() <= 2);
        assert!(cache.is_fresh(&c, now));
    }

    #[test]
    fn invalidate_forgets_and_ignores_writes_started_before() {
        let cache = WriteCache::new(Duration::from_secs(10), 10);
        let now = Instant::now();
        let a = Series::key_only("a");
        let b = Series::key_only("b");
        cache.remember([&a], now, cache.generation());
        let before = cache.generation();
        cache.invalidate();
        assert!(!cache.is_fresh(&a, now));
        // A write that began before the delete may have re-registered a
        // series the delete removed: not remembered.
        cache.remember([&b], now, before);
        assert!(!cache.is_fresh(&b, now));
        cache.remember([&b], now, cache.generation());
        assert!(cache.is_fresh(&b, now));
    }
}
