//! PromQL for the node's Prometheus query API: which points a query needs,
//! and its answer computed from those points, as Prometheus 2.42 computes
//! it. Pure logic, no I/O: the host parses the HTTP request, reads the
//! points of every [`Selection`] through the metadata and metric plugins,
//! and serialises the [`Value`].
//!
//! # Module map
//! - [`value`]: labels, samples, series and the four PromQL value types.
//! - [`plan`]: [`parse`] (with limits, refusing what is not evaluated) and
//!   [`selections`]: what to read.
//! - [`eval`]: [`evaluate`]: instant and range evaluation over read points;
//!   its submodules hold the functions, aggregations and operators, and
//!   spread the per-series work over the cores.
//! - [`error`]: [`Error`]: a bad query, an unsupported construct, a limit.
//!
//! # Usage
//! 1. `let expr = parse(text)?;`
//! 2. `let wanted = selections(&expr, &range);` — for each, read the series
//!    whose labels match `wanted[i].matchers` with samples in
//!    `wanted[i].first_ms ..= wanted[i].last_ms`;
//! 3. `let value = evaluate(&expr, &range, &data)?;` with `data[i]` the
//!    series read for `wanted[i]`.
//!
//! Or, holding less: for each `Some(r)` of `reductions(&expr, &range)`,
//! `r.reduce(&series)` each chunk of `wanted[i]`'s series as it is read,
//! keep what it answers (sorted by labels) as `data[i]`, and
//! `evaluate_reduced(&expr, &range, data, deadline)`.

pub mod error;
pub mod eval;
pub mod plan;
pub mod value;

pub use error::Error;
pub use eval::{
    evaluate, evaluate_reduced, evaluate_until, reductions, ReadSamples, ReadSeries, Reduction, MAX_SAMPLES,
};
pub use plan::{
    matchers_with_name, selections, EvalRange, RangeError, Selection, MAX_DEPTH, MAX_QUERY_BYTES, MAX_STEPS,
};

/// Parses PromQL, refusing texts over [`MAX_QUERY_BYTES`], nested deeper
/// than [`MAX_DEPTH`], and every construct [`evaluate`] does not evaluate
/// (named in the error).
pub fn parse(text: &str) -> Result<promql_parser::parser::Expr, Error> {
    plan::parse(text, eval::is_supported_function)
}
pub use value::{is_label_name, Labels, RangeSeries, Sample, Value};
