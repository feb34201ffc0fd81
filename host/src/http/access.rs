//! Who may change data: the checks in front of the routes that store or
//! delete (`POST /write`, `PUT` and `DELETE /metadata/series`).
//!
//! - A web page of a foreign origin is refused (403), even without CORS:
//!   a browser sends some cross-site requests without asking first (a
//!   `text/plain` POST), and their effect happens whether or not the page
//!   may read the answer.
//! - The body must be declared `application/json` (415): no form or text
//!   body a page can send without a preflight gets through.
//! - With tokens configured, `Authorization: Bearer <token>` is required
//!   (401).

use std::path::Path;
use std::sync::Arc;

use warp::http::header::{self, HeaderMap};
use warp::http::StatusCode;
use warp::{Filter, Rejection};

use crate::config::AuthConfig;
use crate::http::cors::Cors;
use crate::http::error::{ApiError, Refused};

/// The accepted bearer tokens.
#[derive(Default)]
pub struct Tokens(Vec<Vec<u8>>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.0.len())
    }
}

impl Tokens {
    /// The tokens of the config and of its token file.
    pub fn load(config: &AuthConfig) -> Result<Tokens, String> {
        let mut tokens: Vec<Vec<u8>> = config.write_tokens.iter().map(|t| t.expose().as_bytes().to_vec()).collect();
        if let Some(path) = &config.write_tokens_file {
            tokens.extend(read_token_file(path)?);
        }
        if let Some(t) = tokens.iter().find(|t| t.len() < 16) {
            return Err(format!(
                "server.auth: a write token of {} characters is too short to be secret (16 at least)",
                t.len()
            ));
        }
        Ok(Tokens(tokens))
    }

    pub fn required(&self) -> bool {
        !self.0.is_empty()
    }

    /// Whether `presented` is one of the tokens. Compares every byte of
    /// every token, so the time taken says nothing about how close a guess
    /// was.
    fn accepts(&self, presented: &[u8]) -> bool {
        let mut ok = false;
        for t in &self.0 {
            ok |= constant_time_eq(t, presented);
        }
        ok
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn read_token_file(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("server.auth.write_tokens_file: cannot read {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.as_bytes().to_vec())
        .collect())
}

/// Everything the checks need, shared by the routes.
pub struct Access {
    pub cors: Cors,
    pub tokens: Tokens,
}

impl Access {
    /// Runs the checks on a request to a route that changes data, whose
    /// body must be of one of the media types `media`. None that a web page may send
    /// without a CORS preflight is accepted (`text/plain`, forms), so that
    /// a page of another origin cannot change data through a visitor's
    /// browser.
    pub fn check_change(&self, headers: &HeaderMap, media: &[&'static str]) -> Result<(), ApiError> {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !self.cors.allows(origin) && !same_origin(origin, headers) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("requests from web pages of origin {origin:?} may not change data (see server.cors_allowed_origins)"),
                ));
            }
        }
        let typed = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim())
            .is_some_and(|v| media.iter().any(|m| v.eq_ignore_ascii_case(m)));
        if !typed {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("the body must be sent as Content-Type: {}", media.join(" or ")),
            ));
        }
        if self.tokens.required() {
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .map(str::trim);
            match presented {
                None => return Err(unauthorized("this route needs a token: send Authorization: Bearer <token>")),
                Some(t) if !self.tokens.accepts(t.as_bytes()) => {
                    return Err(unauthorized("the bearer token is not valid"))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

fn unauthorized(message: &str) -> ApiError {
    let mut e = ApiError::new(StatusCode::UNAUTHORIZED, message);
    e.headers.push((header::WWW_AUTHENTICATE, "Bearer realm=\"heroic\"".parse().expect("valid header value")));
    e
}

/// Whether `origin` is the node itself (a page it served, calling it back):
/// its host and port are those the request was sent to.
fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let authority = origin.split_once("://").map(|(_, a)| a);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

/// A filter that lets a request through to a route that changes data only
/// if [`Access::check_change`] passes for a JSON body.
pub fn may_change(access: Arc<Access>) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    may_change_as(access, &["application/json"])
}

/// [`may_change`] for a body of one of the media types `media`.
pub fn may_change_as(
    access: Arc<Access>,
    media: &'static [&'static str],
) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and_then(move |headers: HeaderMap| {
            let access = access.clone();
            async move { access.check_change(&headers, media).map_err(|e| warp::reject::custom(Refused(e))) }
        })
        .untuple_one()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthConfig;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse::<header::HeaderName>().unwrap(), v.parse().unwrap())).collect()
    }

    fn access(tokens: &[&str], origins: &[&str]) -> Access {
        let config: AuthConfig = serde_json::from_value(serde_json::json!({ "write_tokens": tokens })).unwrap();
        Access {
            cors: Cors::new(&origins.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
            tokens: Tokens::load(&config).unwrap(),
        }
    }

    #[test]
    fn foreign_pages_and_simple_bodies_are_refused() {
        let a = access(&[], &[]);
        let status =
            |h: &[(&str, &str)]| a.check_change(&headers(h), &["application/json"]).err().map(|e| e.status.as_u16());
        assert_eq!(status(&[("content-type", "application/json")]), None);
        assert_eq!(status(&[("content-type", "Application/JSON; charset=utf-8")]), None);
        assert_eq!(status(&[("content-type", "text/plain")]), Some(415));
        assert_eq!(status(&[("content-type", "application/x-www-form-urlencoded")]), Some(415));
        assert_eq!(status(&[]), Some(415));
        let either = |h: &[(&str, &str)]| {
            a.check_change(&headers(h), &["application/x-protobuf", "application/json"])
                .err()
                .map(|e| e.status.as_u16())
        };
        assert_eq!(either(&[("content-type", "application/json")]), None);
        assert_eq!(either(&[("content-type", "application/x-protobuf")]), None);
        assert_eq!(either(&[("content-type", "text/plain")]), Some(415));
        assert_eq!(status(&[("content-type", "application/json"), ("origin", "https://evil.example")]), Some(403));
        assert_eq!(status(&[("content-type", "application/json"), ("origin", "null")]), Some(403));
        // A page the node served itself.
        assert_eq!(
            status(&[
                ("content-type", "application/json"),
                ("origin", "http://127.0.0.1:8080"),
                ("host", "127.0.0.1:8080")
            ]),
            None
        );
        let allowed = access(&[], &["https://grafana.example.com"]);
        assert!(allowed
            .check_change(
                &headers(&[("content-type", "application/json"), ("origin", "https://grafana.example.com")]),
                &["application/json"]
            )
            .is_ok());
    }

    #[test]
    fn tokens_are_required_when_configured() {
        let a = access(&["0123456789abcdef-secret"], &[]);
        let status =
            |h: &[(&str, &str)]| a.check_change(&headers(h), &["application/json"]).err().map(|e| e.status.as_u16());
        assert_eq!(status(&[("content-type", "application/json")]), Some(401));
        assert_eq!(status(&[("content-type", "application/json"), ("authorization", "Bearer nope")]), Some(401));
        assert_eq!(
            status(&[("content-type", "application/json"), ("authorization", "Bearer 0123456789abcdef-secret")]),
            None
        );
        let short: AuthConfig = serde_json::from_value(serde_json::json!({ "write_tokens": ["short"] })).unwrap();
        assert!(Tokens::load(&short).unwrap_err().contains("too short"));
        assert!(!format!("{:?}", a.tokens).contains("secret"));
    }
}
