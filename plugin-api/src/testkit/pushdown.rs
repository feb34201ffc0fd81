//! The metric suite's `fetch_buckets` case (interface 1.3, aggregation
//! pushdown), in a file of its own; it runs as `metric::fetch_buckets`.

use crate::buckets::*;
use crate::client::MetricBackendClient;
use crate::types::*;

use super::{new_series, optional, required};

/// Optional (interface 1.3): `fetch_buckets` answers what folding the
/// points `fetch` returns would: per group and bucket the count, sum, sum
/// of squares, min and max of the finite values in `(start, end]`; the
/// series that had points; the number of points read; and it stops at
/// `point_limit`, saying so. Called through the raw interface.
pub async fn fetch_buckets(c: &MetricBackendClient) {
    let case = "fetch_buckets";
    let series: Vec<Series> = (0..4).map(|_| new_series(case)).collect();
    // Three written series (a NaN among the second's points: not folded,
    // but read), one never written.
    let written: Vec<Vec<(i64, f64)>> = (0..3i64)
        .map(|i| {
            let mut points: Vec<(i64, f64)> =
                (1..=60i64).filter(|t| (t + i) % 4 != 0).map(|t| (t * 1000, (t * (i + 1)) as f64 * 0.25)).collect();
            if i == 1 {
                points.push((20_500, f64::NAN));
                points.sort_by_key(|p| p.0);
            }
            points
        })
        .collect();
    let batch: Vec<SeriesPoints> = written
        .iter()
        .zip(&series)
        .map(|(points, s)| SeriesPoints { series: s.clone(), points: PointBatch::from_pairs(points) })
        .collect();
    required(case, "write", c.write(batch.into()).await);
    let range = TimeRange::new(5_000, 45_000);
    let layout = BucketLayout::new(range, 10_000, 10_000, BucketLayout::END).expect("a layout");
    // Series 0 and 2 in group 0, 1 and the unwritten 3 in group 1.
    let request = |point_limit: u64| BucketFetchRequest {
        series: series.clone().into(),
        groups: vec![0, 1, 0, 1].into(),
        group_count: 2,
        range,
        layout,
        fields: PartialFields::ALL,
        point_limit,
    };
    let answer = c.ffi.fetch_buckets(request(0)).await.into_result();
    let Some(answer) =
        optional("metric", case, "fetch_buckets", c.capabilities().contains(MetricCapabilities::FETCH_BUCKETS), answer)
    else {
        return;
    };
    answer.partials.validate(request(0).cells(), PartialFields::ALL).unwrap_or_else(|e| panic!("{case}: {e}"));

    // The reference: the same points folded here.
    let mut want = BucketPartials::new(PartialFields::ALL, request(0).cells());
    let mut points = 0;
    for (points_of, group) in written.iter().zip([0usize, 1, 0]) {
        let inside: Vec<(i64, f64)> = points_of.iter().copied().filter(|(t, _)| range.contains(*t)).collect();
        let (ts, vs): (Vec<i64>, Vec<f64>) = inside.into_iter().unzip();
        points += ts.len() as u64;
        want.fold(&layout, group, &ts, &vs);
    }
    assert_eq!(answer.partials.count, want.count, "{case}: counts per group and bucket");
    for (name, got, want) in [
        ("sum", &answer.partials.sum, &want.sum),
        ("sum2", &answer.partials.sum2, &want.sum2),
        ("min", &answer.partials.min, &want.min),
        ("max", &answer.partials.max, &want.max),
    ] {
        for (cell, (g, w)) in got.iter().zip(want.iter()).enumerate() {
            let close = g == w || (g - w).abs() <= 1e-9 * w.abs().max(1.0);
            assert!(close, "{case}: {name} of cell {cell} is {g}, folding the points gives {w}");
        }
    }
    let mut with_data = answer.series_with_data.to_vec();
    with_data.sort();
    assert_eq!(with_data, vec![0, 1, 2], "{case}: the series that had points in the range, each once");
    assert_eq!(answer.points, points, "{case}: points read");
    assert!(!answer.limited, "{case}: no limit was set");

    let limited = required(case, "fetch_buckets", c.ffi.fetch_buckets(request(5)).await.into_result());
    assert!(limited.limited, "{case}: a point_limit of 5 stops the read and says so");
    assert!(limited.points <= points, "{case}: {} points read under a limit", limited.points);
    let folded: u64 = limited.partials.count.iter().sum();
    assert!(folded <= limited.points, "{case}: {folded} values folded but {} points read", limited.points);
}
