//! HTTP requests by route, method and status, and their latency.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use warp::http::{Method, StatusCode};

use crate::http::routes;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    /// The API path (`/query/metrics` …), `other` for a path the API does
    /// not have: never the raw path, which a client chooses.
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: &'static str,
    method: &'static str,
}

#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<Request, Counter>,
    duration: Family<Route, Histogram, fn() -> Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics { requests: Family::default(), duration: Family::new_with_constructor(super::histograms::latency) }
    }
}

impl HttpMetrics {
    /// One answered request: `elapsed` runs from its arrival to its answer
    /// being ready (a streamed answer's body is still to be sent).
    pub fn observe(&self, method: &Method, path: &str, status: StatusCode, elapsed: Duration) {
        let route = routes::route(path).unwrap_or("other");
        let method = method_label(method);
        self.requests.get_or_create(&Request { route, method, status: status.as_u16() }).inc();
        self.duration.get_or_create(&Route { route, method }).observe(elapsed.as_secs_f64());
    }

    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "heroic_http_requests",
            "HTTP requests answered, by route, method and status",
            self.requests.clone(),
        );
        // No `# UNIT` line on a histogram (see `histograms`).
        r.register(
            "heroic_http_request_duration_seconds",
            "Time from a request's arrival to its answer, by route and method",
            self.duration.clone(),
        );
    }
}

/// A fixed label for every method (a client may send any token).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}
