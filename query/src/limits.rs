//! Nesting limits on what clients send.
//!
//! Parsing, optimising, planning and executing are all recursive walks over
//! trees that clients build: without a bound on their depth, one small
//! request (20,000 `(` in HQL, or `!` before a filter) would overflow a
//! thread's stack and abort the whole node. Every parser of this crate
//! refuses input nested deeper than these limits with a 400 that names the
//! limit; nothing a person or Grafana writes comes near them.

/// Filters nest at most this many levels (shared with the plugin boundary,
/// which refuses deeper filters too).
pub use heroic_plugin_api::filter::MAX_FILTER_DEPTH;

/// HQL expressions nest at most this many levels (parentheses, calls, lists,
/// unary minus).
pub const MAX_EXPRESSION_DEPTH: usize = 64;

/// Range ends lie within this many milliseconds of the epoch (either way):
/// the end of year 9999. Beyond it no real data exists, and within it the
/// arithmetic on ranges, bucket sizes and timestamps cannot overflow.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Aggregations nest at most this many levels (`chain`, `group`,
/// `collapse`, `opts` and their JSON lists).
pub const MAX_AGGREGATION_DEPTH: usize = 64;
