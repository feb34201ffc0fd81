//! Every aggregation with hand-computed values.

use heroic_plugin_api::types::{Series, TimeRange};
use serde_json::json;

use super::*;
use crate::error::QueryError;

fn series(host: &str) -> Series {
    Series::new("cpu", [("host", host), ("site", "lon")], Vec::<(&str, &str)>::new())
}

/// Runs `hql` over (0, 40] with the end strategy on the given data.
fn run_on(hql: &str, range: TimeRange, strategy: BucketStrategy, data: &[(&str, &[(i64, f64)])]) -> Vec<ResultGroup> {
    let q = crate::hql::parse_query(hql).unwrap();
    let agg = q.aggregation().unwrap().unwrap_or(Aggregation::Empty);
    let inst = agg.apply(1).unwrap();
    let mut s = inst.session(range, strategy, None).unwrap();
    for (host, points) in data {
        let (ts, vs): (Vec<i64>, Vec<f64>) = points.iter().copied().unzip();
        s.update(&series(host), &ts, &vs).unwrap();
    }
    s.finish().unwrap()
}

fn run(hql: &str, data: &[(i64, f64)]) -> Vec<(i64, f64)> {
    let g = run_on(hql, TimeRange::new(0, 40), BucketStrategy::End, &[("a", data)]);
    assert_eq!(g.len(), 1, "{g:?}");
    points(&g[0])
}

fn points(g: &ResultGroup) -> Vec<(i64, f64)> {
    match &g.values {
        MetricValues::Points(p) => p.clone(),
        other => panic!("expected points, got {other:?}"),
    }
}

const DATA: &[(i64, f64)] = &[(5, 1.0), (10, 3.0), (12, 2.0), (30, -4.0), (40, 6.0)];

#[test]
fn simple_bucket_aggregations() {
    // buckets at 10 (0,10], 20 (10,20], 30 (20,30], 40 (30,40]; 20 is empty
    assert_eq!(run("sum(10ms)", DATA), vec![(10, 4.0), (20, 2.0), (30, -4.0), (40, 6.0)]);
    assert_eq!(run("sum2(10ms)", DATA), vec![(10, 10.0), (20, 4.0), (30, 16.0), (40, 36.0)]);
    assert_eq!(run("average(10ms)", DATA), vec![(10, 2.0), (20, 2.0), (30, -4.0), (40, 6.0)]);
    assert_eq!(run("min(10ms)", DATA), vec![(10, 1.0), (20, 2.0), (30, -4.0), (40, 6.0)]);
    assert_eq!(run("max(10ms)", DATA), vec![(10, 3.0), (20, 2.0), (30, -4.0), (40, 6.0)]);
    // count emits 0 for the empty bucket
    assert_eq!(
        run("count(5ms)", DATA),
        vec![(5, 1.0), (10, 1.0), (15, 1.0), (20, 0.0), (25, 0.0), (30, 1.0), (35, 0.0), (40, 1.0)]
    );
    // population stddev, as Heroic's StripedStdDevBucket: {1, 3} is 1, one value 0
    assert_eq!(run("stddev(10ms)", DATA), vec![(10, 1.0), (20, 0.0), (30, 0.0), (40, 0.0)]);
    // quantile: floor(q·n)-th smallest (1-based, at least the first)
    // {1,3,2}: floor(0.5·3) = 1st smallest
    assert_eq!(run("quantile(20ms, q=0.5)", DATA), vec![(20, 1.0), (40, -4.0)]);
    assert_eq!(run("quantile(40ms, q=0.5)", DATA), vec![(40, 1.0)]); // -4,1,2,3,6: 2nd
    assert_eq!(run("quantile(40ms, q=0.99)", DATA), vec![(40, 3.0)]);
    assert_eq!(run("quantile(40ms, q=1.0)", DATA), vec![(40, 6.0)]);
}

#[test]
fn extent_and_start_strategy() {
    // extent 20: bucket t covers (t-20, t]
    assert_eq!(run("sum(10ms, 20ms)", DATA), vec![(10, 4.0), (20, 6.0), (30, -2.0), (40, 2.0)]);
    // start strategy: buckets 0..4 at 0,10,20,30 cover [t, t+10); 40 is out
    let g = run_on("sum(10ms)", TimeRange::new(0, 40), BucketStrategy::Start, &[("a", DATA)]);
    assert_eq!(points(&g[0]), vec![(0, 1.0), (10, 5.0), (30, -4.0)]);
}

#[test]
fn range_edges_and_single_points() {
    // A point at the range start is outside (start, end]; one at the end is in.
    assert_eq!(run("sum(10ms)", &[(0, 100.0), (40, 1.0)]), vec![(40, 1.0)]);
    assert_eq!(run("sum(10ms)", &[(41, 100.0), (-5, 1.0)]), vec![]);
    assert_eq!(run("average(40ms)", &[(20, 7.0)]), vec![(40, 7.0)]);
    assert_eq!(run("stddev(40ms)", &[(20, 7.0)]), vec![(40, 0.0)]);
    assert_eq!(run("ratePerSecond(40ms)", &[(20, 7.0)]), vec![]);
    // non-finite input is ignored by bucket aggregations
    assert_eq!(run("sum(10ms)", &[(10, f64::NAN), (10, 1.0)]), vec![(10, 1.0)]);
    // empty input: no points, count all zero
    assert_eq!(run("sum(10ms)", &[]), vec![]);
    assert_eq!(run("count(20ms)", &[]), vec![(20, 0.0), (40, 0.0)]);
}

#[test]
fn spread() {
    let g = run_on("spread(20ms)", TimeRange::new(0, 40), BucketStrategy::End, &[("a", DATA)]);
    let MetricValues::Spreads(s) = &g[0].values else { panic!() };
    assert_eq!(s.len(), 2);
    assert_eq!(s[0], (20, SpreadValue { count: 3, sum: 6.0, sum2: 14.0, min: 1.0, max: 3.0 }));
    assert_eq!(s[1], (40, SpreadValue { count: 2, sum: 2.0, sum2: 52.0, min: -4.0, max: 6.0 }));
    assert_eq!(g[0].values.to_json()[0], json!([20, {"count": 3, "sum": 6.0, "sum2": 14.0, "min": 1.0, "max": 3.0}]));
    // spreads feed the next step
    assert_eq!(run("spread(20ms) | max(40ms)", DATA), vec![(40, 6.0)]);
    assert_eq!(run("spread(20ms) | average(40ms)", DATA), vec![(40, 8.0 / 5.0)]);
    assert_eq!(run("spread(20ms) | count(40ms)", DATA), vec![(40, 2.0)]);
}

#[test]
fn rate_per_second() {
    // counter 10 → 20 → 5 (reset) → 15 over 30 ms: positive deltas 10 + 10
    let data = [(10, 10.0), (20, 20.0), (30, 5.0), (40, 15.0)];
    assert_eq!(run("ratePerSecond(40ms)", &data), vec![(40, 20.0 / 30.0 * 1000.0)]);
}

#[test]
fn delta_and_filters() {
    let data = [(10, 1.0), (20, 4.0), (30, 2.0), (40, 2.5)];
    assert_eq!(run("delta", &data), vec![(20, 3.0), (30, -2.0), (40, 0.5)]);
    assert_eq!(run("deltaPerSecond", &data), vec![(20, 300.0), (30, -200.0), (40, 50.0)]);
    assert_eq!(run("delta | notNegative", &data), vec![(20, 3.0), (40, 0.5)]);
    assert_eq!(run("pointsabove(2)", &data), vec![(20, 4.0), (40, 2.5)]);
    assert_eq!(run("pointsbelow(2)", &data), vec![(10, 1.0)]);
    assert_eq!(run("delta", &[(10, 1.0)]), vec![]);
    assert_eq!(run("empty", &data), data.to_vec());
}

#[test]
fn group_filters() {
    let a: &[(i64, f64)] = &[(10, 1.0), (20, 1.0)]; // area 10, max 1, min 1
    let b: &[(i64, f64)] = &[(10, 5.0), (20, 3.0)]; // area 40, max 5, min 3
    let c: &[(i64, f64)] = &[(10, -1.0), (20, 2.0)]; // crosses zero, min -1, max 2
    let hosts = |g: Vec<ResultGroup>| g.iter().map(|g| g.key["host"].clone()).collect::<Vec<_>>();
    let data = [("a", a), ("b", b), ("c", c)];
    let r = TimeRange::new(0, 40);
    let e = BucketStrategy::End;
    assert_eq!(hosts(run_on("max(10ms) by host | topk(2)", r, e, &data)), ["a", "b"]);
    assert_eq!(hosts(run_on("max(10ms) by host | bottomk(1)", r, e, &data)), ["c"]);
    assert_eq!(hosts(run_on("max(10ms) by host | abovek(1.5)", r, e, &data)), ["b", "c"]);
    assert_eq!(hosts(run_on("max(10ms) by host | belowk(1)", r, e, &data)), ["c"]);
    assert_eq!(hosts(run_on("max(10ms) by host | topk(0)", r, e, &data)), Vec::<String>::new());
}

#[test]
fn group_and_collapse_keys() {
    let data: [(&str, &[(i64, f64)]); 2] = [("a", &[(10, 1.0)]), ("b", &[(10, 2.0)])];
    let r = TimeRange::new(0, 10);
    let e = BucketStrategy::End;
    let g = run_on("sum(10ms) by host", r, e, &data);
    assert_eq!(g.len(), 2);
    assert_eq!(g[0].key, [("host".to_string(), "a".to_string())].into());
    assert_eq!(g[0].series.len(), 1);
    let g = run_on("sum(10ms) by site", r, e, &data);
    assert_eq!((g.len(), points(&g[0])), (1, vec![(10, 3.0)]));
    assert_eq!(g[0].series.len(), 2);
    let g = run_on("sum(10ms) by missing", r, e, &data);
    assert_eq!((g.len(), g[0].key.len()), (1, 0));
    let g = run_on("collapse(host, sum(10ms))", r, e, &data);
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].key, [("site".to_string(), "lon".to_string())].into());
    let g = run_on("collapse(site, sum(10ms))", r, e, &data);
    assert_eq!(g.len(), 2);
    let g = run_on("group([], sum(10ms))", r, e, &data);
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].cadence, 10);
}

#[test]
fn cardinality() {
    let data: [(&str, &[(i64, f64)]); 2] = [("a", &[(10, 1.0), (20, 2.0), (20, 3.0)]), ("b", &[(10, 1.0), (20, 2.0)])];
    let r = TimeRange::new(0, 30);
    let e = BucketStrategy::End;
    for m in ["exact", "hll", "hllp"] {
        let g = run_on(&format!("cardinality(10ms, method={m})"), r, e, &data);
        assert_eq!(points(&g[0]), vec![(10, 1.0), (20, 2.0), (30, 0.0)], "{m}");
        let g = run_on(&format!("cardinality(10ms, method={m}(includeKey=\"true\"))"), r, e, &data);
        assert_eq!(points(&g[0]), vec![(10, 2.0), (20, 3.0), (30, 0.0)], "{m}");
    }
}

/// An HQL aggregation resolved with 1 ms as the default size.
fn instance(hql: &str) -> AggregationInstance {
    crate::hql::parse_query(hql).unwrap().aggregation().unwrap().unwrap_or(Aggregation::Empty).apply(1).unwrap()
}

#[test]
fn bucket_count_cap() {
    let inst = instance("sum");
    assert!(inst.session(TimeRange::new(0, 100_000), BucketStrategy::End, None).is_ok());
    let e = inst.session(TimeRange::new(0, 100_001), BucketStrategy::End, None).err().unwrap();
    assert!(e.to_string().contains("100001 buckets"), "{e}");
    assert!(inst.session(TimeRange::new(0, 0), BucketStrategy::End, None).is_err());
    // The cap is a validation error whatever aggregationLimit says.
    let e = inst.session(TimeRange::new(0, 100_001), BucketStrategy::End, Some(10)).err().unwrap();
    assert!(matches!(e, QueryError::Layout(_)), "{e}");
}

const LIMIT_RANGE: TimeRange = TimeRange { start: 0, end: 100 };

fn limited(hql: &str, limit: u64) -> Result<AggregationSession, QueryError> {
    instance(hql).session(LIMIT_RANGE, BucketStrategy::End, Some(limit))
}

#[test]
fn aggregation_limit_counts_top_level_buckets() {
    // 100 buckets: refused up front, before any data, when over the limit.
    assert_eq!(limited("sum(1ms)", 99).err(), Some(QueryError::AggregationLimit { limit: 99 }));
    let mut s = limited("sum(1ms)", 100).unwrap();
    assert_eq!(s.retained(), 100);
    s.update(&series("a"), &[1, 2], &[1.0, 1.0]).unwrap();
    assert_eq!(s.finish().unwrap().len(), 1);
    // So is a chain's first step.
    assert!(limited("sum(1ms) | max(10ms)", 99).is_err());
}

#[test]
fn aggregation_limit_counts_nested_buckets() {
    // A later chain step sets up its 10 buckets when the first one finishes.
    let mut s = limited("sum(1ms) | max(10ms)", 109).unwrap();
    s.update(&series("a"), &[1], &[1.0]).unwrap();
    assert_eq!(s.finish().err(), Some(QueryError::AggregationLimit { limit: 109 }));
    assert!(limited("sum(1ms) | max(10ms)", 110).unwrap().finish().is_ok());
    // Each group sets up its buckets when it first sees data.
    let mut s = limited("sum(1ms) by host", 199).unwrap();
    assert_eq!(s.retained(), 0);
    s.update(&series("a"), &[1], &[1.0]).unwrap();
    s.update(&series("a"), &[2], &[1.0]).unwrap();
    assert_eq!(s.update(&series("b"), &[1], &[1.0]), Err(QueryError::AggregationLimit { limit: 199 }));
    let mut s = limited("sum(1ms) by host", 200).unwrap();
    s.update(&series("a"), &[1], &[1.0]).unwrap();
    s.update(&series("b"), &[1], &[1.0]).unwrap();
    assert_eq!(s.finish().unwrap().len(), 2);
}

#[test]
fn aggregation_limit_counts_raw_points() {
    let mut s = limited("*", 2).unwrap();
    s.update(&series("a"), &[1, 2], &[1.0, 1.0]).unwrap();
    assert_eq!(s.update(&series("a"), &[3], &[1.0]), Err(QueryError::AggregationLimit { limit: 2 }));
    // Buckets and the raw points a later step keeps share one budget.
    let mut s = limited("sum(1ms) | delta", 101).unwrap();
    s.update(&series("a"), &[1, 2], &[1.0, 1.0]).unwrap();
    assert_eq!(s.finish().err(), Some(QueryError::AggregationLimit { limit: 101 }));
    // The exact quantile keeps every value on top of its 10 buckets.
    let mut s = limited("quantile(10ms)", 12).unwrap();
    s.update(&series("a"), &[1, 2], &[1.0, 1.0]).unwrap();
    assert_eq!(s.update(&series("a"), &[3], &[1.0]), Err(QueryError::AggregationLimit { limit: 12 }));
    // Sums fold values into their buckets and keep none.
    let mut s = limited("sum(10ms)", 10).unwrap();
    s.update(&series("a"), &[1, 2, 3], &[1.0, 1.0, 1.0]).unwrap();
    assert_eq!(s.retained(), 10);
}

#[test]
fn json_model() {
    let p = |v: serde_json::Value| Aggregation::from_json(&v).unwrap();
    assert_eq!(
        p(json!({"type": "sum", "sampling": {"unit": "seconds", "value": 60}})),
        Aggregation::Bucket {
            kind: BucketKind::Sum,
            size: Some(Duration::new(60, crate::duration::TimeUnit::Seconds)),
            extent: Some(Duration::new(60, crate::duration::TimeUnit::Seconds))
        }
    );
    let a = p(json!({"type": "average", "size": "5m", "extent": "1h"})).apply(1).unwrap();
    assert_eq!(a, AggregationInstance::Bucket { kind: BucketKind::Average, size: 300_000, extent: 3_600_000 });
    let a = p(json!({"type": "group", "of": ["host"], "each": [{"type": "max", "size": 10}, {"type": "notNegative"}]}));
    assert!(matches!(&a, Aggregation::Group { each, .. } if matches!(**each, Aggregation::Chain(_))));
    let a = p(
        json!({"type": "opts", "sampling": {"size": "1m"}, "aggregation": {"type": "chain", "chain": [{"type": "min"}, {"type": "topk", "k": 3}]}}),
    );
    assert_eq!(
        a.apply(5).unwrap(),
        AggregationInstance::Chain(vec![
            AggregationInstance::Bucket { kind: BucketKind::Min, size: 60_000, extent: 60_000 },
            AggregationInstance::Filter(FilterK::TopK(3))
        ])
    );
    // default size from the range; extent defaults to size
    assert_eq!(
        p(json!({"type": "count"})).apply(7).unwrap(),
        AggregationInstance::Bucket { kind: BucketKind::Count, size: 7, extent: 7 }
    );
    let q = p(json!({"type": "quantile", "q": 0.9, "sampling": {"value": "10m", "extent": "10m"}}));
    assert_eq!(q.to_json()["q"], 0.9);
    let c = p(json!({"type": "cardinality", "method": {"type": "exact", "includeKey": true}}));
    assert_eq!(c.to_json()["method"], json!({"type": "exact", "includeKey": true}));
    // round trip
    for a in [q, c, p(json!({"type": "collapse", "of": ["a"], "each": {"type": "spread"}}))] {
        assert_eq!(Aggregation::from_json(&a.to_json()).unwrap(), a);
    }
}

#[test]
fn json_errors_say_what_and_where() {
    let e = |v: serde_json::Value| Aggregation::from_json(&v).unwrap_err();
    let x = e(json!({"type": "group", "of": ["a"], "each": {"type": "bogus"}}));
    assert_eq!(x.path(), Some("each.type"));
    assert!(x.to_string().contains("unknown aggregation \"bogus\""), "{x}");
    let x = e(json!({"type": "sum", "size": "5x"}));
    assert_eq!(x.path(), Some("size"));
    assert!(x.to_string().contains("5x"), "{x}");
    let x = e(json!({"type": "topk", "k": "three"}));
    assert_eq!(x.path(), Some("k"));
    let x = e(json!({"type": "sum", "sampling": {"unit": "WEEKS", "value": 1}}));
    assert_eq!(x.path(), Some("sampling.unit"));
    let x = e(json!([{"type": "sum"}, {"type": "max", "extent": true}]));
    assert_eq!(x.path(), Some("[1].extent"));
    assert!(e(json!({"size": 1})).to_string().contains("missing aggregation field 'type'"));
    // A zero size is refused when the buckets are laid out, not when parsed.
    let x = Aggregation::Bucket { kind: BucketKind::Sum, size: Some(Duration::millis(0)), extent: None }
        .apply(1)
        .unwrap()
        .session(TimeRange::new(0, 40), BucketStrategy::End, None)
        .err()
        .unwrap();
    assert!(matches!(x, QueryError::Layout(_)), "{x}");
}

#[test]
fn template_and_group_unique() {
    // tpl: 0 for every bucket, data or not.
    assert_eq!(run("tpl(10ms)", DATA), vec![(10, 0.0), (20, 0.0), (30, 0.0), (40, 0.0)]);
    // group-unique: per bucket, the samples by timestamp; the first of a
    // timestamp wins (series a is fed before b).
    let inst = Aggregation::from_json(&json!({"type": "group-unique", "size": "20ms"})).unwrap().apply(1).unwrap();
    let mut s = inst.session(TimeRange::new(0, 40), BucketStrategy::End, None).unwrap();
    s.update(&series("a"), &[10, 30], &[1.0, 2.0]).unwrap();
    s.update(&series("b"), &[10, 20], &[5.0, 4.0]).unwrap();
    let g = s.finish().unwrap();
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].values.type_name(), "groups");
    assert_eq!(
        g[0].values.to_json(),
        json!([
            [20, [{"type": "points", "data": [[10, 1.0], [20, 4.0]]}]],
            [40, [{"type": "points", "data": [[30, 2.0]]}]],
        ])
    );
}

#[test]
fn tdigest_parses_and_takes_no_points() {
    let a = Aggregation::from_json(&json!({"type": "tdigest", "sampling": {"unit": "seconds", "value": 1}})).unwrap();
    assert_eq!(Aggregation::from_json(&a.to_json()).unwrap(), a);
    let grouped = json!({"type": "group", "of": null, "each": [{"type": "tdigest"}]});
    let inst = Aggregation::from_json(&grouped).unwrap().apply(10).unwrap();
    assert!(inst.uses_tdigest());
    let mut s = inst.session(TimeRange::new(0, 40), BucketStrategy::End, None).unwrap();
    s.update(&series("a"), &[10], &[1.0]).unwrap();
    assert!(s.finish().unwrap().is_empty());
    assert!(!instance("sum(10ms)").uses_tdigest());
}

#[test]
fn fractional_sampling_values() {
    let size = |sampling: serde_json::Value| match Aggregation::from_json(&json!({"type": "sum", "sampling": sampling}))
        .unwrap()
    {
        Aggregation::Bucket { size, extent, .. } => (size.map(|d| d.to_millis()), extent.map(|d| d.to_millis())),
        other => panic!("{other:?}"),
    };
    // Grafana's 200 ms and 290 ms intervals, in seconds.
    assert_eq!(size(json!({"unit": "seconds", "value": 0.2})), (Some(200), Some(200)));
    assert_eq!(size(json!({"unit": "seconds", "value": 0.29})), (Some(290), Some(290)));
    assert_eq!(size(json!({"unit": "minutes", "value": 1.5, "extent": 3})), (Some(90_000), Some(180_000)));
    // No time group-by: the default size.
    assert_eq!(size(json!({"unit": "seconds", "value": null})), (None, None));
    // A number of milliseconds is truncated, as Heroic reads it into a long.
    assert_eq!(size(json!({"value": 2.7})), (Some(2), Some(2)));
}

#[test]
fn group_filters_take_no_inner_aggregation() {
    for of in [json!(null), json!({"type": "empty"})] {
        assert!(Aggregation::from_json(&json!({"type": "topk", "k": 2, "of": of})).is_ok(), "{of}");
    }
    let e = Aggregation::from_json(&json!({"type": "abovek", "k": 2, "of": {"type": "sum"}})).unwrap_err();
    assert_eq!(e.path(), Some("of"));
}
