//! The plugin's own tokio runtime, and the guards that keep panics and
//! failures from crossing the boundary.
//!
//! A plugin cannot use the host's runtime: tokio's thread-locals are separate
//! copies in each library, so inside a plugin there is "no reactor running"
//! even on a host thread. Every call is therefore polled with this runtime
//! entered (`InPlace`), on whichever thread the host polls it (see
//! `docs/plugins.md`, "What the SDK does for you").
//!
//! Nothing here may panic: these functions run inside `extern "C"` entry
//! points, where a panic aborts the whole process. Failures become
//! [`PluginError`] values instead.

use std::any::Any;
use std::future::Future;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use abi_stable::std_types::RResult;
use async_ffi::FutureExt;
use tokio::runtime::Runtime;

use crate::error::{ErrorKind, PluginError, PluginResult};
use crate::ffi::PluginFuture;

/// The environment variable that sizes each plugin's runtime.
pub const THREADS_VAR: &str = "HEROIC_PLUGIN_THREADS";

/// Most worker threads a plugin runtime may be asked for.
pub const MAX_THREADS: usize = 1024;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// Worker threads per plugin runtime: `HEROIC_PLUGIN_THREADS` when set, else
/// the number of CPUs. An invalid value is an error naming the variable (the
/// host checks it at start, so that a node does not start with it).
pub fn configured_threads() -> Result<usize, String> {
    match std::env::var(THREADS_VAR) {
        Err(std::env::VarError::NotPresent) => Ok(std::thread::available_parallelism().map_or(2, |n| n.get())),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{THREADS_VAR} is not valid UTF-8")),
        Ok(value) => match value.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
            _ => Err(format!("{THREADS_VAR} must be a whole number from 1 to {MAX_THREADS}, got {value:?}")),
        },
    }
}

/// Builds the runtime inside a panic guard: this runs in whichever entry
/// point first needs the runtime, and a panic there (tokio's builder panics
/// on some invalid settings) must become an error, not cross the boundary.
fn build_runtime() -> Result<Runtime, String> {
    std::panic::catch_unwind(build_runtime_unguarded)
        .unwrap_or_else(|p| Err(format!("cannot start the plugin runtime: {}", panic_error(p).message)))
}

fn build_runtime_unguarded() -> Result<Runtime, String> {
    let threads = configured_threads().unwrap_or_else(|e| {
        let fallback = std::thread::available_parallelism().map_or(2, |n| n.get());
        tracing::warn!(threads = fallback, "{e}; using the number of CPUs");
        fallback
    });
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("heroic-plugin")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the plugin runtime ({threads} threads): {e}"))
}

/// The runtime all of this plugin's work runs on, started on first use; an
/// error when it could not be started.
pub fn try_runtime() -> PluginResult<&'static Runtime> {
    match RUNTIME.get_or_init(build_runtime) {
        Ok(rt) => Ok(rt),
        Err(e) => Err(PluginError::internal(e)),
    }
}

/// The runtime all of this plugin's work runs on.
///
/// The SDK starts it before the first component is created and refuses to
/// create components when it cannot, so plugin code reached through the SDK
/// can rely on it. (Only if it could not be started does this panic.)
pub fn runtime() -> &'static Runtime {
    match try_runtime() {
        Ok(rt) => rt,
        Err(e) => panic!("{e}"),
    }
}

/// Runs `work` for the host and returns a future the host can await. A
/// panic inside `work` becomes a `Panic` error instead of unwinding into
/// the host. The work runs to the end even if the host stops waiting: use
/// this for calls whose effect must not be cut short (writes, deletes).
pub fn spawn_ffi<T, F>(work: F) -> PluginFuture<T>
where
    T: Send + 'static,
    F: Future<Output = PluginResult<T>> + Send + 'static,
{
    run(work, false)
}

/// Like [`spawn_ffi`], but dropping the returned future (the host stopped
/// waiting) cancels the work: for reads, whose answer nobody wants any more.
pub fn spawn_ffi_cancellable<T, F>(work: F) -> PluginFuture<T>
where
    T: Send + 'static,
    F: Future<Output = PluginResult<T>> + Send + 'static,
{
    run(work, true)
}

fn run<T, F>(work: F, cancel_on_drop: bool) -> PluginFuture<T>
where
    T: Send + 'static,
    F: Future<Output = PluginResult<T>> + Send + 'static,
{
    let runtime = match try_runtime() {
        Ok(rt) => rt,
        Err(e) => return ready_ffi(Err(e)),
    };
    InPlace::<T> { work: Some(Box::pin(work)), runtime, cancel_on_drop }.into_ffi()
}

/// A plugin call polled on the host's thread, inside this plugin's runtime
/// context.
///
/// Why not spawn it on the plugin runtime and await the join handle: that
/// costs two thread wake-ups a call (host to plugin worker and back,
/// 17-27 us measured), more than a write or a cached read takes. Entering
/// the runtime for each poll gives the work this library's copy of tokio's
/// thread-locals, so `spawn`, `spawn_blocking`, timers and I/O find the
/// plugin's runtime as they would on its own threads; wakers are the
/// host's, called across the boundary through `async-ffi`.
///
/// Dropped unfinished, the work is cancelled (`cancel_on_drop`, reads) or
/// moved to the plugin runtime to run to its end (writes, deletes), as a
/// spawned task would.
struct InPlace<T: Send + 'static> {
    work: Option<Work<T>>,
    runtime: &'static Runtime,
    cancel_on_drop: bool,
}

/// A call's work, boxed once when the call is made.
type Work<T> = std::pin::Pin<Box<dyn Future<Output = PluginResult<T>> + Send>>;

impl<T: Send + 'static> Future for InPlace<T> {
    type Output = RResult<T, PluginError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let Some(work) = this.work.as_mut() else {
            return Poll::Ready(RResult::from(Err(PluginError::internal("plugin call polled after it finished"))));
        };
        let _context = this.runtime.enter();
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work.as_mut().poll(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => {
                this.work = None;
                Poll::Ready(RResult::from(result))
            }
            Err(payload) => {
                // A panicked future may not be polled (or trusted) again;
                // dropping it could panic too, so it is leaked.
                std::mem::forget(this.work.take());
                Poll::Ready(RResult::from(Err(panic_error(payload))))
            }
        }
    }
}

impl<T: Send + 'static> Drop for InPlace<T> {
    fn drop(&mut self) {
        let Some(work) = self.work.take() else { return };
        let _context = self.runtime.enter();
        let cancel = self.cancel_on_drop;
        let runtime = self.runtime;
        // Drop runs inside an `extern "C"` call of async-ffi: nothing may
        // unwind out of it.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            if cancel {
                drop(work);
            } else {
                runtime.spawn(Detached(work));
            }
        }));
        if outcome.is_err() {
            tracing::error!("a plugin call panicked while it was dropped");
        }
    }
}

/// The rest of a write the host stopped waiting for, run to its end on the
/// plugin runtime; its answer is dropped.
struct Detached<T>(Work<T>);

impl<T> Future for Detached<T> {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.0.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => {
                tracing::warn!(error = %e, "a plugin call the host stopped waiting for failed");
                Poll::Ready(())
            }
            Poll::Ready(Ok(_)) => Poll::Ready(()),
        }
    }
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

/// Runs an entry point that returns a future, turning a panic while the
/// call is set up into a future that fails with a `Panic` error.
pub fn guard_future<T: Send + 'static>(f: impl FnOnce() -> PluginFuture<T>) -> PluginFuture<T> {
    guard_or(|e| ready_ffi(Err(e)), f)
}

fn panic_error(payload: Box<dyn Any + Send>) -> PluginError {
    let message = if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    };
    PluginError::new(ErrorKind::PANIC, format_args!("plugin panicked: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_entry_point_becomes_an_error() {
        let err = guard(|| -> PluginResult<()> { panic!("boom") }).unwrap_err();
        assert_eq!(err.kind, ErrorKind::PANIC);
        assert!(err.to_string().contains("boom"));
    }

    #[test]
    fn a_call_polled_by_a_foreign_executor_finds_the_plugin_runtime() {
        // The host polls calls on its own threads, where this library's
        // tokio has no context: timers and the blocking pool must still work.
        let call = spawn_ffi(async {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            let n = tokio::task::spawn_blocking(|| 40).await.map_err(PluginError::internal)?;
            let m = tokio::spawn(async { 2 }).await.map_err(PluginError::internal)?;
            Ok(n + m)
        });
        assert_eq!(futures::executor::block_on(call).into_result().unwrap(), 42);
    }

    #[test]
    fn a_panic_while_polled_becomes_an_error() {
        let call = spawn_ffi(async {
            tokio::task::yield_now().await;
            if std::hint::black_box(true) {
                panic!("boom in poll");
            }
            Ok(())
        });
        let err = futures::executor::block_on(call).into_result().unwrap_err();
        assert_eq!(err.kind, ErrorKind::PANIC);
        assert!(err.to_string().contains("boom in poll"), "{err}");
    }

    #[test]
    fn a_write_dropped_unfinished_runs_to_its_end() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let mut call = spawn_ffi(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let _ = tx.send(());
            Ok(())
        });
        // Poll once (the work starts and waits on its timer), then drop it
        // as a host whose client went away would.
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(std::pin::Pin::new(&mut call).poll(&mut cx).is_pending());
        drop(call);
        rx.recv_timeout(std::time::Duration::from_secs(5)).expect("the write ran to its end");
    }

    #[test]
    fn dropping_a_cancellable_call_stops_its_work() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        struct Flag(std::sync::mpsc::Sender<()>);
        impl Drop for Flag {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let flag = Flag(tx);
        let call = spawn_ffi_cancellable(async move {
            let _flag = flag;
            std::future::pending::<()>().await;
            Ok(())
        });
        // Give the task a moment to start, then drop the host's future.
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(call);
        rx.recv_timeout(std::time::Duration::from_secs(5)).expect("the work was dropped (cancelled)");
    }
}
