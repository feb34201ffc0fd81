//! Hostile input to every parser of this crate: whatever a client sends —
//! arbitrary text, near-valid HQL, JSON of the right shape with the wrong
//! contents — parsing, planning and starting an aggregation end in `Ok` or
//! in an error, never in a panic, a stack overflow (which aborts the whole
//! node) or an allocation the input does not pay for.
//!
//! The test crate, by module:
//!
//! - `literals`: HQL literals (integers, floats, durations, time literals,
//!   quoted strings) around every boundary the lexer and evaluator have;
//! - `hql`: near-valid HQL (token soup, expressions, filters, whole queries
//!   and edits of them) through every HQL entry point;
//! - `json`: JSON filters and aggregations of the right shape with the
//!   wrong contents;
//! - `requests`: whole `/query/metrics` bodies, parsed, planned and run;
//! - `plan`: planning and starting sessions within bounded memory and time,
//!   ranges that would need more buckets than exist, and regression tests
//!   for inputs that once overflowed an `i64`;
//! - `nesting`: the nesting limits of HQL and JSON filters, expressions and
//!   aggregations;
//! - `regex`: the regex filter rule (whole values only, and no escaping the
//!   wrapping group);
//! - this file: what they share — the counting allocator and [`measured`],
//!   the case counts ([`config`]), the server clock ([`NOW`]) and small
//!   generator helpers.
//!
//! Allocations are measured by a counting allocator (this test binary's
//! global allocator), per thread, so tests running in parallel do not see
//! each other's.
//!
//! Case counts are fixed and small enough for the whole test crate to run in
//! a few seconds in a debug build (`HOSTILE_CASES_SCALE=n` multiplies them
//! for a longer hunt); no regression files are written.

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{Map, Value};

mod hql;
mod json;
mod literals;
mod nesting;
mod plan;
mod regex;
mod requests;

// ---------------------------------------------------------------------------
// Allocation accounting

#[global_allocator]
static ALLOCATOR: heroic_plugin_api::testkit::alloc::Counting = heroic_plugin_api::testkit::alloc::Counting;

use heroic_plugin_api::testkit::alloc::measured;

const MIB: usize = 1 << 20;

// ---------------------------------------------------------------------------
// Configuration

/// `cases` cases, times `HOSTILE_CASES_SCALE` when set (for a long hunt:
/// `HOSTILE_CASES_SCALE=100 cargo test …`).
fn config(cases: u32) -> ProptestConfig {
    let scale: u32 = std::env::var("HOSTILE_CASES_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    ProptestConfig {
        cases: cases.saturating_mul(scale),
        failure_persistence: None,
        max_shrink_time: 30_000,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

/// The server's clock in these tests (a realistic "now").
const NOW: i64 = 1_700_000_000_123;

// ---------------------------------------------------------------------------
// Generator helpers

/// One of `items`.
fn pick(items: &'static [&'static str]) -> BoxedStrategy<String> {
    proptest::sample::select(items).prop_map(str::to_string).boxed()
}

/// A JSON object of `fields`.
fn object(fields: Vec<(String, Value)>) -> Value {
    // Later duplicates win, as serde_json does when parsing.
    Value::Object(fields.into_iter().collect::<Map<_, _>>())
}
