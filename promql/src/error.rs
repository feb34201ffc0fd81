//! Why a query has no answer, typed as Prometheus' API types it: the
//! query's own fault found before evaluation (`bad_data`, HTTP 400), or a
//! failure while evaluating (`execution`, 422), or the deadline (`timeout`).

/// A query that cannot be answered.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum Error {
    /// The text is not PromQL (the parser's message). `bad_data`.
    #[error("parse error: {0}")]
    Parse(String),
    /// Valid PromQL this node does not evaluate; names the construct.
    /// `bad_data`.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A query or range refused before evaluation: over a size, depth or
    /// step limit, a bad range, a range query of a string. `bad_data`.
    #[error("{0}")]
    Invalid(String),
    /// A failure while evaluating: a label set repeated where it must be
    /// unique, a many-to-many match, a bad parameter. `execution`.
    #[error("{0}")]
    Execution(String),
    /// The query would hold more samples than allowed. `execution`.
    #[error("query processing would load too many samples into memory (limit {limit})")]
    TooManySamples { limit: usize },
    /// Evaluation went past its deadline and stopped. `timeout`.
    #[error("query evaluation went past its deadline")]
    Timeout,
}

impl Error {
    /// Whether Prometheus would answer `bad_data` (400): the query's own
    /// fault, known before evaluating it.
    pub fn is_bad_data(&self) -> bool {
        matches!(self, Error::Parse(_) | Error::Unsupported(_) | Error::Invalid(_))
    }
}
