//! Immutable segment files: compressed blocks of many series plus an index.
//!
//! A flush of the head (or a compaction) writes one segment,
//! `seg-<min_seq>-<max_seq>.dat`, where the sequence numbers are those of
//! the write-ahead logs (heads) whose data it holds. Layout:
//!
//! ```text
//! magic "HRLSEG01"
//! block payloads (see codec.rs), back to back
//! index: one entry per block (series, seq, min_ts, max_ts, count,
//!     offset, len, crc32(payload)), compressed (see segment_index.rs)
//! footer: index_offset u64, entries u32, crc32(index) u32, magic "HRLSEGE2"
//! ```
//!
//! Segments written before the index was compressed end with "HRLSEGE1"
//! and a plain index of 60-byte entries; they open as before.
//!
//! The file is written under a `.tmp` name, fsynced, renamed and the
//! directory fsynced, so a segment with its final name is always complete.
//! The index is loaded at open; blocks are read with positioned reads, so a
//! fetch touches only the blocks that overlap its range.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::block_cache::next_segment_id;
use crate::codec::encode_block;
use crate::encoding::{put_u32, put_u64, Reader};
use crate::error::{corrupt, IoContext, Result};
use crate::log::sync_dir;
use crate::segment_index;
pub(crate) use crate::segment_index::BlockMeta;

const MAGIC: &[u8; 8] = b"HRLSEG01";
/// End magic of a segment with a plain (version 1) index.
const END_MAGIC_V1: &[u8; 8] = b"HRLSEGE1";
/// End magic of a segment with a compressed (version 2) index.
const END_MAGIC: &[u8; 8] = b"HRLSEGE2";
const FOOTER: usize = 24;
/// The smallest block payload (its header): bounds the entries an index
/// may claim.
const MIN_BLOCK: u64 = 10;

pub(crate) struct Segment {
    /// Unique in this process (see `block_cache`): the cache's key.
    pub(crate) id: u64,
    pub(crate) min_seq: u64,
    pub(crate) max_seq: u64,
    pub(crate) path: PathBuf,
    pub(crate) size: u64,
    file: File,
}

pub(crate) fn segment_name(min_seq: u64, max_seq: u64) -> String {
    format!("seg-{min_seq:020}-{max_seq:020}.dat")
}

/// Parses `seg-<min>-<max>.dat`.
pub(crate) fn parse_segment_name(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("seg-")?.strip_suffix(".dat")?;
    let (a, b) = rest.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Removes an unfinished segment file when its writer is dropped (a failed
/// or empty flush): on a full disk it holds the very space needed.
struct Unfinished(Option<PathBuf>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not remove an unfinished segment file");
            }
        }
    }
}

pub(crate) struct SegmentWriter {
    unfinished: Unfinished,
    tmp: PathBuf,
    path: PathBuf,
    min_seq: u64,
    max_seq: u64,
    out: BufWriter<File>,
    pos: u64,
    index: Vec<BlockMeta>,
    buf: Vec<u8>,
}

impl SegmentWriter {
    pub(crate) fn create(dir: &Path, min_seq: u64, max_seq: u64) -> Result<Self> {
        let path = dir.join(segment_name(min_seq, max_seq));
        let tmp = path.with_extension("dat.tmp");
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&tmp).ctx(&tmp)?;
        let unfinished = Unfinished(Some(tmp.clone()));
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(MAGIC).ctx(&tmp)?;
        Ok(SegmentWriter { unfinished, tmp, path, min_seq, max_seq, out, pos: 8, index: Vec::new(), buf: Vec::new() })
    }

    /// Adds the sorted, unique points of one series, cut into blocks of at
    /// most `block_points`.
    pub(crate) fn add_series(
        &mut self,
        series: u64,
        seq: u64,
        ts: &[i64],
        vals: &[f64],
        block_points: usize,
    ) -> Result<()> {
        for (t, v) in ts.chunks(block_points.max(1)).zip(vals.chunks(block_points.max(1))) {
            self.buf.clear();
            encode_block(t, v, &mut self.buf)?;
            self.out.write_all(&self.buf).ctx(&self.tmp)?;
            self.index.push(BlockMeta {
                series,
                seq,
                min_ts: t[0],
                max_ts: t[t.len() - 1],
                count: t.len() as u32,
                offset: self.pos,
                len: self.buf.len() as u32,
                crc: crc32fast::hash(&self.buf),
            });
            self.pos += self.buf.len() as u64;
        }
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Writes the index, makes the file durable and gives it its final name.
    pub(crate) fn finish(mut self) -> Result<(Segment, Vec<BlockMeta>)> {
        let idx = segment_index::encode_v2(&self.index).ctx(&self.tmp)?;
        let mut footer = Vec::with_capacity(FOOTER);
        put_u64(&mut footer, self.pos);
        put_u32(&mut footer, self.index.len() as u32);
        put_u32(&mut footer, crc32fast::hash(&idx));
        footer.extend_from_slice(END_MAGIC);
        self.out.write_all(&idx).ctx(&self.tmp)?;
        self.out.write_all(&footer).ctx(&self.tmp)?;
        let file = self.out.into_inner().map_err(|e| e.into_error()).ctx(&self.tmp)?;
        file.sync_all().ctx(&self.tmp)?;
        fs::rename(&self.tmp, &self.path).ctx(&self.path)?;
        self.unfinished.0 = None;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        let size = self.pos + (idx.len() + FOOTER) as u64;
        let segment = Segment {
            id: next_segment_id(),
            min_seq: self.min_seq,
            max_seq: self.max_seq,
            path: self.path,
            size,
            file,
        };
        Ok((segment, self.index))
    }
}

impl Segment {
    /// Opens a complete segment and reads its index.
    pub(crate) fn open(path: &Path) -> Result<(Segment, Vec<BlockMeta>)> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let (min_seq, max_seq) = parse_segment_name(name).ok_or_else(|| corrupt(path, "not a segment file name"))?;
        let mut file = File::open(path).ctx(path)?;
        let size = file.metadata().ctx(path)?.len();
        if size < (MAGIC.len() + FOOTER) as u64 {
            return Err(corrupt(path, "too short for a segment"));
        }
        let mut footer = [0u8; FOOTER];
        file.read_exact_at(&mut footer, size - FOOTER as u64).ctx(path)?;
        let v1 = match &footer[16..] {
            m if m == END_MAGIC => false,
            m if m == END_MAGIC_V1 => true,
            _ => return Err(corrupt(path, "missing end magic")),
        };
        let mut r = Reader::new(&footer);
        let (index_offset, entries, crc) = (r.u64().unwrap_or(0), r.u32().unwrap_or(0) as usize, r.u32().unwrap_or(0));
        let index_len = size.checked_sub(FOOTER as u64).and_then(|end| end.checked_sub(index_offset));
        let index_len = match index_len {
            Some(n) if !v1 || n == (entries * segment_index::ENTRY_V1) as u64 => n,
            _ => return Err(corrupt(path, "index size does not match the file size")),
        };
        if entries as u64 > index_offset / MIN_BLOCK {
            return Err(corrupt(path, "more index entries than blocks fit in the file"));
        }
        let mut idx = vec![0u8; index_len as usize];
        file.seek(SeekFrom::Start(index_offset)).ctx(path)?;
        file.read_exact(&mut idx).ctx(path)?;
        if crc32fast::hash(&idx) != crc {
            return Err(corrupt(path, "index checksum mismatch"));
        }
        let metas = match v1 {
            true => segment_index::decode_v1(&idx, entries),
            false => segment_index::decode_v2(&idx, entries),
        };
        let metas = metas.ok_or_else(|| corrupt(path, "short or undecodable index"))?;
        if metas.iter().any(|m| m.offset.checked_add(u64::from(m.len)).is_none_or(|end| end > index_offset)) {
            return Err(corrupt(path, "block past the index"));
        }
        Ok((Segment { id: next_segment_id(), min_seq, max_seq, path: path.to_path_buf(), size, file }, metas))
    }

    /// Reads one block's payload into `buf`, checking its checksum.
    pub(crate) fn read_block(&self, meta: &BlockMeta, buf: &mut Vec<u8>) -> Result<()> {
        buf.clear();
        buf.resize(meta.len as usize, 0);
        self.file.read_exact_at(buf, meta.offset).ctx(&self.path)?;
        if crc32fast::hash(buf) != meta.crc {
            return Err(corrupt(&self.path, format!("block checksum mismatch at offset {}", meta.offset)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode_block;

    #[test]
    fn write_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path(), 3, 5).unwrap();
        let ts: Vec<i64> = (0..1000).collect();
        let vals: Vec<f64> = (0..1000).map(|i| i as f64 * 0.5).collect();
        w.add_series(7, 5, &ts, &vals, 300).unwrap();
        let (seg, metas) = w.finish().unwrap();
        assert_eq!(metas.len(), 4);
        let (seg2, metas2) = Segment::open(&seg.path).unwrap();
        assert_eq!(metas, metas2);
        assert_eq!((seg2.min_seq, seg2.max_seq), (3, 5));
        let (mut t, mut v, mut s, mut buf) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for m in &metas2 {
            seg2.read_block(m, &mut buf).unwrap();
            decode_block(&buf, &mut t, &mut v, &mut s).unwrap();
        }
        assert_eq!((t, v), (ts, vals));
        assert_eq!(parse_segment_name(&segment_name(1, 22)), Some((1, 22)));
    }

    /// A segment written with the plain (version 1) index opens as before.
    #[test]
    fn a_segment_with_the_old_index_opens() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path(), 1, 1).unwrap();
        let ts: Vec<i64> = (0..1000).collect();
        let vals: Vec<f64> = (0..1000).map(|i| i as f64 * 0.25).collect();
        for series in 0..20 {
            w.add_series(series, 1, &ts, &vals, 100).unwrap();
        }
        let (seg, metas) = w.finish().unwrap();
        let path = seg.path.clone();
        drop(seg);
        let bytes = std::fs::read(&path).unwrap();
        let index_offset = u64::from_le_bytes(bytes[bytes.len() - FOOTER..][..8].try_into().unwrap()) as usize;
        let new_size = bytes.len();
        let idx = segment_index::encode_v1(&metas);
        let mut old = bytes[..index_offset].to_vec();
        old.extend_from_slice(&idx);
        put_u64(&mut old, index_offset as u64);
        put_u32(&mut old, metas.len() as u32);
        put_u32(&mut old, crc32fast::hash(&idx));
        old.extend_from_slice(END_MAGIC_V1);
        assert!(old.len() > new_size + metas.len() * 40, "{} bytes before, {new_size} now", old.len());
        std::fs::write(&path, &old).unwrap();
        let (_, metas_v1) = Segment::open(&path).unwrap();
        assert_eq!(metas_v1, metas);
    }
}
