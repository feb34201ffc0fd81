//! Shared by the emulator-backed tests: makes sure `cbtemulator` is
//! running (starting it through `scripts/servers/bigtable.sh` if not) and
//! builds configs pointing at it. A missing emulator fails the test with
//! the script's explanation; nothing is skipped.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Where `scripts/servers/bigtable.sh` starts the emulator.
pub const EMULATOR: &str = "127.0.0.1:8086";

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

fn answers() -> bool {
    let addr: SocketAddr = EMULATOR.parse().expect("valid address");
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Panics with a clear message when the emulator is neither running nor
/// startable.
pub fn ensure_emulator() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        if answers() {
            return Ok(());
        }
        let script = workspace_root().join("scripts/servers/bigtable.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("start")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if out.status.success() && answers() {
            Ok(())
        } else {
            Err(format!(
                "the Bigtable emulator is not running on {EMULATOR} and `{} start` failed ({}):\n{}{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = ready {
        panic!("{e}");
    }
}

/// A table name unique to this test process, so runs and test binaries do
/// not see each other's series.
pub fn unique_table(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}-{}-{:x}", std::process::id(), nanos % (1 << 32))
}

/// The plugin config for the emulator and `table`.
pub fn config(table: &str) -> serde_json::Value {
    serde_json::json!({
        "project": "heroic-test",
        "instance": "test",
        "table": table,
        "emulatorEndpoint": EMULATOR,
        "shortRpcTimeoutMs": 5000,
    })
}

/// `target/<profile>`: the directory above this test executable's `deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent().and_then(|p| p.parent()).expect("target/<profile>/deps/<test>").to_path_buf()
}
