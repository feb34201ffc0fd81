//! Record framing, and reading framed records back from damaged files.
//!
//! Every record is `len: u32 LE | crc32(payload): u32 LE | payload`, and no
//! record is empty (so a run of zero bytes, which a crash after the file
//! grew but before the data landed leaves, never reads as a record).
//!
//! Reading survives damage. A frame whose length runs past the end of the
//! data or whose checksum does not match is not a record; the reader then
//! looks for the next place where an intact frame starts, itself followed
//! by an intact frame or the end of the data (two checksums matching by
//! chance is not a real risk). Bytes skipped that way in the middle are
//! reported (offset, length) and the records after them kept: one flipped
//! bit costs one record, not the rest of the file. Bytes after the last
//! intact record are a torn tail (a crash in the middle of a write), unless
//! they are all zeros: free space the log wrote ahead of its records (see
//! `log.rs`), or a crash after the file grew but before the data landed;
//! either way nothing is lost.

pub(crate) const HEADER: usize = 8;

/// Frames `payload` onto `out`. Payloads are never empty (see the module
/// docs); every caller writes at least a record type byte.
pub(crate) fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    debug_assert!(!payload.is_empty(), "empty records are not framed");
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The payloads of a buffer of frames this process wrote itself (so known
/// to be whole): no checksum is computed again.
pub(crate) fn own_frames(mut buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let header = buf.get(..HEADER)?;
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let payload = buf.get(HEADER..HEADER + len)?;
        buf = &buf[HEADER + len..];
        Some(payload)
    })
}

/// What reading a log found besides its intact records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Damage {
    /// Byte ranges skipped between intact records, as `(offset, length)`.
    pub(crate) skipped: Vec<(usize, usize)>,
    /// Bytes after the last intact record, when they are not all zeros
    /// (a torn tail).
    pub(crate) tail: usize,
    /// Zero bytes after the last intact record, when that is all there is
    /// (free space; not damage).
    pub(crate) free: usize,
}

impl Damage {
    /// Whether anything but intact records was found.
    pub(crate) fn any(&self) -> bool {
        !self.skipped.is_empty() || self.tail > 0
    }

    /// Bytes skipped in the middle of the log.
    pub(crate) fn skipped_bytes(&self) -> usize {
        self.skipped.iter().map(|(_, n)| n).sum()
    }
}

/// The end of the intact, non-empty record framed at `pos`, if there is one.
fn frame_at(data: &[u8], pos: usize) -> Option<usize> {
    let header = data.get(pos..pos.checked_add(HEADER)?)?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    let start = pos + HEADER;
    let end = start.checked_add(len).filter(|&e| len > 0 && e <= data.len())?;
    (crc32fast::hash(&data[start..end]) == crc).then_some(end)
}

/// The next offset after `from` where an intact record starts that is
/// followed by another intact record, or by nothing but zeros to the end
/// (a zeroed tail after damage must not cost the last record).
fn resync(data: &[u8], from: usize) -> Option<usize> {
    let confirmed = |end: usize| frame_at(data, end).is_some() || data[end..].iter().all(|&b| b == 0);
    (from + 1..data.len().saturating_sub(HEADER - 1)).find(|&q| frame_at(data, q).is_some_and(confirmed))
}

/// Calls `each` with every intact record of `data` (and its offset);
/// returns the end of the last intact record and what was skipped.
pub(crate) fn scan(data: &[u8], mut each: impl FnMut(usize, &[u8])) -> (usize, Damage) {
    let (mut pos, mut good_end) = (0, 0);
    let mut damage = Damage::default();
    while pos < data.len() {
        match frame_at(data, pos) {
            Some(end) => {
                each(pos, &data[pos + HEADER..end]);
                pos = end;
                good_end = end;
            }
            None => match resync(data, pos) {
                Some(next) => {
                    damage.skipped.push((pos, next - pos));
                    pos = next;
                }
                None => break,
            },
        }
    }
    let rest = &data[good_end..];
    match rest.iter().all(|&b| b == 0) {
        true => damage.free = rest.len(),
        false => damage.tail = rest.len(),
    }
    (good_end, damage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupted_last_record_is_a_torn_tail() {
        let mut data = Vec::new();
        frame(&mut data, b"aaaa");
        frame(&mut data, b"bbbb");
        let last = data.len() - 1;
        data[last] ^= 1;
        let mut n = 0;
        let (good, damage) = scan(&data, |_, _| n += 1);
        assert_eq!((n, good), (1, 12));
        assert_eq!(damage, Damage { skipped: vec![], tail: 12, free: 0 });
    }

    #[test]
    fn zero_bytes_at_the_end_are_free_space_not_a_record() {
        let mut data = Vec::new();
        frame(&mut data, b"aaaa");
        data.extend_from_slice(&[0; 8]);
        let mut records = Vec::new();
        let (good, damage) = scan(&data, |_, r| records.push(r.to_vec()));
        assert_eq!(records, vec![b"aaaa".to_vec()]);
        assert_eq!((good, damage.tail, damage.free), (12, 0, 8));
        assert!(!damage.any());
        // Torn bytes before the zeros make the whole rest a torn tail.
        data[12] = 7;
        let (good, damage) = scan(&data, |_, _| ());
        assert_eq!((good, damage.tail, damage.free), (12, 8, 0));
    }

    /// A record's byte range in the log, and its payload.
    type Span = (usize, usize, Vec<u8>);

    /// Records of varied sizes, framed, with the byte range of each.
    fn sample() -> (Vec<u8>, Vec<Span>) {
        let mut data = Vec::new();
        let mut spans = Vec::new();
        for i in 0..12u8 {
            let payload: Vec<u8> =
                (0..(1 + (i as usize * 7) % 23)).map(|j| i.wrapping_mul(31).wrapping_add(j as u8)).collect();
            let start = data.len();
            frame(&mut data, &payload);
            spans.push((start, data.len(), payload));
        }
        (data, spans)
    }

    fn records_of(data: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        scan(data, |_, r| out.push(r.to_vec()));
        out
    }

    #[test]
    fn one_damaged_byte_anywhere_costs_only_its_own_record() {
        let (data, spans) = sample();
        for at in 0..data.len() {
            for damage in [0x01u8, 0xff] {
                let mut bad = data.clone();
                bad[at] ^= damage;
                let expected: Vec<Vec<u8>> =
                    spans.iter().filter(|(s, e, _)| !(*s..*e).contains(&at)).map(|(_, _, p)| p.clone()).collect();
                assert_eq!(records_of(&bad), expected, "byte {at} xor {damage:#x}");
            }
        }
    }

    #[test]
    fn a_zeroed_stretch_costs_only_the_records_it_touches() {
        let (data, spans) = sample();
        for from in (0..data.len()).step_by(3) {
            for len in [1, 8, 20] {
                let to = (from + len).min(data.len());
                let mut bad = data.clone();
                bad[from..to].fill(0);
                // A record survives if the zeros missed it (or wrote what was there).
                let expected: Vec<Vec<u8>> = spans
                    .iter()
                    .filter(|(s, e, _)| *e <= from || *s >= to || bad[*s..*e] == data[*s..*e])
                    .map(|(_, _, p)| p.clone())
                    .collect();
                assert_eq!(records_of(&bad), expected, "zeros at {from}..{to}");
            }
        }
    }

    #[test]
    fn a_truncated_log_keeps_every_whole_record() {
        let (data, spans) = sample();
        for cut in 0..=data.len() {
            let expected: Vec<Vec<u8>> =
                spans.iter().filter(|(_, e, _)| *e <= cut).map(|(_, _, p)| p.clone()).collect();
            let (good, damage) = scan(&data[..cut], |_, _| ());
            assert_eq!(records_of(&data[..cut]), expected, "cut at {cut}");
            assert_eq!(good + damage.tail + damage.free, cut);
            assert!(damage.skipped.is_empty());
        }
    }

    #[test]
    fn damage_followed_by_a_zeroed_tail_keeps_the_records_between() {
        let (mut data, spans) = sample();
        data[spans[3].0 + HEADER] ^= 0x10;
        data.extend_from_slice(&[0; 8]);
        let expected: Vec<Vec<u8>> =
            spans.iter().enumerate().filter(|(i, _)| *i != 3).map(|(_, (_, _, p))| p.clone()).collect();
        assert_eq!(records_of(&data), expected);
    }

    #[test]
    fn own_frames_gives_back_every_payload() {
        let mut buf = Vec::new();
        for p in [&b"a"[..], b"bcd", b"efghij"] {
            frame(&mut buf, p);
        }
        assert_eq!(own_frames(&buf).collect::<Vec<_>>(), vec![&b"a"[..], b"bcd", b"efghij"]);
    }
}
