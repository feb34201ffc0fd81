//! Write and fetch throughput against the Bigtable emulator, in points per
//! second. Starts the emulator through `scripts/servers/bigtable.sh` if it
//! is not running.
//!
//!   cargo bench -p heroic-plugin-bigtable --bench throughput
//!
//! `BENCH_SERIES` (default 50) series of `BENCH_POINTS` (default 10,000)
//! points at 10 s intervals, written in batches of `BENCH_BATCH` (default
//! 10,000) points; `BENCH_MUTATIONS` (default 1,000, the plugin's default
//! `maxWriteBatchSize`) and `BENCH_WRITE_CONCURRENCY` (default 4) tune the
//! MutateRows calls.

use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use heroic_plugin_api::sdk::MetricBackend;
use heroic_plugin_api::types::{FetchRequest, PointBatch, Series, SeriesPoints, TimeRange};
use heroic_plugin_bigtable::{BigtableBackend, BigtableConfig};

const EMULATOR: &str = "127.0.0.1:8086";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn ensure_emulator() {
    let answers = || TcpStream::connect_timeout(&EMULATOR.parse().unwrap(), Duration::from_millis(500)).is_ok();
    if answers() {
        return;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/servers/bigtable.sh");
    let status = std::process::Command::new("bash").arg(&script).arg("start").status().expect("run the script");
    assert!(status.success() && answers(), "the Bigtable emulator is not running and {} start failed", script.display());
}

fn main() {
    ensure_emulator();
    let series_count = env_or("BENCH_SERIES", 50);
    let points_per_series = env_or("BENCH_POINTS", 10_000);
    let batch_points = env_or("BENCH_BATCH", 10_000).max(1);
    let table = format!("bench-{}", std::process::id());
    let config: BigtableConfig = serde_json::from_value(serde_json::json!({
        "project": "bench",
        "instance": "bench",
        "table": table,
        "emulatorEndpoint": EMULATOR,
        "maxWriteBatchSize": env_or("BENCH_MUTATIONS", 1000),
        "writeConcurrency": env_or("BENCH_WRITE_CONCURRENCY", 4),
    }))
    .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let backend = BigtableBackend::create(config).await.expect("create");
        backend.configure().await.expect("configure");
        let start_ts: i64 = 1_600_000_000_000;
        let series: Vec<Series> =
            (0..series_count).map(|i| Series::new("bench-cpu", [("host", format!("host-{i}"))], [])).collect();

        let mut batches = Vec::new();
        let mut current = Vec::new();
        let mut in_batch = 0;
        for s in &series {
            let mut offset = 0;
            while offset < points_per_series {
                let n = (points_per_series - offset).min(batch_points - in_batch);
                let points: Vec<(i64, f64)> =
                    (offset..offset + n).map(|i| (start_ts + i as i64 * 10_000, (i as f64).sin())).collect();
                current.push(SeriesPoints { series: s.clone(), points: PointBatch::from_pairs(&points) });
                offset += n;
                in_batch += n;
                if in_batch == batch_points {
                    batches.push(std::mem::take(&mut current));
                    in_batch = 0;
                }
            }
        }
        if !current.is_empty() {
            batches.push(current);
        }
        let total = series_count * points_per_series;

        let started = Instant::now();
        for batch in batches {
            backend.write(batch.into()).await.expect("write");
        }
        let write_secs = started.elapsed().as_secs_f64();

        let range = TimeRange::new(start_ts - 1, start_ts + points_per_series as i64 * 10_000);
        let started = Instant::now();
        let response = backend
            .fetch(FetchRequest { series: series.clone().into(), range, point_limit: 0 })
            .await
            .expect("fetch");
        let fetch_secs = started.elapsed().as_secs_f64();
        let read: usize = response.series.iter().map(|s| s.points.len()).sum();
        assert_eq!(read, total, "every written point is read back");

        let started = Instant::now();
        let mut single = 0;
        for s in series.iter().take(10) {
            let r = backend
                .fetch(FetchRequest { series: vec![s.clone()].into(), range, point_limit: 0 })
                .await
                .expect("fetch");
            single += r.series.iter().map(|s| s.points.len()).sum::<usize>();
        }
        let single_secs = started.elapsed().as_secs_f64();

        println!("bigtable emulator throughput ({series_count} series x {points_per_series} points, batches of {batch_points}):");
        println!("  write:                 {total:>9} points in {write_secs:>7.3} s = {:>10.0} points/s", total as f64 / write_secs);
        println!("  fetch (all series):    {read:>9} points in {fetch_secs:>7.3} s = {:>10.0} points/s", read as f64 / fetch_secs);
        println!("  fetch (one at a time): {single:>9} points in {single_secs:>7.3} s = {:>10.0} points/s", single as f64 / single_secs);
    });
}
