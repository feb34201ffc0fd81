//! Folding decoded blocks straight into bucket partials (aggregation
//! pushdown), without writing their points out.
//!
//! Why: a block of a gauge sampled at a fixed interval with a few decimals
//! decodes to `first, step` and 32-bit integers (see `block_cache`). The
//! points of one bucket are then a slice of those integers whose ends are
//! found by arithmetic, and their count, sum, sum of squares, min and max
//! are integer loops the compiler vectorises; each is divided by the
//! scale once per bucket instead of once per point. Sums of integers are
//! exact, so the partials are the exact sums rounded once (a point-by-point
//! fold rounds at every addition and may differ in the last bits).
//!
//! Other blocks (irregular timestamps, floats, buckets wider than their
//! spacing) are written out into reused buffers and folded point by point
//! by `BucketPartials::fold`.

use heroic_plugin_api::buckets::{BucketFetchRequest, BucketFetchResponse, BucketLayout, BucketPartials, Cursor};
use heroic_plugin_api::types::TimeRange;

use crate::block_cache::{DecodedBlock, Times, Values};
use crate::error::Result;
use crate::head::Run;
use crate::read::{split, threads_for, Decoder, Plan};
use crate::store::Inner;

/// Series of a read small enough to fold on the calling thread at most
/// (planning them is a lookup each, under the store's read locks).
pub(crate) const SMALL_READ_SERIES: usize = 1_024;

/// Points in range of a small read at most: folded from decoded blocks in
/// well under 100 µs, less than the two thread wake-ups of a hop to the
/// blocking pool and back (the last hour of 100 series is 36,000 points).
pub(crate) const SMALL_READ_POINTS: usize = 65_536;

/// What [`Inner::fetch_buckets_if_small`] did.
pub(crate) enum SmallRead {
    /// The read was small: its answer.
    Done(BucketFetchResponse),
    /// Too many points, or blocks to read from disk: the plans, for
    /// [`Inner::fold_planned`].
    Planned(Vec<Plan>),
    /// Too many series, or too many points in the heads, to plan here.
    NotSmall,
}

impl Inner {
    /// Reads points in `(start, end]` folded into per-bucket partials, one
    /// row of cells per group (see `heroic_plugin_api::buckets`). Series
    /// are split across the cores like a fetch; each thread folds into
    /// partials of its own, merged at the end.
    pub(crate) fn fetch_buckets(&self, req: &BucketFetchRequest) -> Result<BucketFetchResponse> {
        let plans = if req.range.start < req.range.end { self.plan(&req.series, req.range)? } else { Vec::new() };
        self.fold_planned(req, plans)
    }

    /// [`fetch_buckets`](Self::fetch_buckets) on the calling thread when
    /// the read is small: at most [`SMALL_READ_SERIES`] series, all their
    /// blocks decoded in the cache, at most [`SMALL_READ_POINTS`] points in
    /// range, in blocks and heads. Otherwise says how far it got, for the
    /// caller to finish on a thread that may block.
    ///
    /// Planning copies each series' head points in range, so it is done
    /// here only while the heads hold at most [`SMALL_READ_POINTS`] in all
    /// (a quiet node, or one that flushed): a node behind on its flushes
    /// reads as before. A block evicted by another read between the check
    /// and the fold is read from disk here: one block, not worth pinning.
    pub(crate) fn fetch_buckets_if_small(&self, req: &BucketFetchRequest) -> Result<SmallRead> {
        if req.range.start >= req.range.end {
            return self.fold_planned(req, Vec::new()).map(SmallRead::Done);
        }
        if req.series.len() > SMALL_READ_SERIES || self.mem.read().head_points() > SMALL_READ_POINTS {
            return Ok(SmallRead::NotSmall);
        }
        let plans = self.plan(&req.series, req.range)?;
        let points: usize =
            plans.iter().map(|p| p.points_in(req.range) + p.heads.iter().map(Run::len).sum::<usize>()).sum();
        let warm = plans.iter().all(|p| p.blocks.iter().all(|b| self.cache.contains(b.seg.id, b.meta.offset)));
        if points > SMALL_READ_POINTS || !warm {
            return Ok(SmallRead::Planned(plans));
        }
        self.fold_planned(req, plans).map(SmallRead::Done)
    }

    /// Folds what `plans` (of `req`'s series) read.
    pub(crate) fn fold_planned(&self, req: &BucketFetchRequest, mut plans: Vec<Plan>) -> Result<BucketFetchResponse> {
        let mut resp = BucketFetchResponse {
            partials: BucketPartials::new(req.fields, req.cells()),
            ..BucketFetchResponse::default()
        };
        if req.range.start >= req.range.end {
            return Ok(resp);
        }
        let points: usize = plans.iter().map(Plan::block_points).sum();
        // A read that will hit its point limit goes series by series and
        // stops there, instead of deciding block by block.
        let limited = req.point_limit > 0 && points as u64 > req.point_limit;
        let in_range: usize = plans.iter().map(|p| p.points_in(req.range)).sum();
        let threads = threads_for(in_range, plans.len(), limited);
        let fold = |slice: &mut [Plan]| -> Result<BucketFetchResponse> {
            let mut out = BucketFetchResponse {
                partials: BucketPartials::new(req.fields, req.cells()),
                ..BucketFetchResponse::default()
            };
            let mut decoder = Decoder::cached(&self.cache);
            let mut scratch = Run::default();
            for plan in slice {
                let group = req.groups[plan.index] as usize;
                let read =
                    if limited { None } else { fold_blocks(&mut decoder, plan, req, group, &mut out, &mut scratch)? };
                let n = match read {
                    Some(n) => n,
                    None => {
                        let mut run = decoder.series(plan, req.range)?;
                        if req.point_limit > 0 && out.points + run.len() as u64 > req.point_limit {
                            let keep = (req.point_limit - out.points) as usize;
                            run.ts.truncate(keep);
                            run.vals.truncate(keep);
                            out.limited = true;
                        }
                        out.partials.fold(&req.layout, group, &run.ts, &run.vals);
                        run.len()
                    }
                };
                if n > 0 {
                    out.points += n as u64;
                    out.series_with_data.push(plan.index as u32);
                }
                if out.limited {
                    break;
                }
            }
            Ok(out)
        };
        if threads <= 1 {
            return fold(&mut plans);
        }
        let parts = std::thread::scope(|s| {
            let workers: Vec<_> = split(&mut plans, threads).into_iter().map(|slice| s.spawn(|| fold(slice))).collect();
            workers
                .into_iter()
                .map(|w| w.join().map_err(|_| crate::Error::Codec("decoding thread panicked".into()))?)
                .collect::<Result<Vec<_>>>()
        })?;
        for part in parts {
            resp.partials.merge(&part.partials);
            resp.points += part.points;
            resp.series_with_data.extend(part.series_with_data);
        }
        Ok(resp)
    }
}

/// Folds a series whose points are all in blocks that do not overlap in
/// time (the usual case once the head is flushed) block by block; `None`
/// for a series with points in the head or overlapping blocks, which must
/// be merged first (`Decoder::series`).
fn fold_blocks(
    decoder: &mut Decoder,
    plan: &Plan,
    req: &BucketFetchRequest,
    group: usize,
    out: &mut BucketFetchResponse,
    scratch: &mut Run,
) -> Result<Option<usize>> {
    if !plan.heads.is_empty() {
        return Ok(None);
    }
    let mut by_time: Vec<_> = plan.blocks.iter().collect();
    by_time.sort_by_key(|b| b.meta.min_ts);
    if !by_time.windows(2).all(|w| w[0].meta.max_ts < w[1].meta.min_ts) {
        return Ok(None);
    }
    let mut n = 0;
    for b in by_time {
        let block = decoder.block(b)?;
        n += fold_block(&block, req.range, &req.layout, group, &mut out.partials, scratch);
    }
    Ok(Some(n))
}

/// Folds the points of `block` in `range` into row `group` of `out`;
/// returns how many points were in the range. `scratch` is reused.
pub(crate) fn fold_block(
    block: &DecodedBlock,
    range: TimeRange,
    layout: &BucketLayout,
    group: usize,
    out: &mut BucketPartials,
    scratch: &mut Run,
) -> usize {
    let span = block.span(range);
    if let (Times::Regular { first, step, .. }, Values::Scaled32 { divisor, ints }, Some(mut cursor)) =
        (&block.times, &block.values, Cursor::new(layout))
    {
        if *step > 0 {
            let base = group * layout.count();
            let (first, step) = (*first, *step);
            let mut i = span.start;
            while i < span.end {
                let t = first.wrapping_add(step.wrapping_mul(i as i64));
                let (bucket, until) = cursor.bucket_until(t);
                // Indices whose timestamps are at most `until` (in i64
                // when it cannot overflow: an i128 division is a libcall).
                let last = match until.checked_sub(first) {
                    Some(d) => i128::from(d.div_euclid(step)),
                    None => (i128::from(until) - i128::from(first)).div_euclid(i128::from(step)),
                };
                let end = (last + 1).clamp(i as i128 + 1, span.end as i128) as usize;
                if let Some(b) = bucket {
                    fold_ints(&ints[i..end], *divisor, base + b, out);
                }
                i = end;
            }
            return span.len();
        }
    }
    scratch.ts.clear();
    scratch.vals.clear();
    block.append_range(range, &mut scratch.ts, &mut scratch.vals);
    out.fold(layout, group, &scratch.ts, &scratch.vals);
    scratch.ts.len()
}

/// Adds `ints / divisor` (one bucket's points) to `cell`.
fn fold_ints(ints: &[i32], divisor: f64, cell: usize, out: &mut BucketPartials) {
    if ints.is_empty() {
        return;
    }
    out.count[cell] += ints.len() as u64;
    if let Some(sum) = out.sum.get_mut(cell) {
        let total: i64 = ints.iter().map(|&x| i64::from(x)).sum();
        *sum += total as f64 / divisor;
    }
    if let Some(sum2) = out.sum2.get_mut(cell) {
        // x² < 2^62: an i128 holds the sum of any block's squares.
        let total: i128 = ints.iter().map(|&x| i128::from(i64::from(x) * i64::from(x))).sum();
        *sum2 += total as f64 / (divisor * divisor);
    }
    if let Some(min) = out.min.get_mut(cell) {
        let lo = ints.iter().copied().min().unwrap_or(i32::MAX);
        *min = min.min(f64::from(lo) / divisor);
    }
    if let Some(max) = out.max.get_mut(cell) {
        let hi = ints.iter().copied().max().unwrap_or(i32::MIN);
        *max = max.max(f64::from(hi) / divisor);
    }
}

#[cfg(test)]
mod tests {
    use heroic_plugin_api::buckets::PartialFields;

    use super::*;

    /// Every layout and range folds as writing the points out and folding
    /// them one by one does.
    #[test]
    fn the_integer_fold_agrees_with_the_point_fold() {
        let ints: Vec<i32> = (0..500).map(|i| ((i * 7919) % 2001) - 1000).collect();
        let block = DecodedBlock {
            times: Times::Regular { first: 1_005, step: 10, n: ints.len() },
            values: Values::Scaled32 { divisor: 100.0, ints: ints.clone().into() },
        };
        let (mut ts, mut vals) = (Vec::new(), Vec::new());
        block.append_range(TimeRange::ALL, &mut ts, &mut vals);
        for (start, end) in [(0, 10_000), (1_000, 6_000), (1_234, 3_456), (2_000, 2_001), (5_990, 7_000)] {
            let range = TimeRange::new(start, end);
            for (size, strategy) in [(30, BucketLayout::END), (100, BucketLayout::START), (7, BucketLayout::END)] {
                let Some(layout) = BucketLayout::new(range, size, size, strategy) else { continue };
                let cells = 2 * layout.count();
                let mut fast = BucketPartials::new(PartialFields::ALL, cells);
                let n = fold_block(&block, range, &layout, 1, &mut fast, &mut Run::default());
                let mut slow = BucketPartials::new(PartialFields::ALL, cells);
                let keep: Vec<usize> = (0..ts.len()).filter(|&i| range.contains(ts[i])).collect();
                let (t2, v2): (Vec<i64>, Vec<f64>) = keep.iter().map(|&i| (ts[i], vals[i])).unzip();
                slow.fold(&layout, 1, &t2, &v2);
                let what = format!("range {range:?} size {size} strategy {strategy}");
                assert_eq!(n, t2.len(), "{what}");
                assert_eq!(fast.count, slow.count, "{what}");
                for (name, a, b) in [
                    ("sum", &fast.sum, &slow.sum),
                    ("sum2", &fast.sum2, &slow.sum2),
                    ("min", &fast.min, &slow.min),
                    ("max", &fast.max, &slow.max),
                ] {
                    for (x, y) in a.iter().zip(b.iter()) {
                        assert!(x == y || (x - y).abs() <= 1e-9 * y.abs().max(1.0), "{what}: {name} {x} vs {y}");
                    }
                }
            }
        }
    }
}
