//! Consumer schemas: raw message bytes → metrics.
//!
//! - `spotify100`: Heroic's `Spotify100` JSON, one metric per message,
//!   versions `1.x.x` (`"value": <double>`) and `2.x.x`
//!   (`"value": {"doubleValue": d}` or `{"distributionValue": "<base64>"}`).
//! - `spotify100-proto`: Heroic's `Spotify100Proto`, a Snappy-compressed
//!   (raw block format) protobuf `Batch` of metrics.
//!
//! A distribution value is a t-digest serialised as Heroic's clients write
//! it (com.tdunning `MergingDigest`); it is checked to decode as one here,
//! so that a bad sketch is refused with its message rather than stored.
//!
//! A message that does not decode or validate is an [`InvalidMessage`]; the
//! pipeline counts it, logs a sample and skips it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use heroic_plugin_api::types::Series;
use serde::Deserialize;

/// One decoded sample of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub series: Series,
    pub time: i64,
    pub value: Value,
}

/// The value of a metric: a point, or a distribution point.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Double(f64),
    /// A serialised t-digest, checked to decode as one.
    Distribution(Vec<u8>),
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidMessage {
    /// Not JSON / not protobuf / not Snappy, or a field of the wrong type.
    Malformed(String),
    /// Decoded, but a required field is missing or out of range, or a
    /// distribution value is not a t-digest.
    Invalid(String),
}

impl InvalidMessage {
    /// Short name used for the per-reason counters in `/status`.
    pub fn reason(&self) -> &'static str {
        match self {
            InvalidMessage::Malformed(_) => "malformed",
            InvalidMessage::Invalid(_) => "invalid",
        }
    }
}

impl fmt::Display for InvalidMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidMessage::Malformed(m) => write!(f, "malformed message: {m}"),
            InvalidMessage::Invalid(m) => write!(f, "invalid message: {m}"),
        }
    }
}

/// The schema a consumer's messages are decoded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schema {
    /// `spotify100`: JSON, versions 1 and 2.
    #[default]
    Spotify100,
    /// `spotify100-proto`: Snappy-compressed protobuf batches.
    Spotify100Proto,
}

impl Schema {
    pub const NAMES: [&'static str; 2] = ["spotify100", "spotify100-proto"];

    pub fn name(self) -> &'static str {
        match self {
            Schema::Spotify100 => "spotify100",
            Schema::Spotify100Proto => "spotify100-proto",
        }
    }

    /// Decodes one message into its metrics (exactly one for JSON, any
    /// number for a protobuf batch).
    pub fn decode(self, payload: &[u8]) -> Result<Vec<Metric>, InvalidMessage> {
        match self {
            Schema::Spotify100 => decode_json(payload).map(|m| vec![m]),
            Schema::Spotify100Proto => decode_proto(payload),
        }
    }
}

impl FromStr for Schema {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        // Heroic's class names are accepted too, so configs translate 1:1.
        match s {
            "spotify100" | "com.spotify.heroic.consumer.schemas.Spotify100" => Ok(Schema::Spotify100),
            "spotify100-proto" | "com.spotify.heroic.consumer.schemas.Spotify100Proto" => Ok(Schema::Spotify100Proto),
            other => Err(format!("unknown consumer schema {other:?}; known: {}", Schema::NAMES.join(", "))),
        }
    }
}

impl<'de> Deserialize<'de> for Schema {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The JSON message; every field optional so that a missing one gives a
/// validation message naming it rather than a serde error.
#[derive(Deserialize)]
struct JsonMetric {
    version: Option<String>,
    key: Option<String>,
    host: Option<String>,
    time: Option<i64>,
    #[serde(default)]
    attributes: Option<BTreeMap<String, Option<String>>>,
    #[serde(default)]
    resource: Option<BTreeMap<String, Option<String>>>,
    value: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JsonValueV2 {
    double_value: Option<f64>,
    distribution_value: Option<String>,
}

fn invalid(m: impl Into<String>) -> InvalidMessage {
    InvalidMessage::Invalid(m.into())
}

fn decode_json(payload: &[u8]) -> Result<Metric, InvalidMessage> {
    let m: JsonMetric = serde_json::from_slice(payload).map_err(|e| InvalidMessage::Malformed(e.to_string()))?;
    let version = m.version.ok_or_else(|| invalid("version: field must be defined"))?;
    let major = version.split('.').next().unwrap_or("");
    let value = m.value.ok_or_else(|| invalid("value: field must be defined"))?;
    let value = match major {
        "1" => Value::Double(value.as_f64().ok_or_else(|| invalid(format!("value: expected a number, got {value}")))?),
        "2" => {
            let v: JsonValueV2 = serde_json::from_value(value).map_err(|e| {
                invalid(format!(
                    "value: expected {{\"doubleValue\": d}} or {{\"distributionValue\": \"<base64>\"}}: {e}"
                ))
            })?;
            match (v.double_value, v.distribution_value) {
                (Some(d), None) => Value::Double(d),
                (None, Some(b64)) => Value::Distribution(distribution_from_base64(&b64)?),
                (Some(_), Some(_)) => return Err(invalid("value: both doubleValue and distributionValue given")),
                (None, None) => return Err(invalid("value: field must be defined")),
            }
        }
        _ => return Err(invalid(format!("unsupported version {version:?} (1.x.x and 2.x.x are)"))),
    };
    let key = m.key.filter(|k| !k.is_empty()).ok_or_else(|| invalid("key: field must be defined"))?;
    let time = m.time.ok_or_else(|| invalid("time: field must be defined"))?;
    check(time, &value)?;
    // Null attribute values are dropped; `host` becomes the `host` tag.
    let mut tags: BTreeMap<String, String> =
        m.attributes.unwrap_or_default().into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
    if let Some(host) = m.host {
        tags.insert("host".into(), host);
    }
    let resource = m.resource.unwrap_or_default().into_iter().filter_map(|(k, v)| v.map(|v| (k, v)));
    Ok(Metric { series: Series::new(key, tags, resource), time, value })
}

fn check(time: i64, value: &Value) -> Result<(), InvalidMessage> {
    if time <= 0 {
        return Err(invalid(format!("time: must be a positive number of milliseconds, got {time}")));
    }
    match value {
        Value::Double(d) if !d.is_finite() => Err(invalid(format!("value: must be finite, got {d}"))),
        _ => Ok(()),
    }
}

/// Jackson, which Heroic's clients and server use for `byte[]`, writes
/// standard base64 with padding but reads it without: both are taken.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

fn distribution_from_base64(b64: &str) -> Result<Vec<u8>, InvalidMessage> {
    let bytes = BASE64.decode(b64).map_err(|e| invalid(format!("value: distributionValue is not base64: {e}")))?;
    check_distribution("value: distributionValue", bytes)
}

/// Refuses bytes that are not a t-digest: stored, they would fail every
/// query that reads them.
fn check_distribution(field: &str, bytes: Vec<u8>) -> Result<Vec<u8>, InvalidMessage> {
    match heroic_query::distribution::decode(&bytes) {
        Ok(_) => Ok(bytes),
        Err(e) => Err(invalid(format!("{field} is not a serialised t-digest: {e}"))),
    }
}

/// Heroic's `spotify100.proto`, written out for prost's derive.
pub mod proto {
    use std::collections::HashMap;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metric {
        #[prost(string, tag = "1")]
        pub key: String,
        /// Milliseconds.
        #[prost(int64, tag = "2")]
        pub time: i64,
        /// Used when `distribution_type_value` is absent.
        #[prost(double, tag = "3")]
        pub value: f64,
        #[prost(map = "string, string", tag = "4")]
        pub tags: HashMap<String, String>,
        #[prost(map = "string, string", tag = "5")]
        pub resource: HashMap<String, String>,
        #[prost(message, optional, tag = "6")]
        pub distribution_type_value: Option<Value>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Batch {
        #[prost(message, repeated, tag = "1")]
        pub metric: Vec<Metric>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        #[prost(oneof = "value::Value", tags = "1, 2")]
        pub value: Option<value::Value>,
    }

    pub mod value {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            #[prost(double, tag = "1")]
            DoubleValue(f64),
            #[prost(bytes, tag = "2")]
            DistributionValue(Vec<u8>),
        }
    }

    /// Encodes a batch the way producers do (protobuf, then raw Snappy).
    pub fn encode_batch(batch: &Batch) -> Vec<u8> {
        let bytes = prost::Message::encode_to_vec(batch);
        snap::raw::Encoder::new().compress_vec(&bytes).expect("snappy compression of an in-memory buffer")
    }
}

/// Bytes a compressed message may have once decompressed, at most.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;

/// Metrics one `spotify100-proto` message may hold, at most: bounds the
/// memory of a message of tiny metrics (a few bytes each on the wire, a
/// hundred or so decoded).
pub const MAX_METRICS_PER_MESSAGE: usize = 1_000_000;

/// A protobuf batch is all or nothing (its metrics cannot be acknowledged
/// separately anyway): one bad metric refuses the message.
///
/// The batch's metrics are decoded one at a time and checked as they come,
/// not into a `Vec` of protobuf structs first: an empty metric is two bytes
/// on the wire but a whole struct in memory, so decoding the batch at once
/// would let a small message ask for gigabytes.
fn decode_proto(payload: &[u8]) -> Result<Vec<Metric>, InvalidMessage> {
    use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};
    use prost::Message;
    // The size is declared by the sender in the first bytes: checked before
    // anything is allocated for it, so five bytes cannot ask for 4 GiB.
    let declared = snap::raw::decompress_len(payload)
        .map_err(|e| InvalidMessage::Malformed(format!("not Snappy-compressed: {e}")))?;
    if declared > MAX_DECOMPRESSED_BYTES {
        return Err(InvalidMessage::Malformed(format!(
            "declares {declared} bytes once decompressed, more than the {MAX_DECOMPRESSED_BYTES} a message may have"
        )));
    }
    let bytes = snap::raw::Decoder::new()
        .decompress_vec(payload)
        .map_err(|e| InvalidMessage::Malformed(format!("not Snappy-compressed: {e}")))?;
    let not_batch = |e: prost::DecodeError| InvalidMessage::Malformed(format!("not a protobuf Batch: {e}"));
    let mut buf = bytes.as_slice();
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf).map_err(not_batch)?;
        if tag != 1 || wire_type != WireType::LengthDelimited {
            // Unknown fields are skipped, as protobuf decoders do.
            skip_field(wire_type, tag, &mut buf, DecodeContext::default()).map_err(not_batch)?;
            continue;
        }
        let len = usize::try_from(decode_varint(&mut buf).map_err(not_batch)?).unwrap_or(usize::MAX);
        if len > buf.len() {
            return Err(InvalidMessage::Malformed(
                "not a protobuf Batch: a metric runs past the end of the message".into(),
            ));
        }
        let (field, rest) = buf.split_at(len);
        buf = rest;
        if out.len() == MAX_METRICS_PER_MESSAGE {
            return Err(invalid(format!("more than {MAX_METRICS_PER_MESSAGE} metrics in one message")));
        }
        let m = proto::Metric::decode(field).map_err(not_batch)?;
        out.push(metric_from_proto(m)?);
    }
    Ok(out)
}

fn metric_from_proto(m: proto::Metric) -> Result<Metric, InvalidMessage> {
    if m.key.is_empty() {
        return Err(invalid("key: field must be defined"));
    }
    let value = match m.distribution_type_value.and_then(|v| v.value) {
        Some(proto::value::Value::DoubleValue(d)) => Value::Double(d),
        Some(proto::value::Value::DistributionValue(b)) => {
            Value::Distribution(check_distribution("distribution_value", b)?)
        }
        None => Value::Double(m.value),
    };
    check(m.time, &value)?;
    Ok(Metric { series: Series::new(m.key, m.tags, m.resource), time: m.time, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use heroic_plugin_api::testkit::sketch::tdigest_verbose;

    fn json(s: &str) -> Result<Metric, InvalidMessage> {
        Schema::Spotify100.decode(s.as_bytes()).map(|mut v| v.remove(0))
    }

    #[test]
    fn v1_with_host_attributes_and_resource() {
        let m = json(r#"{"version":"1.1.0","key":"cpu","host":"h1","time":1000,"attributes":{"what":"idle","gone":null},"resource":{"pod":"p1"},"value":0.5}"#).unwrap();
        assert_eq!(m.series, Series::new("cpu", [("host", "h1"), ("what", "idle")], [("pod", "p1")]));
        assert_eq!((m.time, m.value), (1000, Value::Double(0.5)));
    }

    #[test]
    fn v1_integer_value_and_no_maps() {
        let m = json(r#"{"version":"1.0.0","key":"k","time":5,"value":3}"#).unwrap();
        assert_eq!(m.series, Series::key_only("k"));
        assert_eq!(m.value, Value::Double(3.0));
    }

    #[test]
    fn v2_double_value() {
        let m = json(r#"{"version":"2.0.0","key":"k","time":7,"attributes":{"a":"b"},"value":{"doubleValue":1.25}}"#)
            .unwrap();
        assert_eq!((m.time, m.value), (7, Value::Double(1.25)));
        assert_eq!(m.series.tags.len(), 1);
    }

    fn v2_distribution(b64: &str) -> String {
        format!(r#"{{"version":"2.0.0","key":"k","host":"h","time":7,"value":{{"distributionValue":"{b64}"}}}}"#)
    }

    #[test]
    fn v2_distribution_value_is_decoded() {
        let bytes = tdigest_verbose(&[1.0, 2.0, 3.0]);
        let m = json(&v2_distribution(&base64::engine::general_purpose::STANDARD.encode(&bytes))).unwrap();
        assert_eq!(m.series, Series::new("k", [("host", "h")], [] as [(&str, &str); 0]));
        assert_eq!((m.time, m.value), (7, Value::Distribution(bytes.clone())));
        // Without padding too, as Jackson reads it.
        let m = json(&v2_distribution(&base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes))).unwrap();
        assert_eq!(m.value, Value::Distribution(bytes));
    }

    #[test]
    fn v2_distribution_that_is_not_a_tdigest_is_invalid() {
        let e = json(&v2_distribution("not base64!")).unwrap_err();
        assert_eq!(e.reason(), "invalid");
        assert!(e.to_string().contains("not base64"), "{e}");
        // Two bytes: base64, but no t-digest.
        let e = json(&v2_distribution("AAE=")).unwrap_err();
        assert_eq!(e.reason(), "invalid");
        assert!(e.to_string().contains("not a serialised t-digest"), "{e}");
        let e = json(r#"{"version":"2.0.0","key":"k","time":7,"value":{"distributionValue":12}}"#).unwrap_err();
        assert_eq!(e.reason(), "invalid");
        let both = format!(
            r#"{{"version":"2.0.0","key":"k","time":7,"value":{{"doubleValue":1,"distributionValue":"{}"}}}}"#,
            base64::engine::general_purpose::STANDARD.encode(tdigest_verbose(&[1.0]))
        );
        assert!(json(&both).unwrap_err().to_string().contains("both"));
        // A good sketch does not excuse a bad time.
        let no_time = format!(
            r#"{{"version":"2.0.0","key":"k","time":0,"value":{{"distributionValue":"{}"}}}}"#,
            base64::engine::general_purpose::STANDARD.encode(tdigest_verbose(&[1.0]))
        );
        assert!(json(&no_time).unwrap_err().to_string().contains("time"));
    }

    #[test]
    fn invalid_json_messages() {
        let cases = [
            ("not json", "malformed"),
            (r#"{"key":"k","time":1,"value":1}"#, "version"),
            (r#"{"version":"3.0.0","key":"k","time":1,"value":1}"#, "unsupported version"),
            (r#"{"version":"1.0.0","time":1,"value":1}"#, "key"),
            (r#"{"version":"1.0.0","key":"","time":1,"value":1}"#, "key"),
            (r#"{"version":"1.0.0","key":"k","value":1}"#, "time"),
            (r#"{"version":"1.0.0","key":"k","time":0,"value":1}"#, "time"),
            (r#"{"version":"1.0.0","key":"k","time":1}"#, "value"),
            (r#"{"version":"1.0.0","key":"k","time":1,"value":"x"}"#, "value"),
            (r#"{"version":"2.0.0","key":"k","time":1,"value":2.0}"#, "value"),
            (r#"{"version":"2.0.0","key":"k","time":1,"value":{}}"#, "value"),
            (r#"{"version":"1.0.0","key":"k","time":"soon","value":1}"#, "malformed"),
        ];
        for (input, expect) in cases {
            let e = json(input).unwrap_err();
            assert!(e.to_string().contains(expect), "{input}: {e}");
        }
    }

    fn proto_metric(key: &str, time: i64, value: f64) -> proto::Metric {
        proto::Metric { key: key.into(), time, value, ..Default::default() }
    }

    #[test]
    fn proto_batch() {
        let mut a = proto_metric("cpu", 1000, 1.0);
        a.tags.insert("host".into(), "h".into());
        a.resource.insert("pod".into(), "p".into());
        let mut b = proto_metric("mem", 2000, 0.0);
        b.distribution_type_value = Some(proto::Value { value: Some(proto::value::Value::DoubleValue(9.5)) });
        let payload = proto::encode_batch(&proto::Batch { metric: vec![a, b] });
        let metrics = Schema::Spotify100Proto.decode(&payload).unwrap();
        assert_eq!(metrics.len(), 2);
        assert_eq!(metrics[0].series, Series::new("cpu", [("host", "h")], [("pod", "p")]));
        assert_eq!((metrics[1].time, metrics[1].value.clone()), (2000, Value::Double(9.5)));
    }

    fn proto_distribution(key: &str, time: i64, bytes: Vec<u8>) -> proto::Metric {
        let mut m = proto_metric(key, time, 0.0);
        m.distribution_type_value = Some(proto::Value { value: Some(proto::value::Value::DistributionValue(bytes)) });
        m
    }

    #[test]
    fn proto_batch_mixing_doubles_and_distributions() {
        let sketch = tdigest_verbose(&[5.0, 6.0]);
        let batch = proto::Batch {
            metric: vec![proto_metric("cpu", 1000, 1.0), proto_distribution("latency", 1000, sketch.clone())],
        };
        let metrics = Schema::Spotify100Proto.decode(&proto::encode_batch(&batch)).unwrap();
        assert_eq!(metrics[0].value, Value::Double(1.0));
        assert_eq!((metrics[1].series.key.as_str(), &metrics[1].value), ("latency", &Value::Distribution(sketch)));
    }

    #[test]
    fn invalid_proto_messages() {
        assert_eq!(Schema::Spotify100Proto.decode(b"plain bytes").unwrap_err().reason(), "malformed");
        // Five bytes that declare 4 GiB once decompressed.
        let bomb = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert_eq!(snap::raw::decompress_len(&bomb).unwrap(), u32::MAX as usize);
        let e = Schema::Spotify100Proto.decode(&bomb).unwrap_err();
        assert!(e.to_string().contains("more than the"), "{e}");
        let not_proto = snap::raw::Encoder::new().compress_vec(&[0xff, 0xff, 0xff]).unwrap();
        assert_eq!(Schema::Spotify100Proto.decode(&not_proto).unwrap_err().reason(), "malformed");
        let no_key = proto::encode_batch(&proto::Batch { metric: vec![proto_metric("", 1, 1.0)] });
        assert!(Schema::Spotify100Proto.decode(&no_key).unwrap_err().to_string().contains("key"));
        let no_time = proto::encode_batch(&proto::Batch { metric: vec![proto_metric("k", 0, 1.0)] });
        assert!(Schema::Spotify100Proto.decode(&no_time).unwrap_err().to_string().contains("time"));
        // One bad sketch refuses the whole batch.
        let dist = proto_distribution("k", 1, vec![1]);
        let dist = proto::encode_batch(&proto::Batch { metric: vec![proto_metric("k", 1, 1.0), dist] });
        let e = Schema::Spotify100Proto.decode(&dist).unwrap_err();
        assert_eq!(e.reason(), "invalid");
        assert!(e.to_string().contains("distribution_value is not a serialised t-digest"), "{e}");
    }

    #[test]
    fn schema_names() {
        assert_eq!("spotify100".parse::<Schema>().unwrap(), Schema::Spotify100);
        assert_eq!(
            "com.spotify.heroic.consumer.schemas.Spotify100Proto".parse::<Schema>().unwrap(),
            Schema::Spotify100Proto
        );
        assert!("avro".parse::<Schema>().unwrap_err().contains("spotify100-proto"));
    }
}
