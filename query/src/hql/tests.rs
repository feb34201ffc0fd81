use serde_json::json;

use super::*;

fn err(src: &str) -> (u32, u32, String) {
    match parse_query(src).and_then(|q| q.aggregation().and_then(|_| q.source()).map(|_| q)) {
        Err(QueryError::Parse { line, col, message }) => (line, col, message),
        Err(QueryError::Meaning { start, message, .. }) => (start.line, start.col, message),
        other => panic!("expected a parse error for {src:?}, got {other:?}"),
    }
}

#[test]
fn filters() {
    let f = |s: &str| parse_filter(s).unwrap();
    assert_eq!(f("$key = cpu"), Filter::key("cpu"));
    assert_eq!(f("$key != cpu"), Filter::not(Filter::key("cpu")));
    assert_eq!(f("host = a"), Filter::match_tag("host", "a"));
    assert_eq!(f("host != \"a b\""), Filter::not(Filter::match_tag("host", "a b")));
    assert_eq!(f("+host"), Filter::has_tag("host"));
    assert_eq!(f("!+host"), Filter::not(Filter::has_tag("host")));
    assert_eq!(f("host ^ db"), Filter::starts_with("host", "db"));
    assert_eq!(f("host !^ db"), Filter::not(Filter::starts_with("host", "db")));
    assert_eq!(f("host ~ \"db[0-9]+\""), Filter::regex("host", "db[0-9]+"));
    assert_eq!(f("host !~ \"db.*\""), Filter::not(Filter::regex("host", "db.*")));
    assert_eq!(f("host in [a, b]"), Filter::Or(vec![Filter::match_tag("host", "a"), Filter::match_tag("host", "b")]));
    assert_eq!(
        f("host not in [a, b]"),
        Filter::not(Filter::Or(vec![Filter::match_tag("host", "a"), Filter::match_tag("host", "b")]))
    );
    assert_eq!(f("true"), Filter::True);
    assert_eq!(f("false or true"), Filter::True);
    assert_eq!(f("!(a = 1)"), Filter::not(Filter::match_tag("a", "1")));
    assert_eq!(f("site = lon-1.example:80/x"), Filter::match_tag("site", "lon-1.example:80/x"));
    assert_eq!(f("a = \"x\\\"y\\u0041\\n\""), Filter::match_tag("a", "x\"yA\n"));
}

/// Heroic's precedence (its ANTLR grammar): `or` binds tighter than `and`,
/// and `!` is the loosest, negating everything to its right.
#[test]
fn filter_precedence_is_heroics() {
    let raw = |s: &str| {
        let toks = super::lexer::lex(s).unwrap();
        let mut p = super::parser::Parser::new(toks);
        let f = p.filter().unwrap();
        p.expect_eof().unwrap();
        f
    };
    let (a, b, c) = (Filter::match_tag("a", "1"), Filter::match_tag("b", "2"), Filter::match_tag("c", "3"));
    let and = |x: Vec<Filter>| Filter::And(x);
    let or = |x: Vec<Filter>| Filter::Or(x);
    let not = Filter::not;
    let cases = [
        ("a = 1 and b = 2 or c = 3", and(vec![a.clone(), or(vec![b.clone(), c.clone()])])),
        ("a = 1 or b = 2 and c = 3", and(vec![or(vec![a.clone(), b.clone()]), c.clone()])),
        ("!a = 1 and b = 2", not(and(vec![a.clone(), b.clone()]))),
        ("!a = 1 or b = 2", not(or(vec![a.clone(), b.clone()]))),
        // ANTLR parses a prefix operator's operand at the operator's own
        // precedence, the lowest here: even after a parenthesis, `!` takes
        // the `and` that follows. (The spec's table gives
        // `!(a=1) and b=2` for this line; the grammar does not.)
        ("!(a = 1) and b = 2", not(and(vec![a.clone(), b.clone()]))),
        ("(!a = 1) and b = 2", and(vec![not(a.clone()), b.clone()])),
        ("a = 1 and !b = 2 or c = 3", and(vec![a.clone(), not(or(vec![b.clone(), c.clone()]))])),
        ("a = 1 or !b = 2 and c = 3", or(vec![a.clone(), not(and(vec![b.clone(), c.clone()]))])),
        ("(a = 1 and b = 2) or c = 3", or(vec![and(vec![a.clone(), b.clone()]), c.clone()])),
        ("a = 1 and b = 2 and c = 3", and(vec![a.clone(), b.clone(), c.clone()])),
        ("a != 1 and b = 2", and(vec![not(a.clone()), b.clone()])),
        ("!+a and b = 2", not(and(vec![Filter::has_tag("a"), b.clone()]))),
    ];
    for (hql, expected) in cases {
        assert_eq!(raw(hql), expected, "{hql}");
    }
    // `not` is only valid in `not in`, as in Heroic's grammar.
    for bad in ["not a = 1", "not (a = 1)", "a = 1 and not b = 2"] {
        let e = parse_filter(bad).unwrap_err();
        assert!(e.to_string().contains("only valid in 'not in'"), "{bad}: {e}");
    }
    assert!(parse_filter("a not in [x, y]").is_ok());
}
#[test]
fn full_query() {
    let q =
        parse_query("average(10m) by host | sum by site from points(1d) where $key = system and role = db # comment\n")
            .unwrap();
    let agg = q.aggregation().unwrap().unwrap();
    let j = agg.to_json();
    assert_eq!(j["type"], "chain");
    assert_eq!(j["chain"][0]["type"], "group");
    assert_eq!(j["chain"][0]["of"], json!(["host"]));
    assert_eq!(j["chain"][0]["each"]["type"], "average");
    assert_eq!(j["chain"][0]["each"]["size"], "10m");
    assert_eq!(j["chain"][1]["of"], json!(["site"]));
    assert_eq!(j["chain"][1]["each"]["type"], "sum");
    assert_eq!(q.range(0).unwrap(), Some(QueryRange::Relative { unit: TimeUnit::Days, value: 1 }));
    assert_eq!(q.filter, Some(Filter::And(vec![Filter::key("system"), Filter::match_tag("role", "db")])));
    let json = q.to_json(0).unwrap();
    assert_eq!(json["source"], "points");
    assert_eq!(json["range"], json!({"type": "relative", "unit": "DAYS", "value": 1}));
    assert_eq!(json["filter"], json!(["and", ["key", "system"], ["=", "role", "db"]]));
}

#[test]
fn select_all_and_by_star() {
    let q = parse_query("* from points(1h)").unwrap();
    assert!(q.select.is_none());
    let q = parse_query("average(10ms) by * | topk(2) | bottomk(1)").unwrap();
    let agg = q.aggregation().unwrap().unwrap();
    assert_eq!(agg.to_json()["chain"][0]["of"], serde_json::Value::Null);
    assert_eq!(agg.to_json()["chain"][1], json!({"type": "topk", "k": 2}));
}

#[test]
fn arguments_and_literals() {
    let a = |s: &str| parse_query(s).unwrap().aggregation().unwrap().unwrap().to_json();
    assert_eq!(a("average(size=10m, extent=1h)")["extent"], "1h");
    assert_eq!(a("quantile(q=0.99)")["q"], 0.99);
    assert_eq!(a("cardinality(10m, method=exact)")["method"]["type"], "exact");
    assert_eq!(a("cardinality(10m, method=hllp(includeKey=\"true\"))")["method"]["includeKey"], true);
    assert_eq!(a("pointsabove(-1.5)")["threshold"], -1.5);
    let q = parse_query("* from points({2016-07-29 16:25}, {2016-07-29 18:25:00.000})").unwrap();
    assert_eq!(q.range(0).unwrap(), Some(QueryRange::Absolute { start: 1_469_809_500_000, end: 1_469_816_700_000 }));
    let q = parse_query("* from points($now - 2h + 30m, $now)").unwrap();
    assert_eq!(
        q.range(10_000_000).unwrap(),
        Some(QueryRange::Absolute { start: 10_000_000 - 5_400_000, end: 10_000_000 })
    );
    let q = parse_query("* from points({12:00}, $now)").unwrap();
    let now = 86_400_000 * 3 + 50_000_000;
    assert_eq!(q.range(now).unwrap(), Some(QueryRange::Absolute { start: 86_400_000 * 3 + 43_200_000, end: now }));
    let q = parse_query("* from points(2 * 1h / 4)").unwrap();
    assert_eq!(q.range(0).unwrap(), Some(QueryRange::Relative { unit: TimeUnit::Milliseconds, value: 1_800_000 }));
}

#[test]
fn statements() {
    let s = parse_statements("sum(1m); let $a = max where a = b; * from points(1h) with x = 1 as y = 2;").unwrap();
    assert_eq!(s.len(), 3);
    assert!(matches!(&s[1], Statement::Let { name, .. } if name == "a"));
    match &s[2] {
        Statement::Query(q) => {
            assert_eq!(q.with.len(), 1);
            assert_eq!(q.as_.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err("sum; max").0, 1);
    assert_eq!(err("sum; max").1, 6);
}

#[test]
fn error_positions() {
    let (l, c, m) = err("average(10m");
    assert_eq!((l, c), (1, 12));
    assert!(m.contains("expected ')'"), "{m}");
    let (l, c, m) = err("sum(10m)\nfrom points(1h)\nwhere host = ");
    assert_eq!((l, c), (3, 14));
    assert!(m.contains("expected a value"), "{m}");
    let (l, c, m) = err("sum(10w)");
    assert_eq!((l, c), (1, 5));
    assert!(m.contains("not supported"), "{m}");
    let (_, c, m) = err("sum(10M)");
    assert_eq!(c, 5);
    assert!(m.contains("not supported"), "{m}");
    let (_, c, m) = err("bogus(10m)");
    assert_eq!(c, 1);
    assert!(m.contains("unknown aggregation 'bogus'"), "{m}");
    let (_, c, m) = err("topk(k=\"x\")");
    assert_eq!(c, 8);
    assert!(m.contains("expected a non-negative integer for k"), "{m}");
    let (_, c, m) = err("sum where a = \"unterminated");
    assert_eq!(c, 15);
    assert!(m.contains("unterminated"), "{m}");
    let (_, c, m) = err("sum where a & b");
    assert_eq!(c, 13);
    assert!(m.contains("unexpected character"), "{m}");
    let (_, _, m) = err("sum(10m, size=1h, 5m)");
    assert!(m.contains("positional arguments must come first"), "{m}");
    let (_, _, m) = err("sum from nowhere(1h)");
    assert!(m.contains("unknown source"), "{m}");
    let (_, _, m) = err("sum(10m, 1h, 1s)");
    assert!(m.contains("too many arguments"), "{m}");
    let (_, _, m) = err("sum(foo=1)");
    assert!(m.contains("unknown argument 'foo'"), "{m}");
}

/// Errors found while building the query span the expression at fault, by
/// character offset (Heroic reports them so).
#[test]
fn meaning_errors_span_their_expression() {
    let span = |src: &str| match parse_query(src)
        .and_then(|q| q.aggregation().and_then(|_| q.range(0)).and_then(|_| q.source()).map(|_| q))
    {
        Err(QueryError::Meaning { start, end, .. }) => ((start.line, start.offset), (end.line, end.offset)),
        other => panic!("expected an error in meaning for {src:?}, got {other:?}"),
    };
    assert_eq!(span("sum(10w)"), ((1, 4), (1, 6)));
    assert_eq!(span("bogus(10m)"), ((1, 0), (1, 9)));
    assert_eq!(span("sum(10m)\n| average(1w)"), ((2, 19), (2, 20)));
    assert_eq!(span("* from points($foo + 1h)"), ((1, 14), (1, 17)));
    assert_eq!(span("* from points(2h, 1h)"), ((1, 14), (1, 19)));
    assert_eq!(span("* from nowhere(1h)"), ((1, 7), (1, 13)));
    assert_eq!(span("sum(size=\"x\")"), ((1, 9), (1, 11)));
}
