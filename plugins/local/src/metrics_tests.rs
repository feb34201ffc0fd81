//! Behaviour tests of the metric store (Heroic's AbstractMetricBackendIT
//! cases plus durability).

use std::time::Duration;

use heroic_plugin_api::types::{FetchRequest, PointBatch, Series, SeriesPoints, TimeRange};

use crate::fold::SmallRead;
use crate::metrics::{MetricOptions, MetricStore};

fn opts() -> MetricOptions {
    MetricOptions { background_flush: false, ..MetricOptions::default() }
}

fn series(key: &str) -> Series {
    Series::new(key, [("host", "a"), ("role", "db")], [("pod", "p1")])
}

fn sp(s: &Series, points: &[(i64, f64)]) -> SeriesPoints {
    SeriesPoints { series: s.clone(), points: PointBatch::from_pairs(points) }
}

fn pairs(store: &MetricStore, s: &Series, range: TimeRange) -> Vec<(i64, f64)> {
    store.fetch_one(s, range).unwrap().to_pairs()
}

#[test]
fn interval_is_start_exclusive_end_inclusive() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    let s = series("interval");
    let input: Vec<(i64, f64)> = [99, 100, 101, 199, 200, 201].iter().map(|&t| (t, t as f64)).collect();
    store.write(&[sp(&s, &input)]).unwrap();
    let want = vec![(101, 101.0), (199, 199.0), (200, 200.0)];
    assert_eq!(pairs(&store, &s, TimeRange::new(100, 200)), want);
    store.flush().unwrap();
    assert_eq!(pairs(&store, &s, TimeRange::new(100, 200)), want, "from blocks too");
}

#[test]
fn one_point_and_many_fetches() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    let (a, b) = (series("a"), series("b"));
    store.write(&[sp(&a, &[(10, 1.0)]), sp(&b, &[(10, 2.0), (20, 3.0)])]).unwrap();
    let req = FetchRequest {
        series: vec![b.clone(), series("missing"), a.clone()].into(),
        range: TimeRange::new(0, 100),
        point_limit: 0,
    };
    let resp = store.fetch(&req).unwrap();
    let got: Vec<(u32, Vec<(i64, f64)>)> = resp.series.iter().map(|f| (f.request_index, f.points.to_pairs())).collect();
    assert_eq!(got, vec![(0, vec![(10, 2.0), (20, 3.0)]), (2, vec![(10, 1.0)])]);
    assert_eq!(resp.series[0].resource, b.resource);
    let limited = store.fetch(&FetchRequest { point_limit: 2, ..req }).unwrap();
    assert!(limited.limited);
    assert_eq!(limited.series.iter().map(|s| s.points.len()).sum::<usize>(), 2);
}

#[test]
fn batches_larger_than_the_internal_batch() {
    let dir = tempfile::tempdir().unwrap();
    let o = MetricOptions { max_record_points: 100, block_points: 64, flush_points: 250, ..opts() };
    let store = MetricStore::open(dir.path(), o.clone()).unwrap();
    let s = series("big");
    let points: Vec<(i64, f64)> = (0..400).map(|i| (i * 10, i as f64)).collect();
    store.write(&[sp(&s, &points)]).unwrap();
    assert_eq!(pairs(&store, &s, TimeRange::ALL), points);
    drop(store);
    let store = MetricStore::open(dir.path(), o).unwrap();
    assert_eq!(pairs(&store, &s, TimeRange::ALL), points);
}

#[test]
fn long_series_over_a_wide_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetricStore::open(dir.path(), MetricOptions { block_points: 1000, ..opts() }).unwrap();
    let s = series("long");
    let n = 10_000i64;
    let step = 1_000_000_000_000 / n;
    let points: Vec<(i64, f64)> = (0..n).map(|i| (i * step + (i % 7), (i as f64) * 0.25)).collect();
    store.write(&[sp(&s, &points)]).unwrap();
    store.flush().unwrap();
    assert_eq!(pairs(&store, &s, TimeRange::ALL), points);
    let (lo, hi) = (points[1234].0, points[8765].0);
    assert_eq!(pairs(&store, &s, TimeRange::new(lo, hi)), points[1235..=8765].to_vec());
    assert_eq!(store.count(&s, TimeRange::new(lo, hi)).unwrap(), 7531);
}

#[test]
fn series_with_many_long_tags() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    let tags: Vec<(String, String)> = (0..110)
        .map(|i| (format!("tag-key-{i:03}-{}", "k".repeat(40)), format!("value-{i}-{}", "v".repeat(60))))
        .collect();
    let s = Series::new("many-tags", tags, Vec::<(String, String)>::new());
    store.write(&[sp(&s, &[(1, 1.0), (2, 2.0)])]).unwrap();
    drop(store);
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    assert_eq!(pairs(&store, &s, TimeRange::ALL), vec![(1, 1.0), (2, 2.0)]);
}

#[test]
fn last_write_wins_across_head_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    let s = series("lww");
    store.write(&[sp(&s, &[(30, 1.0), (10, 1.0), (20, 1.0), (10, 2.0)])]).unwrap();
    assert_eq!(pairs(&store, &s, TimeRange::ALL), vec![(10, 2.0), (20, 1.0), (30, 1.0)]);
    store.flush().unwrap();
    store.write(&[sp(&s, &[(20, 5.0), (5, 5.0)])]).unwrap();
    assert_eq!(pairs(&store, &s, TimeRange::ALL), vec![(5, 5.0), (10, 2.0), (20, 5.0), (30, 1.0)]);
    store.flush().unwrap();
    store.write(&[sp(&s, &[(30, 7.0)])]).unwrap();
    store.flush().unwrap();
    let want = vec![(5, 5.0), (10, 2.0), (20, 5.0), (30, 7.0)];
    assert_eq!(pairs(&store, &s, TimeRange::ALL), want);
    store.compact().unwrap();
    assert_eq!(store.stats().segments, 1);
    assert_eq!(pairs(&store, &s, TimeRange::ALL), want);
    drop(store);
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    assert_eq!(pairs(&store, &s, TimeRange::ALL), want);
}

#[test]
fn restart_keeps_head_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let s = series("restart");
    {
        let store = MetricStore::open(dir.path(), opts()).unwrap();
        store.write(&[sp(&s, &[(1, 1.5)])]).unwrap();
        store.flush().unwrap();
        store.write(&[sp(&s, &[(2, 2.5)])]).unwrap();
        // Dropped without a flush: the second point lives only in the WAL.
    }
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    assert_eq!(pairs(&store, &s, TimeRange::ALL), vec![(1, 1.5), (2, 2.5)]);
    store.close().unwrap();
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    assert_eq!(pairs(&store, &s, TimeRange::ALL), vec![(1, 1.5), (2, 2.5)]);
    let wals = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("wal-"));
    assert_eq!(wals.count(), 1, "only the active WAL is left");
}

#[test]
fn torn_wal_tail_keeps_everything_before_it() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let s = series("torn");
    {
        let store = MetricStore::open(dir.path(), opts()).unwrap();
        for i in 0..10 {
            store.write(&[sp(&s, &[(i, i as f64)])]).unwrap();
        }
    }
    let wal = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("wal-"))
        .unwrap();
    // A crash in the middle of the next record: a header promising more
    // bytes than follow, then garbage.
    let mut f = std::fs::OpenOptions::new().append(true).open(&wal).unwrap();
    f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9]).unwrap();
    drop(f);
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    let want: Vec<(i64, f64)> = (0..10).map(|i| (i, i as f64)).collect();
    assert_eq!(pairs(&store, &s, TimeRange::ALL), want);
    store.write(&[sp(&s, &[(10, 10.0)])]).unwrap();
    drop(store);
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    assert_eq!(store.count(&s, TimeRange::ALL).unwrap(), 11);
}

#[test]
fn delete_list_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    let all: Vec<Series> = (0..5).map(|i| series(&format!("s{i}"))).collect();
    for s in &all {
        store.write(&[sp(s, &[(1, 1.0), (2, 2.0)])]).unwrap();
    }
    store.flush().unwrap();
    store.write(&[sp(&all[1], &[(3, 3.0)])]).unwrap();
    assert_eq!(store.delete(&[all[1].clone(), series("never")]).unwrap(), 1);
    assert!(pairs(&store, &all[1], TimeRange::ALL).is_empty());
    // New points after a delete are kept.
    store.write(&[sp(&all[1], &[(9, 9.0)])]).unwrap();
    assert_eq!(pairs(&store, &all[1], TimeRange::ALL), vec![(9, 9.0)]);
    store.delete(&[all[2].clone()]).unwrap();
    let mut listed = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list_series(cursor.as_deref(), 2).unwrap();
        listed.extend(page.series.iter().map(|s| s.key.to_string()));
        match page.next_cursor.into_option() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(listed, vec!["s0", "s1", "s3", "s4"]);
    drop(store);
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    assert_eq!(pairs(&store, &all[1], TimeRange::ALL), vec![(9, 9.0)]);
    assert!(pairs(&store, &all[2], TimeRange::ALL).is_empty());
    assert_eq!(store.count(&all[0], TimeRange::ALL).unwrap(), 2);
    store.compact().unwrap();
    assert!(pairs(&store, &all[2], TimeRange::ALL).is_empty());
    assert_eq!(pairs(&store, &all[1], TimeRange::ALL), vec![(9, 9.0)]);
}

#[test]
fn background_flush_on_size_and_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let o = MetricOptions { flush_points: 1000, flush_interval: Duration::from_millis(50), ..MetricOptions::default() };
    let store = std::sync::Arc::new(MetricStore::open(dir.path(), o).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let s = series(&format!("c{t}"));
                for i in 0..50 {
                    let pts: Vec<(i64, f64)> = (0..100).map(|j| (i * 100 + j, j as f64)).collect();
                    store.write(&[sp(&s, &pts)]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(store.stats().segments >= 1);
    for t in 0..4 {
        assert_eq!(store.count(&series(&format!("c{t}")), TimeRange::ALL).unwrap(), 5000);
    }
}

#[test]
fn an_idle_head_worth_a_block_is_flushed_soon_after_writes_stop() {
    let dir = tempfile::tempdir().unwrap();
    let o = MetricOptions {
        flush_interval: Duration::from_secs(3600),
        flush_idle: Duration::from_millis(100),
        block_points: 500,
        ..MetricOptions::default()
    };
    let store = MetricStore::open(dir.path(), o).unwrap();
    // Under a block's worth: left in the head, however long it is idle.
    let small = series("small");
    store.write(&[sp(&small, &[(1, 1.0)])]).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(store.stats().segments, 0, "a head under block_points stays in memory");
    let big = series("big");
    let pts: Vec<(i64, f64)> = (0..600).map(|i| (i, i as f64)).collect();
    store.write(&[sp(&big, &pts)]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.stats().segments == 0 {
        assert!(std::time::Instant::now() < deadline, "the idle head was not flushed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(store.stats().head_points, 0);
    assert_eq!(pairs(&store, &big, TimeRange::ALL), pts);
    assert_eq!(pairs(&store, &small, TimeRange::ALL), vec![(1, 1.0)]);
}

#[test]
fn delete_a_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    let s = series("range");
    store.write(&[sp(&s, &[(10, 1.0), (20, 2.0), (30, 3.0)])]).unwrap();
    assert_eq!(store.delete_range(std::slice::from_ref(&s), TimeRange::new(10, 20)).unwrap(), 1);
    assert_eq!(pairs(&store, &s, TimeRange::ALL), vec![(10, 1.0), (30, 3.0)]);
    assert_eq!(store.delete_range(std::slice::from_ref(&s), TimeRange::new(100, 200)).unwrap(), 0);
    assert_eq!(store.delete_range(std::slice::from_ref(&s), TimeRange::ALL).unwrap(), 1);
    assert!(pairs(&store, &s, TimeRange::ALL).is_empty());
}

#[test]
fn large_fetches_decode_in_parallel_with_the_same_answer() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetricStore::open(dir.path(), MetricOptions { block_points: 1000, ..opts() }).unwrap();
    // Enough block points for the parallel path, uneven series sizes, one
    // series with irregular timestamps and one with newer points in the head.
    let all: Vec<Series> = (0..7).map(|i| series(&format!("par-{i}"))).collect();
    let batch: Vec<SeriesPoints> = all
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n = 20_000 + i as i64 * 9_000;
            let jitter = if i == 3 { 1 } else { 0 };
            let points: Vec<(i64, f64)> =
                (1..=n).map(|t| (t * 10 + (t % 7) * jitter, (t % 100) as f64 / 4.0)).collect();
            sp(s, &points)
        })
        .collect();
    let total: usize = batch.iter().map(|b| b.points.len()).sum();
    assert!(total >= 200_000);
    store.write(&batch).unwrap();
    store.flush().unwrap();
    store.write(&[sp(&all[5], &[(50, -1.0), (10_000_000, 2.0)])]).unwrap();
    let range = TimeRange::new(15, 1_000_000);
    let req = FetchRequest { series: all.clone().into(), range, point_limit: 0 };
    let parallel = store.fetch(&req).unwrap();
    assert_eq!(parallel.series.len(), all.len());
    for (i, fetched) in parallel.series.iter().enumerate() {
        assert_eq!(fetched.request_index as usize, i);
        assert_eq!(fetched.points.to_pairs(), pairs(&store, &all[i], range), "series {i}");
    }
    assert!(parallel.series[5].points.to_pairs().contains(&(50, -1.0)), "the head wins over blocks");
}

/// A fetch of thousands of series: each answer points at its own request
/// entry, series never written are left out, and blocks and head both
/// count (a PromQL read fetches up to 8,192 series a call).
#[test]
fn fetches_of_many_series_keep_each_series_at_its_request_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    let written: Vec<Series> = (0..5000).map(|i| series(&format!("many-{i}"))).collect();
    let batch: Vec<SeriesPoints> =
        written.iter().enumerate().map(|(i, s)| sp(s, &[(10, i as f64), (20, -(i as f64))])).collect();
    store.write(&batch).unwrap();
    store.flush().unwrap();
    // Newer points of every third series are in the head.
    let newer: Vec<SeriesPoints> = written.iter().step_by(3).map(|s| sp(s, &[(30, 0.5)])).collect();
    store.write(&newer).unwrap();
    // Every seventh requested series was never written.
    let requested: Vec<Series> =
        (0..6000).map(|i| if i % 7 == 3 { series(&format!("never-{i}")) } else { written[i % 5000].clone() }).collect();
    let range = TimeRange::new(0, 100);
    let got = store.fetch(&FetchRequest { series: requested.clone().into(), range, point_limit: 0 }).unwrap();
    let want: Vec<usize> = (0..6000).filter(|i| i % 7 != 3).collect();
    let indexes: Vec<usize> = got.series.iter().map(|f| f.request_index as usize).collect();
    assert_eq!(indexes, want);
    for fetched in got.series.iter() {
        let i = fetched.request_index as usize;
        let n = (i % 5000) as f64;
        let mut expected = vec![(10, n), (20, -n)];
        if (i % 5000).is_multiple_of(3) {
            expected.push((30, 0.5));
        }
        assert_eq!(fetched.points.to_pairs(), expected, "request {i}");
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|w| w == needle).expect("needle in the file")
}

fn flip_in_file(path: &std::path::Path, needle: &[u8]) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = find(&bytes, needle);
    bytes[at] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

/// A flipped byte in one series' definition costs that definition only:
/// the series defined after it keep their points, and no new series is
/// given an id that data still refers to (it would read another series'
/// points), whether the damaged record is in the middle or at the end.
#[test]
fn a_damaged_catalog_record_loses_one_definition_and_no_id_is_reused() {
    for victim in ["cat-b", "cat-c"] {
        let dir = tempfile::tempdir().unwrap();
        let store = MetricStore::open(dir.path(), opts()).unwrap();
        let (a, b, c) = (series("cat-a"), series("cat-b"), series("cat-c"));
        let many: Vec<(i64, f64)> = (1..=10_000).map(|i| (i, i as f64)).collect();
        for s in [&a, &b, &c] {
            store.write(&[sp(s, &many)]).unwrap();
        }
        store.flush().unwrap();
        drop(store);
        flip_in_file(&dir.path().join("series.log"), victim.as_bytes());

        let store = MetricStore::open(dir.path(), opts()).unwrap();
        for s in [&a, &b, &c] {
            let expected = if s.key.as_str() == victim { vec![] } else { many.clone() };
            assert_eq!(pairs(&store, s, TimeRange::ALL), expected, "{} after damage to {victim}", s.key);
        }
        let d = series("cat-d");
        store.write(&[sp(&d, &[(5, 42.0)])]).unwrap();
        assert_eq!(pairs(&store, &d, TimeRange::ALL), vec![(5, 42.0)], "a new series after damage to {victim}");
        drop(store);
        let store = MetricStore::open(dir.path(), opts()).unwrap();
        assert_eq!(pairs(&store, &d, TimeRange::ALL), vec![(5, 42.0)], "after a restart, damage to {victim}");
        assert_eq!(pairs(&store, &a, TimeRange::ALL), many);
    }
}

/// What a crash after the file grew but before the data landed leaves:
/// zeros at the end of the newest write-ahead log. They are not a record
/// (crc32 of nothing is 0), so the node starts and keeps every point.
#[test]
fn zeros_at_the_end_of_the_newest_wal_do_not_stop_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    let s = series("zeros");
    store.write(&[sp(&s, &[(1, 1.0), (2, 2.0)])]).unwrap();
    drop(store);
    let newest = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("wal-"))
        .max()
        .unwrap();
    let mut f = std::fs::OpenOptions::new().append(true).open(&newest).unwrap();
    std::io::Write::write_all(&mut f, &[0u8; 8]).unwrap();
    drop(f);
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    assert_eq!(pairs(&store, &s, TimeRange::ALL), vec![(1, 1.0), (2, 2.0)]);
}

/// A bucket fetch answers what folding the fetched points gives, from
/// blocks (regular timestamps with decimal values, folded as integers;
/// irregular ones with floats; cached or not), from the head, and from
/// overlapping blocks; folded in place as a small read or not.
#[test]
fn bucket_fetches_fold_as_the_fetched_points() {
    use heroic_plugin_api::buckets::{BucketFetchRequest, BucketLayout, BucketPartials, PartialFields};

    let dir = tempfile::tempdir().unwrap();
    let store = MetricStore::open(dir.path(), MetricOptions { block_points: 100, ..opts() }).unwrap();
    let all: Vec<Series> = (0..4).map(|i| series(&format!("fold{i}"))).collect();
    let regular: Vec<(i64, f64)> = (0..450).map(|i| (1_000 + 10 * i, ((i * 37) % 201 - 100) as f64 / 100.0)).collect();
    let irregular: Vec<(i64, f64)> = (0..450).map(|i| (1_000 + 10 * i + i % 3, (i as f64).sin())).collect();
    let shifted: Vec<(i64, f64)> = (0..450).map(|i| (1_005 + 10 * i, ((i * 53) % 301 - 150) as f64 / 100.0)).collect();
    store.write(&[sp(&all[0], &regular), sp(&all[1], &irregular), sp(&all[3], &shifted)]).unwrap();
    store.flush().unwrap();
    // Overlapping blocks (an overwrite after the flush), and a series in
    // the head only.
    store.write(&[sp(&all[0], &[(1_500, 99.0)])]).unwrap();
    store.flush().unwrap();
    store.write(&[sp(&all[2], &regular[..50]), sp(&all[1], &[(9_999, 1.0)])]).unwrap();

    for pass in 0..2 {
        for (start, end, size, strategy) in
            [(0, 6_000, 100, BucketLayout::END), (1_234, 3_456, 70, BucketLayout::START), (2_000, 2_500, 500, 0)]
        {
            let range = TimeRange::new(start, end);
            let layout = BucketLayout::new(range, size, size, strategy).unwrap();
            let request = BucketFetchRequest {
                series: all.clone().into(),
                groups: vec![0, 1, 0, 1].into(),
                group_count: 2,
                range,
                layout,
                fields: PartialFields::ALL,
                point_limit: 0,
            };
            // The same read as a small one: planned only (its blocks are
            // not decoded yet) the first time, folded in place after.
            let first = pass == 0 && start == 0;
            let small = match store.fetch_buckets_if_small(&request).unwrap() {
                SmallRead::Done(answer) if !first => answer,
                SmallRead::Planned(plans) if first => store.fold_planned(&request, plans).unwrap(),
                SmallRead::Done(_) => panic!("blocks read from disk in place"),
                SmallRead::Planned(_) => panic!("a small read of cached blocks not folded in place"),
                SmallRead::NotSmall => panic!("four series is a small read"),
            };
            let got = store.fetch_buckets(&request).unwrap();
            assert_eq!(small, got, "pass {pass} range {range:?}");
            let mut want = BucketPartials::new(PartialFields::ALL, request.cells());
            let (mut points, mut had) = (0, Vec::new());
            for (i, (s, group)) in all.iter().zip([0, 1, 0, 1]).enumerate() {
                let p = store.fetch_one(s, range).unwrap();
                points += p.len() as u64;
                if !p.is_empty() {
                    had.push(i as u32);
                }
                want.fold(&layout, group, &p.timestamps, &p.values);
            }
            let what = format!("pass {pass} range {range:?} size {size}");
            assert_eq!(got.points, points, "{what}");
            assert_eq!(got.partials.count, want.count, "{what}");
            for (a, b) in [(&got.partials.sum, &want.sum), (&got.partials.sum2, &want.sum2)] {
                for (x, y) in a.iter().zip(b.iter()) {
                    assert!((x - y).abs() <= 1e-9 * y.abs().max(1.0), "{what}: {x} vs {y}");
                }
            }
            assert_eq!((&got.partials.min, &got.partials.max), (&want.min, &want.max), "{what}");
            let mut with_data = got.series_with_data.to_vec();
            with_data.sort();
            assert_eq!(with_data, had, "{what}");
        }
    }
    let (hits, misses, bytes) = store.inner.cache.stats();
    assert!(hits > 0 && misses > 0 && bytes > 0, "the second pass reads cached blocks: {hits} {misses} {bytes}");
}

/// A bucket read is folded in place only when it is small: few points in
/// range, counting those still in the heads, and its blocks decoded; a node
/// whose heads hold many points plans its reads off the calling thread.
#[test]
fn only_small_warm_bucket_reads_are_folded_in_place() {
    use crate::fold::SMALL_READ_POINTS;
    use heroic_plugin_api::buckets::{BucketFetchRequest, BucketLayout, PartialFields};

    let dir = tempfile::tempdir().unwrap();
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    let (big, small) = (series("big"), series("small"));
    let many: Vec<(i64, f64)> = (0..SMALL_READ_POINTS as i64 + 10).map(|i| (i + 1, 1.0)).collect();
    store.write(&[sp(&big, &many), sp(&small, &[(5, 2.0)])]).unwrap();
    let read = |s: &Series, end: i64| {
        let range = TimeRange::new(0, end);
        let layout = BucketLayout::new(range, end, end, BucketLayout::END).unwrap();
        let request = BucketFetchRequest {
            series: vec![s.clone()].into(),
            groups: vec![0].into(),
            group_count: 1,
            range,
            layout,
            fields: PartialFields::COUNT,
            point_limit: 0,
        };
        let answer = store.fetch_buckets(&request).unwrap();
        (store.fetch_buckets_if_small(&request).unwrap(), answer)
    };
    // The heads hold more than a small read's points: not planned here.
    assert!(matches!(read(&small, 10).0, SmallRead::NotSmall));
    store.flush().unwrap();
    // Flushed: a read of few points from decoded blocks is done in place,
    // the same answer.
    let (small_read, answer) = read(&small, 10);
    assert!(matches!(small_read, SmallRead::Done(ref a) if *a == answer && a.points == 1));
    // Too many points in range: planned, for the blocking pool.
    let (big_read, answer) = read(&big, SMALL_READ_POINTS as i64 + 100);
    assert_eq!(answer.points, SMALL_READ_POINTS as u64 + 10);
    assert!(matches!(big_read, SmallRead::Planned(_)));
    // Points in the heads count: a read of the head's points is planned.
    let recent: Vec<(i64, f64)> = (0..SMALL_READ_POINTS as i64 / 2).map(|i| (1_000_000 + i, 1.0)).collect();
    store.write(&[sp(&small, &recent)]).unwrap();
    let (read_heads, answer) = read(&small, 2_000_000);
    assert!(matches!(read_heads, SmallRead::Done(ref a) if *a == answer));
    let both = {
        // About 40,000 of big's block points, and small's 32,768 in the
        // head: too many only when the head's are counted.
        let range = TimeRange::new(25_000, 2_000_000);
        let layout = BucketLayout::new(range, 1_975_000, 1_975_000, BucketLayout::END).unwrap();
        BucketFetchRequest {
            series: vec![small.clone(), big.clone()].into(),
            groups: vec![0, 0].into(),
            group_count: 1,
            range,
            layout,
            fields: PartialFields::COUNT,
            point_limit: 0,
        }
    };
    assert!(matches!(store.fetch_buckets_if_small(&both).unwrap(), SmallRead::Planned(_)), "head points count");
}

/// Writers racing to define the same new series agree on one id each
/// (their definitions group-commit; the losers wait for the winner's), and
/// every point is there after a reopen.
#[test]
fn concurrent_writers_of_the_same_new_series_agree_on_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<Series> = (0..50).map(|i| series(&format!("race{i}"))).collect();
    {
        let store = std::sync::Arc::new(MetricStore::open(dir.path(), opts()).unwrap());
        let threads: Vec<_> = (0..8i64)
            .map(|w| {
                let (store, all) = (store.clone(), all.clone());
                std::thread::spawn(move || {
                    for (i, s) in all.iter().enumerate() {
                        let t = 1 + w * 100 + i as i64;
                        store.write(&[sp(s, &[(t, w as f64)])]).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(store.stats().series, 50);
        assert_eq!(store.inner.catalog.read().len(), 50, "one id per series");
    }
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    assert_eq!(store.stats().series, 50, "after a reopen");
    for s in &all {
        assert_eq!(pairs(&store, s, TimeRange::ALL).len(), 8, "{}", s.key);
    }
}

/// A catalog large enough to be compacted into a snapshot keeps every
/// series' id across a flush and reopen: each series reads its own points.
#[test]
fn a_compacted_catalog_keeps_every_series_and_its_points() {
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<Series> = (0..3_000).map(|i| series(&format!("compacted-{i:05}"))).collect();
    {
        let store = MetricStore::open(dir.path(), opts()).unwrap();
        for (i, s) in all.iter().enumerate() {
            store.write(&[sp(s, &[(10, i as f64)])]).unwrap();
        }
        store.flush().unwrap();
        // And some after the flush, left in the write-ahead log.
        for (i, s) in all.iter().enumerate().step_by(7) {
            store.write(&[sp(s, &[(20, i as f64)])]).unwrap();
        }
    }
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().any(|n| n.starts_with("series-") && n.ends_with(".snap")), "{names:?}");
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    for (i, s) in all.iter().enumerate() {
        let mut want = vec![(10, i as f64)];
        if i % 7 == 0 {
            want.push((20, i as f64));
        }
        assert_eq!(pairs(&store, s, TimeRange::ALL), want, "{}", s.key);
    }
    // New series after the reopen get fresh ids.
    let late = series("late");
    store.write(&[sp(&late, &[(1, -1.0)])]).unwrap();
    assert_eq!(pairs(&store, &late, TimeRange::ALL), vec![(1, -1.0)]);
    assert_eq!(pairs(&store, &all[0], TimeRange::ALL), vec![(10, 0.0), (20, 0.0)]);
}

/// Writers on an async executor (`write_queued`, leaders on the blocking
/// pool), blocked writers and the flusher's log rotations all at once:
/// every point lands, once, and nothing waits forever.
#[test]
fn queued_and_blocked_writers_and_rotations_together_lose_nothing() {
    use heroic_plugin_api::sdk::runtime;
    let dir = tempfile::tempdir().unwrap();
    let o = MetricOptions { flush_points: 500, flush_interval: Duration::from_millis(5), ..MetricOptions::default() };
    let store = std::sync::Arc::new(MetricStore::open(dir.path(), o).unwrap());
    let (writers, batches, per_batch) = (16i64, 40i64, 25i64);
    let queued: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            runtime().spawn(async move {
                // Two writers per series: one of them may find the other
                // defining it, and fall back to the blocking path.
                let s = series(&format!("q{}", w / 2));
                let mut fell_back = 0;
                for b in 0..batches {
                    let pts: Vec<(i64, f64)> =
                        (0..per_batch).map(|j| ((w % 2) * 1_000_000 + b * per_batch + j, j as f64)).collect();
                    let batch = [sp(&s, &pts)];
                    let lead = |leader: crate::metrics::Leader| drop(runtime().spawn_blocking(move || leader.run()));
                    match store.write_queued(&batch, lead).await {
                        Some(r) => r.unwrap(),
                        None => {
                            fell_back += 1;
                            let store = store.clone();
                            runtime().spawn_blocking(move || store.write(&batch)).await.unwrap().unwrap();
                        }
                    }
                }
                fell_back
            })
        })
        .collect();
    let blocked: Vec<_> = (0..2i64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let s = series(&format!("b{t}"));
                for b in 0..batches {
                    let pts: Vec<(i64, f64)> = (0..per_batch).map(|j| (b * per_batch + j, j as f64)).collect();
                    store.write(&[sp(&s, &pts)]).unwrap();
                }
            })
        })
        .collect();
    let done = runtime().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let mut fell_back = 0;
            for q in queued {
                fell_back += q.await.unwrap();
            }
            fell_back
        })
        .await
    });
    let fell_back = done.expect("queued writers still waiting after a minute");
    blocked.into_iter().for_each(|t| t.join().unwrap());
    assert!(fell_back < writers * batches, "the queued path was taken");
    assert!(store.stats().segments >= 1, "rotations ran during the writes");
    for w in 0..writers / 2 {
        assert_eq!(store.count(&series(&format!("q{w}")), TimeRange::ALL).unwrap(), (2 * batches * per_batch) as u64);
    }
    for t in 0..2 {
        assert_eq!(store.count(&series(&format!("b{t}")), TimeRange::ALL).unwrap(), (batches * per_batch) as u64);
    }
}
