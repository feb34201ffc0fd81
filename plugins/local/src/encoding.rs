//! Small binary encoding helpers shared by the log records and file indexes:
//! little-endian fixed-width integers, LEB128 lengths and the canonical
//! encoding of a [`Series`].

use std::cell::RefCell;

use heroic_plugin_api::types::{Series, Tag};

pub(crate) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}
pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_tags(out: &mut Vec<u8>, tags: &[Tag]) {
    put_varint(out, tags.len() as u64);
    for t in tags {
        put_str(out, &t.key);
        put_str(out, &t.value);
    }
}

/// Canonical bytes of a series: key, tags, resource (each sorted already).
pub(crate) fn put_series(out: &mut Vec<u8>, s: &Series) {
    put_str(out, &s.key);
    put_tags(out, &s.tags);
    put_tags(out, &s.resource);
}

/// The canonical bytes of `s`, kept: what the catalog and the metadata
/// index hold for each series.
pub(crate) fn series_bytes(s: &Series) -> Box<[u8]> {
    let mut bytes = Vec::with_capacity(128);
    put_series(&mut bytes, s);
    bytes.into_boxed_slice()
}

thread_local! {
    /// The buffer [`with_series_bytes`] encodes into on this thread.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(256));
}

/// Calls `f` with the canonical bytes of `s`. Stores find series by these
/// bytes on every read and write, so they are encoded into a buffer kept
/// per thread rather than into a new allocation each time.
pub(crate) fn with_series_bytes<R>(s: &Series, f: impl FnOnce(&[u8]) -> R) -> R {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            put_series(&mut buf, s);
            let out = f(&buf);
            if buf.capacity() > 1 << 16 {
                // One huge series must not pin its buffer for good.
                *buf = Vec::with_capacity(256);
            }
            out
        }
        // `f` itself encodes a series: this call gets its own buffer.
        Err(_) => {
            let mut buf = Vec::new();
            put_series(&mut buf, s);
            f(&buf)
        }
    })
}

/// The key of canonical series bytes and each of its tags, borrowed from
/// them (the resource tags are not read); `None` when they do not decode.
pub(crate) fn key_and_tags<'a>(bytes: &'a [u8], mut tag: impl FnMut(&'a str, &'a str)) -> Option<&'a str> {
    let mut r = Reader::new(bytes);
    let key = r.str()?;
    for _ in 0..r.varint()? {
        let k = r.str()?;
        tag(k, r.str()?);
    }
    Some(key)
}

/// A cursor over a byte slice; every read fails with `None` past the end, so
/// a short or garbled record is reported instead of panicking.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.bytes(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.bytes(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    pub(crate) fn i64(&mut self) -> Option<i64> {
        self.u64().map(|v| v as i64)
    }
    pub(crate) fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    pub(crate) fn str(&mut self) -> Option<&'a str> {
        let n = usize::try_from(self.varint()?).ok()?;
        std::str::from_utf8(self.bytes(n)?).ok()
    }
    fn tags(&mut self) -> Option<Vec<Tag>> {
        let n = self.varint()? as usize;
        let mut tags = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let k = self.str()?;
            let v = self.str()?;
            tags.push(Tag::new(k, v));
        }
        Some(tags)
    }
    pub(crate) fn series(&mut self) -> Option<Series> {
        let key = self.str()?;
        let tags = self.tags()?;
        let resource = self.tags()?;
        Some(Series { key: key.into(), tags: tags.into(), resource: resource.into() })
    }
    /// `n` little-endian 8-byte values appended to `out`.
    pub(crate) fn i64s(&mut self, n: usize, out: &mut Vec<i64>) -> Option<()> {
        let b = self.bytes(n.checked_mul(8)?)?;
        out.extend(b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))));
        Some(())
    }
    pub(crate) fn f64s(&mut self, n: usize, out: &mut Vec<f64>) -> Option<()> {
        let b = self.bytes(n.checked_mul(8)?)?;
        out.extend(b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))));
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_round_trip() {
        let s = Series::new("cpu", [("host", "db1"), ("région", "Zürich")], [("pod", "p")]);
        let mut buf = Vec::new();
        put_series(&mut buf, &s);
        put_varint(&mut buf, 300);
        let mut r = Reader::new(&buf);
        assert_eq!(r.series().unwrap(), s);
        assert_eq!(r.varint(), Some(300));
        assert!(r.is_empty());
        assert!(Reader::new(&buf[..3]).series().is_none());

        let mut tags = Vec::new();
        assert_eq!(key_and_tags(&buf, |k, v| tags.push((k, v))), Some("cpu"));
        assert_eq!(tags, [("host", "db1"), ("région", "Zürich")]);
        assert_eq!(key_and_tags(&buf[..6], |_, _| {}), None);
        assert_eq!(with_series_bytes(&s, |b| b.to_vec()), buf[..buf.len() - 2]);
        // Nested, each call gets bytes of its own.
        let t = Series::new("mem", [("host", "db2")], []);
        let (outer, inner) = with_series_bytes(&s, |a| (a.to_vec(), with_series_bytes(&t, |b| b.to_vec())));
        assert_eq!(Reader::new(&outer).series().unwrap(), s);
        assert_eq!(Reader::new(&inner).series().unwrap(), t);
    }
}
