//! `spotify100-proto` consumer payloads (Snappy + protobuf): any bytes,
//! valid, truncated and mutated batches, Snappy headers that declare more
//! than may be decompressed, protobuf nested deeper than any stack, and
//! batches that would amplify memory.

use std::collections::HashMap;
use std::time::Duration;

use heroic::ingest::schema::{proto, MAX_DECOMPRESSED_BYTES};
use heroic::ingest::{InvalidMessage, Metric, Schema, Value};
use heroic_plugin_api::types::Series;
use proptest::collection::vec;
use proptest::prelude::*;

use crate::{apply_edits, config, edits, measured, pick, tdigest_bytes, KIB, MIB};

/// Slack over what a payload declares for the allocations around it.
const PROTO_SLACK: usize = MIB;

/// Decodes one payload; `Ok` holds only valid metrics, and no allocation is
/// larger than what may be decompressed (plus slack) — never what a header
/// declares beyond that.
fn exercise_proto(payload: &[u8]) -> Result<Result<Vec<Metric>, InvalidMessage>, TestCaseError> {
    let (result, cost) = measured(|| Schema::Spotify100Proto.decode(payload));
    prop_assert!(
        cost.largest <= MAX_DECOMPRESSED_BYTES + PROTO_SLACK,
        "one allocation of {} bytes for a payload of {} bytes",
        cost.largest,
        payload.len()
    );
    if let Ok(declared) = snap::raw::decompress_len(payload) {
        if declared > MAX_DECOMPRESSED_BYTES {
            prop_assert!(result.is_err(), "declared {declared} bytes and was decoded");
            prop_assert!(cost.largest < PROTO_SLACK, "declared {declared} bytes, allocated {}", cost.largest);
        }
    }
    if let Ok(metrics) = &result {
        for m in metrics {
            prop_assert!(!m.series.key.is_empty());
            prop_assert!(m.time > 0);
            match &m.value {
                Value::Double(d) => prop_assert!(d.is_finite()),
                Value::Distribution(b) => prop_assert!(heroic_query::distribution::decode(b).is_ok()),
            }
        }
    }
    Ok(result)
}

fn snappy(bytes: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(bytes).unwrap()
}

fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

fn proto_metric() -> BoxedStrategy<proto::Metric> {
    let key = prop_oneof![3 => pick(&["cpu", "k", "a.b", "\u{0}"]), 1 => Just(String::new()), 1 => ".{0,12}"];
    let time = prop_oneof![
        4 => 1i64..2_000_000_000_000,
        1 => proptest::sample::select(vec![0i64, -1, i64::MAX, i64::MIN]),
        1 => any::<i64>(),
    ];
    let value = prop_oneof![
        4 => any::<f64>().prop_filter("finite", |f| f.is_finite()),
        1 => proptest::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, f64::MAX, f64::MIN_POSITIVE]),
    ]
    .boxed();
    let tags = || proptest::collection::hash_map(".{0,6}", ".{0,6}", 0..4);
    let distribution = prop_oneof![
        3 => Just(None),
        2 => value.clone().prop_map(|d| Some(proto::Value { value: Some(proto::value::Value::DoubleValue(d)) })),
        1 => vec(any::<u8>(), 0..8).prop_map(|b| Some(proto::Value { value: Some(proto::value::Value::DistributionValue(b)) })),
        2 => tdigest_bytes().prop_map(|b| Some(proto::Value { value: Some(proto::value::Value::DistributionValue(b)) })),
        1 => Just(Some(proto::Value { value: None })),
    ];
    (key, time, value, tags(), tags(), distribution)
        .prop_map(|(key, time, value, tags, resource, distribution_type_value)| proto::Metric {
            key,
            time,
            value,
            tags,
            resource,
            distribution_type_value,
        })
        .boxed()
}

/// What decoding `metrics` must give: every metric, or an error if any is invalid.
/// Distribution bytes are valid when they are a t-digest (the 0..8 random
/// bytes never are: a verbose header alone is 32).
fn expected(metrics: &[proto::Metric]) -> Option<Vec<(Series, i64, Value)>> {
    metrics
        .iter()
        .map(|m| {
            let value = match m.distribution_type_value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(proto::value::Value::DoubleValue(d)) => Value::Double(*d),
                Some(proto::value::Value::DistributionValue(b)) if b.len() >= 32 => Value::Distribution(b.clone()),
                Some(proto::value::Value::DistributionValue(_)) => return None,
                None => Value::Double(m.value),
            };
            let finite = match value {
                Value::Double(d) => d.is_finite(),
                Value::Distribution(_) => true,
            };
            let valid = !m.key.is_empty() && m.time > 0 && finite;
            valid.then(|| (Series::new(m.key.clone(), m.tags.clone(), m.resource.clone()), m.time, value))
        })
        .collect()
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn proto_payloads_of_any_bytes_are_ok_or_an_error(payload in vec(any::<u8>(), 0..512)) {
        let _ = exercise_proto(&payload)?;
        // The same bytes, validly compressed: any protobuf at all.
        let _ = exercise_proto(&snappy(&payload))?;
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Valid batches decode to exactly what was sent, or are refused when
    /// any metric is invalid; truncated or mutated ones (before or after
    /// compression) are `Ok` or an error.
    #[test]
    fn valid_truncated_and_mutated_batches(
        metrics in vec(proto_metric(), 0..6),
        cut in any::<prop::sample::Index>(),
        before in edits(),
        after in edits(),
    ) {
        let batch = proto::Batch { metric: metrics.clone() };
        let payload = proto::encode_batch(&batch);
        let result = exercise_proto(&payload)?;
        match (expected(&metrics), result) {
            (Some(want), Ok(got)) => {
                let got: Vec<_> = got.into_iter().map(|m| (m.series, m.time, m.value)).collect();
                // Values compare as values: -0.0 and 0.0 are equal.
                prop_assert_eq!(got, want);
            }
            (None, Err(_)) => {}
            (want, got) => prop_assert!(false, "expected {want:?}, decoded {got:?} from {metrics:?}"),
        }
        let raw = prost::Message::encode_to_vec(&batch);
        let truncated = &raw[..cut.index(raw.len() + 1)];
        let _ = exercise_proto(&snappy(truncated))?;
        let _ = exercise_proto(&snappy(&apply_edits(&raw, &before)))?;
        let _ = exercise_proto(&apply_edits(&payload, &after))?;
    }

    /// Snappy headers that declare more than may be decompressed are
    /// refused before anything of that size is allocated.
    #[test]
    fn oversized_declarations_are_refused_without_allocating(
        declared in prop_oneof![
            Just(MAX_DECOMPRESSED_BYTES as u64 + 1),
            Just(u32::MAX as u64),
            MAX_DECOMPRESSED_BYTES as u64 + 1..=u32::MAX as u64,
            u32::MAX as u64 + 1..=u64::MAX,
        ],
        tail in vec(any::<u8>(), 0..64),
    ) {
        let mut payload = varint(declared);
        payload.extend(&tail);
        let (result, cost) = measured(|| Schema::Spotify100Proto.decode(&payload));
        prop_assert!(matches!(result, Err(InvalidMessage::Malformed(_))), "{result:?}");
        prop_assert!(cost.largest < 64 * KIB, "declared {declared}: one allocation of {} bytes", cost.largest);
        let _ = exercise_proto(&payload)?;
    }
}

proptest! {
    #![proptest_config(config(16))]

    /// A declaration within the limit may be allocated, never more than it.
    #[test]
    fn declarations_within_the_limit_allocate_no_more(
        declared in prop_oneof![Just(MAX_DECOMPRESSED_BYTES as u64), 0..=MAX_DECOMPRESSED_BYTES as u64],
        tail in vec(any::<u8>(), 0..64),
    ) {
        let mut payload = varint(declared);
        payload.extend(&tail);
        let (_, cost) = measured(|| Schema::Spotify100Proto.decode(&payload));
        prop_assert!(cost.largest <= declared as usize + PROTO_SLACK, "declared {declared}: one allocation of {} bytes", cost.largest);
    }

    /// Protobuf nested deeper than any stack (groups of an unknown field,
    /// nested inside a metric or not) is an error.
    #[test]
    fn deeply_nested_protobuf_is_refused(depth in prop_oneof![1usize..200, 10_000usize..200_000], inside_metric in any::<bool>()) {
        // Field 15, wire type 3: start of a group (which must be skipped, recursively).
        let groups = vec![(15u8 << 3) | 3; depth];
        let raw = if inside_metric {
            let mut m = vec![(1u8 << 3) | 2];
            m.extend(varint(groups.len() as u64));
            m.extend(&groups);
            m
        } else {
            groups
        };
        let result = exercise_proto(&snappy(&raw))?;
        prop_assert!(result.is_err());
    }
}

#[test]
fn four_gib_in_five_bytes_is_refused_without_allocating() {
    let bomb = [0xff, 0xff, 0xff, 0xff, 0x0f];
    assert_eq!(snap::raw::decompress_len(&bomb).unwrap(), u32::MAX as usize);
    let (result, cost) = measured(|| Schema::Spotify100Proto.decode(&bomb));
    assert!(matches!(result, Err(InvalidMessage::Malformed(_))), "{result:?}");
    assert!(cost.largest < 64 * KIB && cost.total < MIB && cost.elapsed < Duration::from_secs(1), "{cost:?}");
    // Right above the limit too.
    let mut just_over = varint(MAX_DECOMPRESSED_BYTES as u64 + 1);
    just_over.extend([0u8; 16]);
    let (result, cost) = measured(|| Schema::Spotify100Proto.decode(&just_over));
    assert!(result.is_err());
    assert!(cost.largest < 64 * KIB, "{cost:?}");
}

#[test]
fn empty_and_tiny_proto_payloads() {
    let payloads: [&[u8]; 7] = [&[], &[0], &[0, 0], &[1], &[1, 0], &[0x80], &[0xff; 10]];
    for payload in payloads {
        let _ = Schema::Spotify100Proto.decode(payload);
    }
    // An empty batch is no metrics.
    assert_eq!(Schema::Spotify100Proto.decode(&snappy(&[])).map(|m| m.len()), Ok(0));
}

/// A protobuf `Batch` of empty metrics costs two bytes a metric on the wire
/// (`0a 00`) and compresses to almost nothing, but each one would be a whole
/// `proto::Metric` (two `HashMap`s, a `String`, …) if the batch were decoded
/// at once before any metric is checked.
#[test]
fn empty_metrics_do_not_amplify_memory() {
    // 1 MiB decompressed: 524,288 empty metrics.
    let raw: Vec<u8> = [0x0a, 0x00].repeat(MIB / 2);
    let payload = snappy(&raw);
    let (result, cost) = measured(|| Schema::Spotify100Proto.decode(&payload));
    assert!(result.is_err(), "the metrics have no key");
    // Allow a generous 8 bytes of memory per decompressed byte.
    assert!(
        cost.largest <= 8 * raw.len(),
        "{} bytes of payload ({} decompressed) made one allocation of {} bytes (the limit of {} decompressed bytes would ask for {} GiB)",
        payload.len(),
        raw.len(),
        cost.largest,
        MAX_DECOMPRESSED_BYTES,
        (cost.largest as f64 / raw.len() as f64 * MAX_DECOMPRESSED_BYTES as f64 / (1u64 << 30) as f64).round(),
    );
}

#[test]
fn a_realistic_batch_stays_small() {
    // The other side of the test above: a batch of real metrics costs memory
    // in proportion to its size.
    let metrics: Vec<proto::Metric> = (0..1_000)
        .map(|i| proto::Metric {
            key: "cpu".into(),
            time: 1 + i,
            value: 1.0,
            tags: HashMap::new(),
            ..Default::default()
        })
        .collect();
    let payload = proto::encode_batch(&proto::Batch { metric: metrics });
    let (result, cost) = measured(|| Schema::Spotify100Proto.decode(&payload));
    assert_eq!(result.map(|m| m.len()), Ok(1_000));
    assert!(cost.largest < MIB, "{cost:?}");
}
