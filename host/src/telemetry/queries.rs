//! Queries (`/query/metrics`, `/query/batch`, `/render/image`): how many,
//! how long, how much data they read, which limits they hit. Queries
//! refused for want of a slot or of memory are counted where they are
//! refused (the admission) and read at the scrape.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    /// `ok` (answered, perhaps with limits or errors inside the answer, as
    /// Heroic does), `client_error` (refused: a bad query, a full node) or
    /// `server_error` (failed, timed out).
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitHit {
    limit: &'static str,
}

#[derive(Clone)]
pub struct QueryMetrics {
    queries: Family<Outcome, Counter>,
    duration: Histogram,
    points_read: Histogram,
    limits: Family<LimitHit, Counter>,
}

impl Default for QueryMetrics {
    fn default() -> Self {
        let queries = Family::<Outcome, Counter>::default();
        // Every outcome from the start, at 0: a `rate()` over a counter
        // that appears only at its first increment misses that increment.
        for outcome in ["ok", "with_errors", "client_error", "server_error"] {
            queries.get_or_create(&Outcome { outcome }).inc_by(0);
        }
        let limits = Family::<LimitHit, Counter>::default();
        for limit in crate::query::Limit::ALL {
            limits.get_or_create(&LimitHit { limit: limit.label() }).inc_by(0);
        }
        QueryMetrics {
            queries,
            duration: super::histograms::latency(),
            // 1 to 10^10 points, a bucket per factor of 10.
            points_read: Histogram::new(exponential_buckets(1.0, 10.0, 11)),
            limits,
        }
    }
}

impl QueryMetrics {
    /// An answered query that read `points` points (before aggregation),
    /// hit `limits` (their labels: `series`, `group` …) and listed `errors`
    /// in its answer (Heroic answers 200 with the failures of a part of a
    /// query, or of a bad aggregation, in `errors`).
    pub fn answered(
        &self,
        elapsed: Duration,
        points: u64,
        limits: impl IntoIterator<Item = &'static str>,
        errors: bool,
    ) {
        let outcome = if errors { "with_errors" } else { "ok" };
        self.queries.get_or_create(&Outcome { outcome }).inc();
        self.duration.observe(elapsed.as_secs_f64());
        self.points_read.observe(points as f64);
        for l in limits {
            self.limits.get_or_create(&LimitHit { limit: l }).inc();
        }
    }

    /// A query refused before it was planned (no client id, a body that is
    /// not a query): counted, but its time is not a query's.
    pub fn refused(&self, status: warp::http::StatusCode) {
        self.queries.get_or_create(&Outcome { outcome: outcome_of(status) }).inc();
    }

    /// A query answered with an error status.
    pub fn failed(&self, elapsed: Duration, status: warp::http::StatusCode) {
        self.queries.get_or_create(&Outcome { outcome: outcome_of(status) }).inc();
        self.duration.observe(elapsed.as_secs_f64());
    }

    pub(super) fn register(&self, r: &mut Registry) {
        r.register("heroic_queries", "Queries run, by outcome", self.queries.clone());
        // No `# UNIT` line on a histogram (see `histograms`).
        r.register(
            "heroic_query_duration_seconds",
            "Time of a query, from its plan to its outcome (before the answer is sent)",
            self.duration.clone(),
        );
        r.register(
            "heroic_query_points_read",
            "Points a query read from the metric backends, before aggregation",
            self.points_read.clone(),
        );
        r.register(
            "heroic_query_limits",
            "Queries that hit a limit (answered with it in `limits`), by limit",
            self.limits.clone(),
        );
    }
}

fn outcome_of(status: warp::http::StatusCode) -> &'static str {
    if status.is_client_error() {
        "client_error"
    } else {
        "server_error"
    }
}
