//! The plugin's errors, and how the driver's errors map onto the host's
//! error kinds (which also decide what is retried).
//!
//! The driver's errors nest several levels deep (an execution error holds a
//! request error holding a connection error holding a server error …) and
//! some of its variants are `#[error(transparent)]`, which hides them from
//! `Error::source`. So the mapping matches each level explicitly.

use heroic_plugin_api::{ErrorKind, PluginError};
use scylla::errors::{
    ConnectionError, ConnectionPoolError, ConnectionSetupRequestErrorKind, DbError, ExecutionError, MetadataError,
    NewSessionError, NextPageError, NextRowError, PagerExecutionError, PrepareError, RequestAttemptError, RequestError,
};

#[derive(Clone, Debug, thiserror::Error)]
pub enum CassandraError {
    #[error("invalid cassandra config: {0}")]
    Config(String),
    #[error("cannot connect to cassandra at {seeds}: {reason}")]
    Connect { seeds: String, kind: ErrorKind, reason: String },
    #[error("cassandra {operation} failed after {attempts} attempt(s): {message}")]
    Cql { operation: &'static str, attempts: u32, kind: ErrorKind, message: String },
    #[error("cassandra statements cannot be prepared ({0}); does the table exist? start with configure = true")]
    Prepare(Failure),
    #[error(
        "refused {refused} series whose row key is {bytes} bytes or more (limit {limit} bytes), e.g. key {example:?}"
    )]
    RowKeyTooLarge { refused: usize, bytes: usize, limit: usize, example: String },
    #[error(
        "refused {refused} points outside the stored window [{min}, {max}] ms \
         (minTimestampMs, maxTimestampMs), e.g. {example}"
    )]
    OutOfWindow { refused: usize, min: i64, max: i64, example: i64 },
    #[error("invalid list cursor {0:?}: expected a token (a 64-bit integer)")]
    Cursor(String),
}

impl CassandraError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            CassandraError::Config(_) => ErrorKind::CONFIG,
            CassandraError::Connect { kind, .. } | CassandraError::Cql { kind, .. } => *kind,
            CassandraError::Prepare(failure) => match failure.kind {
                ErrorKind::UNAVAILABLE | ErrorKind::TIMEOUT => failure.kind,
                _ => ErrorKind::CONFIG,
            },
            CassandraError::RowKeyTooLarge { .. } | CassandraError::OutOfWindow { .. } | CassandraError::Cursor(_) => {
                ErrorKind::INVALID_INPUT
            }
        }
    }

    /// The caller's mistake rather than the backend's: does not make the
    /// backend unhealthy.
    pub fn is_caller_error(&self) -> bool {
        self.kind() == ErrorKind::INVALID_INPUT
    }
}

impl From<CassandraError> for PluginError {
    fn from(e: CassandraError) -> Self {
        PluginError::new(e.kind(), e)
    }
}

/// One failed attempt: what kind of failure, and the driver's message.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
#[error("{message}")]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

impl Failure {
    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_transient()
    }

    pub fn new(kind: ErrorKind, message: impl std::fmt::Display) -> Self {
        Failure { kind, message: message.to_string() }
    }
}

macro_rules! failure_from {
    ($($error:ty => $classify:ident),* $(,)?) => {$(
        impl From<$error> for Failure {
            fn from(e: $error) -> Self {
                Failure::new($classify(&e), e)
            }
        }
    )*};
}

failure_from! {
    ExecutionError => execution_kind,
    PagerExecutionError => pager_kind,
    NextRowError => next_row_kind,
    PrepareError => prepare_kind,
    NewSessionError => new_session_kind,
}

/// What a server-side error means for the host.
pub fn db_kind(e: &DbError) -> ErrorKind {
    match e {
        DbError::Unavailable { .. }
        | DbError::Overloaded
        | DbError::IsBootstrapping
        | DbError::RateLimitReached { .. }
        | DbError::ReadFailure { .. }
        | DbError::WriteFailure { .. } => ErrorKind::UNAVAILABLE,
        DbError::ReadTimeout { .. } | DbError::WriteTimeout { .. } => ErrorKind::TIMEOUT,
        // "unconfigured table", "keyspace does not exist", a table whose
        // columns are not Heroic's: the deployment, not the request.
        DbError::Invalid | DbError::AuthenticationError | DbError::Unauthorized | DbError::ConfigError => {
            ErrorKind::CONFIG
        }
        _ => ErrorKind::INTERNAL,
    }
}

fn attempt_kind(e: &RequestAttemptError) -> ErrorKind {
    match e {
        RequestAttemptError::DbError(db, _) => db_kind(db),
        RequestAttemptError::BrokenConnectionError(_) | RequestAttemptError::UnableToAllocStreamId => {
            ErrorKind::UNAVAILABLE
        }
        RequestAttemptError::SerializationError(_) => ErrorKind::INVALID_INPUT,
        _ => ErrorKind::INTERNAL,
    }
}

fn connection_kind(e: &ConnectionError) -> ErrorKind {
    match e {
        ConnectionError::ConnectionSetupRequestError(setup) => match &setup.error {
            ConnectionSetupRequestErrorKind::DbError(db, _) => match db_kind(db) {
                ErrorKind::CONFIG => ErrorKind::CONFIG,
                _ => ErrorKind::UNAVAILABLE,
            },
            ConnectionSetupRequestErrorKind::MissingAuthentication
            | ConnectionSetupRequestErrorKind::StartAuthSessionError(_)
            | ConnectionSetupRequestErrorKind::AuthChallengeEvaluationError(_)
            | ConnectionSetupRequestErrorKind::AuthFinishError(_) => ErrorKind::CONFIG,
            _ => ErrorKind::UNAVAILABLE,
        },
        ConnectionError::ConnectTimeout => ErrorKind::TIMEOUT,
        // A certificate the CA does not vouch for stays so on retry.
        ConnectionError::IoError(io) if crate::tls::is_certificate_error(io) => ErrorKind::CONFIG,
        _ => ErrorKind::UNAVAILABLE,
    }
}

fn pool_kind(e: &ConnectionPoolError) -> ErrorKind {
    match e {
        ConnectionPoolError::Broken { last_connection_error } => match connection_kind(last_connection_error) {
            // A connect timeout on every node is the server being down.
            ErrorKind::TIMEOUT => ErrorKind::UNAVAILABLE,
            kind => kind,
        },
        _ => ErrorKind::UNAVAILABLE,
    }
}

fn request_kind(e: &RequestError) -> ErrorKind {
    match e {
        RequestError::ConnectionPoolError(p) => pool_kind(p),
        RequestError::RequestTimeout(_) => ErrorKind::TIMEOUT,
        RequestError::LastAttemptError(a) => attempt_kind(a),
        _ => ErrorKind::UNAVAILABLE,
    }
}

fn execution_kind(e: &ExecutionError) -> ErrorKind {
    match e {
        ExecutionError::BadQuery(_) => ErrorKind::INVALID_INPUT,
        ExecutionError::PrepareError(p) => prepare_kind(p),
        ExecutionError::ConnectionPoolError(p) => pool_kind(p),
        ExecutionError::LastAttemptError(a) => attempt_kind(a),
        ExecutionError::RequestTimeout(_) => ErrorKind::TIMEOUT,
        ExecutionError::MetadataError(m) => metadata_kind(m),
        _ => ErrorKind::UNAVAILABLE,
    }
}

fn prepare_kind(e: &PrepareError) -> ErrorKind {
    match e {
        PrepareError::ConnectionPoolError(p) => pool_kind(p),
        PrepareError::AllAttemptsFailed { first_attempt } => attempt_kind(first_attempt),
        _ => ErrorKind::INTERNAL,
    }
}

fn next_page_kind(e: &NextPageError) -> ErrorKind {
    match e {
        NextPageError::RequestFailure(r) => request_kind(r),
        _ => ErrorKind::INTERNAL,
    }
}

fn pager_kind(e: &PagerExecutionError) -> ErrorKind {
    match e {
        PagerExecutionError::PrepareError(p) => prepare_kind(p),
        PagerExecutionError::SerializationError(_) => ErrorKind::INVALID_INPUT,
        PagerExecutionError::NextPageError(n) => next_page_kind(n),
        PagerExecutionError::MetadataError(m) => metadata_kind(m),
        _ => ErrorKind::UNAVAILABLE,
    }
}

fn next_row_kind(e: &NextRowError) -> ErrorKind {
    match e {
        NextRowError::NextPageError(n) => next_page_kind(n),
        // A row of unexpected types: the table is not Heroic's.
        _ => ErrorKind::CONFIG,
    }
}

fn metadata_kind(e: &MetadataError) -> ErrorKind {
    match e {
        MetadataError::ConnectionPoolError(p) => pool_kind(p),
        _ => ErrorKind::UNAVAILABLE,
    }
}

fn new_session_kind(e: &NewSessionError) -> ErrorKind {
    match e {
        NewSessionError::MetadataError(m) => metadata_kind(m),
        NewSessionError::EmptyKnownNodesList | NewSessionError::IllegalConfig(_) => ErrorKind::CONFIG,
        // Unresolvable seeds, a keyspace the cluster does not have.
        _ => ErrorKind::UNAVAILABLE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_map_to_host_kinds() {
        assert_eq!(db_kind(&DbError::Overloaded), ErrorKind::UNAVAILABLE);
        assert_eq!(db_kind(&DbError::Invalid), ErrorKind::CONFIG);
        assert_eq!(db_kind(&DbError::SyntaxError), ErrorKind::INTERNAL);
        assert_eq!(db_kind(&DbError::Unauthorized), ErrorKind::CONFIG);
        let e = ExecutionError::RequestTimeout(std::time::Duration::from_secs(1));
        let failure = Failure::from(e);
        assert_eq!(failure.kind, ErrorKind::TIMEOUT);
        assert!(failure.is_retryable());
        let e = ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::Invalid,
            "unconfigured table".into(),
        ));
        let failure = Failure::from(e);
        assert_eq!(failure.kind, ErrorKind::CONFIG);
        assert!(!failure.is_retryable());
        assert!(failure.message.contains("unconfigured table"), "{}", failure.message);
    }

    #[test]
    fn plugin_errors_carry_their_kind() {
        let e = CassandraError::Prepare(Failure::new(ErrorKind::CONFIG, "unconfigured table metrics"));
        let p = PluginError::from(e);
        assert_eq!(p.kind, ErrorKind::CONFIG);
        assert!(p.message.contains("configure = true"), "{p}");
        let e = CassandraError::Prepare(Failure::new(ErrorKind::UNAVAILABLE, "no connection"));
        assert_eq!(e.kind(), ErrorKind::UNAVAILABLE);
        let e = CassandraError::OutOfWindow { refused: 2, min: 0, max: 10, example: -5 };
        assert!(e.is_caller_error());
        assert!(e.to_string().contains("minTimestampMs"), "{e}");
    }
}
