//! CORS: which web pages may call the API from a browser.
//!
//! Off unless `server.cors_allowed_origins` lists origins: a node reachable
//! from a browser must not hand its data, or its `/write`, to whatever page
//! a user happens to open. When on, answers to an allowed origin carry
//! `Access-Control-Allow-Origin`, and preflights (`OPTIONS`) are answered on
//! every path, `/query/*` included, with the method and headers asked for
//! (Heroic's behaviour, except that Heroic refused preflights on `/query/*`
//! for want of an `X-Client-Id`, which browsers never send there).

use std::collections::BTreeSet;

use warp::http::header::{self, HeaderMap, HeaderValue};
use warp::http::StatusCode;
use warp::reply::Response;

/// Checks one configured origin: `*`, or `scheme://host[:port]`.
pub fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://")).ok_or_else(|| {
        format!("{origin:?} is not an origin: expected scheme://host[:port], such as https://grafana.example.com")
    })?;
    if rest.is_empty() || rest.contains('/') || rest.contains('?') || rest.contains('#') {
        return Err(format!("{origin:?} is not an origin: no path, query or trailing slash (scheme://host[:port])"));
    }
    HeaderValue::from_str(origin).map_err(|_| format!("{origin:?} is not a valid header value"))?;
    Ok(())
}

/// The configured CORS policy.
#[derive(Debug, Clone, Default)]
pub struct Cors {
    any: bool,
    origins: BTreeSet<String>,
}

impl Cors {
    pub fn new(origins: &[String]) -> Cors {
        Cors {
            any: origins.iter().any(|o| o == "*"),
            // Browsers send the origin in lower case, without a default port.
            origins: origins.iter().filter(|o| *o != "*").map(|o| o.to_ascii_lowercase()).collect(),
        }
    }

    /// Whether pages of `origin` may call the API.
    pub fn allows(&self, origin: &str) -> bool {
        self.any || self.origins.contains(&origin.to_ascii_lowercase())
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`,
    /// if it is allowed.
    fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        if self.any {
            return Some(HeaderValue::from_static("*"));
        }
        let origin = origin?;
        self.allows(origin.to_str().ok()?).then(|| origin.clone())
    }

    /// Adds the CORS headers an answer to `request` needs.
    pub fn decorate(&self, request: &HeaderMap, response: &mut Response) {
        if let Some(allow) = self.allow_origin(request.get(header::ORIGIN)) {
            let headers = response.headers_mut();
            if !self.any {
                // Caches must not hand one origin's answer to another.
                headers.append(header::VARY, HeaderValue::from_static("origin"));
            }
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        }
    }

    /// The answer to an `OPTIONS` request on a path answering `methods`:
    /// 200 with `Allow`, plus, for a preflight (both
    /// `Access-Control-Request-Method` and `-Headers`, Heroic's condition)
    /// from an allowed origin, the method and headers it asked for.
    pub fn preflight(&self, request: &HeaderMap, methods: &'static str) -> Response {
        let mut response = Response::new(Default::default());
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert(header::ALLOW, HeaderValue::from_static(methods));
        if let (Some(allow), Some(method), Some(requested)) = (
            self.allow_origin(request.get(header::ORIGIN)),
            request.get(header::ACCESS_CONTROL_REQUEST_METHOD),
            request.get(header::ACCESS_CONTROL_REQUEST_HEADERS),
        ) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, method.clone());
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
            if !self.any {
                headers.append(header::VARY, HeaderValue::from_static("origin"));
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.clone(), HeaderValue::from_str(v).unwrap())).collect()
    }

    #[test]
    fn origins_are_checked_at_config_time() {
        assert!(check_origin("https://grafana.example.com").is_ok());
        assert!(check_origin("http://localhost:3000").is_ok());
        assert!(check_origin("*").is_ok());
        for bad in ["grafana.example.com", "https://g.example.com/", "https://", "ftp://x", "https://a/b"] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn off_by_default() {
        let cors = Cors::new(&[]);
        let mut response = Response::new(Default::default());
        cors.decorate(&request(&[(header::ORIGIN, "https://evil.example")]), &mut response);
        assert!(response.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        let pre = cors.preflight(
            &request(&[
                (header::ORIGIN, "https://evil.example"),
                (header::ACCESS_CONTROL_REQUEST_METHOD, "POST"),
                (header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type"),
            ]),
            "POST,OPTIONS",
        );
        assert_eq!(pre.status(), StatusCode::OK);
        assert!(pre.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }

    #[test]
    fn listed_origins_get_their_own_origin_back() {
        let cors = Cors::new(&["https://Grafana.example.com".to_string()]);
        let pre = cors.preflight(
            &request(&[
                (header::ORIGIN, "https://grafana.example.com"),
                (header::ACCESS_CONTROL_REQUEST_METHOD, "POST"),
                (header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type, x-client-id"),
            ]),
            "POST,OPTIONS",
        );
        let h = pre.headers();
        assert_eq!(h[header::ALLOW], "POST,OPTIONS");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://grafana.example.com");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_METHODS], "POST");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_HEADERS], "content-type, x-client-id");
        assert_eq!(h[header::VARY], "origin");
        let mut response = Response::new(Default::default());
        cors.decorate(&request(&[(header::ORIGIN, "https://other.example.com")]), &mut response);
        assert!(response.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        // Heroic answers a preflight only when it names both a method and headers.
        let pre = cors.preflight(
            &request(&[
                (header::ORIGIN, "https://grafana.example.com"),
                (header::ACCESS_CONTROL_REQUEST_METHOD, "DELETE"),
            ]),
            "POST,OPTIONS",
        );
        assert!(pre.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }
}
