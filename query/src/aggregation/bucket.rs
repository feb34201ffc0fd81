//! Bucket layout (which buckets a timestamp feeds) and the per-bucket
//! reducers, stored as arrays indexed by bucket so that updating allocates
//! nothing per point.

use std::collections::btree_map::{BTreeMap, Entry};

use heroic_plugin_api::types::TimeRange;

use super::cardinality::CardinalityCell;
use super::result::{GroupKey, MetricValues, SpreadValue};
use super::{BucketKind, CardinalityMethod};
use crate::error::{QueryError, Result};
use crate::limits::MAX_TIME_MS;

/// More buckets than this in one aggregation is an error.
pub const MAX_BUCKET_COUNT: i64 = 100_000;

/// Where a bucket's timestamp sits relative to the data it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BucketStrategy {
    /// Bucket `t` covers `(t - extent, t]` (Heroic's default).
    #[default]
    End,
    /// Bucket `t` covers `[t, t + extent)`.
    Start,
}

impl BucketStrategy {
    pub fn parse(s: &str) -> Option<BucketStrategy> {
        match s {
            "end" => Some(BucketStrategy::End),
            "start" => Some(BucketStrategy::Start),
            _ => None,
        }
    }
}

/// A timestamp relative to the range's start, clamped to a window far wider
/// than any range: a point a backend returned from outside the range lands
/// in no bucket, and no arithmetic on it can overflow (ranges, sizes and
/// extents are bounded by `MAX_TIME_MS`, see [`BucketMapping::new`]).
#[inline]
fn relative(t: i64, offset: i64) -> i64 {
    const WINDOW: i64 = 4 * MAX_TIME_MS;
    t.saturating_sub(offset).clamp(-WINDOW, WINDOW)
}

/// Maps timestamps to the buckets they feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketMapping {
    /// Timestamp of bucket 0.
    first: i64,
    /// `range.start`, which timestamps are measured from.
    offset: i64,
    size: i64,
    extent: i64,
    count: usize,
    strategy: BucketStrategy,
}

impl BucketMapping {
    /// Lays out buckets of `size` over `range`, as Heroic does: with `End`
    /// the buckets are at `start + size·(i+1)` for `i < (diff+size)/size - 1`;
    /// with `Start` at `start + size·i` for `i < diff/size`.
    pub fn new(range: TimeRange, size: i64, extent: i64, strategy: BucketStrategy) -> Result<Self> {
        // Bounded here so that no arithmetic on timestamps, sizes and
        // extents below can overflow.
        crate::request::check_range_bounds(range)?;
        let span = 2 * MAX_TIME_MS;
        if !(1..=span).contains(&size) || !(1..=span).contains(&extent) {
            return Err(QueryError::Layout(format!(
                "bucket size {size} ms and extent {extent} ms must be between 1 ms and {span} ms"
            )));
        }
        let diff = range.end.saturating_sub(range.start);
        let (first, count) = match strategy {
            BucketStrategy::End => (range.start + size, diff.saturating_add(size) / size - 1),
            BucketStrategy::Start => (range.start, diff / size),
        };
        if !(1..=MAX_BUCKET_COUNT).contains(&count) {
            return Err(QueryError::Layout(format!(
                "range ({}, {}] with bucket size {size} ms gives {count} buckets: must be between 1 and {MAX_BUCKET_COUNT}",
                range.start, range.end
            )));
        }
        Ok(BucketMapping { first, offset: range.start, size, extent, count: count as usize, strategy })
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn timestamp(&self, i: usize) -> i64 {
        self.first + self.size * i as i64
    }

    /// The half-open index range of buckets that `t` feeds.
    #[inline]
    pub fn map(&self, t: i64) -> std::ops::Range<usize> {
        let adjusted = relative(t, self.offset);
        let (lo, hi) = match self.strategy {
            BucketStrategy::End => {
                ((adjusted - 1).div_euclid(self.size), (adjusted + self.extent - 1).div_euclid(self.size))
            }
            BucketStrategy::Start => (
                (adjusted + self.size - self.extent).div_euclid(self.size),
                (adjusted + self.size).div_euclid(self.size),
            ),
        };
        let lo = lo.max(0) as usize;
        let hi = hi.clamp(0, self.count as i64) as usize;
        lo..hi.max(lo)
    }
}

/// The bucket of each timestamp when every timestamp feeds at most one
/// bucket (extent = size, the usual case). The bucket, and its division,
/// is recomputed only when a timestamp leaves the previous one's bucket:
/// once per bucket for sorted input instead of twice per point.
struct Cursor<'a> {
    m: &'a BucketMapping,
    /// Adjusted timestamps (`t - offset`) in `lo..=hi` are in bucket `k`,
    /// which is `index` when it exists (`lo > hi` before the first point).
    lo: i64,
    hi: i64,
    k: i64,
    index: Option<usize>,
}

impl<'a> Cursor<'a> {
    fn new(m: &'a BucketMapping) -> Option<Self> {
        (m.extent == m.size).then_some(Cursor { m, lo: i64::MAX, hi: i64::MIN, k: 0, index: None })
    }

    #[inline]
    fn bucket(&mut self, t: i64) -> Option<usize> {
        let adjusted = relative(t, self.m.offset);
        if adjusted < self.lo || adjusted > self.hi {
            self.locate(adjusted);
        }
        self.index
    }

    /// Calls `f(bucket, ts, vals)` for each run of consecutive points that
    /// feed the same bucket; points outside every bucket are skipped.
    #[inline]
    fn runs(&mut self, ts: &[i64], vals: &[f64], mut f: impl FnMut(usize, &[i64], &[f64])) {
        let n = ts.len().min(vals.len());
        let mut a = 0;
        while a < n {
            let bucket = self.bucket(ts[a]);
            let mut b = a + 1;
            while b < n && (self.lo..=self.hi).contains(&relative(ts[b], self.m.offset)) {
                b += 1;
            }
            if let Some(i) = bucket {
                f(i, &ts[a..b], &vals[a..b]);
            }
            a = b;
        }
    }

    /// Same answer as [`BucketMapping::map`] when extent = size.
    #[cold]
    fn locate(&mut self, adjusted: i64) {
        let size = self.m.size;
        // Sorted input moves to the next bucket: no division needed.
        let (k, lo) = if self.lo <= self.hi && adjusted > self.hi && adjusted - self.hi <= size {
            (self.k + 1, self.hi + 1)
        } else {
            match self.m.strategy {
                BucketStrategy::End => {
                    let k = (adjusted - 1).div_euclid(size);
                    (k, k * size + 1)
                }
                BucketStrategy::Start => {
                    let k = adjusted.div_euclid(size);
                    (k, k * size)
                }
            }
        };
        self.k = k;
        self.lo = lo;
        self.hi = lo.saturating_add(size - 1);
        self.index = (0..self.m.count as i64).contains(&k).then_some(k as usize);
    }
}

/// Reducer state for every bucket of one session.
pub(crate) enum State {
    Sum {
        sum: Vec<f64>,
        seen: Vec<bool>,
    },
    Sum2 {
        sum: Vec<f64>,
        seen: Vec<bool>,
    },
    Average {
        sum: Vec<f64>,
        n: Vec<u64>,
    },
    Min(Vec<f64>),
    Max(Vec<f64>),
    Count(Vec<u64>),
    /// Welford's running mean and squared deviations.
    StdDev {
        mean: Vec<f64>,
        m2: Vec<f64>,
        n: Vec<u64>,
    },
    Spread(Vec<SpreadValue>),
    /// Exact quantile: the values of each bucket are kept.
    Quantile {
        q: f64,
        values: Vec<Vec<f64>>,
    },
    Rate {
        first: Vec<i64>,
        last: Vec<(i64, f64)>,
        rate: Vec<f64>,
        seen: Vec<bool>,
    },
    Cardinality {
        include_key: bool,
        cells: Vec<CardinalityCell>,
    },
    /// `tpl`: nothing to keep, every bucket is 0.
    Template,
    /// `group-unique`: each bucket's samples by timestamp.
    Unique {
        points: Vec<BTreeMap<i64, f64>>,
        spreads: Vec<BTreeMap<i64, SpreadValue>>,
    },
}

impl State {
    pub fn new(kind: &BucketKind, n: usize) -> State {
        match kind {
            BucketKind::Sum => State::Sum { sum: vec![0.0; n], seen: vec![false; n] },
            BucketKind::Sum2 => State::Sum2 { sum: vec![0.0; n], seen: vec![false; n] },
            BucketKind::Average => State::Average { sum: vec![0.0; n], n: vec![0; n] },
            BucketKind::Min => State::Min(vec![f64::INFINITY; n]),
            BucketKind::Max => State::Max(vec![f64::NEG_INFINITY; n]),
            BucketKind::Count => State::Count(vec![0; n]),
            BucketKind::StdDev => State::StdDev { mean: vec![0.0; n], m2: vec![0.0; n], n: vec![0; n] },
            BucketKind::Spread => State::Spread(vec![SpreadValue::EMPTY; n]),
            BucketKind::Quantile { q, .. } => State::Quantile { q: *q, values: vec![Vec::new(); n] },
            BucketKind::RatePerSecond => {
                State::Rate { first: vec![0; n], last: vec![(0, 0.0); n], rate: vec![0.0; n], seen: vec![false; n] }
            }
            BucketKind::Cardinality(m) => {
                let include_key = match m {
                    CardinalityMethod::Exact { include_key }
                    | CardinalityMethod::Hll { include_key, .. }
                    | CardinalityMethod::Hllp { include_key, .. } => *include_key,
                };
                State::Cardinality { include_key, cells: (0..n).map(|_| CardinalityCell::new(m)).collect() }
            }
            BucketKind::Template => State::Template,
            BucketKind::GroupUnique => {
                State::Unique { points: vec![BTreeMap::new(); n], spreads: vec![BTreeMap::new(); n] }
            }
        }
    }

    /// Feeds points; non-finite values are skipped (Heroic's `valid()`).
    /// Returns how many values were kept on top of the per-bucket state, for
    /// `aggregationLimit`: only the exact quantile and `group-unique` keep any.
    pub fn update_points(&mut self, m: &BucketMapping, key: &GroupKey, ts: &[i64], vals: &[f64]) -> u64 {
        // The match is outside the loops so each loop body is monomorphic.
        fn each(m: &BucketMapping, ts: &[i64], vals: &[f64], mut f: impl FnMut(usize, i64, f64)) {
            if let Some(mut cursor) = Cursor::new(m) {
                return cursor.runs(ts, vals, |i, ts, vals| {
                    for (&t, &v) in ts.iter().zip(vals) {
                        if v.is_finite() {
                            f(i, t, v);
                        }
                    }
                });
            }
            for (&t, &v) in ts.iter().zip(vals) {
                if !v.is_finite() {
                    continue;
                }
                for i in m.map(t) {
                    f(i, t, v);
                }
            }
        }
        // Sums of a run of points in one bucket add up in a register, in
        // the same order as point by point (so the same result), instead
        // of a load and store of the bucket per point.
        let square = matches!(self, State::Sum2 { .. });
        if let (Some(mut cursor), State::Sum { sum, seen } | State::Sum2 { sum, seen }) = (Cursor::new(m), &mut *self) {
            cursor.runs(ts, vals, |i, _, vals| {
                let mut acc = sum[i];
                let mut any = false;
                for &v in vals.iter().filter(|v| v.is_finite()) {
                    acc += if square { v * v } else { v };
                    any = true;
                }
                sum[i] = acc;
                seen[i] |= any;
            });
            return 0;
        }
        match self {
            State::Sum { sum, seen } => each(m, ts, vals, |i, _, v| {
                sum[i] += v;
                seen[i] = true;
            }),
            State::Sum2 { sum, seen } => each(m, ts, vals, |i, _, v| {
                sum[i] += v * v;
                seen[i] = true;
            }),
            State::Average { sum, n } => each(m, ts, vals, |i, _, v| {
                sum[i] += v;
                n[i] += 1;
            }),
            State::Min(min) => each(m, ts, vals, |i, _, v| min[i] = min[i].min(v)),
            State::Max(max) => each(m, ts, vals, |i, _, v| max[i] = max[i].max(v)),
            State::Count(n) => each(m, ts, vals, |i, _, _| n[i] += 1),
            State::StdDev { mean, m2, n } => each(m, ts, vals, |i, _, v| {
                n[i] += 1;
                let delta = v - mean[i];
                mean[i] += delta / n[i] as f64;
                m2[i] += delta * (v - mean[i]);
            }),
            State::Spread(s) => each(m, ts, vals, |i, _, v| s[i].add_point(v)),
            State::Quantile { values, .. } => {
                let mut kept = 0;
                each(m, ts, vals, |i, _, v| {
                    values[i].push(v);
                    kept += 1;
                });
                return kept;
            }
            State::Rate { first, last, rate, seen } => each(m, ts, vals, |i, t, v| {
                if !seen[i] {
                    seen[i] = true;
                    first[i] = t;
                } else if v > last[i].1 {
                    // A counter reset (a drop) contributes nothing.
                    rate[i] += v - last[i].1;
                }
                last[i] = (t, v);
            }),
            State::Cardinality { include_key, cells } => {
                let seed = if *include_key { super::cardinality::key_seed(key) } else { 0 };
                each(m, ts, vals, |i, _, v| cells[i].offer(seed, v.to_bits()))
            }
            State::Template => {}
            State::Unique { points, .. } => {
                let mut kept = 0;
                each(m, ts, vals, |i, t, v| {
                    // Heroic's set compares samples by timestamp only: the
                    // first sample of a timestamp stays.
                    if let Entry::Vacant(e) = points[i].entry(t) {
                        e.insert(v);
                        kept += 1;
                    }
                });
                return kept;
            }
        }
        0
    }

    /// Feeds spreads (the output of `spread`, or distributed partials).
    pub fn update_spreads(&mut self, m: &BucketMapping, key: &GroupKey, spreads: &[(i64, SpreadValue)]) {
        for &(t, s) in spreads {
            if s.count == 0 {
                continue;
            }
            for i in m.map(t) {
                match self {
                    State::Sum { sum, seen } => {
                        sum[i] += s.sum;
                        seen[i] = true;
                    }
                    State::Sum2 { sum, seen } => {
                        sum[i] += s.sum2;
                        seen[i] = true;
                    }
                    State::Average { sum, n } => {
                        sum[i] += s.sum;
                        n[i] += s.count;
                    }
                    State::Min(min) => min[i] = min[i].min(s.min),
                    State::Max(max) => max[i] = max[i].max(s.max),
                    State::Count(n) => n[i] += 1,
                    State::StdDev { mean, m2, n } => {
                        // Chan et al.: merge (count, mean, M2) of the spread.
                        let (nb, mb) = (s.count as f64, s.sum / s.count as f64);
                        let m2b = (s.sum2 - s.sum * s.sum / s.count as f64).max(0.0);
                        let na = n[i] as f64;
                        let delta = mb - mean[i];
                        let total = na + nb;
                        mean[i] += delta * nb / total;
                        m2[i] += m2b + delta * delta * na * nb / total;
                        n[i] += s.count;
                    }
                    State::Spread(sp) => sp[i].merge(&s),
                    // `tpl` reads points only, as in Heroic.
                    State::Quantile { .. } | State::Rate { .. } | State::Template => {}
                    State::Unique { spreads, .. } => {
                        spreads[i].entry(t).or_insert(s);
                    }
                    State::Cardinality { include_key, cells } => {
                        let seed = if *include_key { super::cardinality::key_seed(key) } else { 0 };
                        cells[i]
                            .offer(seed, s.sum.to_bits() ^ s.count.rotate_left(17) ^ s.min.to_bits().rotate_left(31));
                    }
                }
            }
        }
    }

    /// The bucket values; empty or invalid buckets are dropped (count and
    /// cardinality emit 0).
    pub fn build(&mut self, m: &BucketMapping) -> MetricValues {
        let n = m.count();
        let mut out = Vec::with_capacity(n);
        let mut push = |i: usize, v: f64| {
            if v.is_finite() {
                out.push((m.timestamp(i), v));
            }
        };
        match self {
            State::Sum { sum, seen } | State::Sum2 { sum, seen } => {
                (0..n).filter(|&i| seen[i]).for_each(|i| push(i, sum[i]))
            }
            State::Average { sum, n: c } => (0..n).filter(|&i| c[i] > 0).for_each(|i| push(i, sum[i] / c[i] as f64)),
            State::Min(v) | State::Max(v) => (0..n).for_each(|i| push(i, v[i])),
            State::Count(c) => (0..n).for_each(|i| push(i, c[i] as f64)),
            // The population standard deviation (divided by n, a single
            // value giving 0), as Heroic's StripedStdDevBucket computes it.
            State::StdDev { m2, n: c, .. } => {
                (0..n).filter(|&i| c[i] > 0).for_each(|i| push(i, (m2[i].max(0.0) / c[i] as f64).sqrt()))
            }
            State::Spread(s) => {
                return MetricValues::Spreads(
                    (0..n).filter(|&i| s[i].count > 0).map(|i| (m.timestamp(i), s[i])).collect(),
                )
            }
            State::Quantile { q, values } => {
                for (i, v) in values.iter_mut().enumerate() {
                    if v.is_empty() {
                        continue;
                    }
                    v.sort_by(f64::total_cmp);
                    // The rank Heroic's estimator returns with no error: floor(q·n), 1-based.
                    let rank = ((*q * v.len() as f64) as usize).clamp(1, v.len());
                    push(i, v[rank - 1]);
                }
            }
            State::Rate { first, last, rate, seen } => (0..n).filter(|&i| seen[i]).for_each(|i| {
                let dt = last[i].0 - first[i];
                if dt > 0 {
                    push(i, rate[i] / dt as f64 * 1000.0)
                }
            }),
            State::Cardinality { cells, .. } => (0..n).for_each(|i| push(i, cells[i].count() as f64)),
            State::Template => (0..n).for_each(|i| push(i, 0.0)),
            State::Unique { points, spreads } => {
                let groups = (0..n)
                    .filter_map(|i| {
                        let mut collections = Vec::new();
                        if !points[i].is_empty() {
                            collections
                                .push(MetricValues::Points(std::mem::take(&mut points[i]).into_iter().collect()));
                        }
                        if !spreads[i].is_empty() {
                            collections
                                .push(MetricValues::Spreads(std::mem::take(&mut spreads[i]).into_iter().collect()));
                        }
                        (!collections.is_empty()).then(|| (m.timestamp(i), collections))
                    })
                    .collect();
                return MetricValues::Groups(groups);
            }
        }
        MetricValues::Points(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_agrees_with_map() {
        for strategy in [BucketStrategy::End, BucketStrategy::Start] {
            let m = BucketMapping::new(TimeRange::new(1_000, 2_000), 100, 100, strategy).unwrap();
            let mut cursor = Cursor::new(&m).unwrap();
            // Sorted, then backwards and jumping around, edges included.
            let ts = (800..2_200).chain((800..2_200).rev()).chain([1_100, 999, 2_000, 1_000, 1_001, 1_950]);
            for t in ts {
                let want = m.map(t);
                assert!(want.len() <= 1);
                assert_eq!(cursor.bucket(t), want.clone().next(), "{strategy:?} t={t} map={want:?}");
            }
        }
        let wide = BucketMapping::new(TimeRange::new(0, 1_000), 100, 300, BucketStrategy::End).unwrap();
        assert!(Cursor::new(&wide).is_none());
    }

    #[test]
    fn run_sums_skip_invalid_values_and_outside_points() {
        let m = BucketMapping::new(TimeRange::new(0, 1_000), 100, 100, BucketStrategy::End).unwrap();
        let ts = [5, 50, 100, 101, 150, 99, 700, 1_000, 1_001, -5];
        let vals = [1.0, f64::NAN, 2.0, 3.0, 4.0, 5.0, f64::INFINITY, 6.0, 7.0, 8.0];
        for (kind, want) in [
            (BucketKind::Sum, vec![(100, 8.0), (200, 7.0), (1_000, 6.0)]),
            (BucketKind::Sum2, vec![(100, 30.0), (200, 25.0), (1_000, 36.0)]),
        ] {
            let mut state = State::new(&kind, m.count());
            state.update_points(&m, &GroupKey::new(), &ts, &vals);
            assert_eq!(state.build(&m), MetricValues::Points(want), "{kind:?}");
        }
    }
}
