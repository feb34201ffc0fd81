//! `--connect HOST:PORT`: the shell's tasks sent to a running node over its
//! HTTP API instead of opening the backends (Heroic's shell could attach to
//! a node too, over its own protocol).
//!
//! Only the tasks that have an endpoint run this way (see
//! [`Task::runs_over_http`](crate::shell::Task::runs_over_http)); the ones
//! that walk a backend's own data (`keys`, `data-migrate` …) need the
//! backends themselves.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;

use crate::shell::endpoint::Endpoint;
use crate::shell::output::Answer;
use crate::shell::ShellError;

/// A running node's HTTP API.
pub struct Remote {
    /// `http://host:port`, without a trailing slash.
    base: String,
    client: reqwest::Client,
    /// Sent as `Authorization: Bearer …` (the node's write tokens).
    token: Option<String>,
}

impl Remote {
    /// `address` is `HOST:PORT` or a URL (`http://…`, `https://…`).
    pub fn new(address: &str, token: Option<String>) -> Result<Remote, ShellError> {
        let address = address.trim();
        if address.is_empty() {
            return Err(ShellError::usage("--connect needs an address: HOST:PORT or http://HOST:PORT"));
        }
        let base = if address.contains("://") { address.to_string() } else { format!("http://{address}") };
        let url = reqwest::Url::parse(&base)
            .map_err(|e| ShellError::usage(format!("invalid --connect {address:?}: {e} (expected HOST:PORT)")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(ShellError::usage(format!(
                "invalid --connect {address:?}: expected HOST:PORT or http(s)://HOST:PORT"
            )));
        }
        let base = base.trim_end_matches('/').to_string();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("heroic-shell/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ShellError::Request(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Remote { base, client, token })
    }

    /// The node's address, for messages.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `body` to `endpoint` and reads the answer. A 400 is the
    /// user's input (exit code 2, as when the handler runs in-process); any
    /// other failure is the node's.
    pub async fn call(&self, endpoint: Endpoint, body: &[u8]) -> Result<Answer, ShellError> {
        let (method, path) = endpoint.route();
        let url = format!("{}{path}", self.base);
        let mut request = self.client.request(method, &url).header("X-Client-Id", "heroic-shell");
        if !body.is_empty() {
            request = request.header(CONTENT_TYPE, "application/json").body(body.to_vec());
        }
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let response =
            request.send().await.map_err(|e| ShellError::Request(format!("cannot reach the node at {url}: {e}")))?;
        let status = response.status();
        let body =
            response.bytes().await.map_err(|e| ShellError::Request(format!("reading the answer of {url}: {e}")))?;
        let value: Option<Value> = serde_json::from_slice(&body).ok();
        if status.is_success() || (endpoint.answers_on_error() && value.is_some()) {
            let value = value.ok_or_else(|| ShellError::Request(format!("{url} answered {status} without JSON")))?;
            return Ok(Answer { body, value });
        }
        // Heroic's error body: {type, message, reason, status}.
        let message = value
            .as_ref()
            .and_then(|v| v.get("message"))
            .and_then(Value::as_str)
            .map_or_else(|| String::from_utf8_lossy(&body).trim().to_string(), str::to_string);
        if status == reqwest::StatusCode::BAD_REQUEST {
            Err(ShellError::Usage(message))
        } else {
            Err(ShellError::Request(format!("{url} answered {status}: {message}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_host_port_or_urls() {
        assert_eq!(Remote::new("127.0.0.1:8080", None).unwrap().base(), "http://127.0.0.1:8080");
        assert_eq!(Remote::new("https://heroic.example/", None).unwrap().base(), "https://heroic.example");
        for bad in ["", "ftp://x:1", "http://"] {
            let e = Remote::new(bad, None).err().expect(bad);
            assert!(matches!(e, ShellError::Usage(_)), "{bad}: {e}");
        }
    }
}
