//! Functions over range vectors (Prometheus 2.42's `promql/functions.go`):
//! `rate`, `increase`, `delta` with Prometheus' extrapolation, `irate`,
//! `idelta`, the `*_over_time` family, `changes`, `resets`, `deriv`,
//! `predict_linear` and `absent_over_time`. Each series' window is
//! computed per step, then the function applies to its samples.

use std::rc::Rc;

use promql_parser::label::MatchOp;
use promql_parser::parser::{Expr, MatrixSelector};

use super::parallel::Worker;
use super::quantile::{kahan_inc, quantile};
use super::{check_unique, in_order, is_stale, put_in_order, Evaluator, Matrix, Series};
use crate::error::Error;
use crate::plan::{duration_ms, matchers_with_name, offset_ms};
use crate::value::{Labels, Sample, METRIC_NAME};

/// A function whose (main) argument is a range vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RangeFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Avg,
    Min,
    Max,
    Sum,
    Count,
    Last,
    Quantile,
    Stddev,
    Stdvar,
    Present,
    Changes,
    Resets,
    Deriv,
    PredictLinear,
    AbsentOverTime,
}

impl RangeFn {
    pub(crate) fn from_name(name: &str) -> Option<RangeFn> {
        use RangeFn as F;
        Some(match name {
            "rate" => F::Rate,
            "increase" => F::Increase,
            "delta" => F::Delta,
            "irate" => F::Irate,
            "idelta" => F::Idelta,
            "avg_over_time" => F::Avg,
            "min_over_time" => F::Min,
            "max_over_time" => F::Max,
            "sum_over_time" => F::Sum,
            "count_over_time" => F::Count,
            "last_over_time" => F::Last,
            "quantile_over_time" => F::Quantile,
            "stddev_over_time" => F::Stddev,
            "stdvar_over_time" => F::Stdvar,
            "present_over_time" => F::Present,
            "changes" => F::Changes,
            "resets" => F::Resets,
            "deriv" => F::Deriv,
            "predict_linear" => F::PredictLinear,
            "absent_over_time" => F::AbsentOverTime,
            _ => return None,
        })
    }
}

/// What a range function needs besides the window.
struct Ctx {
    /// The evaluation time.
    t: i64,
    /// The selector's range and offset (ms).
    range: i64,
    offset: i64,
    /// A scalar argument's value at this step (φ, or the seconds ahead).
    scalar: f64,
    /// `rate` and `increase`: the values before the window's counter
    /// resets, summed (from the series' running sums, so that a window
    /// costs the same whatever its length).
    resets: f64,
}

/// `sums[i]`: the values before the counter resets among the first `i + 1`
/// `values`, summed in order (a reset is a drop: the value before it is
/// added back).
fn reset_sums(values: impl Iterator<Item = f64>, sums: &mut Vec<f64>) {
    sums.clear();
    let (mut total, mut prev) = (0.0, f64::NAN);
    // Extended from an iterator of known length: written without a check
    // of the capacity per value. Nothing comes before the first value (a
    // NaN compares false); a select rather than a branch: a noisy series
    // resets at random.
    sums.extend(values.map(|v| {
        total += if v < prev { prev } else { 0.0 };
        prev = v;
        total
    }));
}

/// A series' points in time order without staleness markers, as the walk
/// over its windows reads them.
trait Points {
    fn len(&self) -> usize;
    fn t(&self, i: usize) -> i64;
    fn v(&self, i: usize) -> f64;
    /// Points `lo..hi` as samples, when they are held so.
    fn samples(&self, lo: usize, hi: usize) -> Option<&[Sample]>;
}

impl Points for [Sample] {
    fn len(&self) -> usize {
        <[Sample]>::len(self)
    }
    fn t(&self, i: usize) -> i64 {
        self[i].t
    }
    fn v(&self, i: usize) -> f64 {
        self[i].v
    }
    fn samples(&self, lo: usize, hi: usize) -> Option<&[Sample]> {
        self.get(lo..hi)
    }
}

/// A backend's columns (of one length), read in place: only the window
/// ends' values are looked at, which is all `rate`, `increase` and
/// `delta` need.
struct Columns<'a> {
    times: &'a [i64],
    values: &'a [f64],
}

impl Points for Columns<'_> {
    fn len(&self) -> usize {
        self.times.len()
    }
    fn t(&self, i: usize) -> i64 {
        self.times[i]
    }
    fn v(&self, i: usize) -> f64 {
        self.values[i]
    }
    fn samples(&self, _: usize, _: usize) -> Option<&[Sample]> {
        None
    }
}

/// What every series of one range function call shares.
pub(crate) struct Call<'c> {
    pub f: RangeFn,
    /// The evaluation times.
    pub times: &'c [i64],
    /// The selector's range and offset (ms).
    pub range: i64,
    pub offset: i64,
    /// A scalar argument's value at each step (empty without one).
    pub scalars: &'c [f64],
}

/// Buffers a thread reuses from series to series.
#[derive(Default)]
pub(crate) struct Scratch {
    /// A series' samples put in order or without staleness markers
    /// ([`in_order`]), or copied out of a backend's columns.
    unstale: Vec<Sample>,
    /// [`reset_sums`] of the series.
    sums: Vec<f64>,
}

impl Call<'_> {
    /// How many steps have a window that can hold a sample of `samples`
    /// (in time order): those whose window ends at or after the first and
    /// starts at or before the last.
    fn steps_within(&self, points: &(impl Points + ?Sized)) -> usize {
        let Some(last) = points.len().checked_sub(1) else { return 0 };
        let (first, last) = (points.t(0), points.t(last));
        let from = self.times.partition_point(|&t| t.saturating_sub(self.offset) < first);
        let to = self.times.partition_point(|&t| t.saturating_sub(self.offset).saturating_sub(self.range) <= last);
        to.saturating_sub(from)
    }

    /// The function's value at each step over one series' samples.
    pub(crate) fn series(
        &self,
        samples: &[Sample],
        scratch: &mut Scratch,
        worker: &mut Worker,
    ) -> Result<Vec<Sample>, Error> {
        let samples = in_order(samples, true, &mut scratch.unstale);
        self.ordered_series(samples, &mut scratch.sums, worker)
    }

    /// [`series`](Self::series) of samples a backend answered as columns
    /// of timestamps and values (the same length). `rate`, `increase` and
    /// `delta` read columns in time order without staleness markers (what
    /// backends answer) in place; otherwise they are copied into the
    /// thread's buffer and put right there, as [`in_order`] does.
    pub(crate) fn columns(
        &self,
        times: &[i64],
        values: &[f64],
        scratch: &mut Scratch,
        worker: &mut Worker,
    ) -> Result<Vec<Sample>, Error> {
        let n = times.len().min(values.len());
        let (times, values) = (&times[..n], &values[..n]);
        let ordered = times.windows(2).all(|w| w[0] <= w[1]);
        let stale = values.iter().any(|&v| is_stale(v));
        if ordered && !stale && matches!(self.f, RangeFn::Rate | RangeFn::Increase | RangeFn::Delta) {
            return self.ordered_series(&Columns { times, values }, &mut scratch.sums, worker);
        }
        let samples = times.iter().zip(values).map(|(&t, &v)| Sample { t, v });
        put_in_order(samples, true, ordered, &mut scratch.unstale);
        self.ordered_series(&*scratch.unstale, &mut scratch.sums, worker)
    }

    /// [`series`](Self::series) of points in time order without
    /// staleness markers (columns only for `rate`, `increase` and
    /// `delta`); `sums` is reused for their [`reset_sums`].
    fn ordered_series(
        &self,
        points: &(impl Points + ?Sized),
        sums: &mut Vec<f64>,
        worker: &mut Worker,
    ) -> Result<Vec<Sample>, Error> {
        let f = self.f;
        let counter = matches!(f, RangeFn::Rate | RangeFn::Increase);
        let n = points.len();
        if counter {
            reset_sums((0..n).map(|i| points.v(i)), sums);
        }
        let sums = &*sums;
        // Reserved for the steps whose window can reach a sample (not for
        // every step: a short series would hold the capacity of all of
        // them, uncounted), so that the values are not grown by doubling.
        let mut out = Vec::with_capacity(self.steps_within(points));
        // The windows `[t - offset - range, t - offset]` move forward with
        // the steps: their ends only ever advance.
        let (mut lo, mut hi) = (0, 0);
        for (step, &t) in self.times.iter().enumerate() {
            let maxt = t.saturating_sub(self.offset);
            let mint = maxt.saturating_sub(self.range);
            while lo < n && points.t(lo) < mint {
                lo += 1;
            }
            hi = hi.max(lo);
            while hi < n && points.t(hi) <= maxt {
                hi += 1;
            }
            if lo == hi {
                continue;
            }
            // The window is borrowed, not held: only the time is checked.
            worker.tick()?;
            let resets = if counter { sums[hi - 1] - sums[lo] } else { 0.0 };
            let scalar = self.scalars.get(step).copied().unwrap_or(f64::NAN);
            let ctx = Ctx { t, range: self.range, offset: self.offset, scalar, resets };
            let value = match points.samples(lo, hi) {
                Some(window) => apply(f, window, &ctx),
                None => {
                    let (first, last) = (points.t(lo), points.t(hi - 1));
                    let ends = (Sample { t: first, v: points.v(lo) }, Sample { t: last, v: points.v(hi - 1) });
                    extrapolated_ends(f, ends, hi - lo, &ctx)
                }
            };
            if let Some(v) = value {
                out.push(Sample { t, v });
            }
        }
        worker.hold(out.len())?;
        Ok(out)
    }
}

impl Evaluator<'_> {
    /// Evaluates a range function over each series of its range selector.
    pub(crate) fn range_call(&mut self, f: RangeFn, args: &[&Expr]) -> Result<Matrix, Error> {
        let (matrix_at, scalar_at) = match f {
            RangeFn::Quantile => (1, Some(0)),
            RangeFn::PredictLinear => (0, Some(1)),
            _ => (0, None),
        };
        let ms = match args.get(matrix_at).map(|a| unparen(a)) {
            Some(Expr::MatrixSelector(ms)) => ms,
            Some(Expr::Subquery(_)) => return Err(Error::Unsupported("subqueries".into())),
            _ => return Err(Error::Execution("expected a range vector selector".into())),
        };
        let out = match self.reduced_of(&ms.vs)? {
            // Applied as the series were read (see `reduce`).
            Some(reduced) => {
                let mut out = Matrix::new();
                for s in reduced {
                    // Held since evaluation began.
                    self.tick()?;
                    out.push(Series { labels: Rc::new(result_labels(f, s.labels)), points: s.samples });
                }
                out
            }
            None => self.range_call_over_samples(f, ms, scalar_at.and_then(|i| args.get(i)))?,
        };
        if f == RangeFn::AbsentOverTime {
            let absent = self.absent_over_time(&out, args.get(matrix_at).copied());
            self.release(&out);
            return absent;
        }
        check_unique(&out)?;
        Ok(out)
    }

    /// A range function over the samples of its selector's series.
    fn range_call_over_samples(
        &mut self,
        f: RangeFn,
        ms: &MatrixSelector,
        scalar: Option<&&Expr>,
    ) -> Result<Matrix, Error> {
        let scalars = match scalar {
            Some(e) => self.eval_scalar_steps(e)?,
            None => Vec::new(),
        };
        let (range, offset) = (duration_ms(&ms.range), offset_ms(&ms.vs));
        let times: Vec<i64> = self.times().collect();
        let call = Call { f, times: &times, range, offset, scalars: &scalars };
        let series = self.series_of(&ms.vs)?;
        let points = self.map_series(series, |samples, scratch, worker| call.series(samples, scratch, worker))?;
        Ok(series
            .iter()
            .zip(points)
            .filter(|(_, points)| !points.is_empty())
            .map(|(s, points)| Series { labels: Rc::new(result_labels(f, s.labels.clone())), points })
            .collect())
    }

    /// `absent_over_time`: 1 at the steps where no series had a sample.
    fn absent_over_time(&mut self, present: &Matrix, arg: Option<&Expr>) -> Result<Matrix, Error> {
        let times: Vec<i64> = self.times().collect();
        let mut found = vec![false; times.len()];
        for p in present.iter().flat_map(|s| &s.points) {
            if let Some(slot) = found.get_mut(self.step_of(p.t)) {
                *slot = true;
            }
        }
        let points: Vec<Sample> =
            times.iter().zip(&found).filter(|(_, f)| !**f).map(|(&t, _)| Sample { t, v: 1.0 }).collect();
        if points.is_empty() {
            return Ok(Matrix::new());
        }
        self.hold(points.len())?;
        let labels = absent_labels_of(arg);
        Ok(vec![Series { labels: Rc::new(labels), points }])
    }
}

/// The labels of `f`'s result for a series: without the metric name,
/// except for `last_over_time`, which acts like offset and keeps it.
fn result_labels(f: RangeFn, labels: Labels) -> Labels {
    if f == RangeFn::Last {
        labels
    } else {
        labels.into_without_name()
    }
}

/// The function's value over one window (at least one sample), if any.
fn apply(f: RangeFn, w: &[Sample], ctx: &Ctx) -> Option<f64> {
    use RangeFn as F;
    let first = w.first()?;
    let last = w.last()?;
    Some(match f {
        F::Rate => extrapolated_rate(w, ctx, true, true)?,
        F::Increase => extrapolated_rate(w, ctx, true, false)?,
        F::Delta => extrapolated_rate(w, ctx, false, false)?,
        F::Irate => instant_value(w, true)?,
        F::Idelta => instant_value(w, false)?,
        F::Avg => avg(w),
        F::Min => w.iter().fold(first.v, |m, p| if p.v < m || m.is_nan() { p.v } else { m }),
        F::Max => w.iter().fold(first.v, |m, p| if p.v > m || m.is_nan() { p.v } else { m }),
        F::Sum => {
            let (sum, c) = w.iter().fold((0.0, 0.0), |(s, c), p| kahan_inc(p.v, s, c));
            if sum.is_infinite() {
                sum
            } else {
                sum + c
            }
        }
        F::Count => w.len() as f64,
        F::Last => last.v,
        F::Quantile => quantile(ctx.scalar, &mut w.iter().map(|p| p.v).collect::<Vec<_>>()),
        F::Stddev => variance(w).sqrt(),
        F::Stdvar => variance(w),
        F::Present | F::AbsentOverTime => 1.0,
        F::Changes => w.windows(2).filter(|p| p[1].v != p[0].v && !(p[1].v.is_nan() && p[0].v.is_nan())).count() as f64,
        F::Resets => w.windows(2).filter(|p| p[1].v < p[0].v).count() as f64,
        F::Deriv => {
            if w.len() < 2 {
                return None;
            }
            linear_regression(w, first.t).0
        }
        F::PredictLinear => {
            if w.len() < 2 {
                return None;
            }
            let (slope, intercept) = linear_regression(w, ctx.t);
            slope * ctx.scalar + intercept
        }
    })
}

/// Prometheus' `extrapolatedRate`: the increase over the window (counter
/// resets added back for counters), extrapolated towards the range's ends
/// when the first and last samples are within 1.1 average intervals of
/// them (else by half an interval), never below a counter's zero point;
/// per second for `rate`. Needs two samples.
fn extrapolated_rate(w: &[Sample], ctx: &Ctx, is_counter: bool, is_rate: bool) -> Option<f64> {
    extrapolate(*w.first()?, *w.last()?, w.len(), ctx, is_counter, is_rate)
}

/// `rate`, `increase` or `delta` of a window known by its ends and length
/// (all the formula looks at); `None` for another function.
#[inline]
fn extrapolated_ends(f: RangeFn, (first, last): (Sample, Sample), len: usize, ctx: &Ctx) -> Option<f64> {
    match f {
        RangeFn::Rate => extrapolate(first, last, len, ctx, true, true),
        RangeFn::Increase => extrapolate(first, last, len, ctx, true, false),
        RangeFn::Delta => extrapolate(first, last, len, ctx, false, false),
        _ => None,
    }
}

/// [`extrapolated_rate`] of a window of `len` samples from `first` to
/// `last`.
#[inline]
fn extrapolate(first: Sample, last: Sample, len: usize, ctx: &Ctx, is_counter: bool, is_rate: bool) -> Option<f64> {
    if len < 2 {
        return None;
    }
    let range_start = ctx.t.saturating_sub(ctx.range.saturating_add(ctx.offset));
    let range_end = ctx.t.saturating_sub(ctx.offset);
    let mut result = last.v - first.v;
    if is_counter {
        result += ctx.resets;
    }
    let mut to_start = first.t.saturating_sub(range_start) as f64 / 1000.0;
    let to_end = range_end.saturating_sub(last.t) as f64 / 1000.0;
    let sampled = last.t.saturating_sub(first.t) as f64 / 1000.0;
    let average = sampled / (len - 1) as f64;
    if is_counter && result > 0.0 && first.v >= 0.0 {
        // A counter is never negative: extrapolate no further back than
        // where the slope reaches zero.
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold { to_start } else { average / 2.0 };
    interval += if to_end < threshold { to_end } else { average / 2.0 };
    let mut factor = interval / sampled;
    if is_rate {
        factor /= ctx.range as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` / `idelta`: from the last two samples; `irate` takes a drop as
/// a counter reset and answers per second.
fn instant_value(w: &[Sample], is_rate: bool) -> Option<f64> {
    let [.., prev, last] = w else { return None };
    let mut v = if is_rate && last.v < prev.v { last.v } else { last.v - prev.v };
    let interval = last.t.saturating_sub(prev.t);
    if interval == 0 {
        return None;
    }
    if is_rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

/// `avg_over_time`: an incremental, Kahan-compensated mean that keeps an
/// infinite mean rather than turning it into NaN.
fn avg(w: &[Sample]) -> f64 {
    let (mut mean, mut c, mut count) = (0.0f64, 0.0f64, 0.0f64);
    for p in w {
        count += 1.0;
        if mean.is_infinite() {
            if p.v.is_infinite() && (mean > 0.0) == (p.v > 0.0) {
                continue;
            }
            if !p.v.is_infinite() && !p.v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_inc(p.v / count - mean / count, mean, c);
    }
    if mean.is_infinite() {
        mean
    } else {
        mean + c
    }
}

/// The population variance, by Welford's method with Kahan compensation.
fn variance(w: &[Sample]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in w {
        count += 1.0;
        let delta = p.v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (p.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Least-squares slope and intercept (at `intercept_t`), x in seconds.
fn linear_regression(w: &[Sample], intercept_t: i64) -> (f64, f64) {
    let init_y = w.first().map_or(f64::NAN, |p| p.v);
    let const_y = w.iter().all(|p| p.v == init_y);
    let (mut n, mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    for p in w {
        n += 1.0;
        let x = p.t.saturating_sub(intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(p.v, sy, cy);
        (sxy, cxy) = kahan_inc(x * p.v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// Removes the parentheses around an expression (Prometheus unwraps
/// function arguments before looking at them).
pub(crate) fn unparen(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

/// The labels `absent()` answers with: those its selector matches by
/// equality, each named once, the metric name left out.
pub(crate) fn absent_labels_of(arg: Option<&Expr>) -> Labels {
    let vs = match arg.map(unparen) {
        Some(Expr::VectorSelector(vs)) => vs,
        Some(Expr::MatrixSelector(ms)) => &ms.vs,
        _ => return Labels::default(),
    };
    // As Prometheus 2.42: a label matched by equality is set (the first
    // time); a label with any other matcher, or matched twice, is left out.
    let mut out: Vec<(String, String)> = Vec::new();
    let mut dropped: Vec<&str> = Vec::new();
    let matchers = matchers_with_name(vs);
    for m in &matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.op == MatchOp::Equal && !out.iter().any(|(n, _)| n == &m.name) {
            out.push((m.name.clone(), m.value.clone()));
        } else {
            dropped.push(&m.name);
        }
    }
    out.retain(|(n, _)| !dropped.contains(&n.as_str()));
    Labels::new(out)
}
