//! The plugin's own tokio runtime.
//!
//! A plugin cannot use the host's runtime: tokio's thread-locals are separate
//! copies in each library, so inside a plugin there is "no reactor running"
//! even on a host thread. Every call is therefore spawned onto this runtime
//! and the host only awaits the join handle (see plugin-abi-findings.md).

use std::any::Any;
use std::future::Future;
use std::sync::OnceLock;

use abi_stable::std_types::RResult;
use async_ffi::FutureExt;
use tokio::runtime::Runtime;

use crate::error::{ErrorKind, PluginError, PluginResult};
use crate::ffi::PluginFuture;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The runtime all of this plugin's work runs on. Its size is the number of
/// CPUs, or `HEROIC_PLUGIN_THREADS` when set.
pub fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        let threads = std::env::var("HEROIC_PLUGIN_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("heroic-plugin")
            .enable_all()
            .build()
            .expect("failed to start the plugin runtime")
    })
}

/// Runs `work` on the plugin runtime and returns a future the host can await.
/// A panic inside `work` becomes a `Panic` error instead of unwinding into
/// the host.
pub fn spawn_ffi<T, F>(work: F) -> PluginFuture<T>
where
    T: Send + 'static,
    F: Future<Output = PluginResult<T>> + Send + 'static,
{
    let handle = runtime().spawn(work);
    async move {
        let result = match handle.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(panic_error(e.into_panic())),
            Err(_) => Err(PluginError::internal("plugin task was cancelled")),
        };
        RResult::from(result)
    }
    .into_ffi()
}

/// A future that is already complete, for answers that need no work.
pub fn ready_ffi<T: Send + 'static>(result: PluginResult<T>) -> PluginFuture<T> {
    std::future::ready(RResult::from(result)).into_ffi()
}

/// Runs a synchronous entry point, turning a panic into an error.
pub fn guard<T>(f: impl FnOnce() -> PluginResult<T>) -> PluginResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| Err(panic_error(p)))
}

/// Like [`guard`] for entry points that return a plain value: a panic gives `fallback`.
pub fn guard_or<T>(fallback: impl FnOnce(PluginError) -> T, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| fallback(panic_error(p)))
}

fn panic_error(payload: Box<dyn Any + Send>) -> PluginError {
    let message = if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    };
    PluginError::new(ErrorKind::Panic, format_args!("plugin panicked: {message}"))
}
