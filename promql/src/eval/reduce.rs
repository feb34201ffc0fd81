//! Range functions applied as the series are read.
//!
//! `rate(m[5m])` over a day of 10 s samples keeps one value a step of each
//! series' 8,640 samples: computed once a chunk of series has been read,
//! the samples can go before the next chunk comes, and the work overlaps
//! the reading. [`reductions`] names the selections this holds for (a range
//! selector that is the range argument of a function with no other
//! argument); the host applies [`Reduction::reduce`] to their series and
//! hands the results to [`evaluate_reduced`](super::evaluate_reduced) in
//! place of the samples. The answer is the same, to the last bit.

use std::collections::HashMap;
use std::time::Instant;

use promql_parser::parser::{Expr, VectorSelector};

use super::parallel::{self, Clock};
use super::range_fns::{unparen, Call, RangeFn};
use super::{times, MAX_SAMPLES};
use crate::error::Error;
use crate::plan::{self, duration_ms, offset_ms, EvalRange};
use crate::value::RangeSeries;

/// A range function over one selection's series, applied to them as they
/// are read (see the module documentation).
#[derive(Clone, Debug)]
pub struct Reduction {
    f: RangeFn,
    /// The evaluation times.
    times: Vec<i64>,
    /// The selector's range and offset (ms).
    range: i64,
    offset: i64,
}

/// For each of [`crate::selections`]`(expr, range)`, in its order, the
/// function to apply to its series as they are read, if there is one.
pub fn reductions(expr: &Expr, range: &EvalRange) -> Vec<Option<Reduction>> {
    // The selectors that are the range argument of such a call, by address
    // (the evaluator finds selections the same way).
    let mut reducible: HashMap<usize, RangeFn> = HashMap::new();
    plan::walk(expr, |node, _| {
        let Expr::Call(call) = node else { return };
        // Those with a scalar argument too take its value at each step.
        let Some(f) =
            RangeFn::from_name(call.func.name).filter(|f| !matches!(f, RangeFn::Quantile | RangeFn::PredictLinear))
        else {
            return;
        };
        if let [arg] = call.args.args.as_slice() {
            if let Expr::MatrixSelector(ms) = unparen(arg) {
                reducible.insert(address(&ms.vs), f);
            }
        }
    });
    // A range evaluation refuses is reduced by nothing (its times could
    // be without end).
    let valid = range.validate().is_ok();
    let step = if range.is_instant() { 1 } else { range.step_ms };
    let mut out = Vec::new();
    plan::walk(expr, |node, _| match node {
        Expr::VectorSelector(_) => out.push(None),
        Expr::MatrixSelector(ms) => out.push(reducible.get(&address(&ms.vs)).filter(|_| valid).map(|&f| Reduction {
            f,
            times: times(range.start_ms, range.end_ms, step).collect(),
            range: duration_ms(&ms.range),
            offset: offset_ms(&ms.vs),
        })),
        _ => {}
    });
    out
}

/// A selector node's address: its identity within one parsed query.
pub(crate) fn address(vs: &VectorSelector) -> usize {
    vs as *const VectorSelector as usize
}

impl Reduction {
    /// The function's value at each step over each of `series` (samples
    /// of the selection's time range, labels as read), for those with any
    /// value, in the order given. Runs on several threads when `series`
    /// are many; stops at `deadline`; fails past [`MAX_SAMPLES`] values.
    /// The series are taken so that their labels move to the values.
    pub fn reduce(&self, series: Vec<RangeSeries>, deadline: Option<Instant>) -> Result<Vec<RangeSeries>, Error> {
        let call = Call { f: self.f, times: &self.times, range: self.range, offset: self.offset, scalars: &[] };
        let (points, _) =
            parallel::map_series(&series, Clock::new(deadline), MAX_SAMPLES, |samples, scratch, worker| {
                call.series(samples, scratch, worker)
            })?;
        Ok(series
            .into_iter()
            .zip(points)
            .filter(|(_, points)| !points.is_empty())
            .map(|(s, samples)| RangeSeries { labels: s.labels, samples })
            .collect())
    }
}
