//! An exclusive advisory lock on a data directory, so that two processes
//! (say a running node and `heroic-shell -P local`) never open the same
//! store: both would append to the same logs and replay, truncate or delete
//! each other's files.
//!
//! The lock is `flock` on `<dir>/LOCK`, through `File::try_lock`. It belongs
//! to the open file, not to the process, so a second open in the same
//! process conflicts too, and it is released when the file is closed (the
//! store dropped) or the process dies, even by SIGKILL: a crash leaves no
//! stale lock behind. The holder writes its pid into the file only for the
//! error message; the pid is never trusted for locking.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{Error, IoContext, Result};

pub(crate) const LOCK_FILE: &str = "LOCK";

/// Held for as long as the store that owns it; dropping it unlocks.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Locks `dir` (which must exist) or fails at once with
    /// [`Error::Locked`] when another open file holds the lock.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        // Not truncated at open: the file may hold the current holder's pid.
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).ctx(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                // The holder may be between truncating and writing its pid.
                let pid = file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
                return Err(Error::Locked { dir: dir.to_path_buf(), pid });
            }
            Err(TryLockError::Error(e)) => return Err(e).ctx(&path),
        }
        file.set_len(0).ctx(&path)?;
        file.seek(SeekFrom::Start(0)).ctx(&path)?;
        writeln!(file, "{}", std::process::id()).ctx(&path)?;
        Ok(DirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_fails_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(&err, Error::Locked { pid: Some(pid), .. } if *pid == std::process::id()), "{err}");
        assert!(err.to_string().contains("is in use"), "{err}");
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }
}
