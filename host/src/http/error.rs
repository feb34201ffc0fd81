//! Error replies in Heroic's shape: `{type:"error", message, reason, status}`.

use std::convert::Infallible;

use serde::Serialize;
use warp::http::header::{HeaderName, HeaderValue};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Rejection, Reply};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Extra fields of the error body: `line`/`col` for HQL errors, `path`
    /// for JSON shape errors.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Headers of the reply (`Retry-After`, `WWW-Authenticate` …).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), extra: Default::default(), headers: Vec::new() }
    }

    /// 503 with `Retry-After`: the node is busy; the same request may
    /// succeed in `seconds`.
    pub fn busy(message: impl Into<String>, seconds: u64) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, message);
        e.headers.push((warp::http::header::RETRY_AFTER, HeaderValue::from(seconds)));
        e
    }

    /// 503 for a backend's transient failure: `Retry-After` is the
    /// plugin's hint rounded up to whole seconds (the header's unit), or 1 s
    /// without one.
    pub fn retry_later(message: impl Into<String>, hint: Option<std::time::Duration>) -> Self {
        Self::busy(message, hint.map_or(1, |d| d.as_millis().div_ceil(1000) as u64))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
    reason: &'a str,
    status: u16,
    #[serde(flatten)]
    extra: &'a serde_json::Map<String, serde_json::Value>,
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            kind: "error",
            message: &self.message,
            reason: self.status.canonical_reason().unwrap_or(""),
            status: self.status.as_u16(),
            extra: &self.extra,
        };
        let mut response = warp::reply::with_status(warp::reply::json(&body), self.status).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl From<heroic_plugin_api::PluginError> for ApiError {
    fn from(e: heroic_plugin_api::PluginError) -> Self {
        use heroic_plugin_api::ErrorKind;
        if e.is_transient() {
            return ApiError::retry_later(e.to_string(), e.retry_after());
        }
        let status = match e.kind {
            ErrorKind::INVALID_INPUT | ErrorKind::CONFIG => StatusCode::BAD_REQUEST,
            ErrorKind::UNSUPPORTED => StatusCode::NOT_IMPLEMENTED,
            // PANIC, INTERNAL and kinds added in later interface versions.
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<heroic_query::QueryError> for ApiError {
    fn from(e: heroic_query::QueryError) -> Self {
        let mut error = ApiError::bad_request(e.to_string());
        if let Some((line, col)) = e.line_col() {
            error.extra.insert("line".into(), line.into());
            error.extra.insert("col".into(), col.into());
        }
        if let Some(path) = e.path() {
            error.extra.insert("path".into(), path.into());
        }
        error
    }
}

/// A request refused before its handler ran (the access checks of
/// `access.rs`), carrying its error reply for [`recover`].
#[derive(Debug)]
pub struct Refused(pub ApiError);

impl warp::reject::Reject for Refused {}

/// Turns warp's own rejections (unknown path, wrong method, body too
/// large …) into JSON error bodies too.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let error = if let Some(Refused(e)) = rejection.find() {
        e.clone()
    } else if rejection.is_not_found() {
        ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
    } else if let Some(e) = rejection.find::<warp::reject::PayloadTooLarge>() {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
    } else if let Some(e) = rejection.find::<warp::reject::LengthRequired>() {
        ApiError::new(StatusCode::LENGTH_REQUIRED, e.to_string())
    } else if let Some(e) = rejection.find::<warp::reject::MethodNotAllowed>() {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, e.to_string())
    } else if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        ApiError::bad_request(e.to_string())
    } else if let Some(e) = rejection.find::<warp::reject::MissingHeader>() {
        ApiError::bad_request(e.to_string())
    } else {
        tracing::warn!(?rejection, "unhandled rejection");
        ApiError::internal(format!("{rejection:?}"))
    };
    Ok(error.into_response())
}

/// Either a reply or an error reply: what every handler returns.
pub type ApiResult<T> = Result<T, ApiError>;

/// Turns a handler result into a response.
pub fn respond<T: Reply>(result: ApiResult<T>) -> Response {
    match result {
        Ok(reply) => reply.into_response(),
        Err(error) => error.into_response(),
    }
}

/// Parses a JSON body, answering 400 with serde's message (which names the
/// field and position) when it does not fit.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}
