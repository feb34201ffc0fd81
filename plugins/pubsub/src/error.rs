//! The plugin's errors and how they map onto the host's error kinds.

use heroic_plugin_api::{ErrorKind, PluginError};
use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum PubsubError {
    #[error("invalid pubsub config: {0}")]
    Config(String),
    #[error("cannot connect to pubsub at {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("cannot get credentials for pubsub: {0}")]
    Credentials(String),
    #[error("pubsub {operation} failed: {code:?}: {message}")]
    Rpc { operation: &'static str, code: Code, message: String },
}

impl PubsubError {
    pub fn rpc(operation: &'static str, status: tonic::Status) -> Self {
        PubsubError::Rpc { operation, code: status.code(), message: status.message().to_string() }
    }
}

impl From<heroic_gcp::GcpError> for PubsubError {
    fn from(e: heroic_gcp::GcpError) -> Self {
        match e {
            heroic_gcp::GcpError::Connect { endpoint, reason } => PubsubError::Connect { endpoint, reason },
            heroic_gcp::GcpError::Credentials(reason) => PubsubError::Credentials(reason),
            e @ heroic_gcp::GcpError::RemoteEmulator { .. } => PubsubError::Config(e.to_string()),
        }
    }
}

impl From<PubsubError> for PluginError {
    fn from(e: PubsubError) -> Self {
        let kind = match &e {
            PubsubError::Config(_) | PubsubError::Credentials(_) => ErrorKind::CONFIG,
            PubsubError::Connect { .. } => ErrorKind::UNAVAILABLE,
            PubsubError::Rpc { code, .. } => match code {
                Code::NotFound | Code::PermissionDenied | Code::Unauthenticated | Code::InvalidArgument => {
                    ErrorKind::CONFIG
                }
                Code::DeadlineExceeded | Code::Cancelled => ErrorKind::TIMEOUT,
                _ => ErrorKind::UNAVAILABLE,
            },
        };
        PluginError::new(kind, e)
    }
}
