//! Near-valid HQL: every token HQL has (and broken ones), expressions,
//! filters and whole queries built from them, then lightly edited, through
//! every HQL entry point and on to planning (see [`exercise_request`]).

use heroic_query::hql::{parse_expression, parse_filter, parse_query, parse_statements};
use heroic_query::{Aggregation, QueryMetrics};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::literals::{hql_duration, hql_float, hql_integer, hql_quoted, hql_time_literal};
use crate::plan::exercise_request;
use crate::{config, pick, NOW};

/// Every HQL entry point, then the whole request path for what parses.
fn exercise_hql(src: &str) {
    let _ = parse_filter(src);
    let _ = parse_statements(src);
    if let Ok(e) = parse_expression(src) {
        let _ = Aggregation::from_expr(&e);
        let _ = e.eval_millis(NOW);
        let _ = e.as_duration();
    }
    if let Ok(q) = parse_query(src) {
        let _ = q.to_json(NOW);
    }
    exercise_request(&QueryMetrics::from_hql(src));
}

/// One token of HQL, near-valid or not.
fn hql_token() -> BoxedStrategy<String> {
    prop_oneof![
        3 => pick(&[
            "(", ")", "[", "]", "{", "}", ",", ";", "|", "=", "!=", "^", "!^", "~", "!~", "!", "+", "-", "*", "/", "and", "or",
            "not", "in", "from", "where", "by", "let", "with", "as", "true", "false", "$key", "$now", "$x", "$", "$1", "#c\n",
        ]),
        2 => pick(&[
            "sum", "sum2", "average", "min", "max", "count", "stddev", "spread", "quantile", "ratePerSecond", "cardinality",
            "delta", "deltaPerSecond", "notNegative", "topk", "bottomk", "abovek", "belowk", "pointsabove", "pointsbelow",
            "group", "collapse", "chain", "opts", "empty", "points", "spreads", "tdigestPoints", "host", "role", "size",
            "extent", "q", "error", "k", "method", "exact", "hll", "hllp", "precision", "includeKey", "of", "each",
            "a-b", "foo.bar", "a/b", "::", "--", "a:b:c", "-x", "1-2-3",
        ]),
        1 => hql_integer(),
        1 => hql_float(),
        1 => hql_duration(),
        1 => hql_time_literal(),
        1 => hql_quoted(),
    ]
    .boxed()
}

fn ident() -> BoxedStrategy<String> {
    pick(&[
        "sum",
        "average",
        "max",
        "count",
        "quantile",
        "cardinality",
        "topk",
        "abovek",
        "pointsabove",
        "group",
        "collapse",
        "chain",
        "opts",
        "empty",
        "delta",
        "notNegative",
        "spread",
        "ratePerSecond",
        "bogus",
        "exact",
        "hll",
        "hllp",
    ])
}

fn keyword_name() -> BoxedStrategy<String> {
    pick(&[
        "size",
        "extent",
        "q",
        "error",
        "k",
        "method",
        "precision",
        "includeKey",
        "of",
        "each",
        "aggregation",
        "threshold",
        "x",
    ])
}

/// Expressions: calls with positional and keyword arguments, arithmetic,
/// lists, negation, `by` and `|`, over any literal.
fn hql_expr() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        3 => hql_token(),
        1 => hql_integer(),
        1 => hql_duration(),
        1 => hql_time_literal(),
        1 => Just("$now".to_string()),
    ];
    leaf.prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            (ident(), vec(inner.clone(), 0..4), vec((keyword_name(), inner.clone()), 0..3)).prop_map(
                |(name, args, kwargs)| {
                    let mut all: Vec<String> = args;
                    all.extend(kwargs.into_iter().map(|(k, v)| format!("{k}={v}")));
                    format!("{name}({})", all.join(", "))
                }
            ),
            (inner.clone(), pick(&["+", "-", "*", "/", "|", "by", " by *", ","]), inner.clone()).prop_map(
                |(a, op, b)| {
                    if op == " by *" {
                        format!("{a} by *")
                    } else {
                        format!("{a} {op} {b}")
                    }
                }
            ),
            inner.clone().prop_map(|e| format!("({e})")),
            inner.clone().prop_map(|e| format!("- {e}")),
            vec(inner.clone(), 0..4).prop_map(|items| format!("[{}]", items.join(", "))),
            vec(inner, 0..4).prop_map(|items| format!("{{{}}}", items.join(", "))),
        ]
    })
    .boxed()
}

/// A filter value: any literal the parser takes as a string, or not.
fn hql_value() -> BoxedStrategy<String> {
    prop_oneof![
        3 => pick(&["a", "b", "db1", "foo.bar", "a-b", "a/b", "*", "", "(", ".*", "x)|(.*", "[", "\\"]),
        2 => hql_token(),
    ]
    .boxed()
}

pub(crate) fn hql_filter() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        (hql_value(), pick(&["=", "!=", "^", "!^", "~", "!~", "in", "not in", "", "=="]), hql_value())
            .prop_map(|(k, op, v)| format!("{k} {op} {v}")),
        (hql_value(), pick(&["in", "not in"]), vec(hql_value(), 0..4), any::<bool>()).prop_map(
            |(k, op, vs, square)| if square {
                format!("{k} {op} [{}]", vs.join(", "))
            } else {
                format!("{k} {op} {{{}}}", vs.join(", "))
            }
        ),
        hql_value().prop_map(|k| format!("+{k}")),
        (pick(&["=", "!=", "~"]), hql_value()).prop_map(|(op, v)| format!("$key {op} {v}")),
        pick(&["true", "false", "$key", "+", "!"]),
        (hql_value(), pick(&["~", "!~"]), hql_quoted()).prop_map(|(k, op, v)| format!("{k} {op} {v}")),
    ];
    leaf.prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|f| format!("!{f}")),
            inner.clone().prop_map(|f| format!("not {f}")),
            inner.clone().prop_map(|f| format!("({f})")),
            (inner.clone(), pick(&["and", "or", "AND", "&&", ""]), inner)
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        ]
    })
    .boxed()
}

fn hql_range() -> BoxedStrategy<String> {
    let bound = prop_oneof![
        3 => hql_expr(),
        2 => pick(&["$now", "$now - 1h", "$now - 1d", "0", "1", "$now + 10m", "{00:00}", "{2016-07-29}", "{2016-07-29 16:25}"]),
        1 => pick(&[
            "0 - 9223372036854775807 - 1",
            "9223372036854775807 + 1",
            "9223372036854775807 * 2",
            "$now - 9223372036854775807",
            "$now * $now",
            "1 / 0",
            "- 9223372036854775807",
        ]),
    ];
    prop_oneof![
        bound.clone().prop_map(|b| format!("({b})")),
        (bound.clone(), bound).prop_map(|(a, b)| format!("({a}, {b})")),
        Just(String::new()),
        Just("()".to_string()),
    ]
    .boxed()
}

fn kv_list() -> BoxedStrategy<String> {
    vec((keyword_name(), hql_expr()), 1..3)
        .prop_map(|kvs| kvs.into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "))
        .boxed()
}

/// Whole queries: `select from source(range) where filter with … as …`,
/// every part optional or wrong.
pub(crate) fn hql_query() -> BoxedStrategy<String> {
    let select = prop_oneof![Just("*".to_string()), hql_expr()];
    let source = pick(&["points", "spreads", "groups", "cardinality", "bogus", "(", "1"]);
    (
        select,
        proptest::option::of((source, hql_range())),
        proptest::option::of(hql_filter()),
        proptest::option::of(kv_list()),
        proptest::option::of(kv_list()),
    )
        .prop_map(|(select, from, filter, with, as_)| {
            let mut q = select;
            if let Some((source, range)) = from {
                q.push_str(&format!(" from {source}{range}"));
            }
            if let Some(f) = filter {
                q.push_str(&format!(" where {f}"));
            }
            if let Some(w) = with {
                q.push_str(&format!(" with {w}"));
            }
            if let Some(a) = as_ {
                q.push_str(&format!(" as {a}"));
            }
            q
        })
        .boxed()
}

/// Edits to a string: delete, insert a token or repeat a slice, at char positions.
#[derive(Clone, Debug)]
enum Edit {
    Delete(usize),
    Insert(usize, String),
    Repeat(usize, usize),
}

fn edits() -> BoxedStrategy<Vec<Edit>> {
    vec(
        prop_oneof![
            any::<usize>().prop_map(Edit::Delete),
            (any::<usize>(), hql_token()).prop_map(|(i, t)| Edit::Insert(i, t)),
            (any::<usize>(), 1usize..8).prop_map(|(i, n)| Edit::Repeat(i, n)),
        ],
        0..4,
    )
    .boxed()
}

fn apply_edits(src: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = src.chars().collect();
    for e in edits {
        let at = |i: usize| {
            if chars.is_empty() {
                0
            } else {
                i % (chars.len() + 1)
            }
        };
        match e {
            Edit::Delete(i) if !chars.is_empty() => {
                let i = i % chars.len();
                chars.remove(i);
            }
            Edit::Delete(_) => {}
            Edit::Insert(i, t) => {
                let i = at(*i);
                chars.splice(i..i, format!(" {t} ").chars());
            }
            Edit::Repeat(i, n) => {
                let i = at(*i);
                let end = (i + n).min(chars.len());
                let slice: Vec<char> = chars[i..end].to_vec();
                chars.splice(i..i, slice);
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(config(1024))]

    /// Any text at all, and printable ASCII (which gets further into the lexer).
    #[test]
    fn hql_any_text_is_ok_or_an_error(s in any::<String>(), ascii in "[ -~\n]{0,120}") {
        exercise_hql(&s);
        exercise_hql(&ascii);
    }

    /// Token soup: every token HQL has, and broken ones, in any order.
    #[test]
    fn hql_token_soup_is_ok_or_an_error(tokens in vec(hql_token(), 0..40), glue in pick(&[" ", "", "\n", "\t"])) {
        exercise_hql(&tokens.join(&glue));
    }

    /// Literals alone and in the places a query evaluates them.
    #[test]
    fn hql_literals_are_ok_or_an_error(lit in prop_oneof![hql_integer(), hql_float(), hql_duration(), hql_time_literal(), hql_quoted()]) {
        exercise_hql(&lit);
        exercise_hql(&format!("sum({lit})"));
        exercise_hql(&format!("* from points({lit})"));
        exercise_hql(&format!("* from points({lit}, $now)"));
        exercise_hql(&format!("* from points($now - {lit}, {lit})"));
        exercise_hql(&format!("quantile(q={lit}, error={lit})"));
        exercise_hql(&format!("cardinality(1m, method=hll(precision={lit}))"));
        exercise_hql(&format!("topk({lit}) from points(1h)"));
        exercise_hql(&format!("* from points(1h) where a = {lit}"));
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Grammatical queries, statements and filters, then lightly edited.
    #[test]
    fn hql_near_valid_queries_are_ok_or_an_error(q in hql_query(), f in hql_filter(), e in edits()) {
        exercise_hql(&q);
        exercise_hql(&apply_edits(&q, &e));
        exercise_hql(&f);
        exercise_hql(&apply_edits(&f, &e));
        exercise_hql(&format!("let $a = {q}; {q};"));
    }
}
