//! Planning and starting sessions: whatever the request, within bounded
//! memory and time; ranges that would need more buckets than exist are
//! refused without allocating them; and regression tests for inputs that
//! once overflowed an `i64` on the way.

use std::time::Duration;

use heroic_plugin_api::types::Series;
use heroic_query::hql::{parse_expression, parse_query};
use heroic_query::{plan, Aggregation, Defaults, QueryError, QueryMetrics};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::{config, measured, pick, MIB, NOW};

/// What planning and starting a session may cost at most: the largest
/// session (100,000 buckets of the widest reducer state) fits well within.
const PLAN_LARGEST: usize = 32 * MIB;
const PLAN_TOTAL: usize = 256 * MIB;
/// Generous: a debug build on a busy two-core machine.
const PLAN_TIME: Duration = Duration::from_secs(10);

/// Plans a request and, when that works, starts sessions under several
/// limits and feeds them a few points inside the planned range: never a
/// panic, and never more memory or time than [`PLAN_LARGEST`],
/// [`PLAN_TOTAL`] and [`PLAN_TIME`].
pub(crate) fn exercise_request(req: &QueryMetrics) {
    let (_, cost) = measured(|| {
        let Ok(plan) = plan(req, NOW, &Defaults::default()) else {
            return;
        };
        for ceiling in [None, Some(0), Some(1), Some(10_000), Some(u64::MAX)] {
            let Ok(mut session) = plan.session(ceiling) else {
                continue;
            };
            let (start, end) = (plan.range.start, plan.range.end);
            // `(start, end]`: the first, middle and last millisecond.
            let mid = ((start as i128 + end as i128) / 2) as i64;
            let ts: Vec<i64> =
                [start.saturating_add(1), mid, end].into_iter().filter(|t| *t > start && *t <= end).collect();
            let vals: Vec<f64> = (0..ts.len()).map(|i| i as f64 - 0.5).collect();
            let series = Series::new("cpu", [("host", "a"), ("site", "b")], [("pod", "p")]);
            if session.update(&series, &ts, &vals).is_ok() {
                let _ = session.finish();
            }
        }
    });
    assert!(cost.largest <= PLAN_LARGEST, "one allocation of {} bytes for {req:?}", cost.largest);
    assert!(cost.total <= PLAN_TOTAL, "{} bytes allocated for {req:?}", cost.total);
    assert!(cost.elapsed <= PLAN_TIME, "{:?} spent on {req:?}", cost.elapsed);
}

// ---------------------------------------------------------------------------
// Ranges that would need more buckets than exist

proptest! {
    #![proptest_config(config(256))]

    /// A range with more buckets than the limit is refused quickly and
    /// without allocating its buckets, whatever the strategy and features.
    #[test]
    fn huge_ranges_with_small_buckets_are_refused(
        start in prop_oneof![Just(0i64), Just(NOW - 1_000_000_000_000), -1_000_000_000_000_000i64..NOW],
        span in prop_oneof![Just(i64::MAX), 100_000_001i64..i64::MAX],
        size in 1i64..1_000,
        strategy in pick(&["start", "end"]),
        shift in any::<bool>(),
        limit in proptest::option::of(any::<u64>()),
    ) {
        let end = start.saturating_add(span);
        let mut body = json!({
            "range": {"type": "absolute", "start": start, "end": end},
            "aggregation": {"type": "sum", "size": size},
            "options": {"bucketStrategy": strategy},
            "features": [if shift { "shift_range" } else { "-shift_range" }],
        });
        if let Some(l) = limit {
            body["options"]["aggregationLimit"] = json!(l);
        }
        let req = QueryMetrics::from_json(&body).unwrap();
        let (result, cost) = measured(|| {
            plan(&req, NOW, &Defaults::default()).and_then(|p| p.session(limit).map(|_| ()))
        });
        prop_assert!(result.is_err(), "{body}: {result:?}");
        prop_assert!(cost.largest < MIB && cost.elapsed < Duration::from_secs(2), "{body}: {cost:?}");
    }
}

#[test]
fn the_whole_of_time_in_milliseconds_is_refused() {
    for features in [json!(["-shift_range"]), json!([])] {
        let body = json!({
            "range": {"type": "absolute", "start": 0, "end": i64::MAX},
            "aggregation": {"type": "sum", "size": 1},
            "features": features,
        });
        let req = QueryMetrics::from_json(&body).unwrap();
        let (result, cost) =
            measured(|| plan(&req, NOW, &Defaults::default()).and_then(|p| p.session(None).map(|_| ())));
        let err = result.unwrap_err();
        assert!(err.to_string().contains("buckets") || err.to_string().contains("year 9999"), "{err}");
        assert!(cost.largest < MIB && cost.elapsed < Duration::from_secs(2), "{cost:?}");
    }
}

// ---------------------------------------------------------------------------
// Regressions: inputs the properties above once found to overflow an `i64`
// (a panic in a debug build); each must now be refused or planned.

fn plan_json(body: Value) -> Result<(), QueryError> {
    let req = QueryMetrics::from_json(&body)?;
    let plan = plan(&req, NOW, &Defaults::default())?;
    let mut session = plan.session(None)?;
    let (start, end) = (plan.range.start, plan.range.end);
    let series = Series::new("cpu", [("host", "a")], Vec::<(&str, &str)>::new());
    session.update(&series, &[start + 1, end], &[1.0, 2.0])?;
    session.finish().map(|_| ())
}

fn plan_hql(hql: &str) -> Result<(), QueryError> {
    plan(&QueryMetrics::from_hql(hql), NOW, &Defaults::default()).map(|_| ())
}

/// A `"<n>w"` duration is `n * 7` days (`Duration::parse`, duration.rs): one
/// whose day count does not fit an `i64` is refused.
#[test]
fn week_durations_that_overflow_are_refused() {
    assert!(Aggregation::from_json(&json!({"type": "sum", "size": "9223372036854775807w"})).is_err());
    assert!(Aggregation::from_json(&json!({"type": "opts", "sampling": {"value": "2000000000000000000w"}})).is_err());
}

/// A date literal is a day count times 86,400,000 (`parse_date_time`,
/// hql/time.rs): a year past about 292 million is out of the millisecond
/// range and refused, however large.
#[test]
fn dates_beyond_the_millisecond_range_are_refused() {
    assert!(parse_expression("{292278994-08-18}").is_err());
    assert!(parse_expression("{9223372036854775807-01-01}").is_err());
    assert!(parse_query("* from points({999999999999999-01-01}, $now)").is_err());
}

/// Range arithmetic (`Expr::eval_millis`, hql/mod.rs) at the limits of an
/// `i64` — `-i64::MIN`, `i64::MIN / -1` — plans or is refused.
#[test]
fn range_arithmetic_at_the_i64_limits_does_not_panic() {
    let _ = plan_hql("* from points(- (0 - 9223372036854775807 - 1), $now)");
    let _ = plan_hql("* from points((0 - 9223372036854775807 - 1) / (0 - 1), $now)");
}

/// An HQL relative range evaluates to any `i64`, negative ones included
/// (JSON refuses those): one for which `now - value` (`QueryRange::resolve`,
/// request/mod.rs) does not fit is refused.
#[test]
fn negative_relative_ranges_are_refused() {
    assert!(plan_hql("* from points(0 - 9223372036854775807 - 1)").is_err());
}

/// An absolute range wider than `i64::MAX` milliseconds (the JSON form only
/// checks start <= end), whose `end - start` (`cadence_from_range`,
/// duration.rs) does not fit, plans or is refused.
#[test]
fn ranges_wider_than_i64_do_not_panic() {
    let _ = plan_json(json!({"range": {"type": "absolute", "start": i64::MIN, "end": 0}}));
    let _ = plan_hql("* from points(-9223372036854775807, 9223372036854775807)");
}

/// Shifting a range (`shift_range`, duration.rs) computes `now - end` and
/// `diff + cadence - 1`: an end near `i64::MIN` or a cadence near
/// `i64::MAX` plans or is refused.
#[test]
fn shifting_ranges_at_the_i64_limits_does_not_panic() {
    let _ = plan_json(json!({"range": {"type": "absolute", "start": i64::MIN + 1, "end": i64::MIN + 2}}));
    let _ = plan_json(json!({
        "range": {"type": "absolute", "start": 0, "end": i64::MAX},
        "aggregation": {"type": "sum", "size": 1_000_000_000_000_000_000i64},
    }));
}

/// Bucket sizes and extents near `i64::MAX` (`BucketMapping::new` and
/// `BucketMapping::map`, aggregation/bucket.rs: the first bucket's end, and
/// each point's last bucket as the host feeds them) plan or are refused.
#[test]
fn huge_bucket_sizes_and_extents_do_not_panic() {
    let _ = plan_json(json!({
        "range": {"type": "absolute", "start": 1_000, "end": 2_000},
        "aggregation": {"type": "sum", "size": i64::MAX},
        "features": ["-shift_range"],
    }));
    let _ = plan_json(json!({
        "range": {"type": "absolute", "start": 0, "end": 100_000},
        "aggregation": {"type": "average", "size": 1_000, "extent": i64::MAX},
        "features": ["-shift_range"],
    }));
}
