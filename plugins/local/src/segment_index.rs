//! The index of a segment: one entry per block (see `segment.rs`), in two
//! formats, told apart by the segment's end magic.
//!
//! - Version 1 (`HRLSEGE1`): 60 bytes an entry, little-endian: series u64,
//!   seq u64, min_ts i64, max_ts i64, count u32, offset u64, len u32,
//!   crc32(payload) u32, reserved u64.
//! - Version 2 (`HRLSEGE2`), written since: the same fields column by
//!   column, each value a varint of its difference from the entry before
//!   (zigzag for signed; `max_ts` from its own `min_ts`, `offset` from the
//!   end of the block before), the checksums as u32; then zstd. About 6
//!   bytes an entry instead of 60: with short series (100,000 series of 86
//!   points) the index was a quarter of the disk used.

use crate::encoding::{put_u32, put_varint, Reader};

/// Where one block of a segment is, and what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockMeta {
    pub(crate) series: u64,
    /// Sequence of the newest head this block's points came from; a delete
    /// tombstone hides blocks with a smaller sequence.
    pub(crate) seq: u64,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
    pub(crate) count: u32,
    pub(crate) offset: u64,
    pub(crate) len: u32,
    pub(crate) crc: u32,
}

/// Bytes of a version 1 entry.
pub(crate) const ENTRY_V1: usize = 60;

/// Largest version 2 entry before compression (seven 10-byte varints and a
/// checksum): bounds what a damaged index may make us allocate.
const MAX_ENTRY_V2: usize = 7 * 10 + 4;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Encodes entries in version 1 (kept to test that old segments open).
#[cfg(test)]
pub(crate) fn encode_v1(metas: &[BlockMeta]) -> Vec<u8> {
    use crate::encoding::{put_i64, put_u64};
    let mut idx = Vec::with_capacity(metas.len() * ENTRY_V1);
    for m in metas {
        put_u64(&mut idx, m.series);
        put_u64(&mut idx, m.seq);
        put_i64(&mut idx, m.min_ts);
        put_i64(&mut idx, m.max_ts);
        put_u32(&mut idx, m.count);
        put_u64(&mut idx, m.offset);
        put_u32(&mut idx, m.len);
        put_u32(&mut idx, m.crc);
        put_u64(&mut idx, 0);
    }
    idx
}

pub(crate) fn decode_v1(idx: &[u8], entries: usize) -> Option<Vec<BlockMeta>> {
    let mut r = Reader::new(idx);
    let mut metas = Vec::with_capacity(entries.min(idx.len() / ENTRY_V1));
    for _ in 0..entries {
        metas.push(BlockMeta {
            series: r.u64()?,
            seq: r.u64()?,
            min_ts: r.i64()?,
            max_ts: r.i64()?,
            count: r.u32()?,
            offset: r.u64()?,
            len: r.u32()?,
            crc: r.u32()?,
        });
        r.u64()?;
    }
    r.is_empty().then_some(metas)
}

pub(crate) fn encode_v2(metas: &[BlockMeta]) -> std::io::Result<Vec<u8>> {
    let mut plain = Vec::with_capacity(metas.len() * 12);
    let column = |plain: &mut Vec<u8>, f: &dyn Fn(Option<&BlockMeta>, &BlockMeta) -> u64| {
        let mut prev = None;
        for m in metas {
            put_varint(plain, f(prev, m));
            prev = Some(m);
        }
    };
    let d = |a: u64, b: u64| zigzag(a.wrapping_sub(b) as i64);
    column(&mut plain, &|p, m| d(m.series, p.map_or(0, |p| p.series)));
    column(&mut plain, &|p, m| d(m.seq, p.map_or(0, |p| p.seq)));
    column(&mut plain, &|p, m| d(m.min_ts as u64, p.map_or(0, |p| p.min_ts as u64)));
    column(&mut plain, &|_, m| d(m.max_ts as u64, m.min_ts as u64));
    column(&mut plain, &|_, m| u64::from(m.count));
    column(&mut plain, &|p, m| d(m.offset, p.map_or(0, |p| p.offset + u64::from(p.len))));
    column(&mut plain, &|_, m| u64::from(m.len));
    for m in metas {
        put_u32(&mut plain, m.crc);
    }
    zstd::bulk::compress(&plain, 3)
}

pub(crate) fn decode_v2(idx: &[u8], entries: usize) -> Option<Vec<BlockMeta>> {
    // The frame records its plain size: allocate that, never more than
    // the entries can take (a damaged footer must not reserve gigabytes).
    let most = entries.checked_mul(MAX_ENTRY_V2)?;
    let size = zstd::zstd_safe::get_frame_content_size(idx).ok().flatten()?;
    let plain = zstd::bulk::decompress(idx, usize::try_from(size).ok()?.min(most)).ok()?;
    let mut r = Reader::new(&plain);
    let mut columns: [Vec<u64>; 7] = Default::default();
    for c in &mut columns {
        c.reserve(entries);
        for _ in 0..entries {
            c.push(r.varint()?);
        }
    }
    let mut metas: Vec<BlockMeta> = Vec::with_capacity(entries);
    // Entry `i` takes the `i`-th value of every column: an index reads
    // them side by side more plainly than seven zipped iterators.
    #[allow(clippy::needless_range_loop)]
    for i in 0..entries {
        let p = metas.last();
        let add = |base: u64, delta: u64| base.wrapping_add(unzigzag(delta) as u64);
        let min_ts = add(p.map_or(0, |p| p.min_ts as u64), columns[2][i]) as i64;
        let len = u32::try_from(columns[6][i]).ok()?;
        metas.push(BlockMeta {
            series: add(p.map_or(0, |p| p.series), columns[0][i]),
            seq: add(p.map_or(0, |p| p.seq), columns[1][i]),
            min_ts,
            max_ts: add(min_ts as u64, columns[3][i]) as i64,
            count: u32::try_from(columns[4][i]).ok()?,
            offset: add(p.map_or(0, |p| p.offset.wrapping_add(u64::from(p.len))), columns[5][i]),
            len,
            crc: 0,
        });
    }
    for m in &mut metas {
        m.crc = r.u32()?;
    }
    r.is_empty().then_some(metas)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<BlockMeta> {
        let mut offset = 8;
        (0..500u64)
            .map(|i| {
                let len = 100 + (i as u32 * 7) % 50;
                let m = BlockMeta {
                    series: if i % 3 == 0 { i / 3 } else { 1000 - i },
                    seq: 4 + i % 2,
                    min_ts: 1_700_000_000_000 + (i as i64 % 10) * 864_000 - 5_000_000 * (i as i64 % 4),
                    max_ts: 1_700_000_860_000 + i as i64,
                    count: 86 + i as u32 % 5,
                    offset,
                    len,
                    crc: (i as u32).wrapping_mul(2_654_435_761),
                };
                offset += u64::from(len) + (i % 7 == 0) as u64;
                m
            })
            .collect()
    }

    #[test]
    fn both_versions_round_trip_and_v2_is_small() {
        let metas = sample();
        assert_eq!(decode_v1(&encode_v1(&metas), metas.len()), Some(metas.clone()));
        let v2 = encode_v2(&metas).unwrap();
        assert_eq!(decode_v2(&v2, metas.len()), Some(metas.clone()));
        assert!(v2.len() * 4 < metas.len() * ENTRY_V1, "{} bytes for {} entries", v2.len(), metas.len());
        let extremes = vec![BlockMeta {
            series: u64::MAX,
            seq: u64::MAX,
            min_ts: i64::MIN,
            max_ts: i64::MAX,
            count: u32::MAX,
            offset: u64::MAX - 1,
            len: u32::MAX,
            crc: u32::MAX,
        }];
        assert_eq!(decode_v2(&encode_v2(&extremes).unwrap(), 1), Some(extremes));
    }

    #[test]
    fn a_damaged_or_short_index_is_refused() {
        let metas = sample();
        let v2 = encode_v2(&metas).unwrap();
        assert_eq!(decode_v2(&v2, metas.len() + 1), None);
        assert_eq!(decode_v2(&v2[..v2.len() / 2], metas.len()), None);
        assert_eq!(decode_v2(&v2, usize::MAX), None);
        assert_eq!(decode_v1(&encode_v1(&metas)[..100], metas.len()), None);
    }
}
