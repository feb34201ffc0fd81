//! Disks that fill up, for fault tests: a small tmpfs mounted for a test's
//! lifetime, and a file that takes every byte left on it.
//!
//! Mounting needs the right to (root, as in CI). Where it is missing, a test
//! fails with a clear message unless `HEROIC_SKIP_MOUNT_TESTS` is set, in
//! which case [`Tmpfs::mount`] answers `None` and says `SKIPPED`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted until dropped.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount`'s syntax: `16m`) at `path`.
    pub fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).expect("create the mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "heroic-test"])
            .arg(path)
            .output()
            .expect("run mount");
        if out.status.success() {
            return Some(Tmpfs(path.to_path_buf()));
        }
        let why = String::from_utf8_lossy(&out.stderr);
        if std::env::var_os("HEROIC_SKIP_MOUNT_TESTS").is_some() {
            super::report(&format!("SKIPPED: cannot mount a tmpfs ({}); HEROIC_SKIP_MOUNT_TESTS is set", why.trim()));
            return None;
        }
        panic!("cannot mount a tmpfs at {}: {why}; run as root or set HEROIC_SKIP_MOUNT_TESTS=1", path.display());
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a process of the test may still hold files open on it.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros to a new file at `path` until its file system is full.
pub fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).expect("create the filler file");
    let chunk = vec![0u8; 64 * 1024];
    let e = loop {
        if let Err(e) = f.write_all(&chunk) {
            break e;
        }
    };
    assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "filling {}: {e}", path.display());
    // The last partial chunk, down to the last byte.
    while f.write_all(&[0]).is_ok() {}
}
