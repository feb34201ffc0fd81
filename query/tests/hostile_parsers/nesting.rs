//! Nesting limits: HQL filters and expressions, JSON filters (with raw HQL
//! inside) and JSON aggregations are accepted up to their limit and
//! refused, for their nesting, beyond it — never a stack overflow.

use heroic_query::hql::{parse_expression, parse_filter, parse_query};
use heroic_query::limits::{MAX_AGGREGATION_DEPTH, MAX_EXPRESSION_DEPTH, MAX_FILTER_DEPTH};
use heroic_query::{Aggregation, QueryError, QueryMetrics};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::{config, object};

fn assert_nesting_error<T: std::fmt::Debug>(result: Result<T, QueryError>, what: &str) -> Result<(), TestCaseError> {
    match result {
        Ok(v) => Err(TestCaseError::fail(format!("{what}: accepted beyond the limit: {v:?}"))),
        Err(e) if e.to_string().contains("nesting limit") => Ok(()),
        Err(e) => Err(TestCaseError::fail(format!("{what}: refused, but not for its nesting: {e}"))),
    }
}

/// A nesting depth: mostly around the limit, sometimes far beyond it.
fn depth_around(limit: usize) -> BoxedStrategy<usize> {
    prop_oneof![4 => 0..=limit + 4, 1 => 0..=3 * limit, 1 => 500usize..3_000].boxed()
}

/// Wraps `leaf` in `wrappers` (outermost first), each a `(prefix, suffix)`.
fn wrap(leaf: &str, wrappers: &[(&str, &str)]) -> String {
    let mut s: String = wrappers.iter().map(|w| w.0).collect();
    s.push_str(leaf);
    s.extend(wrappers.iter().rev().map(|w| w.1));
    s
}

/// HQL filter wrappers: each adds exactly one level.
const FILTER_WRAPPERS: [(&str, &str); 5] =
    [("!", ""), ("! ", ""), ("(", ")"), ("(c = d and ", ")"), ("(e = f or ", ")")];
/// HQL expression wrappers: each adds exactly one level.
const EXPR_WRAPPERS: [(&str, &str); 6] =
    [("(", ")"), ("- ", ""), ("[", "]"), ("{", "}"), ("sum(", ")"), ("f(1, k=", ")")];

/// `[items…]`, moving the values in (`json!` would copy `inner`, which
/// makes building a deep value quadratic).
fn array(items: Vec<Value>) -> Value {
    Value::Array(items)
}

/// JSON filter wrappers, each adding one level.
fn json_filter_wrap(kind: u8, inner: Value) -> Value {
    match kind % 5 {
        0 => array(vec!["not".into(), inner]),
        1 => array(vec!["and".into(), inner, json!(["key", "a"])]),
        2 => array(vec!["or".into(), inner]),
        3 => object(vec![("type".into(), "not".into()), ("filter".into(), inner)]),
        _ => object(vec![("type".into(), "and".into()), ("filters".into(), array(vec![json!(["+", "h"]), inner]))]),
    }
}

/// JSON aggregation wrappers and the levels each adds (a `chain` object's
/// list is a level of its own).
fn json_aggregation_wrap(kind: u8, inner: Value) -> (Value, usize) {
    match kind % 5 {
        0 => (object(vec![("type".into(), "group".into()), ("of".into(), json!(["host"])), ("each".into(), inner)]), 1),
        1 => (object(vec![("type".into(), "collapse".into()), ("each".into(), inner)]), 1),
        2 => (
            object(vec![
                ("type".into(), "opts".into()),
                ("sampling".into(), json!({"size": "1m"})),
                ("aggregation".into(), inner),
            ]),
            1,
        ),
        3 => (array(vec![inner]), 1),
        _ => (object(vec![("type".into(), "chain".into()), ("chain".into(), array(vec![inner]))]), 2),
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn hql_filter_nesting_is_limited(kinds in depth_around(MAX_FILTER_DEPTH).prop_flat_map(|n| vec(0..FILTER_WRAPPERS.len(), n))) {
        let wrappers: Vec<_> = kinds.iter().map(|&k| FILTER_WRAPPERS[k]).collect();
        let levels = wrappers.len() + 1;
        let src = wrap("a = b", &wrappers);
        for (what, result) in [
            ("parse_filter", parse_filter(&src).map(|_| ())),
            ("parse_query", parse_query(&format!("* from points(1h) where {src}")).map(|_| ())),
            ("raw JSON filter", heroic_query::filter::parse_json(&json!(["q", src])).map(|_| ())),
        ] {
            if levels <= MAX_FILTER_DEPTH {
                prop_assert!(result.is_ok(), "{what}: {levels} levels refused: {result:?}");
            } else {
                assert_nesting_error(result, what)?;
            }
        }
    }

    #[test]
    fn hql_expression_nesting_is_limited(kinds in depth_around(MAX_EXPRESSION_DEPTH).prop_flat_map(|n| vec(0..EXPR_WRAPPERS.len(), n))) {
        let wrappers: Vec<_> = kinds.iter().map(|&k| EXPR_WRAPPERS[k]).collect();
        let levels = wrappers.len() + 1;
        let src = wrap("1", &wrappers);
        let result = parse_expression(&src);
        if levels <= MAX_EXPRESSION_DEPTH {
            prop_assert!(result.is_ok(), "{levels} levels refused: {result:?}");
        } else {
            assert_nesting_error(result, "parse_expression")?;
        }
        // In a query the select clause is the outermost expression too.
        let result = parse_query(&src);
        if levels > MAX_EXPRESSION_DEPTH {
            assert_nesting_error(result, "parse_query")?;
        } else {
            prop_assert!(result.is_ok(), "{levels} levels refused: {result:?}");
        }
    }

    #[test]
    fn json_filter_nesting_is_limited(
        kinds in prop_oneof![4 => 0..=MAX_FILTER_DEPTH + 4, 1 => 0usize..1_000].prop_flat_map(|n| vec(any::<u8>(), n)),
        raw_levels in 1..=MAX_FILTER_DEPTH,
    ) {
        let mut v = json!(["key", "cpu"]);
        for &k in kinds.iter().rev() {
            v = json_filter_wrap(k, v);
        }
        let levels = kinds.len() + 1;
        let result = heroic_query::filter::parse_json(&v);
        if levels <= MAX_FILTER_DEPTH {
            prop_assert!(result.is_ok(), "{levels} levels refused: {result:?}");
        } else {
            assert_nesting_error(result, "parse_json")?;
        }
        let request = QueryMetrics::from_json(&object(vec![("filter".into(), v)]));
        if levels <= MAX_FILTER_DEPTH {
            prop_assert!(request.is_ok(), "{levels} levels refused: {request:?}");
        } else {
            assert_nesting_error(request, "QueryMetrics::from_json")?;
        }
        // Raw HQL inside adds its own levels: an alternating and/or filter
        // of `raw_levels` levels, which no optimisation flattens.
        let mut hql = "a = b".to_string();
        for i in 1..raw_levels {
            let op = if i % 2 == 0 { "or" } else { "and" };
            hql = format!("(c{i} = d {op} {hql})");
        }
        let mut v = json!(["q", hql]);
        for &k in kinds.iter().rev() {
            v = json_filter_wrap(k, v);
        }
        let result = heroic_query::filter::parse_json(&v);
        if kinds.len() + raw_levels <= MAX_FILTER_DEPTH {
            prop_assert!(result.is_ok(), "{} + {raw_levels} levels refused: {result:?}", kinds.len());
        } else {
            assert_nesting_error(result, "parse_json with raw HQL")?;
        }
    }

    #[test]
    fn json_aggregation_nesting_is_limited(
        kinds in prop_oneof![4 => 0..=MAX_AGGREGATION_DEPTH + 4, 1 => 0usize..1_000].prop_flat_map(|n| vec(any::<u8>(), n)),
    ) {
        let mut v = json!({"type": "sum", "size": "1m"});
        let mut levels = 1;
        for &k in kinds.iter().rev() {
            let (wrapped, added) = json_aggregation_wrap(k, v);
            v = wrapped;
            levels += added;
        }
        let result = Aggregation::from_json(&v);
        let request = QueryMetrics::from_json(&object(vec![("aggregation".into(), v)]));
        if levels <= MAX_AGGREGATION_DEPTH {
            prop_assert!(result.is_ok(), "{levels} levels refused: {result:?}");
            prop_assert!(request.is_ok(), "{levels} levels refused: {request:?}");
        } else {
            assert_nesting_error(result, "Aggregation::from_json")?;
            assert_nesting_error(request, "QueryMetrics::from_json")?;
        }
    }
}
