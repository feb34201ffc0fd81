//! `POST /v1/metrics`: OTLP/HTTP metrics, protobuf or JSON, gzip or not
//! (see [`crate::prometheus::otlp`] for the translation).
//!
//! Answers as OTLP/HTTP asks, in the request's own encoding, so that
//! senders retry exactly what may succeed later:
//! - 200 with an `ExportMetricsServiceResponse` once every series is durably
//!   written; what was dropped is counted in its `partial_success`
//!   (`rejected_data_points`, with the reasons in `error_message`);
//! - 400 (a `google.rpc.Status`) for a body that can never be stored, 413
//!   past the size limits, 415 for an encoding this node does not read:
//!   OTLP senders drop these;
//! - 503 with `Retry-After` when a backend failed and the data itself is
//!   not at fault (senders retry; a 500, which OTLP senders drop, is not
//!   answered to a write).

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use serde_json::json;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;

use crate::http::error::ApiError;
use crate::http::write::write_admitted;
use crate::node::Node;
use crate::prometheus::dropped::Dropped;
use crate::prometheus::otlp::translate::translate;
use crate::prometheus::otlp::{decode, DecodeError, Format};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
/// The media types the route takes (checked with the other checks of a
/// route that changes data, `access::may_change_as`).
pub const MEDIA: &[&str] = &[PROTOBUF, JSON];

/// How many times the decompressed size limit a request may grow to once
/// translated: every histogram bucket repeats its point's labels.
const EXPANSION: usize = 4;

/// `google.rpc.Status`, the body of OTLP/HTTP's error answers.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// gRPC's code for an HTTP status, as OTLP/HTTP pairs them.
fn rpc_code(status: StatusCode) -> i32 {
    match status.as_u16() {
        400 | 413 | 415 => 3, // INVALID_ARGUMENT
        401 => 16,            // UNAUTHENTICATED
        403 => 7,             // PERMISSION_DENIED
        429 => 8,             // RESOURCE_EXHAUSTED
        503 => 14,            // UNAVAILABLE
        _ => 13,              // INTERNAL
    }
}

fn format_of(content_type: Option<&str>) -> Format {
    let base = content_type.and_then(|ct| ct.split(';').next()).map(str::trim).unwrap_or("");
    if base.eq_ignore_ascii_case(JSON) {
        Format::Json
    } else {
        Format::Protobuf
    }
}

fn reply(format: Format, status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    let media = if format == Format::Json { JSON } else { PROTOBUF };
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    r
}

/// The success answer; a partial success when anything other than "no
/// recorded value" points (the end of a series, not an error) was dropped.
fn success(format: Format, dropped: &Dropped) -> Response {
    let rejected = dropped.total() - dropped.stale;
    let message = if rejected > 0 {
        format!("points dropped: {} (see heroic_write_dropped_samples_total)", dropped.describe())
    } else {
        String::new()
    };
    let body = match format {
        Format::Json if rejected > 0 => json!({"partialSuccess": {
            "rejectedDataPoints": rejected.to_string(),
            "errorMessage": message,
        }})
        .to_string()
        .into_bytes(),
        Format::Json => b"{}".to_vec(),
        Format::Protobuf => {
            let partial_success = (rejected > 0).then(|| {
                opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess {
                    rejected_data_points: i64::try_from(rejected).unwrap_or(i64::MAX),
                    error_message: message,
                }
            });
            prost::Message::encode_to_vec(&ExportMetricsServiceResponse { partial_success })
        }
    };
    reply(format, StatusCode::OK, body)
}

fn failure(format: Format, e: ApiError) -> Response {
    let code = rpc_code(e.status);
    let body = match format {
        Format::Json => json!({"code": code, "message": e.message}).to_string().into_bytes(),
        Format::Protobuf => prost::Message::encode_to_vec(&RpcStatus { code, message: e.message.clone() }),
    };
    let mut r = reply(format, e.status, body);
    for (name, value) in e.headers {
        r.headers_mut().insert(name, value);
    }
    r
}

/// A write's failure as OTLP senders should see it: a 500 (a backend
/// fault that is not the data's) becomes a 503, which they retry.
fn retried(e: ApiError) -> ApiError {
    if e.status == StatusCode::INTERNAL_SERVER_ERROR {
        ApiError::retry_later(e.message, None)
    } else {
        e
    }
}

async fn write(node: &Node, format: Format, encoding: Option<&str>, body: &[u8]) -> Result<Dropped, ApiError> {
    let gzip = match encoding.map(str::trim) {
        None | Some("") => false,
        Some(e) if e.eq_ignore_ascii_case("identity") => false,
        Some(e) if e.eq_ignore_ascii_case("gzip") => true,
        Some(e) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content encoding {e:?} is not read here: send OTLP bodies plain or gzip"),
            ))
        }
    };
    let limit = usize::try_from(node.server.max_write_body_bytes).unwrap_or(usize::MAX);
    let request = decode(body, format, gzip, limit).map_err(|e| match e {
        DecodeError::TooLarge { .. } | DecodeError::DecodesTooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        e => ApiError::bad_request(e.to_string()),
    })?;
    let translated = translate(&request, limit.saturating_mul(EXPANSION))
        .map_err(|e| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()))?;
    drop(request);
    let dropped = translated.dropped;
    node.telemetry.writes.dropped(&dropped);
    if dropped.total() > dropped.stale {
        tracing::debug!(dropped = %dropped.describe(), "otlp write: points dropped");
    }
    // OTLP senders retry 503 but drop a 500: a backend failure that is not
    // the data's own fault may pass (a restarted plugin, a server back), so
    // it is a 503 here, and the sender tries again.
    write_admitted(node, translated.batches).await.map_err(retried)?;
    Ok(dropped)
}

pub async fn handle(node: &Node, content_type: Option<String>, encoding: Option<String>, body: &[u8]) -> Response {
    let format = format_of(content_type.as_deref());
    match write(node, format, encoding.as_deref(), body).await {
        Ok(dropped) => success(format, &dropped),
        Err(e) => failure(format, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_in_the_request_s_encoding() {
        assert_eq!(format_of(Some("application/json; charset=utf-8")), Format::Json);
        assert_eq!(format_of(Some("application/x-protobuf")), Format::Protobuf);
        let ok = success(Format::Json, &Dropped { stale: 2, ..Dropped::default() });
        assert_eq!(ok.status(), 200);
        let partial = success(Format::Protobuf, &Dropped { delta: 3, ..Dropped::default() });
        assert_eq!(partial.headers()[header::CONTENT_TYPE], PROTOBUF);
        let err = failure(Format::Json, ApiError::retry_later("backend down", Some(std::time::Duration::from_secs(2))));
        assert_eq!(err.status(), 503);
        assert!(err.headers().contains_key(header::RETRY_AFTER));
        // A plugin fault is retried; data a backend refuses for good is not.
        let fault = failure(Format::Protobuf, retried(ApiError::internal("plugin fault")));
        assert_eq!(fault.status(), 503);
        assert!(fault.headers().contains_key(header::RETRY_AFTER));
        assert_eq!(retried(ApiError::bad_request("key too long")).status, 400);
    }
}
