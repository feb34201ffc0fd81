//! Distribution values as Heroic's clients send them, for tests.
//!
//! Backends store these bytes opaquely; the host and the consumers decode
//! them. One builder here, so every test writes the same layout.

/// `MergingDigest.asBytes` (verbose) of a digest holding `values` one
/// centroid each: `i32 1, f64 min, f64 max, f64 compression (100),
/// i32 n, n × (f64 weight 1, f64 mean)`. Empty `values` give min +∞ and
/// max −∞, as an empty Java digest writes them.
pub fn tdigest_verbose(values: &[f64]) -> Vec<u8> {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut out = Vec::with_capacity(32 + 16 * values.len());
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&min.to_be_bytes());
    out.extend_from_slice(&max.to_be_bytes());
    out.extend_from_slice(&100f64.to_be_bytes());
    out.extend_from_slice(&(values.len() as i32).to_be_bytes());
    for x in values {
        out.extend_from_slice(&1f64.to_be_bytes());
        out.extend_from_slice(&x.to_be_bytes());
    }
    out
}
