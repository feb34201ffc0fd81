//! Why a query has no answer. Every variant is the client's to fix
//! (Prometheus' `bad_data`, HTTP 400), except [`Error::TooManySamples`]
//! (`execution`, 422).

/// A query that cannot be answered.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum Error {
    /// The text is not PromQL (the parser's message).
    #[error("parse error: {0}")]
    Parse(String),
    /// Valid PromQL this node does not evaluate; names the construct.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Valid syntax that makes no sense to evaluate (a label set repeated
    /// on one side of a one-to-one match, a bad parameter …).
    #[error("{0}")]
    Invalid(String),
    /// The query would hold more samples than allowed.
    #[error("query processing would load too many samples into memory (limit {limit})")]
    TooManySamples { limit: usize },
}
