//! Errors of the storage engine. Every message names the file involved, so
//! an operator can find it.

use std::io;
use std::path::{Path, PathBuf};

use heroic_plugin_api::filter::FilterError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("i/o error on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("corrupt file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("compression failed: {0}")]
    Codec(String),
    #[error("invalid filter: {0}")]
    Filter(#[from] FilterError),
    #[error("invalid write: {0}")]
    InvalidInput(String),
    /// A write or fsync of a log failed; the write was not stored. The log
    /// recovers by itself once the disk takes writes again.
    #[error("{reason}; the write was not stored, retry later")]
    LogFailed { path: PathBuf, reason: String, storage_full: bool },
    /// The in-memory head is over its bound: flushing fell behind (or fails).
    #[error("{points} points wait in memory to be flushed, over head_limit_points ({limit}){}; retry later",
        cause.as_ref().map(|c| format!(": flushing fails ({c})")).unwrap_or_default())]
    Busy { points: usize, limit: usize, cause: Option<String> },
    /// Another open store holds the directory's lock (see `dir_lock`).
    #[error(
        "data directory {} is in use by another process{}; stop it or use another data_dir",
        dir.display(),
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked { dir: PathBuf, pid: Option<u32> },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Attaches a path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn ctx(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Io { path: path.to_path_buf(), source })
    }
}

pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Error {
    Error::Corrupt { path: path.to_path_buf(), reason: reason.into() }
}
