//! The metric backend suite (Heroic's `AbstractMetricBackendIT` and more).
//!
//! Every case writes its own series (unique key), so cases can share one
//! backend. Fetches are checked for the response invariants on every call:
//! `request_index` in range, timestamps strictly increasing and inside
//! `(start, end]`, columns of equal length.

use std::collections::BTreeSet;

use abi_stable::std_types::RVec;

use super::{optional, required, unique_id};
use crate::client::MetricBackendClient;
use crate::error::ErrorKind;
use crate::types::*;

/// Every case of the suite (from the one list, `__with_cases!`).
pub const CASES: &[&str] = crate::__with_cases!(metric, __case_names!());

/// The optional cases and the capability each needs.
pub const OPTIONAL: &[(&str, MetricCapabilities)] = &[
    ("list_series", MetricCapabilities::LIST_SERIES),
    ("delete_points", MetricCapabilities::DELETE_POINTS),
    ("count_points", MetricCapabilities::COUNT_POINTS),
    ("distributions", MetricCapabilities::DISTRIBUTIONS),
    ("spreads", MetricCapabilities::SPREADS),
    ("tdigests", MetricCapabilities::TDIGESTS),
    ("fetch_buckets", MetricCapabilities::FETCH_BUCKETS),
];

pub use super::pushdown::fetch_buckets;

/// Bigtable's row width: a row holds 2^32 ms (~49.7 days) of points.
pub const PERIOD: i64 = 1 << 32;

// --- helpers ----------------------------------------------------------------

fn declared(c: &MetricBackendClient, capability: MetricCapabilities) -> bool {
    c.capabilities().contains(capability)
}

pub use super::new_series;
pub use super::samples::{distributions, spreads, tdigests};

fn sp(series: &Series, points: PointBatch) -> SeriesPoints {
    SeriesPoints { series: series.clone(), points }
}

async fn write(c: &MetricBackendClient, case: &str, batch: Vec<SeriesPoints>) {
    required(case, "write", c.write(RVec::from(batch)).await)
}

async fn write_pairs(c: &MetricBackendClient, case: &str, series: &Series, pairs: &[(i64, f64)]) {
    write(c, case, vec![sp(series, PointBatch::from_pairs(pairs))]).await
}

/// Checks the invariants every fetch answer must hold.
pub fn check_response(case: &str, request: &FetchRequest, response: &FetchResponse) {
    for (i, fetched) in response.series.iter().enumerate() {
        assert!(
            (fetched.request_index as usize) < request.series.len(),
            "{case}: answer {i} has request_index {} but only {} series were asked for",
            fetched.request_index,
            request.series.len()
        );
        let points = &fetched.points;
        assert_eq!(
            points.timestamps.len(),
            points.values.len(),
            "{case}: answer {i}: timestamps and values differ in length"
        );
        if let Some(w) = points.timestamps.windows(2).find(|w| w[0] >= w[1]) {
            panic!("{case}: answer {i}: timestamps not strictly increasing ({} then {})", w[0], w[1]);
        }
        if let Some(t) = points.timestamps.iter().find(|&&t| !request.range.contains(t)) {
            panic!(
                "{case}: answer {i}: timestamp {t} is outside the requested range ({}, {}]",
                request.range.start, request.range.end
            );
        }
    }
}

/// Fetches and checks the answer's invariants.
pub async fn fetch(c: &MetricBackendClient, case: &str, request: FetchRequest) -> FetchResponse {
    let response = required(case, "fetch", c.fetch(request.clone()).await);
    check_response(case, &request, &response);
    response
}

/// The points answered for request `index`, all resource variants merged.
pub fn points_of(response: &FetchResponse, index: usize) -> Vec<(i64, f64)> {
    let mut points: Vec<(i64, f64)> = response
        .series
        .iter()
        .filter(|s| s.request_index as usize == index)
        .flat_map(|s| s.points.to_pairs())
        .collect();
    points.sort_by_key(|p| p.0);
    points
}

async fn fetch_points(c: &MetricBackendClient, case: &str, series: &Series, range: TimeRange) -> Vec<(i64, f64)> {
    let response = fetch(c, case, FetchRequest { series: vec![series.clone()].into(), range, point_limit: 0 }).await;
    assert!(!response.limited, "{case}: fetch without a point limit answered limited=true");
    points_of(&response, 0)
}

/// Compares points exactly (values bit for bit), reporting the first
/// difference rather than dumping thousands of points.
pub fn assert_points(case: &str, what: &str, actual: &[(i64, f64)], expected: &[(i64, f64)]) {
    let first_diff = actual.iter().zip(expected).position(|(a, e)| a.0 != e.0 || a.1.to_bits() != e.1.to_bits());
    if let Some(i) = first_diff {
        panic!(
            "{case}: {what}: point {i} is {:?}, expected {:?} ({} points read, {} expected)",
            actual[i],
            expected[i],
            actual.len(),
            expected.len()
        );
    }
    if actual.len() != expected.len() {
        let n = actual.len().min(expected.len());
        panic!(
            "{case}: {what}: {} points read, {} expected; first extra or missing point: {:?}",
            actual.len(),
            expected.len(),
            actual.get(n).or(expected.get(n))
        );
    }
}

fn all() -> TimeRange {
    TimeRange::new(i64::MIN, i64::MAX)
}

// --- cases ------------------------------------------------------------------

/// A freshly created backend reports itself healthy and ready, and its
/// statistics can be read.
pub async fn health(c: &MetricBackendClient) {
    let health = c.health();
    assert!(health.ok && health.ready, "health: backend not healthy after creation: {health:?}");
    let _ = c.statistics();
}

/// Heroic's `testInterval`: of 99, 100, 101, 199, 200, 201 the range
/// (100, 200] holds 101, 199 and 200.
pub async fn interval(c: &MetricBackendClient) {
    let case = "interval";
    let s = new_series(case);
    let input: Vec<(i64, f64)> = [99, 100, 101, 199, 200, 201].iter().map(|&t| (t, t as f64 / 10.0)).collect();
    write_pairs(c, case, &s, &input).await;
    let got = fetch_points(c, case, &s, TimeRange::new(100, 200)).await;
    assert_points(case, "range (100, 200]", &got, &[(101, 10.1), (199, 19.9), (200, 20.0)]);
}

/// Heroic's `testOne` / `testWriteAndFetchOne`: one point written is read back,
/// and a range starting exactly at it does not hold it.
pub async fn one_point(c: &MetricBackendClient) {
    let case = "one_point";
    let s = new_series(case);
    let t = 1_600_000_000_123;
    write_pairs(c, case, &s, &[(t, 42.5)]).await;
    assert_points(
        case,
        "range around it",
        &fetch_points(c, case, &s, TimeRange::new(t - 1000, t + 1000)).await,
        &[(t, 42.5)],
    );
    assert_points(case, "range ending on it", &fetch_points(c, case, &s, TimeRange::new(t - 1, t)).await, &[(t, 42.5)]);
    assert_points(case, "range starting on it", &fetch_points(c, case, &s, TimeRange::new(t, t + 1000)).await, &[]);
    assert_points(case, "whole time line", &fetch_points(c, case, &s, all()).await, &[(t, 42.5)]);
}

/// Fetching a series never written answers no points, not an error.
pub async fn fetch_unwritten_series(c: &MetricBackendClient) {
    let case = "fetch_unwritten_series";
    let s = new_series(case);
    assert_points(case, "unwritten series", &fetch_points(c, case, &s, all()).await, &[]);
}

/// A thousand points with awkward values (extremes, subnormal, zero,
/// negative, repeating fractions) come back bit for bit.
pub async fn many_points(c: &MetricBackendClient) {
    let case = "many_points";
    let s = new_series(case);
    let special = [0.0, 1.0, -1.0, f64::MAX, f64::MIN, f64::MIN_POSITIVE, 5e-324, 1.0 / 3.0, -1e-300, 1e300];
    let start = 1_650_000_000_000;
    let points: Vec<(i64, f64)> = (0..1000)
        .map(|i| {
            let v = if i < special.len() { special[i] } else { ((i as f64) * 0.37).sin() * 1000.0 };
            (start + i as i64 * 10_000, v)
        })
        .collect();
    write_pairs(c, case, &s, &points).await;
    let got = fetch_points(c, case, &s, TimeRange::new(start - 1, start + 1000 * 10_000)).await;
    assert_points(case, "all points", &got, &points);
}

/// Heroic's `testMaxBatchSize`: one write holding far more points than any
/// backend's write batch (40,000 in one series, beside a small one) stores
/// all of them.
pub async fn batch_larger_than_write_batch(c: &MetricBackendClient) {
    let case = "batch_larger_than_write_batch";
    let big = new_series(case);
    let small = new_series(case);
    let start = 1_600_000_000_000;
    let big_points: Vec<(i64, f64)> = (0..40_000).map(|i| (start + i * 1000, i as f64)).collect();
    let small_points: Vec<(i64, f64)> = (0..10).map(|i| (start + i * 1000, -(i as f64))).collect();
    write(
        c,
        case,
        vec![sp(&big, PointBatch::from_pairs(&big_points)), sp(&small, PointBatch::from_pairs(&small_points))],
    )
    .await;
    let range = TimeRange::new(start - 1, start + 40_000 * 1000);
    let response =
        fetch(c, case, FetchRequest { series: vec![big.clone(), small.clone()].into(), range, point_limit: 0 }).await;
    assert_points(case, "40,000-point series", &points_of(&response, 0), &big_points);
    assert_points(case, "small series of the same write", &points_of(&response, 1), &small_points);
}

/// Heroic's `testPeriod`: points at and around 2^32 ms row boundaries, read
/// with ranges starting and ending exactly on a boundary. `(start, end]`
/// must hold across rows: the point at offset 0 of a later row is included
/// (Heroic's Bigtable backend loses it).
pub async fn period_edges(c: &MetricBackendClient) {
    let case = "period_edges";
    let s = new_series(case);
    let base = 300 * PERIOD; // 2010-11
    let mut points = Vec::new();
    for k in 0..3 {
        let b = base + k * PERIOD;
        points.extend([(b - 1, (3 * k) as f64), (b, (3 * k + 1) as f64), (b + 1, (3 * k + 2) as f64)]);
    }
    write_pairs(c, case, &s, &points).await;

    let read = |range: TimeRange| {
        let expected: Vec<(i64, f64)> = points.iter().copied().filter(|p| range.contains(p.0)).collect();
        (range, expected)
    };
    for (what, (range, expected)) in [
        ("everything", read(TimeRange::new(base - PERIOD, base + 3 * PERIOD))),
        ("start on a boundary, end on a later boundary", read(TimeRange::new(base, base + 2 * PERIOD))),
        ("one point exactly on a boundary", read(TimeRange::new(base + PERIOD - 1, base + PERIOD))),
        ("start one before a boundary", read(TimeRange::new(base - 1, base + PERIOD + 1))),
        ("end one before a boundary", read(TimeRange::new(base + 1, base + 2 * PERIOD - 1))),
        ("inside one row", read(TimeRange::new(base + 1, base + PERIOD - 1))),
    ] {
        let got = fetch_points(c, case, &s, range).await;
        assert_points(case, &format!("{what} ({}, {}]", range.start, range.end), &got, &expected);
    }
}

/// Heroic's `testWriteAndFetchMultipleFetches`: several series in one fetch
/// request, answers mapped back by `request_index`; a series never written
/// gets no points.
pub async fn multiple_fetches(c: &MetricBackendClient) {
    let case = "multiple_fetches";
    let start = 1_600_000_000_000;
    let series: Vec<Series> = (0..5).map(|_| new_series(case)).collect();
    let data: Vec<Vec<(i64, f64)>> = (0..5)
        .map(|i| (0..=i).map(|j| (start + (j as i64) * 1000 + i as i64, (i * 100 + j) as f64)).collect())
        .collect();
    let batch = series.iter().zip(&data).map(|(s, d)| sp(s, PointBatch::from_pairs(d))).collect();
    write(c, case, batch).await;

    // Ask in another order than written, with an unwritten series in the middle.
    let unwritten = new_series(case);
    let order = [3usize, 0, 5, 4, 1, 2];
    let request_series: Vec<Series> =
        order.iter().map(|&i| if i == 5 { unwritten.clone() } else { series[i].clone() }).collect();
    let response = fetch(
        c,
        case,
        FetchRequest {
            series: request_series.into(),
            range: TimeRange::new(start - 1, start + 10_000),
            point_limit: 0,
        },
    )
    .await;
    for (index, &i) in order.iter().enumerate() {
        let got = points_of(&response, index);
        if i == 5 {
            assert_points(case, "unwritten series", &got, &[]);
        } else {
            assert_points(case, &format!("request {index} (series {i})"), &got, &data[i]);
        }
    }
}

/// Heroic's `testWriteAndFetchLongSeries`: 10,000 points spread over 10^12 ms
/// (about 230 Bigtable rows) are all read back with one fetch.
pub async fn long_series(c: &MetricBackendClient) {
    let case = "long_series";
    let s = new_series(case);
    let step = 100_000_000; // 10^8 ms: 10,000 points span 10^12 ms
    let points: Vec<(i64, f64)> = (0..10_000).map(|i| (1 + i * step, i as f64 * 0.5)).collect();
    write_pairs(c, case, &s, &points).await;
    let got = fetch_points(c, case, &s, TimeRange::new(0, 1 + 10_000 * step)).await;
    assert_points(case, "10,000 points over 10^12 ms", &got, &points);
    let middle = TimeRange::new(1 + 2_500 * step, 1 + 7_500 * step);
    let expected: Vec<(i64, f64)> = points.iter().copied().filter(|p| middle.contains(p.0)).collect();
    assert_points(case, "middle half", &fetch_points(c, case, &s, middle).await, &expected);
}

/// Heroic's `testWriteThenFetchSeriesWithManyTags`, made strict: a series
/// with 110 long tags is either stored and read back exactly, or its write
/// fails with an `InvalidInput` error. Heroic's Bigtable backend drops such
/// a row key silently; that is not allowed here.
pub async fn many_tags(c: &MetricBackendClient) {
    let case = "many_tags";
    let id = unique_id();
    let tags: Vec<(String, String)> = (0..110)
        .map(|i| (format!("very-long-tag-name-number-{i:03}"), format!("a-rather-long-tag-value-for-tag-{i:03}-{id}")))
        .collect();
    let s = Series::new(format!("conformance-{case}-{id}"), tags, Vec::<(String, String)>::new());
    let points = [(1_600_000_000_000, 1.0), (1_600_000_001_000, 2.0)];
    match c.write(vec![sp(&s, PointBatch::from_pairs(&points))].into()).await {
        Ok(()) => {
            let got = fetch_points(c, case, &s, all()).await;
            assert!(
                !got.is_empty(),
                "{case}: the write of a series with 110 long tags succeeded but nothing was stored (silently dropped)"
            );
            assert_points(case, "series with 110 tags", &got, &points);
        }
        Err(e) if e.kind == ErrorKind::INVALID_INPUT => {
            eprintln!("note: {case}: the backend refuses a series with 110 long tags: {e}");
        }
        Err(e) => {
            panic!("{case}: writing a series with 110 long tags must succeed or fail with InvalidInput, got: {e}")
        }
    }
}

/// Points of a series with resource tags are read back when asked for with
/// the series as the metadata backend returns it (resource tags included),
/// and the answer carries those resource tags.
pub async fn resource_round_trip(c: &MetricBackendClient) {
    let case = "resource_round_trip";
    let s = Series::new(
        format!("conformance-{case}-{}", unique_id()),
        [("case", case), ("kit", "heroic-conformance")],
        [("pod", "p-1"), ("container", "c-7")],
    );
    let points = [(1_600_000_000_000, 1.5), (1_600_000_060_000, 2.5)];
    write_pairs(c, case, &s, &points).await;
    let response = fetch(c, case, FetchRequest { series: vec![s.clone()].into(), range: all(), point_limit: 0 }).await;
    assert_points(case, "series with resource tags", &points_of(&response, 0), &points);
    for fetched in response.series.iter() {
        assert_eq!(fetched.resource, s.resource, "{case}: the answer does not carry the series' resource tags");
    }
}

/// A point written again at the same timestamp replaces the first (last
/// write wins), within one batch and across writes; no timestamp is
/// returned twice.
pub async fn overwrite_same_timestamp(c: &MetricBackendClient) {
    let case = "overwrite_same_timestamp";
    let s = new_series(case);
    let t = 1_600_000_000_000;
    write_pairs(c, case, &s, &[(t + 1000, 1.0), (t + 2000, 2.0)]).await;
    write_pairs(c, case, &s, &[(t + 1000, 10.0)]).await;
    write_pairs(c, case, &s, &[(t + 3000, 3.0), (t + 3000, 30.0)]).await;
    let got = fetch_points(c, case, &s, TimeRange::new(t, t + 10_000)).await;
    assert_points(case, "after overwrites", &got, &[(t + 1000, 10.0), (t + 2000, 2.0), (t + 3000, 30.0)]);
}

/// `point_limit` stops a read early and sets `limited`; a limit above the
/// number of points (or 0) reads everything with `limited` false. The limit
/// is on all series of the request together.
pub async fn fetch_point_limit(c: &MetricBackendClient) {
    let case = "fetch_point_limit";
    let start = 1_600_000_000_000;
    let series: Vec<Series> = (0..3).map(|_| new_series(case)).collect();
    let data: Vec<(i64, f64)> = (0..50).map(|i| (start + i * 1000, i as f64)).collect();
    write(c, case, series.iter().map(|s| sp(s, PointBatch::from_pairs(&data))).collect()).await;
    let range = TimeRange::new(start - 1, start + 100_000);
    let total = |r: &FetchResponse| r.series.iter().map(|s| s.points.len()).sum::<usize>();

    let one = vec![series[0].clone()];
    let r = fetch(c, case, FetchRequest { series: one.clone().into(), range, point_limit: 10 }).await;
    assert!(r.limited, "{case}: 50 points with point_limit 10: limited must be true");
    assert!(
        total(&r) < 50,
        "{case}: 50 points with point_limit 10: the read did not stop early ({} points)",
        total(&r)
    );
    let got = points_of(&r, 0);
    assert!(got.iter().all(|p| data.contains(p)), "{case}: limited read returned points never written: {got:?}");

    let r = fetch(c, case, FetchRequest { series: series.clone().into(), range, point_limit: 60 }).await;
    assert!(r.limited, "{case}: 3×50 points with point_limit 60: limited must be true");
    assert!(total(&r) < 150, "{case}: 3×50 points with point_limit 60: the read did not stop early");

    for limit in [1000, 0] {
        let r = fetch(c, case, FetchRequest { series: series.clone().into(), range, point_limit: limit }).await;
        assert!(!r.limited, "{case}: 150 points with point_limit {limit}: limited must be false");
        for i in 0..3 {
            assert_points(case, &format!("point_limit {limit}, series {i}"), &points_of(&r, i), &data);
        }
    }
}

/// Optional: `list_series` pages through stored series; every written series
/// appears, pages respect the limit and the cursor moves on.
pub async fn list_series(c: &MetricBackendClient) {
    let case = "list_series";
    let series: Vec<Series> = (0..3).map(|_| new_series(case)).collect();
    write(c, case, series.iter().map(|s| sp(s, PointBatch::from_pairs(&[(1_600_000_000_000, 1.0)]))).collect()).await;

    let limit = 2;
    let mut seen: BTreeSet<Series> = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for page_number in 0.. {
        assert!(page_number < 100_000, "{case}: more than 100,000 pages; is the cursor moving on?");
        let Some(page) = optional(
            "metric",
            case,
            "list_series",
            declared(c, MetricCapabilities::LIST_SERIES),
            c.list_series(cursor.as_deref(), limit).await,
        ) else {
            return;
        };
        assert!(page.series.len() as u64 <= limit, "{case}: page of {} series with limit {limit}", page.series.len());
        seen.extend(page.series.iter().cloned());
        match page.next_cursor.into_option() {
            None => break,
            Some(next) => {
                let next = next.to_string();
                assert!(cursor.as_deref() != Some(next.as_str()), "{case}: next_cursor did not change ({next:?})");
                cursor = Some(next);
            }
        }
    }
    for s in &series {
        assert!(seen.contains(s), "{case}: written series {s:?} was not listed");
    }
}

/// Optional: `delete_points` removes points in `(start, end]` of the given
/// series only.
pub async fn delete_points(c: &MetricBackendClient) {
    let case = "delete_points";
    let a = new_series(case);
    let b = new_series(case);
    let data: Vec<(i64, f64)> = (1..=10).map(|i| (i * 1000, i as f64)).collect();
    write(c, case, vec![sp(&a, PointBatch::from_pairs(&data)), sp(&b, PointBatch::from_pairs(&data))]).await;
    let Some(deleted) = optional(
        "metric",
        case,
        "delete_points",
        declared(c, MetricCapabilities::DELETE_POINTS),
        c.delete_points(vec![a.clone()], TimeRange::new(3000, 6000)).await,
    ) else {
        return;
    };
    assert_eq!(deleted, 1, "{case}: one series had points in the range; delete_points answered {deleted}");
    let kept: Vec<(i64, f64)> = data.iter().copied().filter(|p| !TimeRange::new(3000, 6000).contains(p.0)).collect();
    assert_points(case, "series after the delete", &fetch_points(c, case, &a, all()).await, &kept);
    assert_points(case, "other series", &fetch_points(c, case, &b, all()).await, &data);
}

/// Optional: `count_points` counts points in `(start, end]` over the given
/// series.
pub async fn count_points(c: &MetricBackendClient) {
    let case = "count_points";
    let a = new_series(case);
    let b = new_series(case);
    let unwritten = new_series(case);
    let data: Vec<(i64, f64)> = (1..=10).map(|i| (i * 1000, i as f64)).collect();
    write(c, case, vec![sp(&a, PointBatch::from_pairs(&data)), sp(&b, PointBatch::from_pairs(&data[..4]))]).await;
    let Some(n) = optional(
        "metric",
        case,
        "count_points",
        declared(c, MetricCapabilities::COUNT_POINTS),
        c.count_points(vec![a.clone()], TimeRange::new(3000, 6000)).await,
    ) else {
        return;
    };
    assert_eq!(n, 3, "{case}: (3000, 6000] holds 3 points of the series; count_points answered {n}");
    let n = required(case, "count_points", c.count_points(vec![a.clone(), b.clone(), unwritten], all()).await);
    assert_eq!(n, 14, "{case}: two series of 10 and 4 points and an unwritten one: count_points answered {n}");
}

/// Prints which optional cases this backend's declared capabilities skip.
pub async fn capabilities_summary(c: &MetricBackendClient) {
    let caps = c.capabilities();
    let cases: Vec<(&str, bool)> = OPTIONAL.iter().map(|(case, cap)| (*case, caps.contains(*cap))).collect();
    super::report(&super::capability_summary("metric", &cases, &caps.names()));
}
