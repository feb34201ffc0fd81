//! What the shell prints: one JSON value per line on stdout for machines,
//! progress and errors on stderr (through `tracing`) for people.

use std::io::Write;
use std::time::{Duration, Instant};

use heroic_plugin_api::types::{Series, Tag};
use http_body_util::BodyExt;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::http::error::ApiResult;
use crate::shell::ShellError;

/// Writes JSON lines to stdout.
#[derive(Default)]
pub struct Output;

impl Output {
    /// Prints `value` as one line of JSON.
    pub fn line(&self, value: &impl Serialize) -> Result<(), ShellError> {
        let mut text = serde_json::to_string(value).map_err(std::io::Error::other)?;
        text.push('\n');
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
        Ok(())
    }

    /// Prints an answer of the HTTP API as the endpoint wrote it (so in
    /// Heroic's field order); fails after printing it when its `errors`
    /// list backends that failed, so that the exit code tells.
    pub fn answer(&self, answer: &Answer) -> Result<(), ShellError> {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&answer.body)?;
        stdout.write_all(b"\n")?;
        stdout.flush()?;
        answer.check_errors()
    }
}

/// An answer of one of the HTTP API's handlers.
pub struct Answer {
    /// The body as the endpoint serialised it.
    pub body: bytes::Bytes,
    pub value: Value,
}

impl Answer {
    /// Fails when the answer's `errors` name backends that failed.
    pub fn check_errors(&self) -> Result<(), ShellError> {
        match self.value.get("errors").and_then(Value::as_array) {
            Some(errors) if !errors.is_empty() => {
                let first = errors[0]
                    .get("error")
                    .and_then(Value::as_str)
                    .map_or_else(|| errors[0].to_string(), str::to_string);
                Err(ShellError::Partial { count: errors.len(), first })
            }
            _ => Ok(()),
        }
    }
}

/// The answer of an HTTP handler, or its error.
///
/// The metadata, suggest and query tasks call the very handlers behind the
/// HTTP API, so the shell answers exactly as the endpoints do.
pub async fn handler_answer(reply: ApiResult<impl warp::Reply>) -> Result<Answer, ShellError> {
    let collected =
        reply?.into_response().into_body().collect().await.map_err(|e| ShellError::Request(e.to_string()))?;
    let body = collected.to_bytes();
    let value = serde_json::from_slice(&body).map_err(|e| ShellError::Request(format!("unexpected answer: {e}")))?;
    Ok(Answer { body, value })
}

fn tags_json(tags: &[Tag]) -> Map<String, Value> {
    tags.iter().map(|t| (t.key.to_string(), Value::from(t.value.as_str()))).collect()
}

/// A series as Heroic's JSON writes it: `{key, tags, resource}`.
pub fn series_json(series: &Series) -> Value {
    json!({"key": series.key.as_str(), "tags": tags_json(&series.tags), "resource": tags_json(&series.resource)})
}

/// Reports how far a long task got, on stderr: every `interval`, and once
/// at the end.
pub struct Progress {
    task: &'static str,
    backend: String,
    interval: Duration,
    started: Instant,
    last_report: Instant,
}

impl Progress {
    pub fn new(task: &'static str, backend: &str, interval: Duration) -> Self {
        let now = Instant::now();
        Progress { task, backend: backend.to_string(), interval, started: now, last_report: now }
    }

    /// Reports `scanned` series read and `matched` kept, if it is time to.
    pub fn tick(&mut self, scanned: u64, matched: u64) {
        if self.last_report.elapsed() >= self.interval {
            self.last_report = Instant::now();
            self.report("in progress", scanned, matched);
        }
    }

    pub fn finish(&self, scanned: u64, matched: u64) {
        self.report("done", scanned, matched);
    }

    fn report(&self, state: &str, scanned: u64, matched: u64) {
        let seconds = self.started.elapsed().as_secs_f64();
        let per_second = if seconds > 0.0 { (scanned as f64 / seconds).round() } else { 0.0 };
        tracing::info!(task = self.task, backend = %self.backend, scanned, matched, per_second, seconds = format!("{seconds:.1}"), "{state}");
    }
}
