//! The plugin's errors and how they map onto the host's error kinds.

use std::time::Duration;

use heroic_plugin_api::{ErrorKind, PluginError};
use prost::Message as _;
use tonic::{Code, Status};

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
    #[error("invalid input: {0}")]
    InvalidInput(String),
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

/// The wait a failed call's `google.rpc.RetryInfo` asks for, if its status
/// carries one (Google sends it with `RESOURCE_EXHAUSTED` and `UNAVAILABLE`
/// when it knows when to come back).
pub fn retry_hint(status: &Status) -> Option<Duration> {
    let details = RpcStatus::decode(status.details()).ok()?;
    retry_hint_in(details.details.iter().map(|d| (d.type_url.as_str(), d.value.as_slice())))
}

/// The wait asked for by the `RetryInfo` among a status's details, given as
/// `(type_url, value)` pairs (MutateRows reports a status per entry).
pub fn retry_hint_in<'a>(details: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Option<Duration> {
    details.into_iter().filter(|(type_url, _)| type_url.ends_with("/google.rpc.RetryInfo")).find_map(|(_, value)| {
        let delay = RetryInfo::decode(value).ok()?.retry_delay?;
        let delay = Duration::new(u64::try_from(delay.seconds).ok()?, u32::try_from(delay.nanos).ok()?);
        (!delay.is_zero()).then_some(delay)
    })
}

// The few fields of `google.rpc` messages the retry hint needs, decoded
// with prost directly: the generated `google.rpc` crate would be one more
// dependency (with its own feature set) for three fields.

/// `google.rpc.Status`, as carried in `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(message, repeated, tag = "3")]
    details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
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
            BigtableError::InvalidInput(_) => ErrorKind::INVALID_INPUT,
            BigtableError::Protocol(_) => ErrorKind::INTERNAL,
            BigtableError::ShutDown => ErrorKind::UNAVAILABLE,
            BigtableError::BulkStopped => ErrorKind::INTERNAL,
        };
        PluginError::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(type_url: &str, value: Vec<u8>) -> ProtoAny {
        ProtoAny { type_url: type_url.into(), value }
    }

    #[test]
    fn retry_info_in_the_status_details_is_the_hint() {
        let info = RetryInfo { retry_delay: Some(ProtoDuration { seconds: 2, nanos: 500_000_000 }) };
        let details = RpcStatus {
            details: vec![
                any("type.googleapis.com/google.rpc.ErrorInfo", vec![1, 2, 3]),
                any("type.googleapis.com/google.rpc.RetryInfo", info.encode_to_vec()),
            ],
        };
        let status = Status::with_details(Code::ResourceExhausted, "quota", details.encode_to_vec().into());
        assert_eq!(retry_hint(&status), Some(Duration::from_millis(2500)));
    }

    #[test]
    fn no_hint_without_a_usable_retry_info() {
        assert_eq!(retry_hint(&Status::unavailable("down")), None);
        let garbage = Status::with_details(Code::Unavailable, "down", vec![0xff, 0xff].into());
        assert_eq!(retry_hint(&garbage), None);
        let negative = RetryInfo { retry_delay: Some(ProtoDuration { seconds: -1, nanos: 0 }) }.encode_to_vec();
        let zero = RetryInfo { retry_delay: None }.encode_to_vec();
        for value in [negative, zero] {
            assert_eq!(retry_hint_in([("type.googleapis.com/google.rpc.RetryInfo", value.as_slice())]), None);
        }
    }
}
