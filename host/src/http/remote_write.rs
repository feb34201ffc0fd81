//! `POST /api/v1/write`: Prometheus remote-write 1.0 (see
//! [`crate::prometheus::remote_write`] for the mapping).
//!
//! Answers as Prometheus' own receiver does, so that senders retry exactly
//! what may succeed later: 204 once every series is durably written; 400
//! for a body that can never be stored (the sender drops it); 415 for a
//! content type or encoding this node does not read (remote-write 2.0, or
//! an uncompressed body); 503 with `Retry-After` when a backend failed
//! transiently, 500 for other failures (the sender retries both).

use warp::http::StatusCode;
use warp::Reply;

use crate::http::error::{ApiError, ApiResult};
use crate::http::write::write_failed;
use crate::node::Node;
use crate::prometheus::remote_write::{decode, DecodeError};

/// What remote-write 1.0 senders put in `Content-Type`; 2.0 adds
/// `;proto=io.prometheus.write.v2.Request`. Required: the route checks it
/// with the other checks of a route that changes data
/// (`access::may_change_as`), so [`check_headers`] reads only the `proto`
/// parameter.
pub const PROTOBUF: &str = "application/x-protobuf";
const V1_MESSAGE: &str = "prometheus.WriteRequest";

/// Checks the headers of a [`PROTOBUF`] body: remote-write 1.0's message,
/// snappy-encoded.
fn check_headers(content_type: Option<&str>, encoding: Option<&str>) -> ApiResult<()> {
    let unsupported = |m: String| ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, m);
    if let Some(ct) = content_type {
        for param in ct.split(';').skip(1).map(str::trim) {
            if let Some(proto) = param.strip_prefix("proto=") {
                if proto != V1_MESSAGE {
                    return Err(unsupported(format!(
                        "remote-write message {proto:?} is not read here: this node reads remote-write 1.0 \
                         ({V1_MESSAGE}); set `protobuf_message: {V1_MESSAGE}` in the sender's remote_write"
                    )));
                }
            }
        }
    }
    match encoding {
        Some(e) if e.trim().eq_ignore_ascii_case("snappy") => Ok(()),
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
    check_headers(content_type.as_deref(), encoding.as_deref())?;
    let limit = usize::try_from(node.server.max_write_body_bytes).unwrap_or(usize::MAX);
    let decoded = decode(body, limit).map_err(|e| match e {
        DecodeError::TooLarge { .. } => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        e => ApiError::bad_request(e.to_string()),
    })?;
    let d = decoded.dropped;
    node.telemetry.writes.dropped(&d);
    if d.non_finite > 0 || d.histograms > 0 {
        tracing::debug!(non_finite = d.non_finite, native_histograms = d.histograms, "remote write: samples dropped");
    }
    let batches: Vec<_> = decoded.batches.into_iter().filter(|b| node.consumers.admits(&b.series)).collect();
    if batches.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    // A failure names the first series; every series of the request is
    // sent again by a retry, so which one failed matters little.
    let first = batches[0].series.clone();
    node.write(batches).await.map_err(|e| write_failed(&first, e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::check_headers;

    #[test]
    fn headers_of_remote_write_1_0_are_read_and_others_refused() {
        assert!(check_headers(Some("application/x-protobuf"), Some("snappy")).is_ok());
        assert!(check_headers(Some("application/x-protobuf;proto=prometheus.WriteRequest"), Some("snappy")).is_ok());
        for (ct, enc) in [
            (Some("application/x-protobuf;proto=io.prometheus.write.v2.Request"), Some("snappy")),
            (Some("application/x-protobuf"), None),
            (Some("application/x-protobuf"), Some("gzip")),
        ] {
            let e = check_headers(ct, enc).unwrap_err();
            assert_eq!(e.status, 415, "{ct:?} {enc:?}");
        }
    }
}
