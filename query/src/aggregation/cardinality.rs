//! Distinct-value counting for `cardinality`: exact (a set of 64-bit
//! hashes) or HyperLogLog. The HyperLogLog cells start sparse (an exact set
//! of hashes, so small buckets cost little and count exactly, as HLL++'s
//! sparse mode does) and switch to dense registers once the set would take
//! more memory than the registers.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use super::result::GroupKey;
use super::CardinalityMethod;

/// A hash of the group key, mixed into value hashes for `includeKey`.
pub(crate) fn key_seed(key: &GroupKey) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish() | 1
}

/// A 64-bit mix (the murmur3 finaliser) of a value's bits and the seed.
#[inline]
fn mix(seed: u64, bits: u64) -> u64 {
    let mut k = bits ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

pub(crate) enum CardinalityCell {
    Exact(HashSet<u64>),
    Sparse { p: u8, set: HashSet<u64> },
    Dense { p: u8, registers: Vec<u8> },
}

/// Index bits for a HyperLogLog with relative error `e` (1.04/√m ≤ e).
fn bits_for_error(e: f64) -> u8 {
    let m = (1.04 / e).powi(2);
    (m.log2().ceil() as u8).clamp(4, 18)
}

impl CardinalityCell {
    pub fn new(method: &CardinalityMethod) -> Self {
        match method {
            CardinalityMethod::Exact { .. } => CardinalityCell::Exact(HashSet::new()),
            CardinalityMethod::Hll { precision, .. } => {
                CardinalityCell::Sparse { p: bits_for_error(*precision), set: HashSet::new() }
            }
            CardinalityMethod::Hllp { precision, .. } => CardinalityCell::Sparse { p: *precision, set: HashSet::new() },
        }
    }

    #[inline]
    pub fn offer(&mut self, seed: u64, bits: u64) {
        let h = mix(seed, bits);
        match self {
            CardinalityCell::Exact(set) => {
                set.insert(h);
            }
            CardinalityCell::Sparse { p, set } => {
                set.insert(h);
                // 8 bytes a hash (plus overhead) against one byte a register.
                if set.len() * 8 > (1usize << *p) {
                    let p = *p;
                    let mut registers = vec![0u8; 1 << p];
                    for &h in set.iter() {
                        dense_offer(&mut registers, p, h);
                    }
                    *self = CardinalityCell::Dense { p, registers };
                }
            }
            CardinalityCell::Dense { p, registers } => dense_offer(registers, *p, h),
        }
    }

    pub fn count(&self) -> u64 {
        match self {
            CardinalityCell::Exact(set) | CardinalityCell::Sparse { set, .. } => set.len() as u64,
            CardinalityCell::Dense { registers, .. } => estimate(registers),
        }
    }
}

#[inline]
fn dense_offer(registers: &mut [u8], p: u8, h: u64) {
    let idx = (h >> (64 - p)) as usize;
    let rest = (h << p) | (1 << (p - 1));
    let rank = rest.leading_zeros() as u8 + 1;
    if rank > registers[idx] {
        registers[idx] = rank;
    }
}

/// The HyperLogLog estimate with linear counting for small cardinalities
/// (64-bit hashes need no large-range correction).
fn estimate(registers: &[u8]) -> u64 {
    let m = registers.len() as f64;
    let alpha = match registers.len() {
        16 => 0.673,
        32 => 0.697,
        64 => 0.709,
        _ => 0.7213 / (1.0 + 1.079 / m),
    };
    let sum: f64 = registers.iter().map(|&r| 2f64.powi(-(r as i32))).sum();
    let raw = alpha * m * m / sum;
    let zeros = registers.iter().filter(|&&r| r == 0).count();
    if raw <= 2.5 * m && zeros > 0 {
        (m * (m / zeros as f64).ln()).round() as u64
    } else {
        raw.round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyperloglog_is_close() {
        let mut cell = CardinalityCell::new(&CardinalityMethod::Hllp { precision: 14, include_key: false });
        for i in 0..100_000u64 {
            cell.offer(0, (i as f64).to_bits());
            cell.offer(0, (i as f64).to_bits()); // duplicates do not count
        }
        assert!(matches!(cell, CardinalityCell::Dense { .. }));
        let c = cell.count() as f64;
        assert!((c - 100_000.0).abs() / 100_000.0 < 0.03, "{c}");
    }

    #[test]
    fn small_sets_are_exact() {
        let mut cell = CardinalityCell::new(&CardinalityMethod::Hll { precision: 0.01, include_key: false });
        for v in [1.0f64, 2.0, 2.0, 3.0] {
            cell.offer(0, v.to_bits());
        }
        assert_eq!(cell.count(), 3);
    }
}
