//! Hostile payloads for the host's decoders: `/write` bodies and consumer
//! messages (`spotify100` JSON, `spotify100-proto` Snappy + protobuf).
//! Whatever arrives — arbitrary bytes, near-valid JSON, mutated or truncated
//! protobuf, Snappy headers that declare gigabytes — decodes to `Ok` or to
//! an error: never a panic, a stack overflow, or an allocation the payload
//! does not pay for.
//!
//! The test crate, by module:
//!
//! - `write_body`: `/write` bodies (any bytes, near-valid JSON, huge arrays
//!   of points, deep nesting, invalid UTF-8);
//! - `spotify100`: `spotify100` JSON consumer messages;
//! - `proto`: `spotify100-proto` payloads (Snappy + protobuf): valid,
//!   truncated and mutated batches, oversized Snappy declarations, deeply
//!   nested protobuf and memory amplification;
//! - this file: what they share — the counting allocator and [`measured`],
//!   the case counts ([`config`]), byte-level [`edits`] and small
//!   generators.
//!
//! Allocations are measured by a counting allocator (this test binary's
//! global allocator), per thread, so tests running in parallel do not see
//! each other's.
//!
//! Case counts are fixed and small enough for the whole test crate to run in
//! a few seconds in a debug build (`HOSTILE_CASES_SCALE=n` multiplies them
//! for a longer hunt); no regression files are written.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

mod proto;
mod spotify100;
mod write_body;

// ---------------------------------------------------------------------------
// Allocation accounting

#[global_allocator]
static ALLOCATOR: heroic_plugin_api::testkit::alloc::Counting = heroic_plugin_api::testkit::alloc::Counting;

use heroic_plugin_api::testkit::alloc::measured;
use heroic_plugin_api::testkit::sketch::tdigest_verbose;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

// ---------------------------------------------------------------------------
// Configuration

/// Valid t-digest bytes of up to five finite centroids.
fn tdigest_bytes() -> BoxedStrategy<Vec<u8>> {
    vec(-1e9f64..1e9, 0..5).prop_map(|m| tdigest_verbose(&m)).boxed()
}

/// `cases` cases, times `HOSTILE_CASES_SCALE` when set.
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

// ---------------------------------------------------------------------------
// Shared generators

/// One of `items`.
fn pick(items: &'static [&'static str]) -> BoxedStrategy<String> {
    proptest::sample::select(items).prop_map(str::to_string).boxed()
}

/// Byte-level edits: delete, insert (non-UTF-8 bytes included), overwrite,
/// truncate, repeat a slice.
#[derive(Clone, Debug)]
enum Edit {
    Delete(usize),
    Insert(usize, u8),
    Overwrite(usize, u8),
    Truncate(usize),
    Repeat(usize, usize),
}

fn edits() -> BoxedStrategy<Vec<Edit>> {
    let byte =
        prop_oneof![any::<u8>(), proptest::sample::select(&b"{}[]\",:\\0123456789.eE-+ntfu\xff\xfe\xc0\x80\x00"[..])];
    vec(
        prop_oneof![
            any::<usize>().prop_map(Edit::Delete),
            (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Insert(i, b)),
            (any::<usize>(), byte).prop_map(|(i, b)| Edit::Overwrite(i, b)),
            any::<usize>().prop_map(Edit::Truncate),
            (any::<usize>(), 1usize..16).prop_map(|(i, n)| Edit::Repeat(i, n)),
        ],
        0..4,
    )
    .boxed()
}

fn apply_edits(bytes: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for e in edits {
        let len = b.len();
        match *e {
            Edit::Delete(i) if len > 0 => {
                b.remove(i % len);
            }
            Edit::Overwrite(i, x) if len > 0 => b[i % len] = x,
            Edit::Delete(_) | Edit::Overwrite(..) => {}
            Edit::Insert(i, x) => b.insert(i % (len + 1), x),
            Edit::Truncate(i) => b.truncate(i % (len + 1)),
            Edit::Repeat(i, n) => {
                let i = i % (len + 1);
                let slice = b[i..(i + n).min(len)].to_vec();
                b.splice(i..i, slice);
            }
        }
    }
    b
}

/// A JSON value written every way a client might, right or wrong.
fn json_number_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => pick(&[
            "0", "1", "-1", "1.5", "-0.0", "-0", "1e308", "-1e308", "1e309", "-1e999", "1e-400", "4.9e-324",
            "9223372036854775807", "-9223372036854775808", "9223372036854775808", "18446744073709551616",
            "1300000000000", "NaN", "-NaN", "nan", "Infinity", "-Infinity", "inf", "-inf", "\"NaN\"", "\"Infinity\"",
            "\"inf\"", "\"1\"", "null", "true", "0x10", "01", "1.", ".5", "+1", "1e", "--1", "1_000", "[]", "{}",
            "\"\\ud800\"",
        ]),
        1 => any::<i64>().prop_map(|i| i.to_string()),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
    ]
    .boxed()
}
