//! `POST /api/v1/write`: Prometheus remote-write 1.0 and 2.0 (see
//! [`crate::prometheus::remote_write`] for the mapping,
//! [`crate::prometheus::remote_write_v2`] for 2.0's message).
//!
//! Answers as Prometheus' own receiver does, so that senders retry exactly
//! what may succeed later: 204 once every series is durably written; 400
//! for a body that can never be stored (the sender drops it); 415 for a
//! content type or encoding this node does not read (another message, or
//! an uncompressed body); 503 with `Retry-After` when a backend failed
//! transiently, 500 for other failures (the sender retries both). A 2.0
//! answer says how many samples were written
//! (`X-Prometheus-Remote-Write-Samples-Written` and the histogram and
//! exemplar counts, both 0 here), as 2.0 asks.

use warp::http::StatusCode;
use warp::Reply;

use crate::http::error::{ApiError, ApiResult};
use crate::http::write::write_admitted;
use crate::node::Node;
use crate::prometheus::remote_write::{self, DecodeError};
use crate::prometheus::remote_write_v2;

/// What remote-write senders put in `Content-Type`, with
/// `;proto=<message>` (1.0's when absent). Required: the route checks it
/// with the other checks of a route that changes data
/// (`access::may_change_as`), so [`check_headers`] reads only the `proto`
/// parameter.
pub const PROTOBUF: &str = "application/x-protobuf";
const V1_MESSAGE: &str = "prometheus.WriteRequest";
const V2_MESSAGE: &str = "io.prometheus.write.v2.Request";

/// Which protocol a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// Checks the headers of a [`PROTOBUF`] body: one of the two messages,
/// snappy-encoded.
fn check_headers(content_type: Option<&str>, encoding: Option<&str>) -> ApiResult<Version> {
    let unsupported = |m: String| ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, m);
    let mut version = Version::V1;
    if let Some(ct) = content_type {
        for param in ct.split(';').skip(1).map(str::trim) {
            if let Some(proto) = param.strip_prefix("proto=") {
                version = match proto.trim_matches('"') {
                    V1_MESSAGE => Version::V1,
                    V2_MESSAGE => Version::V2,
                    other => {
                        return Err(unsupported(format!(
                            "remote-write message {other:?} is not read here: this node reads {V1_MESSAGE} \
                             (remote-write 1.0) and {V2_MESSAGE} (2.0)"
                        )))
                    }
                };
            }
        }
    }
    match encoding {
        Some(e) if e.trim().eq_ignore_ascii_case("snappy") => Ok(version),
        Some(e) => Err(unsupported(format!("content encoding {e:?} is not read here: remote-write bodies are snappy"))),
        None => Err(unsupported("the body has no Content-Encoding: remote-write bodies are snappy".to_string())),
    }
}

pub async fn handle(
    node: &Node,
    content_type: Option<String>,
    encoding: Option<String>,
    body: &[u8],
) -> ApiResult<warp::reply::Response> {
    let version = check_headers(content_type.as_deref(), encoding.as_deref())?;
    let limit = usize::try_from(node.server.max_write_body_bytes).unwrap_or(usize::MAX);
    let decoded = match version {
        Version::V1 => remote_write::decode(body, limit),
        Version::V2 => remote_write_v2::decode(body, limit),
    }
    .map_err(|e| match e {
        DecodeError::TooLarge { .. } | DecodeError::DecodesTooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        e => ApiError::bad_request(e.to_string()),
    })?;
    let d = decoded.dropped;
    node.telemetry.writes.dropped(&d);
    if d.non_finite > 0 || d.histograms > 0 {
        tracing::debug!(non_finite = d.non_finite, native_histograms = d.histograms, "remote write: samples dropped");
    }
    let samples = write_admitted(node, decoded.batches).await?;
    let mut reply = StatusCode::NO_CONTENT.into_response();
    if version == Version::V2 {
        let headers = reply.headers_mut();
        headers.insert("x-prometheus-remote-write-samples-written", samples.into());
        headers.insert("x-prometheus-remote-write-histograms-written", 0.into());
        headers.insert("x-prometheus-remote-write-exemplars-written", 0.into());
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::{check_headers, Version};

    #[test]
    fn headers_of_remote_write_1_0_and_2_0_are_read_and_others_refused() {
        let version = |ct| check_headers(Some(ct), Some("snappy")).unwrap();
        assert_eq!(version("application/x-protobuf"), Version::V1);
        assert_eq!(version("application/x-protobuf;proto=prometheus.WriteRequest"), Version::V1);
        assert_eq!(version("application/x-protobuf; proto=io.prometheus.write.v2.Request"), Version::V2);
        for (ct, enc) in [
            (Some("application/x-protobuf;proto=io.prometheus.write.v3.Request"), Some("snappy")),
            (Some("application/x-protobuf"), None),
            (Some("application/x-protobuf"), Some("gzip")),
        ] {
            let e = check_headers(ct, enc).unwrap_err();
            assert_eq!(e.status, 415, "{ct:?} {enc:?}");
        }
    }
}
