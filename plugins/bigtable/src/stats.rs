//! Counters reported through `statistics()` (`GET /status`, the shell's
//! `statistics` task), and the last failure for `health()`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use heroic_plugin_api::types::Statistic;

/// A monotonically increasing count.
#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A level that goes up and down.
#[derive(Default, Debug)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sub(&self, n: u64) {
        self.0.fetch_sub(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default, Debug)]
pub struct Stats {
    pub points_written: Counter,
    pub row_mutations: Counter,
    pub mutate_rpcs: Counter,
    pub read_rpcs: Counter,
    pub rows_read: Counter,
    pub points_read: Counter,
    pub points_deleted: Counter,
    pub retries: Counter,
    pub timeouts: Counter,
    /// Calls that failed for good (after retries).
    pub errors: Counter,
    /// Series refused because their row key reached 4,000 bytes.
    pub row_key_too_large: Counter,
    /// Cells or row keys that did not decode (foreign data in the table).
    pub invalid_cells: Counter,
    /// Batches the bulk writer sent (each one MutateRows call, plus the
    /// retries of its failed entries).
    pub bulk_flushes: Counter,
    /// Writes that had to wait for room in the bulk writer's buffer.
    pub bulk_waits: Counter,
    /// Cell mutations handed to the bulk writer and not applied yet
    /// (buffered or in a MutateRows call in flight).
    pub buffered_mutations: Gauge,
    last_error: Mutex<Option<String>>,
}

impl Stats {
    /// Remembers the outcome of an operation for `health()`: the backend is
    /// unhealthy from a failure until the next success.
    pub fn record<T, E: std::fmt::Display>(&self, result: &Result<T, E>) {
        let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        *last = result.as_ref().err().map(|e| e.to_string());
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn snapshot(&self) -> Vec<Statistic> {
        [
            ("points_written", &self.points_written),
            ("row_mutations", &self.row_mutations),
            ("mutate_rpcs", &self.mutate_rpcs),
            ("read_rpcs", &self.read_rpcs),
            ("rows_read", &self.rows_read),
            ("points_read", &self.points_read),
            ("points_deleted", &self.points_deleted),
            ("retries", &self.retries),
            ("timeouts", &self.timeouts),
            ("errors", &self.errors),
            ("row_key_too_large", &self.row_key_too_large),
            ("invalid_cells", &self.invalid_cells),
            ("bulk_flushes", &self.bulk_flushes),
            ("bulk_waits", &self.bulk_waits),
        ]
        .into_iter()
        .map(|(name, c)| (name, c.get()))
        .chain([("buffered_mutations", self.buffered_mutations.get())])
        .map(|(name, value)| Statistic { name: name.into(), value: value as f64 })
        .collect()
    }
}
