//! The test servers of a plugin's integration tests: the real servers that
//! the project's `scripts/servers/*.sh` install and start on 127.0.0.1.
//! A test that needs one either requires it ([`require_server`]: fail with
//! instructions) or starts it through its script ([`ensure_server`]); it
//! never skips.

use std::collections::HashMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// Whether something accepts TCP connections at `addr` (`host:port`).
pub fn answers(addr: &str) -> bool {
    let Some(sock) = addr.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return false;
    };
    TcpStream::connect_timeout(&sock, Duration::from_secs(2)).is_ok()
}

/// Panics with instructions when the `name` server does not answer at
/// `addr`; `script` is the script that starts it.
pub fn require_server(name: &str, addr: &str, script: &str) {
    if !answers(addr) {
        panic!(
            "the {name} test server is not running on {addr}: start it with `{script} start` \
             (scripts/test.sh does this), then run the tests again"
        );
    }
}

/// Makes sure the `name` server answers at `addr`, starting it with
/// `bash <script> start` when it does not. The script runs at most once per
/// test process (its outcome is remembered), and a failure panics with the
/// script's output, so a missing server fails the test with the reason.
pub fn ensure_server(name: &str, addr: &str, script: &Path) {
    if answers(addr) {
        return;
    }
    static STARTS: Mutex<Option<HashMap<PathBuf, Result<(), String>>>> = Mutex::new(None);
    let mut starts = STARTS.lock().unwrap_or_else(|e| e.into_inner());
    let outcome = starts.get_or_insert_with(HashMap::new).entry(script.to_path_buf()).or_insert_with(|| {
        let out = Command::new("bash")
            .arg(script)
            .arg("start")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if out.status.success() && answers(addr) {
            Ok(())
        } else {
            Err(format!(
                "the {name} is not running on {addr} and `{} start` failed ({}):\n{}{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
