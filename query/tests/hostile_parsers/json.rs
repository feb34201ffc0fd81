//! Near-valid JSON filters and aggregations: the array and object forms,
//! raw HQL inside, every type with every field, wrong arities, wrong types
//! and numbers at every boundary.

use heroic_plugin_api::types::Series;
use heroic_query::Aggregation;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::hql::hql_filter;
use crate::{config, object, pick, NOW};

fn exercise_json_filter(v: &Value) {
    if let Ok(f) = heroic_query::filter::parse_json(v) {
        let _ = heroic_query::filter::to_json(&f);
        if let Ok(m) = f.compile() {
            let _ = m.matches(&Series::new("cpu", [("host", "a")], [("pod", "p")]));
        }
    }
}

fn exercise_json_aggregation(v: &Value) {
    if let Ok(a) = Aggregation::from_json(v) {
        let _ = a.to_json();
        for default_size in [1, 1_000, i64::MAX] {
            let _ = a.apply(default_size);
        }
    }
}

/// Numbers at every boundary: i64/u64 limits, negative zero, 1e308.
pub(crate) fn json_number() -> BoxedStrategy<Value> {
    prop_oneof![
        pick_value(vec![
            json!(0),
            json!(1),
            json!(-1),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(i64::MAX as u64 + 1),
            json!(1e308),
            json!(-1e308),
            json!(f64::MIN_POSITIVE),
            json!(-0.0),
            json!(0.5),
            json!(1.5),
            json!(NOW),
            json!(NOW - 3_600_000),
            json!(NOW + 3_600_000),
            json!(240),
            json!(100_001),
        ]),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
    ]
    .boxed()
}

pub(crate) fn pick_value(items: Vec<Value>) -> BoxedStrategy<Value> {
    proptest::sample::select(items).boxed()
}

/// Strings a filter, aggregation or request might hold, good or bad.
pub(crate) fn json_string() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => pick(&[
            "", "a", "host", "cpu", "and", "or", "not", "key", "=", "!=", "+", "^", "!^", "~", "=~", "!~", "true", "false", "q",
            "5m", "0ms", "1y", "2w", "9223372036854775807w", "9223372036854775807d", "99999999999999999999ms", "-1m", "1.5m",
            "m", "MILLISECONDS", "seconds", "Hours", "DAYS", "WEEKS", "points", "spreads", "start", "end", "NONE", "DETAILED",
            ".*", "x)|(.*", "(", "a = b", "!!!!a = b", "sum(1m)",
        ]),
        1 => any::<String>(),
    ]
    .prop_map(|s: String| Value::String(s))
    .boxed()
}

pub(crate) fn json_scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => json_number(),
        3 => json_string(),
        1 => Just(json!([])),
        1 => Just(json!({})),
    ]
    .boxed()
}

/// Filters in the array and object forms, with raw HQL, wrong arities and
/// wrong types.
pub(crate) fn json_filter() -> BoxedStrategy<Value> {
    let op =
        pick(&["and", "or", "not", "key", "=", "!=", "+", "^", "!^", "~", "=~", "!~", "true", "false", "q", "bogus"]);
    let ty = pick(&[
        "and",
        "or",
        "not",
        "key",
        "=",
        "matchTag",
        "+",
        "hasTag",
        "^",
        "startsWith",
        "~",
        "regex",
        "true",
        "false",
        "q",
        "bogus",
    ]);
    let leaf = prop_oneof![
        (op.clone(), vec(prop_oneof![3 => json_string(), 1 => json_scalar()], 0..4)).prop_map(|(op, args)| {
            let mut items = vec![Value::from(op)];
            items.extend(args);
            Value::Array(items)
        }),
        hql_filter().prop_map(|f| json!(["q", f])),
        (
            ty,
            vec(
                (
                    pick(&["tag", "value", "key", "filter", "type", "x"]),
                    prop_oneof![3 => json_string(), 1 => json_scalar()]
                ),
                0..4
            )
        )
            .prop_map(|(ty, fields)| {
                let mut fields: Vec<(String, Value)> = fields;
                fields.insert(0, ("type".to_string(), Value::from(ty)));
                object(fields)
            }),
        json_scalar(),
    ];
    leaf.prop_recursive(5, 64, 4, move |inner| {
        prop_oneof![
            (op.clone(), vec(inner.clone(), 0..4)).prop_map(|(op, children)| {
                let mut items = vec![Value::from(op)];
                items.extend(children);
                Value::Array(items)
            }),
            (pick(&["and", "or", "bogus"]), pick(&["filters", "filterList", "x"]), vec(inner.clone(), 0..4)).prop_map(
                |(ty, name, children)| object(vec![("type".into(), Value::from(ty)), (name, Value::Array(children))])
            ),
            inner.clone().prop_map(|f| json!({"type": "not", "filter": f})),
            vec(inner, 0..4).prop_map(Value::Array),
        ]
    })
    .boxed()
}

/// A duration as JSON: milliseconds or a string, in range or not.
pub(crate) fn json_duration() -> BoxedStrategy<Value> {
    prop_oneof![json_number(), json_string(), json_scalar()].boxed()
}

fn json_sampling() -> BoxedStrategy<Value> {
    vec((pick(&["unit", "value", "size", "extent", "x"]), prop_oneof![json_duration(), json_string()]), 0..4)
        .prop_map(object)
        .boxed()
}

/// Aggregations of every type with every field, sizes 0, negative, huge or
/// of the wrong type; lists (chains) and nesting.
pub(crate) fn json_aggregation() -> BoxedStrategy<Value> {
    let ty = pick(&[
        "empty",
        "sum",
        "sum2",
        "average",
        "min",
        "max",
        "count",
        "stddev",
        "spread",
        "quantile",
        "ratePerSecond",
        "delta",
        "deltaPerSecond",
        "notNegative",
        "topk",
        "bottomk",
        "abovek",
        "belowk",
        "pointsabove",
        "pointsbelow",
        "cardinality",
        "group",
        "collapse",
        "chain",
        "opts",
        "bogus",
    ]);
    let method = vec(
        (
            pick(&["type", "precision", "includeKey"]),
            prop_oneof![pick(&["exact", "hll", "hllp", "bogus"]).prop_map(Value::from), json_scalar()],
        ),
        0..4,
    )
    .prop_map(object);
    let field = prop_oneof![
        (pick(&["size", "extent"]), json_duration()),
        (Just("sampling".to_string()), prop_oneof![3 => json_sampling(), 1 => json_scalar()]),
        (pick(&["q", "error", "k", "threshold"]), json_number()),
        (pick(&["q", "error", "k", "threshold"]), json_scalar()),
        (Just("method".to_string()), prop_oneof![3 => method, 1 => json_scalar()]),
        (Just("of".to_string()), prop_oneof![vec(json_string(), 0..3).prop_map(Value::Array), json_scalar()]),
    ];
    let leaf = prop_oneof![
        4 => (ty, vec(field, 0..5)).prop_map(|(ty, fields)| {
            let mut fields: Vec<(String, Value)> = fields;
            fields.insert(0, ("type".to_string(), Value::from(ty)));
            object(fields)
        }),
        1 => json_scalar(),
    ];
    leaf.prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            (pick(&["group", "collapse"]), proptest::option::of(vec(json_string(), 0..3)), inner.clone())
                .prop_map(|(ty, of, each)| json!({"type": ty, "of": of, "each": each})),
            vec(inner.clone(), 0..4).prop_map(|c| json!({"type": "chain", "chain": c})),
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            (json_sampling(), inner).prop_map(|(s, a)| json!({"type": "opts", "sampling": s, "aggregation": a})),
        ]
    })
    .boxed()
}
proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn json_filters_are_ok_or_an_error(v in json_filter()) {
        exercise_json_filter(&v);
    }

    #[test]
    fn json_aggregations_are_ok_or_an_error(v in json_aggregation()) {
        exercise_json_aggregation(&v);
    }
}
