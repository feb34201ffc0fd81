//! Distribution samples (interface 1.2) against the emulator, in process:
//! stored in Heroic's layout (family `distributionPoints`, the points' row
//! key and qualifier, the t-digest bytes unchanged) both ways, read back
//! across row periods with `(start, end]` edges and resource variants, the
//! last write of a timestamp winning, kept apart from points, limited by
//! `sample_limit`; t-digest points and spreads in families of their own;
//! unknown kinds, malformed batches, spreads of the wrong length and
//! oversized row keys are refused.

mod common;

use std::sync::Arc;

use common::{hex, raw_rows, runtime, worked_example_key, worked_example_series};
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::mutate_rows_request::Entry;
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::mutation::{Mutation as Kind, SetCell};
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::Mutation;
use heroic_plugin_api::samples::*;
use heroic_plugin_api::sdk::MetricBackend;
use heroic_plugin_api::testkit::sketch::tdigest_verbose;
use heroic_plugin_api::types::*;
use heroic_plugin_api::ErrorKind;
use heroic_plugin_bigtable::client::Client;
use heroic_plugin_bigtable::row_key::PERIOD;
use heroic_plugin_bigtable::stats::Stats;
use heroic_plugin_bigtable::BigtableBackend;

fn batch(samples: &[(i64, Vec<u8>)]) -> SampleBatch {
    let mut b = SampleBatch::new();
    for (t, bytes) in samples {
        b.push(*t, bytes);
    }
    b
}

async fn write(backend: &BigtableBackend, series: &Series, samples: &[(i64, Vec<u8>)]) -> Result<(), ErrorKind> {
    let item = SeriesSamples { series: series.clone(), samples: batch(samples) };
    backend.write_samples(SampleKind::DISTRIBUTION, vec![item].into()).await.map_err(|e| e.kind)
}

fn request(series: Vec<Series>, start: i64, end: i64, limit: u64) -> SampleFetchRequest {
    SampleFetchRequest {
        kind: SampleKind::DISTRIBUTION,
        series: series.into(),
        range: TimeRange::new(start, end),
        sample_limit: limit,
    }
}

/// `(request index, resource, samples)` of each answer, in answer order.
type Answer = Vec<(u32, Vec<Tag>, Vec<(i64, Vec<u8>)>)>;

fn answer(response: &SampleFetchResponse) -> Answer {
    response
        .series
        .iter()
        .map(|s| {
            s.samples.validate().unwrap();
            let samples = s.samples.iter().map(|(t, v)| (t, v.to_vec())).collect();
            (s.request_index, s.resource.to_vec(), samples)
        })
        .collect()
}

#[test]
fn distributions_are_stored_in_heroic_layout_both_ways() {
    runtime().block_on(async {
        let (backend, config) = common::backend_with("dist-layout", serde_json::json!({})).await;
        let ts = 1_300_000_000_000;
        let bytes = tdigest_verbose(&[1.0, 2.0, 3.0]);
        write(&backend, &worked_example_series(), &[(ts, bytes.clone())]).await.unwrap();
        let points = PointBatch::from_pairs(&[(ts, 2.5)]);
        backend.write(vec![SeriesPoints { series: worked_example_series(), points }].into()).await.unwrap();

        let rows = raw_rows(&config).await;
        assert_eq!(rows.len(), 1, "one row for both families: {rows:?}");
        assert_eq!(rows[0].key, worked_example_key());
        let mut cells: Vec<_> =
            rows[0].cells.iter().map(|c| (c.family.as_str(), c.qualifier.clone(), c.value.clone())).collect();
        cells.sort();
        assert_eq!(
            cells,
            vec![
                ("distributionPoints", hex("ae 09 c8 00"), bytes.clone()),
                ("points", hex("ae 09 c8 00"), 2.5f64.to_be_bytes().to_vec()),
            ]
        );

        // A sample written by hand as Heroic does, in the next period,
        // offset 0, on a resource variant: read back unchanged.
        let next_base = 0x0000_012e_0000_0000i64 + PERIOD;
        let mut key = worked_example_key();
        let n = key.len();
        key[n - 8..].copy_from_slice(&next_base.to_be_bytes());
        key.extend_from_slice(&hex("01 00 08 01 03 706f64 02 7031"));
        let heroic = tdigest_verbose(&[7.0]);
        let client = Client::connect(&config, Arc::new(Stats::default())).await.unwrap();
        let cell = Mutation {
            mutation: Some(Kind::SetCell(SetCell {
                family_name: "distributionPoints".into(),
                column_qualifier: hex("00 00 00 00"),
                timestamp_micros: 0,
                value: heroic.clone(),
            })),
        };
        client.mutate_rows(vec![Entry { row_key: key, mutations: vec![cell], idempotency: None }]).await.unwrap();
        let response =
            backend.fetch_samples(request(vec![worked_example_series()], ts - 1, next_base, 0)).await.unwrap();
        assert_eq!(
            answer(&response),
            vec![(0, vec![], vec![(ts, bytes)]), (0, vec![Tag::new("pod", "p1")], vec![(next_base, heroic)]),]
        );
        assert!(!response.limited);
    });
}

#[test]
fn distributions_round_trip_across_periods_edges_and_resource_variants() {
    runtime().block_on(async {
        let (backend, _) = common::backend_with("dist-round-trip", serde_json::json!({})).await;
        let plain = Series::new("latency", [("host", "a")], []);
        let pod = Series::new("latency", [("host", "a")], [("pod", "p1")]);
        // Both sides of a 2^32 ms row boundary.
        let b = 300 * PERIOD;
        let s = |i: i64| tdigest_verbose(&[i as f64, i as f64 * 2.0]);
        let times = [b - 2000, b - 1000, b, b + 1000, b + 2000];
        let samples: Vec<(i64, Vec<u8>)> = times.iter().map(|&t| (t, s(t - b))).collect();
        write(&backend, &plain, &samples).await.unwrap();
        write(&backend, &pod, &[(b - 1000, b"pod early".to_vec()), (b + 1000, b"pod late".to_vec())]).await.unwrap();
        // A rewrite of a timestamp keeps the last write.
        write(&backend, &plain, &[(b, b"overwritten".to_vec())]).await.unwrap();
        // Points of the same series at the same timestamps stay apart.
        let points = PointBatch::from_pairs(&times.map(|t| (t, (t - b) as f64)));
        backend.write(vec![SeriesPoints { series: plain.clone(), points }].into()).await.unwrap();

        // (b - 2000, b + 1000]: the start is excluded, the end included.
        let response = backend.fetch_samples(request(vec![plain.clone()], b - 2000, b + 1000, 0)).await.unwrap();
        assert!(!response.limited);
        assert_eq!(
            answer(&response),
            vec![
                (0, vec![], vec![(b - 1000, s(-1000)), (b, b"overwritten".to_vec()), (b + 1000, s(1000))]),
                (
                    0,
                    vec![Tag::new("pod", "p1")],
                    vec![(b - 1000, b"pod early".to_vec()), (b + 1000, b"pod late".to_vec())]
                ),
            ],
            "resource variants answered separately"
        );

        // A requested resource gets only its variant; other requests keep their index.
        let other = Series::new("latency", [("host", "unwritten")], []);
        let response = backend.fetch_samples(request(vec![other, pod.clone()], b - 1000, b + 2000, 0)).await.unwrap();
        assert_eq!(answer(&response), vec![(1, vec![Tag::new("pod", "p1")], vec![(b + 1000, b"pod late".to_vec())])]);

        // Points are what was written as points, nothing else.
        let fetched = backend
            .fetch(FetchRequest {
                series: vec![plain.clone()].into(),
                range: TimeRange::new(0, b + PERIOD),
                point_limit: 0,
            })
            .await
            .unwrap();
        assert_eq!(fetched.series.len(), 1);
        assert_eq!(fetched.series[0].points.to_pairs(), times.map(|t| (t, (t - b) as f64)).to_vec());
        assert_eq!(backend.count_points(vec![plain.clone()].into(), TimeRange::new(0, b + PERIOD)).await.unwrap(), 5);

        // Deleting points leaves the distributions alone.
        backend.delete_points(vec![plain.clone()].into(), TimeRange::new(0, b + PERIOD)).await.unwrap();
        let response = backend.fetch_samples(request(vec![plain.clone()], 0, b + PERIOD, 0)).await.unwrap();
        let total: usize = response.series.iter().map(|s| s.samples.len()).sum();
        assert_eq!(total, 7, "5 plain and 2 pod samples");

        // sample_limit stops the read and says so.
        let response = backend.fetch_samples(request(vec![plain.clone()], 0, b + PERIOD, 3)).await.unwrap();
        let total: usize = response.series.iter().map(|s| s.samples.len()).sum();
        assert!(response.limited);
        assert!(total <= 3, "{total} samples for a limit of 3");
        assert_eq!(common::stat(&backend, "samples_written"), 8.0);
    });
}

#[test]
fn unknown_kinds_malformed_batches_and_oversized_keys_are_refused() {
    runtime().block_on(async {
        let (backend, _) = common::backend_with("dist-refused", serde_json::json!({})).await;
        assert!(backend.capabilities().contains(MetricCapabilities::DISTRIBUTIONS));
        let series = Series::new("k", [("t", "v")], []);
        let item = SeriesSamples { series: series.clone(), samples: batch(&[(1000, b"x".to_vec())]) };
        let e = backend.write_samples(SampleKind(99), vec![item.clone()].into()).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::UNSUPPORTED, "{e}");
        let e = backend.write_samples(SampleKind::SPREAD, vec![item].into()).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::INVALID_INPUT, "{e}");
        assert!(e.message.contains("not 40"), "{e}");
        let mut unknown = request(vec![series.clone()], 0, 2000, 0);
        unknown.kind = SampleKind(99);
        let e = backend.fetch_samples(unknown).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::UNSUPPORTED, "{e}");

        let bad = SampleBatch { timestamps: vec![1000].into(), ends: vec![5].into(), data: vec![0u8; 2].into() };
        let item = SeriesSamples { series: series.clone(), samples: bad };
        let e = backend.write_samples(SampleKind::DISTRIBUTION, vec![item].into()).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::INVALID_INPUT, "{e}");

        let huge = Series::new("huge", [("t", "x".repeat(5000))], []);
        let items = vec![
            SeriesSamples { series: huge, samples: batch(&[(1000, b"x".to_vec())]) },
            SeriesSamples { series: series.clone(), samples: batch(&[(1000, b"kept".to_vec())]) },
        ];
        let e = backend.write_samples(SampleKind::DISTRIBUTION, items.into()).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::INVALID_INPUT, "{e}");
        assert!(e.message.contains("row key"), "{e}");
        assert_eq!(common::stat(&backend, "row_key_too_large"), 1.0);
        let response = backend.fetch_samples(request(vec![series], 0, 2000, 0)).await.unwrap();
        assert_eq!(answer(&response), vec![(0, vec![], vec![(1000, b"kept".to_vec())])], "the rest is stored");
        assert!(backend.health().ok, "refusals are the caller's fault");
    });
}

#[test]
fn tdigest_points_and_spreads_are_kept_in_families_of_their_own() {
    runtime().block_on(async {
        let extra = serde_json::json!({ "disableBulkMutations": true });
        let (backend, config) = common::backend_with("dist-kinds", extra).await;
        let series = Series::new("k", [("t", "v")], []);
        let spread = Spread { count: 2, sum: 3.0, sum2: 5.0, min: 1.0, max: 2.0 }.encode().to_vec();
        for (kind, bytes) in [
            (SampleKind::DISTRIBUTION, b"distribution".to_vec()),
            (SampleKind::TDIGEST, b"tdigest".to_vec()),
            (SampleKind::SPREAD, spread.clone()),
        ] {
            let item = SeriesSamples { series: series.clone(), samples: batch(&[(1000, bytes)]) };
            backend.write_samples(kind, vec![item].into()).await.unwrap();
        }
        // One row, one cell per family, the same qualifier.
        let rows = raw_rows(&config).await;
        assert_eq!(rows.len(), 1);
        let mut cells: Vec<(String, Vec<u8>, Vec<u8>)> =
            rows[0].cells.iter().map(|c| (c.family.clone(), c.qualifier.clone(), c.value.clone())).collect();
        cells.sort();
        let qualifier = cells[0].1.clone();
        assert_eq!(
            cells,
            vec![
                ("distributionPoints".into(), qualifier.clone(), b"distribution".to_vec()),
                ("spreads".into(), qualifier.clone(), spread.clone()),
                ("tdigestPoints".into(), qualifier.clone(), b"tdigest".to_vec()),
            ]
        );
        for (kind, want) in [(SampleKind::TDIGEST, b"tdigest".to_vec()), (SampleKind::SPREAD, spread)] {
            let mut fetch = request(vec![series.clone()], 0, 1000, 0);
            fetch.kind = kind;
            let response = backend.fetch_samples(fetch).await.unwrap();
            assert_eq!(answer(&response), vec![(0, vec![], vec![(1000, want)])], "{}", kind.name());
        }
    });
}

#[test]
fn a_configured_distributions_family_is_created_and_used() {
    runtime().block_on(async {
        let extra =
            serde_json::json!({ "distributionsFamily": "dists", "extraFamilies": [], "disableBulkMutations": true });
        let (backend, config) = common::backend_with("dist-family", extra).await;
        let series = Series::new("k", [("t", "v")], []);
        write(&backend, &series, &[(1000, b"sketch".to_vec())]).await.unwrap();
        let rows = raw_rows(&config).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].cells.len(), 1);
        assert_eq!(rows[0].cells[0].family, "dists");
        let response = backend.fetch_samples(request(vec![series], 0, 1000, 0)).await.unwrap();
        assert_eq!(answer(&response), vec![(0, vec![], vec![(1000, b"sketch".to_vec())])]);
    });
}
