//! The bulk writer against the emulator: concurrent writes share MutateRows
//! calls, every acknowledged write is readable at once, a failed entry
//! fails only its own write, shutdown flushes the buffer, writers wait for
//! room in a full buffer, the flush interval delays only when asked to,
//! and `disableBulkMutations` sends each write's own calls.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::mutate_rows_request::Entry;
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::mutation::{Mutation as Kind, SetCell};
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::Mutation;
use heroic_plugin_api::sdk::MetricBackend;
use heroic_plugin_api::types::*;
use heroic_plugin_api::ErrorKind;
use heroic_plugin_bigtable::bulk::{Bulk, BulkSettings};
use heroic_plugin_bigtable::client::Client;
use heroic_plugin_bigtable::error::BigtableError;
use heroic_plugin_bigtable::stats::Stats;
use heroic_plugin_bigtable::BigtableBackend;
use serde_json::json;

use common::{backend_with, runtime, stat};

const T0: i64 = 1_600_000_000_000;

fn series(name: &str, i: usize) -> Series {
    Series::new(name.to_string(), [("writer", i.to_string())], [])
}

/// `count` points of `series` from `first`, one a second.
fn points(series: &Series, first: usize, count: usize) -> SeriesPoints {
    let pairs: Vec<(i64, f64)> = (first..first + count).map(|i| (T0 + i as i64 * 1000, i as f64)).collect();
    SeriesPoints { series: series.clone(), points: PointBatch::from_pairs(&pairs) }
}

/// The points stored for each of `series`, in request order.
async fn stored(backend: &BigtableBackend, series: &[Series]) -> Vec<Vec<(i64, f64)>> {
    let request = FetchRequest { series: series.to_vec().into(), range: TimeRange::new(0, T0 * 2), point_limit: 0 };
    let response = backend.fetch(request).await.expect("fetch");
    let mut found = vec![Vec::new(); series.len()];
    for s in response.series.iter() {
        found[s.request_index as usize].extend(s.points.to_pairs());
    }
    found
}

fn expected(first: usize, count: usize) -> Vec<(i64, f64)> {
    (first..first + count).map(|i| (T0 + i as i64 * 1000, i as f64)).collect()
}

#[test]
fn concurrent_writes_share_one_call_up_to_batch_size() {
    runtime().block_on(async {
        // One slot and a long interval: only a full batch may leave.
        let extra = json!({ "writeConcurrency": 1, "batchSize": 64, "flushIntervalMs": 20_000 });
        let (backend, _) = backend_with("bulk-size", extra).await;
        let all: Vec<Series> = (0..64).map(|i| series("bulk-size", i)).collect();
        let started = Instant::now();
        let results = join_all(all.iter().map(|s| backend.write(vec![points(s, 0, 1)].into()))).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert!(started.elapsed() < Duration::from_secs(15), "the full batch left without waiting for the interval");
        assert_eq!(stat(&backend, "mutate_rpcs"), 1.0, "64 writes, one MutateRows call");
        assert_eq!(stat(&backend, "bulk_flushes"), 1.0);
        assert_eq!(stat(&backend, "buffered_mutations"), 0.0);
        assert_eq!(stat(&backend, "points_written"), 64.0);
        assert!(stored(&backend, &all).await.iter().all(|p| *p == expected(0, 1)));
    });
}

#[test]
fn default_config_coalesces_concurrent_writes_and_sends_a_lone_one_at_once() {
    runtime().block_on(async {
        let (backend, _) = backend_with("bulk-default", json!({})).await;
        let backend = Arc::new(backend);
        let writers = 200;
        let all: Vec<Series> = (0..writers).map(|i| series("bulk-default", i)).collect();
        let tasks: Vec<_> = all
            .iter()
            .map(|s| {
                let (backend, batch) = (backend.clone(), vec![points(s, 0, 5)]);
                tokio::spawn(async move { backend.write(batch.into()).await })
            })
            .collect();
        for task in join_all(tasks).await {
            task.unwrap().expect("write");
        }
        let calls = stat(&backend, "mutate_rpcs");
        assert!(calls < writers as f64, "{writers} concurrent writes took {calls} calls: none coalesced");
        assert_eq!(stat(&backend, "bulk_flushes"), calls, "no retries expected");
        assert_eq!(stat(&backend, "buffered_mutations"), 0.0);
        assert!(stored(&backend, &all).await.iter().all(|p| *p == expected(0, 5)));

        // Heroic would hold this one for its 2 s flush interval.
        let started = Instant::now();
        backend.write(vec![points(&all[0], 5, 1)].into()).await.unwrap();
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_millis(1000), "a lone write waited {elapsed:?}");
        assert_eq!(stat(&backend, "mutate_rpcs"), calls + 1.0);
    });
}

#[test]
fn every_acknowledged_write_is_readable_at_once() {
    runtime().block_on(async {
        for (name, extra) in [
            ("bulk-ack", json!({})),
            ("bulk-ack-linger", json!({ "flushIntervalMs": 20, "batchSize": 30, "writeConcurrency": 2 })),
        ] {
            let (backend, _) = backend_with(name, extra).await;
            let backend = Arc::new(backend);
            let tasks: Vec<_> = (0..16)
                .map(|i| {
                    let backend = backend.clone();
                    let s = series(name, i);
                    tokio::spawn(async move {
                        for round in 0..8 {
                            backend.write(vec![points(&s, round * 2, 2)].into()).await.expect("write");
                            let found = stored(&backend, std::slice::from_ref(&s)).await;
                            assert_eq!(found[0], expected(0, round * 2 + 2), "{name}: round {round} of writer {i}");
                        }
                    })
                })
                .collect();
            for task in join_all(tasks).await {
                task.unwrap();
            }
        }
    });
}

#[test]
fn a_refused_series_fails_only_its_own_write() {
    runtime().block_on(async {
        let extra = json!({ "writeConcurrency": 1, "flushIntervalMs": 200 });
        let (backend, _) = backend_with("bulk-refused", extra).await;
        let all: Vec<Series> = (0..8).map(|i| series("bulk-refused", i)).collect();
        let huge = Series::new("bulk-refused", [("t", "x".repeat(5000))], []);
        let writes = all.iter().enumerate().map(|(i, s)| {
            let mut batch = vec![points(s, 0, 3)];
            if i == 3 {
                batch.push(points(&huge, 0, 3));
            }
            backend.write(batch.into())
        });
        let results = join_all(writes).await;
        for (i, result) in results.iter().enumerate() {
            match (i, result) {
                (3, Err(e)) => assert!(e.kind == ErrorKind::INVALID_INPUT && e.message.contains("row key"), "{e}"),
                (3, Ok(())) => panic!("the write with an oversized key succeeded"),
                (_, r) => assert!(r.is_ok(), "write {i}: {r:?}"),
            }
        }
        assert_eq!(stat(&backend, "row_key_too_large"), 1.0);
        assert!(stored(&backend, &all).await.iter().all(|p| *p == expected(0, 3)), "every valid series is stored");
    });
}

fn cell(family: &str, second: u8) -> Mutation {
    Mutation {
        mutation: Some(Kind::SetCell(SetCell {
            family_name: family.into(),
            column_qualifier: vec![0, 0, 0, second],
            timestamp_micros: 0,
            value: 1f64.to_be_bytes().to_vec(),
        })),
    }
}

fn entry(row: &str, cells: Vec<Mutation>) -> Entry {
    Entry { row_key: row.as_bytes().to_vec(), mutations: cells, idempotency: None }
}

#[test]
fn an_entry_the_server_rejects_fails_only_its_own_write() {
    runtime().block_on(async {
        let (_, config) = backend_with("bulk-rejected", json!({})).await;
        let stats = Arc::new(Stats::default());
        let client = Arc::new(Client::connect(&config, stats.clone()).await.unwrap());
        // Five mutations make a full batch: the three writes share one call.
        let settings =
            BulkSettings { batch_size: 5, flush_interval: Duration::from_secs(20), concurrency: 1, max_buffered: 100 };
        let bulk = Bulk::start(client.clone(), settings, stats.clone());
        let (first, bad, last) = tokio::join!(
            bulk.submit(vec![entry("a", vec![cell("points", 1)]), entry("b", vec![cell("points", 1)])]),
            // `nope` is not a column family of the table.
            bulk.submit(vec![entry("c", vec![cell("points", 1)]), entry("d", vec![cell("nope", 1)])]),
            bulk.submit(vec![entry("e", vec![cell("points", 1)])]),
        );
        assert_eq!(stats.bulk_flushes.get(), 1, "one batch for the three writes");
        first.expect("a write without a rejected entry");
        last.expect("a write without a rejected entry");
        match bad {
            Err(BigtableError::PartialWrite { failed: 1, total: 2, ref first, .. }) => {
                assert!(first.contains("nope"), "{first}")
            }
            other => panic!("expected a partial failure of the write's own entries, got {other:?}"),
        }
        assert_eq!(stats.mutate_rpcs.get(), 1, "a rejected entry is not retried");
        assert_eq!(stats.buffered_mutations.get(), 0);
        bulk.shutdown().await;
        let mut rows = Vec::new();
        let all = googleapis_tonic_google_bigtable_v2::google::bigtable::v2::RowSet {
            row_keys: vec![],
            row_ranges: vec![heroic_plugin_bigtable::read_rows::range(Vec::new(), None)],
        };
        client
            .read_rows(all, None, &mut |row| {
                rows.push(String::from_utf8(row.key).unwrap());
                std::ops::ControlFlow::Continue(())
            })
            .await
            .unwrap();
        assert_eq!(rows, ["a", "b", "c", "e"], "every accepted entry is stored, the bad write's good one too");
    });
}

#[test]
fn shutdown_flushes_the_buffer_and_refuses_later_writes() {
    runtime().block_on(async {
        // Nothing would leave before a minute but for the shutdown.
        let extra = json!({ "flushIntervalSeconds": 60, "batchSize": 10_000 });
        let (backend, config) = backend_with("bulk-shutdown", extra).await;
        let backend = Arc::new(backend);
        let all: Vec<Series> = (0..3).map(|i| series("bulk-shutdown", i)).collect();
        let batch: Vec<SeriesPoints> = all.iter().map(|s| points(s, 0, 10)).collect();
        let writer = backend.clone();
        let write = tokio::spawn(async move { writer.write(batch.into()).await });
        let started = Instant::now();
        while stat(&backend, "buffered_mutations") < 30.0 {
            assert!(started.elapsed() < Duration::from_secs(10), "the write never reached the buffer");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!write.is_finished(), "the write is held for its batch");
        assert_eq!(stat(&backend, "mutate_rpcs"), 0.0);

        backend.shutdown().await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), write).await.expect("answered after shutdown");
        answer.unwrap().expect("the buffered write was applied");
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(stat(&backend, "buffered_mutations"), 0.0);

        let e = backend.write(vec![points(&all[0], 10, 1)].into()).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::UNAVAILABLE, "{e}");
        assert!(e.message.contains("shut down"), "{e}");

        // Another node (a fresh client) reads what the shutdown flushed.
        let reader = BigtableBackend::create(config).await.unwrap();
        assert!(stored(&reader, &all).await.iter().all(|p| *p == expected(0, 10)));
    });
}

#[test]
fn writers_wait_for_room_in_a_full_buffer() {
    runtime().block_on(async {
        let extra = json!({ "writeConcurrency": 1, "batchSize": 10, "maxBufferedMutations": 10 });
        let (backend, _) = backend_with("bulk-room", extra).await;
        let backend = Arc::new(backend);
        let all: Vec<Series> = (0..21).map(|i| series("bulk-room", i)).collect();
        let highest = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let watcher = {
            let (backend, highest, watching) = (backend.clone(), highest.clone(), watching.clone());
            tokio::spawn(async move {
                while watching.load(std::sync::atomic::Ordering::Relaxed) {
                    highest
                        .fetch_max(stat(&backend, "buffered_mutations") as u64, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        // Twenty writes of 5 and one of 50, larger than the whole buffer.
        let tasks: Vec<_> = all
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (backend, batch) = (backend.clone(), vec![points(s, 0, if i == 20 { 50 } else { 5 })]);
                tokio::spawn(async move { backend.write(batch.into()).await })
            })
            .collect();
        for task in join_all(tasks).await {
            task.unwrap().expect("write");
        }
        watching.store(false, std::sync::atomic::Ordering::Relaxed);
        watcher.await.unwrap();
        assert!(stat(&backend, "bulk_waits") > 0.0, "some writers found the buffer full");
        let highest = highest.load(std::sync::atomic::Ordering::Relaxed);
        assert!(highest <= 50, "{highest} mutations buffered at once: the buffer holds 10, or one larger write");
        assert_eq!(stat(&backend, "buffered_mutations"), 0.0);
        let found = stored(&backend, &all).await;
        assert_eq!(found[20], expected(0, 50));
        assert!(found[..20].iter().all(|p| *p == expected(0, 5)));
    });
}

#[test]
fn the_flush_interval_holds_a_lone_write() {
    runtime().block_on(async {
        let (backend, _) = backend_with("bulk-linger", json!({ "flushIntervalMs": 300 })).await;
        let s = series("bulk-linger", 0);
        let started = Instant::now();
        backend.write(vec![points(&s, 0, 1)].into()).await.unwrap();
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(300), "left after {elapsed:?}, before its interval");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert_eq!(stored(&backend, &[s]).await[0], expected(0, 1));
    });
}

#[test]
fn disabled_bulk_mutations_send_each_write_its_own_calls() {
    runtime().block_on(async {
        let (backend, _) =
            backend_with("bulk-off", json!({ "disableBulkMutations": true, "maxWriteBatchSize": 4 })).await;
        let all: Vec<Series> = (0..8).map(|i| series("bulk-off", i)).collect();
        let results = join_all(all.iter().map(|s| backend.write(vec![points(s, 0, 6)].into()))).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(stat(&backend, "mutate_rpcs"), 16.0, "8 writes of 6 cells, 4 per call: 2 calls each");
        assert_eq!(stat(&backend, "bulk_flushes"), 0.0);
        assert!(stored(&backend, &all).await.iter().all(|p| *p == expected(0, 6)));
        backend.shutdown().await.unwrap();
    });
}

#[test]
fn conflicting_flush_intervals_are_a_config_error() {
    runtime().block_on(async {
        common::ensure_emulator();
        let mut config = common::config("unused");
        config["flushIntervalSeconds"] = json!(2);
        config["flushIntervalMs"] = json!(2000);
        let config = serde_json::from_value(config).unwrap();
        let e = BigtableBackend::create(config).await.err().expect("refused");
        assert_eq!(e.kind, ErrorKind::CONFIG, "{e}");
        assert!(e.message.contains("flushIntervalSeconds and flushIntervalMs"), "{e}");
    });
}
