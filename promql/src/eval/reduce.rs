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
use crate::value::{Labels, RangeSeries, Sample};

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
        let series = series
            .into_iter()
            .map(|s| ReadSeries { labels: s.labels, samples: ReadSamples::Samples(s.samples) })
            .collect();
        self.reduce_read(series, deadline)
    }

    /// [`reduce`](Self::reduce) of series as a backend answered them,
    /// borrowed: nothing is copied per series but into each thread's
    /// buffer, which the function then reads while it is in cache.
    pub fn reduce_read(
        &self,
        series: Vec<ReadSeries<'_>>,
        deadline: Option<Instant>,
    ) -> Result<Vec<RangeSeries>, Error> {
        let call = Call { f: self.f, times: &self.times, range: self.range, offset: self.offset, scalars: &[] };
        let (points, _) = parallel::map_items(
            &series,
            |s| match &s.samples {
                ReadSamples::Columns { times, .. } => times.len(),
                ReadSamples::Samples(samples) => samples.len(),
            },
            Clock::new(deadline),
            MAX_SAMPLES,
            |s, scratch, worker| match &s.samples {
                ReadSamples::Columns { times, values } => call.columns(times, values, scratch, worker),
                ReadSamples::Samples(samples) => call.series(samples, scratch, worker),
            },
        )?;
        Ok(series
            .into_iter()
            .zip(points)
            .filter(|(_, points)| !points.is_empty())
            .map(|(s, samples)| RangeSeries { labels: s.labels, samples })
            .collect())
    }
}

/// A series of a selection as read, for [`Reduction::reduce_read`].
#[derive(Debug)]
pub struct ReadSeries<'a> {
    pub labels: Labels,
    pub samples: ReadSamples<'a>,
}

/// A series' samples as read: the points are expected in time order, but
/// any order is put right, and staleness markers are dropped.
#[derive(Debug)]
pub enum ReadSamples<'a> {
    /// As a backend answered them: timestamps and values, one each.
    Columns { times: &'a [i64], values: &'a [f64] },
    /// Gathered from several answers.
    Samples(Vec<Sample>),
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::eval::STALE_NAN_BITS;

    fn reduction(f: &str) -> Reduction {
        let range = EvalRange { start_ms: 0, end_ms: 3_600_000, step_ms: 60_000, lookback_ms: 300_000 };
        let expr = crate::parse(&format!("{f}(m[5m])")).unwrap();
        reductions(&expr, &range).into_iter().flatten().next().unwrap()
    }

    /// Samples with resets: half the series in time order without
    /// staleness markers (as backends answer, read in place), the others
    /// now and then out of order, repeated or stale (put right first).
    fn samples() -> impl Strategy<Value = Vec<Sample>> {
        (prop::collection::vec((0..3_700_000i64, -10.0..100.0f64, 0..20u8), 0..300), any::<bool>()).prop_map(
            |(raw, clean)| {
                let mut out: Vec<Sample> = raw
                    .into_iter()
                    .map(|(t, v, kind)| Sample {
                        t,
                        v: if kind == 0 && !clean { f64::from_bits(STALE_NAN_BITS) } else { v },
                    })
                    .collect();
                let keep = if clean { 0 } else { out.len() / 2 };
                out[keep..].sort_by_key(|s| s.t);
                out
            },
        )
    }

    fn bits(series: &[RangeSeries]) -> Vec<(Labels, Vec<(i64, u64)>)> {
        series.iter().map(|s| (s.labels.clone(), s.samples.iter().map(|p| (p.t, p.v.to_bits())).collect())).collect()
    }

    proptest! {
        /// Series read as columns reduce to what the same samples gathered
        /// reduce to, to the bit.
        #[test]
        fn columns_reduce_as_samples_do(
            all in prop::collection::vec(samples(), 1..12),
            f in prop::sample::select(vec!["rate", "increase", "delta", "max_over_time", "changes"]),
        ) {
            let r = reduction(f);
            let labels = |i: usize| Labels::new([("i", format!("{i:03}"))]);
            let gathered: Vec<RangeSeries> =
                all.iter().enumerate().map(|(i, s)| RangeSeries { labels: labels(i), samples: s.clone() }).collect();
            let columns: Vec<(Vec<i64>, Vec<f64>)> =
                all.iter().map(|s| (s.iter().map(|p| p.t).collect(), s.iter().map(|p| p.v).collect())).collect();
            let read: Vec<ReadSeries<'_>> = columns
                .iter()
                .enumerate()
                .map(|(i, (times, values))| ReadSeries {
                    labels: labels(i),
                    samples: ReadSamples::Columns { times, values },
                })
                .collect();
            let want = r.reduce(gathered, None).unwrap();
            let got = r.reduce_read(read, None).unwrap();
            prop_assert_eq!(bits(&got), bits(&want));
        }
    }
}
