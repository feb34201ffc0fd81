//! Bucket layout (which buckets a timestamp feeds) and the per-bucket
//! reducers, stored as arrays indexed by bucket so that updating allocates
//! nothing per point.

use std::collections::btree_map::{BTreeMap, Entry};

use heroic_plugin_api::buckets::{BucketLayout, BucketPartials, Cursor};
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

/// Maps timestamps to the buckets they feed: the plugin interface's
/// [`BucketLayout`] (one definition for the host's fold and the plugins'
/// pushdown), built with the query's limits and errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketMapping {
    layout: BucketLayout,
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
        let count = match strategy {
            BucketStrategy::End => diff.saturating_add(size) / size - 1,
            BucketStrategy::Start => diff / size,
        };
        if !(1..=MAX_BUCKET_COUNT).contains(&count) {
            return Err(QueryError::Layout(format!(
                "range ({}, {}] with bucket size {size} ms gives {count} buckets: must be between 1 and {MAX_BUCKET_COUNT}",
                range.start, range.end
            )));
        }
        let code = match strategy {
            BucketStrategy::End => BucketLayout::END,
            BucketStrategy::Start => BucketLayout::START,
        };
        let layout = BucketLayout::new(range, size, extent, code).ok_or_else(|| {
            QueryError::Layout(format!("range {range:?} with bucket size {size} ms cannot be laid out"))
        })?;
        Ok(BucketMapping { layout })
    }

    /// The layout, as a bucket fetch sends it to a plugin.
    pub fn layout(&self) -> BucketLayout {
        self.layout
    }

    pub fn count(&self) -> usize {
        self.layout.count()
    }

    pub fn timestamp(&self, i: usize) -> i64 {
        self.layout.timestamp(i)
    }

    /// The half-open index range of buckets that `t` feeds.
    #[inline]
    pub fn map(&self, t: i64) -> std::ops::Range<usize> {
        self.layout.map(t)
    }

    /// A cursor over the buckets when each timestamp feeds at most one.
    fn cursor(&self) -> Option<Cursor<'_>> {
        Cursor::new(&self.layout)
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

    /// Merges the partial states of `n` buckets, cells `base..base + n` of
    /// a bucket fetch (only for the kinds `pushdown.rs` pushes down): the
    /// same as folding the points they summarise.
    pub fn merge_partials(&mut self, p: &BucketPartials, base: usize, n: usize) {
        // The columns were checked to hold every requested field for every
        // cell (`BucketPartials::validate`) before the partials got here.
        let cells = base..base + n;
        let count = &p.count[cells.clone()];
        fn column(c: &[f64], cells: std::ops::Range<usize>) -> &[f64] {
            &c[cells]
        }
        let fed = |i: usize| count[i] > 0;
        match self {
            State::Sum { sum, seen } => {
                let part = column(&p.sum, cells.clone());
                for i in (0..n).filter(|&i| fed(i)) {
                    sum[i] += part[i];
                    seen[i] = true;
                }
            }
            State::Sum2 { sum, seen } => {
                let part = column(&p.sum2, cells.clone());
                for i in (0..n).filter(|&i| fed(i)) {
                    sum[i] += part[i];
                    seen[i] = true;
                }
            }
            State::Average { sum, n: counts } => {
                let part = column(&p.sum, cells.clone());
                for i in (0..n).filter(|&i| fed(i)) {
                    sum[i] += part[i];
                    counts[i] += count[i];
                }
            }
            State::Min(min) => {
                let part = column(&p.min, cells.clone());
                for i in (0..n).filter(|&i| fed(i)) {
                    min[i] = min[i].min(part[i]);
                }
            }
            State::Max(max) => {
                let part = column(&p.max, cells.clone());
                for i in (0..n).filter(|&i| fed(i)) {
                    max[i] = max[i].max(part[i]);
                }
            }
            State::Count(counts) => {
                for i in 0..n {
                    counts[i] += count[i];
                }
            }
            State::Spread(s) => {
                let (sum, sum2, min, max) = (
                    column(&p.sum, cells.clone()),
                    column(&p.sum2, cells.clone()),
                    column(&p.min, cells.clone()),
                    column(&p.max, cells.clone()),
                );
                for i in (0..n).filter(|&i| fed(i)) {
                    s[i].merge(&SpreadValue { count: count[i], sum: sum[i], sum2: sum2[i], min: min[i], max: max[i] });
                }
            }
            // Not pushed down (see `pushdown.rs`).
            _ => {}
        }
    }

    /// Feeds points; non-finite values are skipped (Heroic's `valid()`).
    /// Returns how many values were kept on top of the per-bucket state, for
    /// `aggregationLimit`: only the exact quantile and `group-unique` keep any.
    pub fn update_points(&mut self, m: &BucketMapping, key: &GroupKey, ts: &[i64], vals: &[f64]) -> u64 {
        // The match is outside the loops so each loop body is monomorphic.
        fn each(m: &BucketMapping, ts: &[i64], vals: &[f64], mut f: impl FnMut(usize, i64, f64)) {
            if let Some(mut cursor) = m.cursor() {
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
        if let (Some(mut cursor), State::Sum { sum, seen } | State::Sum2 { sum, seen }) = (m.cursor(), &mut *self) {
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
