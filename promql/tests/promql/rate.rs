//! rate, increase, delta, irate, idelta and the *_over_time functions.

use super::*;

#[test]
fn rate_without_extrapolation_when_samples_reach_the_range_ends() {
    // Window [10s, 40s] holds 10, 20, 30, 40: increase 30 over 30s.
    let store = counter();
    assert_close(one("rate(c[30s])", 40.0, &store), 1.0);
    assert_close(one("increase(c[30s])", 40.0, &store), 30.0);
    assert_eq!(vector("rate(c[30s])", 40.0, &store)[0].0, labels(&[("job", "a")]));
}

#[test]
fn rate_extrapolates_to_the_range_start() {
    // Window [5s, 40s]: the first sample is 5s in, under 1.1 × 10s, so
    // the 30 increase over 30s is extrapolated to 35s.
    let store = counter();
    assert_close(one("increase(c[35s])", 40.0, &store), 35.0);
    assert_close(one("rate(c[35s])", 40.0, &store), 1.0);
}

#[test]
fn counter_extrapolation_stops_at_zero() {
    // 1, 11, 21 at 10s, 20s, 30s; window [5s, 35s]. Zero is reached 1s
    // before the first sample (20 × 1/20), sooner than the 5s to the
    // start: 20 × (20 + 1 + 5) / 20 = 26.
    let store = vec![series(&[("__name__", "c")], &[(10.0, 1.0), (20.0, 11.0), (30.0, 21.0)])];
    assert_close(one("increase(c[30s])", 35.0, &store), 26.0);
    // delta does not stop at zero: 20 × 30 / 20.
    assert_close(one("delta(c[30s])", 35.0, &store), 30.0);
}

#[test]
fn far_range_ends_extrapolate_half_an_interval() {
    // 0, 10, 20 at 10s, 20s, 30s; window [0s, 60s]: 10s to the start
    // (< 11s, extrapolated), 30s to the end (half of 10s): 20 × 35 / 20.
    let store = vec![series(&[("__name__", "g")], &[(10.0, 0.0), (20.0, 10.0), (30.0, 20.0)])];
    assert_close(one("delta(g[60s])", 60.0, &store), 35.0);
    // As a counter the zero point is at the first sample: 20 × 25 / 20.
    assert_close(one("increase(g[60s])", 60.0, &store), 25.0);
    assert_close(one("rate(g[60s])", 60.0, &store), 25.0 / 60.0);
}

#[test]
fn counter_resets_add_the_value_before_the_reset() {
    // 5, 10, 2, 6: 1 + 10 over 30s.
    let store = vec![series(&[("__name__", "c")], &[(10.0, 5.0), (20.0, 10.0), (30.0, 2.0), (40.0, 6.0)])];
    assert_close(one("increase(c[30s])", 40.0, &store), 11.0);
    assert_close(one("rate(c[30s])", 40.0, &store), 11.0 / 30.0);
    assert_close(one("delta(c[30s])", 40.0, &store), 1.0);
    assert_close(one("resets(c[30s])", 40.0, &store), 1.0);
    assert_close(one("changes(c[30s])", 40.0, &store), 3.0);
}

#[test]
fn rate_needs_two_samples() {
    let store = counter();
    assert!(vector("rate(c[5s])", 40.0, &store).is_empty());
    assert!(vector("irate(c[5s])", 40.0, &store).is_empty());
}

#[test]
fn irate_and_idelta_use_the_last_two_samples() {
    let store = vec![series(&[("__name__", "c")], &[(10.0, 5.0), (20.0, 10.0), (30.0, 2.0)])];
    // A drop is a reset: 2 over 10s.
    assert_close(one("irate(c[1m])", 30.0, &store), 0.2);
    assert_close(one("idelta(c[1m])", 30.0, &store), -8.0);
    assert_close(one("irate(c[1m])", 20.0, &store), 0.5);
}

#[test]
fn over_time_functions() {
    let store = vec![series(&[("__name__", "g"), ("job", "a")], &[(10.0, 1.0), (20.0, 2.0), (30.0, 3.0), (40.0, 4.0)])];
    let at = |q: &str| one(q, 40.0, &store);
    assert_close(at("avg_over_time(g[1m])"), 2.5);
    assert_close(at("min_over_time(g[1m])"), 1.0);
    assert_close(at("max_over_time(g[1m])"), 4.0);
    assert_close(at("sum_over_time(g[1m])"), 10.0);
    assert_close(at("count_over_time(g[1m])"), 4.0);
    assert_close(at("last_over_time(g[1m])"), 4.0);
    assert_close(at("quantile_over_time(0.5, g[1m])"), 2.5);
    assert_close(at("quantile_over_time(0.9, g[1m])"), 3.7);
    assert_eq!(at("quantile_over_time(-1, g[1m])"), f64::NEG_INFINITY);
    assert_eq!(at("quantile_over_time(2, g[1m])"), f64::INFINITY);
    assert_close(at("stdvar_over_time(g[1m])"), 1.25);
    assert_close(at("stddev_over_time(g[1m])"), 1.25f64.sqrt());
    assert_close(at("present_over_time(g[1m])"), 1.0);
    assert_close(at("deriv(g[1m])"), 0.1);
    assert_close(at("predict_linear(g[1m], 10)"), 5.0);
    // The window is closed at both ends: [20s, 40s] holds three samples.
    assert_close(at("count_over_time(g[20s])"), 3.0);
    // last_over_time keeps the metric name, the others drop it.
    assert_eq!(vector("last_over_time(g[1m])", 40.0, &store)[0].0, labels(&[("__name__", "g"), ("job", "a")]));
    assert_eq!(vector("max_over_time(g[1m])", 40.0, &store)[0].0, labels(&[("job", "a")]));
    assert!(vector("absent_over_time(g[1m])", 40.0, &store).is_empty());
    let absent = vector("absent_over_time(nope{job=\"x\"}[1m])", 40.0, &store);
    assert_eq!(absent, [(labels(&[("job", "x")]), 1.0)]);
}

#[test]
fn over_time_with_nan_and_infinity() {
    let store = vec![series(&[("__name__", "g")], &[(10.0, f64::NAN), (20.0, 2.0), (30.0, f64::INFINITY)])];
    assert_eq!(one("max_over_time(g[1m])", 30.0, &store), f64::INFINITY);
    assert_eq!(one("min_over_time(g[1m])", 30.0, &store), 2.0);
    assert!(one("sum_over_time(g[1m])", 30.0, &store).is_nan());
    assert_eq!(one("avg_over_time(g[15s])", 30.0, &store), f64::INFINITY);
}

#[test]
fn range_query_of_rate_steps_the_window() {
    let store = counter();
    match range("rate(c[20s])", 20.0, 40.0, 10.0, &store) {
        Ok(Value::Matrix(m)) => {
            assert_eq!(m.len(), 1);
            let got: Vec<(i64, f64)> = m[0].samples.iter().map(|s| (s.t, s.v)).collect();
            assert_eq!(got.len(), 3);
            for (t, v) in got {
                assert!(t % 10_000 == 0);
                assert_close(v, 1.0);
            }
        }
        other => panic!("{other:?}"),
    }
}
