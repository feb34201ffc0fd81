//! Recovery time of a large series catalog: opens a store of N series
//! (1,000,000 by default, `BENCH_SERIES` overrides) clean, then with one
//! damaged byte in the middle of `series.log`, and runs the read-only data
//! check on it. The figures are quoted in docs/reliability.md.
//!
//! Run: `cargo bench -p heroic-plugin-local --bench recovery`

use std::time::Instant;

use heroic_plugin_api::types::{PointBatch, Series, SeriesPoints, TimeRange};
use heroic_plugin_local::{MetricOptions, MetricStore};

fn main() {
    let n: usize = std::env::var("BENCH_SERIES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = MetricOptions { background_flush: false, ..MetricOptions::default() };
    let series = |i: usize| {
        Series::new(
            "recovery.gauge",
            [("host", format!("host-{i:07}")), ("dc", "eu".into())],
            [("pod", "p1".to_string())],
        )
    };
    let started = Instant::now();
    {
        let store = MetricStore::open(dir.path(), opts.clone()).expect("open");
        for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
            let batch: Vec<SeriesPoints> = chunk
                .iter()
                .map(|&i| SeriesPoints { series: series(i), points: PointBatch::from_pairs(&[(1_000, i as f64)]) })
                .collect();
            store.write(&batch).expect("write");
        }
        store.close().expect("close");
    }
    let catalog = dir.path().join("series.log");
    let size = std::fs::metadata(&catalog).expect("catalog").len();
    println!(
        "wrote {n} series in {:.1} s; series.log is {:.1} MiB",
        started.elapsed().as_secs_f64(),
        size as f64 / 1048576.0
    );

    let t = Instant::now();
    drop(MetricStore::open(dir.path(), opts.clone()).expect("clean open"));
    println!("open, clean catalog: {:.2} s", t.elapsed().as_secs_f64());

    let mut bytes = std::fs::read(&catalog).expect("read catalog");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&catalog, &bytes).expect("damage catalog");

    let config = serde_json::json!({"data_dir": dir.path()});
    let t = Instant::now();
    let report = heroic_plugin_local::check::check("metrics", config).expect("check");
    println!("check-data, damaged catalog: {:.2} s ({} finding(s))", t.elapsed().as_secs_f64(), report.findings.len());

    let t = Instant::now();
    let store = MetricStore::open(dir.path(), opts).expect("damaged open");
    let took = t.elapsed().as_secs_f64();
    let kept = store.stats().series;
    println!("open, one damaged byte in the middle: {took:.2} s; {kept} of {n} definitions kept");
    // The series right after the damage is intact and readable.
    let probe = series(n - 1);
    assert_eq!(store.count(&probe, TimeRange::ALL).expect("count"), 1);
}
