//! The regex filter rule: a pattern compiles only when it parses on its
//! own, matches whole values only, and can never close the group it is
//! wrapped in (which would widen the filter to every value).

use heroic_plugin_api::filter::Filter;
use heroic_plugin_api::types::Series;
use heroic_query::hql::parse_filter;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::json;

use crate::{config, pick};

/// Pieces of regular expressions: syntax of every kind, balanced or not.
fn regex_piece() -> BoxedStrategy<String> {
    prop_oneof![
        3 => pick(&["a", "b", "c", "0", "1", " ", "-", ".", ",", ":", "#", "\n", "é"]),
        3 => pick(&["(", ")", "[", "]", "{", "}", "|", "*", "+", "?", "^", "$", "\\"]),
        2 => pick(&[
            "(?:", "(?P<n>", "(?<m>", "(?i)", "(?x)", "(?s)", "(?-u)", "(?", "\\d", "\\w", "\\s", "\\b", "\\B", "\\A", "\\z",
            "\\p{L}", "\\p{Greek}", "\\pN", "\\x41", "\\x{10FFFF}", "\\x{110000}", "\\u0041", "\\Q", "\\E", "\\1", "\\k<n>",
            "[^a]", "[a-c]", "[c-a]", "[[:alpha:]]", "[a&&b]", "[a--b]", "[]", "{2}", "{2,}", "{,2}", "{2,3}", "{3,2}",
            "{99}", "*?", "+?", "??", "**", ".*", "x)|(.*", ")|(", "(?=a)", "(?!a)",
        ]),
    ]
    .boxed()
}

fn regex_value() -> BoxedStrategy<String> {
    vec(pick(&["a", "b", "c", "0", "1", " ", "-", ".", ",", "é", "\n", "x", ")", "("]), 0..6)
        .prop_map(|p| p.concat())
        .boxed()
}

fn series_with(value: &str) -> Series {
    Series::new("cpu", [("k", value)], Vec::<(&str, &str)>::new())
}

proptest! {
    #![proptest_config(config(512))]

    /// A regex filter compiles only when the pattern parses on its own, and
    /// then matches exactly the values the anchored pattern matches whole.
    #[test]
    fn regex_filters_match_whole_values_only(
        pieces in vec(regex_piece(), 0..10),
        any_pattern in any::<String>(),
        values in vec(regex_value(), 1..8),
    ) {
        for p in [pieces.concat(), any_pattern] {
            let compiled = Filter::regex("k", p.as_str()).compile();
            let alone = regex_syntax::ast::parse::Parser::new().parse(&p).is_ok();
            let anchored = regex::Regex::new(&format!("^(?:{p})$"));
            match compiled {
                Err(_) => prop_assert!(!alone || anchored.is_err(), "{p:?} refused although it parses and compiles"),
                Ok(m) => {
                    prop_assert!(alone, "{p:?} compiled although it does not parse on its own");
                    let re = anchored.expect("compiled, so the anchored form compiles");
                    for v in values.iter().map(String::as_str).chain([p.as_str(), ""]) {
                        prop_assert_eq!(m.matches(&series_with(v)), re.is_match(v), "pattern {:?}, value {:?}", p, v);
                    }
                    // A series without the tag never matches.
                    prop_assert!(!m.matches(&Series::key_only("cpu")));
                }
            }
        }
    }

    /// A `)` that closes nothing in the pattern itself would close the
    /// wrapping group: such a pattern never compiles, and so never widens
    /// the filter to every value.
    #[test]
    fn unbalanced_close_parens_never_compile(
        prefix in vec(pick(&["a", "b", ".", "*", "|", "+", "?", "x", "0", " ", "#", "$", "^"]), 0..6),
        suffix in vec(regex_piece(), 0..6),
    ) {
        let p = format!("{})", prefix.concat()) + &suffix.concat();
        prop_assert!(Filter::regex("k", p.as_str()).compile().is_err(), "{p:?} compiled");
        let json = heroic_query::filter::parse_json(&json!(["~", "k", p])).map(|f| f.compile().is_err());
        prop_assert!(json.unwrap_or(true), "{p:?} compiled from JSON");
        let hql = parse_filter(&format!("k ~ \"{}\"", p.replace('\\', "\\\\").replace('"', "\\\""))).map(|f| f.compile().is_err());
        prop_assert!(hql.unwrap_or(true), "{p:?} compiled from HQL");
    }
}

#[test]
fn the_classic_escape_does_not_compile() {
    for p in ["x)|(.*", ")|(", "a)|(?:.*", "(a))|((b)"] {
        assert!(Filter::regex("k", p).compile().is_err(), "{p:?}");
    }
    let m = Filter::regex("k", "db.*").compile().unwrap();
    assert!(m.matches(&series_with("db1")));
    assert!(!m.matches(&series_with("xdb1")));
}
