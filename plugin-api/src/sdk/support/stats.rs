//! Counters and gauges for `statistics()`, declared once.
//!
//! A backend or consumer reports `Vec<Statistic>` (`GET /status`, the
//! shell's `statistics` task). Rather than keeping a struct of atomics and,
//! apart from it, a hand-written list of names that must follow every new
//! field, declare the struct with [`counter_set!`](crate::counter_set): it
//! generates the struct and a `statistics()` method listing every field, in
//! declaration order, under the field's name or the one given with
//! `= "name"`.
//!
//! ```
//! use heroic_plugin_api::sdk::support::{Counter, Gauge};
//!
//! heroic_plugin_api::counter_set! {
//!     /// What the backend counts.
//!     #[derive(Debug, Default)]
//!     pub struct Stats {
//!         /// Points written.
//!         pub points_written: Counter,
//!         /// Reported as `write-cache-hits`.
//!         pub cache_hits: Counter = "write-cache-hits",
//!         /// A level: requests in flight.
//!         pub in_flight: Gauge,
//!     }
//! }
//!
//! let stats = Stats::default();
//! stats.points_written.add(3);
//! stats.in_flight.inc();
//! let names: Vec<_> = stats.statistics().iter().map(|s| s.name.to_string()).collect();
//! assert_eq!(names, ["points_written", "write-cache-hits", "in_flight"]);
//! ```
//!
//! Values computed when asked (threads alive, a lag) are not counters:
//! build them with [`statistic`] and chain them with the set's list.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::types::Statistic;

/// A count that only goes up (events, items).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Counts one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Counts `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A level that goes up and down (items held, bytes buffered).
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Raises the level by one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Lowers the level by one.
    pub fn dec(&self) {
        self.sub(1);
    }

    /// Raises the level by `n`.
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Lowers the level by `n`.
    pub fn sub(&self, n: i64) {
        self.0.fetch_sub(n, Ordering::Relaxed);
    }

    /// Sets the level.
    pub fn set(&self, level: i64) {
        self.0.store(level, Ordering::Relaxed);
    }

    /// The level now.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value [`counter_set!`](crate::counter_set) can report.
pub trait Metric {
    /// The value as a statistic reports it.
    fn value(&self) -> f64;
}

impl Metric for Counter {
    fn value(&self) -> f64 {
        self.get() as f64
    }
}

impl Metric for Gauge {
    fn value(&self) -> f64 {
        self.get() as f64
    }
}

/// One statistic: a name and its value.
pub fn statistic(name: &str, value: f64) -> Statistic {
    Statistic { name: name.into(), value }
}

/// Declares a struct of [`Counter`]s and [`Gauge`]s (any [`Metric`]) with a
/// `statistics()` method that reports every field, in declaration order,
/// named after the field or after the string given with `= "name"`.
///
/// Attributes (derives, doc comments) pass through to the struct and its
/// fields. See [`sdk::support::stats`](crate::sdk::support::stats) for an
/// example.
#[macro_export]
macro_rules! counter_set {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                $field_vis:vis $field:ident : $ty:ty $(= $stat:literal)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $(
                $(#[$field_meta])*
                $field_vis $field: $ty,
            )*
        }

        impl $name {
            /// Every counter and gauge of the set, in declaration order.
            #[allow(dead_code)]
            pub fn statistics(&self) -> ::std::vec::Vec<$crate::types::Statistic> {
                ::std::vec![$(
                    $crate::sdk::support::stats::statistic(
                        [$($stat,)? ::core::stringify!($field)][0],
                        $crate::sdk::support::stats::Metric::value(&self.$field),
                    ),
                )*]
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::counter_set! {
        #[derive(Default)]
        struct Sample {
            /// A documented counter.
            reads: Counter,
            pub(crate) level: Gauge = "buffered-items",
            writes: Counter,
        }
    }

    #[test]
    fn counters_count_and_gauges_go_both_ways() {
        let c = Counter::default();
        c.inc();
        c.add(41);
        assert_eq!(c.get(), 42);
        let g = Gauge::default();
        g.add(5);
        g.sub(7);
        assert_eq!(g.get(), -2);
        g.inc();
        g.dec();
        g.set(9);
        assert_eq!(g.get(), 9);
    }

    #[test]
    fn a_set_reports_every_field_in_order_under_its_name() {
        let s = Sample::default();
        s.reads.add(2);
        s.level.add(3);
        s.writes.inc();
        let got: Vec<(String, f64)> = s.statistics().into_iter().map(|s| (s.name.into_string(), s.value)).collect();
        let want = [("reads", 2.0), ("buffered-items", 3.0), ("writes", 1.0)];
        assert_eq!(got, want.map(|(n, v)| (n.to_string(), v)));
    }
}
