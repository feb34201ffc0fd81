//! The error value that crosses the boundary: a kind the host can act on and
//! a human-readable message.

use std::fmt;

use abi_stable::std_types::RString;
use abi_stable::StableAbi;

/// What went wrong, coarsely, so the host can choose a status code or retry.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The plugin's configuration is invalid (unknown key, bad value).
    Config,
    /// A server the plugin needs cannot be reached; retrying may help.
    Unavailable,
    /// An operation took too long; retrying may help.
    Timeout,
    /// The request itself is wrong (bad filter, oversized key …).
    InvalidInput,
    /// The plugin does not implement this operation.
    Unsupported,
    /// The plugin panicked; the host keeps running.
    Panic,
    /// Anything else.
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Panic => "panic",
            ErrorKind::Internal => "internal",
        }
    }

    /// Whether the same call may succeed if tried again later.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Timeout)
    }
}

/// An error returned by a plugin.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct PluginError {
    pub kind: ErrorKind,
    pub message: RString,
}

impl PluginError {
    pub fn new(kind: ErrorKind, message: impl fmt::Display) -> Self {
        PluginError { kind, message: message.to_string().into() }
    }

    pub fn config(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub fn unavailable(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    pub fn timeout(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    pub fn invalid_input(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    pub fn unsupported(operation: &str) -> Self {
        Self::new(ErrorKind::Unsupported, format_args!("operation not supported by this plugin: {operation}"))
    }

    pub fn internal(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} error: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for PluginError {}

impl From<std::io::Error> for PluginError {
    fn from(e: std::io::Error) -> Self {
        PluginError::internal(e)
    }
}

/// The result type of every plugin operation.
pub type PluginResult<T> = Result<T, PluginError>;
