//! The sketch format and the distribution session.

use heroic_plugin_api::samples::SampleBatch;
use heroic_plugin_api::types::{Series, TimeRange};
use proptest::prelude::*;

use super::codec::{decode, Sketch, SketchError};
use super::session::DistributionSession;
use crate::aggregation::{AggregationInstance, BucketStrategy, MetricValues};

/// A sketch of `values`, one centroid per value (what a digest of few
/// values holds).
fn sketch_of(values: &[f64]) -> Sketch {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Sketch {
        min: sorted.first().copied().unwrap_or(f64::INFINITY),
        max: sorted.last().copied().unwrap_or(f64::NEG_INFINITY),
        compression: 100.0,
        centroids: sorted.iter().map(|&v| (v, 1.0)).collect(),
    }
}

#[test]
fn small_encoding_bytes_as_java_writes_them() {
    // MergingDigest(100) with one value 5.0, asSmallBytes, written out by
    // hand from the layout: i32 2, f64 min, f64 max, f32 100, i16 100,
    // i16 500, i16 1, then f32 weight 1, f32 mean 5.
    let mut bytes = vec![0, 0, 0, 2];
    bytes.extend_from_slice(&[0x40, 0x14, 0, 0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&[0x40, 0x14, 0, 0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&[0x42, 0xc8, 0, 0]);
    bytes.extend_from_slice(&[0, 100, 0x01, 0xf4, 0, 1]);
    bytes.extend_from_slice(&[0x3f, 0x80, 0, 0, 0x40, 0xa0, 0, 0]);
    let s = decode(&bytes).unwrap();
    assert_eq!(s, Sketch { min: 5.0, max: 5.0, compression: 100.0, centroids: vec![(5.0, 1.0)] });
    assert_eq!(s.encode_small(), bytes);
}

#[test]
fn verbose_encoding_round_trips() {
    let s = sketch_of(&[1.0, 2.5, 3.0]);
    let bytes = s.encode_verbose();
    assert_eq!(&bytes[..4], &[0, 0, 0, 1]);
    assert_eq!(bytes.len(), 4 + 8 + 8 + 8 + 4 + 3 * 16);
    assert_eq!(decode(&bytes).unwrap(), s);
}

#[test]
fn truncated_and_garbage_bytes_are_errors() {
    let bytes = sketch_of(&[1.0, 2.0]).encode_verbose();
    for cut in 0..bytes.len() {
        assert!(matches!(decode(&bytes[..cut]), Err(SketchError::Truncated { .. })), "cut at {cut}");
    }
    assert_eq!(decode(b"hello world, not a digest"), Err(SketchError::UnknownEncoding(0x6865_6c6c)));
    // A forged count fails before anything is allocated for it.
    let mut forged = sketch_of(&[]).encode_verbose();
    forged[28..32].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(decode(&forged), Err(SketchError::Truncated { .. })));
    forged[28..32].copy_from_slice(&(-1i32).to_be_bytes());
    assert_eq!(decode(&forged), Err(SketchError::BadCount(-1)));
    let mut negative = sketch_of(&[1.0]).encode_verbose();
    negative[32..40].copy_from_slice(&(-1.0f64).to_be_bytes());
    assert!(matches!(decode(&negative), Err(SketchError::BadCentroid { index: 0, .. })));
}

proptest! {
    #[test]
    fn any_sketch_round_trips(values in prop::collection::vec(-1e9f64..1e9, 0..200)) {
        let s = sketch_of(&values);
        prop_assert_eq!(decode(&s.encode_verbose()).unwrap(), s.clone());
        let small = decode(&s.encode_small()).unwrap();
        prop_assert_eq!(small.centroids.len(), s.centroids.len());
    }

    #[test]
    fn decoding_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&bytes);
    }
}

fn batch(samples: &[(i64, Vec<u8>)]) -> SampleBatch {
    let mut b = SampleBatch::new();
    for (t, v) in samples {
        b.push(*t, v);
    }
    b
}

#[test]
fn tdigest_merges_per_bucket_into_three_percentile_groups() {
    let tdigest = AggregationInstance::Tdigest { size: 100, extent: 100 };
    let mut session = DistributionSession::new(&tdigest, TimeRange::new(0, 200), BucketStrategy::End).unwrap();
    // Bucket (0, 100]: 1..=100 spread over two series; (100, 200]: 1001..=1100.
    let low: Vec<f64> = (1..=100).map(f64::from).collect();
    let high: Vec<f64> = (1001..=1100).map(f64::from).collect();
    let a = Series::new("lat", [("host", "a")], []);
    let b = Series::new("lat", [("host", "b")], []);
    session
        .update(&a, &batch(&[(50, sketch_of(&low[..50]).encode_small()), (150, sketch_of(&high).encode_verbose())]))
        .unwrap();
    session.update(&b, &batch(&[(60, sketch_of(&low[50..]).encode_small())])).unwrap();
    let groups = session.finish();
    assert_eq!(groups.len(), 3);
    let stats: Vec<String> = groups
        .iter()
        .map(|g| {
            let tags: Vec<&str> = g
                .series
                .iter()
                .flat_map(|s| s.tags.iter().filter(|t| t.key == "tdigeststat"))
                .map(|t| t.value.as_str())
                .collect();
            assert_eq!(tags.len(), 2, "both series carry the stat tag");
            tags[0].to_string()
        })
        .collect();
    assert_eq!(stats, ["P50", "P75", "P99"]);
    for (g, (q, low_want, high_want)) in
        groups.iter().zip([(0.5, 50.5, 1050.5), (0.75, 75.5, 1075.5), (0.99, 99.5, 1099.5)])
    {
        assert_eq!(g.cadence, 100);
        let MetricValues::Points(p) = &g.values else { panic!("points expected") };
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].0, p[1].0), (100, 200));
        assert!((p[0].1 - low_want).abs() <= 1.5, "q{q} of 1..=100: {}", p[0].1);
        assert!((p[1].1 - high_want).abs() <= 1.5, "q{q} of 1001..=1100: {}", p[1].1);
    }
}

#[test]
fn group_by_tag_and_raw_samples() {
    let grouped = AggregationInstance::Group {
        of: Some(vec!["host".into()]),
        each: Box::new(AggregationInstance::Tdigest { size: 10, extent: 10 }),
    };
    let mut session = DistributionSession::new(&grouped, TimeRange::new(0, 10), BucketStrategy::End).unwrap();
    for host in ["a", "b"] {
        let s = Series::new("k", [("host", host)], []);
        session.update(&s, &batch(&[(5, sketch_of(&[1.0, 2.0]).encode_small())])).unwrap();
    }
    let groups = session.finish();
    assert_eq!(groups.len(), 6, "three stats for each of two hosts");
    assert!(groups.iter().all(|g| g.key.len() == 1));

    let mut raw =
        DistributionSession::new(&AggregationInstance::Empty, TimeRange::new(0, 10), BucketStrategy::End).unwrap();
    let bytes = sketch_of(&[1.0]).encode_small();
    raw.update(&Series::new("k", [("host", "a")], []), &batch(&[(7, bytes.clone())])).unwrap();
    let groups = raw.finish();
    assert_eq!(groups[0].values, MetricValues::Distributions(vec![(7, bytes.clone())]));
    use base64::Engine as _;
    let want = serde_json::json!([{"value": base64::engine::general_purpose::STANDARD.encode(&bytes), "timestamp": 7}]);
    assert_eq!(groups[0].values.to_json(), want);

    // Raw t-digest points: the same shape, named as their kind.
    let mut raw = DistributionSession::new(&AggregationInstance::Empty, TimeRange::new(0, 10), BucketStrategy::End)
        .unwrap()
        .reading(heroic_plugin_api::samples::SampleKind::TDIGEST);
    raw.update(&Series::new("k", [("host", "a")], []), &batch(&[(7, bytes.clone())])).unwrap();
    let groups = raw.finish();
    assert_eq!(groups[0].values, MetricValues::TdigestPoints(vec![(7, bytes.clone())]));
    assert_eq!((groups[0].values.type_name(), groups[0].values.to_json()), ("tdigestPoints", want));
}

#[test]
fn a_stored_sample_that_is_not_a_sketch_fails_the_query() {
    let tdigest = AggregationInstance::Tdigest { size: 10, extent: 10 };
    let mut session = DistributionSession::new(&tdigest, TimeRange::new(0, 10), BucketStrategy::End).unwrap();
    let err = session.update(&Series::new("k", [("a", "b")], []), &batch(&[(5, b"junk".to_vec())])).unwrap_err();
    assert!(err.to_string().contains("does not decode"), "{err}");
    let chained = AggregationInstance::Chain(vec![
        AggregationInstance::Tdigest { size: 10, extent: 10 },
        AggregationInstance::Delta,
    ]);
    assert!(DistributionSession::new(&chained, TimeRange::new(0, 10), BucketStrategy::End).is_err());
}
