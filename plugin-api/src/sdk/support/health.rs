//! Health from outcomes: the last failure, with its time, until a success
//! clears it, and whether the component is ready at all.
//!
//! `health()` is polled by the host (`GET /status`, the shell) and must not
//! do I/O, so plugins remember what their calls ended with instead. A
//! [`HealthTracker`] keeps that memory: record each outcome (or only the
//! failures and successes that matter), mark the component ready once it
//! serves, and [`HealthTracker::health`] answers in the host's terms.

use std::fmt::Display;
use std::sync::Mutex;
use std::time::SystemTime;

use crate::types::Health;

/// The failure a [`HealthTracker`] remembers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastError {
    /// The error, as displayed.
    pub message: String,
    /// When it was recorded (the latest of a run of failures).
    pub at: SystemTime,
}

#[derive(Debug, Default)]
struct State {
    last_error: Option<LastError>,
    /// Why the component is not ready; `None` when it is.
    not_ready: Option<String>,
}

/// The last failure until the next success, and a ready flag. Cheap and
/// thread-safe; share it between the tasks that make calls.
#[derive(Debug, Default)]
pub struct HealthTracker {
    state: Mutex<State>,
}

impl HealthTracker {
    /// A tracker of a component that is ready and has not failed.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tracker of a component that is not ready yet, for `reason` (e.g. a
    /// consumer before `start`).
    pub fn not_ready(reason: impl Into<String>) -> Self {
        HealthTracker { state: Mutex::new(State { last_error: None, not_ready: Some(reason.into()) }) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half
        // updated: every write is a single assignment.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a failure; answers whether it is the first since the last
    /// success (to log the change from working to failing only once).
    pub fn failed(&self, error: impl Display) -> bool {
        let mut state = self.state();
        let first = state.last_error.is_none();
        state.last_error = Some(LastError { message: error.to_string(), at: SystemTime::now() });
        first
    }

    /// Records a success; answers whether it cleared a failure (to log that
    /// the component works again).
    pub fn succeeded(&self) -> bool {
        self.state().last_error.take().is_some()
    }

    /// Records an outcome: a success clears the last failure, a failure
    /// replaces it.
    pub fn record<T, E: Display>(&self, result: &Result<T, E>) {
        match result {
            Ok(_) => {
                self.succeeded();
            }
            Err(e) => {
                self.failed(e);
            }
        }
    }

    /// The failure recorded last, unless a success came after it.
    pub fn last_error(&self) -> Option<LastError> {
        self.state().last_error.clone()
    }

    /// Marks the component ready (started, connected).
    pub fn set_ready(&self) {
        self.state().not_ready = None;
    }

    /// Marks the component not ready, for `reason` (stopping, stopped).
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        self.state().not_ready = Some(reason.into());
    }

    /// Whether the component is ready.
    pub fn is_ready(&self) -> bool {
        self.state().not_ready.is_none()
    }

    /// The health to report. After a failure: not ok, with `"{context}:
    /// {error}"` as message, and still ready if it was (the next call may
    /// well succeed). Else ok, ready or not with the reason given.
    pub fn health(&self, context: &str) -> Health {
        let state = self.state();
        let ready = state.not_ready.is_none();
        match (&state.last_error, &state.not_ready) {
            (Some(e), _) => Health { ok: false, ready, message: format!("{context}: {}", e.message).into() },
            (None, Some(reason)) => Health { ok: true, ready: false, message: reason.as_str().into() },
            (None, None) => Health::healthy(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_lasts_until_a_success() {
        let t = HealthTracker::new();
        assert_eq!(t.health("last call failed"), Health::healthy());
        let before = SystemTime::now();
        assert!(t.failed("boom"), "the first failure");
        assert!(!t.failed("bang"), "not the first any more");
        let last = t.last_error().unwrap();
        assert_eq!(last.message, "bang");
        assert!(last.at >= before);
        let h = t.health("last call failed");
        assert_eq!((h.ok, h.ready, h.message.as_str()), (false, true, "last call failed: bang"));
        assert!(t.succeeded(), "the success cleared a failure");
        assert!(!t.succeeded());
        assert_eq!(t.health("x"), Health::healthy());
    }

    #[test]
    fn record_takes_results() {
        let t = HealthTracker::new();
        t.record(&Err::<(), _>("refused"));
        assert_eq!(t.last_error().map(|e| e.message).as_deref(), Some("refused"));
        t.record(&Ok::<_, String>(1));
        assert_eq!(t.last_error(), None);
    }

    #[test]
    fn readiness_is_reported_with_its_reason() {
        let t = HealthTracker::not_ready("not consuming");
        assert!(!t.is_ready());
        let h = t.health("x");
        assert_eq!((h.ok, h.ready, h.message.as_str()), (true, false, "not consuming"));
        t.set_ready();
        assert_eq!(t.health("x"), Health::healthy());
        t.set_not_ready("stopped");
        t.failed("down");
        let h = t.health("pulling fails");
        assert_eq!((h.ok, h.ready, h.message.as_str()), (false, false, "pulling fails: down"));
    }
}
