//! `spotify100` consumer messages (JSON), both versions: any bytes, fields
//! missing, extra, of the wrong type or out of range, values spelled as
//! JSON does not allow, duplicate keys and extreme times.

use base64::Engine as _;
use heroic::ingest::{InvalidMessage, Metric, Schema, Value as Sample};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::{apply_edits, config, edits, json_number_text, measured, pick, tdigest_bytes, KIB};

/// Decodes one message; `Ok` is exactly one valid metric.
fn exercise_spotify100(payload: &[u8]) -> Result<Result<Metric, InvalidMessage>, TestCaseError> {
    let (result, cost) = measured(|| Schema::Spotify100.decode(payload));
    prop_assert!(
        cost.largest <= 64 * KIB + 32 * payload.len(),
        "one allocation of {} bytes for {} bytes",
        cost.largest,
        payload.len()
    );
    Ok(match result {
        Ok(mut metrics) => {
            prop_assert_eq!(metrics.len(), 1);
            let m = metrics.remove(0);
            prop_assert!(!m.series.key.is_empty());
            prop_assert!(m.time > 0);
            match &m.value {
                Sample::Double(d) => prop_assert!(d.is_finite()),
                Sample::Distribution(b) => prop_assert!(heroic_query::distribution::decode(b).is_ok()),
            }
            Ok(m)
        }
        Err(e) => {
            prop_assert!(!e.to_string().is_empty());
            Err(e)
        }
    })
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn json_any_scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        proptest::sample::select(vec![
            json!(1e308),
            json!(-1e308),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(-0.0)
        ]),
        ".{0,8}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
        Just(json!([1, 2])),
    ]
    .boxed()
}

fn tag_map() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => vec((pick(&["a", "b", "host", "", "\u{0}"]), prop_oneof![3 => ".{0,6}".prop_map(Value::from), 1 => json_any_scalar()]), 0..4)
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        1 => json_any_scalar(),
    ]
    .boxed()
}

/// spotify100 messages of both versions with fields missing, extra, of the
/// wrong type or out of range.
fn spotify100_message() -> BoxedStrategy<Value> {
    let version = prop_oneof![
        3 => pick(&["1.0.0", "1", "1.1.0", "2.0.0", "2", "2.9.9", "3.0.0", "", "1.", ".1", "01.0.0", "x"]).prop_map(Value::from),
        1 => json_any_scalar(),
    ];
    let key = prop_oneof![3 => pick(&["k", "cpu", "", "\u{0}"]).prop_map(Value::from), 1 => json_any_scalar()];
    let time = prop_oneof![
        3 => proptest::sample::select(vec![
            json!(1), json!(0), json!(-1), json!(1_300_000_000_000i64), json!(i64::MAX), json!(i64::MIN), json!(u64::MAX),
            json!(1e30), json!(1.5), json!("1"),
        ]),
        1 => json_any_scalar(),
    ];
    let double = prop_oneof![json_any_scalar(), Just(json!("NaN")), Just(json!("Infinity"))];
    let value = prop_oneof![
        3 => json_any_scalar(),
        3 => double.clone().prop_map(|d| json!({"doubleValue": d})),
        1 => json_any_scalar().prop_map(|d| json!({"distributionValue": d})),
        1 => tdigest_bytes().prop_map(|b| json!({"distributionValue": b64(&b)})),
        1 => ".{0,12}".prop_map(|s| json!({"distributionValue": s})),
        1 => (double.clone(), json_any_scalar()).prop_map(|(d, x)| json!({"doubleValue": d, "distributionValue": x})),
        1 => (double, json_any_scalar()).prop_map(|(d, x)| json!({"doubleValue": d, "extra": x})),
    ];
    let field = prop_oneof![
        version.prop_map(|v| ("version".to_string(), v)),
        key.prop_map(|v| ("key".to_string(), v)),
        prop_oneof![".{0,6}".prop_map(Value::from), json_any_scalar()].prop_map(|v| ("host".to_string(), v)),
        time.prop_map(|v| ("time".to_string(), v)),
        tag_map().prop_map(|v| ("attributes".to_string(), v)),
        tag_map().prop_map(|v| ("resource".to_string(), v)),
        value.prop_map(|v| ("value".to_string(), v)),
        json_any_scalar().prop_map(|v| ("extra".to_string(), v)),
    ];
    // Mostly complete messages: the required fields, then random ones over them.
    let base = (
        pick(&["1.0.0", "2.0.0"]),
        prop_oneof![
            Just(json!(1.5)),
            Just(json!({"doubleValue": 2.5})),
            tdigest_bytes().prop_map(|b| json!({"distributionValue": b64(&b)})),
        ],
        1i64..2_000_000_000_000,
    )
        .prop_map(|(v, value, t)| {
            vec![
                ("version".to_string(), json!(v)),
                ("key".to_string(), json!("k")),
                ("time".to_string(), json!(t)),
                ("value".to_string(), value),
            ]
        });
    (base, vec(field, 0..6), any::<bool>())
        .prop_map(|(mut fields, more, keep_base)| {
            if !keep_base {
                fields.clear();
            }
            fields.extend(more);
            Value::Object(fields.into_iter().collect::<Map<_, _>>())
        })
        .boxed()
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn spotify100_messages_of_any_bytes_are_ok_or_an_error(payload in vec(any::<u8>(), 0..256)) {
        let _ = exercise_spotify100(&payload)?;
    }

    /// Near-valid messages; those that decode carry what was sent.
    #[test]
    fn near_valid_spotify100_messages_are_ok_or_an_error(msg in spotify100_message(), e in edits()) {
        let payload = serde_json::to_vec(&msg).unwrap();
        // As serde_json reads it back (floats may move by an ulp).
        let msg: Value = serde_json::from_slice(&payload).unwrap();
        if let Ok(m) = exercise_spotify100(&payload)? {
            prop_assert_eq!(Some(m.time), msg["time"].as_i64());
            prop_assert_eq!(Some(m.series.key.as_str()), msg["key"].as_str());
            let version = msg["version"].as_str().unwrap_or_default();
            let sent = if version.starts_with("1.") || version == "1" {
                msg["value"].as_f64().map(Sample::Double)
            } else if let Some(b) = msg["value"]["distributionValue"].as_str() {
                base64::engine::general_purpose::STANDARD.decode(b).ok().map(Sample::Distribution)
            } else {
                msg["value"]["doubleValue"].as_f64().map(Sample::Double)
            };
            prop_assert_eq!(Some(m.value), sent);
        }
        let _ = exercise_spotify100(&apply_edits(&payload, &e))?;
    }

    /// Values spelled as JSON does not allow (NaN, Infinity …), and
    /// duplicate keys.
    #[test]
    fn spotify100_with_odd_spellings_is_ok_or_an_error(
        version in pick(&["\"1.0.0\"", "\"2.0.0\""]),
        value in json_number_text(),
        time in json_number_text(),
        wrap in any::<bool>(),
        duplicate in pick(&["", r#","key":"other""#, r#","time":2"#, r#","value":1"#, r#","version":"3.0.0""#]),
    ) {
        let value = if wrap { format!(r#"{{"doubleValue":{value}}}"#) } else { value };
        let payload = format!(r#"{{"version":{version},"key":"k","time":{time},"value":{value}{duplicate}}}"#);
        let _ = exercise_spotify100(payload.as_bytes())?;
    }
}

#[test]
fn spotify100_time_extremes() {
    for time in ["9223372036854775807", "9223372036854775808", "-9223372036854775808", "1e30", "0", "-1"] {
        let payload = format!(r#"{{"version":"1.0.0","key":"k","time":{time},"value":1}}"#);
        let result = Schema::Spotify100.decode(payload.as_bytes());
        assert_eq!(result.is_ok(), time == "9223372036854775807", "{time}: {result:?}");
    }
}
