//! The HTTP endpoints the shell's tasks answer as, and the two ways of
//! calling them: in-process (the handler behind the route, with the
//! shell's own backends) or over HTTP on a running node (`--connect`).
//!
//! A task builds the endpoint's body once; where it goes depends only on
//! how the shell was started, so a task prints the same answer either way.

use warp::Reply;

use crate::http;
use crate::node::Node;
use crate::shell::output::{handler_answer, Answer};
use crate::shell::ShellError;

/// One endpoint of the HTTP API that a shell task calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /write`.
    Write,
    /// `POST /query/metrics`.
    QueryMetrics,
    /// `POST /metadata/series`.
    FindSeries,
    /// `POST /metadata/series-count`.
    CountSeries,
    /// `POST /metadata/keys`.
    FindKeys,
    /// `POST /metadata/tags`.
    FindTags,
    /// `DELETE /metadata/series`.
    DeleteSeries,
    /// `PUT /metadata/series`.
    WriteSeries,
    /// `POST /metadata/key-suggest`.
    KeySuggest,
    /// `POST /metadata/tag-suggest`.
    TagSuggest,
    /// `POST /metadata/tag-value-suggest`.
    TagValueSuggest,
    /// `POST /metadata/tag-values-suggest`.
    TagValuesSuggest,
    /// `POST /metadata/tagkey-count`.
    TagKeyCount,
    /// `GET /status`.
    Status,
}

impl Endpoint {
    /// The method and path of the route.
    pub fn route(self) -> (reqwest::Method, &'static str) {
        use reqwest::Method;
        match self {
            Endpoint::Write => (Method::POST, "/write"),
            Endpoint::QueryMetrics => (Method::POST, "/query/metrics"),
            Endpoint::FindSeries => (Method::POST, "/metadata/series"),
            Endpoint::CountSeries => (Method::POST, "/metadata/series-count"),
            Endpoint::FindKeys => (Method::POST, "/metadata/keys"),
            Endpoint::FindTags => (Method::POST, "/metadata/tags"),
            Endpoint::DeleteSeries => (Method::DELETE, "/metadata/series"),
            Endpoint::WriteSeries => (Method::PUT, "/metadata/series"),
            Endpoint::KeySuggest => (Method::POST, "/metadata/key-suggest"),
            Endpoint::TagSuggest => (Method::POST, "/metadata/tag-suggest"),
            Endpoint::TagValueSuggest => (Method::POST, "/metadata/tag-value-suggest"),
            Endpoint::TagValuesSuggest => (Method::POST, "/metadata/tag-values-suggest"),
            Endpoint::TagKeyCount => (Method::POST, "/metadata/tagkey-count"),
            Endpoint::Status => (Method::GET, "/status"),
        }
    }

    /// Whether a non-2xx answer still carries the answer the task prints
    /// (`/status` answers 503 with the status of an unhealthy node).
    pub fn answers_on_error(self) -> bool {
        self == Endpoint::Status
    }

    /// Calls the route's handler in-process, as the HTTP server would.
    pub async fn call_in_process(self, node: &Node, body: &[u8]) -> Result<Answer, ShellError> {
        use http::{metadata as m, suggest as s};
        match self {
            Endpoint::Write => handler_answer(http::write::handle(node, body).await).await,
            Endpoint::QueryMetrics => {
                let reply =
                    http::query::metrics(node, Some("heroic-shell".into()), Some("application/json".into()), body);
                handler_answer(reply.await).await
            }
            Endpoint::FindSeries => handler_answer(m::find_series(node, body).await).await,
            Endpoint::CountSeries => handler_answer(m::count_series(node, body).await).await,
            Endpoint::FindKeys => handler_answer(m::find_keys(node, body).await).await,
            Endpoint::FindTags => handler_answer(m::find_tags(node, body).await).await,
            Endpoint::DeleteSeries => handler_answer(m::delete_series(node, body).await).await,
            Endpoint::WriteSeries => handler_answer(m::write_series(node, body).await).await,
            Endpoint::KeySuggest => handler_answer(s::key_suggest(node, body).await).await,
            Endpoint::TagSuggest => handler_answer(s::tag_suggest(node, body).await).await,
            Endpoint::TagValueSuggest => handler_answer(s::tag_value_suggest(node, body).await).await,
            Endpoint::TagValuesSuggest => handler_answer(s::tag_values_suggest(node, body).await).await,
            Endpoint::TagKeyCount => handler_answer(s::tag_key_count(node, body).await).await,
            Endpoint::Status => {
                handler_answer(Ok::<_, http::error::ApiError>(http::status::status(node).into_response())).await
            }
        }
    }
}
