use std::collections::BTreeMap;
use std::io::Write;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, summary_data_point::ValueAtQuantile, AggregationTemporality, ExponentialHistogram,
    ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use proptest::prelude::*;

use super::translate::translate;
use super::{decode, DecodeError, Format};
use crate::prometheus::dropped::Dropped;

const T: u64 = 1_700_000_000_123_456_789; // ns
const MS: i64 = 1_700_000_000_123;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

fn number(attrs: Vec<KeyValue>, v: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        time_unix_nano: T,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric { name: name.into(), unit: unit.into(), data: Some(data), ..Default::default() }
}

fn request(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: resource, ..Default::default() }),
            scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// Every sample as `name{labels} t v`, sorted: easy to compare whole.
fn samples(request: &ExportMetricsServiceRequest) -> (Vec<String>, Dropped) {
    let t = translate(request, 1 << 20).unwrap();
    let mut out = Vec::new();
    for b in &t.batches {
        let labels: Vec<String> = b.series.tags.iter().map(|t| format!("{}={}", t.key, t.value)).collect();
        for (ts, v) in b.points.timestamps.iter().zip(b.points.values.iter()) {
            out.push(format!("{}{{{}}} {ts} {v}", b.series.key, labels.join(",")));
        }
    }
    out.sort();
    (out, t.dropped)
}

fn cumulative() -> i32 {
    AggregationTemporality::Cumulative as i32
}

#[test]
fn gauges_counters_histograms_and_summaries_become_prometheus_series() {
    let resource = vec![
        kv("service.name", "api"),
        kv("service.namespace", "shop"),
        kv("service.instance.id", "i-1"),
        kv("host.name", "h1"),
    ];
    let hist = HistogramDataPoint {
        attributes: vec![kv("route", "/a")],
        time_unix_nano: T,
        count: 6,
        sum: Some(12.5),
        bucket_counts: vec![1, 2, 3],
        explicit_bounds: vec![0.5, 1.0],
        ..Default::default()
    };
    let summary = SummaryDataPoint {
        time_unix_nano: T,
        count: 4,
        sum: 10.0,
        quantile_values: vec![
            ValueAtQuantile { quantile: 0.5, value: 2.0 },
            ValueAtQuantile { quantile: 0.99, value: 4.0 },
        ],
        ..Default::default()
    };
    let req = request(
        resource,
        vec![
            metric(
                "queue.depth",
                "{items}",
                Data::Gauge(Gauge { data_points: vec![number(vec![kv("queue", "q1")], 7.0)] }),
            ),
            metric(
                "http.requests",
                "",
                Data::Sum(Sum {
                    data_points: vec![NumberDataPoint {
                        time_unix_nano: T,
                        value: Some(number_data_point::Value::AsInt(42)),
                        ..Default::default()
                    }],
                    aggregation_temporality: cumulative(),
                    is_monotonic: true,
                }),
            ),
            metric(
                "pool.size",
                "By",
                Data::Sum(Sum {
                    data_points: vec![number(vec![], -3.0)],
                    aggregation_temporality: cumulative(),
                    is_monotonic: false,
                }),
            ),
            metric(
                "http.duration",
                "s",
                Data::Histogram(Histogram { data_points: vec![hist], aggregation_temporality: cumulative() }),
            ),
            metric("rpc.latency", "ms", Data::Summary(Summary { data_points: vec![summary] })),
        ],
    );
    let (got, dropped) = samples(&req);
    let job = "instance=i-1,job=shop/api";
    let want = [
        format!("http_duration_seconds_bucket{{{job},le=+Inf,route=/a}} {MS} 6"),
        format!("http_duration_seconds_bucket{{{job},le=0.5,route=/a}} {MS} 1"),
        format!("http_duration_seconds_bucket{{{job},le=1,route=/a}} {MS} 3"),
        format!("http_duration_seconds_count{{{job},route=/a}} {MS} 6"),
        format!("http_duration_seconds_sum{{{job},route=/a}} {MS} 12.5"),
        format!("http_requests_total{{{job}}} {MS} 42"),
        format!("pool_size_bytes{{{job}}} {MS} -3"),
        format!("queue_depth{{{job},queue=q1}} {MS} 7"),
        format!("rpc_latency_milliseconds_count{{{job}}} {MS} 4"),
        format!("rpc_latency_milliseconds_sum{{{job}}} {MS} 10"),
        format!("rpc_latency_milliseconds{{{job},quantile=0.5}} {MS} 2"),
        format!("rpc_latency_milliseconds{{{job},quantile=0.99}} {MS} 4"),
        format!("target_info{{host_name=h1,{job}}} {MS} 1"),
    ];
    let mut want: Vec<String> = want.into_iter().collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(dropped, Dropped::default());
}

#[test]
fn what_prometheus_drops_is_dropped_and_counted() {
    let delta = AggregationTemporality::Delta as i32;
    let mut stale = number(vec![], 1.0);
    stale.flags = 1;
    let mut no_time = number(vec![], 1.0);
    no_time.time_unix_nano = 0;
    let no_value = NumberDataPoint { time_unix_nano: T, ..Default::default() };
    let req = request(
        vec![kv("service.name", "svc")],
        vec![
            metric(
                "d",
                "",
                Data::Sum(Sum {
                    data_points: vec![number(vec![], 1.0), number(vec![], 2.0)],
                    aggregation_temporality: delta,
                    is_monotonic: true,
                }),
            ),
            metric(
                "dh",
                "",
                Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint { time_unix_nano: T, ..Default::default() }],
                    aggregation_temporality: delta,
                }),
            ),
            metric(
                "u",
                "",
                Data::Sum(Sum {
                    data_points: vec![number(vec![], 1.0)],
                    aggregation_temporality: 0,
                    is_monotonic: false,
                }),
            ),
            metric(
                "e",
                "",
                Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![ExponentialHistogramDataPoint { time_unix_nano: T, ..Default::default() }],
                    aggregation_temporality: cumulative(),
                }),
            ),
            metric(
                "g",
                "",
                Data::Gauge(Gauge {
                    data_points: vec![
                        stale,
                        no_time,
                        no_value,
                        number(vec![], f64::NAN),
                        number(vec![kv("__name__", "x"), kv("empty", "")], 5.0),
                    ],
                }),
            ),
            metric("...", "", Data::Gauge(Gauge { data_points: vec![number(vec![], 1.0)] })),
            Metric { name: "typeless".into(), ..Default::default() },
        ],
    );
    let (got, dropped) = samples(&req);
    // Only service.name: no target_info (nothing to add to `job`).
    assert_eq!(got, [format!("g{{job=svc}} {MS} 5")]);
    assert_eq!(dropped, Dropped { stale: 1, non_finite: 1, histograms: 1, delta: 4, invalid: 4 });
}

#[test]
fn attributes_that_sanitize_alike_are_joined_in_key_order() {
    let req = request(
        vec![],
        vec![metric(
            "m",
            "",
            Data::Gauge(Gauge { data_points: vec![number(vec![kv("a-b", "2"), kv("a.b", "1"), kv("9x", "n")], 1.0)] }),
        )],
    );
    let (got, _) = samples(&req);
    assert_eq!(got, [format!("m{{a_b=2;1,key_9x=n}} {MS} 1")]);
}

#[test]
fn a_request_that_would_expand_too_far_is_refused() {
    let hist = HistogramDataPoint {
        attributes: (0..20).map(|i| kv(&format!("k{i}"), &"v".repeat(100))).collect(),
        time_unix_nano: T,
        count: 1,
        bucket_counts: vec![0; 10_000],
        explicit_bounds: (0..10_000).map(f64::from).collect(),
        ..Default::default()
    };
    let req = request(
        vec![],
        vec![metric(
            "h",
            "",
            Data::Histogram(Histogram { data_points: vec![hist], aggregation_temporality: cumulative() }),
        )],
    );
    assert!(translate(&req, 1 << 20).is_err());
}

/// OTLP's JSON encoding as the specification's example writes it: 64-bit
/// integers as strings, enums as integers, lower camel case.
#[test]
fn json_bodies_are_read() {
    let body = br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
      "scopeMetrics":[{"scope":{"name":"s"},"metrics":[
        {"name":"c","unit":"1","sum":{"aggregationTemporality":2,"isMonotonic":true,
          "dataPoints":[{"asInt":"5","timeUnixNano":"1700000000123456789","attributes":[{"key":"n","value":{"intValue":"3"}}]}]}},
        {"name":"h","histogram":{"aggregationTemporality":2,"dataPoints":[{"timeUnixNano":"1700000000123456789",
          "count":"3","sum":2.5,"bucketCounts":["1","2"],"explicitBounds":[1]}]}}]}]}]}"#;
    let req = decode(body, Format::Json, false, 1 << 20).unwrap();
    let (got, _) = samples(&req);
    assert_eq!(
        got,
        [
            format!("c_total{{job=svc,n=3}} {MS} 5"),
            format!("h_bucket{{job=svc,le=+Inf}} {MS} 3"),
            format!("h_bucket{{job=svc,le=1}} {MS} 1"),
            format!("h_count{{job=svc}} {MS} 3"),
            format!("h_sum{{job=svc}} {MS} 2.5"),
        ]
    );
    assert!(matches!(decode(b"{\"resourceMetrics\": 3}", Format::Json, false, 1 << 20), Err(DecodeError::Json(_))));
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_bodies_are_read_and_bounded() {
    let req = request(vec![], vec![metric("m", "", Data::Gauge(Gauge { data_points: vec![number(vec![], 1.0)] }))]);
    let raw = prost::Message::encode_to_vec(&req);
    assert_eq!(decode(&gzip(&raw), Format::Protobuf, true, 1 << 20).unwrap(), req);
    // 64 MiB of zeros compress to ~64 KiB: refused at the limit, not
    // inflated whole.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(matches!(decode(&bomb, Format::Protobuf, true, 1 << 20), Err(DecodeError::TooLarge { limit: 1_048_576 })));
    assert!(matches!(decode(b"not gzip", Format::Protobuf, true, 1 << 20), Err(DecodeError::Gzip(_))));
}

proptest! {
    /// Any bytes, in any encoding: an answer, never a panic.
    #[test]
    fn any_body_is_answered(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for format in [Format::Protobuf, Format::Json] {
            if let Ok(req) = decode(&bytes, format, false, 1 << 16) {
                let _ = translate(&req, 1 << 20);
            }
            let _ = decode(&gzip(&bytes), format, true, 1 << 16);
        }
    }

    /// Whatever gauge values are sent come back, once per series and time.
    #[test]
    fn gauge_points_round_trip(points in proptest::collection::vec((1u64..1_000, -1e12f64..1e12, 0u8..3), 1..64)) {
        let data_points = points
            .iter()
            .map(|&(ms, v, host)| NumberDataPoint {
                time_unix_nano: ms * 1_000_000,
                value: Some(number_data_point::Value::AsDouble(v)),
                attributes: vec![kv("host", &host.to_string())],
                ..Default::default()
            })
            .collect();
        let req = request(vec![], vec![metric("g", "", Data::Gauge(Gauge { data_points }))]);
        let t = translate(&req, 1 << 20).unwrap();
        let mut want: BTreeMap<(String, i64), f64> = BTreeMap::new();
        for &(ms, v, host) in &points {
            want.insert((host.to_string(), ms as i64), v);
        }
        let mut got = BTreeMap::new();
        for b in &t.batches {
            let host = b.series.tags[0].value.to_string();
            for (ts, v) in b.points.timestamps.iter().zip(b.points.values.iter()) {
                got.insert((host.clone(), *ts), *v);
            }
        }
        prop_assert_eq!(got, want);
    }
}

/// Empty messages, two bytes each, would decode to fifty times their size:
/// refused before decoding; so are JSON's `{}`.
#[test]
fn bodies_that_decode_too_large_are_refused_before_decoding() {
    use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
    let req = ExportMetricsServiceRequest { resource_metrics: vec![ResourceMetrics::default(); 100_000] };
    let raw = prost::Message::encode_to_vec(&req);
    assert!(matches!(decode(&raw, Format::Protobuf, false, raw.len()), Err(DecodeError::DecodesTooLarge { .. })));
    let text = format!("{{\"resourceMetrics\":[{}{{}}]}}", "{},".repeat(99_999));
    assert!(matches!(
        decode(text.as_bytes(), Format::Json, false, text.len()),
        Err(DecodeError::DecodesTooLarge { .. })
    ));
    // An ordinary body under an ordinary limit is read (OTLP's small
    // nested messages are estimated at about eleven times their size).
    let ordinary = request(
        vec![kv("service.name", "svc")],
        vec![metric(
            "m",
            "",
            Data::Gauge(Gauge {
                data_points: (0..2_000).map(|i| number(vec![kv("i", &i.to_string())], 1.0)).collect(),
            }),
        )],
    );
    let raw = prost::Message::encode_to_vec(&ordinary);
    assert!(raw.len() < 100_000);
    assert!(decode(&raw, Format::Protobuf, false, 1 << 20).is_ok());
}
