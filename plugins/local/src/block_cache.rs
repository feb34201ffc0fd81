//! Decoded blocks, and a cache of them bounded in bytes.
//!
//! Why: decoding (pco) costs ~6 ns a point, ten times what folding the
//! point into a bucket costs, and dashboards ask for the same recent data
//! again and again. A block is kept in the compact form it decodes to, not
//! as 16-byte points: regular timestamps as `first, step` (no bytes per
//! point) and decimal-scaled values as the integers they were scaled to
//! (4 bytes a point when they fit in an `i32`), so that a cache of 128 MB
//! holds ~30 M points of typical gauges. Reading a cached block writes out
//! only the points in the requested range, computed from `first, step`
//! when the timestamps are regular: one hour of a day-long block costs one
//! hour of points.
//!
//! Values come back bit for bit as decoding gives them: `int as f64 /
//! 10^k`, the same expression as `codec::decode_block`.
//!
//! Blocks are immutable and keyed by (segment id, offset); a segment id
//! is never reused within a process (compaction writes new segments with
//! new ids), so a cached block can never be confused with another.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use heroic_plugin_api::types::TimeRange;

/// A block's timestamps.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Times {
    /// `first + step·i` for `i < n`.
    Regular {
        first: i64,
        step: i64,
        n: usize,
    },
    Listed(Box<[i64]>),
}

/// A block's values.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Values {
    /// `int as f64 / divisor`, integers that fit in 32 bits.
    Scaled32 {
        divisor: f64,
        ints: Box<[i32]>,
    },
    /// `int as f64 / divisor`.
    Scaled64 {
        divisor: f64,
        ints: Box<[i64]>,
    },
    Floats(Box<[f64]>),
}

/// One block, decoded.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DecodedBlock {
    pub(crate) times: Times,
    pub(crate) values: Values,
}

impl DecodedBlock {
    pub(crate) fn len(&self) -> usize {
        match &self.times {
            Times::Regular { n, .. } => *n,
            Times::Listed(ts) => ts.len(),
        }
    }

    /// Bytes of memory it holds (what the cache counts).
    pub(crate) fn weight(&self) -> u64 {
        let times = match &self.times {
            Times::Regular { .. } => 0,
            Times::Listed(ts) => ts.len() * 8,
        };
        let values = match &self.values {
            Values::Scaled32 { ints, .. } => ints.len() * 4,
            Values::Scaled64 { ints, .. } => ints.len() * 8,
            Values::Floats(v) => v.len() * 8,
        };
        (times + values + std::mem::size_of::<Self>()) as u64
    }

    /// The index range of the points in `(range.start, range.end]`
    /// (timestamps are sorted).
    pub(crate) fn span(&self, range: TimeRange) -> Range<usize> {
        match &self.times {
            Times::Regular { first, step, n } if *step > 0 => {
                // i > (start − first) / step and i ≤ (end − first) / step.
                let index = |t: i64| (i128::from(t) - i128::from(*first)).div_euclid(i128::from(*step));
                let clamp = |i: i128| i.clamp(0, *n as i128) as usize;
                let lo = clamp(index(range.start) + 1);
                let hi = clamp(index(range.end) + 1);
                lo..hi.max(lo)
            }
            // A step of 0 or less only comes from a damaged block: every
            // point, and the caller's trim sorts out the range.
            Times::Regular { n, .. } => 0..*n,
            Times::Listed(ts) => {
                let lo = ts.partition_point(|&t| t <= range.start);
                lo..ts.partition_point(|&t| t <= range.end).max(lo)
            }
        }
    }

    /// Appends the points in `(range.start, range.end]` to `ts` and `vals`.
    pub(crate) fn append_range(&self, range: TimeRange, ts: &mut Vec<i64>, vals: &mut Vec<f64>) {
        let span = self.span(range);
        match &self.times {
            Times::Regular { first, step, .. } => {
                ts.extend(span.clone().map(|i| first.wrapping_add(step.wrapping_mul(i as i64))));
            }
            Times::Listed(t) => ts.extend_from_slice(&t[span.clone()]),
        }
        match &self.values {
            Values::Scaled32 { divisor, ints } => vals.extend(ints[span].iter().map(|&x| x as f64 / divisor)),
            Values::Scaled64 { divisor, ints } => vals.extend(ints[span].iter().map(|&x| x as f64 / divisor)),
            Values::Floats(v) => vals.extend_from_slice(&v[span]),
        }
    }
}

/// A new segment id, never handed out before in this process.
pub(crate) fn next_segment_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[derive(Clone)]
struct ByBytes;

impl quick_cache::Weighter<(u64, u64), Arc<DecodedBlock>> for ByBytes {
    fn weight(&self, _: &(u64, u64), block: &Arc<DecodedBlock>) -> u64 {
        block.weight()
    }
}

/// Decoded blocks by (segment id, block offset), at most `capacity` bytes
/// of them. quick_cache's policy resists scans: one large query over cold
/// data does not push out the blocks that are read again and again.
pub(crate) struct BlockCache {
    cache: quick_cache::sync::Cache<(u64, u64), Arc<DecodedBlock>, ByBytes>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Bytes of a typical cached block, to size the cache's table.
const TYPICAL_BLOCK: u64 = 16 * 1024;

impl BlockCache {
    pub(crate) fn new(capacity: u64) -> BlockCache {
        let items = (capacity / TYPICAL_BLOCK).clamp(16, 1 << 22) as usize;
        BlockCache {
            cache: quick_cache::sync::Cache::with_weighter(items, capacity.max(1), ByBytes),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub(crate) fn get(&self, segment: u64, offset: u64) -> Option<Arc<DecodedBlock>> {
        let found = self.cache.get(&(segment, offset));
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Whether the block is held, without counting a hit or a miss or
    /// changing what is evicted next.
    pub(crate) fn contains(&self, segment: u64, offset: u64) -> bool {
        self.cache.contains_key(&(segment, offset))
    }

    pub(crate) fn insert(&self, segment: u64, offset: u64, block: Arc<DecodedBlock>) {
        self.cache.insert((segment, offset), block);
    }

    /// `(hits, misses, bytes held)`.
    pub(crate) fn stats(&self) -> (u64, u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed), self.cache.weight())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(b: &DecodedBlock, range: TimeRange) -> Vec<(i64, f64)> {
        let (mut ts, mut vs) = (Vec::new(), Vec::new());
        b.append_range(range, &mut ts, &mut vs);
        ts.into_iter().zip(vs).collect()
    }

    #[test]
    fn a_range_of_a_block_is_what_trimming_all_of_it_gives() {
        let regular = DecodedBlock {
            times: Times::Regular { first: 100, step: 10, n: 5 },
            values: Values::Scaled32 { divisor: 100.0, ints: vec![1, -2, 3, 4, 5].into() },
        };
        let listed = DecodedBlock {
            times: Times::Listed(vec![100, 110, 120, 130, 140].into()),
            values: Values::Floats(vec![0.01, -0.02, 0.03, 0.04, 0.05].into()),
        };
        for b in [&regular, &listed] {
            let all = points(b, TimeRange::ALL);
            assert_eq!(all.len(), 5);
            for start in [-1_000, 0, 99, 100, 105, 110, 139, 140, 200, i64::MIN] {
                for end in [i64::MIN, 0, 100, 101, 119, 120, 140, 1_000, i64::MAX] {
                    let range = TimeRange { start, end };
                    let want: Vec<(i64, f64)> = all.iter().copied().filter(|(t, _)| *t > start && *t <= end).collect();
                    assert_eq!(points(b, range), want, "{range:?}");
                }
            }
        }
        assert_eq!(points(&regular, TimeRange::ALL)[1], (110, -0.02));
    }

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let cache = BlockCache::new(64 * 1024);
        let block = |n: usize| {
            Arc::new(DecodedBlock {
                times: Times::Regular { first: 0, step: 1, n },
                values: Values::Floats(vec![1.0; n].into()),
            })
        };
        for i in 0..100 {
            cache.insert(1, i, block(1000));
        }
        let (_, _, bytes) = cache.stats();
        assert!(bytes <= 64 * 1024, "{bytes} bytes held");
        assert!(cache.get(1, 99).is_some() || cache.get(1, 98).is_some(), "recent blocks are kept");
        assert!(cache.get(2, 0).is_none());
    }
}
