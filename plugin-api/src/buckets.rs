//! Aggregation pushdown (interface 1.3): a fetch that folds points into
//! per-bucket partial states inside the plugin, so that nothing per point
//! crosses the boundary.
//!
//! The host sends the bucket layout of the query ([`BucketLayout`], Heroic's
//! buckets), the group each requested series belongs to and which partial
//! fields it needs ([`PartialFields`]); the backend decodes each series and
//! folds its values straight into `groups × buckets` cells
//! ([`BucketPartials`]), then answers those, the series that had data and
//! the number of points folded. The host merges the partials into its
//! aggregation session (`sum`, `sum2`, `average`, `min`, `max`, `count`
//! and `spread` are all functions of count, sum, sum of squares, min and
//! max).
//!
//! The layout arithmetic and the fold live here, once, so that the host's
//! own fold and every plugin's agree point for point.

use std::ops::Range;

use abi_stable::std_types::RVec;
use abi_stable::StableAbi;

use crate::types::{Series, TimeRange};

/// Timestamps are measured from the layout's offset and clamped to this
/// window, far wider than any valid range plus extent: a point outside the
/// range lands in no bucket and no arithmetic on it overflows.
const WINDOW: i64 = 1 << 60;

/// Bucket sizes and extents above this are refused by
/// [`BucketLayout::validate`] (it keeps the arithmetic inside `i64`).
pub const MAX_BUCKET_SPAN: i64 = 1 << 56;

/// Where buckets sit and what each covers: bucket `i` has the timestamp
/// `first + size × i`; with [`END`](Self::END) it covers `(t − extent, t]`,
/// with [`START`](Self::START) `[t, t + extent)`.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketLayout {
    /// The range's start, which timestamps are measured from.
    pub offset: i64,
    /// The timestamp of bucket 0.
    pub first: i64,
    pub size: i64,
    pub extent: i64,
    /// Number of buckets.
    pub count: u32,
    /// [`END`](Self::END) or [`START`](Self::START).
    pub strategy: u8,
}

/// The layout's buckets that one timestamp feeds.
impl BucketLayout {
    /// Bucket `t` covers `(t − extent, t]` (Heroic's default).
    pub const END: u8 = 0;
    /// Bucket `t` covers `[t, t + extent)`.
    pub const START: u8 = 1;

    /// Heroic's layout of buckets of `size` over `range`: with `END` at
    /// `start + size·(i+1)` for `i < (diff+size)/size − 1`; with `START` at
    /// `start + size·i` for `i < diff/size`. `None` when that is no bucket
    /// or more than `u32::MAX`, or a size or extent is out of bounds.
    pub fn new(range: TimeRange, size: i64, extent: i64, strategy: u8) -> Option<BucketLayout> {
        if !(1..=MAX_BUCKET_SPAN).contains(&size) || !(1..=MAX_BUCKET_SPAN).contains(&extent) {
            return None;
        }
        let diff = range.end.checked_sub(range.start)?;
        let (first, count) = match strategy {
            Self::END => (range.start.checked_add(size)?, diff.checked_add(size)? / size - 1),
            Self::START => (range.start, diff / size),
            _ => return None,
        };
        let count = u32::try_from(count).ok().filter(|c| *c > 0)?;
        Some(BucketLayout { offset: range.start, first, size, extent, count, strategy })
    }

    /// Checks a layout received from the other side of the boundary: every
    /// later computation on it stays inside `i64`.
    pub fn validate(&self) -> Result<(), String> {
        let span = 1..=MAX_BUCKET_SPAN;
        if !span.contains(&self.size) || !span.contains(&self.extent) || self.count == 0 {
            return Err(format!(
                "bucket layout {self:?}: size and extent must be 1..={MAX_BUCKET_SPAN}, count above 0"
            ));
        }
        if self.strategy > Self::START || self.offset.unsigned_abs() > WINDOW as u64 / 4 {
            return Err(format!("bucket layout {self:?}: unknown strategy or offset out of range"));
        }
        Ok(())
    }

    pub fn count(&self) -> usize {
        self.count as usize
    }

    /// The timestamp of bucket `i`.
    pub fn timestamp(&self, i: usize) -> i64 {
        self.first + self.size * i as i64
    }

    /// The half-open range of buckets that `t` feeds.
    #[inline]
    pub fn map(&self, t: i64) -> Range<usize> {
        let adjusted = relative(t, self.offset);
        let (lo, hi) = if self.strategy == Self::START {
            ((adjusted + self.size - self.extent).div_euclid(self.size), (adjusted + self.size).div_euclid(self.size))
        } else {
            ((adjusted - 1).div_euclid(self.size), (adjusted + self.extent - 1).div_euclid(self.size))
        };
        let lo = lo.max(0) as usize;
        let hi = hi.clamp(0, self.count as i64) as usize;
        lo..hi.max(lo)
    }
}

#[inline]
fn relative(t: i64, offset: i64) -> i64 {
    t.saturating_sub(offset).clamp(-WINDOW, WINDOW)
}

/// The bucket of each timestamp when every timestamp feeds at most one
/// bucket (extent = size, the usual case). The bucket, and its division,
/// is recomputed only when a timestamp leaves the previous one's bucket:
/// once per bucket for sorted input instead of twice per point.
pub struct Cursor<'a> {
    m: &'a BucketLayout,
    /// Adjusted timestamps (`t − offset`) in `lo..=hi` are in bucket `k`,
    /// which is `index` when it exists (`lo > hi` before the first point).
    lo: i64,
    hi: i64,
    k: i64,
    index: Option<usize>,
}

impl<'a> Cursor<'a> {
    /// A cursor over `m`, or `None` when a timestamp may feed several
    /// buckets (extent ≠ size): use [`BucketLayout::map`] then.
    pub fn new(m: &'a BucketLayout) -> Option<Self> {
        (m.extent == m.size).then_some(Cursor { m, lo: i64::MAX, hi: i64::MIN, k: 0, index: None })
    }

    /// The bucket `t` feeds, if any.
    #[inline]
    pub fn bucket(&mut self, t: i64) -> Option<usize> {
        let adjusted = relative(t, self.m.offset);
        if adjusted < self.lo || adjusted > self.hi {
            self.locate(adjusted);
        }
        self.index
    }

    /// The bucket `t` feeds, if any, and the last timestamp that feeds the
    /// same one (or falls in the same stretch outside every bucket): a
    /// reader of regular timestamps finds where a run ends by arithmetic.
    #[inline]
    pub fn bucket_until(&mut self, t: i64) -> (Option<usize>, i64) {
        let bucket = self.bucket(t);
        (bucket, self.m.offset.saturating_add(self.hi))
    }

    /// Calls `f(bucket, ts, vals)` for each run of consecutive points that
    /// feed the same bucket; points outside every bucket are skipped.
    #[inline]
    pub fn runs(&mut self, ts: &[i64], vals: &[f64], mut f: impl FnMut(usize, &[i64], &[f64])) {
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

    /// Same answer as [`BucketLayout::map`] when extent = size.
    #[cold]
    fn locate(&mut self, adjusted: i64) {
        let size = self.m.size;
        // Sorted input moves to the next bucket: no division needed.
        let (k, lo) = if self.lo <= self.hi && adjusted > self.hi && adjusted - self.hi <= size {
            (self.k + 1, self.hi + 1)
        } else if self.m.strategy == BucketLayout::START {
            let k = adjusted.div_euclid(size);
            (k, k * size)
        } else {
            let k = (adjusted - 1).div_euclid(size);
            (k, k * size + 1)
        };
        self.k = k;
        self.lo = lo;
        self.hi = lo.saturating_add(size - 1);
        self.index = (0..self.m.count as i64).contains(&k).then_some(k as usize);
    }
}

/// Which partial states a bucket fetch computes: a bit set, so that a
/// `max` query folds only maxima.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PartialFields(pub u32);

impl PartialFields {
    /// Number of finite values.
    pub const COUNT: PartialFields = PartialFields(1);
    /// Their sum.
    pub const SUM: PartialFields = PartialFields(2);
    /// The sum of their squares.
    pub const SUM2: PartialFields = PartialFields(4);
    pub const MIN: PartialFields = PartialFields(8);
    pub const MAX: PartialFields = PartialFields(16);
    /// Every field this version knows.
    pub const ALL: PartialFields = PartialFields(31);

    pub fn contains(self, other: PartialFields) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for PartialFields {
    type Output = PartialFields;
    fn bitor(self, rhs: PartialFields) -> PartialFields {
        PartialFields(self.0 | rhs.0)
    }
}

/// Partial states of `cells` cells (`groups × buckets`, group-major): one
/// column per requested field, empty for the others. A cell no finite
/// value fed has count 0, sums 0, min +∞ and max −∞.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default, PartialEq)]
pub struct BucketPartials {
    pub count: RVec<u64>,
    pub sum: RVec<f64>,
    pub sum2: RVec<f64>,
    pub min: RVec<f64>,
    pub max: RVec<f64>,
}

impl BucketPartials {
    /// Empty states of `cells` cells for `fields` (count is always kept:
    /// it tells a cell nothing fed from one fed zeros).
    pub fn new(fields: PartialFields, cells: usize) -> BucketPartials {
        let column = |f: PartialFields, v: f64| -> RVec<f64> {
            if fields.contains(f) {
                vec![v; cells].into()
            } else {
                RVec::new()
            }
        };
        BucketPartials {
            count: vec![0; cells].into(),
            sum: column(PartialFields::SUM, 0.0),
            sum2: column(PartialFields::SUM2, 0.0),
            min: column(PartialFields::MIN, f64::INFINITY),
            max: column(PartialFields::MAX, f64::NEG_INFINITY),
        }
    }

    /// Number of cells.
    pub fn cells(&self) -> usize {
        self.count.len()
    }

    /// Checks that the count and every column of `fields` have one value
    /// per cell, and the other columns none or one per cell (the partials
    /// come from the other side of the boundary).
    pub fn validate(&self, cells: usize, fields: PartialFields) -> Result<(), String> {
        let columns = [
            (PartialFields::SUM, self.sum.len()),
            (PartialFields::SUM2, self.sum2.len()),
            (PartialFields::MIN, self.min.len()),
            (PartialFields::MAX, self.max.len()),
        ];
        let bad = columns.iter().any(|&(f, n)| n != cells && (n != 0 || fields.contains(f)));
        if self.count.len() != cells || bad {
            return Err(format!(
                "bucket partials with columns of {} and {:?} cells for {cells} cells of fields {fields:?}",
                self.count.len(),
                columns.map(|c| c.1)
            ));
        }
        Ok(())
    }

    /// Folds the points of one series (sorted by time) into the cells of
    /// `group`; non-finite values are skipped (Heroic's `valid()`).
    pub fn fold(&mut self, layout: &BucketLayout, group: usize, ts: &[i64], vals: &[f64]) {
        let base = group * layout.count();
        let BucketPartials { count, sum, sum2, min, max } = self;
        let (count, sum, sum2, min, max) =
            (count.as_mut_slice(), sum.as_mut_slice(), sum2.as_mut_slice(), min.as_mut_slice(), max.as_mut_slice());
        // One run of points of a bucket folds in registers, in point order
        // (so the same sums as point by point), then stores once.
        let mut cell = |i: usize, vals: &[f64]| {
            let c = base + i;
            let (mut n, mut s, mut s2, mut lo, mut hi) = (0u64, 0.0f64, 0.0f64, f64::INFINITY, f64::NEG_INFINITY);
            for &v in vals.iter().filter(|v| v.is_finite()) {
                n += 1;
                s += v;
                s2 += v * v;
                lo = lo.min(v);
                hi = hi.max(v);
            }
            if n == 0 {
                return;
            }
            count[c] += n;
            if let Some(x) = sum.get_mut(c) {
                *x += s;
            }
            if let Some(x) = sum2.get_mut(c) {
                *x += s2;
            }
            if let Some(x) = min.get_mut(c) {
                *x = x.min(lo);
            }
            if let Some(x) = max.get_mut(c) {
                *x = x.max(hi);
            }
        };
        if let Some(mut cursor) = Cursor::new(layout) {
            cursor.runs(ts, vals, |i, _, vals| cell(i, vals));
            return;
        }
        for (&t, &v) in ts.iter().zip(vals) {
            for i in layout.map(t) {
                cell(i, std::slice::from_ref(&v));
            }
        }
    }

    /// Adds `other`'s cells (same size and fields) into these.
    pub fn merge(&mut self, other: &BucketPartials) {
        for (a, b) in self.count.iter_mut().zip(other.count.iter()) {
            *a += b;
        }
        for (a, b) in self.sum.iter_mut().zip(other.sum.iter()) {
            *a += b;
        }
        for (a, b) in self.sum2.iter_mut().zip(other.sum2.iter()) {
            *a += b;
        }
        for (a, b) in self.min.iter_mut().zip(other.min.iter()) {
            *a = a.min(*b);
        }
        for (a, b) in self.max.iter_mut().zip(other.max.iter()) {
            *a = a.max(*b);
        }
    }
}

/// A bucket fetch: fold the points of `series` in `range` into
/// `group_count × layout.count` cells, series `i` into group `groups[i]`.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct BucketFetchRequest {
    pub series: RVec<Series>,
    /// The group of each series (`< group_count`), same length as `series`.
    pub groups: RVec<u32>,
    pub group_count: u32,
    /// `(start, end]`: points outside it are not folded.
    pub range: TimeRange,
    pub layout: BucketLayout,
    pub fields: PartialFields,
    /// Stop after folding about this many points (0: no limit), and say so.
    pub point_limit: u64,
}

impl BucketFetchRequest {
    /// Checks what a backend relies on: the layout, one group per series,
    /// and groups inside `group_count`.
    pub fn validate(&self) -> Result<(), String> {
        self.layout.validate()?;
        if self.groups.len() != self.series.len() {
            return Err(format!("{} groups for {} series", self.groups.len(), self.series.len()));
        }
        if let Some(g) = self.groups.iter().find(|g| **g >= self.group_count) {
            return Err(format!("group {g} of a series is not below group_count {}", self.group_count));
        }
        (self.group_count as u64).checked_mul(self.layout.count as u64).filter(|c| *c <= u32::MAX as u64).map_or_else(
            || Err(format!("{} groups × {} buckets is too many cells", self.group_count, self.layout.count)),
            |_| Ok(()),
        )
    }

    /// Number of cells of the answer.
    pub fn cells(&self) -> usize {
        self.group_count as usize * self.layout.count()
    }
}

/// The answer to a [`BucketFetchRequest`].
#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default, PartialEq)]
pub struct BucketFetchResponse {
    pub partials: BucketPartials,
    /// Indices (into the request's `series`) of the series that had points
    /// in the range, each once.
    pub series_with_data: RVec<u32>,
    /// Points read (the query's sample size).
    pub points: u64,
    /// The fold stopped at `point_limit`.
    pub limited: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_agrees_with_map() {
        for strategy in [BucketLayout::END, BucketLayout::START] {
            let m = BucketLayout::new(TimeRange::new(1_000, 2_000), 100, 100, strategy).unwrap();
            let mut cursor = Cursor::new(&m).unwrap();
            // Sorted, then backwards and jumping around, edges included.
            let ts = (800..2_200).chain((800..2_200).rev()).chain([1_100, 999, 2_000, 1_000, 1_001, 1_950]);
            for t in ts {
                let want = m.map(t);
                assert!(want.len() <= 1);
                assert_eq!(cursor.bucket(t), want.clone().next(), "strategy {strategy} t={t} map={want:?}");
                let (bucket, until) = cursor.bucket_until(t);
                assert!(until >= t, "t={t} until={until}");
                assert_eq!(m.map(until), want, "strategy {strategy}: {until} is in the bucket of {t}");
                if !want.is_empty() {
                    assert_ne!(
                        m.map(until + 1),
                        want.clone(),
                        "strategy {strategy}: {} is past the bucket of {t}",
                        until + 1
                    );
                }
                assert_eq!(bucket, want.clone().next());
            }
        }
        let wide = BucketLayout::new(TimeRange::new(0, 100), 10, 30, BucketLayout::END).unwrap();
        assert!(Cursor::new(&wide).is_none());
        assert_eq!(wide.map(15), 1..4);
    }

    #[test]
    fn layouts_out_of_bounds_are_refused() {
        assert!(BucketLayout::new(TimeRange::new(0, 5), 10, 10, BucketLayout::END).is_none(), "no bucket");
        assert!(BucketLayout::new(TimeRange::new(0, 100), 0, 10, BucketLayout::END).is_none());
        assert!(BucketLayout::new(TimeRange::new(0, 100), 10, 10, 7).is_none());
        let mut m = BucketLayout::new(TimeRange::new(0, 100), 10, 10, BucketLayout::END).unwrap();
        assert!(m.validate().is_ok());
        m.extent = i64::MAX;
        assert!(m.validate().is_err());
    }

    #[test]
    fn fold_keeps_count_sum_sum2_min_max_per_group_and_bucket() {
        let m = BucketLayout::new(TimeRange::new(0, 30), 10, 10, BucketLayout::END).unwrap();
        let mut p = BucketPartials::new(PartialFields::ALL, 2 * m.count());
        p.fold(&m, 0, &[0, 5, 10, 11, 30, 31], &[100.0, 1.0, 2.0, f64::NAN, 4.0, 100.0]);
        p.fold(&m, 1, &[12], &[-3.0]);
        // (0, 10]: 5 and 10; (10, 20]: NaN skipped; (20, 30]: 30. 0 and 31 are outside.
        assert_eq!(p.count.as_slice(), &[2, 0, 1, 0, 1, 0]);
        assert_eq!(p.sum.as_slice(), &[3.0, 0.0, 4.0, 0.0, -3.0, 0.0]);
        assert_eq!(p.sum2.as_slice(), &[5.0, 0.0, 16.0, 0.0, 9.0, 0.0]);
        assert_eq!((p.min[0], p.max[0], p.min[1], p.max[4]), (1.0, 2.0, f64::INFINITY, -3.0));
        let mut q = BucketPartials::new(PartialFields::ALL, 6);
        q.fold(&m, 0, &[1], &[-1.0]);
        p.merge(&q);
        assert_eq!((p.count[0], p.sum[0], p.min[0]), (3, 2.0, -1.0));
    }

    #[test]
    fn only_requested_fields_are_kept_and_overlapping_buckets_each_get_a_point() {
        let m = BucketLayout::new(TimeRange::new(0, 30), 10, 20, BucketLayout::END).unwrap();
        let mut p = BucketPartials::new(PartialFields::MAX, m.count());
        assert!(p.sum.is_empty() && p.min.is_empty());
        p.fold(&m, 0, &[5, 15], &[1.0, 2.0]);
        // 5 feeds (−10, 10] and (0, 20]; 15 feeds (0, 20] and (10, 30].
        assert_eq!(p.count.as_slice(), &[1, 2, 1]);
        assert_eq!(p.max.as_slice(), &[1.0, 2.0, 2.0]);
        assert!(p.validate(3, PartialFields::MAX).is_ok());
        assert!(p.validate(4, PartialFields::MAX).is_err());
        assert!(p.validate(3, PartialFields::MAX | PartialFields::SUM).is_err(), "a requested column missing");
    }
}
