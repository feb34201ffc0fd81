//! `/write` bodies: any bytes, the right shape with wrong parts, huge
//! arrays of points, nesting deeper than any parser allows, and invalid
//! UTF-8.

use heroic::http::write::{parse_write_body, WriteBatch};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::{apply_edits, config, edits, json_number_text, measured, pick, KIB};

/// Parses a body: `Ok` only for a valid batch (some points, sorted, unique
/// timestamps, finite values) or none (no `data`), with allocations in
/// proportion to the body.
fn exercise_write(body: &[u8]) -> Result<(), TestCaseError> {
    let (result, cost) = measured(|| parse_write_body(body));
    let budget = 64 * KIB + 32 * body.len();
    prop_assert!(cost.largest <= budget, "one allocation of {} bytes for a body of {}", cost.largest, body.len());
    match result {
        Ok(Some(WriteBatch::Points(sp))) => {
            prop_assert!(!sp.points.is_empty());
            prop_assert!(sp.points.is_strictly_sorted());
            prop_assert!(sp.points.values.iter().all(|v| v.is_finite()));
            prop_assert_eq!(sp.points.timestamps.len(), sp.points.values.len());
        }
        Ok(Some(WriteBatch::Samples(_, ss))) => {
            prop_assert!(!ss.samples.is_empty());
            prop_assert!(ss.samples.is_strictly_sorted());
            prop_assert!(ss.samples.validate().is_ok());
        }
        _ => {}
    }
    Ok(())
}

fn point_text() -> BoxedStrategy<String> {
    prop_oneof![
        6 => (json_number_text(), json_number_text()).prop_map(|(t, v)| format!("[{t},{v}]")),
        3 => (any::<i64>(), any::<f64>().prop_filter("finite", |f| f.is_finite())).prop_map(|(t, v)| format!("[{t},{v:?}]")),
        1 => pick(&["[1]", "[1,2,3]", "[]", "{\"t\":1,\"v\":2}", "1", "null", "[[1,2]]", "[1,[2]]", "\"[1,2]\""]),
    ]
    .boxed()
}

fn series_text() -> BoxedStrategy<String> {
    pick(&[
        r#"{"key":"k"}"#,
        r#"{"key":"k","tags":{"a":"b","c":"d"}}"#,
        r#"{"key":"k","tags":{"a":"b"},"resource":{"p":"q"}}"#,
        r#"{"key":""}"#,
        r#"{"key":"\u0000\ud83d\ude00"}"#,
        r#"{"key":"\ud800"}"#,
        r#"{"key":1}"#,
        r#"{"key":null}"#,
        r#"{}"#,
        r#"{"key":"k","tags":{"a":1}}"#,
        r#"{"key":"k","tags":{"a":null}}"#,
        r#"{"key":"k","tags":[]}"#,
        r#"{"key":"k","tags":{"a":"b","a":"c"}}"#,
        r#"{"key":"k","extra":1}"#,
        r#"{"key":"a","key":"b"}"#,
        r#""k""#,
        r#"[]"#,
        r#"null"#,
    ])
}

/// `/write` bodies: the right shape with wrong parts, duplicate and unknown
/// keys, and any point.
fn write_body_text() -> BoxedStrategy<String> {
    let kind = pick(&[r#""points""#, r#""spreads""#, r#""POINTS""#, "1", "null", r#""points","type":"spreads""#]);
    let extra = pick(&["", r#","extra":1"#, r#","series":{"key":"x"}"#, r#","data":null"#]);
    (series_text(), kind, vec(point_text(), 0..12), extra, pick(&["", " ", "x", "}", "\n{}"]))
        .prop_map(|(series, kind, points, extra, tail)| {
            format!(r#"{{"series":{series},"data":{{"type":{kind},"data":[{}]}}{extra}}}{tail}"#, points.join(","))
        })
        .boxed()
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn write_bodies_of_any_bytes_are_ok_or_an_error(body in vec(any::<u8>(), 0..512)) {
        exercise_write(&body)?;
    }

    #[test]
    fn near_valid_write_bodies_are_ok_or_an_error(body in write_body_text(), e in edits()) {
        exercise_write(body.as_bytes())?;
        exercise_write(&apply_edits(body.as_bytes(), &e))?;
    }
}

proptest! {
    #![proptest_config(config(12))]

    /// Large bodies parse in proportion to their size; one bad point
    /// anywhere refuses the whole body.
    #[test]
    fn huge_arrays_of_points_are_ok_or_an_error(
        n in prop_oneof![Just(1usize), 1usize..2_000, Just(100_000usize)],
        bad in proptest::option::of((any::<prop::sample::Index>(), pick(&["[1,NaN]", "[1,null]", "[1,1e999]", "[1]", "[1.5,1]", "[\"1\",1]"]))),
        spread in 1i64..1_000,
    ) {
        let mut points: Vec<String> = (0..n as i64).map(|i| format!("[{},{}.5]", 1_300_000_000_000 + (i * 7919) % (spread * n as i64), i)).collect();
        if let Some((at, p)) = &bad {
            let i = at.index(points.len());
            points[i] = p.clone();
        }
        let body = format!(r#"{{"series":{{"key":"k"}},"data":{{"type":"points","data":[{}]}}}}"#, points.join(","));
        exercise_write(body.as_bytes())?;
        let result = parse_write_body(body.as_bytes());
        prop_assert_eq!(result.is_err(), bad.is_some(), "{:?}", result.map(|b| b.map(|b| match b { WriteBatch::Points(sp) => sp.points.len(), WriteBatch::Samples(_, ss) => ss.samples.len() })).map_err(|e| e.message));
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// Nesting deeper than serde_json's recursion limit (128), anywhere in
    /// the body, is an error, not a stack overflow.
    #[test]
    fn deeply_nested_write_bodies_are_refused(depth in prop_oneof![100usize..300, 1_000usize..50_000], place in 0usize..6, closed in any::<bool>()) {
        let (open, close) = if place % 2 == 0 { ("[", "]") } else { ("{\"a\":", "}") };
        let deep = format!("{}1{}", open.repeat(depth), if closed { close.repeat(depth) } else { String::new() });
        let body = match place {
            0 | 1 => deep,
            2 => format!(r#"{{"series":{deep},"data":{{"type":"points","data":[[1,2]]}}}}"#),
            3 => format!(r#"{{"series":{{"key":"k","tags":{{"a":{deep}}}}},"data":{{"type":"points","data":[[1,2]]}}}}"#),
            4 => format!(r#"{{"series":{{"key":"k"}},"data":{{"type":"points","data":[[1,2],{deep}]}}}}"#),
            _ => format!(r#"{{"series":{{"key":"k"}},"data":{{"type":"points","data":[[1,{deep}]]}}}}"#),
        };
        prop_assert!(parse_write_body(body.as_bytes()).is_err());
        exercise_write(body.as_bytes())?;
    }
}

#[test]
fn write_bodies_with_invalid_utf8_are_refused() {
    let mut body = br#"{"series":{"key":"k"},"data":{"type":"points","data":[[1,2]]}}"#.to_vec();
    assert!(parse_write_body(&body).is_ok());
    for bad in [&b"\xff"[..], b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"] {
        let at = body.windows(3).position(|w| w == b"\"k\"").unwrap() + 1;
        let mut b = body.clone();
        b.splice(at..=at, bad.iter().copied());
        assert!(parse_write_body(&b).is_err(), "{bad:?}");
    }
    body.truncate(body.len() - 1);
    assert!(parse_write_body(&body).is_err());
}
