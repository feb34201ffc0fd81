//! JSON answers written as they are sent.
//!
//! A raw query can return millions of points. Serialised into one buffer,
//! its answer would need the points' memory again, several times over, for
//! the text; here it is written in chunks of [`CHUNK`] bytes by a blocking
//! task and sent as each chunk fills, with at most [`IN_FLIGHT`] chunks
//! waiting for the client. A client that goes away stops the writing.

use std::io::{self, Write};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;
use warp::http::header::{HeaderValue, CONTENT_TYPE};
use warp::reply::Response;
use warp::Reply;

/// Bytes per chunk sent.
const CHUNK: usize = 256 * 1024;

/// Chunks written but not yet taken by the connection.
const IN_FLIGHT: usize = 4;

/// Answers below this many values (points or buckets) are written into one
/// buffer at once: streaming only pays off for large answers.
pub const STREAM_ABOVE_VALUES: usize = 64 * 1024;

/// Replies with `value` as JSON, streamed when `values` (its number of
/// points or buckets) is large. `keep` is dropped only once the whole answer
/// has been written: what pins the value's memory in the node's budget.
pub fn json<T, K>(value: T, values: usize, keep: K) -> Response
where
    T: Serialize + Send + 'static,
    K: Send + 'static,
{
    if values < STREAM_ABOVE_VALUES {
        let response = warp::reply::json(&value).into_response();
        drop(keep);
        return response;
    }
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut writer = ChunkWriter { buf: Vec::with_capacity(CHUNK), tx };
        let result = serde_json::to_writer(&mut writer, &value).map_err(io::Error::from).and_then(|()| writer.flush());
        if let Err(e) = result {
            // Either the client went away (nothing to tell) or serialising
            // failed, which cuts the answer short: the client sees a broken
            // body, never a truncated one that parses.
            tracing::debug!(error = %e, "streamed answer not completed");
            let _ = writer.tx.blocking_send(Err(e));
        }
        drop(value);
        drop(keep);
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let mut response = warp::reply::stream(stream).into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

struct ChunkWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_large_answer_is_streamed_and_identical() {
        let value: Vec<(i64, f64)> = (0..200_000).map(|i| (i, i as f64 / 3.0)).collect();
        let expected = serde_json::to_vec(&value).unwrap();
        let (dropped_tx, dropped_rx) = std::sync::mpsc::channel::<()>();
        struct Keep(std::sync::mpsc::Sender<()>);
        impl Drop for Keep {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let response = json(value, 200_000, Keep(dropped_tx));
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.as_ref(), expected.as_slice());
        dropped_rx.recv_timeout(std::time::Duration::from_secs(5)).expect("kept until written");
    }

    #[tokio::test]
    async fn a_client_that_goes_away_stops_the_writing() {
        let value: Vec<(i64, f64)> = (0..2_000_000).map(|i| (i, i as f64)).collect();
        let (dropped_tx, dropped_rx) = std::sync::mpsc::channel::<()>();
        struct Keep(std::sync::mpsc::Sender<()>);
        impl Drop for Keep {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let response = json(value, 2_000_000, Keep(dropped_tx));
        drop(response);
        dropped_rx.recv_timeout(std::time::Duration::from_secs(5)).expect("writing stopped and memory released");
    }
}
