//! Input nested without bound must be refused with a 400-style error that
//! names the limit, never overflow the stack (which aborts the process).

use heroic_query::hql::{parse_filter, parse_query};
use heroic_query::limits::{MAX_AGGREGATION_DEPTH, MAX_EXPRESSION_DEPTH, MAX_FILTER_DEPTH};
use heroic_query::{Aggregation, QueryError, QueryMetrics};
use serde_json::{json, Value};

fn assert_nesting_error(result: Result<impl std::fmt::Debug, QueryError>, what: &str) {
    let err = result.expect_err("nested input must be refused");
    let message = err.to_string();
    assert!(message.contains("nesting limit"), "{what}: {message}");
}

#[test]
fn twenty_thousand_bangs_are_refused() {
    let filter = format!("{}$key = a", "!".repeat(20_000));
    assert_nesting_error(parse_filter(&filter), "parse_filter");
    assert_nesting_error(parse_query(&format!("* from points(1h) where {filter}")), "parse_query");
}

#[test]
fn twenty_thousand_parentheses_are_refused() {
    let open = "(".repeat(20_000);
    assert_nesting_error(parse_query(&format!("{open}sum(1m)")), "expression");
    assert_nesting_error(parse_filter(&format!("{open}a = b")), "filter");
    assert_nesting_error(parse_query(&format!("sum({open}1m)")), "call argument");
    assert_nesting_error(parse_query(&format!("{}1", "- ".repeat(20_000))), "unary minus");
    assert_nesting_error(parse_query(&format!("{}1", "[".repeat(20_000))), "lists");
}

#[test]
fn nesting_up_to_the_limit_is_accepted() {
    let filter = format!("{}a = b", "!".repeat(MAX_FILTER_DEPTH - 1));
    assert!(parse_filter(&filter).is_ok());
    let filter = format!("{}a = b{}", "(".repeat(MAX_FILTER_DEPTH - 1), ")".repeat(MAX_FILTER_DEPTH - 1));
    assert!(parse_filter(&filter).is_ok());
    let expr = format!("{}sum(1m){}", "(".repeat(MAX_EXPRESSION_DEPTH - 2), ")".repeat(MAX_EXPRESSION_DEPTH - 2));
    assert!(parse_query(&expr).is_ok(), "{:?}", parse_query(&expr));
}

/// A filter of `levels` alternating `or`/`and` levels, which no
/// optimisation flattens.
fn alternating(levels: usize) -> String {
    let mut f = "a = b".to_string();
    for i in 1..levels {
        f = if i % 2 == 0 { format!("(c{i} = d or {f})") } else { format!("(c{i} = d and {f})") };
    }
    f
}

#[test]
fn alternating_and_or_levels_count_towards_the_limit() {
    assert!(parse_filter(&alternating(MAX_FILTER_DEPTH)).is_ok());
    assert_nesting_error(parse_filter(&alternating(MAX_FILTER_DEPTH + 1)), "alternating");
}

fn nested_json_filter(depth: usize) -> Value {
    let mut v = json!(["key", "cpu"]);
    for _ in 1..depth {
        v = json!(["not", v]);
    }
    v
}

#[test]
fn json_filters_nested_too_deep_are_refused() {
    assert!(heroic_query::filter::parse_json(&nested_json_filter(MAX_FILTER_DEPTH)).is_ok());
    let err = heroic_query::filter::parse_json(&nested_json_filter(MAX_FILTER_DEPTH + 1)).unwrap_err();
    assert!(err.to_string().contains("nesting limit"), "{err}");
    // Raw HQL inside JSON adds its own levels.
    let mut v = json!(["q", alternating(MAX_FILTER_DEPTH - 2)]);
    for _ in 0..4 {
        v = json!(["and", v, ["key", "x"]]);
    }
    let err = heroic_query::filter::parse_json(&v).unwrap_err();
    assert!(err.to_string().contains("nesting limit"), "{err}");
    // And through a whole request.
    let body = json!({"filter": nested_json_filter(MAX_FILTER_DEPTH + 1)});
    assert_nesting_error(QueryMetrics::from_json(&body), "request");
}

#[test]
fn json_aggregations_nested_too_deep_are_refused() {
    let mut v = json!({"type": "sum"});
    for _ in 1..=MAX_AGGREGATION_DEPTH {
        v = json!({"type": "group", "of": ["host"], "each": v});
    }
    assert_nesting_error(Aggregation::from_json(&v), "group");
    let mut v = json!({"type": "sum"});
    for _ in 1..=MAX_AGGREGATION_DEPTH {
        v = json!([v]);
    }
    assert_nesting_error(Aggregation::from_json(&v), "chain lists");
}
