//! Storage benchmark: ingest rate, bytes per point on disk and fetch
//! throughput on 10 s random-walk gauges with 2 decimals.
//!
//! Run: `cargo bench -p heroic-plugin-local --bench storage`
//! (`BENCH_SERIES` and `BENCH_POINTS` override the data size.)

use std::time::Instant;

use heroic_plugin_api::types::{FetchRequest, PointBatch, Series, SeriesPoints, TimeRange};
use heroic_plugin_local::{MetricOptions, MetricStore};

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let n_series = env("BENCH_SERIES", 100);
    let n_points = env("BENCH_POINTS", 86_400); // 10 days at 10 s
    let chunk = 8_640; // one day per series per write call
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = MetricOptions { background_flush: false, flush_points: usize::MAX, ..MetricOptions::default() };
    let store = MetricStore::open(dir.path(), opts.clone()).expect("open");
    let series: Vec<Series> = (0..n_series)
        .map(|i| {
            Series::new(
                "bench.gauge",
                [("host", format!("host-{i}")), ("dc", "eu".into())],
                Vec::<(&str, String)>::new(),
            )
        })
        .collect();

    // Random walk in cents: each step moves by -50..=50 hundredths.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let start = 1_700_000_000_000i64;
    let data: Vec<Vec<(i64, f64)>> = (0..n_series)
        .map(|_| {
            let mut cents = 5_000i64;
            (0..n_points as i64)
                .map(|j| {
                    cents += (rng.next() % 101) as i64 - 50;
                    (start + j * 10_000, cents as f64 / 100.0)
                })
                .collect()
        })
        .collect();
    let total = (n_series * n_points) as f64;

    let t = Instant::now();
    let mut calls = 0;
    for day in (0..n_points).step_by(chunk) {
        let batch: Vec<SeriesPoints> = series
            .iter()
            .zip(&data)
            .map(|(s, pts)| SeriesPoints {
                series: s.clone(),
                points: PointBatch::from_pairs(&pts[day..(day + chunk).min(n_points)]),
            })
            .collect();
        store.write(&batch).expect("write");
        calls += 1;
    }
    let ingest = t.elapsed();
    println!(
        "ingest: {total:.0} points in {calls} durable writes, {:.2} s, {:.2} M points/s (WAL + fsync per write)",
        ingest.as_secs_f64(),
        total / ingest.as_secs_f64() / 1e6
    );

    let t = Instant::now();
    store.flush().expect("flush");
    let flush = t.elapsed();
    let stats = store.stats();
    println!(
        "flush: {:.2} s ({:.2} M points/s compressed), {} blocks",
        flush.as_secs_f64(),
        total / flush.as_secs_f64() / 1e6,
        stats.blocks
    );
    println!(
        "on disk: {} bytes in segments for {total:.0} points = {:.3} bytes/point",
        stats.segment_bytes,
        stats.segment_bytes as f64 / total
    );

    let req = FetchRequest { series: series.clone().into(), range: TimeRange::ALL, point_limit: 0 };
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let resp = store.fetch(&req).expect("fetch");
        let n: usize = resp.series.iter().map(|s| s.points.len()).sum();
        assert_eq!(n as f64, total);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "fetch+decode: {total:.0} points in {:.1} ms (best of 5), {:.1} M points/s",
        best * 1e3,
        total / best / 1e6
    );

    let one = FetchRequest {
        series: vec![series[0].clone()].into(),
        range: TimeRange::new(start + 5 * 86_400_000, start + 5 * 86_400_000 + 3_600_000),
        point_limit: 0,
    };
    let t = Instant::now();
    let iters = 1000;
    for _ in 0..iters {
        store.fetch(&one).expect("fetch");
    }
    println!("fetch one hour of one series: {:.1} µs", t.elapsed().as_secs_f64() * 1e6 / iters as f64);

    drop(store);
    let t = Instant::now();
    let store = MetricStore::open(dir.path(), opts).expect("reopen");
    println!("reopen: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    drop(store);
}
