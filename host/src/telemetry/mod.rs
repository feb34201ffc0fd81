//! The node's own figures for Prometheus: `GET /metrics` (see
//! `docs/metrics.md` for every metric).
//!
//! - [`http`]: requests by route, method and status, with their latency.
//! - [`writes`]: points and series written, write latency and failures.
//! - [`queries`]: queries, their latency, points read, limits hit.
//! - [`calls`]: every call into a plugin, by backend and operation (the
//!   observer the plugin clients are given).
//! - [`scrape`]: what is read when scraped: backends' health and statistics,
//!   consumers, query admission, the process.
//!
//! The counters and histograms live as long as the node and are updated on
//! the request paths (an atomic add, no allocation once a label set has
//! been seen); the rest is read at each scrape from the components
//! themselves, so it is never stale and costs nothing between scrapes.
//! Label values are all from fixed sets (routes of the API, backends of the
//! config, operations of the plugin interface): nothing a client sends can
//! grow the number of series.

pub mod calls;
mod histograms;
pub mod http;
pub mod queries;
pub mod scrape;
pub mod writes;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The `Content-Type` of a scrape: OpenMetrics text, which Prometheus,
/// VictoriaMetrics' vmagent and the OpenTelemetry collector all read.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The node's counters and histograms, shared by the parts that update
/// them (cheap to clone: every metric is behind an `Arc`).
#[derive(Clone, Default)]
pub struct Telemetry {
    pub http: http::HttpMetrics,
    pub writes: writes::WriteMetrics,
    pub queries: queries::QueryMetrics,
    pub calls: calls::PluginCalls,
}

impl Telemetry {
    /// The scrape: every metric in the OpenMetrics text format, those that
    /// `read_now` registers (see [`scrape`]) after the node's own.
    pub fn encode(&self, read_now: impl FnOnce(&mut Registry)) -> String {
        let mut registry = Registry::default();
        self.http.register(&mut registry);
        self.writes.register(&mut registry);
        self.queries.register(&mut registry);
        self.calls.register(&mut registry);
        read_now(&mut registry);
        registry.register("heroic_build_info", "Always 1; the node's version in its label", build_info());
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Build {
    version: &'static str,
}

/// `heroic_build_info{version="…"} 1`, as Prometheus' own `prometheus_build_info`.
fn build_info() -> Family<Build, Gauge> {
    let family = Family::<Build, Gauge>::default();
    family.get_or_create(&Build { version: env!("CARGO_PKG_VERSION") }).set(1);
    family
}
