//! Whole `/query/metrics` bodies (and batches of them): every field
//! optional, any of them wrong; those that parse are planned and run
//! briefly (see [`exercise_request`]).

use heroic_query::{BatchRequest, QueryMetrics};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::hql::hql_query;
use crate::json::{json_aggregation, json_duration, json_filter, json_number, json_scalar, pick_value};
use crate::plan::exercise_request;
use crate::{config, object, pick, NOW};

fn exercise_json_request(v: &Value) {
    if let Ok(req) = QueryMetrics::from_json(v) {
        exercise_request(&req);
    }
    let batch = json!({"queries": {"a": v, "b": {"query": "sum(1m)"}}, "range": {"type": "relative", "unit": "HOURS", "value": 1}});
    if let Ok(b) = BatchRequest::from_json(&batch) {
        for req in b.queries.values() {
            exercise_request(req);
        }
    }
    let _ = BatchRequest::from_json(v);
}

/// A time for a range bound: extreme, realistic, or not an integer.
fn json_time() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => json_number(),
        2 => (-100_000_000_000i64..100_000_000_000).prop_map(|d| Value::from(NOW + d)),
        1 => json_scalar(),
    ]
    .boxed()
}

fn json_range() -> BoxedStrategy<Value> {
    prop_oneof![
        (json_time(), json_time()).prop_map(|(s, e)| json!({"type": "absolute", "start": s, "end": e})),
        (pick(&["MILLISECONDS", "SECONDS", "MINUTES", "HOURS", "DAYS", "days", "WEEKS", ""]), json_time())
            .prop_map(|(u, v)| json!({"type": "relative", "unit": u, "value": v})),
        json_time().prop_map(|v| json!({"type": "relative", "value": v})),
        vec((pick(&["type", "start", "end", "unit", "value"]), json_scalar()), 0..4).prop_map(object),
        json_scalar(),
    ]
    .boxed()
}

/// `options` with extreme numbers and wrong types.
fn json_options() -> BoxedStrategy<Value> {
    let name = pick(&[
        "bucketStrategy",
        "tracing",
        "fetchSize",
        "dataLimit",
        "aggregationLimit",
        "groupLimit",
        "seriesLimit",
        "failOnLimits",
        "x",
    ]);
    let value = prop_oneof![
        pick_value(vec![
            json!("start"),
            json!("end"),
            json!("START"),
            json!("NONE"),
            json!("DEFAULT"),
            json!(true),
            json!(false)
        ]),
        json_number(),
        json_scalar(),
    ];
    vec((name, value), 0..5).prop_map(object).boxed()
}

fn json_features() -> BoxedStrategy<Value> {
    vec(
        prop_oneof![
            pick(&[
                "shift_range",
                "-shift_range",
                "end_bucket_stategy",
                "-end_bucket_stategy",
                "com.spotify.heroic.shift_range",
                "-com.spotify.heroic.end_bucket_stategy",
                "cache_query",
                "bogus",
                "-",
                "",
            ])
            .prop_map(Value::from),
            json_scalar(),
        ],
        0..4,
    )
    .prop_map(Value::Array)
    .boxed()
}

/// `/query/metrics` bodies: every field optional, any of them wrong.
fn json_request() -> BoxedStrategy<Value> {
    let field = prop_oneof![
        2 => hql_query().prop_map(|q| ("query".to_string(), Value::from(q))),
        3 => json_aggregation().prop_map(|a| ("aggregation".to_string(), a)),
        1 => vec(json_aggregation(), 0..3).prop_map(|a| ("aggregators".to_string(), Value::Array(a))),
        1 => prop_oneof![pick(&["points", "spreads", "bogus"]).prop_map(Value::from), json_scalar()].prop_map(|s| ("source".to_string(), s)),
        4 => json_range().prop_map(|r| ("range".to_string(), r)),
        2 => json_filter().prop_map(|f| ("filter".to_string(), f)),
        2 => json_options().prop_map(|o| ("options".to_string(), o)),
        1 => json_scalar().prop_map(|k| ("key".to_string(), k)),
        1 => vec((pick(&["host", "role", ""]), json_scalar()), 0..3).prop_map(|t| ("tags".to_string(), object(t))),
        2 => json_features().prop_map(|f| ("features".to_string(), f)),
        1 => json_scalar().prop_map(|c| ("clientContext".to_string(), c)),
    ];
    vec(field, 0..6).prop_map(object).boxed()
}
proptest! {
    #![proptest_config(config(512))]

    /// Whole requests, parsed, planned and run briefly (see [`exercise_request`]).
    #[test]
    fn json_requests_plan_or_are_refused(v in json_request()) {
        exercise_json_request(&v);
    }

    /// The likeliest requests to plan: a range near now, a bucketed
    /// aggregation with any sampling, features and options.
    #[test]
    fn json_bucketed_requests_plan_or_are_refused(
        ty in pick(&["sum", "average", "quantile", "cardinality", "count", "ratePerSecond", "spread"]),
        size in json_duration(),
        extent in proptest::option::of(json_duration()),
        range in json_range(),
        options in json_options(),
        features in json_features(),
    ) {
        let mut agg = json!({"type": ty, "size": size});
        if let Some(e) = extent {
            agg["extent"] = e;
        }
        let body = json!({"aggregation": agg, "range": range, "options": options, "features": features});
        exercise_json_request(&body);
        let opts = json!({"aggregation": {"type": "opts", "sampling": {"size": size}, "aggregation": {"type": ty}}, "range": range});
        exercise_json_request(&opts);
    }
}
