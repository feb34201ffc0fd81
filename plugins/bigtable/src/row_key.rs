//! Heroic's Bigtable row key, byte for byte.
//!
//! Heroic serialises `(key, sorted tags, base)` with tiny-serializer 1.4.5,
//! optionally followed by a resource suffix; see section 5 of the reference.
//! The pieces that differ from what a Rust programmer would guess:
//!
//! - lengths and counts are tiny-serializer's *compact* varint (each
//!   continuation step subtracts one), not LEB128;
//! - key and tag strings carry their UTF-8 byte length *and* their length in
//!   UTF-16 code units (Java's `String.length()`);
//! - tags are ordered as Java's `TreeMap<String>` orders them, by UTF-16 code
//!   units, which differs from Rust's `str` order above U+FFFF;
//! - the base is `ts - ts mod 2^32` as an 8-byte big-endian signed long.
//!
//! The row key without the resource suffix (the "minimal key") is a prefix
//! of every resource variant of the series for that base, so reads scan it
//! as a prefix. The part before the base (`series_prefix`) is
//! self-delimiting, so every row starting with it belongs to the series.

use heroic_plugin_api::types::{Series, Tag};
use heroic_tiny_serializer::{
    get_sorted_map, get_string_utf16, get_varint, put_sorted_map, put_string_utf16, put_varint, take, StringCodec,
};

/// Width of one row in milliseconds: 2^32 ms, about 49.7 days.
pub const PERIOD: i64 = 1 << 32;

/// Bigtable refuses row keys of 4 KiB; Heroic drops keys from 4,000 bytes.
pub const MAX_ROW_KEY_BYTES: usize = 4000;

/// Why a row key could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// A tiny-serializer piece (varint, string, map) is malformed.
    #[error(transparent)]
    Encoding(#[from] heroic_tiny_serializer::DecodeError),
    #[error("row key suffix is not a resource suffix: {0}")]
    BadSuffix(String),
    #[error("row key has {0} trailing bytes")]
    Trailing(usize),
}

/// A decoded row key.
#[derive(Clone, Debug, PartialEq)]
pub struct RowKey {
    /// The series, tags and resource sorted as `Series::new` sorts them.
    pub series: Series,
    /// Start of the row's period in ms (a multiple of [`PERIOD`]).
    pub base: i64,
}

/// Start of the period holding `timestamp`: `ts - ts mod 2^32`. For negative
/// timestamps this rounds down (Java rounds towards zero there, which gives
/// negative offsets Heroic cannot store either).
pub fn base_of(timestamp: i64) -> i64 {
    timestamp & !(PERIOD - 1)
}

/// The column qualifier of `timestamp` in its row: the offset from the base
/// as a 4-byte big-endian unsigned integer.
pub fn qualifier_of(timestamp: i64) -> [u8; 4] {
    offset_of(timestamp).to_be_bytes()
}

/// The offset of `timestamp` from its base.
pub fn offset_of(timestamp: i64) -> u32 {
    (timestamp & (PERIOD - 1)) as u32
}

/// The timestamp of a cell: base plus the qualifier read as an offset.
/// `None` when the qualifier is not 4 bytes.
pub fn timestamp_of(base: i64, qualifier: &[u8]) -> Option<i64> {
    let offset: [u8; 4] = qualifier.try_into().ok()?;
    Some(base + i64::from(u32::from_be_bytes(offset)))
}

/// Row keys are refused long before 4 GiB; saturating keeps this total.
fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn tag_pairs(tags: &[Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter().map(|tag| (tag.key.as_str(), tag.value.as_str()))
}

// --- keys --------------------------------------------------------------------

/// The self-delimiting part before the base: key, then the sorted tags.
pub fn series_prefix(series: &Series) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + series.key.len() + series.tags.len() * 24);
    put_string_utf16(&mut out, &series.key);
    put_sorted_map(&mut out, tag_pairs(&series.tags), StringCodec::Utf16Length);
    out
}

/// The resource suffix, empty when the series has no resource tags.
pub fn resource_suffix(resource: &[Tag]) -> Vec<u8> {
    if resource.is_empty() {
        return Vec::new();
    }
    let mut payload = Vec::new();
    put_sorted_map(&mut payload, tag_pairs(resource), StringCodec::Plain);
    let mut out = Vec::with_capacity(payload.len() + 4);
    put_varint(&mut out, 1); // one suffix entry …
    put_varint(&mut out, 0); // … of type RESOURCE
    put_varint(&mut out, len_u32(payload.len()));
    out.extend_from_slice(&payload);
    out
}

/// `prefix` followed by the base: the minimal key of one row, which every
/// resource variant of that row starts with.
pub fn with_base(prefix: &[u8], base: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + 8);
    out.extend_from_slice(prefix);
    out.extend_from_slice(&base.to_be_bytes());
    out
}

/// The full row key of `series` for the row holding `timestamp`.
pub fn encode(series: &Series, timestamp: i64) -> Vec<u8> {
    let mut out = with_base(&series_prefix(series), base_of(timestamp));
    out.extend_from_slice(&resource_suffix(&series.resource));
    out
}

/// Decodes a row key written by Heroic or by this plugin.
pub fn decode(row_key: &[u8]) -> Result<RowKey, DecodeError> {
    let mut input = row_key;
    let key = get_string_utf16(&mut input, "the series key")?;
    let tags = get_sorted_map(&mut input, StringCodec::Utf16Length, "the tags")?;
    let base_bytes: [u8; 8] = take(&mut input, 8, "the base timestamp")?.try_into().expect("8 bytes taken");
    let base = i64::from_be_bytes(base_bytes);
    let mut resource = Vec::new();
    if !input.is_empty() {
        resource = decode_suffix(&mut input)?;
    }
    if !input.is_empty() {
        return Err(DecodeError::Trailing(input.len()));
    }
    Ok(RowKey { series: Series::new(key, tags, resource), base })
}

fn decode_suffix(input: &mut &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
    let entries = get_varint(input, "the suffix count")?;
    let mut resource = Vec::new();
    for _ in 0..entries {
        let kind = get_varint(input, "the suffix entry type")?;
        if kind != 0 {
            return Err(DecodeError::BadSuffix(format!("entry type {kind}, only 0 (resource) is known")));
        }
        let len = get_varint(input, "the resource payload length")? as usize;
        let mut payload = take(input, len, "the resource payload")?;
        resource.extend(get_sorted_map(&mut payload, StringCodec::Plain, "the resource tags")?);
        if !payload.is_empty() {
            return Err(DecodeError::BadSuffix(format!("{} bytes left in the resource payload", payload.len())));
        }
    }
    Ok(resource)
}

/// The series prefix of a row key (everything before the base), or `None`
/// when the key does not decode that far.
pub fn prefix_of(row_key: &[u8]) -> Option<&[u8]> {
    let mut input = row_key;
    get_string_utf16(&mut input, "the series key").ok()?;
    get_sorted_map(&mut input, StringCodec::Utf16Length, "the tags").ok()?;
    Some(&row_key[..row_key.len() - input.len()])
}

/// The smallest key greater than every key starting with `prefix`; `None`
/// when there is none (the prefix is all `ff`), i.e. scan to the end.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last != 0xff {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// The reference's worked example, built by hand from its description.
    #[test]
    fn worked_example_byte_for_byte() {
        let expected = hex("06 06 73797374656d | 02 | 04 04 686f7374 03 03 646231 | \
             07 06 72c3a967696f6e 07 06 5ac3bc72696368 | 00 00 01 2e 00 00 00 00");
        let series = Series::new("system", [("host", "db1"), ("région", "Zürich")], []);
        let ts = 1_300_000_000_000;
        assert_eq!(encode(&series, ts), expected);
        assert_eq!(qualifier_of(ts), [0xae, 0x09, 0xc8, 0x00]);
        let decoded = decode(&expected).unwrap();
        assert_eq!(decoded.series, series);
        assert_eq!(decoded.base, 0x0000_012e_0000_0000);
        assert_eq!(timestamp_of(decoded.base, &[0xae, 0x09, 0xc8, 0x00]), Some(ts));
        assert_eq!(prefix_of(&expected), Some(&expected[..expected.len() - 8]));
    }

    #[test]
    fn tags_follow_java_treemap_order() {
        // U+FF5E (one UTF-16 unit, ff5e) sorts after U+1F600 (surrogates
        // d83d de00) in Java, before it in Rust's code point order.
        let series = Series::new("k", [("\u{ff5e}", "a"), ("\u{1f600}", "b")], []);
        let key = encode(&series, 0);
        let smiley = key.windows(4).position(|w| w == "\u{1f600}".as_bytes()).unwrap();
        let tilde = key.windows(3).position(|w| w == "\u{ff5e}".as_bytes()).unwrap();
        assert!(smiley < tilde, "java order puts the surrogate pair first");
        assert_eq!(decode(&key).unwrap().series, series);
    }

    #[test]
    fn resource_suffix_round_trips_and_extends_the_minimal_key() {
        let plain = Series::new("cpu", [("host", "a")], []);
        let with_res = Series::new("cpu", [("host", "a")], [("pod", "p-1"), ("container", "c")]);
        let ts = 1_600_000_000_000;
        let minimal = encode(&plain, ts);
        let full = encode(&with_res, ts);
        assert!(full.starts_with(&minimal));
        let suffix = &full[minimal.len()..];
        // list of one entry, type 0, payload length, then the sorted map.
        let payload_len = 1 + (1 + 9) + (1 + 1) + (1 + 3) + (1 + 3);
        assert_eq!(&suffix[..3], &[1, 0, payload_len as u8]);
        assert_eq!(&suffix[3..14], &[2, 9, b'c', b'o', b'n', b't', b'a', b'i', b'n', b'e', b'r']);
        let decoded = decode(&full).unwrap();
        assert_eq!(decoded.series, with_res);
        assert_eq!(decoded.base, base_of(ts));
    }

    #[test]
    fn bases_and_offsets() {
        assert_eq!(base_of(PERIOD - 1), 0);
        assert_eq!(base_of(PERIOD), PERIOD);
        assert_eq!(offset_of(PERIOD + 5), 5);
        assert_eq!(base_of(-1), -PERIOD);
        assert_eq!(offset_of(-1), u32::MAX);
        assert_eq!(timestamp_of(-PERIOD, &u32::MAX.to_be_bytes()), Some(-1));
        assert_eq!(base_of(i64::MIN), i64::MIN);
        assert_eq!(timestamp_of(0, &[1, 2, 3]), None);
    }

    #[test]
    fn successor_of_prefixes() {
        assert_eq!(prefix_successor(&[1, 2, 3]), Some(vec![1, 2, 4]));
        assert_eq!(prefix_successor(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
        assert_eq!(prefix_successor(&[]), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(&[]).is_err());
        assert!(decode(&hex("06 06 7379")).is_err());
        assert!(decode(&hex("01 01 61 00 00 00 00 00 00 00 00 00 07")).is_err());
        assert!(matches!(
            decode(&hex("01 02 61 00 0000000000000000")),
            Err(DecodeError::Encoding(heroic_tiny_serializer::DecodeError::LengthMismatch(_)))
        ));
    }
}
