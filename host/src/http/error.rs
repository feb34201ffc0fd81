//! Error replies in Heroic's shape: `{type, message, reason, status}` plus
//! the extra fields of each type, with Heroic's `type` for each case:
//!
//! | `type` | status | when | extra |
//! |---|---|---|---|
//! | `error` | 4xx | unknown path, wrong method, and this server's own checks | – |
//! | `internal-error` | 5xx | failures, timeouts, shutdown | – |
//! | `json-error` | 400 | a body that does not map (wrong shape, missing body) | `path` |
//! | `json-parse-error` | 400 | malformed JSON | `line`, `col` |
//! | `parse-error` | 400 | HQL | `line`, `col`, `lineEnd`, `colEnd` |
//! | `authentication-error` | 400 | no `X-Client-Id` on `/query/*` | – |

use std::convert::Infallible;

use serde::Serialize;
use warp::http::header::{HeaderName, HeaderValue};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Rejection, Reply};

/// Heroic's error `type`s.
pub mod kind {
    pub const ERROR: &str = "error";
    pub const INTERNAL: &str = "internal-error";
    pub const JSON: &str = "json-error";
    pub const JSON_PARSE: &str = "json-parse-error";
    pub const PARSE: &str = "parse-error";
    pub const AUTHENTICATION: &str = "authentication-error";
}

#[derive(Debug, Clone)]
pub struct ApiError {
    /// The body's `type` (see [`kind`]).
    pub kind: &'static str,
    pub status: StatusCode,
    pub message: String,
    /// Extra fields of the error body: `line`/`col` for HQL errors, `path`
    /// for JSON shape errors.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Headers of the reply (`Retry-After`, `WWW-Authenticate` …).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error of type `internal-error` for a 5xx, else `error`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        let kind = if status.is_server_error() { kind::INTERNAL } else { kind::ERROR };
        ApiError { kind, status, message: message.into(), extra: Default::default(), headers: Vec::new() }
    }

    /// 400 `json-error`: the body does not map; `path` names the field
    /// (`queries.A.aggregation`, `""` for the whole body).
    pub fn json(path: &str, message: impl Into<String>) -> Self {
        let mut e = Self::bad_request(message);
        e.kind = kind::JSON;
        e.extra.insert("path".into(), path.into());
        e
    }

    /// 400 `authentication-error` (Heroic's missing `X-Client-Id`).
    pub fn authentication(message: impl Into<String>) -> Self {
        let mut e = Self::bad_request(message);
        e.kind = kind::AUTHENTICATION;
        e
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
            kind: self.kind,
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
        use heroic_query::QueryError;
        match e {
            // Heroic's syntax errors: `line` 1-based, `col` 0-based, the
            // message starting with `line:col: `, the end equal to the start.
            QueryError::Parse { line, col, message } => {
                let col = col.saturating_sub(1);
                let mut error = ApiError::bad_request(format!("{line}:{col}: {message}"));
                error.kind = kind::PARSE;
                for (name, value) in [("line", line), ("col", col), ("lineEnd", line), ("colEnd", col)] {
                    error.extra.insert(name.into(), value.into());
                }
                error
            }
            // Errors in what parsed HQL means: Heroic's `line` is 0-based
            // there, and `col`/`colEnd` are character offsets from the start
            // of the text, spanning the expression at fault.
            QueryError::Meaning { start, end, message } => {
                let (line, col) = (start.line.saturating_sub(1), start.offset);
                let mut error = ApiError::bad_request(format!("{line}:{col}: {message}"));
                error.kind = kind::PARSE;
                let (line_end, col_end) = (end.line.saturating_sub(1), end.offset);
                for (name, value) in [("line", line), ("col", col), ("lineEnd", line_end), ("colEnd", col_end)] {
                    error.extra.insert(name.into(), value.into());
                }
                error
            }
            QueryError::Json { ref path, .. } => {
                // Heroic's paths have no root marker: `$` is the whole body,
                // `$[1]` an element of it.
                let path = path.strip_prefix('$').unwrap_or(path).to_string();
                ApiError::json(&path, e.to_string())
            }
            other => ApiError::bad_request(other.to_string()),
        }
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
        // Jersey's message, which Heroic passes on.
        ApiError::new(StatusCode::NOT_FOUND, "HTTP 404 Not Found")
    } else if let Some(e) = rejection.find::<warp::reject::PayloadTooLarge>() {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
    } else if let Some(e) = rejection.find::<warp::reject::LengthRequired>() {
        ApiError::new(StatusCode::LENGTH_REQUIRED, e.to_string())
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "HTTP 405 Method Not Allowed")
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

/// Parses a JSON body. Malformed JSON is a 400 `json-parse-error` with
/// `line` and `col`; an empty body or one that does not map is a 400
/// `json-error` whose `path` is where the bad value is (`series.key`,
/// `data.data[3]`), as Heroic reports it.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::json("", "missing request body"));
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        // Parsed again only to find the path: tracking it costs a little on
        // every value, and bodies (64 MiB of points on /write) mostly map.
        serde_json::error::Category::Data => {
            match serde_path_to_error::deserialize::<_, T>(&mut serde_json::Deserializer::from_slice(body)) {
                Err(traced) => {
                    let path = traced.path().to_string();
                    json_error(e, if path == "." { "" } else { &path })
                }
                Ok(_) => json_error(e, ""),
            }
        }
        _ => json_error(e, ""),
    })
}

/// The reply to a serde_json error; `path` is where the failing value is,
/// when known.
pub fn json_error(e: serde_json::Error, path: &str) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => {
            let mut error = ApiError::bad_request(format!("invalid JSON: {e}"));
            error.kind = kind::JSON_PARSE;
            error.extra.insert("line".into(), e.line().into());
            error.extra.insert("col".into(), e.column().into());
            error
        }
        Category::Data => ApiError::json(path, format!("invalid request body: {e}")),
        Category::Io => ApiError::internal(format!("reading the request body failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(e: ApiError) -> serde_json::Value {
        use http_body_util::BodyExt;
        let collected = futures::executor::block_on(e.into_response().into_body().collect()).unwrap();
        serde_json::from_slice(&collected.to_bytes()).unwrap()
    }

    #[test]
    fn each_failure_has_heroics_type() {
        let parse = heroic_query::hql::parse_filter("a = 1 and").unwrap_err();
        let b = body(parse.into());
        assert_eq!(b["type"], "parse-error", "{b}");
        assert_eq!((b["line"].clone(), b["col"].clone()), (1.into(), 9.into()), "{b}");
        assert_eq!((b["lineEnd"].clone(), b["colEnd"].clone()), (1.into(), 9.into()), "{b}");
        assert!(b["message"].as_str().unwrap().starts_with("1:9: "), "{b}");

        let b = body(parse_json::<serde_json::Value>(b"{\"a\": ").unwrap_err());
        assert_eq!((b["type"].as_str(), b["status"].as_u64()), (Some("json-parse-error"), Some(400)), "{b}");
        assert!(b["line"].is_number() && b["col"].is_number(), "{b}");

        let b = body(parse_json::<serde_json::Value>(b"  ").unwrap_err());
        assert_eq!((b["type"].as_str(), b["path"].as_str()), (Some("json-error"), Some("")), "{b}");
        assert_eq!(b["message"], "missing request body");

        let b = body(heroic_query::QueryError::Invalid("x".into()).into());
        assert_eq!(b["type"], "error");
        let b = body(ApiError::internal("boom"));
        assert_eq!((b["type"].as_str(), b["reason"].as_str()), (Some("internal-error"), Some("Internal Server Error")));
        assert_eq!(body(ApiError::authentication("no"))["type"], "authentication-error");
    }

    #[test]
    fn a_body_that_does_not_map_names_the_path_of_the_bad_value() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Body {
            series: Series,
            data: Vec<(i64, f64)>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Series {
            key: String,
        }
        let path = |json: &str| body(parse_json::<Body>(json.as_bytes()).unwrap_err())["path"].clone();
        assert_eq!(path(r#"{"series": {"key": 5}, "data": []}"#), "series.key");
        assert_eq!(path(r#"{"series": {"key": "a"}, "data": [[1, 2], [3, "x"]]}"#), "data[1][1]");
        assert_eq!(path(r#"{"series": {"key": "a"}}"#), "");
        assert!(parse_json::<Body>(br#"{"series": {"key": "a"}, "data": [[1, 2]]}"#).is_ok());
    }
}
