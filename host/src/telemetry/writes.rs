//! The write path (`POST /write` and the consumers alike): what was
//! acknowledged, how long it took, what failed.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::prometheus::dropped::Dropped;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropReason {
    /// One of [`Dropped::by_reason`]'s: `stale`, `non_finite`,
    /// `native_histogram`, `delta_temporality`, `invalid`.
    reason: &'static str,
}

#[derive(Clone)]
pub struct WriteMetrics {
    points: Counter,
    series: Counter,
    new_series: Counter,
    failed: Counter,
    duration: Histogram,
    dropped: Family<DropReason, Counter>,
}

impl Default for WriteMetrics {
    fn default() -> Self {
        WriteMetrics {
            points: Counter::default(),
            series: Counter::default(),
            new_series: Counter::default(),
            failed: Counter::default(),
            duration: super::histograms::latency(),
            dropped: {
                // Every reason from the start, at 0 (see `queries`).
                let dropped = Family::<DropReason, Counter>::default();
                for (reason, _) in Dropped::default().by_reason() {
                    dropped.get_or_create(&DropReason { reason }).inc_by(0);
                }
                dropped
            },
        }
    }
}

impl WriteMetrics {
    /// A write every backend acknowledged: `series` series with `points`
    /// points or samples between them, of which `new_series` were sent to
    /// metadata and suggest.
    pub fn written(&self, series: usize, points: u64, new_series: usize, elapsed: Duration) {
        self.series.inc_by(series as u64);
        self.points.inc_by(points);
        self.new_series.inc_by(new_series as u64);
        self.duration.observe(elapsed.as_secs_f64());
    }

    /// A write some backend refused (nothing of it was acknowledged).
    pub fn failed(&self, elapsed: Duration) {
        self.failed.inc();
        self.duration.observe(elapsed.as_secs_f64());
    }

    /// Samples of a remote-write request that the node cannot store.
    pub fn dropped(&self, dropped: &Dropped) {
        for (reason, samples) in dropped.by_reason() {
            if samples > 0 {
                self.dropped.get_or_create(&DropReason { reason }).inc_by(samples);
            }
        }
    }

    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "heroic_write_points",
            "Points and samples acknowledged as durably written (HTTP and consumers)",
            self.points.clone(),
        );
        r.register(
            "heroic_write_series",
            "Series in acknowledged writes (a series once per write)",
            self.series.clone(),
        );
        r.register(
            "heroic_write_new_series",
            "Series sent to the metadata and suggest backends (not seen lately by this node)",
            self.new_series.clone(),
        );
        r.register("heroic_write_failures", "Writes refused because a backend failed", self.failed.clone());
        r.register(
            "heroic_write_dropped_samples",
            "Remote-written samples dropped because the node cannot store them, by reason",
            self.dropped.clone(),
        );
        // No `# UNIT` line on a histogram (see `histograms`).
        r.register(
            "heroic_write_duration_seconds",
            "Time of a write to every backend, until acknowledged or refused",
            self.duration.clone(),
        );
    }
}
