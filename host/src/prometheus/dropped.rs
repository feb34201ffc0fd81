//! What a Prometheus or OTLP write dropped because the node cannot store it,
//! counted by reason (the node's `heroic_write_dropped_samples_total`).
//!
//! Dropped, not refused: one value the node cannot store must not make the
//! sender drop (or endlessly retry) the rest of its batch.

/// Samples (or OTLP data points) dropped from one request, by reason.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// Prometheus' stale markers, and OTLP points flagged "no recorded
    /// value" (which Prometheus stores as stale markers): the end of a
    /// series, not a value.
    pub stale: u64,
    /// NaN (other than a stale marker) and infinite values.
    pub non_finite: u64,
    /// Native histograms (remote-write) and exponential histograms (OTLP).
    pub histograms: u64,
    /// OTLP sums and histograms of delta (or unspecified) temporality,
    /// which Prometheus' OTLP receiver drops too.
    pub delta: u64,
    /// OTLP points without a value or a time, and metrics without a name
    /// or a type.
    pub invalid: u64,
}

impl Dropped {
    /// The counts by the reason the node's metrics name them with (the one
    /// place those names are written).
    pub fn by_reason(&self) -> [(&'static str, u64); 5] {
        [
            ("stale", self.stale),
            ("non_finite", self.non_finite),
            ("native_histogram", self.histograms),
            ("delta_temporality", self.delta),
            ("invalid", self.invalid),
        ]
    }

    /// All dropped, whatever the reason.
    pub fn total(&self) -> u64 {
        self.by_reason().iter().map(|(_, n)| n).sum()
    }

    /// The reasons with a count, as `reason=n, …`, for a log line or an
    /// answer.
    pub fn describe(&self) -> String {
        let parts: Vec<String> =
            self.by_reason().iter().filter(|(_, n)| *n > 0).map(|(r, n)| format!("{r}={n}")).collect();
        parts.join(", ")
    }
}
