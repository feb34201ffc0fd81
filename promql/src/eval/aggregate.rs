//! Aggregation operators (Prometheus 2.42's `aggregation` in
//! `promql/engine.go`): sum, avg, min, max, count, group, stddev, stdvar,
//! topk, bottomk, quantile and count_values, with `by` / `without`.

use std::cmp::Ordering;
use std::rc::Rc;

use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};

use super::parallel;
use super::quantile::quantile;
use super::range_fns::unparen;
use super::{Elem, Evaluator, Matrix, Series, Vector};
use crate::error::Error;
use crate::value::is_label_name;
use crate::value::{Labels, Sample, METRIC_NAME};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Quantile,
    CountValues,
}

impl Op {
    fn from_name(name: &str) -> Option<Op> {
        Some(match name {
            "sum" => Op::Sum,
            "avg" => Op::Avg,
            "min" => Op::Min,
            "max" => Op::Max,
            "count" => Op::Count,
            "group" => Op::Group,
            "stddev" => Op::Stddev,
            "stdvar" => Op::Stdvar,
            "topk" => Op::Topk,
            "bottomk" => Op::Bottomk,
            "quantile" => Op::Quantile,
            "count_values" => Op::CountValues,
            _ => return None,
        })
    }
}

/// How series are grouped: the labels named, and whether they are kept
/// (`by`) or dropped (`without`, which drops the metric name too).
struct Grouping {
    labels: Vec<String>,
    without: bool,
}

impl Grouping {
    /// The labels of the group `labels` falls in (also its key).
    fn of(&self, labels: &Labels) -> Labels {
        if self.without {
            let mut drop: Vec<&str> = self.labels.iter().map(String::as_str).collect();
            drop.push(METRIC_NAME);
            labels.without(&drop)
        } else if self.labels.is_empty() {
            Labels::default()
        } else {
            labels.keep(&self.labels)
        }
    }
}

impl Evaluator<'_> {
    /// Evaluates an aggregation at each step.
    pub(crate) fn aggregate(&mut self, a: &AggregateExpr) -> Result<Matrix, Error> {
        let name = a.op.to_string();
        let op = Op::from_name(&name).ok_or_else(|| Error::Unsupported(format!("aggregation {name}")))?;
        let (mut labels, without) = match &a.modifier {
            None => (Vec::new(), false),
            Some(LabelModifier::Include(l)) => (l.labels.clone(), false),
            Some(LabelModifier::Exclude(l)) => (l.labels.clone(), true),
        };
        // The parameter comes before the operand, as in selections().
        let (mut params, mut value_label) = (Vec::new(), String::new());
        if let Some(p) = &a.param {
            if op == Op::CountValues {
                let Expr::StringLiteral(s) = unparen(p) else {
                    return Err(Error::Execution("count_values needs a string parameter".into()));
                };
                if !is_label_name(&s.val) {
                    return Err(Error::Execution(format!("invalid label name {:?}", s.val)));
                }
                value_label.clone_from(&s.val);
                if !without {
                    labels.push(value_label.clone());
                }
            } else {
                params = self.eval_scalar_steps(p)?;
            }
        }
        labels.sort();
        let grouping = Grouping { labels, without };
        let inner = self.eval_matrix(&a.expr)?;
        if op.folds() {
            return self.fold_by_series(op, &grouping, inner);
        }
        self.range_eval(vec![inner], |step, _, vals| {
            let param = params.get(step).copied().unwrap_or(f64::NAN);
            aggregation(op, &grouping, param, &value_label, vals.first().map_or(&[], |v| v.as_slice()))
        })
    }
}

impl Op {
    /// Whether a group's value is a fold of its elements' values alone
    /// ([`Acc`]), so that it can be computed series by series.
    fn folds(self) -> bool {
        matches!(self, Op::Sum | Op::Avg | Op::Min | Op::Max | Op::Count | Op::Group | Op::Stddev | Op::Stdvar)
    }
}

/// A group's running fold at one step (the operators that [`Op::folds`],
/// and count_values' count).
#[derive(Clone, Copy, Default)]
struct Acc {
    value: f64,
    mean: f64,
    /// Elements folded in; 0 for a step the group has none at.
    count: usize,
}

impl Acc {
    /// Folds `v` in, as Prometheus 2.42 does element after element.
    fn add(&mut self, op: Op, v: f64) {
        if self.count == 0 {
            *self = Acc {
                value: match op {
                    Op::Stddev | Op::Stdvar => 0.0,
                    Op::Group => 1.0,
                    _ => v,
                },
                mean: v,
                count: 1,
            };
            return;
        }
        match op {
            Op::Sum => self.value += v,
            Op::Avg => {
                self.count += 1;
                let keep_infinite = self.mean.is_infinite()
                    && ((v.is_infinite() && (self.mean > 0.0) == (v > 0.0)) || (!v.is_infinite() && !v.is_nan()));
                if !keep_infinite {
                    // Divided on each side to stay clear of overflow.
                    let n = self.count as f64;
                    self.mean += v / n - self.mean / n;
                }
            }
            Op::Max => {
                if self.value < v || self.value.is_nan() {
                    self.value = v;
                }
            }
            Op::Min => {
                if self.value > v || self.value.is_nan() {
                    self.value = v;
                }
            }
            Op::Count | Op::CountValues => self.count += 1,
            Op::Stddev | Op::Stdvar => {
                self.count += 1;
                let delta = v - self.mean;
                self.mean += delta / self.count as f64;
                self.value += delta * (v - self.mean);
            }
            Op::Group | Op::Topk | Op::Bottomk | Op::Quantile => {}
        }
    }

    /// The group's value (for an operator that [`Op::folds`], or counts).
    fn result(&self, op: Op) -> f64 {
        match op {
            Op::Avg => self.mean,
            Op::Count | Op::CountValues => self.count as f64,
            Op::Stdvar => self.value / self.count as f64,
            Op::Stddev => (self.value / self.count as f64).sqrt(),
            _ => self.value,
        }
    }
}

impl Evaluator<'_> {
    /// An aggregation whose groups fold their elements' values, computed
    /// series by series into a row of folds per group (one a step) rather
    /// than step by step over every series: each series' group is found
    /// once, and its points are read in order. Each step's elements are
    /// folded in the order the step-by-step evaluation takes them, so the
    /// answer is the same to the last bit.
    fn fold_by_series(&mut self, op: Op, grouping: &Grouping, inner: Matrix) -> Result<Matrix, Error> {
        let times: Vec<i64> = self.times().collect();
        let steps = times.len();
        let mut position: foldhash::HashMap<Labels, usize> = foldhash::HashMap::default();
        let mut groups: Vec<(Rc<Labels>, Vec<Acc>)> = Vec::new();
        // Each series' points and group, found once.
        let mut folds: Vec<(&[Sample], usize)> = Vec::with_capacity(inner.len());
        for s in &inner {
            let key = grouping.of(&s.labels);
            let g = match position.get(&key) {
                Some(&g) => g,
                None => {
                    self.hold(steps)?;
                    position.insert(key.clone(), groups.len());
                    groups.push((Rc::new(key), vec![Acc::default(); steps]));
                    groups.len() - 1
                }
            };
            folds.push((&s.points, g));
        }
        let (start, step) = (self.start, self.step);
        let mut rows: Vec<&mut [Acc]> = groups.iter_mut().map(|(_, row)| row.as_mut_slice()).collect();
        fold_steps(op, &folds, &mut rows, &times, start, step);
        drop(folds);
        self.release(&inner);
        drop(inner);
        let mut out = Matrix::new();
        for (labels, row) in groups {
            self.release_n(steps);
            let points: Vec<Sample> = times
                .iter()
                .zip(&row)
                .filter(|(_, acc)| acc.count > 0)
                .map(|(&t, acc)| Sample { t, v: acc.result(op) })
                .collect();
            if !points.is_empty() {
                self.hold(points.len())?;
                out.push(Series { labels, points });
            }
        }
        Ok(out)
    }
}

/// Folds each series' points into its group's row (`rows[group][step]`).
/// Over many points, the steps are split between threads: each folds every
/// series into its own steps, in series order, so each step's values are
/// folded in the same order as on one thread.
fn fold_steps(op: Op, folds: &[(&[Sample], usize)], rows: &mut [&mut [Acc]], times: &[i64], start: i64, step: i64) {
    let points: usize = folds.iter().map(|(p, _)| p.len()).sum();
    fold_on_threads(parallel::threads_for(points), op, folds, rows, times, start, step);
}

/// [`fold_steps`] on `threads` threads at most.
fn fold_on_threads(
    threads: usize,
    op: Op,
    folds: &[(&[Sample], usize)],
    rows: &mut [&mut [Acc]],
    times: &[i64],
    start: i64,
    step: i64,
) {
    let threads = threads.min(times.len());
    // A thread finds its steps' points by time: only in points in time
    // order (as evaluation makes them; checked, else one thread).
    if threads <= 1 || !folds.iter().all(|(p, _)| p.is_sorted_by_key(|s| s.t)) {
        for (p, g) in folds {
            fold_points(op, rows[*g], 0, p, times, start, step);
        }
        return;
    }
    // Each thread's share of every row, by steps (`per` steps a share: as
    // many shares as that makes, which can be fewer than `threads`).
    let per = times.len().div_ceil(threads);
    let shares_n = times.len().div_ceil(per);
    let mut shares: Vec<Vec<&mut [Acc]>> = (0..shares_n).map(|_| Vec::with_capacity(rows.len())).collect();
    for row in rows.iter_mut() {
        for (share, part) in shares.iter_mut().zip(row.chunks_mut(per)) {
            share.push(part);
        }
    }
    std::thread::scope(|scope| {
        for (k, mut share) in shares.into_iter().enumerate() {
            let first = k * per;
            // This thread's steps' points: from its first step's time to
            // the next thread's (as far as the first and last go).
            let lo = if k == 0 { None } else { Some(times.get(first).copied().unwrap_or(i64::MAX)) };
            let end = times.get(first + per).copied();
            scope.spawn(move || {
                for (p, g) in folds {
                    let from = lo.map_or(0, |lo| p.partition_point(|s| s.t < lo));
                    let to = end.map_or(p.len(), |end| p.partition_point(|s| s.t < end));
                    fold_points(op, share[*g], first, &p[from..to], times, start, step);
                }
            });
        }
    });
}

/// Folds `points` (in time order, at the evaluation's steps) into `row`,
/// which holds the steps from `first` on.
#[inline]
fn fold_points(op: Op, row: &mut [Acc], first: usize, points: &[Sample], times: &[i64], start: i64, step: i64) {
    // The step of a point is the one after the previous point's when that
    // is its time, found without a division (a division a point was most
    // of this fold).
    let mut next = usize::MAX;
    for p in points {
        let at = if times.get(next) == Some(&p.t) {
            next
        } else {
            // As `Evaluator::step_of`.
            usize::try_from(p.t.saturating_sub(start) / step.max(1)).unwrap_or(0)
        };
        if let Some(acc) = at.checked_sub(first).and_then(|i| row.get_mut(i)) {
            acc.add(op, p.v);
        }
        next = at.wrapping_add(1);
    }
}

/// One group's running state.
struct Group {
    labels: Rc<Labels>,
    /// count_values' count.
    acc: Acc,
    /// topk / bottomk: a binary heap, as Go's `container/heap` keeps it.
    heap: Vec<Elem>,
    /// quantile: the values seen.
    values: Vec<f64>,
}

/// Aggregates one step's vector.
fn aggregation(op: Op, grouping: &Grouping, param: f64, value_label: &str, vec: &[Elem]) -> Result<Vector, Error> {
    let mut k = 0i64;
    if matches!(op, Op::Topk | Op::Bottomk) {
        // Go's int64 conversion is defined only inside its range.
        if param.is_nan() || !(-9.223_372_036_854_776e18..=9.223_372_036_854_776e18).contains(&param) {
            return Err(Error::Execution(format!("scalar value {param} overflows int64")));
        }
        k = param as i64;
        if k < 1 {
            return Ok(Vector::new());
        }
    }
    let less: fn(f64, f64) -> bool =
        if op == Op::Bottomk { |a, b| a.is_nan() || a > b } else { |a, b| a.is_nan() || a < b };
    let mut groups: Vec<Group> = Vec::new();
    let mut position: foldhash::HashMap<Labels, usize> = foldhash::HashMap::default();
    for e in vec {
        let counted;
        let metric = if op == Op::CountValues {
            counted = e.labels.with(value_label, &format_value(e.v));
            &counted
        } else {
            &*e.labels
        };
        let key = grouping.of(metric);
        let Some(&i) = position.get(&key) else {
            position.insert(key.clone(), groups.len());
            let mut acc = Acc::default();
            acc.add(op, e.v);
            groups.push(Group {
                labels: Rc::new(key),
                acc,
                heap: if matches!(op, Op::Topk | Op::Bottomk) { vec![e.clone()] } else { Vec::new() },
                values: if op == Op::Quantile { vec![e.v] } else { Vec::new() },
            });
            continue;
        };
        let Some(g) = groups.get_mut(i) else { continue };
        let v = e.v;
        match op {
            Op::Topk | Op::Bottomk => {
                let top = g.heap.first().map_or(f64::NAN, |x| x.v);
                let len = i64::try_from(g.heap.len()).unwrap_or(i64::MAX);
                let better = if op == Op::Topk { top < v } else { top > v };
                if len < k || better || top.is_nan() {
                    if len == k {
                        if k == 1 {
                            if let Some(slot) = g.heap.first_mut() {
                                *slot = e.clone();
                            }
                            continue;
                        }
                        heap_pop(&mut g.heap, less);
                    }
                    heap_push(&mut g.heap, e.clone(), less);
                }
            }
            Op::Quantile => g.values.push(v),
            _ => g.acc.add(op, v),
        }
    }
    let mut out = Vector::new();
    for mut g in groups {
        let value = match op {
            Op::Quantile => quantile(param, &mut g.values),
            Op::Topk | Op::Bottomk => {
                // Highest (lowest) first, NaN last.
                let ascending = op == Op::Bottomk;
                g.heap.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    _ if ascending => a.v.total_cmp(&b.v),
                    _ => b.v.total_cmp(&a.v),
                });
                out.extend(g.heap.into_iter().map(|x| Elem { t: 0, ..x }));
                continue;
            }
            _ => g.acc.result(op),
        };
        out.push(Elem { labels: g.labels, t: 0, v: value });
    }
    Ok(out)
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest digits, no exponent.
fn format_value(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Go's `heap.Push`.
fn heap_push(h: &mut Vec<Elem>, x: Elem, less: fn(f64, f64) -> bool) {
    h.push(x);
    let mut j = h.len() - 1;
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(h[j].v, h[i].v) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

/// Go's `heap.Pop` (the removed element is not needed).
fn heap_pop(h: &mut Vec<Elem>, less: fn(f64, f64) -> bool) {
    let Some(n) = h.len().checked_sub(1) else { return };
    h.swap(0, n);
    let mut i = 0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        if j1 + 1 < n && less(h[j1 + 1].v, h[j1].v) {
            j = j1 + 1;
        }
        if !less(h[j].v, h[i].v) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
    h.pop();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Split between threads by steps, the fold is the one-thread fold to
    /// the bit (each step's values in series order), including points at
    /// no step and missing steps.
    #[test]
    fn a_fold_split_by_steps_equals_the_fold_on_one_thread() {
        // Steps that split evenly or not, and into fewer shares than threads.
        for (steps, threads) in [(1_500, 2), (1_500, 7), (5, 4), (7, 8), (3, 2)] {
            fold_split(steps, threads, false);
        }
        // A series out of time order is folded on one thread, not lost.
        fold_split(1_500, 2, true);
        // Points at the ends of time are in the first and last shares.
        let (start, step) = (i64::MAX - 10, 10);
        let times = [start, i64::MAX];
        let points = [Sample { t: i64::MIN, v: 1.0 }, Sample { t: start, v: 2.0 }, Sample { t: i64::MAX, v: 4.0 }];
        let folds = [(&points[..], 0)];
        let mut row = [Acc::default(); 2];
        fold_on_threads(2, Op::Sum, &folds, &mut [&mut row[..]], &times, start, step);
        assert_eq!(row.map(|a| a.value), [3.0, 4.0], "the point before the start goes to step 0, as on one thread");
    }

    fn fold_split(steps: usize, threads: usize, one_reversed: bool) {
        let (start, step) = (1_000, 10);
        let times: Vec<i64> = (0..steps as i64).map(|i| start + i * step).collect();
        // A cheap, fixed sequence of values of every magnitude.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let series: Vec<Vec<Sample>> = (0..200)
            .map(|_| {
                let mut points = Vec::new();
                for &t in &times {
                    let r = next();
                    if r % 7 == 0 {
                        continue;
                    }
                    // Now and then off the step's time.
                    let t = t + if r % 11 == 0 { 3 } else { 0 };
                    points.push(Sample { t, v: (next() % 1_000_000) as f64 / 7.0 });
                }
                points
            })
            .collect();
        let mut series = series;
        if one_reversed {
            series[0].reverse();
        }
        let folds: Vec<(&[Sample], usize)> = series.iter().enumerate().map(|(i, s)| (s.as_slice(), i % 3)).collect();
        for op in [Op::Sum, Op::Avg, Op::Stddev, Op::Max, Op::Count] {
            let mut split = vec![vec![Acc::default(); steps]; 3];
            let mut rows: Vec<&mut [Acc]> = split.iter_mut().map(|r| r.as_mut_slice()).collect();
            fold_on_threads(threads, op, &folds, &mut rows, &times, start, step);
            let mut one = vec![vec![Acc::default(); steps]; 3];
            for (p, g) in &folds {
                fold_points(op, &mut one[*g], 0, p, &times, start, step);
            }
            let bits = |rows: &[Vec<Acc>]| -> Vec<(u64, usize)> {
                rows.iter().flatten().map(|a| (a.result(op).to_bits(), a.count)).collect()
            };
            assert!(bits(&split) == bits(&one), "{op:?}, {steps} steps on {threads} threads");
        }
    }
}
