//! The buckets the histograms share.
//!
//! The latency histograms are registered with `_seconds` in their names but
//! no `# UNIT` line: OpenMetrics allows one on a histogram, yet some
//! parsers refuse it, and Prometheus reads the unit from the name anyway.

use prometheus_client::metrics::histogram::Histogram;

/// Buckets of the latency histograms, seconds: 0.5 ms to 30 s.
const LATENCY_BUCKETS: [f64; 15] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

pub(super) fn latency() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}
