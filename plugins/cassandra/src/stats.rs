//! Counters reported through `statistics()` (`GET /status`, the shell's
//! `statistics` task), and the last failure for `health()`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use heroic_plugin_api::types::Statistic;

/// What is counted. The discriminant indexes [`Stats`]' counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    PointsWritten,
    /// Write batches sent (attempts, retries included).
    WriteBatches,
    /// Read queries started (attempts, retries included).
    ReadQueries,
    PointsRead,
    PointsDeleted,
    /// Row keys returned by key listings.
    KeysListed,
    Retries,
    /// Requests that failed for good with a timeout.
    Timeouts,
    /// Requests that failed for good (after retries).
    Errors,
    /// Series refused because their row key reached 64 KiB.
    RowKeyTooLarge,
    /// Points refused because they lie outside the timestamp window.
    PointsOutOfWindow,
    /// Row keys or cells that did not decode (foreign data in the table).
    InvalidRows,
}

impl Stat {
    pub const ALL: [Stat; 12] = [
        Stat::PointsWritten,
        Stat::WriteBatches,
        Stat::ReadQueries,
        Stat::PointsRead,
        Stat::PointsDeleted,
        Stat::KeysListed,
        Stat::Retries,
        Stat::Timeouts,
        Stat::Errors,
        Stat::RowKeyTooLarge,
        Stat::PointsOutOfWindow,
        Stat::InvalidRows,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stat::PointsWritten => "points_written",
            Stat::WriteBatches => "write_batches",
            Stat::ReadQueries => "read_queries",
            Stat::PointsRead => "points_read",
            Stat::PointsDeleted => "points_deleted",
            Stat::KeysListed => "keys_listed",
            Stat::Retries => "retries",
            Stat::Timeouts => "timeouts",
            Stat::Errors => "errors",
            Stat::RowKeyTooLarge => "row_key_too_large",
            Stat::PointsOutOfWindow => "points_out_of_window",
            Stat::InvalidRows => "invalid_rows",
        }
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    counters: [AtomicU64; Stat::ALL.len()],
    last_error: Mutex<Option<String>>,
}

impl Stats {
    pub fn add(&self, stat: Stat, n: u64) {
        self.counters[stat as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub fn inc(&self, stat: Stat) {
        self.add(stat, 1);
    }

    pub fn get(&self, stat: Stat) -> u64 {
        self.counters[stat as usize].load(Ordering::Relaxed)
    }

    /// Remembers whether the last operation failed, for `health()`: the
    /// backend is unhealthy from a failure until the next success.
    pub fn set_last_error(&self, error: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn snapshot(&self) -> Vec<Statistic> {
        Stat::ALL.iter().map(|&s| Statistic { name: s.name().into(), value: self.get(s) as f64 }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stat_has_its_own_counter_and_name() {
        let stats = Stats::default();
        for (i, s) in Stat::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i, "ALL is in discriminant order");
            stats.add(*s, i as u64 + 1);
        }
        let snapshot = stats.snapshot();
        let names: std::collections::BTreeSet<&str> = snapshot.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), Stat::ALL.len());
        assert_eq!(snapshot[3].value, 4.0);
        stats.set_last_error(Some("boom".into()));
        assert_eq!(stats.last_error().as_deref(), Some("boom"));
        stats.set_last_error(None);
        assert_eq!(stats.last_error(), None);
    }
}
