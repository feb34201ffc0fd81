//! The sample stores: Heroic's distribution points (a serialised t-digest
//! per timestamp) in `<data_dir>/distributions/samples.log`, its t-digest
//! points (sketches too) in `<data_dir>/tdigests/samples.log` and spreads
//! (40 bytes each) in `<data_dir>/spreads/samples.log`, kept apart from the
//! points engine, one [`SampleStore`] per kind.
//!
//! Durability is the points WAL's: every write is one log record per
//! series (`RecordLog`: checksummed frames, group commit, `fdatasync`
//! before the write returns, torn tails dropped and damaged stretches
//! skipped at open). Unlike points, the samples are not flushed into
//! compressed segments: a sketch is already compact and opaque (about
//! 2 KB) and compresses poorly, so the log *is* the store, replayed into
//! memory at open. Overwritten samples stay in the log until the next
//! open, which rewrites it (one record per series) once they weigh as much
//! as the live ones. Spreads take the same path: they are rare next to
//! points (Heroic's writers send them pre-aggregated) and fixed-size.
//!
//! Record (version 1): `u8 1 | series | varint n | n × (i64 timestamp,
//! varint length, bytes)`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use heroic_plugin_api::samples::{FetchedSamples, SampleBatch, SampleFetchResponse, SeriesSamples};
use heroic_plugin_api::types::{Series, TimeRange};
use parking_lot::RwLock;

use crate::encoding::{put_i64, put_series, put_u8, put_varint, Reader};
use crate::error::{Error, IoContext, Result};
use crate::log::RecordLog;
use crate::store::normalized;

/// The version byte of a record; a record of another version is skipped.
const RECORD_V1: u8 = 1;

/// Overwritten bytes below which the log is not rewritten at open, however
/// small the live data: rewriting a few kilobytes saves nothing.
const REWRITE_MIN_DEAD: u64 = 64 * 1024;

/// The most sample bytes in one record of a rewritten log, so that one
/// series with a long history is not one huge record.
const REWRITE_RECORD_BYTES: usize = 4 << 20;

/// The samples of one series: timestamp → sketch bytes. A boxed slice per
/// sample: a sketch is kilobytes, so one allocation each costs little next
/// to copying it, and an overwrite frees exactly the old one.
type SeriesSamplesMap = BTreeMap<i64, Box<[u8]>>;

/// The samples of one kind of a metric store, durable in their own log.
pub struct SampleStore {
    /// What the samples are, for messages.
    kind: &'static str,
    /// The length every sample must have (spreads), if fixed.
    sample_len: Option<usize>,
    path: PathBuf,
    log: RecordLog,
    samples: RwLock<HashMap<Series, SeriesSamplesMap>>,
}

/// Applies one record to the in-memory map: the bytes of the samples it
/// overwrote, or `None` when it cannot be read.
fn apply(samples: &mut HashMap<Series, SeriesSamplesMap>, rec: &[u8]) -> Option<u64> {
    let mut r = Reader::new(rec);
    let parsed = (|| {
        if r.u8()? != RECORD_V1 {
            return None;
        }
        let series = r.series()?;
        let n = r.varint()? as usize;
        let mut out = Vec::with_capacity(n.min(rec.len()));
        for _ in 0..n {
            let t = r.i64()?;
            let len = r.varint()? as usize;
            out.push((t, r.bytes(len)?));
        }
        r.is_empty().then_some((series, out))
    })();
    let (series, out) = parsed?;
    let map = samples.entry(series).or_default();
    let mut overwritten = 0;
    for (t, bytes) in out {
        if let Some(old) = map.insert(t, bytes.into()) {
            overwritten += old.len() as u64;
        }
    }
    Some(overwritten)
}

/// A record of the `n` samples of one series.
fn record<'a>(series: &Series, n: usize, samples: impl Iterator<Item = (i64, &'a [u8])>) -> Vec<u8> {
    let mut rec = Vec::new();
    put_u8(&mut rec, RECORD_V1);
    put_series(&mut rec, series);
    put_varint(&mut rec, n as u64);
    for (t, bytes) in samples {
        put_i64(&mut rec, t);
        put_varint(&mut rec, bytes.len() as u64);
        rec.extend_from_slice(bytes);
    }
    rec
}

/// The records of a rewritten log: the live samples of each series, at
/// most about [`REWRITE_RECORD_BYTES`] of them per record.
fn live_records(samples: &HashMap<Series, SeriesSamplesMap>) -> impl Iterator<Item = Cow<'static, [u8]>> + '_ {
    samples.iter().flat_map(|(series, map)| {
        let mut chunks: Vec<Vec<(i64, &[u8])>> = vec![Vec::new()];
        let mut bytes = 0;
        for (&t, v) in map {
            if bytes + v.len() > REWRITE_RECORD_BYTES && !chunks.last().is_some_and(Vec::is_empty) {
                chunks.push(Vec::new());
                bytes = 0;
            }
            bytes += v.len();
            chunks.last_mut().expect("one chunk at least").push((t, v));
        }
        chunks.into_iter().filter(|c| !c.is_empty()).map(move |c| Cow::Owned(record(series, c.len(), c.into_iter())))
    })
}

impl SampleStore {
    /// Opens (or creates) the store of samples of `kind` (its name, for
    /// messages) in `dir` (the caller holds the lock of the directory it
    /// lives in), replaying its log. With `sample_len`, a write of a sample
    /// of another length is refused.
    pub fn open(dir: &Path, kind: &'static str, sample_len: Option<usize>) -> Result<SampleStore> {
        fs::create_dir_all(dir).ctx(dir)?;
        let path = dir.join("samples.log");
        let mut samples = HashMap::new();
        let mut overwritten = 0u64;
        let (log, _) = RecordLog::open(&path, |offset, rec| match apply(&mut samples, rec) {
            Some(bytes) => overwritten += bytes,
            // An intact frame this version cannot read: skipped like damage.
            None => tracing::warn!(path = %path.display(), offset, kind, "skipped an undecodable sample record"),
        })?;
        let live: u64 = samples.values().flat_map(|m| m.values()).map(|v| v.len() as u64).sum();
        let log = if overwritten >= live.max(REWRITE_MIN_DEAD) {
            tracing::info!(path = %path.display(), kind, overwritten, live, "rewriting the sample log without overwritten samples");
            RecordLog::rewrite(&path, log, live_records(&samples))?
        } else {
            log
        };
        Ok(SampleStore { kind, sample_len, path, log, samples: RwLock::new(samples) })
    }

    /// Writes samples; returns once they are durable. A repeated timestamp
    /// overwrites (the last write wins, as for points).
    pub fn write(&self, batch: &[SeriesSamples]) -> Result<()> {
        let mut payloads = Vec::with_capacity(batch.len());
        for ss in batch {
            ss.samples.validate().map_err(|e| Error::InvalidInput(format!("series {:?}: {e}", ss.series.key)))?;
            if ss.samples.is_empty() {
                continue;
            }
            if let Some(len) = self.sample_len {
                if let Some((t, bytes)) = ss.samples.iter().find(|(_, b)| b.len() != len) {
                    return Err(Error::InvalidInput(format!(
                        "series {:?}: the {} sample at {t} has {} bytes, not {len}",
                        ss.series.key,
                        self.kind,
                        bytes.len()
                    )));
                }
            }
            payloads.push(record(&normalized(&ss.series), ss.samples.len(), ss.samples.iter()));
        }
        if payloads.is_empty() {
            return Ok(());
        }
        if self.log.broken().is_some() {
            self.log.recover()?;
        }
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        // Applied after the fsync, in log order, for every writer of the group.
        self.log.append_applying(&refs, |rec| {
            if apply(&mut self.samples.write(), rec).is_none() {
                tracing::error!(path = %self.path.display(), kind = self.kind, "a sample record just written does not decode");
            }
        })
    }

    /// Samples of each requested series in `(start, end]`, sorted; at most
    /// about `limit` in all (0: no limit), with `limited` set when cut.
    pub fn fetch(&self, series: &[Series], range: TimeRange, limit: u64) -> SampleFetchResponse {
        let samples = self.samples.read();
        let mut out = SampleFetchResponse::default();
        let mut total = 0u64;
        if range.start >= range.end {
            return out;
        }
        for (i, s) in series.iter().enumerate() {
            let Some(map) = samples.get(&*normalized(s)) else {
                continue;
            };
            let mut batch = SampleBatch::new();
            for (&t, bytes) in map.range((std::ops::Bound::Excluded(range.start), std::ops::Bound::Included(range.end)))
            {
                if limit > 0 && total >= limit {
                    out.limited = true;
                    break;
                }
                batch.push(t, bytes);
                total += 1;
            }
            if !batch.is_empty() {
                out.series.push(FetchedSamples {
                    request_index: i as u32,
                    resource: s.resource.clone(),
                    samples: batch,
                });
            }
            if out.limited {
                break;
            }
        }
        out
    }

    /// Number of series with samples.
    pub fn series(&self) -> usize {
        self.samples.read().len()
    }

    /// Why the store cannot take writes, if it cannot (retrying the log first).
    pub fn trouble(&self) -> Option<String> {
        self.log.broken()?;
        self.log.recover().err().map(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(series: &Series, samples: &[(i64, &[u8])]) -> SeriesSamples {
        let mut b = SampleBatch::new();
        for &(t, v) in samples {
            b.push(t, v);
        }
        SeriesSamples { series: series.clone(), samples: b }
    }

    fn pairs(r: &SampleFetchResponse) -> Vec<(u32, i64, Vec<u8>)> {
        r.series.iter().flat_map(|s| s.samples.iter().map(move |(t, v)| (s.request_index, t, v.to_vec()))).collect()
    }

    #[test]
    fn writes_survive_reopen_and_fetch_honours_the_range() {
        let dir = tempfile::tempdir().unwrap();
        let a = Series::new("a", [("x", "1")], []);
        let b = Series::new("b", [] as [(&str, &str); 0], []);
        {
            let store = SampleStore::open(dir.path(), "distributionPoints", None).unwrap();
            store.write(&[batch(&a, &[(10, b"one"), (20, b"two")]), batch(&b, &[(15, b"bee")])]).unwrap();
            store.write(&[batch(&a, &[(20, b"TWO"), (30, b"three")])]).unwrap();
        }
        let store = SampleStore::open(dir.path(), "distributionPoints", None).unwrap();
        assert_eq!(store.series(), 2);
        let r = store.fetch(&[b.clone(), a.clone()], TimeRange::new(10, 30), 0);
        assert_eq!(
            pairs(&r),
            vec![(0, 15, b"bee".to_vec()), (1, 20, b"TWO".to_vec()), (1, 30, b"three".to_vec())],
            "start excluded, end included, last write wins"
        );
        let r = store.fetch(std::slice::from_ref(&a), TimeRange::new(0, 100), 2);
        assert!(r.limited);
        assert_eq!(pairs(&r).len(), 2);
    }

    #[test]
    fn reopening_rewrites_a_log_heavy_with_overwritten_samples() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (Series::new("a", [("x", "1")], []), Series::new("b", [("x", "2")], []));
        let big = |i: u8| vec![i; 1000];
        let path = dir.path().join("samples.log");
        {
            let store = SampleStore::open(dir.path(), "distributionPoints", None).unwrap();
            // 20 rounds over the same 10 timestamps of 1 KB: 190 of 200 KB dead.
            for round in 0..20u8 {
                let samples: Vec<(i64, Vec<u8>)> = (0..10).map(|t| (t, big(round))).collect();
                let refs: Vec<(i64, &[u8])> = samples.iter().map(|(t, v)| (*t, v.as_slice())).collect();
                store.write(&[batch(&a, &refs)]).unwrap();
            }
            store.write(&[batch(&b, &[(5, b"bee")])]).unwrap();
        }
        let before = fs::metadata(&path).unwrap().len();
        let store = SampleStore::open(dir.path(), "distributionPoints", None).unwrap();
        let after = fs::metadata(&path).unwrap().len();
        assert!(after < before / 10, "{before} bytes before, {after} after the rewrite");
        let want: Vec<(u32, i64, Vec<u8>)> =
            (0..10).map(|t| (0, t, big(19))).chain([(1, 5, b"bee".to_vec())]).collect();
        let got = pairs(&store.fetch(&[a.clone(), b.clone()], TimeRange::new(-1, 100), 0));
        assert_eq!(got, want, "the last write of each timestamp kept");
        store.write(&[batch(&b, &[(6, b"after")])]).unwrap();
        drop(store);
        // The rewritten log is an ordinary log: reopened as it is, with the write after it.
        let store = SampleStore::open(dir.path(), "distributionPoints", None).unwrap();
        let got = pairs(&store.fetch(&[b], TimeRange::new(-1, 100), 0));
        assert_eq!(got, vec![(0, 5, b"bee".to_vec()), (0, 6, b"after".to_vec())]);
        assert!(!dir.path().join("samples.log.tmp").exists());
    }

    #[test]
    fn a_torn_tail_loses_only_the_last_write() {
        let dir = tempfile::tempdir().unwrap();
        let a = Series::new("a", [] as [(&str, &str); 0], []);
        {
            let store = SampleStore::open(dir.path(), "distributionPoints", None).unwrap();
            store.write(&[batch(&a, &[(1, b"kept")])]).unwrap();
            store.write(&[batch(&a, &[(2, b"torn")])]).unwrap();
        }
        let path = dir.path().join("samples.log");
        let len = fs::metadata(&path).unwrap().len();
        fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 3).unwrap();
        let store = SampleStore::open(dir.path(), "distributionPoints", None).unwrap();
        assert_eq!(pairs(&store.fetch(&[a], TimeRange::ALL, 0)), vec![(0, 1, b"kept".to_vec())]);
    }

    #[test]
    fn a_fixed_length_store_refuses_other_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let store = SampleStore::open(dir.path(), "spreads", Some(4)).unwrap();
        let a = Series::new("a", [] as [(&str, &str); 0], []);
        store.write(&[batch(&a, &[(1, b"four")])]).unwrap();
        let err = store.write(&[batch(&a, &[(2, b"four"), (3, b"five!")])]).unwrap_err();
        assert!(err.to_string().contains("the spreads sample at 3 has 5 bytes, not 4"), "{err}");
        assert_eq!(pairs(&store.fetch(&[a], TimeRange::ALL, 0)), vec![(0, 1, b"four".to_vec())], "nothing of it kept");
    }

    #[test]
    fn a_malformed_batch_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SampleStore::open(dir.path(), "distributionPoints", None).unwrap();
        let a = Series::new("a", [] as [(&str, &str); 0], []);
        let bad = SampleBatch { timestamps: vec![1].into(), ends: vec![9].into(), data: vec![0u8; 2].into() };
        let err = store.write(&[SeriesSamples { series: a, samples: bad }]).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    }
}
