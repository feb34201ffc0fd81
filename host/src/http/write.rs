//! `POST /write`: Heroic's write body, parsed straight into a columnar batch.
//!
//! As in Heroic: a body without `data` writes nothing and answers 200
//! `{"times": []}`; a body without `series` writes to the empty series.
//! `points`, `distributionPoints`, `tdigestPoints` and `spreads` can be
//! stored (all but points by the metric backends that declare them; a node
//! with none answers 400). The plugin interface has no groups or
//! cardinality payloads, so those types are refused with a 400
//! `json-error` on `data.type` (Heroic accepts them; no backend of its
//! stores them either).

use std::collections::BTreeMap;
use std::fmt;

use heroic_plugin_api::samples::{SampleKind, SeriesSamples};
use heroic_plugin_api::types::{PointBatch, Series, SeriesPoints};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;

use crate::http::error::{parse_json, ApiError, ApiResult};
use crate::http::write_samples::{ColumnarSamples, ColumnarSpreads};
use crate::node::Node;
use crate::writer::WriteError;

/// A series as Heroic's JSON writes it.
#[derive(Deserialize, Debug, Default)]
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
    series: Option<SeriesJson>,
    data: Option<MetricCollectionJson>,
}

/// The metric types of Heroic's `MetricCollection`, and which this server
/// can store.
const STORABLE: [&str; 4] = ["points", DISTRIBUTIONS, TDIGESTS, SPREADS];
const DISTRIBUTIONS: &str = "distributionPoints";
const TDIGESTS: &str = "tdigestPoints";
const SPREADS: &str = "spreads";
const KNOWN_TYPES: [&str; 6] = ["points", "spreads", "distributionPoints", "tdigestPoints", "groups", "cardinality"];

/// `{"type": …, "data": […]}`. Read by hand so that, when `type` comes
/// first (as clients write it), the data of a type this server cannot store
/// is skipped rather than misread as points.
struct MetricCollectionJson {
    kind: String,
    data: Option<CollectionData>,
}

/// The `data` of a collection, read as its `type` says.
enum CollectionData {
    Points(PointBatch),
    /// `distributionPoints` or `tdigestPoints`: t-digest sketches.
    Sketches(SampleKind, ColumnarSamples),
    Spreads(ColumnarSpreads),
    /// `data` came before `type` (clients write `type` first): kept as a
    /// tree and read once the type is known.
    Deferred(serde_json::Value),
}

impl<'de> Deserialize<'de> for MetricCollectionJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CollectionVisitor;
        impl<'de> Visitor<'de> for CollectionVisitor {
            type Value = MetricCollectionJson;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a metric collection {\"type\": \"points\", \"data\": [[timestamp, value], …]}")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<MetricCollectionJson, A::Error> {
                let (mut kind, mut data): (Option<String>, Option<CollectionData>) = (None, None);
                while let Some(field) = map.next_key::<String>()? {
                    match (field.as_str(), kind.as_deref()) {
                        ("type", _) => kind = Some(map.next_value()?),
                        ("data", None) => data = Some(CollectionData::Deferred(map.next_value()?)),
                        ("data", Some("points")) => {
                            data = Some(CollectionData::Points(map.next_value::<ColumnarPoints>()?.0))
                        }
                        ("data", Some(DISTRIBUTIONS)) => {
                            data = Some(CollectionData::Sketches(SampleKind::DISTRIBUTION, map.next_value()?))
                        }
                        ("data", Some(TDIGESTS)) => {
                            data = Some(CollectionData::Sketches(SampleKind::TDIGEST, map.next_value()?))
                        }
                        ("data", Some(SPREADS)) => data = Some(CollectionData::Spreads(map.next_value()?)),
                        ("data", Some(_)) => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                        (other, _) => return Err(de::Error::unknown_field(other, &["type", "data"])),
                    }
                }
                let kind = kind.ok_or_else(|| de::Error::missing_field("type"))?;
                if let Some(CollectionData::Deferred(value)) = data {
                    let read = |e: serde_json::Error| de::Error::custom(e);
                    data = match kind.as_str() {
                        "points" => Some(CollectionData::Points(ColumnarPoints::deserialize(value).map_err(read)?.0)),
                        DISTRIBUTIONS => Some(CollectionData::Sketches(
                            SampleKind::DISTRIBUTION,
                            ColumnarSamples::deserialize(value).map_err(read)?,
                        )),
                        TDIGESTS => Some(CollectionData::Sketches(
                            SampleKind::TDIGEST,
                            ColumnarSamples::deserialize(value).map_err(read)?,
                        )),
                        SPREADS => Some(CollectionData::Spreads(ColumnarSpreads::deserialize(value).map_err(read)?)),
                        _ => None,
                    };
                }
                Ok(MetricCollectionJson { kind, data })
            }
        }
        d.deserialize_map(CollectionVisitor)
    }
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
    /// Time each backend write took, in microseconds (as Heroic reports it;
    /// clients treat them as opaque).
    times: Vec<u64>,
    // No `errors`: Heroic computed them but never serialised them, and
    // here a failure is an error reply.
}

/// A parsed `/write`: points, or samples of another kind.
#[derive(Debug)]
pub enum WriteBatch {
    /// `points`.
    Points(SeriesPoints),
    /// `distributionPoints` or `tdigestPoints` (checked to decode as
    /// t-digests), or `spreads`.
    Samples(SampleKind, SeriesSamples),
}

/// Parses a `/write` body into the batch to store; `None` when the body
/// has no `data` (nothing to write).
pub fn parse_write_body(body: &[u8]) -> ApiResult<Option<WriteBatch>> {
    // When the data of another type failed to read, the type is the error
    // to report.
    let body: WriteBody = parse_json(body).map_err(|e| refused_type(body).unwrap_or(e))?;
    let Some(data) = body.data else {
        return Ok(None);
    };
    check_type(&data.kind)?;
    let series = body.series.unwrap_or_default().into_series();
    // Heroic answers 500 for an empty batch; nothing went wrong on the server's side.
    let empty = || ApiError::bad_request("write batch must not be empty");
    match data.data.ok_or_else(|| ApiError::json("data.data", "missing field `data`"))? {
        CollectionData::Points(mut points) => {
            if points.is_empty() {
                return Err(empty());
            }
            points.sort_dedup();
            Ok(Some(WriteBatch::Points(SeriesPoints { series, points })))
        }
        CollectionData::Sketches(kind, ColumnarSamples { mut batch, bad }) => {
            if let Some((i, message)) = bad {
                return Err(ApiError::json(&format!("data.data[{i}].value"), message));
            }
            if batch.is_empty() {
                return Err(empty());
            }
            batch.sort_dedup();
            Ok(Some(WriteBatch::Samples(kind, SeriesSamples { series, samples: batch })))
        }
        CollectionData::Spreads(ColumnarSpreads(mut batch)) => {
            if batch.is_empty() {
                return Err(empty());
            }
            batch.sort_dedup();
            Ok(Some(WriteBatch::Samples(SampleKind::SPREAD, SeriesSamples { series, samples: batch })))
        }
        CollectionData::Deferred(_) => Err(ApiError::json("data.data", "missing field `data`")),
    }
}

/// Refuses a metric type this server cannot store (`groups`, `cardinality`)
/// or does not know.
fn check_type(kind: &str) -> ApiResult<()> {
    if STORABLE.contains(&kind) {
        return Ok(());
    }
    let message = if KNOWN_TYPES.contains(&kind) {
        format!(
            "metric type {kind:?} cannot be stored by this server: only \"points\", \"distributionPoints\", \"tdigestPoints\" and \"spreads\" can be written"
        )
    } else {
        format!("unknown metric type {kind:?}: expected one of {}", KNOWN_TYPES.join(", "))
    };
    Err(ApiError::json("data.type", message))
}

/// The type error of a body whose `data.type` is not points, if it is one
/// (read again, skipping everything else: only on the failure path).
fn refused_type(body: &[u8]) -> Option<ApiError> {
    #[derive(Deserialize)]
    struct Probe {
        data: Option<ProbeCollection>,
    }
    #[derive(Deserialize)]
    struct ProbeCollection {
        #[serde(rename = "type")]
        kind: String,
    }
    let probe: Probe = serde_json::from_slice(body).ok()?;
    check_type(&probe.data?.kind).err()
}

pub async fn handle(node: &Node, body: &[u8]) -> ApiResult<warp::reply::Json> {
    let Some(batch) = parse_write_body(body)? else {
        return Ok(warp::reply::json(&WriteResponse { times: Vec::new() }));
    };
    // A series the ingestion filter drops is not an error, as in Heroic:
    // nothing is written and no backend reports a time.
    let series = match &batch {
        WriteBatch::Points(b) => &b.series,
        WriteBatch::Samples(_, b) => &b.series,
    };
    if !node.consumers.admits(series) {
        tracing::debug!(key = %series.key, "write dropped by the ingestion filter");
        return Ok(warp::reply::json(&WriteResponse { times: Vec::new() }));
    }
    let report = match batch {
        WriteBatch::Points(batch) => {
            let series = batch.series.clone();
            node.write(vec![batch]).await.map_err(|e| write_failed(&series, e))?
        }
        WriteBatch::Samples(kind, batch) => {
            if !node.stores_samples(kind) {
                return Err(cannot_store(node, kind));
            }
            let series = batch.series.clone();
            node.writer.write_samples(&node.backends, kind, vec![batch]).await.map_err(|e| write_failed(&series, e))?
        }
    };
    let times = report.times_ns.iter().map(|ns| ns / 1_000).collect();
    Ok(warp::reply::json(&WriteResponse { times }))
}

/// The 400 for samples no metric backend of the node stores: sending them
/// again cannot help until the node is configured with one that does.
fn cannot_store(node: &Node, kind: SampleKind) -> ApiError {
    let backends: Vec<String> = node.backends.metrics.iter().map(|b| format!("{:?} ({})", b.id, b.plugin)).collect();
    ApiError::bad_request(format!(
        "metric type {:?} cannot be stored: no metrics backend of this node can store it (backends: {}); \
         the local plugin can",
        kind.name(),
        if backends.is_empty() { "none".to_string() } else { backends.join(", ") }
    ))
}

/// The answer to a write a backend refused, naming the series: 503 with
/// `Retry-After` when every failure is transient (try again later); 400
/// when every failure says this write can never be stored (an oversized
/// key, or a plugin that panics on this series: sending it again cannot
/// help); else 500.
/// Writes the batches of the series the ingestion filter admits, as one
/// write acknowledged once durable everywhere; the points written. A
/// failure names the first series: a retry sends them all again, so which
/// one failed matters little. (The routes that take many series in a
/// request: remote-write and OTLP.)
pub(crate) async fn write_admitted(node: &Node, batches: Vec<SeriesPoints>) -> ApiResult<usize> {
    let batches: Vec<_> = batches.into_iter().filter(|b| node.consumers.admits(&b.series)).collect();
    let points = batches.iter().map(|b| b.points.len()).sum();
    if let Some(first) = batches.first().map(|b| b.series.clone()) {
        node.write(batches).await.map_err(|e| write_failed(&first, e))?;
    }
    Ok(points)
}

pub(crate) fn write_failed(series: &Series, e: WriteError) -> ApiError {
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

    fn points(body: &[u8]) -> SeriesPoints {
        match parse_write_body(body).unwrap().unwrap() {
            WriteBatch::Points(sp) => sp,
            other => panic!("points expected, got {other:?}"),
        }
    }

    #[test]
    fn parses_heroics_example() {
        let body = br#"{"series":{"key":"foo","tags":{"site":"lon","host":"www.example.com"},"resource":{"pod":"p-1"}},
            "data":{"type":"points","data":[[1300001000000,84.0],[1300000000000,42]]}}"#;
        let sp = points(body);
        assert_eq!(sp.series.tag("site"), Some("lon"));
        assert_eq!(sp.series.resource_tag("pod"), Some("p-1"));
        assert_eq!(sp.points.to_pairs(), vec![(1300000000000, 42.0), (1300001000000, 84.0)]);
    }

    #[test]
    fn a_body_without_data_writes_nothing_and_without_series_the_empty_series() {
        assert!(parse_write_body(br#"{"series":{"key":"a","tags":{}}}"#).unwrap().is_none());
        assert!(parse_write_body(b"{}").unwrap().is_none());
        let sp = points(br#"{"data":{"type":"points","data":[[1,2]]}}"#);
        assert_eq!((sp.series.key.as_str(), sp.series.tags.len()), ("", 0));
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
    fn parses_spreads_in_either_field_order() {
        let spread = r#"{"count":3,"sum":6.0,"sum2":14.0,"min":1.0,"max":3.0}"#;
        for body in [
            format!(r#"{{"series":{{"key":"a"}},"data":{{"type":"spreads","data":[[20,{spread}],[10,{spread}]]}}}}"#),
            format!(r#"{{"series":{{"key":"a"}},"data":{{"data":[[20,{spread}],[10,{spread}]],"type":"spreads"}}}}"#),
        ] {
            let Some(WriteBatch::Samples(kind, ss)) = parse_write_body(body.as_bytes()).unwrap() else {
                panic!("samples expected")
            };
            assert_eq!(kind, SampleKind::SPREAD);
            assert_eq!(ss.samples.timestamps.as_slice(), &[10, 20], "sorted");
            let s = heroic_plugin_api::samples::Spread::decode(ss.samples.bytes(0)).unwrap();
            assert_eq!((s.count, s.sum, s.sum2, s.min, s.max), (3, 6.0, 14.0, 1.0, 3.0));
        }
        let cases: [(&str, &str); 4] = [
            (r#"[[1,{"count":1,"sum":1,"sum2":1,"min":1}]]"#, "missing field `max`"),
            (r#"[[1,{"count":-1,"sum":1,"sum2":1,"min":1,"max":1}]]"#, "invalid value"),
            (r#"[[1,{"count":1,"sum":1,"sum2":1,"min":1,"max":1,"avg":1}]]"#, "unknown field `avg`"),
            (r#"[]"#, "must not be empty"),
        ];
        for (data, expected) in cases {
            let body = format!(r#"{{"series":{{"key":"a"}},"data":{{"type":"spreads","data":{data}}}}}"#);
            let err = parse_write_body(body.as_bytes()).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert!(err.message.contains(expected), "{expected:?} not in {:?}", err.message);
        }
    }

    #[test]
    fn parses_tdigest_points_as_their_own_kind() {
        use base64::Engine as _;
        let sketch = base64::engine::general_purpose::STANDARD
            .encode(heroic_plugin_api::testkit::sketch::tdigest_verbose(&[1.0, 2.0]));
        for body in [
            format!(
                r#"{{"series":{{"key":"a"}},"data":{{"type":"tdigestPoints","data":[{{"value":"{sketch}","timestamp":9}}]}}}}"#
            ),
            format!(
                r#"{{"series":{{"key":"a"}},"data":{{"data":[{{"timestamp":9,"value":"{sketch}"}}],"type":"tdigestPoints"}}}}"#
            ),
        ] {
            let Some(WriteBatch::Samples(kind, ss)) = parse_write_body(body.as_bytes()).unwrap() else {
                panic!("samples expected")
            };
            assert_eq!((kind, ss.samples.timestamps.as_slice()), (SampleKind::TDIGEST, &[9][..]));
        }
        let bad = r#"{"series":{"key":"a"},"data":{"type":"tdigestPoints","data":[{"value":"AAAA","timestamp":1}]}}"#;
        let err = parse_write_body(bad.as_bytes()).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.extra["path"], "data.data[0].value", "{err:?}");
    }

    #[test]
    fn rejects_bad_bodies_with_clear_messages() {
        let cases: [(&[u8], &str); 8] = [
            (br#"{"series":{"key":"a"},"data":{"type":"points","data":[[1,null]]}}"#, "invalid type: null"),
            (br#"{"series":{"key":"a"},"data":{"type":"points","data":[[1,1e999]]}}"#, "number out of range"),
            (br#"{"series":{"key":"a"},"data":{"type":"points","data":[]}}"#, "must not be empty"),
            (br#"{"series":{"key":"a"},"data":{"type":"cardinality","data":[]}}"#, "cannot be stored"),
            (br#"{"series":{"key":"a"},"data":{"data":[[1,{"count":1}]],"type":"groups"}}"#, "cannot be stored"),
            (br#"{"series":{"key":"a"},"data":{"type":"events","data":[]}}"#, "unknown metric type"),
            (br#"{"series":{"key":"a"},"data":{"data":[[1,2]]}}"#, "missing field `type`"),
            (br#"{"series":{"key":"a","tagz":{}},"data":{"type":"points","data":[[1,2]]}}"#, "unknown field `tagz`"),
        ];
        for (body, expected) in cases {
            let err = parse_write_body(body).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert!(err.message.contains(expected), "{expected:?} not in {:?}", err.message);
        }
    }
}
