//! HQL literals around every boundary the lexer and the evaluator have:
//! integers, floats, durations, time literals and quoted strings.

use proptest::collection::vec;
use proptest::prelude::*;

use crate::pick;

/// Integers as written, around every boundary the lexer and the evaluator have.
pub(crate) fn hql_integer() -> BoxedStrategy<String> {
    prop_oneof![
        pick(&[
            "0",
            "1",
            "-1",
            "240",
            "9223372036854775807",
            "-9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "99999999999999999999999999",
            "00000000000000000000000001",
        ]),
        any::<i64>().prop_map(|i| i.to_string()),
        (0i64..100_000).prop_map(|i| i.to_string()),
    ]
    .boxed()
}

pub(crate) fn hql_float() -> BoxedStrategy<String> {
    prop_oneof![
        pick(&[
            "1.5",
            ".5",
            "-.5",
            "1.",
            "0.0",
            "-0.0",
            "1e308",
            "1e999",
            "1.7976931348623157e308",
            "0.000000000000000000001",
            "-.",
            "."
        ]),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
    ]
    .boxed()
}

/// Durations, with the units HQL knows, refuses or never heard of.
pub(crate) fn hql_duration() -> BoxedStrategy<String> {
    let value = prop_oneof![
        pick(&["0", "1", "10", "9223372036854775807", "99999999999999999999", "-1", "-9223372036854775807"]),
        (0i64..1_000_000).prop_map(|i| i.to_string()),
    ];
    let unit = pick(&["ms", "s", "m", "h", "H", "d", "w", "M", "y", "q", "us", "D", "mss", "S", "min"]);
    (value, unit).prop_map(|(v, u)| format!("{v}{u}")).boxed()
}

/// `{HH:MM[:ss[.SSS]]}` and `{yyyy-MM-dd [time]}` with fields in and out of range.
pub(crate) fn hql_time_literal() -> BoxedStrategy<String> {
    let field = || prop_oneof![0u64..70, Just(99u64), Just(999_999_999_999u64), Just(u64::MAX)];
    let time = (field(), field(), proptest::option::of(field()), proptest::option::of("[0-9]{0,5}")).prop_map(
        |(h, m, s, f)| {
            let mut t = format!("{h:02}:{m:02}");
            if let Some(s) = s {
                t.push_str(&format!(":{s:02}"));
                if let Some(f) = f {
                    t.push('.');
                    t.push_str(&f);
                }
            }
            t
        },
    );
    let year = prop_oneof![
        0u64..3000,
        Just(9999u64),
        Just(10_000u64),
        Just(292_278_994u64),
        Just(300_000_000u64),
        Just(999_999_999_999u64),
        Just(i64::MAX as u64),
        Just(u64::MAX),
    ];
    let date = (year, 0u64..14, 0u64..33, proptest::option::of(time.clone()))
        .prop_map(|(y, m, d, t)| format!("{{{y:04}-{m:02}-{d:02}{}}}", t.map(|t| format!(" {t}")).unwrap_or_default()));
    prop_oneof![time.prop_map(|t| format!("{{{t}}}")), date].boxed()
}

/// Quoted strings with every kind of escape, good and bad, sometimes unterminated.
pub(crate) fn hql_quoted() -> BoxedStrategy<String> {
    let piece = prop_oneof![
        "[a-z ]{0,4}",
        pick(&[
            "\\n", "\\t", "\\b", "\\f", "\\r", "\\\"", "\\'", "\\\\", "\\u0041", "\\u00e9", "\\uFFFF", "\\u12", "\\u",
            "\\uZZZZ", "\\uD800", "\\udfff", "\\u+123", "\\u-123", "\\x41", "\\0", "\\", "é", "💥", "\u{0}",
        ]),
    ];
    (vec(piece, 0..5), any::<bool>())
        .prop_map(|(pieces, closed)| format!("\"{}{}", pieces.concat(), if closed { "\"" } else { "" }))
        .boxed()
}
