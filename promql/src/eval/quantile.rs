//! Quantile estimation as Prometheus 2.42 does it (`promql/quantile.go`):
//! over the buckets of a classic histogram, and over a set of values; and
//! the Kahan summation its `*_over_time` functions use.

use std::cmp::Ordering;

/// One bucket of a classic histogram: its upper bound (`le`) and the
/// cumulative count of observations up to it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Bucket {
    pub upper: f64,
    pub count: f64,
}

/// The `q` quantile of a histogram's buckets (Prometheus' `bucketQuantile`):
/// linear interpolation inside the bucket holding the rank, the first
/// bucket starting at 0 (when its upper bound is positive), the rank in
/// the `+Inf` bucket answering the largest finite upper bound. NaN without
/// a `+Inf` bucket, with fewer than two buckets or no observations.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.upper.total_cmp(&b.upper));
    if !buckets.last().is_some_and(|b| b.upper == f64::INFINITY) {
        return f64::NAN;
    }
    coalesce(buckets);
    ensure_monotonic(buckets);
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let n = buckets.len();
    let observations = buckets[n - 1].count;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // The first bucket (not the +Inf one) whose count reaches the rank.
    let b = buckets[..n - 1].partition_point(|x| x.count < rank);
    if b == n - 1 {
        return buckets[n - 2].upper;
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return buckets[0].upper;
    }
    let (mut start, end, mut count) = (0.0, buckets[b].upper, buckets[b].count);
    if b > 0 {
        start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    start + (end - start) * (rank / count)
}

/// Merges buckets with the same upper bound (sorted input), adding counts.
fn coalesce(buckets: &mut Vec<Bucket>) {
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match out.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => out.push(*b),
        }
    }
    *buckets = out;
}

/// Raises counts that decrease along the buckets (precision loss or
/// scrapes of buckets at different times) to the running maximum.
fn ensure_monotonic(buckets: &mut [Bucket]) {
    let Some(mut max) = buckets.first().map(|b| b.count) else { return };
    for b in buckets.iter_mut().skip(1) {
        if b.count > max {
            max = b.count;
        } else if b.count < max {
            b.count = max;
        }
    }
}

/// Orders NaN first, then ascending (Prometheus' `vectorByValueHeap`).
pub(crate) fn nan_first(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// The `q` quantile of `values` (Prometheus' `quantile`): rank
/// `q × (n − 1)` in the sorted values, interpolated linearly.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| nan_first(*a, *b));
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (n - 1.0).min(lower + 1.0);
    let weight = rank - rank.floor();
    let at = |i: f64| values.get(i as usize).copied().unwrap_or(f64::NAN);
    at(lower) * (1.0 - weight) + at(upper) * weight
}

/// One step of Kahan-Babuška summation: `(sum, compensation)` after
/// adding `inc`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() { c + ((sum - t) + inc) } else { c + ((inc - t) + sum) };
    (t, c)
}
