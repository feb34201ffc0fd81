//! The connection loop: accepts clients, serves each connection with hyper,
//! and shuts down gracefully.
//!
//! Written out rather than taken from `warp::serve` for the bounds a
//! public-facing server needs: a cap on open connections (past it, new
//! clients wait in the kernel's accept queue instead of taking memory and
//! file descriptors), and a deadline for a request's headers, so that
//! clients that open connections and send nothing, or a byte a minute,
//! cannot hold them forever.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use warp::reply::Response;
use warp::Filter;

use crate::config::ServerConfig;

/// HTTP/2 streams one connection may have open at once.
const MAX_HTTP2_STREAMS: u32 = 64;

/// Bytes of a request's head (request line and headers) at most.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The connection bounds of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

impl From<&ServerConfig> for ConnectionLimits {
    fn from(c: &ServerConfig) -> Self {
        ConnectionLimits {
            max_connections: c.max_connections,
            header_read_timeout: Duration::from_secs(c.header_read_timeout_secs),
        }
    }
}

/// Serves `routes` on `listener` until `shutdown` resolves, then waits for
/// the requests in flight to be answered.
pub async fn serve<F>(
    routes: F,
    listener: tokio::net::TcpListener,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) where
    F: Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone + Send + Sync + 'static,
{
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Wait for room before accepting: past the cap, clients queue in
        // the kernel rather than in this process.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, then go on.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(warp::service(routes.clone()));
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(MAX_HEAD_BYTES.max(8192));
        builder.http2().timer(TokioTimer::new()).max_concurrent_streams(MAX_HTTP2_STREAMS);
        let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
