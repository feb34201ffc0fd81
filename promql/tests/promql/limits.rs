//! Limits, unsupported constructs, and robustness: no input panics or
//! exhausts the stack.

use proptest::prelude::*;

use super::*;
use heroic_promql::{MAX_DEPTH, MAX_QUERY_BYTES};

/// Runs `f` on a thread with the default 2 MiB stack of spawned threads.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(2 << 20).spawn(f).unwrap().join().unwrap()
}

fn all_the_way(query: String) -> Result<Value, Error> {
    let r = EvalRange { start_ms: 0, end_ms: 60_000, step_ms: 10_000, lookback_ms: 300_000 };
    run(&query, r, &counter())
}

#[test]
fn deep_nesting_is_refused_not_overflowing() {
    for (open, close) in [("(", ")"), ("-(", ")"), ("abs(", ")"), ("sum(", ")")] {
        for n in [100_000usize, 10_000, MAX_DEPTH + 1] {
            let q = format!("{}c{}", open.repeat(n), close.repeat(n));
            let r = on_small_stack(move || all_the_way(q));
            assert!(matches!(r, Err(Error::Invalid(_))), "{open} × {n}: {r:?}");
        }
    }
    let q = format!("{}1", "-".repeat(60_000));
    assert!(matches!(on_small_stack(move || all_the_way(q)), Err(Error::Invalid(_))));
    let q = format!("1{}", "+1".repeat(30_000));
    assert!(matches!(on_small_stack(move || all_the_way(q)), Err(Error::Invalid(_))));
    let q = format!("{}c", "- ".repeat(30_000));
    assert!(matches!(on_small_stack(move || all_the_way(q)), Err(Error::Invalid(_))));
    let q = format!("c{}", " or c".repeat(12_000));
    assert!(matches!(on_small_stack(move || all_the_way(q)), Err(Error::Invalid(_))));
    let q = format!("c{}", " unless c".repeat(7_000));
    assert!(matches!(on_small_stack(move || all_the_way(q)), Err(Error::Invalid(_))));
}

#[test]
fn nesting_within_the_limit_evaluates() {
    let n = 150;
    let q = format!("{}c{}", "(".repeat(n), ")".repeat(n));
    assert!(matches!(on_small_stack(move || all_the_way(q)), Ok(Value::Matrix(_))));
    let q = format!("{}c{}", "abs(".repeat(60), ")".repeat(60));
    assert!(matches!(on_small_stack(move || all_the_way(q)), Ok(Value::Matrix(_))));
    let q = format!("c{}", " + c".repeat(150));
    assert!(matches!(on_small_stack(move || all_the_way(q)), Ok(Value::Matrix(_))));
    let q = format!("{}c", "- ".repeat(150));
    assert!(matches!(on_small_stack(move || all_the_way(q)), Ok(Value::Matrix(_))));
    let q = format!("c{}", " or c".repeat(150));
    assert!(matches!(on_small_stack(move || all_the_way(q)), Ok(Value::Matrix(_))));
}

#[test]
fn long_queries_are_refused() {
    let q = format!("c{}", " ".repeat(MAX_QUERY_BYTES));
    match parse(&q) {
        Err(Error::Invalid(msg)) => assert!(msg.contains(&MAX_QUERY_BYTES.to_string()), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unsupported_constructs_are_named() {
    let unsupported = |q: &str| match parse(q) {
        Err(Error::Unsupported(what)) => what,
        other => panic!("{q}: {other:?}"),
    };
    assert_eq!(unsupported("c @ 100"), "the @ modifier");
    assert_eq!(unsupported("rate(c[5m] @ end())"), "the @ modifier");
    assert_eq!(unsupported("max_over_time(rate(c[1m])[5m:1m])"), "subqueries");
    assert_eq!(unsupported("double_exponential_smoothing(c[5m], 0.5, 0.5)"), "function double_exponential_smoothing");
    assert_eq!(unsupported("limitk(1, c)"), "aggregation limitk");
    assert_eq!(unsupported("c{a=\"1\" or b=\"2\"}"), "'or' between label matchers");
    assert_eq!(unsupported("histogram_count(c)"), "function histogram_count");
}

#[test]
fn parse_errors_are_parse_errors() {
    assert!(matches!(parse("sum("), Err(Error::Parse(_))));
    assert!(matches!(parse("rate(c)"), Err(Error::Parse(_))));
    assert!(matches!(parse("{}"), Err(Error::Parse(_))));
}

#[test]
fn bad_ranges_are_refused() {
    let r = EvalRange { start_ms: 10, end_ms: 0, step_ms: 1, lookback_ms: 1 };
    assert!(matches!(run("c", r, &[]), Err(Error::Invalid(_))));
    let r = EvalRange { start_ms: 0, end_ms: 10, step_ms: 0, lookback_ms: 1 };
    assert!(matches!(run("c", r, &[]), Err(Error::Invalid(_))));
    let r = EvalRange { start_ms: i64::MIN, end_ms: i64::MAX, step_ms: 1, lookback_ms: i64::MAX };
    assert!(matches!(run("c", r, &[]), Err(Error::Invalid(_))));
    let r = EvalRange { start_ms: i64::MAX - 5, end_ms: i64::MAX, step_ms: 2, lookback_ms: i64::MAX };
    assert!(run("rate(c[5m] offset -1y) + time()", r, &counter()).is_ok());
}

/// Pieces of PromQL, to make texts that are often valid.
fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "c",
        "x",
        "{job=\"a\"}",
        "[1m]",
        "[5s]",
        "(",
        ")",
        "+",
        "-",
        "*",
        "/",
        "%",
        "^",
        " and ",
        " or ",
        " unless ",
        ">",
        "<=",
        "== bool",
        " on(job) ",
        " ignoring(i) ",
        " group_left ",
        " group_right(job) ",
        "sum",
        "avg",
        "topk(",
        "bottomk(",
        "quantile(",
        "count_values(\"v\",",
        " by (job) ",
        " without (i) ",
        "rate(",
        "irate(",
        "increase(",
        "delta(",
        "avg_over_time(",
        "quantile_over_time(",
        "histogram_quantile(",
        "abs(",
        "round(",
        "clamp(",
        "scalar(",
        "vector(",
        "time()",
        "timestamp(",
        "sort(",
        "label_replace(",
        "label_join(",
        "absent(",
        "0.5",
        "1",
        "-1",
        "1e3",
        "NaN",
        "Inf",
        ",",
        "\"s\"",
        " offset 1m",
        " offset -30s",
        "atan2",
        "le",
        "count_over_time(",
        "stddev(",
        "changes(",
        "predict_linear(",
        "day_of_week(",
    ])
}

fn samples() -> impl Strategy<Value = Vec<Sample>> {
    let value = prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::from_bits(0x7ff0_0000_0000_0002)),
        -1e3f64..1e3,
    ];
    prop::collection::vec((-100_000i64..200_000, value), 0..12).prop_map(|mut v| {
        v.sort_by_key(|p| p.0);
        v.into_iter().map(|(t, v)| Sample { t, v }).collect()
    })
}

fn store() -> impl Strategy<Value = Vec<RangeSeries>> {
    let labels = (
        prop::sample::select(vec!["c", "x", "c_bucket"]),
        prop::sample::select(vec!["a", "b"]),
        prop::sample::select(vec!["0.1", "1", "+Inf", "x", ""]),
    );
    prop::collection::vec((labels, samples()), 0..6).prop_map(|v| {
        v.into_iter()
            .map(|((n, j, le), s)| RangeSeries {
                samples: s,
                ..series(&[("__name__", n), ("job", j), ("le", le)], &[])
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn token_soup_never_panics(tokens in prop::collection::vec(token(), 1..14), data in store(),
                               start in -50_000i64..150_000, len in 0i64..100_000, step in 1i64..40_000) {
        let q: String = tokens.concat();
        let r = EvalRange { start_ms: start, end_ms: start + len, step_ms: step, lookback_ms: 60_000 };
        let _ = run(&q, r, &data);
        let i = EvalRange { start_ms: start, end_ms: start, step_ms: 0, lookback_ms: 60_000 };
        let _ = run(&q, i, &data);
    }

    #[test]
    fn arbitrary_text_never_panics(q in ".{0,40}", data in store()) {
        let r = EvalRange { start_ms: 0, end_ms: 100_000, step_ms: 7_000, lookback_ms: 60_000 };
        let _ = run(&q, r, &data);
    }

    #[test]
    fn unsorted_or_mismatched_data_never_panics(q in prop::collection::vec(token(), 1..10), data in prop::collection::vec(store(), 0..4)) {
        let q: String = q.concat();
        if let Ok(expr) = parse(&q) {
            let r = EvalRange { start_ms: 0, end_ms: 100_000, step_ms: 10_000, lookback_ms: 60_000 };
            let mut data = data;
            data.iter_mut().flatten().for_each(|s| s.samples.reverse());
            let _ = evaluate(&expr, &r, &data);
        }
    }
}

/// A range is checked as Prometheus' API checks it, with its messages.
#[test]
fn ranges_are_validated_as_prometheus_validates_them() {
    use heroic_promql::{EvalRange, RangeError, MAX_STEPS};
    let range = |start_ms, end_ms, step_ms| EvalRange { start_ms, end_ms, step_ms, lookback_ms: 300_000 };
    assert_eq!(range(10, 10, 0).validate(), Ok(()), "an instant query");
    assert_eq!(range(0, 60_000, 1_000).validate(), Ok(()));
    assert_eq!(range(0, MAX_STEPS, 1).validate(), Ok(()), "11,000 steps after the first");
    assert_eq!(range(0, MAX_STEPS + 1, 1).validate(), Err(RangeError::TooManySteps));
    assert_eq!(range(10, 5, 1).validate(), Err(RangeError::EndBeforeStart));
    assert_eq!(range(0, 10, 0).validate(), Err(RangeError::Step));
    assert_eq!(range(0, 10, -5).validate(), Err(RangeError::Step));
    assert_eq!(RangeError::Step.parameter(), Some("step"));
    assert!(RangeError::TooManySteps.to_string().starts_with("exceeded maximum resolution of 11,000 points"));
}
