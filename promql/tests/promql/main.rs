//! End-to-end tests of the crate's public API: parse, selections, then
//! evaluate over series a small in-memory store hands out as the host
//! would (by matchers and time), with hand-computed expected values.

mod aggregate;
mod binary;
mod functions;
mod limits;
mod rate;

use heroic_promql::{
    evaluate, evaluate_reduced, parse, reductions, selections, Error, EvalRange, Labels, RangeSeries, Sample, Value,
};

/// A series from label pairs and `(seconds, value)` samples.
pub fn series(labels: &[(&str, &str)], samples: &[(f64, f64)]) -> RangeSeries {
    RangeSeries {
        labels: Labels::new(labels.iter().map(|(n, v)| (n.to_string(), v.to_string()))),
        samples: samples.iter().map(|&(t, v)| Sample { t: (t * 1000.0) as i64, v }).collect(),
    }
}

/// Labels from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())))
}

/// What the host does: for each selection, the series whose labels match
/// with their samples in the selection's time range.
pub fn run(query: &str, range: EvalRange, store: &[RangeSeries]) -> Result<Value, Error> {
    let expr = parse(query)?;
    evaluate(&expr, &range, &read(&expr, &range, store))
}

/// What the host reads for each selection of `expr`: the series whose
/// labels match, with their samples in the selection's time range.
pub fn read(expr: &promql_parser::parser::Expr, range: &EvalRange, store: &[RangeSeries]) -> Vec<Vec<RangeSeries>> {
    selections(expr, range)
        .iter()
        .map(|sel| {
            store
                .iter()
                .filter(|s| sel.matchers.matchers.iter().all(|m| m.is_match(s.labels.get(&m.name))))
                .map(|s| RangeSeries {
                    labels: s.labels.clone(),
                    samples: s.samples.iter().filter(|p| p.t >= sel.first_ms && p.t <= sel.last_ms).copied().collect(),
                })
                .filter(|s| !s.samples.is_empty())
                .collect()
        })
        .collect()
}

/// [`run`] as the host runs it: the selections that have a reduction
/// reduced `chunk` series at a time, the results sorted by labels.
pub fn run_reduced(query: &str, range: EvalRange, store: &[RangeSeries], chunk: usize) -> Result<Value, Error> {
    let expr = parse(query)?;
    let mut data = read(&expr, &range, store);
    for (series, reduction) in data.iter_mut().zip(reductions(&expr, &range)) {
        if let Some(r) = reduction {
            let mut reduced = Vec::new();
            for part in series.chunks(chunk) {
                reduced.extend(r.reduce(part.to_vec(), None)?);
            }
            reduced.sort_by(|a, b| a.labels.cmp(&b.labels));
            *series = reduced;
        }
    }
    evaluate_reduced(&expr, &range, data, None)
}

/// An instant query at `t` seconds (5 minute lookback).
pub fn instant(query: &str, t: f64, store: &[RangeSeries]) -> Result<Value, Error> {
    let t = (t * 1000.0) as i64;
    run(query, EvalRange { start_ms: t, end_ms: t, step_ms: 0, lookback_ms: 300_000 }, store)
}

/// A range query, times in seconds.
pub fn range(query: &str, start: f64, end: f64, step: f64, store: &[RangeSeries]) -> Result<Value, Error> {
    let ms = |s: f64| (s * 1000.0) as i64;
    run(query, EvalRange { start_ms: ms(start), end_ms: ms(end), step_ms: ms(step), lookback_ms: 300_000 }, store)
}

/// An instant query's vector as `(labels, value)`, sorted by labels.
pub fn vector(query: &str, t: f64, store: &[RangeSeries]) -> Vec<(Labels, f64)> {
    match instant(query, t, store) {
        Ok(Value::Vector(v)) => {
            assert!(v.iter().all(|(_, s)| s.t == (t * 1000.0) as i64), "{query}: samples at the evaluation time");
            let mut v: Vec<(Labels, f64)> = v.into_iter().map(|(l, s)| (l, s.v)).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        }
        other => panic!("{query}: expected a vector, got {other:?}"),
    }
}

/// The single value of an instant query answering one series.
pub fn one(query: &str, t: f64, store: &[RangeSeries]) -> f64 {
    let v = vector(query, t, store);
    assert_eq!(v.len(), 1, "{query}: expected one series, got {v:?}");
    v[0].1
}

/// An instant query's scalar.
pub fn scalar(query: &str, t: f64, store: &[RangeSeries]) -> f64 {
    match instant(query, t, store) {
        Ok(Value::Scalar(s)) => s.v,
        other => panic!("{query}: expected a scalar, got {other:?}"),
    }
}

/// Asserts two floats are equal within 1e-9 (relative), NaN equal to NaN.
pub fn close(got: f64, want: f64) -> bool {
    (got.is_nan() && want.is_nan()) || got == want || (got - want).abs() <= 1e-9 * want.abs().max(1.0)
}

#[track_caller]
pub fn assert_close(got: f64, want: f64) {
    assert!(close(got, want), "got {got}, want {want}");
}

/// A counter `c{job="a"}` every 10s from 10s: 10, 20, 30, 40 …
pub fn counter() -> Vec<RangeSeries> {
    vec![series(&[("__name__", "c"), ("job", "a")], &[(10.0, 10.0), (20.0, 20.0), (30.0, 30.0), (40.0, 40.0)])]
}

#[test]
fn instant_selector_takes_the_latest_sample_within_the_lookback() {
    let store = vec![series(&[("__name__", "a")], &[(0.0, 1.0), (10.0, 2.0), (20.0, 3.0)])];
    assert_eq!(one("a", 15.0, &store), 2.0);
    assert_eq!(one("a", 20.0, &store), 3.0);
    // The lookback is closed: 320s - 5m = 20s still sees the sample at 20s.
    assert_eq!(one("a", 320.0, &store), 3.0);
    assert!(vector("a", 320.001, &store).is_empty());
    assert!(vector("a", -1.0, &store).is_empty());
    // The metric name is kept.
    assert_eq!(vector("a", 15.0, &store)[0].0, labels(&[("__name__", "a")]));
}

#[test]
fn offsets_shift_the_time_both_ways() {
    let store = vec![series(&[("__name__", "a")], &[(0.0, 1.0), (10.0, 2.0), (20.0, 3.0)])];
    assert_eq!(one("a offset 10s", 25.0, &store), 2.0);
    assert_eq!(one("a offset -10s", 5.0, &store), 2.0);
    assert_eq!(one("sum_over_time(a[10s] offset 10s)", 20.0, &store), 3.0);
}

#[test]
fn staleness_markers_end_a_series() {
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let store = vec![series(&[("__name__", "a")], &[(0.0, 1.0), (10.0, stale)])];
    assert_eq!(one("a", 5.0, &store), 1.0);
    assert!(vector("a", 15.0, &store).is_empty());
    assert_eq!(one("count_over_time(a[1m])", 15.0, &store), 1.0);
    // Markers between samples are no samples to rate either; samples out
    // of time order are put in order first.
    let marked = vec![series(&[("__name__", "c")], &[(0.0, 0.0), (10.0, stale), (20.0, 2.0), (30.0, 3.0)])];
    let plain = vec![series(&[("__name__", "c")], &[(30.0, 3.0), (0.0, 0.0), (20.0, 2.0)])];
    for query in ["rate(c[1m])", "increase(c[1m])", "sum_over_time(c[1m])"] {
        assert_eq!(one(query, 30.0, &marked), one(query, 30.0, &plain), "{query}");
    }
}

#[test]
fn samples_out_of_time_order_answer_as_in_order() {
    // The host promises time order; a series read out of order is put
    // right wherever its samples are used, with its staleness markers.
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let ordered = vec![
        series(&[("__name__", "a"), ("k", "1")], &[(0.0, 1.0), (10.0, 2.0), (20.0, stale), (30.0, 4.0)]),
        series(&[("__name__", "a"), ("k", "2")], &[(0.0, 5.0), (10.0, 6.0)]),
    ];
    let shuffled = vec![
        series(&[("__name__", "a"), ("k", "1")], &[(30.0, 4.0), (0.0, 1.0), (20.0, stale), (10.0, 2.0)]),
        series(&[("__name__", "a"), ("k", "2")], &[(0.0, 5.0), (10.0, 6.0)]),
    ];
    for query in ["a", "a[1m]", "timestamp(a)", "rate(a[1m])", "last_over_time(a[15s])"] {
        for t in [5.0, 15.0, 25.0, 35.0] {
            assert_eq!(instant(query, t, &shuffled), instant(query, t, &ordered), "{query} at {t}");
        }
        assert_eq!(range(query, 0.0, 40.0, 5.0, &shuffled), range(query, 0.0, 40.0, 5.0, &ordered), "{query}");
    }
}

#[test]
fn selections_cover_lookback_range_and_offset() {
    let expr = parse("rate(foo{job=\"a\"}[5m] offset 1m) + bar").unwrap();
    let r = EvalRange { start_ms: 1_000_000, end_ms: 2_000_000, step_ms: 10_000, lookback_ms: 300_000 };
    let sels = selections(&expr, &r);
    assert_eq!(sels.len(), 2);
    assert_eq!((sels[0].first_ms, sels[0].last_ms), (1_000_000 - 60_000 - 300_000, 2_000_000 - 60_000));
    assert_eq!((sels[1].first_ms, sels[1].last_ms), (1_000_000 - 300_000, 2_000_000));
    let names: Vec<_> =
        sels[0].matchers.matchers.iter().filter(|m| m.name == "__name__").map(|m| m.value.clone()).collect();
    assert_eq!(names, ["foo"]);
    assert!(sels[0].matchers.matchers.iter().any(|m| m.name == "job" && m.value == "a"));
    // A huge offset saturates rather than overflowing.
    let expr = parse("foo offset 290000000y").unwrap();
    let sels = selections(&expr, &r);
    assert!(sels[0].first_ms <= sels[0].last_ms);
}

#[test]
fn instant_query_of_a_range_selector_answers_raw_samples() {
    let store = counter();
    match instant("c[25s]", 40.0, &store) {
        Ok(Value::Matrix(m)) => {
            assert_eq!(m.len(), 1);
            assert_eq!(m[0].labels, labels(&[("__name__", "c"), ("job", "a")]));
            let ts: Vec<i64> = m[0].samples.iter().map(|s| s.t).collect();
            assert_eq!(ts, [20_000, 30_000, 40_000]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(range("c[1m]", 0.0, 60.0, 10.0, &store), Err(Error::Invalid(_))));
}

#[test]
fn scalars_and_strings() {
    assert_eq!(scalar("1e3", 0.0, &[]), 1000.0);
    assert_eq!(scalar("2 ^ 3 + 1", 0.0, &[]), 9.0);
    assert_eq!(scalar("-(1 + 1)", 0.0, &[]), -2.0);
    assert_eq!(scalar("5 % 3", 0.0, &[]), 2.0);
    assert_eq!(scalar("1 > bool 2", 0.0, &[]), 0.0);
    assert_eq!(scalar("time()", 100.0, &[]), 100.0);
    match instant("\"hi\"", 7.0, &[]) {
        Ok(Value::String { t, value }) => assert_eq!((t, value.as_str()), (7000, "hi")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn range_query_answers_a_matrix_per_series_and_step() {
    let store = vec![
        series(&[("__name__", "a"), ("i", "2")], &[(0.0, 1.0), (20.0, 2.0)]),
        series(&[("__name__", "a"), ("i", "1")], &[(10.0, 5.0)]),
    ];
    match range("a", 0.0, 30.0, 10.0, &store) {
        Ok(Value::Matrix(m)) => {
            assert_eq!(m.len(), 2);
            assert_eq!(m[0].labels, labels(&[("__name__", "a"), ("i", "1")]));
            let one: Vec<(i64, f64)> = m[0].samples.iter().map(|s| (s.t, s.v)).collect();
            assert_eq!(one, [(10_000, 5.0), (20_000, 5.0), (30_000, 5.0)]);
            let two: Vec<(i64, f64)> = m[1].samples.iter().map(|s| (s.t, s.v)).collect();
            assert_eq!(two, [(0, 1.0), (10_000, 1.0), (20_000, 2.0), (30_000, 2.0)]);
        }
        other => panic!("{other:?}"),
    }
    match range("time() * 2", 0.0, 20.0, 10.0, &[]) {
        Ok(Value::Matrix(m)) => {
            assert_eq!(m.len(), 1);
            assert_eq!(m[0].labels, Labels::default());
            let v: Vec<f64> = m[0].samples.iter().map(|s| s.v).collect();
            assert_eq!(v, [0.0, 20.0, 40.0]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn series_differing_only_by_name_collide_once_the_name_is_dropped() {
    let store = vec![
        series(&[("__name__", "a"), ("i", "1")], &[(0.0, 1.0)]),
        series(&[("__name__", "b"), ("i", "1")], &[(0.0, 2.0)]),
    ];
    let err = instant("abs({i=\"1\"})", 0.0, &store).unwrap_err();
    assert_eq!(err, Error::Execution("vector cannot contain metrics with the same labelset".into()));
    assert!(instant("-{i=\"1\"}", 0.0, &store).is_err());
    assert_eq!(vector("{i=\"1\"}", 0.0, &store).len(), 2);
}

/// A step of 0 is an instant query; a range query whose start is its end
/// is evaluated once and answers a matrix (Prometheus' rule).
#[test]
fn a_range_query_of_one_step_answers_a_matrix() {
    let store = [series(&[("__name__", "x")], &[(10.0, 1.0)])];
    assert!(matches!(instant("x", 20.0, &store), Ok(Value::Vector(v)) if v.len() == 1));
    match range("x", 20.0, 20.0, 15.0, &store) {
        Ok(Value::Matrix(m)) => assert_eq!(m[0].samples, [Sample { t: 20_000, v: 1.0 }]),
        other => panic!("{other:?}"),
    }
    assert!(matches!(range("x[1m]", 20.0, 20.0, 15.0, &store), Err(Error::Invalid(_))));
    assert!(matches!(range("\"s\"", 20.0, 20.0, 15.0, &store), Err(Error::Invalid(_))));
}

/// Past its deadline, evaluation stops with `Timeout`.
#[test]
fn evaluation_stops_at_its_deadline() {
    let store = [series(&[("__name__", "x")], &[(10.0, 1.0)])];
    let expr = parse("x").unwrap();
    let range = EvalRange { start_ms: 0, end_ms: 600_000, step_ms: 1_000, lookback_ms: 300_000 };
    let data = vec![store.to_vec()];
    let past = std::time::Instant::now() - std::time::Duration::from_millis(1);
    assert_eq!(heroic_promql::evaluate_until(&expr, &range, &data, Some(past)), Err(Error::Timeout));
    assert!(heroic_promql::evaluate_until(&expr, &range, &data, None).is_ok());
}

#[test]
fn many_series_answer_as_each_series_alone() {
    // 300 series × 600 samples: enough for the evaluator to spread the
    // series over threads; each series alone stays on one. The answers
    // must be the same to the last bit, in the same order.
    let mut seed = 7u64;
    let mut next = move || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as f64 / (1u64 << 31) as f64
    };
    let store: Vec<RangeSeries> = (0..300)
        .map(|k| {
            let name = format!("s{k:03}");
            let mut v = 0.0;
            let samples: Vec<(f64, f64)> = (0..600)
                .map(|i| {
                    // Counters with a reset now and then, some gappy.
                    v = if next() < 0.01 { 0.0 } else { v + (next() * 100.0).floor() };
                    (i as f64 * 10.0 + if k % 7 == 0 { next() * 3.0 } else { 0.0 }, v)
                })
                .collect();
            series(&[("__name__", "m"), ("s", &name)], &samples)
        })
        .collect();
    for query in ["rate(m[5m])", "max_over_time(m[2m])", "m", "deriv(m[10m] offset 1m)"] {
        let Value::Matrix(all) = range(query, 300.0, 6000.0, 30.0, &store).unwrap() else { panic!("{query}") };
        let alone: Vec<RangeSeries> = store
            .iter()
            .flat_map(|s| match range(query, 300.0, 6000.0, 30.0, std::slice::from_ref(s)).unwrap() {
                Value::Matrix(m) => m,
                other => panic!("{query}: {other:?}"),
            })
            .collect();
        assert_eq!(all.len(), 300, "{query}");
        assert_eq!(all, alone, "{query}");
    }
}

#[test]
fn reduced_as_read_answers_as_evaluated_from_samples() {
    // The host reduces some selections as it reads them (a chunk of series
    // at a time); every query answers as from the samples.
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let mut store = counter();
    for k in 0..40 {
        let name = format!("{k:02}");
        let samples: Vec<(f64, f64)> = (0..120)
            .filter(|i| (i + k) % 11 != 0)
            .map(|i| (i as f64 * 15.0, if i == 60 + k { stale } else { ((i * (k + 3)) % 97) as f64 }))
            .collect();
        store.push(series(&[("__name__", "g"), ("k", &name), ("odd", if k % 2 == 1 { "y" } else { "n" })], &samples));
    }
    let queries = [
        "rate(g[5m])",
        "sum by (odd) (rate(g[5m]))",
        "increase((g[2m]))",
        "delta(g[1m] offset 30s)",
        "irate(g[1m]) * 2",
        "max_over_time(g[3m]) - min_over_time(g[3m])",
        "last_over_time(g[1m])",
        "count_over_time(g{odd=\"y\"}[5m]) > 10",
        "absent_over_time(g{k=\"none\"}[1m])",
        "absent_over_time(g[1m])",
        "changes(g[10m]) + resets(g[10m])",
        "deriv(g[5m])",
        "stddev_over_time(g[5m])",
        "quantile_over_time(0.9, g[5m])",
        "predict_linear(g[5m], 60)",
        "g",
        "avg(sum_over_time(g[1m])) + avg_over_time(g[1m])",
    ];
    for query in queries {
        for chunk in [1, 7, 1000] {
            let at = |t: f64| EvalRange {
                start_ms: (t * 1000.0) as i64,
                end_ms: (t * 1000.0) as i64,
                step_ms: 0,
                lookback_ms: 300_000,
            };
            let want = run(query, at(900.0), &store);
            assert_eq!(run_reduced(query, at(900.0), &store, chunk), want, "{query} (instant, chunk {chunk})");
            let r = EvalRange { start_ms: 0, end_ms: 1_800_000, step_ms: 30_000, lookback_ms: 300_000 };
            let want = run(query, r, &store);
            assert!(matches!(want, Ok(Value::Matrix(_))), "{query}: {want:?}");
            assert_eq!(run_reduced(query, r, &store, chunk), want, "{query} (range, chunk {chunk})");
        }
    }
    // Reduced and not: the same query with one range selector of each kind.
    let expr = parse("rate(g[5m]) / quantile_over_time(0.5, g[5m])").unwrap();
    let r = EvalRange { start_ms: 0, end_ms: 60_000, step_ms: 30_000, lookback_ms: 300_000 };
    let found: Vec<bool> = reductions(&expr, &r).iter().map(Option::is_some).collect();
    assert_eq!(found, [true, false]);
    // A range evaluation refuses (here: no step, no end) has none, and
    // costs nothing to look at.
    let endless = EvalRange { start_ms: 0, end_ms: i64::MAX, step_ms: 0, lookback_ms: 300_000 };
    assert!(reductions(&expr, &endless).iter().all(Option::is_none));
}
