//! Heroic's series id: Guava's `murmur3_128` (x64 variant, seed 0) over the
//! UTF-8 bytes of the key, then each tag key and value, then each resource
//! key and value, with no separators, printed as 32 hex characters in
//! Guava's byte order (h1 then h2, each little-endian).
//!
//! Byte-compatible ids mean documents written by Heroic and by us coincide.

use heroic_plugin_api::types::{Series, Tag};

const C1: u64 = 0x87c3_7b91_1142_53d5;
const C2: u64 = 0x4cf5_ad43_2745_937f;

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// MurmurHash3 x64 128 of `data` with `seed`, as `(h1, h2)`.
pub fn murmur3_x64_128(data: &[u8], seed: u64) -> (u64, u64) {
    let (mut h1, mut h2) = (seed, seed);
    let mut chunks = data.chunks_exact(16);
    for block in &mut chunks {
        let k1 = u64::from_le_bytes(block[..8].try_into().expect("8 bytes"));
        let k2 = u64::from_le_bytes(block[8..].try_into().expect("8 bytes"));
        h1 ^= k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 = h1.rotate_left(27).wrapping_add(h2).wrapping_mul(5).wrapping_add(0x52dc_e729);
        h2 ^= k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 = h2.rotate_left(31).wrapping_add(h1).wrapping_mul(5).wrapping_add(0x3849_5ab5);
    }
    let tail = chunks.remainder();
    let (mut k1, mut k2) = (0u64, 0u64);
    for (i, &b) in tail.iter().enumerate() {
        if i < 8 {
            k1 |= (b as u64) << (8 * i);
        } else {
            k2 |= (b as u64) << (8 * (i - 8));
        }
    }
    if tail.len() > 8 {
        h2 ^= k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
    }
    if !tail.is_empty() {
        h1 ^= k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    }
    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (h1, h2)
}

/// Guava's `HashCode.toString()` of a 128-bit murmur3 hash.
pub fn to_hex(h: (u64, u64)) -> String {
    let mut out = String::with_capacity(32);
    for b in h.0.to_le_bytes().iter().chain(h.1.to_le_bytes().iter()) {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Tags in Java `TreeMap<String>` order: UTF-16 code units, which differs
/// from Rust's byte order for characters above U+FFFF versus U+E000–U+FFFF.
fn java_order(tags: &[Tag]) -> Vec<&Tag> {
    let mut sorted: Vec<&Tag> = tags.iter().collect();
    sorted.sort_by(|a, b| a.key.encode_utf16().cmp(b.key.encode_utf16()));
    sorted
}

/// `Series.hash()`: the document id and `series_id` of a series.
pub fn series_id(series: &Series) -> String {
    let mut bytes = Vec::with_capacity(64);
    bytes.extend_from_slice(series.key.as_bytes());
    for tags in [&series.tags, &series.resource] {
        for t in java_order(tags) {
            bytes.extend_from_slice(t.key.as_bytes());
            bytes.extend_from_slice(t.value.as_bytes());
        }
    }
    to_hex(murmur3_x64_128(&bytes, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guava(h1: u64, h2: u64) -> String {
        to_hex((h1, h2))
    }

    #[test]
    fn matches_guava_test_vectors() {
        // From Guava's Murmur3Hash128Test (seed 0 cases).
        assert_eq!(to_hex(murmur3_x64_128(b"hell", 0)), guava(0x6299_4269_3e10_f867, 0x92db_0b82_baeb_5347));
        assert_eq!(
            to_hex(murmur3_x64_128(b"The quick brown fox jumps over the lazy dog", 0)),
            "6c1b07bc7bbc4be347939ac4a93c437a"
        );
        assert_eq!(
            to_hex(murmur3_x64_128(b"The quick brown fox jumps over the lazy cog", 0)),
            guava(0x658c_a970_ff85_269a, 0x43fe_e3ea_a68e_5c3e)
        );
        assert_eq!(to_hex(murmur3_x64_128(b"", 0)), "00000000000000000000000000000000");
    }

    #[test]
    fn other_seeds_match_guava() {
        assert_eq!(to_hex(murmur3_x64_128(b"hello", 1)), guava(0xa78d_dff5_adae_8d10, 0x1289_00ef_2090_0135));
        assert_eq!(to_hex(murmur3_x64_128(b"hello w", 3)), guava(0x2ea5_9f46_6f6b_ed8c, 0xc610_990a_cc42_8a17));
    }

    #[test]
    fn series_hash_is_over_concatenated_fields() {
        let s = Series::new("system", [("host", "db1"), ("role", "db")], [("pod", "p-1")]);
        let expected = to_hex(murmur3_x64_128(b"systemhostdb1roledbpodp-1", 0));
        assert_eq!(series_id(&s), expected);
        // Resource changes the id; separators are not hashed.
        let bare = Series::new("system", [("host", "db1"), ("role", "db")], Vec::<(&str, &str)>::new());
        assert_ne!(series_id(&bare), expected);
        assert_eq!(series_id(&Series::key_only("ab")), to_hex(murmur3_x64_128(b"ab", 0)));
    }

    #[test]
    fn tags_hash_in_java_string_order() {
        // U+1F680 sorts after U+FF5E in Rust (UTF-8 bytes) but before it in
        // Java (its UTF-16 surrogate 0xD83D is below 0xFF5E).
        let s = Series::new("k", [("\u{1F680}", "a"), ("\u{FF5E}", "b")], Vec::<(&str, &str)>::new());
        assert_eq!(s.tags[0].key.as_str(), "\u{FF5E}", "the series keeps Rust order");
        let expected = to_hex(murmur3_x64_128("k\u{1F680}a\u{FF5E}b".as_bytes(), 0));
        assert_eq!(series_id(&s), expected);
    }
}
