//! What the shell prints: one JSON value per line on stdout for machines,
//! progress and errors on stderr (through `tracing`) for people.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use heroic_plugin_api::types::{Series, Tag};
use http_body_util::BodyExt;
use indicatif::{ProgressBar, ProgressStyle};
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

/// Reports how far a long task got, on stderr: a progress bar when stderr
/// is a terminal (a spinner with counts when the total is unknown), else a
/// log line every `interval`; and a log line at the end either way.
pub struct Progress {
    task: &'static str,
    backend: String,
    interval: Duration,
    started: Instant,
    last_report: Instant,
    /// What the position counts (`series`, `keys`).
    unit: &'static str,
    total: Option<u64>,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new(task: &'static str, backend: &str, interval: Duration) -> Self {
        let now = Instant::now();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {human_pos} {msg} ({rate}, {elapsed})")
                    .expect("a valid template")
                    .with_key("rate", whole_rate),
            );
            bar.set_prefix(format!("{task} {backend}:"));
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let progress = Progress {
            task,
            backend: backend.to_string(),
            interval,
            started: now,
            last_report: now,
            unit: "series",
            total: None,
            bar,
        };
        progress.set_unit_message("");
        progress
    }

    /// Counts `unit`s out of a known `total`: the bar fills and shows an ETA.
    pub fn with_total(mut self, total: u64, unit: &'static str) -> Self {
        self.total = Some(total);
        self.unit = unit;
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {human_pos}/{human_len} {msg} ({rate}, eta {eta})")
                    .expect("a valid template")
                    .with_key("rate", whole_rate)
                    .progress_chars("=> "),
            );
        }
        self.set_unit_message("");
        self
    }

    fn set_unit_message(&self, detail: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(if detail.is_empty() { self.unit.to_string() } else { format!("{}, {detail}", self.unit) });
        }
    }

    /// Moves to `position`; `detail` says what else was done so far (it is
    /// only formatted when shown).
    pub fn update(&mut self, position: u64, detail: impl FnOnce() -> String) {
        if let Some(bar) = &self.bar {
            bar.set_position(position);
            self.set_unit_message(&detail());
        } else if self.last_report.elapsed() >= self.interval {
            self.last_report = Instant::now();
            self.report("in progress", position, &detail());
        }
    }

    /// Clears the bar and logs the final counts.
    pub fn done(&self, position: u64, detail: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.report("done", position, detail);
    }

    fn report(&self, state: &str, position: u64, detail: &str) {
        let seconds = self.started.elapsed().as_secs_f64();
        let per_second = if seconds > 0.0 { (position as f64 / seconds).round() } else { 0.0 };
        let unit = self.unit;
        match self.total {
            Some(total) => {
                tracing::info!(task = self.task, backend = %self.backend, position, total, unit, detail, per_second, seconds = format!("{seconds:.1}"), "{state}")
            }
            None => {
                tracing::info!(task = self.task, backend = %self.backend, position, unit, detail, per_second, seconds = format!("{seconds:.1}"), "{state}")
            }
        }
    }
}

/// `1234/s`: indicatif's own `{per_sec}` shows four decimals.
fn whole_rate(state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.0}/s", state.per_sec());
}

impl Drop for Progress {
    fn drop(&mut self) {
        // A task that fails half-way leaves no bar drawn over its error.
        if let Some(bar) = &self.bar {
            if !bar.is_finished() {
                bar.finish_and_clear();
            }
        }
    }
}
