//! Aggregation operators and their output labels.

use super::*;

fn store() -> Vec<RangeSeries> {
    vec![
        series(&[("__name__", "x"), ("job", "a"), ("i", "1")], &[(0.0, 1.0)]),
        series(&[("__name__", "x"), ("job", "a"), ("i", "2")], &[(0.0, 3.0)]),
        series(&[("__name__", "x"), ("job", "b"), ("i", "1")], &[(0.0, 5.0)]),
    ]
}

fn by_job(query: &str) -> Vec<(Labels, f64)> {
    vector(query, 10.0, &store())
}

#[test]
fn sum_avg_count_min_max_group_by_and_without() {
    let a = labels(&[("job", "a")]);
    let b = labels(&[("job", "b")]);
    assert_eq!(by_job("sum by (job) (x)"), [(a.clone(), 4.0), (b.clone(), 5.0)]);
    assert_eq!(by_job("sum(x) by (job)"), [(a.clone(), 4.0), (b.clone(), 5.0)]);
    assert_eq!(by_job("avg by (job) (x)"), [(a.clone(), 2.0), (b.clone(), 5.0)]);
    assert_eq!(by_job("count by (job) (x)"), [(a.clone(), 2.0), (b.clone(), 1.0)]);
    assert_eq!(by_job("min by (job) (x)"), [(a.clone(), 1.0), (b.clone(), 5.0)]);
    assert_eq!(by_job("max by (job) (x)"), [(a.clone(), 3.0), (b.clone(), 5.0)]);
    assert_eq!(by_job("group by (job) (x)"), [(a.clone(), 1.0), (b.clone(), 1.0)]);
    assert_eq!(by_job("stddev by (job) (x)"), [(a.clone(), 1.0), (b.clone(), 0.0)]);
    assert_eq!(by_job("stdvar by (job) (x)"), [(a.clone(), 1.0), (b.clone(), 0.0)]);
    // without drops the metric name too.
    assert_eq!(by_job("sum without (i) (x)"), [(a, 4.0), (b, 5.0)]);
    assert_eq!(by_job("sum(x)"), [(Labels::default(), 9.0)]);
    // Grouping by a label no series has makes one group.
    assert_eq!(by_job("count by (nope) (x)"), [(Labels::default(), 3.0)]);
}

#[test]
fn nan_in_aggregations() {
    let store = vec![
        series(&[("__name__", "x"), ("i", "1")], &[(0.0, f64::NAN)]),
        series(&[("__name__", "x"), ("i", "2")], &[(0.0, 2.0)]),
    ];
    assert!(one("sum(x)", 0.0, &store).is_nan());
    assert_eq!(one("min(x)", 0.0, &store), 2.0);
    assert_eq!(one("max(x)", 0.0, &store), 2.0);
    let all_nan = vec![series(&[("__name__", "x")], &[(0.0, f64::NAN)])];
    assert!(one("max(x)", 0.0, &all_nan).is_nan());
}

#[test]
fn topk_and_bottomk_keep_the_series_labels() {
    assert_eq!(by_job("topk(1, x)"), [(labels(&[("__name__", "x"), ("job", "b"), ("i", "1")]), 5.0)]);
    let bottom = by_job("bottomk(2, x)");
    assert_eq!(bottom.iter().map(|(_, v)| *v).collect::<Vec<_>>(), [1.0, 3.0]);
    assert!(bottom.iter().all(|(l, _)| l.get("__name__") == "x"));
    let top_by_job = by_job("topk by (job) (1, x)");
    // Sorted by labels: {i="1", job="b"} before {i="2", job="a"}.
    assert_eq!(top_by_job.iter().map(|(_, v)| *v).collect::<Vec<_>>(), [5.0, 3.0]);
    assert!(by_job("topk(0, x)").is_empty());
    assert_eq!(by_job("topk(10, x)").len(), 3);
    assert!(matches!(instant("topk(scalar(nope), x)", 10.0, &store()), Err(Error::Execution(_))));
}

#[test]
fn topk_prefers_numbers_to_nan() {
    let store = vec![
        series(&[("__name__", "x"), ("i", "1")], &[(0.0, f64::NAN)]),
        series(&[("__name__", "x"), ("i", "2")], &[(0.0, 2.0)]),
        series(&[("__name__", "x"), ("i", "3")], &[(0.0, 1.0)]),
    ];
    let top = vector("topk(1, x)", 0.0, &store);
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].1, 2.0);
    let bottom = vector("bottomk(1, x)", 0.0, &store);
    assert_eq!(bottom[0].1, 1.0);
}

#[test]
fn quantile_interpolates_linearly() {
    // 1, 3, 5: rank 0.5 × 2 = 1 → 3; 0.75 → rank 1.5 → 4.
    assert_eq!(one("quantile(0.5, x)", 10.0, &store()), 3.0);
    assert_eq!(one("quantile(0.75, x)", 10.0, &store()), 4.0);
    assert_eq!(one("quantile(0, x)", 10.0, &store()), 1.0);
    assert_eq!(one("quantile(1, x)", 10.0, &store()), 5.0);
    assert_eq!(one("quantile(1.5, x)", 10.0, &store()), f64::INFINITY);
    assert_eq!(by_job("quantile by (job) (0.5, x)")[0].1, 2.0);
}

#[test]
fn count_values_counts_each_value() {
    let store = vec![
        series(&[("__name__", "x"), ("i", "1")], &[(0.0, 1.0)]),
        series(&[("__name__", "x"), ("i", "2")], &[(0.0, 1.0)]),
        series(&[("__name__", "x"), ("i", "3")], &[(0.0, 2.5)]),
    ];
    let got = vector("count_values(\"v\", x)", 0.0, &store);
    assert_eq!(got, [(labels(&[("v", "1")]), 2.0), (labels(&[("v", "2.5")]), 1.0)]);
    assert!(matches!(instant("count_values(\"0bad\", x)", 0.0, &store), Err(Error::Execution(_))));
}
