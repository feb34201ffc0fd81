//! Write and fetch throughput against the Bigtable emulator, in points per
//! second, with the bulk writer (the default) and with
//! `disableBulkMutations`. Starts the emulator through
//! `scripts/servers/bigtable.sh` if it is not running; `BENCH_EMULATOR`
//! (`host:port`) points at another one instead (an emulator keeps every
//! table in memory and slows down as tests fill it: a fresh one gives
//! steadier figures).
//!
//!   cargo bench -p heroic-plugin-bigtable --bench throughput
//!
//! Per mode (`BENCH_MODES`, default `bulk,direct`), on a fresh table:
//! - large writes, one at a time: `BENCH_SERIES` (default 50) series of
//!   `BENCH_POINTS` (default 10,000) points at 10 s intervals, in batches of
//!   `BENCH_BATCH` (default 10,000) points;
//! - small concurrent writes, as many HTTP clients would send:
//!   `BENCH_WRITERS` (default 64) writers, each sending `BENCH_SMALL_WRITES`
//!   (default 200) writes of `BENCH_SMALL_POINTS` (default 10) points, one
//!   after the other;
//! - fetches of what the large writes stored.
//!
//! `BENCH_MUTATIONS` (default 1,000, `maxWriteBatchSize`),
//! `BENCH_WRITE_CONCURRENCY` (default 4) and `BENCH_FLUSH_MS` (default 0,
//! the bulk writer's `flushIntervalMs`) tune the MutateRows calls.

use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use heroic_plugin_api::sdk::MetricBackend;
use heroic_plugin_api::types::{FetchRequest, PointBatch, Series, SeriesPoints, TimeRange};
use heroic_plugin_bigtable::{BigtableBackend, BigtableConfig};

const EMULATOR: &str = "127.0.0.1:8086";
const START_TS: i64 = 1_600_000_000_000;
static RUNS: AtomicUsize = AtomicUsize::new(0);

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn emulator() -> String {
    std::env::var("BENCH_EMULATOR").unwrap_or_else(|_| EMULATOR.into())
}

fn ensure_emulator() {
    let answers = || TcpStream::connect_timeout(&emulator().parse().unwrap(), Duration::from_millis(500)).is_ok();
    if answers() {
        return;
    }
    assert_eq!(emulator(), EMULATOR, "nothing answers on BENCH_EMULATOR");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/servers/bigtable.sh");
    let status = std::process::Command::new("bash").arg(&script).arg("start").status().expect("run the script");
    assert!(
        status.success() && answers(),
        "the Bigtable emulator is not running and {} start failed",
        script.display()
    );
}

/// `count` points of `series` from the `first`-th, 10 s apart.
fn points(series: &Series, first: usize, count: usize) -> SeriesPoints {
    let pairs: Vec<(i64, f64)> =
        (first..first + count).map(|i| (START_TS + i as i64 * 10_000, (i as f64).sin())).collect();
    SeriesPoints { series: series.clone(), points: PointBatch::from_pairs(&pairs) }
}

fn stat(backend: &BigtableBackend, name: &str) -> f64 {
    backend.statistics().iter().find(|s| s.name.as_str() == name).map_or(0.0, |s| s.value)
}

fn report(what: &str, points: usize, secs: f64, extra: String) {
    println!("  {what:<24} {points:>9} points in {secs:>7.3} s = {:>10.0} points/s{extra}", points as f64 / secs);
}

/// The large writes: whole series cut into batches of `batch_points`.
fn large_batches(series: &[Series], points_per_series: usize, batch_points: usize) -> Vec<Vec<SeriesPoints>> {
    let mut batches = Vec::new();
    let mut current = Vec::new();
    let mut in_batch = 0;
    for s in series {
        let mut offset = 0;
        while offset < points_per_series {
            let n = (points_per_series - offset).min(batch_points - in_batch);
            current.push(points(s, offset, n));
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
    batches
}

async fn run_mode(mode: String) {
    let series_count = env_or("BENCH_SERIES", 50);
    let points_per_series = env_or("BENCH_POINTS", 10_000);
    let batch_points = env_or("BENCH_BATCH", 10_000).max(1);
    let config: BigtableConfig = serde_json::from_value(serde_json::json!({
        "project": "bench",
        "instance": "bench",
        // A fresh table per run: rewriting cells that exist is much faster
        // in the emulator than writing new ones, and would flatter a rerun.
        "table": format!("bench-{mode}-{}-{}", std::process::id(), RUNS.fetch_add(1, Ordering::Relaxed)),
        "emulatorEndpoint": emulator(),
        "maxWriteBatchSize": env_or("BENCH_MUTATIONS", 1000),
        "writeConcurrency": env_or("BENCH_WRITE_CONCURRENCY", 4),
        "disableBulkMutations": mode == "direct",
        "flushIntervalMs": env_or("BENCH_FLUSH_MS", 0),
    }))
    .unwrap();
    let backend = Arc::new(BigtableBackend::create(config).await.expect("create"));
    backend.configure().await.expect("configure");
    println!("{mode} ({series_count} series x {points_per_series} points, large batches of {batch_points}):");

    let series: Vec<Series> =
        (0..series_count).map(|i| Series::new("bench-cpu", [("host", format!("host-{i}"))], [])).collect();
    let total = series_count * points_per_series;
    let calls_before = stat(&backend, "mutate_rpcs");
    let started = Instant::now();
    for batch in large_batches(&series, points_per_series, batch_points) {
        backend.write(batch.into()).await.expect("write");
    }
    let calls = stat(&backend, "mutate_rpcs") - calls_before;
    report("write (large batches):", total, started.elapsed().as_secs_f64(), format!(", {calls} MutateRows"));

    let writers = env_or("BENCH_WRITERS", 64);
    let writes = env_or("BENCH_SMALL_WRITES", 200);
    let small = env_or("BENCH_SMALL_POINTS", 10);
    let calls_before = stat(&backend, "mutate_rpcs");
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let backend = backend.clone();
            let s = Series::new("bench-small", [("writer", w.to_string())], []);
            tokio::spawn(async move {
                for i in 0..writes {
                    backend.write(vec![points(&s, i * small, small)].into()).await.expect("write");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    let calls = stat(&backend, "mutate_rpcs") - calls_before;
    let secs = started.elapsed().as_secs_f64();
    let extra = format!(", {writers}x{writes} writes of {small}, {calls} MutateRows");
    report("write (small, concurrent):", writers * writes * small, secs, extra);

    let range = TimeRange::new(START_TS - 1, START_TS + points_per_series as i64 * 10_000);
    let started = Instant::now();
    let request = FetchRequest { series: series.clone().into(), range, point_limit: 0 };
    let response = backend.fetch(request).await.expect("fetch");
    let read: usize = response.series.iter().map(|s| s.points.len()).sum();
    assert_eq!(read, total, "every written point is read back");
    report("fetch (all series):", read, started.elapsed().as_secs_f64(), String::new());

    let started = Instant::now();
    let mut single = 0;
    for s in series.iter().take(10) {
        let request = FetchRequest { series: vec![s.clone()].into(), range, point_limit: 0 };
        let response = backend.fetch(request).await.expect("fetch");
        single += response.series.iter().map(|s| s.points.len()).sum::<usize>();
    }
    report("fetch (one at a time):", single, started.elapsed().as_secs_f64(), String::new());
    backend.shutdown().await.expect("shutdown");
}

fn main() {
    ensure_emulator();
    let modes = std::env::var("BENCH_MODES").unwrap_or_else(|_| "bulk,direct".into());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    for mode in modes.split(',').map(str::trim) {
        assert!(mode == "bulk" || mode == "direct", "BENCH_MODES takes bulk and direct, got {mode:?}");
        // On the runtime's workers, as the plugin runs every call (not on
        // this thread, which would add a core the plugin does not have).
        runtime.block_on(runtime.spawn(run_mode(mode.to_string()))).expect("benchmark task");
    }
}
