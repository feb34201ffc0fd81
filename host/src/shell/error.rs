//! The shell's error: what went wrong, worded for the person at the terminal.

use heroic_plugin_api::PluginError;

use crate::config::ConfigError;
use crate::http::error::ApiError;
use crate::plugins::PluginSetupError;
use crate::writer::WriteError;

#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// The command line asks for something impossible (unknown profile, bad
    /// `-X`, malformed JSON …): exit code 2, like clap's own usage errors.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot start the backends: {0}")]
    Setup(#[from] PluginSetupError),
    /// A request refused or failed as the HTTP API would refuse it.
    #[error("{0}")]
    Request(String),
    #[error("{role} backend {id:?}: {error}")]
    Backend { role: &'static str, id: String, error: PluginError },
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The task printed its answer, but some backends failed (the answer's
    /// `errors`, or several backends of `configure`).
    #[error("{count} backend error(s); first: {first}")]
    Partial { count: usize, first: String },
    /// Tasks piped on stdin failed (each was reported as it failed).
    #[error("{count} task(s) failed; first: {first}")]
    Failed { count: usize, first: String },
    /// `check-data` found damage (listed in its output).
    #[error("damage found: {0}; opening the store keeps what is readable (see docs/reliability.md)")]
    Damaged(String),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl ShellError {
    pub fn usage(message: impl Into<String>) -> Self {
        ShellError::Usage(message.into())
    }

    pub fn backend(role: &'static str, id: &str, error: PluginError) -> Self {
        ShellError::Backend { role, id: id.to_string(), error }
    }

    /// Whether stdout was closed by its reader (`heroic-shell keys | head`):
    /// the reader has what it wanted, so this is no failure to report.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, ShellError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ShellError::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl From<ApiError> for ShellError {
    fn from(e: ApiError) -> Self {
        // A 400 is the user's input (HQL, filter, series); anything else is
        // the backends' doing.
        if e.status == warp::http::StatusCode::BAD_REQUEST {
            ShellError::Usage(e.message)
        } else {
            ShellError::Request(e.message)
        }
    }
}

impl From<heroic_query::QueryError> for ShellError {
    fn from(e: heroic_query::QueryError) -> Self {
        ShellError::Usage(e.to_string())
    }
}
