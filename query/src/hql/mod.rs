//! HQL, Heroic's query language: lexer, parser and the query AST.
//!
//! ```text
//! average(10m) by host | sum by site from points(1d) where $key = system and role = db
//! ```
//!
//! [`parse_query`] reads one query, [`parse_filter`] a filter alone,
//! [`parse_statements`] a `;`-separated list (with `let`). Errors are
//! [`QueryError::Parse`] with a 1-based line and column.

mod lexer;
mod parser;
mod time;

use heroic_plugin_api::filter::Filter;
use serde_json::{json, Value};

use crate::aggregation::Aggregation;
use crate::duration::{Duration, TimeUnit};
use crate::error::{Pos, QueryError, Result};
use crate::request::{QueryRange, Source};

/// An HQL expression with where it starts and ends (its last character).
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub pos: Pos,
    pub end: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Integer(i64),
    Float(f64),
    /// A quoted string, a simple string or a bare identifier.
    Str(String),
    /// A duration as written; the unit may be one we reject (`w`, `M`, `y`).
    Duration {
        value: i64,
        unit: String,
    },
    /// `$name` (only `$now` has a value).
    Reference(String),
    /// `{HH:MM…}`: milliseconds since midnight (UTC) of the day of `now`.
    Time(i64),
    /// `{yyyy-MM-dd …}`: milliseconds since the epoch (UTC).
    DateTime(i64),
    List(Vec<Expr>),
    Negate(Box<Expr>),
    Binary {
        op: char,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// A call; `a by b` is `group(b, a)` and `a | b` is `chain(a, b)`.
    Function {
        name: String,
        args: Vec<Expr>,
        kwargs: Vec<(String, Expr)>,
    },
    /// The `*` of `by *`.
    Empty,
}

/// The range of `from points(…)`.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceRange {
    /// `points(1h)`: the last hour.
    Relative(Expr, Pos),
    /// `points(start, end)`.
    Absolute(Expr, Expr, Pos),
}

/// One parsed `select … from … where … with … as …` query.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Query {
    /// `None` for `*` (no aggregation).
    pub select: Option<Expr>,
    pub source: Option<(String, Pos)>,
    pub range: Option<SourceRange>,
    pub filter: Option<Filter>,
    /// `with k=v,…` and `as k=v,…` parse but are not executed (as in Heroic).
    pub with: Vec<(String, Expr)>,
    pub as_: Vec<(String, Expr)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    Query(Query),
    /// `let $name = query` (parsed, not executed).
    Let {
        name: String,
        query: Query,
    },
}

/// Parses `;`-separated statements.
pub fn parse_statements(src: &str) -> Result<Vec<Statement>> {
    let mut p = parser::Parser::new(lexer::lex(src)?);
    Ok(p.statements()?.into_iter().map(|(_, s)| s).collect())
}

/// Parses exactly one query (a trailing `;` is allowed).
pub fn parse_query(src: &str) -> Result<Query> {
    let mut p = parser::Parser::new(lexer::lex(src)?);
    let mut statements = p.statements()?;
    match statements.len() {
        0 => Err(QueryError::parse(Pos { line: 1, col: 1, offset: 0 }, "expected a query, found end of input")),
        1 => match statements.remove(0) {
            (_, Statement::Query(q)) => Ok(q),
            (pos, Statement::Let { .. }) => {
                Err(QueryError::parse(pos, "expected a query: 'let' statements are not executed"))
            }
        },
        _ => Err(QueryError::parse(statements[1].0, "expected exactly one query statement")),
    }
}

/// Parses an HQL filter (`a = b and +c`) and optimises it.
pub fn parse_filter(src: &str) -> Result<Filter> {
    let mut p = parser::Parser::new(lexer::lex(src)?);
    let f = p.checked_filter()?;
    p.expect_eof()?;
    Ok(f)
}

/// Parses a lone expression (used for aggregation strings).
pub fn parse_expression(src: &str) -> Result<Expr> {
    let mut p = parser::Parser::new(lexer::lex(src)?);
    let e = p.expr()?;
    p.expect_eof()?;
    Ok(e)
}

impl Expr {
    /// An error in what this expression means, spanning it (Heroic reports
    /// these with the expression's character offsets).
    pub(crate) fn error(&self, message: impl Into<String>) -> QueryError {
        QueryError::Meaning { start: self.pos, end: self.end, message: message.into() }
    }

    /// What kind of expression this is, for "expected X, got Y" messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            ExprKind::Integer(_) => "an integer",
            ExprKind::Float(_) => "a number",
            ExprKind::Str(_) => "a string",
            ExprKind::Duration { .. } => "a duration",
            ExprKind::Reference(_) => "a reference",
            ExprKind::Time(_) | ExprKind::DateTime(_) => "a time",
            ExprKind::List(_) => "a list",
            ExprKind::Negate(_) | ExprKind::Binary { .. } => "an arithmetic expression",
            ExprKind::Function { .. } => "a function call",
            ExprKind::Empty => "'*'",
        }
    }

    /// The expression as a duration (durations, or integers as milliseconds).
    pub fn as_duration(&self) -> Result<Duration> {
        match &self.kind {
            ExprKind::Duration { value, unit } => {
                let unit = TimeUnit::from_suffix(unit).map_err(|m| self.error(m))?;
                if *value < 0 {
                    return Err(self.error("expected a positive duration"));
                }
                Ok(Duration::new(*value, unit))
            }
            ExprKind::Integer(i) if *i >= 0 => Ok(Duration::millis(*i)),
            _ => Err(self.error(format!("expected a duration (like 10m), got {}", self.describe()))),
        }
    }

    /// Evaluates to milliseconds (durations, integers, `$now`, time and
    /// date literals, arithmetic).
    pub fn eval_millis(&self, now: i64) -> Result<i64> {
        Ok(match &self.kind {
            ExprKind::Integer(i) => *i,
            ExprKind::Duration { .. } => {
                let ExprKind::Duration { value, unit } = &self.kind else { unreachable!() };
                let unit = TimeUnit::from_suffix(unit).map_err(|m| self.error(m))?;
                value.saturating_mul(unit.millis())
            }
            ExprKind::Reference(r) if r == "now" => now,
            ExprKind::Reference(r) => return Err(self.error(format!("unknown reference ${r}: only $now has a value"))),
            ExprKind::Time(t) => (now - now.rem_euclid(86_400_000)).saturating_add(*t),
            ExprKind::DateTime(t) => *t,
            // Saturating, like the operators below: a result out of range
            // is refused later by the range check, never overflows here.
            ExprKind::Negate(e) => e.eval_millis(now)?.saturating_neg(),
            ExprKind::Binary { op, left, right } => {
                let (a, b) = (left.eval_millis(now)?, right.eval_millis(now)?);
                match op {
                    '+' => a.saturating_add(b),
                    '-' => a.saturating_sub(b),
                    '*' => a.saturating_mul(b),
                    _ if b == 0 => return Err(right.error("division by zero")),
                    _ => a.saturating_div(b),
                }
            }
            _ => return Err(self.error(format!("expected a time or duration, got {}", self.describe()))),
        })
    }
}

impl Query {
    /// The aggregation of the select clause (`None` for `*`).
    pub fn aggregation(&self) -> Result<Option<Aggregation>> {
        self.select.as_ref().map(Aggregation::from_expr).transpose()
    }

    /// The source named in `from` (`None` when absent).
    pub fn source(&self) -> Result<Option<Source>> {
        self.source
            .as_ref()
            .map(|(name, pos)| {
                Source::from_identifier(name).ok_or_else(|| {
                    let end = Pos { offset: pos.offset + name.chars().count().max(1) as u32 - 1, ..*pos };
                    let message = format!("unknown source '{name}': expected points, spreads, groups, cardinality, distributionPoints or tdigestPoints");
                    QueryError::Meaning { start: *pos, end, message }
                })
            })
            .transpose()
    }

    /// The range of `from source(range)`, evaluated against `now`.
    pub fn range(&self, now: i64) -> Result<Option<QueryRange>> {
        let Some(range) = &self.range else { return Ok(None) };
        Ok(Some(match range {
            SourceRange::Relative(e, _) => match &e.kind {
                ExprKind::Duration { .. } | ExprKind::Integer(_) => {
                    let d = e.as_duration()?;
                    QueryRange::Relative { unit: d.unit, value: d.value }
                }
                _ => QueryRange::Relative { unit: TimeUnit::Milliseconds, value: e.eval_millis(now)? },
            },
            SourceRange::Absolute(a, b, _) => {
                let (start, end) = (a.eval_millis(now)?, b.eval_millis(now)?);
                if start > end {
                    let message = "range start is after its end".to_string();
                    return Err(QueryError::Meaning { start: a.pos, end: b.end, message });
                }
                QueryRange::Absolute { start, end }
            }
        }))
    }

    /// The query as Heroic's Query JSON (`/parser/parse-query`).
    pub fn to_json(&self, now: i64) -> Result<Value> {
        Ok(json!({
            "aggregation": self.aggregation()?.map(|a| a.to_json()),
            "source": self.source()?.map(|s| s.identifier()),
            "range": self.range(now)?.map(|r| r.to_json()),
            "filter": self.filter.as_ref().map(crate::filter::serialize::to_json),
            "options": null,
            "features": null,
        }))
    }
}

#[cfg(test)]
mod tests;
