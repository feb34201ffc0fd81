//! Compression of one block of points (one series, sorted unique timestamps).
//!
//! Block payload layout (all integers little-endian):
//!
//! ```text
//! kind: u8        0 = raw, 1 = pco floats, 2 = pco decimal-scaled integers,
//!                 3 = varint decimal-scaled integers;
//!                 kinds 1 to 3 may carry the flag 0x10: regular timestamps
//! exponent: u8    k for kind 2: value = integer / 10^k
//! count: u32
//! ts_len: u32     bytes of the timestamp section
//! timestamps      raw i64s, a pco stream of i64 (pco picks delta order), or
//!                 with the regular flag: first i64, step i64
//! values          raw f64s, or a pco stream of f64 (kind 1) or i64 (kind 2),
//!                 or (kind 3) the first integer and then each difference from
//!                 the one before, as zigzag varints
//! ```
//!
//! Why kind 3: pco's stream carries a header of a few dozen bytes, as much
//! as the values themselves in a block of a short series (86 points of a
//! random walk take ~90 bytes as varints, ~110 as a pco stream). Small
//! decimal blocks are encoded both ways and keep the smaller.
//!
//! Why the regular flag: most series are scraped at a fixed interval, and
//! two integers replace a pco stream that a fetch would otherwise decode
//! (pco's per-chunk setup included) for every block. Blocks written before the flag existed decode as
//! before; older versions refuse flagged blocks ("unknown block kind").
//!
//! Why decimal scaling: gauges are usually reported with a few decimals, and
//! such floats have noisy mantissas that compress badly, while the integers
//! `round(v * 10^k)` of a random walk differ by small deltas that pco packs
//! into a few bits. A block is scaled only if every value round-trips
//! exactly (bit for bit), so it is lossless (VictoriaMetrics' trick).
//! Tiny blocks are stored raw because a pco header costs more than it saves.

use pco::standalone::{simple_compress, simple_decompress_into};
use pco::{ChunkConfig, DeltaSpec};

use crate::block_cache::{DecodedBlock, Times, Values};
use crate::encoding::{put_u32, put_u8, put_varint, Reader};
use crate::error::{Error, Result};

const RAW: u8 = 0;
const PCO_FLOAT: u8 = 1;
const PCO_DECIMAL: u8 = 2;
const VARINT_DECIMAL: u8 = 3;
/// Decimal blocks of at most this many points are also tried as varints.
const VARINT_UP_TO: usize = 1024;
/// Flag on the kind: timestamps are `first + step·i`, stored as two i64.
const REGULAR_TS: u8 = 0x10;
/// Below this many points a block is stored raw.
const RAW_BELOW: usize = 8;
/// Largest decimal exponent tried; beyond it scaling rarely pays off.
const MAX_EXPONENT: u32 = 9;
/// Integers beyond 2^53 are not exact in f64.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// The smallest `k` such that every value is exactly `integer / 10^k`.
pub(crate) fn decimal_exponent(values: &[f64]) -> Option<u32> {
    let first = *values.first()?;
    let mut k = (0..=MAX_EXPONENT).find(|&k| scales(first, k))?;
    // Each failing value bumps k; values already checked at a smaller k also
    // hold at a larger one unless they overflow, so recheck only on a bump.
    'outer: loop {
        for &v in values {
            if !scales(v, k) {
                k = (k + 1..=MAX_EXPONENT).find(|&k2| scales(v, k2))?;
                continue 'outer;
            }
        }
        return Some(k);
    }
}

#[inline]
fn scales(v: f64, k: u32) -> bool {
    let s = POW10[k as usize];
    let x = (v * s).round();
    x.abs() < MAX_EXACT && ((x as i64) as f64 / s).to_bits() == v.to_bits()
}

const POW10: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

fn codec_err(e: impl std::fmt::Display) -> Error {
    Error::Codec(e.to_string())
}

/// The step of timestamps that are `ts[0] + step·i` (at least two points).
fn regular_step(ts: &[i64]) -> Option<i64> {
    let step = ts.get(1)?.checked_sub(ts[0])?;
    ts.windows(2).all(|w| w[1].wrapping_sub(w[0]) == step).then_some(step)
}

/// Appends the encoded block to `out`.
pub(crate) fn encode_block(ts: &[i64], values: &[f64], out: &mut Vec<u8>) -> Result<()> {
    debug_assert_eq!(ts.len(), values.len());
    let n = ts.len();
    if n < RAW_BELOW {
        put_u8(out, RAW);
        put_u8(out, 0);
        put_u32(out, n as u32);
        put_u32(out, (n * 8) as u32);
        ts.iter().for_each(|t| out.extend_from_slice(&t.to_le_bytes()));
        values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        return Ok(());
    }
    let (regular, ts_bytes) = match regular_step(ts) {
        Some(step) => (REGULAR_TS, [ts[0].to_le_bytes(), step.to_le_bytes()].concat()),
        None => (0, simple_compress(ts, &int_config(ts)).map_err(codec_err)?),
    };
    let (kind, k, value_bytes) = match decimal_exponent(values) {
        Some(k) => {
            let s = POW10[k as usize];
            let ints: Vec<i64> = values.iter().map(|&v| (v * s).round() as i64).collect();
            let pco = simple_compress(&ints, &int_config(&ints)).map_err(codec_err)?;
            match (n <= VARINT_UP_TO).then(|| varint_deltas(&ints)) {
                Some(varints) if varints.len() < pco.len() => (VARINT_DECIMAL, k, varints),
                _ => (PCO_DECIMAL, k, pco),
            }
        }
        None => (PCO_FLOAT, 0, simple_compress(values, &float_config()).map_err(codec_err)?),
    };
    put_u8(out, kind | regular);
    put_u8(out, k as u8);
    put_u32(out, n as u32);
    put_u32(out, ts_bytes.len() as u32);
    out.extend_from_slice(&ts_bytes);
    out.extend_from_slice(&value_bytes);
    Ok(())
}

/// pco's level for every stream: 6 instead of its default 8 halves the time
/// spent choosing bins, for 0.2 % more bytes on the benchmark's random walks.
const PCO_LEVEL: usize = 6;

/// How pco compresses a stream of integers, with the delta order chosen here.
///
/// Why: pco's automatic choice tries several orders and a lookback search on
/// every chunk, which took ~100 µs for a block of 864 points, a fifth of
/// the CPU of an ingest that creates 10,000 series (the flusher encodes
/// each series' block). The spread of each order's differences is a good
/// proxy for the bits pco will spend, and takes two passes to find: noise
/// around a level picks order 0, a random walk or a counter at a steady
/// rate order 1, a steadily accelerating value order 2. pco then encodes
/// the block in ~20 µs, to the same size.
fn int_config(ints: &[i64]) -> ChunkConfig {
    ChunkConfig::default()
        .with_compression_level(PCO_LEVEL)
        .with_delta_spec(DeltaSpec::TryConsecutive(delta_order(ints)))
}

/// pco's configuration for floats that are not scaled decimals: its own
/// delta choice (floats' differences are not exact), at [`PCO_LEVEL`].
fn float_config() -> ChunkConfig {
    ChunkConfig::default().with_compression_level(PCO_LEVEL)
}

/// The delta order (0, 1 or 2) whose differences are smallest on average.
/// A lower order wins ties: it costs less to decode.
fn delta_order(ints: &[i64]) -> usize {
    let n = ints.len();
    if n < 3 {
        return 0;
    }
    // pco's bins code an offset for free, so what costs bits is the spread
    // of each order's differences, not their size: a counter's steady rate
    // makes order 1 large but narrow. Spread is measured as the mean
    // absolute deviation from each order's own mean.
    let x = |i: usize| ints[i] as i128;
    let mean0 = ints.iter().map(|&v| v as i128).sum::<i128>() / n as i128;
    let mean1 = (x(n - 1) - x(0)) / (n - 1) as i128;
    let mean2 = ((x(n - 1) - x(n - 2)) - (x(1) - x(0))) / (n - 2) as i128;
    let (mut o0, mut o1, mut o2) = (0u128, 0u128, 0u128);
    for (i, w) in ints.windows(3).enumerate() {
        let (a, b, c) = (w[0] as i128, w[1] as i128, w[2] as i128);
        if i == 0 {
            o0 += (a - mean0).unsigned_abs() + (b - mean0).unsigned_abs();
            o1 += (b - a - mean1).unsigned_abs();
        }
        o0 += (c - mean0).unsigned_abs();
        o1 += (c - b - mean1).unsigned_abs();
        o2 += ((c - b) - (b - a) - mean2).unsigned_abs();
    }
    // The sums hold n, n - 1 and n - 2 terms: compare their means by
    // cross-multiplying (no overflow in u128 for any block size).
    let (k0, k1, k2) = (n as u128, (n - 1) as u128, (n - 2) as u128);
    let (m0, m1, m2) = (o0 * k1 * k2, o1 * k0 * k2, o2 * k0 * k1);
    if m0 <= m1 && m0 <= m2 {
        0
    } else if m1 <= m2 {
        1
    } else {
        2
    }
}

/// The integers as zigzag varints: the first, then each difference.
fn varint_deltas(ints: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ints.len() + 8);
    let mut prev = 0i64;
    for &x in ints {
        let d = x.wrapping_sub(prev);
        put_varint(&mut out, ((d << 1) ^ (d >> 63)) as u64);
        prev = x;
    }
    out
}

/// Reads `n` integers written by [`varint_deltas`] into `out`.
fn read_varint_deltas(bytes: &[u8], n: usize, out: &mut Vec<i64>) -> Option<()> {
    let mut r = Reader::new(bytes);
    let mut prev = 0i64;
    for _ in 0..n {
        let z = r.varint()?;
        prev = prev.wrapping_add(((z >> 1) as i64) ^ -((z & 1) as i64));
        out.push(prev);
    }
    r.is_empty().then_some(())
}

/// Decodes a block, appending its points to `ts` and `values`. `scratch` is
/// reused between calls to avoid an allocation per block.
pub(crate) fn decode_block(
    block: &[u8],
    ts: &mut Vec<i64>,
    values: &mut Vec<f64>,
    scratch: &mut Vec<i64>,
) -> Result<usize> {
    let decoded = decode_compact(block, scratch)?;
    decoded.append_range(heroic_plugin_api::types::TimeRange::ALL, ts, values);
    Ok(decoded.len())
}

/// Decodes a block into its compact form (see `block_cache`): regular
/// timestamps stay `first, step`, decimal-scaled values stay integers.
/// `scratch` is reused between calls.
pub(crate) fn decode_compact(block: &[u8], scratch: &mut Vec<i64>) -> Result<DecodedBlock> {
    let bad = || Error::Codec("truncated block header".into());
    let mut r = Reader::new(block);
    let kind = r.u8().ok_or_else(bad)?;
    let k = r.u8().ok_or_else(bad)? as usize;
    let n = r.u32().ok_or_else(bad)? as usize;
    let ts_len = r.u32().ok_or_else(bad)? as usize;
    let ts_bytes = r.bytes(ts_len).ok_or_else(bad)?;
    let value_bytes = r.rest();
    if kind == RAW {
        let (mut ts, mut values) = (Vec::new(), Vec::new());
        Reader::new(ts_bytes).i64s(n, &mut ts).ok_or_else(bad)?;
        Reader::new(value_bytes).f64s(n, &mut values).ok_or_else(bad)?;
        return Ok(DecodedBlock { times: Times::Listed(ts.into()), values: Values::Floats(values.into()) });
    }
    let base = kind & !REGULAR_TS;
    if base != PCO_FLOAT && base != PCO_DECIMAL && base != VARINT_DECIMAL {
        return Err(Error::Codec(format!("unknown block kind {kind}")));
    }
    let times = if kind & REGULAR_TS != 0 {
        let mut r = Reader::new(ts_bytes);
        let (first, step) = (r.i64().ok_or_else(bad)?, r.i64().ok_or_else(bad)?);
        Times::Regular { first, step, n }
    } else {
        let mut ts = vec![0i64; n];
        let p = simple_decompress_into(ts_bytes, &mut ts).map_err(codec_err)?;
        if p.n_processed != n {
            return Err(Error::Codec(format!("block holds {} timestamps, expected {n}", p.n_processed)));
        }
        Times::Listed(ts.into())
    };
    let values = if base == PCO_FLOAT {
        let mut values = vec![0.0f64; n];
        let p = simple_decompress_into(value_bytes, &mut values).map_err(codec_err)?;
        if p.n_processed != n {
            return Err(Error::Codec("short value stream in block".into()));
        }
        Values::Floats(values.into())
    } else {
        if k >= POW10.len() {
            return Err(Error::Codec(format!("bad decimal exponent {k}")));
        }
        scratch.clear();
        if base == VARINT_DECIMAL {
            scratch.reserve(n.min(value_bytes.len()));
            read_varint_deltas(value_bytes, n, scratch)
                .ok_or_else(|| Error::Codec("bad varint values in block".into()))?;
        } else {
            scratch.resize(n, 0);
            let p = simple_decompress_into(value_bytes, &mut scratch[..]).map_err(codec_err)?;
            if p.n_processed != n {
                return Err(Error::Codec("short value stream in block".into()));
            }
        }
        let divisor = POW10[k];
        let narrow: Option<Box<[i32]>> = scratch.iter().map(|&x| i32::try_from(x).ok()).collect();
        match narrow {
            Some(ints) => Values::Scaled32 { divisor, ints },
            None => Values::Scaled64 { divisor, ints: scratch.as_slice().into() },
        }
    };
    Ok(DecodedBlock { times, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(ts: &[i64], vals: &[f64]) -> usize {
        let mut buf = Vec::new();
        encode_block(ts, vals, &mut buf).unwrap();
        let (mut t2, mut v2, mut s) = (Vec::new(), Vec::new(), Vec::new());
        decode_block(&buf, &mut t2, &mut v2, &mut s).unwrap();
        assert_eq!(t2, ts);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&v2), bits(vals));
        buf.len()
    }

    #[test]
    fn detects_decimal_exponents() {
        assert_eq!(decimal_exponent(&[1.0, 2.0, -3.0]), Some(0));
        assert_eq!(decimal_exponent(&[1.5, 2.25, 0.1]), Some(2));
        assert_eq!(decimal_exponent(&[0.1 + 0.2]), None);
        assert_eq!(decimal_exponent(&[f64::NAN]), None);
        assert_eq!(decimal_exponent(&[-0.0]), None, "-0.0 would come back as +0.0");
        assert_eq!(decimal_exponent(&[1e300]), None);
    }

    #[test]
    fn delta_order_follows_the_shape_of_the_data() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut noise = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 13) as i64 - 6
        };
        let level: Vec<i64> = (0..500).map(|_| 1000 + noise()).collect();
        assert_eq!(delta_order(&level), 0, "noise around a level");
        let mut v = 0i64;
        let walk: Vec<i64> = (0..500)
            .map(|_| {
                v += noise();
                v
            })
            .collect();
        assert_eq!(delta_order(&walk), 1, "a random walk");
        let counter: Vec<i64> = (0..500).map(|i| 1_000_000 + i * 250 + noise().abs()).collect();
        assert_eq!(delta_order(&counter), 1, "a counter at a steady rate with jitter");
        let smooth: Vec<i64> = (0..500).map(|i| i * i * 3 + noise()).collect();
        assert_eq!(delta_order(&smooth), 2, "a steadily accelerating value");
        assert_eq!(delta_order(&[5, 5, 5, 5]), 0, "ties go to the lowest order");
        assert_eq!(delta_order(&[1, 2]), 0);
        // The extremes a decimal block can hold: no overflow.
        let edges = [-9_007_199_254_740_992, 9_007_199_254_740_992, i64::MIN, i64::MAX, 0];
        delta_order(&edges);
    }

    #[test]
    fn every_kind_round_trips() {
        round_trip(&[1, 2, 3], &[0.5, -0.0, f64::NAN]);
        let ts: Vec<i64> = (0..5000).map(|i| 1_600_000_000_000 + i * 10_000).collect();
        let dec: Vec<f64> = (0..5000).map(|i| ((i * 37 % 1000) as f64) / 100.0).collect();
        let size = round_trip(&ts, &dec);
        assert!(size < 5000 * 2, "decimal block of {size} bytes");
        let noisy: Vec<f64> = (0..5000).map(|i| (i as f64).sin()).collect();
        round_trip(&ts, &noisy);
        let mut jittered = ts.clone();
        jittered[4000] += 1;
        round_trip(&jittered, &dec);
        round_trip(&jittered, &noisy);
        let wild: Vec<i64> = (0..100).map(|i| i * 10_000_000_000).collect();
        let mixed: Vec<f64> = (0..100).map(|i| if i % 2 == 0 { f64::INFINITY } else { 1.0 }).collect();
        round_trip(&wild, &mixed);
    }

    /// A short decimal series is stored as varints, smaller than pco's
    /// stream; a long one stays pco.
    #[test]
    fn short_decimal_blocks_take_the_smaller_encoding() {
        let ts: Vec<i64> = (0..86).map(|i| 1_700_000_000_000 + i * 10_000).collect();
        let walk: Vec<f64> = (0..86)
            .scan(5000i64, |x, i| {
                *x += (i * 37 % 101) - 50;
                Some(*x as f64 / 100.0)
            })
            .collect();
        let mut buf = Vec::new();
        encode_block(&ts, &walk, &mut buf).unwrap();
        assert_eq!(buf[0], VARINT_DECIMAL | REGULAR_TS);
        assert!(buf.len() < 10 + 16 + 100, "{} bytes", buf.len());
        round_trip(&ts, &walk);
        let extremes = [i64::MIN as f64, 0.0, 9.0e15, -9.0e15, 1.0];
        round_trip(&ts[..5], &extremes);
        let long: Vec<f64> = (0..5000).map(|i| ((i * 37 % 1000) as f64) / 100.0).collect();
        let long_ts: Vec<i64> = (0..5000).collect();
        buf.clear();
        encode_block(&long_ts, &long, &mut buf).unwrap();
        assert_eq!(buf[0] & !REGULAR_TS, PCO_DECIMAL);
    }

    #[test]
    fn damaged_varint_values_are_an_error_not_a_panic() {
        let ts: Vec<i64> = (0..20).collect();
        let vals: Vec<f64> = (0..20).map(|i| i as f64).collect();
        let mut buf = Vec::new();
        encode_block(&ts, &vals, &mut buf).unwrap();
        assert_eq!(buf[0] & !REGULAR_TS, VARINT_DECIMAL);
        let mut s = Vec::new();
        assert!(decode_compact(&buf[..buf.len() - 3], &mut s).is_err());
        let mut long = buf.clone();
        long.push(1);
        assert!(decode_compact(&long, &mut s).is_err());
        long.pop();
        *long.last_mut().unwrap() |= 0x80;
        assert!(decode_compact(&long, &mut s).is_err());
    }
}
