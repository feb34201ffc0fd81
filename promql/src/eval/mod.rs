//! Evaluation of a parsed query over the series read for its selections.
//!
//! As in Prometheus' engine, every node evaluates to a matrix holding its
//! value at each evaluation time (a scalar is one series without labels);
//! operators and functions then work step by step over the vectors of
//! their operands at that time ([`Evaluator::range_eval`]).
//!
//! - [`functions`]: functions over instant vectors and scalars.
//! - [`range_fns`]: functions over range vectors (`rate`, `*_over_time` …).
//! - [`aggregate`]: aggregation operators.
//! - [`binary`]: arithmetic, comparison and set operators.
//! - [`quantile`]: the quantile estimations and Kahan summation.
//! - [`parallel`]: per-series work spread over the cores, within the
//!   deadline and the sample limit.
//! - [`reduce`]: range functions applied by the host as series are read.

mod aggregate;
mod binary;
mod functions;
mod parallel;
mod quantile;
mod range_fns;
mod reduce;

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{Expr, MatrixSelector, VectorSelector};

use self::parallel::Clock;
pub use self::reduce::{reductions, ReadSamples, ReadSeries, Reduction};
use crate::error::Error;
use crate::plan::{self, duration_ms, offset_ms, EvalRange};
use crate::value::{Labels, RangeSeries, Sample, Value};

/// Samples a query may hold at once, at most.
pub const MAX_SAMPLES: usize = 50_000_000;

/// The NaN Prometheus writes to mark a series stale; never a value.
const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Evaluates `expr` over `range`, `data[i]` being the series read for the
/// `i`th of [`crate::selections`]: an instant query (`step_ms == 0`,
/// `start == end`) answers what the expression is; a range query answers a
/// matrix.
pub fn evaluate(expr: &Expr, range: &EvalRange, data: &[Vec<RangeSeries>]) -> Result<Value, Error> {
    evaluate_until(expr, range, data, None)
}

/// [`evaluate`], stopping with [`Error::Timeout`] once `deadline` has
/// passed: the work of a query whose client has been answered must not
/// go on. A large query runs on up to eight threads of its own (one per
/// core): call it where blocking is fine.
pub fn evaluate_until(
    expr: &Expr,
    range: &EvalRange,
    data: &[Vec<RangeSeries>],
    deadline: Option<Instant>,
) -> Result<Value, Error> {
    evaluate_with(expr, range, data, HashMap::new(), 0, deadline)
}

/// [`evaluate_until`], `data[i]` holding for each selection that has a
/// [`Reduction`] (`reductions(expr, range)[i]`) what it reduced the
/// selection's series to instead of their samples, sorted by labels.
pub fn evaluate_reduced(
    expr: &Expr,
    range: &EvalRange,
    mut data: Vec<Vec<RangeSeries>>,
    deadline: Option<Instant>,
) -> Result<Value, Error> {
    let mut reduced = HashMap::new();
    // Held from the start: they are all held until their calls take them.
    let mut held = 0usize;
    for (i, reduction) in reductions(expr, range).iter().enumerate() {
        if let (Some(_), Some(series)) = (reduction, data.get_mut(i)) {
            held = series.iter().fold(held, |n, s| n.saturating_add(s.samples.len()));
            reduced.insert(i, Some(std::mem::take(series)));
        }
    }
    if held > MAX_SAMPLES {
        return Err(Error::TooManySamples { limit: MAX_SAMPLES });
    }
    evaluate_with(expr, range, &data, reduced, held, deadline)
}

fn evaluate_with(
    expr: &Expr,
    range: &EvalRange,
    data: &[Vec<RangeSeries>],
    reduced: HashMap<usize, Option<Vec<RangeSeries>>>,
    held: usize,
    deadline: Option<Instant>,
) -> Result<Value, Error> {
    plan::check(expr, is_supported_function)?;
    range.validate().map_err(|e| Error::Invalid(e.to_string()))?;
    // As in Prometheus, a step of 0 is an instant query.
    let instant = range.is_instant();
    let step = if instant { 1 } else { range.step_ms };
    let clock = Clock::new(deadline);
    let mut index = HashMap::new();
    plan::walk(expr, |node, _| {
        let vs = match node {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &ms.vs,
            _ => return,
        };
        let next = index.len();
        index.insert(reduce::address(vs), next);
    });
    let mut ev = Evaluator {
        start: range.start_ms,
        end: range.end_ms,
        step,
        lookback: range.lookback_ms,
        data,
        reduced,
        index,
        held,
        clock,
    };
    let kind = expr.value_type();
    let val = ev.eval(expr)?;
    let mat = match (val, kind) {
        (Val::Str(s), _) if instant => return Ok(Value::String { t: ev.start, value: s }),
        (Val::Str(_), _) => return Err(range_type_error("string")),
        (Val::Matrix(m), _) => m,
    };
    if !instant {
        if kind == ValueType::Matrix {
            return Err(range_type_error("range vector"));
        }
        return Ok(Value::Matrix(sorted_matrix(mat)));
    }
    match kind {
        ValueType::Scalar => {
            let v = mat.first().and_then(|s| s.points.first()).map_or(f64::NAN, |p| p.v);
            Ok(Value::Scalar(Sample { t: ev.start, v }))
        }
        ValueType::Matrix => Ok(Value::Matrix(sorted_matrix(mat))),
        _ => {
            let mut out: Vec<(Labels, Sample)> = mat
                .into_iter()
                .filter_map(|s| {
                    let v = s.points.first()?.v;
                    Some((Rc::unwrap_or_clone(s.labels), Sample { t: ev.start, v }))
                })
                .collect();
            // sort() and sort_desc() answer in their order; else by labels,
            // for answers that do not change from one run to the next.
            if !is_sort_call(expr) {
                out.sort_by(|a, b| a.0.cmp(&b.0));
            }
            Ok(Value::Vector(out))
        }
    }
}

/// Whether this node evaluates function `name` (for [`plan::check`]).
pub(crate) fn is_supported_function(name: &str) -> bool {
    range_fns::RangeFn::from_name(name).is_some() || functions::is_instant_function(name)
}

fn range_type_error(kind: &str) -> Error {
    Error::Invalid(format!("invalid expression type \"{kind}\" for range query, must be Scalar or instant Vector"))
}

fn is_sort_call(expr: &Expr) -> bool {
    match expr {
        Expr::Paren(p) => is_sort_call(&p.expr),
        Expr::Call(c) => matches!(c.func.name, "sort" | "sort_desc"),
        _ => false,
    }
}

fn sorted_matrix(mat: Matrix) -> Vec<RangeSeries> {
    let mut out: Vec<RangeSeries> =
        mat.into_iter().map(|s| RangeSeries { labels: Rc::unwrap_or_clone(s.labels), samples: s.points }).collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

/// A series during evaluation; labels are shared between steps.
#[derive(Clone, Debug)]
pub(crate) struct Series {
    pub labels: Rc<Labels>,
    pub points: Vec<Sample>,
}

/// A node's value at every step.
pub(crate) type Matrix = Vec<Series>;

/// One element of an instant vector: a series' labels and its value at
/// one step (`t` is the sample's own time only for `timestamp()`).
#[derive(Clone, Debug)]
pub(crate) struct Elem {
    pub labels: Rc<Labels>,
    pub t: i64,
    pub v: f64,
}

/// An instant vector: the elements of one step.
pub(crate) type Vector = Vec<Elem>;

/// What a node evaluates to.
pub(crate) enum Val {
    Matrix(Matrix),
    Str(String),
}

pub(crate) struct Evaluator<'a> {
    pub start: i64,
    pub end: i64,
    pub step: i64,
    lookback: i64,
    /// The selections' series.
    data: &'a [Vec<RangeSeries>],
    /// By index in `data`: the selections reduced as they were read
    /// ([`evaluate_reduced`]), until their call takes them (their values
    /// are held from the start).
    reduced: HashMap<usize, Option<Vec<RangeSeries>>>,
    /// Selector node address → index of its selection in `data`.
    index: HashMap<usize, usize>,
    /// Samples held now, against [`MAX_SAMPLES`].
    held: usize,
    /// When to stop (looked at as samples are held).
    clock: Clock,
}

impl<'a> Evaluator<'a> {
    /// The evaluation times: start, start + step, … ≤ end.
    pub fn times(&self) -> impl Iterator<Item = i64> {
        times(self.start, self.end, self.step)
    }

    /// The index of the step at time `t`.
    pub fn step_of(&self, t: i64) -> usize {
        usize::try_from(t.saturating_sub(self.start) / self.step.max(1)).unwrap_or(0)
    }

    /// Takes `n` more samples, failing past [`MAX_SAMPLES`].
    pub fn hold(&mut self, n: usize) -> Result<(), Error> {
        self.tick()?;
        self.held = self.held.saturating_add(n);
        if self.held > MAX_SAMPLES {
            return Err(Error::TooManySamples { limit: MAX_SAMPLES });
        }
        Ok(())
    }

    /// Fails with [`Error::Timeout`] once past the deadline (see
    /// [`Clock::tick`]).
    pub fn tick(&mut self) -> Result<(), Error> {
        self.clock.tick()
    }

    /// `work` for each of `series` (see [`parallel::map_series`]), within
    /// this evaluation's deadline and sample limit; the results in series
    /// order, their samples held.
    pub(crate) fn map_series<T, S, F>(&mut self, series: &[RangeSeries], work: F) -> Result<Vec<T>, Error>
    where
        T: Send,
        S: Default,
        F: Fn(&[Sample], &mut S, &mut parallel::Worker<'_>) -> Result<T, Error> + Sync,
    {
        let room = MAX_SAMPLES.saturating_sub(self.held);
        let (out, held) = parallel::map_series(series, self.clock, room, work)?;
        self.held = self.held.saturating_add(held);
        Ok(out)
    }

    /// Gives back the samples of a matrix no longer needed.
    pub fn release(&mut self, m: &Matrix) {
        self.release_n(m.iter().map(|s| s.points.len()).sum());
    }

    /// Gives back `n` samples.
    pub fn release_n(&mut self, n: usize) {
        self.held = self.held.saturating_sub(n);
    }

    pub fn eval(&mut self, expr: &Expr) -> Result<Val, Error> {
        match expr {
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::NumberLiteral(n) => {
                let v = n.val;
                Ok(Val::Matrix(self.range_eval(Vec::new(), |_, _, _| Ok(vec![scalar_elem(v)]))?))
            }
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::VectorSelector(vs) => Ok(Val::Matrix(self.vector_selector(vs)?)),
            Expr::MatrixSelector(ms) => Ok(Val::Matrix(self.matrix_selector(ms)?)),
            Expr::Unary(u) => {
                let mut m = self.eval_matrix(&u.expr)?;
                for s in &mut m {
                    s.labels = Rc::new(s.labels.without_name());
                    s.points.iter_mut().for_each(|p| p.v = -p.v);
                }
                check_unique(&m)?;
                Ok(Val::Matrix(m))
            }
            Expr::Binary(b) => Ok(Val::Matrix(self.binary(b)?)),
            Expr::Aggregate(a) => Ok(Val::Matrix(self.aggregate(a)?)),
            Expr::Call(c) => Ok(Val::Matrix(self.call(c)?)),
            Expr::Subquery(_) => Err(Error::Unsupported("subqueries".into())),
            Expr::Extension(_) => Err(Error::Unsupported("extension expressions".into())),
        }
    }

    /// Evaluates a node that is not a string.
    pub fn eval_matrix(&mut self, expr: &Expr) -> Result<Matrix, Error> {
        match self.eval(expr)? {
            Val::Matrix(m) => Ok(m),
            Val::Str(_) => Err(Error::Execution("expected a number or vector, got a string".into())),
        }
    }

    /// A scalar node's value at each step (NaN where it has none).
    pub fn eval_scalar_steps(&mut self, expr: &Expr) -> Result<Vec<f64>, Error> {
        let m = self.eval_matrix(expr)?;
        let mut out = vec![f64::NAN; self.times().count()];
        if let Some(s) = m.first() {
            for p in &s.points {
                if let Some(slot) = out.get_mut(self.step_of(p.t)) {
                    *slot = p.v;
                }
            }
        }
        self.release(&m);
        Ok(out)
    }

    /// The index in `data` of a selector's selection.
    fn selection_of(&self, vs: &VectorSelector) -> Result<usize, Error> {
        let at = reduce::address(vs);
        self.index.get(&at).copied().ok_or_else(|| Error::Execution("selector not found among the selections".into()))
    }

    /// What a selection was reduced to as it was read, if it was; taken
    /// (its call is evaluated once).
    pub(crate) fn reduced_of(&mut self, vs: &VectorSelector) -> Result<Option<Vec<RangeSeries>>, Error> {
        match self.reduced.get_mut(&self.selection_of(vs)?) {
            None => Ok(None),
            Some(slot) => {
                slot.take().map(Some).ok_or_else(|| Error::Execution("a reduced selection read twice".into()))
            }
        }
    }

    /// The series read for a selector, borrowed from the data (see
    /// [`in_order`] before using their samples).
    pub fn series_of(&self, vs: &VectorSelector) -> Result<&'a [RangeSeries], Error> {
        let data = self.data;
        Ok(data.get(self.selection_of(vs)?).map_or(&[], |d| d.as_slice()))
    }

    /// An instant vector selector at every step: each series' latest
    /// sample in `[t - offset - lookback, t - offset]`, at time `t`.
    fn vector_selector(&mut self, vs: &VectorSelector) -> Result<Matrix, Error> {
        let (offset, lookback) = (offset_ms(vs), self.lookback);
        let times: Vec<i64> = self.times().collect();
        let data = self.series_of(vs)?;
        let points = self.map_series(data, |samples, scratch: &mut Vec<Sample>, worker| {
            let samples = in_order(samples, false, scratch);
            let mut points = Vec::new();
            // The steps move forward, so the latest sample does too:
            // `samples[..i]` are those at or before the step's time.
            let mut i = 0;
            for &t in &times {
                worker.tick()?;
                let at = t.saturating_sub(offset);
                while samples.get(i).is_some_and(|p| p.t <= at) {
                    i += 1;
                }
                let latest = i.checked_sub(1).and_then(|j| samples.get(j));
                if let Some(p) = latest.filter(|p| p.t >= at.saturating_sub(lookback) && !is_stale(p.v)) {
                    points.push(Sample { t, v: p.v });
                }
            }
            worker.hold(points.len())?;
            Ok(points)
        })?;
        Ok(data
            .iter()
            .zip(points)
            .filter(|(_, points)| !points.is_empty())
            .map(|(s, points)| Series { labels: Rc::new(s.labels.clone()), points })
            .collect())
    }

    /// A range selector, evaluated only at the start (an instant query):
    /// each series' samples in `[t - offset - range, t - offset]`.
    fn matrix_selector(&mut self, ms: &MatrixSelector) -> Result<Matrix, Error> {
        let maxt = self.start.saturating_sub(offset_ms(&ms.vs));
        let mint = maxt.saturating_sub(duration_ms(&ms.range));
        let data = self.series_of(&ms.vs)?;
        let mut out = Matrix::new();
        let mut scratch = Vec::new();
        for s in data {
            let samples = in_order(&s.samples, true, &mut scratch);
            let points: Vec<Sample> = window(samples, mint, maxt).to_vec();
            self.hold(points.len())?;
            if !points.is_empty() {
                out.push(Series { labels: Rc::new(s.labels.clone()), points });
            }
        }
        Ok(out)
    }

    /// Calls `f` at each step with the vectors of `args` at that step and
    /// collects what it answers into series; gives back the arguments.
    /// `f` gets the step's index and time.
    pub fn range_eval(
        &mut self,
        args: Vec<Matrix>,
        mut f: impl FnMut(usize, i64, &[Vector]) -> Result<Vector, Error>,
    ) -> Result<Matrix, Error> {
        let mut cursors: Vec<Vec<usize>> = args.iter().map(|m| vec![0; m.len()]).collect();
        let mut vectors: Vec<Vector> = vec![Vec::new(); args.len()];
        let mut out = Matrix::new();
        let mut position: HashMap<Rc<Labels>, usize> = HashMap::new();
        let times: Vec<i64> = self.times().collect();
        for (step, &t) in times.iter().enumerate() {
            for ((m, cursor), vector) in args.iter().zip(cursors.iter_mut()).zip(vectors.iter_mut()) {
                vector.clear();
                for (s, c) in m.iter().zip(cursor.iter_mut()) {
                    // Points are in step order, so a cursor per series suffices.
                    if let Some(p) = s.points.get(*c).filter(|p| p.t == t) {
                        vector.push(Elem { labels: s.labels.clone(), t: p.t, v: p.v });
                        *c += 1;
                    }
                }
            }
            let result = f(step, t, &vectors)?;
            check_unique_vector(&result)?;
            self.hold(result.len())?;
            for e in result {
                let i = *position.entry(e.labels.clone()).or_insert_with(|| {
                    out.push(Series { labels: e.labels.clone(), points: Vec::new() });
                    out.len() - 1
                });
                if let Some(s) = out.get_mut(i) {
                    s.points.push(Sample { t, v: e.v });
                }
            }
        }
        for m in &args {
            self.release(m);
        }
        Ok(out)
    }
}

/// An element without labels: a scalar's value at one step.
pub(crate) fn scalar_elem(v: f64) -> Elem {
    Elem { labels: Rc::new(Labels::default()), t: 0, v }
}

pub(crate) fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// `start`, `start + step`, … ≤ `end` (a step of at least 1).
pub(crate) fn times(start: i64, end: i64, step: i64) -> impl Iterator<Item = i64> {
    let step = step.max(1);
    std::iter::successors(Some(start), move |t: &i64| t.checked_add(step)).take_while(move |t| *t <= end)
}

/// A series' samples in time order, without staleness markers when
/// `drop_stale`: borrowed when they already are so (always, from this
/// node's backends), else put right in `scratch`. The host promises time
/// order; this puts it right rather than answer wrong. Checked series by
/// series just before use (one pass over samples that are then in cache),
/// not over all the data up front (a pass through memory of its own).
pub(crate) fn in_order<'s>(samples: &'s [Sample], drop_stale: bool, scratch: &'s mut Vec<Sample>) -> &'s [Sample] {
    let (mut prev, mut ordered, mut stale) = (i64::MIN, true, false);
    for p in samples {
        ordered &= prev <= p.t;
        stale |= is_stale(p.v);
        prev = p.t;
    }
    if ordered && !(drop_stale && stale) {
        return samples;
    }
    put_in_order(samples.iter().copied(), drop_stale, ordered, scratch);
    scratch
}

/// `samples` into `scratch`, without staleness markers when `drop_stale`,
/// sorted by time unless already `ordered`: how [`in_order`] (and the
/// reading of a backend's columns) puts a series right.
pub(crate) fn put_in_order(
    samples: impl Iterator<Item = Sample>,
    drop_stale: bool,
    ordered: bool,
    scratch: &mut Vec<Sample>,
) {
    scratch.clear();
    scratch.extend(samples.filter(|p| !(drop_stale && is_stale(p.v))));
    if !ordered {
        // Stable: samples of one time keep the order they were read in.
        scratch.sort_by_key(|p| p.t);
    }
}

/// The samples of `samples` (in time order) in `[mint, maxt]`.
pub(crate) fn window(samples: &[Sample], mint: i64, maxt: i64) -> &[Sample] {
    let lo = samples.partition_point(|p| p.t < mint);
    let hi = samples.partition_point(|p| p.t <= maxt);
    samples.get(lo..hi.max(lo)).unwrap_or(&[])
}

/// The latest sample at or before `t`, if no older than `lookback` and
/// not a staleness marker.
pub(crate) fn latest_sample(samples: &[Sample], t: i64, lookback: i64) -> Option<Sample> {
    let i = samples.partition_point(|p| p.t <= t);
    let p = *samples.get(i.checked_sub(1)?)?;
    (p.t >= t.saturating_sub(lookback) && !is_stale(p.v)).then_some(p)
}

const SAME_LABELSET: &str = "vector cannot contain metrics with the same labelset";

/// Prometheus refuses a result holding two series with the same labels.
pub(crate) fn check_unique(m: &Matrix) -> Result<(), Error> {
    let mut seen = foldhash::HashSet::with_capacity_and_hasher(m.len(), Default::default());
    if m.iter().all(|s| seen.insert(&*s.labels)) {
        Ok(())
    } else {
        Err(Error::Execution(SAME_LABELSET.into()))
    }
}

fn check_unique_vector(v: &Vector) -> Result<(), Error> {
    if v.len() < 2 {
        return Ok(());
    }
    let mut seen = foldhash::HashSet::with_capacity_and_hasher(v.len(), Default::default());
    if v.iter().all(|e| seen.insert(&*e.labels)) {
        Ok(())
    } else {
        Err(Error::Execution(SAME_LABELSET.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An evaluator over no data.
    fn evaluator(start: i64, end: i64, step: i64) -> Evaluator<'static> {
        Evaluator {
            start,
            end,
            step,
            lookback: 0,
            data: &[],
            reduced: HashMap::new(),
            index: HashMap::new(),
            held: 0,
            clock: Clock::new(None),
        }
    }

    #[test]
    fn holding_more_than_the_limit_fails() {
        let mut ev = evaluator(0, 0, 1);
        assert!(ev.hold(MAX_SAMPLES).is_ok());
        assert_eq!(ev.hold(1), Err(Error::TooManySamples { limit: MAX_SAMPLES }));
        ev.release_n(10);
        assert!(ev.hold(5).is_ok());
    }

    #[test]
    fn times_stop_at_the_end_without_overflow() {
        let ev = evaluator(i64::MAX - 5, i64::MAX, 4);
        assert_eq!(ev.times().collect::<Vec<_>>(), [i64::MAX - 5, i64::MAX - 1]);
    }
}
