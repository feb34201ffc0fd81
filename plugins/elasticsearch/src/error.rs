//! The plugin's errors, and how they map onto the host's error kinds.

use heroic_plugin_api::error::PluginError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid elasticsearch config: {0}")]
    Config(String),
    /// No node answered, after every retry.
    #[error("elasticsearch unavailable: {op} failed after {attempts} attempt(s) against {nodes}: {reason}")]
    Unavailable { op: String, attempts: u32, nodes: String, reason: String },
    /// A TLS certificate was refused, by us or by the node: retrying does not help.
    #[error(
        "elasticsearch tls failed: {op} against {nodes}: {reason} (the nodes' certificates must be signed by \
         the CA in tls.ca_file, or a public one, and name the host of the seed url; nodes that ask for a \
         client certificate need tls.cert_file and tls.key_file)"
    )]
    Certificate { op: String, nodes: String, reason: String },
    #[error("elasticsearch timed out: {op} after {attempts} attempt(s): {reason}")]
    Timeout { op: String, attempts: u32, reason: String },
    /// The server refused the request (a 4xx other than 429, or a 5xx left after retries).
    #[error("elasticsearch refused {op}: http {status}: {reason}")]
    Server { op: String, status: u16, reason: String },
    /// Some documents of a bulk write still failed after retries.
    #[error("elasticsearch bulk write: {failed} of {total} document(s) failed after retries; first error: {first}")]
    Bulk { failed: usize, total: usize, first: String },
    #[error("unexpected elasticsearch answer to {op}: {reason}")]
    Decode { op: String, reason: String },
    #[error("invalid request: {0}")]
    InvalidInput(String),
}

impl From<Error> for PluginError {
    fn from(e: Error) -> Self {
        match &e {
            Error::Config(_) | Error::Certificate { .. } => PluginError::config(&e),
            Error::Unavailable { .. } => PluginError::unavailable(&e),
            Error::Timeout { .. } => PluginError::timeout(&e),
            Error::InvalidInput(_) => PluginError::invalid_input(&e),
            Error::Server { status, .. } if *status == 400 => PluginError::invalid_input(&e),
            // Still overloaded or down after the retries: the caller may try
            // again later (consumers back off instead of giving the batch up).
            Error::Server { status: 429, .. } => PluginError::resource_exhausted(&e),
            Error::Server { status: 502..=504, .. } => PluginError::unavailable(&e),
            _ => PluginError::internal(&e),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(status: u16) -> heroic_plugin_api::ErrorKind {
        PluginError::from(Error::Server { op: "search".into(), status, reason: "x".into() }).kind
    }

    #[test]
    fn overload_and_gateway_errors_left_after_retries_are_transient() {
        use heroic_plugin_api::ErrorKind;
        assert_eq!(kind(429), ErrorKind::RESOURCE_EXHAUSTED);
        for status in [502, 503, 504] {
            assert_eq!(kind(status), ErrorKind::UNAVAILABLE, "{status}");
        }
        assert_eq!(kind(400), ErrorKind::INVALID_INPUT);
        assert_eq!(kind(500), ErrorKind::INTERNAL);
        assert!(!PluginError::from(Error::Server { op: "x".into(), status: 500, reason: "x".into() }).is_transient());
    }
}
