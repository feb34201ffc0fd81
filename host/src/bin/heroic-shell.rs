//! `heroic-shell`: runs one task against the backends of a config file or
//! of built-in profiles. See docs/shell.md.

use std::time::Duration;

use clap::Parser;
use heroic::shell::ShellArgs;

/// Without `RUST_LOG`, the shell reports its own progress and the backends'
/// warnings, not every plugin's start-up chatter.
const DEFAULT_LOG_FILTER: &str = "warn,heroic::shell=info";

fn main() {
    let args = ShellArgs::parse();
    if std::env::var_os("RUST_LOG").is_none() {
        // Still single-threaded here: nothing else reads the environment.
        std::env::set_var("RUST_LOG", DEFAULT_LOG_FILTER);
    }
    heroic::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(heroic::shell::run(args));
    // Plugins own threads of their own; do not wait for them at exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => {}
        Err(e) if e.is_broken_pipe() => {}
        Err(e) => {
            // Plain text on stderr whatever the log filter: this is the answer.
            eprintln!("error: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
