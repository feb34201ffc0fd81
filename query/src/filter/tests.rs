use serde_json::json;

use super::*;

fn p(v: serde_json::Value) -> Filter {
    parse_json(&v).unwrap()
}

fn tag(k: &str, v: &str) -> Filter {
    Filter::match_tag(k, v)
}

#[test]
fn every_array_operator() {
    assert_eq!(p(json!(["key", "cpu"])), Filter::key("cpu"));
    assert_eq!(p(json!(["=", "host", "a"])), tag("host", "a"));
    assert_eq!(p(json!(["+", "role"])), Filter::has_tag("role"));
    assert_eq!(p(json!(["^", "host", "db"])), Filter::starts_with("host", "db"));
    assert_eq!(p(json!(["~", "host", "db[0-9]+"])), Filter::regex("host", "db[0-9]+"));
    assert_eq!(p(json!(["not", ["=", "a", "b"]])), Filter::not(tag("a", "b")));
    assert_eq!(p(json!(["true"])), Filter::True);
    assert_eq!(p(json!(["false"])), Filter::False);
    assert_eq!(p(json!(["and", ["=", "b", "2"], ["=", "a", "1"]])), Filter::And(vec![tag("a", "1"), tag("b", "2")]));
    assert_eq!(p(json!(["or", ["=", "a", "1"], ["=", "a", "2"]])), Filter::Or(vec![tag("a", "1"), tag("a", "2")]));
    assert_eq!(
        p(json!(["q", "a = 1 and +b"])),
        Filter::And(
            vec![Filter::has_tag("b"), tag("a", "1")]
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect()
        )
    );
}

#[test]
fn grafana_sugar() {
    assert_eq!(p(json!(["!=", "host", "a"])), Filter::not(tag("host", "a")));
    assert_eq!(p(json!(["!^", "host", "a"])), Filter::not(Filter::starts_with("host", "a")));
    assert_eq!(p(json!(["=~", "host", "a.*"])), Filter::regex("host", "a.*"));
}

#[test]
fn object_form() {
    assert_eq!(
        p(json!({"type": "and", "filters": [{"type": "key", "key": "cpu"}, {"type": "=", "tag": "a", "value": "b"}]})),
        Filter::And(vec![Filter::key("cpu"), tag("a", "b")])
    );
    assert_eq!(
        p(json!({"type": "or", "filterList": [["+", "x"], ["+", "y"]]})),
        Filter::Or(vec![Filter::has_tag("x"), Filter::has_tag("y")])
    );
    assert_eq!(
        p(json!({"type": "not", "filter": {"type": "^", "tag": "a", "value": "b"}})),
        Filter::not(Filter::starts_with("a", "b"))
    );
    assert_eq!(p(json!({"type": "~", "tag": "a", "value": "b+"})), Filter::regex("a", "b+"));
    assert_eq!(p(json!({"type": "true"})), Filter::True);
}

#[test]
fn errors_name_the_operator_and_path() {
    let e = parse_json(&json!(["and", ["=", "a", "b"], ["nope", "x"]])).unwrap_err();
    assert_eq!(e.path(), Some("[2][0]"));
    assert!(e.to_string().contains("nope"), "{e}");
    let e = parse_json(&json!(["=", "a", 3])).unwrap_err();
    assert_eq!(e.path(), Some("[2]"));
    assert!(e.to_string().contains("expected a string"), "{e}");
    let e = parse_json(&json!(["=", "a"])).unwrap_err();
    assert!(e.to_string().contains("takes 2 argument"), "{e}");
    let e = parse_json(&json!({"type": "bogus"})).unwrap_err();
    assert!(e.to_string().contains("bogus"), "{e}");
    let e = parse_json(&json!(["q", "a = "])).unwrap_err();
    assert!(e.to_string().contains("1:5"), "{e}");
    assert!(parse_json(&json!("a")).is_err());
    assert!(parse_json(&json!([])).is_err());
}

#[test]
fn serialises_to_the_array_form() {
    let f = Filter::And(vec![
        Filter::key("k"),
        Filter::not(tag("a", "b")),
        Filter::has_tag("c"),
        Filter::starts_with("d", "e"),
        Filter::regex("f", "g"),
        Filter::Or(vec![Filter::True, Filter::False]),
    ]);
    let j = to_json(&f);
    assert_eq!(
        j,
        json!([
            "and",
            ["key", "k"],
            ["not", ["=", "a", "b"]],
            ["+", "c"],
            ["^", "d", "e"],
            ["~", "f", "g"],
            ["or", ["true"], ["false"]]
        ])
    );
    assert_eq!(parse_at(&j, "").unwrap(), f);
}

#[test]
fn optimizer_rules() {
    let o = |f: Filter| optimize(&f);
    // flatten, sort, dedup
    assert_eq!(
        o(Filter::And(vec![tag("b", "1"), Filter::And(vec![tag("a", "1"), tag("b", "1")])])),
        Filter::And(vec![tag("a", "1"), tag("b", "1")])
    );
    // empty and is true (Heroic said false); empty or is false
    assert_eq!(o(Filter::And(vec![])), Filter::True);
    assert_eq!(o(Filter::Or(vec![])), Filter::False);
    assert_eq!(o(Filter::And(vec![Filter::True, Filter::True])), Filter::True);
    assert_eq!(o(Filter::And(vec![Filter::True, tag("a", "1")])), tag("a", "1"));
    assert_eq!(o(Filter::And(vec![Filter::False, tag("a", "1")])), Filter::False);
    assert_eq!(o(Filter::Or(vec![Filter::True, tag("a", "1")])), Filter::True);
    // De Morgan on not-or inside and
    assert_eq!(
        o(Filter::And(vec![Filter::key("k"), Filter::not(Filter::Or(vec![tag("a", "1"), tag("b", "2")]))])),
        // sorted in the enum's order: `not` before `key`
        Filter::And(vec![Filter::not(tag("a", "1")), Filter::not(tag("b", "2")), Filter::key("k")])
    );
    // x and !x
    assert_eq!(o(Filter::And(vec![tag("a", "1"), Filter::not(tag("a", "1"))])), Filter::False);
    assert_eq!(o(Filter::Or(vec![tag("a", "1"), Filter::not(tag("a", "1"))])), Filter::True);
    // conflicting tags and keys
    assert_eq!(o(Filter::And(vec![tag("a", "1"), tag("a", "2")])), Filter::False);
    assert_eq!(o(Filter::And(vec![Filter::key("x"), Filter::key("y")])), Filter::False);
    assert_eq!(o(Filter::And(vec![tag("a", "1"), tag("b", "2")])), Filter::And(vec![tag("a", "1"), tag("b", "2")]));
    // prefixes
    assert_eq!(
        o(Filter::And(vec![Filter::starts_with("a", "hello"), Filter::starts_with("a", "helloworld")])),
        Filter::starts_with("a", "helloworld")
    );
    assert_eq!(
        o(Filter::Or(vec![Filter::starts_with("a", "hello"), Filter::starts_with("a", "helloworld")])),
        Filter::starts_with("a", "hello")
    );
    // not
    assert_eq!(o(Filter::not(Filter::not(tag("a", "1")))), tag("a", "1"));
    assert_eq!(o(Filter::not(Filter::True)), Filter::False);
    assert_eq!(o(Filter::not(Filter::And(vec![]))), Filter::False);
}
