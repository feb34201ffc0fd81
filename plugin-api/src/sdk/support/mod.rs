//! Support code plugins share, so that each plugin does not write its own:
//! the parts of talking to a database that are the same for every database.
//!
//! - [`retry`]: capped exponential backoff with jitter that honours an
//!   error's retry hint ([`RetryPolicy`], [`Backoff`], [`retry()`]).
//! - [`budget`]: the point budget of a fetch honouring `point_limit`,
//!   shared by its concurrent reads ([`PointBudget`]).
//! - [`stats`]: counters and gauges declared once with
//!   [`counter_set!`](crate::counter_set), reported as `Vec<Statistic>`.
//! - [`health`]: the last failure until the next success, and readiness,
//!   reported as `Health` ([`HealthTracker`]).
//! - [`isolate`]: bisecting a batch the host refused for good down to its
//!   poison messages ([`Bisect`]).
//! - [`dead_letter`]: the local dead-letter file consumers append poison
//!   messages to ([`DeadLetterFile`], [`DeadLetter`]).

pub mod budget;
pub mod dead_letter;
pub mod health;
pub mod isolate;
pub mod retry;
pub mod stats;

pub use budget::PointBudget;
pub use dead_letter::{DeadLetter, DeadLetterFile};
pub use health::{HealthTracker, LastError};
pub use isolate::Bisect;
pub use retry::{retry, Backoff, RetryHint, RetryPolicy};
pub use stats::{statistic, Counter, Gauge, Metric};
