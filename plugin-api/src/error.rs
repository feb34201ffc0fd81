//! The error value that crosses the boundary: a kind the host can act on, a
//! human-readable message and an optional hint of when to retry.
//!
//! Both [`ErrorKind`] and the whole of [`PluginError`] are part of the ABI.
//! `ErrorKind` is an integer with named values rather than a Rust enum so
//! that a later interface version can add kinds: code on either side that
//! meets a value it does not know treats it as [`ErrorKind::INTERNAL`] would
//! be treated (not transient), and prints its number.

use std::fmt;
use std::time::Duration;

use abi_stable::std_types::RString;
use abi_stable::StableAbi;

/// What went wrong, coarsely, so the host can choose a status code or retry.
///
/// Compare with the named constants (`kind == ErrorKind::TIMEOUT`, or in a
/// `match` with a `_` arm: new kinds may appear in later minor versions).
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorKind(pub u16);

impl ErrorKind {
    /// The plugin's configuration is invalid (unknown key, bad value).
    pub const CONFIG: ErrorKind = ErrorKind(1);
    /// A server the plugin needs cannot be reached; retrying may help.
    pub const UNAVAILABLE: ErrorKind = ErrorKind(2);
    /// An operation took too long; retrying may help.
    pub const TIMEOUT: ErrorKind = ErrorKind(3);
    /// The request itself is wrong (bad filter, oversized key …); retrying
    /// the same request cannot help.
    pub const INVALID_INPUT: ErrorKind = ErrorKind(4);
    /// The plugin does not implement this operation.
    pub const UNSUPPORTED: ErrorKind = ErrorKind(5);
    /// The plugin panicked; the host keeps running.
    pub const PANIC: ErrorKind = ErrorKind(6);
    /// Anything else.
    pub const INTERNAL: ErrorKind = ErrorKind(7);
    /// Out of a resource that comes back by itself (disk space, a buffer, a
    /// quota, the server is overloaded); retrying later may help.
    pub const RESOURCE_EXHAUSTED: ErrorKind = ErrorKind(8);

    const NAMES: [(ErrorKind, &'static str); 8] = [
        (Self::CONFIG, "config"),
        (Self::UNAVAILABLE, "unavailable"),
        (Self::TIMEOUT, "timeout"),
        (Self::INVALID_INPUT, "invalid input"),
        (Self::UNSUPPORTED, "unsupported"),
        (Self::PANIC, "panic"),
        (Self::INTERNAL, "internal"),
        (Self::RESOURCE_EXHAUSTED, "resource exhausted"),
    ];

    /// The kind's name, or `None` for a kind this version does not know.
    pub fn name(self) -> Option<&'static str> {
        Self::NAMES.iter().find(|(k, _)| *k == self).map(|(_, n)| *n)
    }

    /// The kind's name; `"unknown"` for a kind this version does not know.
    pub fn as_str(self) -> &'static str {
        self.name().unwrap_or("unknown")
    }

    /// Whether the same call may succeed if tried again later. Unknown kinds
    /// are not transient: retrying blindly is the worse mistake.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::UNAVAILABLE | Self::TIMEOUT | Self::RESOURCE_EXHAUSTED)
    }

    /// Whether the failure is tied to what was sent (this series, this
    /// message): sending the same again never succeeds, other data may.
    /// `INVALID_INPUT`, and `PANIC` (a plugin that panics on some data will
    /// again). Other permanent kinds (`INTERNAL`, `CONFIG` …) say the
    /// backend itself is broken: no message is to blame.
    pub fn is_input_specific(self) -> bool {
        matches!(self, Self::INVALID_INPUT | Self::PANIC)
    }
}

impl fmt::Debug for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "unknown({})", self.0),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// An error returned by a plugin.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct PluginError {
    pub kind: ErrorKind,
    pub message: RString,
    /// Wait at least this long before trying the same call again, in
    /// milliseconds (a server's `Retry-After`, a quota's reset); 0 when the
    /// plugin has no hint. Meaningful only for transient kinds.
    pub retry_after_ms: u64,
}

impl PluginError {
    pub fn new(kind: ErrorKind, message: impl fmt::Display) -> Self {
        PluginError { kind, message: message.to_string().into(), retry_after_ms: 0 }
    }

    pub fn config(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::CONFIG, message)
    }

    pub fn unavailable(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::UNAVAILABLE, message)
    }

    pub fn timeout(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::TIMEOUT, message)
    }

    pub fn invalid_input(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::INVALID_INPUT, message)
    }

    pub fn resource_exhausted(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::RESOURCE_EXHAUSTED, message)
    }

    pub fn unsupported(operation: &str) -> Self {
        Self::new(ErrorKind::UNSUPPORTED, format_args!("operation not supported by this plugin: {operation}"))
    }

    pub fn internal(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::INTERNAL, message)
    }

    /// The same error with a retry hint.
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// The retry hint, if the plugin gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        (self.retry_after_ms > 0).then(|| Duration::from_millis(self.retry_after_ms))
    }

    /// Whether the same call may succeed if tried again later.
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} error: {}", self.kind, self.message)
    }
}

impl std::error::Error for PluginError {}

impl From<std::io::Error> for PluginError {
    /// Storage errors: a full disk or quota is worth retrying later, like a
    /// peer that went away; anything else is internal.
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match e.kind() {
            Io::StorageFull | Io::QuotaExceeded | Io::OutOfMemory => ErrorKind::RESOURCE_EXHAUSTED,
            Io::TimedOut => ErrorKind::TIMEOUT,
            Io::ConnectionRefused | Io::ConnectionReset | Io::ConnectionAborted | Io::NotConnected | Io::BrokenPipe => {
                ErrorKind::UNAVAILABLE
            }
            _ => ErrorKind::INTERNAL,
        };
        PluginError::new(kind, e)
    }
}

/// The result type of every plugin operation.
pub type PluginResult<T> = Result<T, PluginError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_kinds_print_their_number_and_are_not_retried() {
        let kind = ErrorKind(999);
        assert_eq!(format!("{kind}"), "unknown(999)");
        assert!(!kind.is_transient());
        assert_eq!(PluginError::new(kind, "x").to_string(), "unknown(999) error: x");
    }

    #[test]
    fn a_full_disk_is_transient() {
        let e = PluginError::from(std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert_eq!(e.kind, ErrorKind::RESOURCE_EXHAUSTED);
        assert!(e.is_transient());
    }

    #[test]
    fn retry_hints_round_trip() {
        let e = PluginError::unavailable("busy").with_retry_after(Duration::from_millis(1500));
        assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
        assert_eq!(PluginError::unavailable("busy").retry_after(), None);
    }
}
