//! The crate's error type. Most errors are client errors (HTTP 400 in the
//! host) that say what was wrong and where; [`QueryError::Layout`] and
//! [`QueryError::AggregationLimit`] arise while a valid query runs, and the
//! host reports them inside that query's answer, as Heroic does.

use std::fmt;

/// A position in HQL source text: `line` and `col` 1-based, `offset` the
/// 0-based character index from the start of the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
    pub offset: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// Why a query, filter, aggregation or request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// HQL syntax (or meaning) error at a source position.
    #[error("{line}:{col}: {message}")]
    Parse { line: u32, col: u32, message: String },
    /// HQL that parses but means nothing (an argument of the wrong type, an
    /// unknown reference, an illegal unit), found while building the query:
    /// `start` and `end` (inclusive) span the expression at fault.
    #[error("{}:{}: {message}", start.line, start.col)]
    Meaning { start: Pos, end: Pos, message: String },
    /// A JSON body or fragment had the wrong shape; `path` is serde-style
    /// (`queries.A.aggregation.each[0].type`).
    #[error("{path}: {message}")]
    Json { path: String, message: String },
    /// Anything else that makes the query invalid (bad range, …).
    #[error("{0}")]
    Invalid(String),
    /// The aggregation cannot be laid out over the query's range: fewer than
    /// 1 or more than 100,000 buckets, or a size or extent out of bounds.
    /// The request itself is valid: Heroic answers it with HTTP 200, no
    /// groups and an error on that query only (`BucketStrategy.setup`).
    #[error("{0}")]
    Layout(String),
    /// The aggregation retained more data points or buckets than allowed.
    #[error("aggregation limit reached: more than {limit} datapoints or buckets retained")]
    AggregationLimit { limit: u64 },
}

impl QueryError {
    pub(crate) fn parse(pos: Pos, message: impl Into<String>) -> Self {
        QueryError::Parse { line: pos.line, col: pos.col, message: message.into() }
    }

    pub(crate) fn json(path: &str, message: impl Into<String>) -> Self {
        let path = if path.is_empty() { "$".to_string() } else { path.to_string() };
        QueryError::Json { path, message: message.into() }
    }

    /// `(line, col)` for parse errors, so the host can add them to its error body.
    pub fn line_col(&self) -> Option<(u32, u32)> {
        match self {
            QueryError::Parse { line, col, .. } => Some((*line, *col)),
            QueryError::Meaning { start, .. } => Some((start.line, start.col)),
            _ => None,
        }
    }

    /// The JSON path for shape errors.
    pub fn path(&self) -> Option<&str> {
        match self {
            QueryError::Json { path, .. } => Some(path),
            _ => None,
        }
    }
}

pub type Result<T, E = QueryError> = std::result::Result<T, E>;

/// Builds a JSON path element for a key (`a.b`) or index (`a[0]`).
pub(crate) fn join_path(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

pub(crate) fn index_path(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}
