//! Expected bytes are worked out by hand from the Java sources of
//! tiny-serializer 1.4.5 (`CompactVarIntSerializer`, `CompactVarLongSerializer`,
//! `StringSerializer`, `DefaultSortedMapSerializer`) and Heroic's
//! `CustomStringSerializer`, and from the reference's worked example.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn varint(v: u32) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, v);
    out
}

fn varlong(v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    put_varlong(&mut out, v);
    out
}

#[test]
fn compact_varint_matches_the_reference() {
    for (v, bytes) in [
        (0, "00"),
        (127, "7f"),
        (128, "80 00"),
        (200, "c8 00"),
        (16511, "ff 7f"),
        (16512, "80 80 00"),
        (u32::MAX, "ff fe fe fe 0e"),
    ] {
        assert_eq!(varint(v), hex(bytes), "encoding {v}");
        let encoded = hex(bytes);
        let mut input = encoded.as_slice();
        assert_eq!(get_varint(&mut input, "test").unwrap(), v, "decoding {bytes}");
        assert!(input.is_empty());
    }
    for v in (0..100_000).chain([u32::MAX - 1, 1 << 31, 2_113_663, 2_113_664]) {
        let encoded = varint(v);
        assert_eq!(get_varint(&mut encoded.as_slice(), "test").unwrap(), v);
    }
}

#[test]
fn compact_varlong_of_negative_longs_is_ten_bytes() {
    // Java: `v >>> 7` shifts in zeros, so a negative long walks all 64 bits.
    for (v, bytes) in [
        (-1i64, "ff fe fe fe fe fe fe fe fe 00"),
        (i64::MIN, "80 ff fe fe fe fe fe fe 7e"),
        (i64::MAX, "ff fe fe fe fe fe fe fe 7e"),
        (-2_147_483_647, "81 ff fe fe f6 fe fe fe fe 00"),
        // The Cassandra base of 1,300,000,000,000 (605 rows of 2^31 - 1 ms).
        (1_299_227_606_435, "a3 fa fe fe e6 24"),
    ] {
        assert_eq!(varlong(v as u64), hex(bytes), "encoding {v}");
        let encoded = hex(bytes);
        let mut input = encoded.as_slice();
        assert_eq!(get_varlong(&mut input, "test").unwrap() as i64, v, "decoding {bytes}");
        assert!(input.is_empty());
    }
    for v in [0u64, 1, 127, 128, u64::MAX, u64::MAX - 1, 1 << 63, (1 << 56) - 1, 1 << 56] {
        assert_eq!(get_varlong(&mut varlong(v).as_slice(), "test").unwrap(), v, "round trip {v}");
    }
    assert_eq!(varint(300), varlong(300), "an int and a long share the algorithm");
}

#[test]
fn varints_out_of_range_are_errors() {
    // u32::MAX + 1 as a long does not fit an int.
    let too_big = varlong(u64::from(u32::MAX) + 1);
    assert_eq!(get_varint(&mut too_big.as_slice(), "n"), Err(DecodeError::VarintOverflow("n")));
    // Eleven continuation bytes.
    let endless = [0xffu8; 11];
    assert_eq!(get_varlong(&mut endless.as_slice(), "n"), Err(DecodeError::VarintOverflow("n")));
    // Ten bytes whose value passes 2^64.
    let over = hex("ff ff ff ff ff ff ff ff ff 7f");
    assert_eq!(get_varlong(&mut over.as_slice(), "n"), Err(DecodeError::VarintOverflow("n")));
    assert_eq!(get_varint(&mut [0x80u8].as_slice(), "n"), Err(DecodeError::Truncated("n")));
}

#[test]
fn plain_strings_carry_only_the_byte_length() {
    let mut out = Vec::new();
    put_string(&mut out, "Zürich");
    assert_eq!(out, hex("07 5a c3 bc 72 69 63 68"));
    assert_eq!(get_string(&mut out.as_slice(), "s").unwrap(), "Zürich");
    let long = "x".repeat(200);
    let mut out = Vec::new();
    put_string(&mut out, &long);
    assert_eq!(&out[..2], &[0xc8, 0x00]);
    assert_eq!(out.len(), 202);
}

#[test]
fn utf16_strings_count_code_units() {
    let mut out = Vec::new();
    put_string_utf16(&mut out, "Zürich");
    assert_eq!(&out[..2], &[0x07, 0x06]);
    let mut out = Vec::new();
    put_string_utf16(&mut out, "🚀");
    assert_eq!(out, hex("04 02 f0 9f 9a 80"));
    assert_eq!(get_string_utf16(&mut out.as_slice(), "s").unwrap(), "🚀");
    let lying = hex("01 02 61");
    assert!(matches!(get_string_utf16(&mut lying.as_slice(), "s"), Err(DecodeError::LengthMismatch(_))));
    let invalid = hex("02 c3 28");
    assert_eq!(get_string(&mut invalid.as_slice(), "s"), Err(DecodeError::InvalidUtf8("s")));
}

#[test]
fn maps_follow_java_treemap_order() {
    // U+FF5E (one UTF-16 unit ff5e) sorts after U+1F600 (surrogates d83d
    // de00) in Java, before it in Rust's code point order.
    assert_eq!(java_cmp("\u{ff5e}", "\u{1f600}"), Ordering::Greater);
    assert_eq!("\u{ff5e}".cmp("\u{1f600}"), Ordering::Less);
    let mut out = Vec::new();
    put_sorted_map(&mut out, [("\u{ff5e}", "a"), ("\u{1f600}", "b")], StringCodec::Plain);
    let mut expected = vec![2u8, 4];
    expected.extend_from_slice("\u{1f600}".as_bytes());
    expected.extend_from_slice(&[1, b'b', 3]);
    expected.extend_from_slice("\u{ff5e}".as_bytes());
    expected.extend_from_slice(&[1, b'a']);
    assert_eq!(out, expected);
    let decoded = get_sorted_map(&mut out.as_slice(), StringCodec::Plain, "tags").unwrap();
    assert_eq!(decoded, vec![("\u{1f600}".to_string(), "b".to_string()), ("\u{ff5e}".to_string(), "a".to_string())]);

    let mut empty = Vec::new();
    put_sorted_map(&mut empty, [], StringCodec::Utf16Length);
    assert_eq!(empty, [0]);
}

/// The reference's worked example of a Bigtable row key, rebuilt from the
/// primitives: key and tags with UTF-16 lengths, base as 8 bytes.
#[test]
fn reference_worked_example_from_primitives() {
    let expected = hex("06 06 73797374656d | 02 | 04 04 686f7374 03 03 646231 | \
         07 06 72c3a967696f6e 07 06 5ac3bc72696368 | 00 00 01 2e 00 00 00 00");
    let mut out = Vec::new();
    put_string_utf16(&mut out, "system");
    put_sorted_map(&mut out, [("région", "Zürich"), ("host", "db1")], StringCodec::Utf16Length);
    let ts: i64 = 1_300_000_000_000;
    out.extend_from_slice(&(ts - ts.rem_euclid(1 << 32)).to_be_bytes());
    assert_eq!(out, expected);

    let mut input = expected.as_slice();
    assert_eq!(get_string_utf16(&mut input, "key").unwrap(), "system");
    let tags = get_sorted_map(&mut input, StringCodec::Utf16Length, "tags").unwrap();
    assert_eq!(tags[1], ("région".to_string(), "Zürich".to_string()));
    assert_eq!(take(&mut input, 8, "base").unwrap(), &hex("00 00 01 2e 00 00 00 00")[..]);
    assert!(input.is_empty());
    assert_eq!(take(&mut input, 1, "more"), Err(DecodeError::Truncated("more")));
}

#[test]
fn hostile_counts_do_not_allocate_or_panic() {
    let mut input = varint(u32::MAX);
    input.extend_from_slice(&[1, b'a']);
    assert_eq!(get_sorted_map(&mut input.as_slice(), StringCodec::Plain, "tags"), Err(DecodeError::Truncated("tags")));
    let huge_string = hex("ff fe fe fe 0e 61");
    assert_eq!(get_string(&mut huge_string.as_slice(), "s"), Err(DecodeError::Truncated("s")));
}
