//! The tiny-serializer 1.4.5 encodings that Heroic's row keys are built
//! from, as pure functions over byte slices. Both the Bigtable and the
//! Cassandra row keys are sequences of these pieces; what differs between
//! them (field order, which string encoding, how the base is written) is the
//! business of each plugin.
//!
//! Module map (one file, three parts):
//! - compact varints: [`put_varint`]/[`get_varint`] (Java `int`, used for
//!   every size and count) and [`put_varlong`]/[`get_varlong`] (Java
//!   `long`, tiny-serializer's `variableLong()`);
//! - strings: [`put_string`]/[`get_string`] (tiny-serializer's own: byte
//!   length, bytes) and [`put_string_utf16`]/[`get_string_utf16`] (Heroic's
//!   `CustomStringSerializer`: byte length, UTF-16 length, bytes);
//! - sorted maps: [`put_sorted_map`]/[`get_sorted_map`] in Java `TreeMap`
//!   order ([`java_cmp`]), plus [`take`] for fixed-size fields.
//!
//! Decoders take `&mut &[u8]` and advance it past what they read, so a key
//! is decoded by calling them in the order its fields were written.

use std::cmp::Ordering;

/// Why bytes could not be decoded. The `&'static str` names the field being
/// read, for messages such as "row key ends early while reading the tags".
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("row key ends early while reading {0}")]
    Truncated(&'static str),
    #[error("row key holds invalid utf-8 in {0}")]
    InvalidUtf8(&'static str),
    #[error("row key varint for {0} is out of range")]
    VarintOverflow(&'static str),
    #[error("row key string length mismatch: {0}")]
    LengthMismatch(String),
}

// --- compact varints ---------------------------------------------------------

/// tiny-serializer's compact varint of a Java `long` (`CompactVarLongSerializer`):
/// little-endian 7-bit groups, high bit for "more", and each continuation
/// step subtracts one, so every value has exactly one encoding (128 is
/// `80 00`, where LEB128 would give `80 01`). A negative `long` is encoded
/// as its two's complement, i.e. pass `value as u64` (ten bytes).
pub fn put_varlong(out: &mut Vec<u8>, value: u64) {
    let mut v = value;
    loop {
        let t = v >> 7;
        if t == 0 {
            break;
        }
        out.push((v & 0x7f) as u8 | 0x80);
        v = t - 1;
    }
    out.push(v as u8);
}

/// tiny-serializer's compact varint of a Java `int` (`CompactVarIntSerializer`),
/// the encoding of every size and count with `useCompactSize(true)`. The
/// algorithm is the same as for a `long`; only the range differs.
pub fn put_varint(out: &mut Vec<u8>, value: u32) {
    put_varlong(out, u64::from(value));
}

/// Decodes a compact varint of at most `max`.
fn get_compact(input: &mut &[u8], what: &'static str, max: u64) -> Result<u64, DecodeError> {
    // u128 so that the "add one per continuation" step cannot overflow
    // before the range check.
    let mut value: u128 = 0;
    let mut shift = 0u32;
    loop {
        let (&byte, rest) = input.split_first().ok_or(DecodeError::Truncated(what))?;
        *input = rest;
        value += u128::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        // Ten bytes at most (shifts 0..=63) hold any 64-bit value.
        if shift > 63 {
            return Err(DecodeError::VarintOverflow(what));
        }
        // Undo the encoder's "subtract one" of this continuation.
        value += 1u128 << shift;
    }
    u64::try_from(value).ok().filter(|v| *v <= max).ok_or(DecodeError::VarintOverflow(what))
}

/// Reads a compact varint written by [`put_varlong`].
pub fn get_varlong(input: &mut &[u8], what: &'static str) -> Result<u64, DecodeError> {
    get_compact(input, what, u64::MAX)
}

/// Reads a compact varint written by [`put_varint`]; larger values are an error.
pub fn get_varint(input: &mut &[u8], what: &'static str) -> Result<u32, DecodeError> {
    get_compact(input, what, u64::from(u32::MAX)).map(|v| v as u32)
}

fn len_u32(n: usize) -> u32 {
    // Keys are refused long before 4 GiB; saturating keeps this total.
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Takes exactly `n` bytes.
pub fn take<'a>(input: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
    if input.len() < n {
        return Err(DecodeError::Truncated(what));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

// --- strings -----------------------------------------------------------------

/// Java's `String.length()`: the length in UTF-16 code units.
pub fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// tiny-serializer's `StringSerializer`: UTF-8 byte length, then the bytes.
pub fn put_string(out: &mut Vec<u8>, s: &str) {
    put_varint(out, len_u32(s.len()));
    out.extend_from_slice(s.as_bytes());
}

/// Reads a string written by [`put_string`].
pub fn get_string(input: &mut &[u8], what: &'static str) -> Result<String, DecodeError> {
    let bytes = get_varint(input, what)? as usize;
    let raw = take(input, bytes, what)?;
    std::str::from_utf8(raw).map(str::to_string).map_err(|_| DecodeError::InvalidUtf8(what))
}

/// Heroic's `CustomStringSerializer` (Bigtable row keys): UTF-8 byte length,
/// length in UTF-16 code units, then the bytes.
pub fn put_string_utf16(out: &mut Vec<u8>, s: &str) {
    put_varint(out, len_u32(s.len()));
    put_varint(out, len_u32(utf16_len(s)));
    out.extend_from_slice(s.as_bytes());
}

/// Reads a string written by [`put_string_utf16`], checking the UTF-16 length.
pub fn get_string_utf16(input: &mut &[u8], what: &'static str) -> Result<String, DecodeError> {
    let bytes = get_varint(input, what)? as usize;
    let chars = get_varint(input, what)? as usize;
    let raw = take(input, bytes, what)?;
    let s = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8(what))?;
    let utf16 = utf16_len(s);
    if utf16 != chars {
        return Err(DecodeError::LengthMismatch(format!("{what}: {chars} utf-16 units stored, {utf16} found")));
    }
    Ok(s.to_string())
}

// --- sorted maps -------------------------------------------------------------

/// Java's `String.compareTo`: UTF-16 code unit order. It differs from Rust's
/// `str` order (code points) between U+E000..U+FFFF and U+10000 and above.
pub fn java_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Which string encoding a map's keys and values use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringCodec {
    /// [`put_string`]: tiny-serializer's own (Cassandra keys, the Bigtable
    /// resource payload).
    Plain,
    /// [`put_string_utf16`]: Heroic's `CustomStringSerializer` (Bigtable tags).
    Utf16Length,
}

impl StringCodec {
    fn put(self, out: &mut Vec<u8>, s: &str) {
        match self {
            StringCodec::Plain => put_string(out, s),
            StringCodec::Utf16Length => put_string_utf16(out, s),
        }
    }

    fn get(self, input: &mut &[u8], what: &'static str) -> Result<String, DecodeError> {
        match self {
            StringCodec::Plain => get_string(input, what),
            StringCodec::Utf16Length => get_string_utf16(input, what),
        }
    }
}

/// A `SortedMap<String, String>` as tiny-serializer writes a Java `TreeMap`:
/// the entry count, then key and value of each entry in [`java_cmp`] order.
/// Keys must be unique (a `TreeMap` cannot hold a key twice).
pub fn put_sorted_map<'a>(
    out: &mut Vec<u8>,
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    codec: StringCodec,
) {
    let mut sorted: Vec<(&str, &str)> = entries.into_iter().collect();
    sorted.sort_by(|a, b| java_cmp(a.0, b.0));
    put_varint(out, len_u32(sorted.len()));
    for (key, value) in sorted {
        codec.put(out, key);
        codec.put(out, value);
    }
}

/// Reads a map written by [`put_sorted_map`], entries in stored order.
pub fn get_sorted_map(
    input: &mut &[u8],
    codec: StringCodec,
    what: &'static str,
) -> Result<Vec<(String, String)>, DecodeError> {
    let count = get_varint(input, what)?;
    // Every entry takes at least two bytes: a hostile count cannot make us
    // reserve more than the input could hold.
    let mut entries = Vec::with_capacity((count as usize).min(input.len() / 2));
    for _ in 0..count {
        let key = codec.get(input, what)?;
        let value = codec.get(input, what)?;
        entries.push((key, value));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests;
