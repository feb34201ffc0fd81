//! The plugin's errors and how they map onto the host's error kinds.

use std::time::Duration;

use heroic_plugin_api::{ErrorKind, PluginError};
use tonic::Code;

// Clone: one failed MutateRows call of the bulk coalescer answers every
// write that had entries in it.
#[derive(Clone, Debug, thiserror::Error)]
pub enum BigtableError {
    #[error("invalid bigtable config: {0}")]
    Config(String),
    #[error("cannot connect to bigtable at {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("cannot get credentials for bigtable: {0}")]
    Credentials(String),
    #[error("bigtable {operation} failed after {attempts} attempt(s): {code:?}: {message}")]
    Rpc { operation: &'static str, attempts: u32, code: Code, message: String },
    #[error("bigtable {operation} timed out after {attempts} attempt(s) of {timeout:?} each")]
    Timeout { operation: &'static str, attempts: u32, timeout: Duration },
    #[error("bigtable {operation}: {failed} of {total} row mutations failed; first: {first}")]
    PartialWrite { operation: &'static str, failed: usize, total: usize, first: String },
    #[error(
        "refused {refused} series whose row key is {bytes} bytes or more (limit {limit} bytes), e.g. key {example:?}"
    )]
    RowKeyTooLarge { refused: usize, bytes: usize, limit: usize, example: String },
    #[error("bigtable returned a malformed read stream: {0}")]
    Protocol(String),
    #[error("the bigtable backend is shut down")]
    ShutDown,
    #[error("the bigtable bulk writer stopped before the write was applied")]
    BulkStopped,
}

impl From<heroic_gcp::GcpError> for BigtableError {
    fn from(e: heroic_gcp::GcpError) -> Self {
        match e {
            heroic_gcp::GcpError::Connect { endpoint, reason } => BigtableError::Connect { endpoint, reason },
            heroic_gcp::GcpError::Credentials(reason) => BigtableError::Credentials(reason),
            e @ heroic_gcp::GcpError::RemoteEmulator { .. } => BigtableError::Config(e.to_string()),
        }
    }
}

/// Folds the outcomes of one write's row entries into the write's answer:
/// the entries' error when all of them failed, else a `PartialWrite`
/// naming the first failure.
#[derive(Debug)]
pub struct EntryTally {
    total: usize,
    failed: usize,
    first: Option<BigtableError>,
}

impl EntryTally {
    pub fn new(total: usize) -> Self {
        EntryTally { total, failed: 0, first: None }
    }

    /// One more entry than counted at creation (the bulk writer split one
    /// over two MutateRows calls).
    pub fn grow(&mut self) {
        self.total += 1;
    }

    /// Records one entry's outcome: `None` when it was applied.
    pub fn add(&mut self, failure: Option<BigtableError>) {
        if let Some(e) = failure {
            self.failed += 1;
            self.first.get_or_insert(e);
        }
    }

    pub fn finish(self) -> Result<(), BigtableError> {
        match self.first {
            None => Ok(()),
            Some(e) if self.failed == self.total => Err(e),
            Some(e) => Err(BigtableError::PartialWrite {
                operation: "mutate rows",
                failed: self.failed,
                total: self.total,
                first: e.to_string(),
            }),
        }
    }
}

/// Whether a failed call may succeed if tried again: the transient codes
/// Google's client libraries retry for idempotent calls. Every call this
/// plugin makes is idempotent (cells are written at a fixed timestamp).
pub fn is_retryable(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::ResourceExhausted)
}

impl From<BigtableError> for PluginError {
    fn from(e: BigtableError) -> Self {
        let kind = match &e {
            BigtableError::Config(_) => ErrorKind::CONFIG,
            BigtableError::Connect { .. } => ErrorKind::UNAVAILABLE,
            BigtableError::Credentials(_) => ErrorKind::CONFIG,
            BigtableError::Rpc { code, .. } => match code {
                Code::Unavailable | Code::Aborted | Code::ResourceExhausted => ErrorKind::UNAVAILABLE,
                Code::DeadlineExceeded | Code::Cancelled => ErrorKind::TIMEOUT,
                Code::InvalidArgument | Code::OutOfRange => ErrorKind::INVALID_INPUT,
                Code::NotFound | Code::FailedPrecondition | Code::PermissionDenied | Code::Unauthenticated => {
                    ErrorKind::CONFIG
                }
                Code::Unimplemented => ErrorKind::UNSUPPORTED,
                _ => ErrorKind::INTERNAL,
            },
            BigtableError::Timeout { .. } => ErrorKind::TIMEOUT,
            BigtableError::PartialWrite { .. } => ErrorKind::UNAVAILABLE,
            BigtableError::RowKeyTooLarge { .. } => ErrorKind::INVALID_INPUT,
            BigtableError::Protocol(_) => ErrorKind::INTERNAL,
            BigtableError::ShutDown => ErrorKind::UNAVAILABLE,
            BigtableError::BulkStopped => ErrorKind::INTERNAL,
        };
        PluginError::new(kind, e)
    }
}
