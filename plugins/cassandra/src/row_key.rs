//! Heroic's Cassandra row key (`metric_key`, schema `ng`), byte for byte,
//! and the row arithmetic around it.
//!
//! Heroic serialises `MetricsRowKey(series, base)` with tiny-serializer
//! 1.4.5 (`useCompactSize(true)`) through the generated `@AutoSerialize`
//! serializers, so the key is, in field order:
//!
//! 1. `series.key` as tiny-serializer's plain string (byte length, bytes;
//!    unlike Bigtable's keys there is no UTF-16 length);
//! 2. `series.tags` as a sorted map (count, then name and value of each tag
//!    in Java `TreeMap` order);
//! 3. `series.resource` the same way, *always* present (`00` when empty;
//!    Heroic 0.8.0 added this field, so keys written by older versions do
//!    not decode);
//! 4. `base` as a compact varlong (`variableLong()`), a negative base as
//!    its two's complement (ten bytes).
//!
//! A row is `Integer.MAX_VALUE` (2^31 − 1) ms wide. Java computes
//! `base = ts - ts % width` and `offset = (int) (ts % width)` with `%`
//! truncating towards zero, and so does Rust: a negative timestamp lands in
//! a row whose base is *above* it, with a negative offset, and row 0 holds
//! offsets from −(2^31 − 2) to 2^31 − 2.

use heroic_plugin_api::types::{Series, Tag};
use heroic_tiny_serializer::{self as tiny, DecodeError, StringCodec};

/// Width of one row: `Integer.MAX_VALUE` ms, about 24.8 days.
pub const ROW_WIDTH: i64 = i32::MAX as i64;

/// Cassandra refuses partition keys longer than 65,535 bytes.
pub const MAX_KEY_BYTES: usize = 65_535;

/// Why a `metric_key` could not be decoded.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("row key has {0} trailing bytes")]
    Trailing(usize),
}

/// A decoded row key.
#[derive(Clone, Debug, PartialEq)]
pub struct RowKey {
    /// The series, tags and resource sorted as `Series::new` sorts them.
    pub series: Series,
    /// The row's base timestamp in ms (a multiple of [`ROW_WIDTH`]).
    pub base: i64,
}

/// The base of the row holding `timestamp` (Java: `ts - ts % width`).
pub fn base_of(timestamp: i64) -> i64 {
    timestamp - timestamp % ROW_WIDTH
}

/// The offset of `timestamp` in its row (Java: `(int) (ts % width)`).
pub fn offset_of(timestamp: i64) -> i32 {
    // |ts % width| < 2^31 - 1: always fits.
    (timestamp % ROW_WIDTH) as i32
}

/// The timestamp of a cell; `None` when base plus offset overflows (only
/// possible for a foreign key).
pub fn timestamp_of(base: i64, offset: i32) -> Option<i64> {
    base.checked_add(i64::from(offset))
}

/// The first and last timestamp (inclusive) that Java's arithmetic puts in
/// the row with `base`, clamped to the `i64` range.
pub fn row_span(base: i64) -> (i64, i64) {
    let below = base.saturating_sub(ROW_WIDTH - 1);
    let above = base.saturating_add(ROW_WIDTH - 1);
    match base {
        0 => (below, above),
        b if b > 0 => (b, above),
        b => (below, b),
    }
}

fn pairs(tags: &[Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter().map(|t| (t.key.as_str(), t.value.as_str()))
}

/// Everything before the base: key, tags and resource. Every row of the
/// series shares it.
pub fn series_prefix(series: &Series) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + series.key.len() + (series.tags.len() + series.resource.len()) * 24);
    tiny::put_string(&mut out, &series.key);
    tiny::put_sorted_map(&mut out, pairs(&series.tags), StringCodec::Plain);
    tiny::put_sorted_map(&mut out, pairs(&series.resource), StringCodec::Plain);
    out
}

/// `prefix` followed by the base: the key of one row.
pub fn with_base(prefix: &[u8], base: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + 10);
    out.extend_from_slice(prefix);
    // Java's long, two's complement: negative bases take ten bytes.
    tiny::put_varlong(&mut out, base as u64);
    out
}

/// The key of the row of `series` holding `timestamp`.
pub fn encode(series: &Series, timestamp: i64) -> Vec<u8> {
    with_base(&series_prefix(series), base_of(timestamp))
}

/// Decodes a key written by Heroic (0.8.0 or later) or by this plugin.
pub fn decode(key: &[u8]) -> Result<RowKey, KeyError> {
    let mut input = key;
    let name = tiny::get_string(&mut input, "the series key")?;
    let tags = tiny::get_sorted_map(&mut input, StringCodec::Plain, "the tags")?;
    let resource = tiny::get_sorted_map(&mut input, StringCodec::Plain, "the resource tags")?;
    let base = tiny::get_varlong(&mut input, "the base")? as i64;
    if !input.is_empty() {
        return Err(KeyError::Trailing(input.len()));
    }
    Ok(RowKey { series: Series::new(name, tags, resource), base })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// The reference's worked example series, as Heroic's ng schema writes
    /// it. Hand-computed: 1,300,000,000,000 = 605 × 2,147,483,647 +
    /// 772,393,565, so base = 1,299,227,606,435 = 0x12e7ffffda3, whose
    /// compact varlong is a3 fa fe fe e6 24: v = 1,299,227,606,435 → low
    /// bits 0x23 | 0x80, v = v / 128 − 1 = 10,150,215,674 → 0x7a | 0x80,
    /// 79,298,558 → 0x7e | 0x80, 619,518 → 0x7e | 0x80, 4,838 → 0x66 | 0x80,
    /// and 36 (< 128) → 0x24 last.
    #[test]
    fn worked_example_byte_for_byte() {
        let expected =
            hex("06 73797374656d | 02 | 04 686f7374 03 646231 | 07 72c3a967696f6e 07 5ac3bc72696368 | 00 | \
             a3 fa fe fe e6 24");
        let series = Series::new("system", [("host", "db1"), ("région", "Zürich")], []);
        let ts = 1_300_000_000_000;
        assert_eq!(base_of(ts), 1_299_227_606_435);
        assert_eq!(offset_of(ts), 772_393_565);
        assert_eq!(encode(&series, ts), expected);
        let decoded = decode(&expected).unwrap();
        assert_eq!(decoded, RowKey { series, base: 1_299_227_606_435 });
        assert_eq!(timestamp_of(decoded.base, offset_of(ts)), Some(ts));
    }

    #[test]
    fn resource_tags_are_part_of_the_key() {
        let series = Series::new("cpu", [("host", "a")], [("pod", "p-1"), ("container", "c")]);
        let key = encode(&series, 0);
        // key, one tag, then two resource tags in order, then base 0.
        let expected = hex("03 637075 01 04 686f7374 01 61 02 09 636f6e7461696e6572 01 63 03 706f64 03 702d31 00");
        assert_eq!(key, expected);
        assert_eq!(decode(&key).unwrap().series, series);
        let plain = encode(&Series::new("cpu", [("host", "a")], []), 0);
        assert_ne!(plain, key, "another partition, not a prefix scan away as in bigtable");
    }

    #[test]
    fn tags_follow_java_treemap_order() {
        let series = Series::new("k", [("\u{ff5e}", "a"), ("\u{1f600}", "b")], []);
        let key = encode(&series, 0);
        let smiley = key.windows(4).position(|w| w == "\u{1f600}".as_bytes()).unwrap();
        let tilde = key.windows(3).position(|w| w == "\u{ff5e}".as_bytes()).unwrap();
        assert!(smiley < tilde, "java order puts the surrogate pair first");
        assert_eq!(decode(&key).unwrap().series, series);
    }

    #[test]
    fn bases_and_offsets_follow_java_arithmetic() {
        let w = ROW_WIDTH;
        assert_eq!((base_of(0), offset_of(0)), (0, 0));
        assert_eq!((base_of(w - 1), offset_of(w - 1)), (0, i32::MAX - 1));
        assert_eq!((base_of(w), offset_of(w)), (w, 0));
        assert_eq!((base_of(2 * w + 5), offset_of(2 * w + 5)), (2 * w, 5));
        // Truncating remainder: negative timestamps round towards zero.
        assert_eq!((base_of(-1), offset_of(-1)), (0, -1));
        assert_eq!((base_of(-(w - 1)), offset_of(-(w - 1))), (0, -(i32::MAX - 1)));
        assert_eq!((base_of(-w), offset_of(-w)), (-w, 0));
        assert_eq!((base_of(-w - 1), offset_of(-w - 1)), (-w, -1));
        assert_eq!(base_of(i64::MAX), i64::MAX - 1);
        assert_eq!(base_of(i64::MIN), i64::MIN + 2);
        for ts in [0, 1, -1, w, -w, w - 1, 1 - w, 1_600_000_000_000, -1_600_000_000_000, i64::MAX, i64::MIN] {
            assert_eq!(timestamp_of(base_of(ts), offset_of(ts)), Some(ts), "{ts}");
            let (first, last) = row_span(base_of(ts));
            assert!(first <= ts && ts <= last, "{ts} outside its row {first}..={last}");
        }
        assert_eq!(timestamp_of(i64::MAX - 1, 5), None);
    }

    #[test]
    fn row_spans() {
        let w = ROW_WIDTH;
        assert_eq!(row_span(0), (1 - w, w - 1));
        assert_eq!(row_span(w), (w, 2 * w - 1));
        assert_eq!(row_span(-w), (-2 * w + 1, -w));
        assert_eq!(row_span(i64::MAX - 1), (i64::MAX - 1, i64::MAX));
        assert_eq!(row_span(i64::MIN + 2), (i64::MIN, i64::MIN + 2));
        // Every timestamp just outside a span belongs to the neighbour row.
        for base in [-3 * w, -w, 0, w, 5 * w] {
            let (first, last) = row_span(base);
            assert_eq!(base_of(first), base);
            assert_eq!(base_of(last), base);
            assert_ne!(base_of(first - 1), base);
            assert_ne!(base_of(last + 1), base);
        }
    }

    #[test]
    fn negative_bases_round_trip() {
        let series = Series::new("neg", [("a", "b")], []);
        let key = encode(&series, -1_000_000_000_000);
        assert_eq!(key.len(), series_prefix(&series).len() + 10, "a negative long is a ten-byte varlong");
        let decoded = decode(&key).unwrap();
        assert_eq!(decoded.base, base_of(-1_000_000_000_000));
        assert!(decoded.base < 0);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(&[]).is_err());
        assert!(decode(&hex("06 7379")).is_err());
        assert_eq!(decode(&hex("01 61 00 00 00 07")), Err(KeyError::Trailing(1)));
        // A Bigtable key is not a Cassandra key.
        assert!(decode(&hex("06 06 73797374656d 00 0000012e00000000")).is_err());
    }
}
