//! Engine-level tests: Heroic's cluster cases through `plan` and a session,
//! request parsing, and a property test against a naive implementation.

use heroic_plugin_api::types::Series;
use heroic_query::aggregation::GroupKey;
use heroic_query::{plan, BatchRequest, BucketStrategy, Defaults, Filter, MetricValues, QueryMetrics, ResultGroup};
use proptest::prelude::*;
use serde_json::json;

fn s1() -> Series {
    Series::new("key", [("shared", "a"), ("host", "s1")], Vec::<(&str, &str)>::new())
}

fn s2() -> Series {
    Series::new("key", [("shared", "a"), ("host", "s2")], Vec::<(&str, &str)>::new())
}

/// The cluster IT data, s1 = {10:1, 30:2}, s2 = {10:1, 20:4}, over (0, 40].
fn cluster(hql: &str) -> Vec<ResultGroup> {
    let body = json!({"query": hql, "range": {"type": "absolute", "start": 0, "end": 40}});
    let p = plan(&QueryMetrics::from_json(&body).unwrap(), 1_000_000, &Defaults::default()).unwrap();
    let mut session = p.session(None).unwrap();
    session.update(&s1(), &[10, 30], &[1.0, 2.0]).unwrap();
    session.update(&s2(), &[10, 20], &[1.0, 4.0]).unwrap();
    session.finish().unwrap()
}

fn points(g: &ResultGroup) -> Vec<(i64, f64)> {
    match &g.values {
        MetricValues::Points(p) => p.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn basic_query() {
    let g = cluster("sum(10ms)");
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].series.len(), 2);
    assert_eq!(g[0].cadence, 10);
    assert_eq!(points(&g[0]), vec![(10, 2.0), (20, 4.0), (30, 2.0)]);
}

#[test]
fn plan_session_takes_the_lower_of_the_query_and_config_aggregation_limits() {
    let planned = |options: serde_json::Value| {
        let body =
            json!({"query": "sum(10ms)", "range": {"type": "absolute", "start": 0, "end": 40}, "options": options});
        plan(&QueryMetrics::from_json(&body).unwrap(), 1_000_000, &Defaults::default()).unwrap()
    };
    // sum(10ms) over (0, 40] sets up 4 buckets.
    let limit = |e: heroic_query::QueryError| matches!(e, heroic_query::QueryError::AggregationLimit { limit: 3 });
    assert!(planned(json!({})).session(Some(3)).err().is_some_and(limit));
    assert!(planned(json!({})).session(Some(4)).is_ok());
    assert!(planned(json!({"aggregationLimit": 3})).session(Some(1000)).err().is_some_and(limit));
    // The config's limit is a ceiling: a query cannot raise it.
    assert!(planned(json!({"aggregationLimit": 4})).session(Some(3)).err().is_some_and(limit));
    assert!(planned(json!({"aggregationLimit": 4})).session(None).is_ok());
}

#[test]
fn filter_last_query() {
    let g = cluster("average(10ms) by * | topk(2) | bottomk(1)");
    assert_eq!(g.len(), 1);
    assert_eq!(points(&g[0]), vec![(10, 1.0), (20, 4.0)]);
}

#[test]
fn delta_per_second_query() {
    let g = cluster("max | deltaPerSecond | notNegative");
    assert_eq!(g.len(), 1);
    assert_eq!(points(&g[0]), vec![(20, 300.0)]);
}

#[test]
fn cardinality_query() {
    let g = cluster("cardinality(10ms)");
    assert_eq!(points(&g[0]), vec![(10, 1.0), (20, 1.0), (30, 1.0), (40, 0.0)]);
    let g = cluster("cardinality(10ms, method=exact(includeKey=\"true\"))");
    assert_eq!(points(&g[0]), vec![(10, 2.0), (20, 1.0), (30, 1.0), (40, 0.0)]);
}

#[test]
fn grafana_batch_request() {
    let body = json!({"queries": {"A": {
        "filter": ["and", ["key", "k"], ["=", "host", "a"], ["!=", "x", "y"]],
        "aggregators": [{"type": "group", "of": ["host"], "each": [{"type": "average", "sampling": {"unit": "seconds", "value": 60}}]}],
        "features": ["com.spotify.heroic.distributed_aggregations"],
        "range": {"type": "relative", "unit": "HOURS", "value": 6}
    }, "B": {"query": "sum"}}, "range": {"type": "relative", "unit": "minutes", "value": 30}});
    let batch = BatchRequest::from_json(&body).unwrap();
    let now = 1_469_816_700_000;
    let a = plan(&batch.queries["A"], now, &Defaults::default()).unwrap();
    assert_eq!(
        a.filter,
        Filter::And(vec![Filter::not(Filter::match_tag("x", "y")), Filter::key("k"), Filter::match_tag("host", "a")])
    );
    assert_eq!(a.cadence, 60_000);
    // shift_range: end is now, so rounded and shifted back one cadence
    assert_eq!((a.range.start, a.range.end), (now - 6 * 3_600_000 - 60_000, now - 60_000));
    assert_eq!(a.bucket_strategy, BucketStrategy::End);
    let b = plan(&batch.queries["B"], now, &Defaults::default()).unwrap();
    // the batch range fills in; default size 30m/240 = 7.5 s → 5 s
    assert_eq!(b.raw_range.end - b.raw_range.start, 1_800_000);
    assert_eq!(b.cadence, 5_000);
}

#[test]
fn legacy_fields_options_and_features() {
    let body = json!({
        "key": "cpu", "tags": {"host": "a"}, "filter": ["+", "role"], "noCache": true,
        "range": {"type": "absolute", "start": 0, "end": 100},
        "aggregation": {"type": "sum", "size": "10ms"},
        "options": {"bucketStrategy": "start", "tracing": "DETAILED", "seriesLimit": 5, "failOnLimits": true},
        "features": ["-shift_range", "-com.spotify.heroic.end_bucket_stategy"],
        "clientContext": {"dashboard": "x"}
    });
    let q = QueryMetrics::from_json(&body).unwrap();
    let p = plan(&q, 50, &Defaults::default()).unwrap();
    assert_eq!(
        p.filter,
        Filter::And(vec![Filter::key("cpu"), Filter::match_tag("host", "a"), Filter::has_tag("role")])
    );
    assert_eq!((p.range.start, p.range.end), (0, 100));
    assert_eq!(p.bucket_strategy, BucketStrategy::Start);
    assert_eq!(p.options.series_limit, Some(5));
    assert_eq!(p.options.tracing, Some(heroic_query::request::Tracing::Detailed));
    assert_eq!(p.client_context, Some(json!({"dashboard": "x"})));
    // text/plain HQL
    let p = plan(
        &QueryMetrics::from_hql("sum(10ms) from points(0, 100) where $key = cpu"),
        1_000_000,
        &Defaults::default(),
    )
    .unwrap();
    assert_eq!(p.filter, Filter::key("cpu"));
    assert_eq!(p.cadence, 10);
}

#[test]
fn request_errors() {
    let err = |v: serde_json::Value| QueryMetrics::from_json(&v).unwrap_err().to_string();
    assert!(err(json!({"range": {"type": "relative", "unit": "WEEKS", "value": 1}})).contains("range.unit"));
    assert!(err(json!({"aggregation": {"type": "nope"}})).contains("aggregation.type"));
    assert!(err(json!({"features": ["bogus"]})).contains("unknown feature"));
    assert!(err(json!({"options": {"seriesLimit": -1}})).contains("options.seriesLimit"));
    assert!(err(json!({"filter": ["=", 1, 2]})).contains("filter[1]"));
    let e = BatchRequest::from_json(&json!({"queries": {"A": {"aggregation": {"type": "sum", "size": "1x"}}}}))
        .unwrap_err();
    assert_eq!(e.path(), Some("queries.A.aggregation.size"));
    let d = Defaults::default();
    let no_range = plan(&QueryMetrics::default(), 0, &d).unwrap_err();
    assert!(no_range.to_string().contains("Range must be present"));
    let hql = plan(&QueryMetrics::from_hql("sum(10ms) from points(1h) where"), 0, &d).unwrap_err();
    assert_eq!(hql.line_col(), Some((1, 32)));
    // Too many buckets is not a request error: it is found when the
    // session starts, and the host answers that query alone with it.
    let p = plan(&QueryMetrics::from_hql("sum(1ms) from points(0, 1000000)"), 2_000_000, &d).unwrap();
    let too_many = p.session(None).err().unwrap();
    assert!(matches!(too_many, heroic_query::QueryError::Layout(_)), "{too_many}");
    assert!(too_many.to_string().contains("buckets"), "{too_many}");
    // A batch without queries has no results.
    assert!(BatchRequest::from_json(&json!({})).unwrap().queries.is_empty());
}

/// Naive sum/min/max/count per host, bucketed like Heroic's end strategy.
fn naive(data: &[(u8, i64, f64)], size: i64, end: i64, f: &str) -> std::collections::BTreeMap<(String, i64), f64> {
    let mut out = std::collections::BTreeMap::new();
    let buckets: Vec<i64> = (1..=end / size).map(|i| i * size).collect();
    for host in 0..3u8 {
        let vals: Vec<&(u8, i64, f64)> = data.iter().filter(|d| d.0 == host).collect();
        if vals.is_empty() {
            continue;
        }
        for &b in &buckets {
            let inb: Vec<f64> = vals.iter().filter(|d| d.1 > b - size && d.1 <= b).map(|d| d.2).collect();
            let v = match f {
                "count" => Some(inb.len() as f64),
                _ if inb.is_empty() => None,
                "sum" => Some(inb.iter().sum()),
                "min" => inb.iter().copied().reduce(f64::min),
                _ => inb.iter().copied().reduce(f64::max),
            };
            if let Some(v) = v {
                out.insert((format!("h{host}"), b), v);
            }
        }
    }
    out
}

proptest! {
    #[test]
    fn bucket_aggregations_match_naive(
        data in prop::collection::vec((0u8..3, 1i64..=200, -1000i32..1000), 0..200),
        size in 1i64..50,
        f in prop::sample::select(vec!["sum", "min", "max", "count"]),
        chunk in 1usize..20,
    ) {
        let data: Vec<(u8, i64, f64)> = data.into_iter().map(|(h, t, v)| (h, t, v as f64)).collect();
        let end = 200 / size * size;
        let body = json!({"query": format!("{f}({size}ms) by host"), "range": {"type": "absolute", "start": 0, "end": end}, "features": ["-shift_range"]});
        let p = plan(&QueryMetrics::from_json(&body).unwrap(), 0, &Defaults::default()).unwrap();
        let mut session = p.session(None).unwrap();
        for host in 0..3u8 {
            let series = Series::new("k", [("host".to_string(), format!("h{host}"))], Vec::<(String, String)>::new());
            let mut pts: Vec<(i64, f64)> = data.iter().filter(|d| d.0 == host).map(|d| (d.1, d.2)).collect();
            pts.sort_by_key(|p| p.0);
            for c in pts.chunks(chunk) {
                let (ts, vs): (Vec<i64>, Vec<f64>) = c.iter().copied().unzip();
                session.update(&series, &ts, &vs).unwrap();
            }
        }
        let mut got = std::collections::BTreeMap::new();
        for g in session.finish().unwrap() {
            let host = g.key.get("host").cloned().unwrap();
            if let MetricValues::Points(p) = &g.values {
                for &(t, v) in p {
                    got.insert((host.clone(), t), v);
                }
            }
        }
        prop_assert_eq!(got, naive(&data, size, end, f));
        let _: GroupKey = GroupKey::new();
    }
}
