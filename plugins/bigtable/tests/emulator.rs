//! Bigtable-specific behaviour against the emulator, in process: the
//! storage layout is Heroic's byte for byte (both ways), oversized row keys
//! are refused and counted, listing finds resource variants once, configure
//! is idempotent, and a server that never answers gives a timeout error
//! after bounded retries rather than a hang.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{hex, raw_rows, runtime, worked_example_key, worked_example_series};
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::mutate_rows_request::Entry;
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::mutation::{Mutation as Kind, SetCell};
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::Mutation;
use heroic_plugin_api::sdk::MetricBackend;
use heroic_plugin_api::types::*;
use heroic_plugin_api::ErrorKind;
use heroic_plugin_bigtable::client::Client;
use heroic_plugin_bigtable::stats::Stats;
use heroic_plugin_bigtable::{row_key, BigtableBackend, BigtableConfig};

fn parse(config: serde_json::Value) -> BigtableConfig {
    serde_json::from_value(config).unwrap()
}

/// A backend on a fresh table, configured.
async fn backend(name: &str) -> (BigtableBackend, BigtableConfig) {
    common::backend_with(name, serde_json::json!({})).await
}

#[test]
fn writes_are_stored_in_heroic_layout() {
    runtime().block_on(async {
        let (backend, config) = backend("layout").await;
        let ts = 1_300_000_000_000;
        let batch =
            vec![SeriesPoints { series: worked_example_series(), points: PointBatch::from_pairs(&[(ts, 2.5)]) }];
        backend.write(batch.into()).await.unwrap();
        let rows = raw_rows(&config).await;
        assert_eq!(rows.len(), 1, "one row expected: {rows:?}");
        assert_eq!(rows[0].key, worked_example_key());
        assert_eq!(rows[0].cells.len(), 1);
        let cell = &rows[0].cells[0];
        assert_eq!(cell.family, "points");
        assert_eq!(cell.qualifier, hex("ae 09 c8 00"));
        assert_eq!(cell.value, 2.5f64.to_be_bytes().to_vec());
    });
}

#[test]
fn rows_written_in_heroic_layout_are_read_with_resource_variants() {
    runtime().block_on(async {
        let (backend, config) = backend("heroic-rows").await;
        let client = Client::connect(&config, Arc::new(Stats::default())).await.unwrap();
        let cell = |qualifier: Vec<u8>, value: f64| Mutation {
            mutation: Some(Kind::SetCell(SetCell {
                family_name: "points".into(),
                column_qualifier: qualifier,
                timestamp_micros: 0,
                value: value.to_be_bytes().to_vec(),
            })),
        };
        let base = 0x0000_012e_0000_0000i64;
        let next_base = base + row_key::PERIOD;
        let mut next_row = worked_example_key();
        let n = next_row.len();
        next_row[n - 8..].copy_from_slice(&next_base.to_be_bytes());
        // The same series with resource {pod: p1}, suffix built by hand:
        // list of 1, type 0, payload length 8, map of 1: "pod" "p1".
        let mut variant = worked_example_key();
        variant.extend_from_slice(&hex("01 00 08 01 03 706f64 02 7031"));
        client
            .mutate_rows(vec![
                Entry {
                    row_key: worked_example_key(),
                    mutations: vec![cell(hex("ae 09 c8 00"), 1.0)],
                    idempotency: None,
                },
                Entry { row_key: next_row, mutations: vec![cell(hex("00 00 00 00"), 2.0)], idempotency: None },
                Entry { row_key: variant, mutations: vec![cell(hex("ae 09 c8 00"), 3.0)], idempotency: None },
            ])
            .await
            .unwrap();

        let request = FetchRequest {
            series: vec![worked_example_series()].into(),
            range: TimeRange::new(next_base - 1, next_base),
            point_limit: 0,
        };
        let response = backend.fetch(request).await.unwrap();
        let points: Vec<_> = response.series.iter().flat_map(|s| s.points.to_pairs()).collect();
        assert_eq!(points, vec![(next_base, 2.0)], "offset 0 of a later row is inside (start, end]");

        let ts = 1_300_000_000_000;
        let request =
            FetchRequest { series: vec![worked_example_series()].into(), range: TimeRange::new(0, ts), point_limit: 0 };
        let response = backend.fetch(request).await.unwrap();
        assert_eq!(response.series.len(), 2, "both resource variants: {:?}", response.series);
        assert!(response.series[0].resource.is_empty());
        assert_eq!(response.series[0].points.to_pairs(), vec![(ts, 1.0)]);
        assert_eq!(response.series[1].resource.as_slice(), &[Tag::new("pod", "p1")]);
        assert_eq!(response.series[1].points.to_pairs(), vec![(ts, 3.0)]);

        let page = backend.list_series(None, 0).await.unwrap();
        let listed: Vec<Series> = page.series.into_vec();
        assert_eq!(
            listed,
            vec![
                worked_example_series(),
                Series::new("system", [("host", "db1"), ("région", "Zürich")], [("pod", "p1")])
            ]
        );
    });
}

#[test]
fn oversized_row_keys_are_refused_and_counted() {
    runtime().block_on(async {
        let (backend, _) = backend("oversized").await;
        let huge = Series::new("huge", [("t", "x".repeat(5000))], []);
        let fine = Series::new("fine", [("t", "y")], []);
        let points = PointBatch::from_pairs(&[(1_000, 1.0)]);
        let batch = vec![
            SeriesPoints { series: huge.clone(), points: points.clone() },
            SeriesPoints { series: fine.clone(), points: points.clone() },
        ];
        let e = backend.write(batch.into()).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::INVALID_INPUT, "{e}");
        assert!(e.message.contains("row key"), "{e}");
        assert_eq!(common::stat(&backend, "row_key_too_large"), 1.0);
        let response = backend
            .fetch(FetchRequest { series: vec![fine, huge].into(), range: TimeRange::new(0, 2_000), point_limit: 0 })
            .await
            .unwrap();
        assert_eq!(response.series.len(), 1, "the valid series of the batch is stored");
        assert_eq!(response.series[0].request_index, 0);
        assert!(backend.health().ok, "a refused key is the caller's fault, not the backend's");
    });
}

#[test]
fn list_series_pages_through_variants_and_periods_once() {
    runtime().block_on(async {
        let (backend, _) = backend("listing").await;
        let mut written = Vec::new();
        for k in 0..3 {
            for pod in ["a", "b"] {
                let s = Series::new(format!("key{k}"), [("host", "h")], [("pod", pod)]);
                let points = PointBatch::from_pairs(&[(1_000, 1.0), (row_key::PERIOD * 3, 2.0)]);
                written.push(s.clone());
                backend.write(vec![SeriesPoints { series: s, points }].into()).await.unwrap();
            }
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = backend.list_series(cursor.clone(), 1).await.unwrap();
            assert!(page.series.len() <= 1);
            seen.extend(page.series);
            match page.next_cursor.into_option() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        written.sort();
        assert_eq!(seen, written, "every series exactly once, in row key order");
    });
}

#[test]
fn configure_is_idempotent_and_adds_missing_families() {
    runtime().block_on(async {
        let (backend, config) = backend("configure").await;
        backend.configure().await.expect("second configure");
        let mut more = common::config(&config.table);
        more["extraFamilies"] = serde_json::json!(["distributionPoints", "events", "hits"]);
        let other = BigtableBackend::create(parse(more)).await.unwrap();
        other.configure().await.expect("configure adding a family");
    });
}

#[test]
fn a_server_that_never_answers_times_out_after_bounded_retries() {
    runtime().block_on(async {
        // Accepts connections and never says a word.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let config = parse(serde_json::json!({
            "project": "p",
            "emulatorEndpoint": addr.to_string(),
            "readRowsRpcTimeoutMs": 300,
            "shortRpcTimeoutMs": 300,
            "maxRetries": 2,
            "initialBackoffMs": 10,
        }));
        let started = Instant::now();
        let backend = match BigtableBackend::create(config).await {
            Ok(backend) => backend,
            Err(e) => {
                // tonic may insist on the HTTP/2 handshake when connecting.
                assert_eq!(e.kind, ErrorKind::UNAVAILABLE, "{e}");
                assert!(started.elapsed() < Duration::from_secs(5));
                return;
            }
        };
        let started = Instant::now();
        let request = FetchRequest {
            series: vec![Series::new("k", [("a", "b")], [])].into(),
            range: TimeRange::new(0, 1000),
            point_limit: 0,
        };
        let e = backend.fetch(request).await.unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(e.kind, ErrorKind::TIMEOUT, "{e}");
        assert!(e.message.contains("3 attempt"), "{e}");
        assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
        assert_eq!(common::stat(&backend, "retries"), 2.0);
        assert_eq!(common::stat(&backend, "timeouts"), 3.0);
        assert!(!backend.health().ok);
    });
}
