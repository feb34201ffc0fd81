//! `POST /write`: Heroic's write body, parsed straight into a columnar batch.

use std::collections::BTreeMap;
use std::fmt;

use heroic_plugin_api::types::{PointBatch, Series, SeriesPoints};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;

use crate::http::error::{parse_json, ApiError, ApiResult};
use crate::node::Node;
use crate::writer::WriteError;

/// A series as Heroic's JSON writes it.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct SeriesJson {
    pub key: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub resource: BTreeMap<String, String>,
}

impl SeriesJson {
    pub fn into_series(self) -> Series {
        Series::new(self.key, self.tags, self.resource)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteBody {
    series: SeriesJson,
    data: MetricCollectionJson,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricCollectionJson {
    #[serde(rename = "type")]
    kind: String,
    data: ColumnarPoints,
}

/// `[[t, v], …]` read directly into two columns: no allocation per point.
struct ColumnarPoints(PointBatch);

impl<'de> Deserialize<'de> for ColumnarPoints {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PointsVisitor;
        impl<'de> Visitor<'de> for PointsVisitor {
            type Value = ColumnarPoints;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of [timestamp, value] pairs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ColumnarPoints, A::Error> {
                let mut batch = PointBatch::with_capacity(seq.size_hint().unwrap_or(1024));
                while let Some((t, v)) = seq.next_element::<(i64, f64)>()? {
                    if !v.is_finite() {
                        return Err(de::Error::custom(format_args!(
                            "point {} at timestamp {t} has a non-finite value ({v}); only finite values can be stored",
                            batch.len()
                        )));
                    }
                    batch.push(t, v);
                }
                Ok(ColumnarPoints(batch))
            }
        }
        d.deserialize_seq(PointsVisitor)
    }
}

#[derive(Serialize)]
pub struct WriteResponse {
    /// Time each backend write took, in nanoseconds (as Heroic reports it).
    times: Vec<u64>,
    /// Always empty on success; failures are reported as an error reply
    /// (Heroic computed these but never returned them).
    errors: Vec<String>,
}

/// Parses a `/write` body into the batch to store.
pub fn parse_write_body(body: &[u8]) -> ApiResult<SeriesPoints> {
    let body: WriteBody = parse_json(body)?;
    if body.data.kind != "points" {
        return Err(ApiError::bad_request(format!(
            "unsupported metric type {:?}: only \"points\" can be written",
            body.data.kind
        )));
    }
    let mut points = body.data.data.0;
    if points.is_empty() {
        return Err(ApiError::bad_request("the write has no points"));
    }
    points.sort_dedup();
    Ok(SeriesPoints { series: body.series.into_series(), points })
}

pub async fn handle(node: &Node, body: &[u8]) -> ApiResult<warp::reply::Json> {
    let batch = parse_write_body(body)?;
    let series = batch.series.clone();
    let report = node.write(vec![batch]).await.map_err(|e| write_failed(&series, e))?;
    Ok(warp::reply::json(&WriteResponse { times: report.times_ns, errors: Vec::new() }))
}

/// The answer to a write a backend refused, naming the series: 503 with
/// `Retry-After` when every failure is transient (try again later); 400
/// when every failure says this write can never be stored (an oversized
/// key, or a plugin that panics on this series: sending it again cannot
/// help); else 500.
fn write_failed(series: &Series, e: WriteError) -> ApiError {
    let message = format!("series {}: {e}", series_label(series));
    if e.is_transient() {
        let hint = e.failures.iter().filter_map(|(_, _, pe)| pe.retry_after()).max();
        ApiError::retry_later(message, hint)
    } else if !e.failures.is_empty() && e.failures.iter().all(|(_, _, pe)| pe.kind.is_input_specific()) {
        ApiError::bad_request(message)
    } else {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

/// `key {tag=value, …}`, as a person reads a series.
fn series_label(series: &Series) -> String {
    let tags: Vec<String> = series.tags.iter().map(|t| format!("{}={}", t.key, t.value)).collect();
    format!("{} {{{}}}", series.key, tags.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use heroic_plugin_api::{ErrorKind, PluginError};

    #[test]
    fn parses_heroics_example() {
        let body = br#"{"series":{"key":"foo","tags":{"site":"lon","host":"www.example.com"},"resource":{"pod":"p-1"}},
            "data":{"type":"points","data":[[1300001000000,84.0],[1300000000000,42]]}}"#;
        let sp = parse_write_body(body).unwrap();
        assert_eq!(sp.series.tag("site"), Some("lon"));
        assert_eq!(sp.series.resource_tag("pod"), Some("p-1"));
        assert_eq!(sp.points.to_pairs(), vec![(1300000000000, 42.0), (1300001000000, 84.0)]);
    }

    #[test]
    fn refused_writes_answer_by_what_a_retry_could_do() {
        let series = Series::new("cpu", [("host", "a")], Vec::<(&str, &str)>::new());
        let failed = |errors: Vec<PluginError>| {
            let failures = errors.into_iter().map(|e| ("metrics", "b".to_string(), e)).collect();
            write_failed(&series, WriteError { failures })
        };
        let too_long = || PluginError::invalid_input("row key of series {key=x} is 5000 bytes, over the limit");
        let e = failed(vec![too_long()]);
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message.starts_with("series cpu {host=a}: ") && e.message.contains("row key of series"),
            "{}",
            e.message
        );
        let e = failed(vec![PluginError::unavailable("down").with_retry_after(std::time::Duration::from_millis(2500))]);
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.headers.iter().any(|(n, v)| n == warp::http::header::RETRY_AFTER && v == "3"), "{:?}", e.headers);
        assert_eq!(failed(vec![too_long(), PluginError::internal("x")]).status, StatusCode::INTERNAL_SERVER_ERROR);
        // A plugin that panics on this series will panic again: 400 too.
        assert_eq!(failed(vec![PluginError::new(ErrorKind::PANIC, "boom")]).status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn rejects_bad_bodies_with_clear_messages() {
        let cases: [(&[u8], &str); 5] = [
            (br#"{"series":{"key":"a"},"data":{"type":"points","data":[[1,null]]}}"#, "invalid type: null"),
            (br#"{"series":{"key":"a"},"data":{"type":"points","data":[[1,1e999]]}}"#, "number out of range"),
            (br#"{"series":{"key":"a"},"data":{"type":"points","data":[]}}"#, "no points"),
            (br#"{"series":{"key":"a"},"data":{"type":"spreads","data":[]}}"#, "unsupported metric type"),
            (br#"{"series":{"key":"a","tagz":{}},"data":{"type":"points","data":[[1,2]]}}"#, "unknown field `tagz`"),
        ];
        for (body, expected) in cases {
            let err = parse_write_body(body).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert!(err.message.contains(expected), "{expected:?} not in {:?}", err.message);
        }
    }
}
