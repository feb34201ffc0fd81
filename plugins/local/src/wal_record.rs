//! The write-ahead log's records, both ways.
//!
//! - `REC_POINTS` then, per series chunk, `id u64 | n u32 | n × ts i64 |
//!   n × value f64` (little endian). The same decoding applies a record to
//!   the head when it becomes durable and when a log is replayed at open, so
//!   the two cannot disagree.
//! - `REC_DEFINE | id u64 | series`: a new series, logged in the same group
//!   (so under the same fsync) as the first points that use it. Why here and
//!   not straight into the series catalog: a write of a new series then
//!   costs one fsync, not two. The catalog gets the definition before the
//!   log holding it is removed (`flush.rs`).

use heroic_plugin_api::types::{Series, SeriesPoints};

use crate::encoding::{put_series, put_u32, put_u64, put_u8, Reader};
use crate::head::Head;

pub(crate) const REC_POINTS: u8 = 1;
pub(crate) const REC_DEFINE: u8 = 2;

/// The record defining series `id`.
pub(crate) fn encode_define(id: u64, series: &Series) -> Vec<u8> {
    let mut p = vec![REC_DEFINE];
    put_u64(&mut p, id);
    put_series(&mut p, series);
    p
}

/// The id and series of a definition record; `None` for another kind or
/// one that does not decode.
pub(crate) fn parse_define(rec: &[u8]) -> Option<(u64, Series)> {
    let mut r = Reader::new(rec);
    if r.u8()? != REC_DEFINE {
        return None;
    }
    let id = r.u64()?;
    let series = r.series()?;
    r.is_empty().then_some((id, series))
}

/// Encodes points as records of at most `max_points` points each.
pub(crate) fn encode_points(batch: &[SeriesPoints], ids: &[u64], max_points: usize) -> Vec<Vec<u8>> {
    let max_points = max_points.max(1);
    let mut out = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut cur_points = 0;
    for (sp, &id) in batch.iter().zip(ids) {
        let (ts, vals) = (&sp.points.timestamps[..], &sp.points.values[..]);
        for (t, v) in ts.chunks(max_points).zip(vals.chunks(max_points)) {
            if cur_points + t.len() > max_points && cur_points > 0 {
                out.push(std::mem::take(&mut cur));
                cur_points = 0;
            }
            if cur.is_empty() {
                cur.reserve(1 + t.len() * 16 + 12);
                put_u8(&mut cur, REC_POINTS);
            }
            put_u64(&mut cur, id);
            put_u32(&mut cur, t.len() as u32);
            for x in t {
                cur.extend_from_slice(&x.to_le_bytes());
            }
            for x in v {
                cur.extend_from_slice(&x.to_le_bytes());
            }
            cur_points += t.len();
        }
    }
    if cur_points > 0 {
        out.push(cur);
    }
    out
}

/// One series chunk of a record: its id and its raw timestamps and values.
struct Chunk<'a> {
    id: u64,
    ts: &'a [u8],
    vals: &'a [u8],
}

fn chunks(rec: &[u8]) -> Option<Vec<Chunk<'_>>> {
    let mut r = Reader::new(rec);
    if r.u8()? != REC_POINTS {
        return None;
    }
    let mut out = Vec::new();
    while !r.is_empty() {
        let id = r.u64()?;
        let n = r.u32()? as usize;
        let ts = r.bytes(n.checked_mul(8)?)?;
        let vals = r.bytes(n * 8)?;
        out.push(Chunk { id, ts, vals });
    }
    Some(out)
}

/// Applies one record to `head`, all of it or (when it does not decode)
/// nothing; returns the highest series id in it (`Some(None)`: no chunk).
pub(crate) fn apply_points(rec: &[u8], head: &mut Head) -> Option<Option<u64>> {
    let chunks = chunks(rec)?;
    for c in &chunks {
        head.append_le(c.id, c.ts, c.vals);
    }
    Some(chunks.iter().map(|c| c.id).max())
}

#[cfg(test)]
mod tests {
    use heroic_plugin_api::types::{PointBatch, Series, TimeRange};

    use super::*;

    #[test]
    fn records_round_trip_and_split_at_the_point_bound() {
        let mut points = PointBatch::new();
        for t in 1..=5 {
            points.push(t, t as f64 / 2.0);
        }
        let batch = [SeriesPoints { series: Series::new("a", [("h", "x")], []), points }];
        let recs = encode_points(&batch, &[7], 2);
        assert_eq!(recs.len(), 3);
        let mut head = Head::default();
        for r in &recs {
            assert_eq!(apply_points(r, &mut head), Some(Some(7)));
        }
        let run = head.collect(7, TimeRange::ALL).unwrap();
        assert_eq!(run.ts, vec![1, 2, 3, 4, 5]);
        assert_eq!(run.vals, vec![0.5, 1.0, 1.5, 2.0, 2.5]);
        // A record cut short applies nothing.
        let mut head = Head::default();
        assert_eq!(apply_points(&recs[0][..recs[0].len() - 1], &mut head), None);
        assert!(head.is_empty());
    }

    #[test]
    fn definitions_round_trip_and_are_not_points() {
        let s = Series::new("a", [("h", "x")], [("r", "y")]);
        let rec = encode_define(42, &s);
        assert_eq!(parse_define(&rec), Some((42, s)));
        assert_eq!(parse_define(&rec[..rec.len() - 1]), None);
        assert_eq!(apply_points(&rec, &mut Head::default()), None);
    }
}
