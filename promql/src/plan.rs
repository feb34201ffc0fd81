//! Parsing (with limits), the checks that refuse what this node does not
//! evaluate, and what a query needs read: its selections, in the fixed
//! order [`crate::evaluate`] expects them.

use std::time::Duration;

use promql_parser::label::{MatchOp, Matcher, Matchers};
use promql_parser::parser::{Expr, Offset, VectorSelector};

use crate::error::Error;
use crate::value::METRIC_NAME;

/// Longest query text accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;

/// Deepest expression tree accepted (and deepest nesting of brackets in
/// the text): evaluation recurses once per level.
pub const MAX_DEPTH: usize = 200;

/// Most operators (counted as operator characters, and the words `and`,
/// `or`, `unless`, `atan2`) accepted in a query text. The parser's own
/// checks recurse along chains of operators (`1+1+1…`, `- - - x`,
/// `a or a or …`), so very long chains are refused before they reach it.
const MAX_OPERATORS: usize = 4 * MAX_DEPTH;

/// When a query is evaluated: at `start`, then every `step` until `end`
/// (milliseconds; an instant query has `start == end`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalRange {
    pub start_ms: i64,
    pub end_ms: i64,
    /// Milliseconds between evaluations, > 0; 0 for an instant query
    /// (`start == end`), as in Prometheus. A range query whose start is
    /// its end is evaluated once and still answers a matrix.
    pub step_ms: i64,
    /// How far back an instant vector selector looks for a sample
    /// (Prometheus' `--query.lookback-delta`, 5 minutes by default).
    pub lookback_ms: i64,
}

/// Most evaluation steps of a range query after the first (Prometheus'
/// HTTP API limit of points per series).
pub const MAX_STEPS: i64 = 11_000;

/// Why an [`EvalRange`] cannot be evaluated; the messages are Prometheus'.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("end timestamp must not be before start time")]
    EndBeforeStart,
    #[error("zero or negative query resolution step widths are not accepted. Try a positive integer")]
    Step,
    #[error(
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
    )]
    TooManySteps,
}

impl RangeError {
    /// The query API's parameter at fault, for its message.
    pub fn parameter(self) -> Option<&'static str> {
        match self {
            RangeError::EndBeforeStart => Some("end"),
            RangeError::Step => Some("step"),
            RangeError::TooManySteps => None,
        }
    }
}

impl EvalRange {
    /// Whether this is an instant query (a step of 0 at one time), as
    /// Prometheus tells them apart.
    pub fn is_instant(&self) -> bool {
        self.step_ms == 0 && self.start_ms == self.end_ms
    }

    /// Checks the range as Prometheus' API does before it reads anything:
    /// the end not before the start, a positive step (but for an instant
    /// query), at most [`MAX_STEPS`] steps.
    pub fn validate(&self) -> Result<(), RangeError> {
        if self.end_ms < self.start_ms {
            return Err(RangeError::EndBeforeStart);
        }
        if self.is_instant() {
            return Ok(());
        }
        if self.step_ms <= 0 {
            return Err(RangeError::Step);
        }
        if self.end_ms.saturating_sub(self.start_ms) / self.step_ms > MAX_STEPS {
            return Err(RangeError::TooManySteps);
        }
        Ok(())
    }
}

/// The series one vector or matrix selector of the query needs, and the
/// times of the samples it needs (inclusive), offsets applied.
#[derive(Clone, Debug)]
pub struct Selection {
    /// The selector's matchers, the metric name among them as `__name__`.
    pub matchers: Matchers,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// Parses PromQL, refusing texts over [`MAX_QUERY_BYTES`], nested deeper
/// than [`MAX_DEPTH`], and constructs this node does not evaluate
/// (functions for which `function` is false). [`crate::parse`] is this
/// with the evaluator's functions.
pub fn parse(text: &str, function: fn(&str) -> bool) -> Result<Expr, Error> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(Error::Invalid(format!(
            "query is {} bytes long, longer than the limit of {MAX_QUERY_BYTES} bytes",
            text.len()
        )));
    }
    prescan(text)?;
    let expr = promql_parser::parser::parse(text).map_err(Error::Parse)?;
    check(&expr, function)?;
    Ok(expr)
}

/// The selections of `expr` in a fixed order (a pre-order walk of the
/// tree, left operand before right): [`crate::evaluate`] expects the
/// series of the `i`th at `data[i]`.
pub fn selections(expr: &Expr, range: &EvalRange) -> Vec<Selection> {
    let mut out = Vec::new();
    walk(expr, |node, _| {
        let (vs, back) = match node {
            Expr::VectorSelector(vs) => (vs, range.lookback_ms),
            Expr::MatrixSelector(ms) => (&ms.vs, duration_ms(&ms.range)),
            _ => return,
        };
        let offset = offset_ms(vs);
        out.push(Selection {
            matchers: matchers_with_name(vs),
            first_ms: range.start_ms.saturating_sub(offset).saturating_sub(back),
            last_ms: range.end_ms.saturating_sub(offset),
        });
    });
    out
}

/// A selector's matchers with its metric name (`foo{…}`) as a `__name__`
/// matcher: the parser keeps the name apart.
pub fn matchers_with_name(vs: &VectorSelector) -> Matchers {
    let mut matchers = vs.matchers.clone();
    if let Some(name) = &vs.name {
        let present =
            matchers.matchers.iter().any(|m| m.name == METRIC_NAME && m.op == MatchOp::Equal && &m.value == name);
        if !present {
            matchers.matchers.push(Matcher::new(MatchOp::Equal, METRIC_NAME, name));
        }
    }
    matchers
}

/// A duration in milliseconds, saturating.
pub(crate) fn duration_ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A selector's offset in milliseconds (negative for `offset -5m`).
pub(crate) fn offset_ms(vs: &VectorSelector) -> i64 {
    match &vs.offset {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => duration_ms(d).saturating_neg(),
    }
}

/// The children of a node in evaluation order: an aggregation's
/// parameter before its operand, a binary expression's left operand
/// before its right, a call's arguments in order.
pub(crate) fn children(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::Aggregate(a) => a.param.iter().map(|p| &**p).chain(std::iter::once(&*a.expr)).collect(),
        Expr::Unary(u) => vec![&*u.expr],
        Expr::Binary(b) => vec![&*b.lhs, &*b.rhs],
        Expr::Paren(p) => vec![&*p.expr],
        Expr::Subquery(s) => vec![&*s.expr],
        Expr::Call(c) => c.args.args.iter().map(|a| &**a).collect(),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::Extension(_) => Vec::new(),
    }
}

/// Visits every node in pre-order with its depth (the root is 1), with
/// an explicit stack so that no tree is too deep to walk.
pub(crate) fn walk<'a>(expr: &'a Expr, mut visit: impl FnMut(&'a Expr, usize)) {
    let mut stack = vec![(expr, 1usize)];
    while let Some((node, depth)) = stack.pop() {
        visit(node, depth);
        stack.extend(children(node).into_iter().rev().map(|c| (c, depth + 1)));
    }
}

/// Refuses texts whose nesting or operator chains would make the parser
/// (or the recursive checks it runs) exhaust the stack, by a cheap scan
/// that skips string literals and comments.
fn prescan(text: &str) -> Result<(), Error> {
    let bytes = text.as_bytes();
    let (mut depth, mut operators, mut i) = (0usize, 0usize, 0usize);
    while let Some(&c) = bytes.get(i) {
        match c {
            b'"' | b'\'' | b'`' => {
                // Skip to the closing quote; backquoted strings have no escapes.
                i += 1;
                while let Some(&d) = bytes.get(i) {
                    if d == b'\\' && c != b'`' {
                        i += 1;
                    } else if d == c {
                        break;
                    }
                    i += 1;
                }
            }
            b'#' => {
                while bytes.get(i).is_some_and(|&d| d != b'\n') {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(too_deep());
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'<' | b'>' | b'=' | b'!' => operators += 1,
            c if c.is_ascii_alphabetic() || c == b'_' => {
                // Words: the set operators and atan2 chain like symbols.
                let start = i;
                while bytes.get(i + 1).is_some_and(|d| d.is_ascii_alphanumeric() || *d == b'_' || *d == b':') {
                    i += 1;
                }
                let word = bytes.get(start..=i).unwrap_or_default();
                if [&b"and"[..], b"or", b"unless", b"atan2"].iter().any(|w| word.eq_ignore_ascii_case(w)) {
                    operators += 1;
                }
            }
            _ => {}
        }
        if operators > MAX_OPERATORS {
            return Err(Error::Invalid(format!("query has more than {MAX_OPERATORS} operators")));
        }
        i += 1;
    }
    Ok(())
}

fn too_deep() -> Error {
    Error::Invalid(format!("query is nested deeper than {MAX_DEPTH} levels"))
}

/// Aggregations this node evaluates (by their PromQL name).
const AGGREGATIONS: &[&str] =
    &["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values"];

/// Refuses trees deeper than [`MAX_DEPTH`] and what this node does not
/// evaluate, naming the construct. [`crate::evaluate`] checks again, for
/// trees not made by [`parse`].
pub(crate) fn check(expr: &Expr, function: fn(&str) -> bool) -> Result<(), Error> {
    let mut err = None;
    walk(expr, |node, depth| {
        if err.is_some() {
            return;
        }
        if depth > MAX_DEPTH {
            err = Some(too_deep());
            return;
        }
        err = unsupported(node, function).err();
    });
    err.map_or(Ok(()), Err)
}

fn unsupported(node: &Expr, function: fn(&str) -> bool) -> Result<(), Error> {
    let no = |what: &str| Err(Error::Unsupported(what.to_string()));
    match node {
        Expr::Subquery(_) => no("subqueries"),
        Expr::Extension(_) => no("extension expressions"),
        Expr::VectorSelector(vs) | Expr::MatrixSelector(promql_parser::parser::MatrixSelector { vs, .. }) => {
            if vs.at.is_some() {
                no("the @ modifier")
            } else if !vs.matchers.or_matchers.is_empty() {
                no("'or' between label matchers")
            } else {
                Ok(())
            }
        }
        Expr::Aggregate(a) => {
            let name = a.op.to_string();
            if AGGREGATIONS.contains(&name.as_str()) {
                Ok(())
            } else {
                no(&format!("aggregation {name}"))
            }
        }
        Expr::Binary(b) => match &b.modifier {
            Some(m) if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() => no("fill modifiers"),
            _ => Ok(()),
        },
        Expr::Call(c) => {
            if function(c.func.name) {
                Ok(())
            } else {
                no(&format!("function {}", c.func.name))
            }
        }
        Expr::Unary(_) | Expr::Paren(_) | Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
    }
}
