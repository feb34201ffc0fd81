//! The metric store under injected faults: failed writes and fsyncs of its
//! logs (as a full or failing disk gives them), a head over its bound, and
//! a delete interrupted half-way. What is acknowledged must survive, what
//! was refused must not appear, and writing must resume by itself.

use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use heroic_plugin_api::types::{PointBatch, Series, SeriesPoints, TimeRange};

use crate::error::Error;
use crate::log::RecordLog;
use crate::metrics::{MetricOptions, MetricStore};

fn opts() -> MetricOptions {
    MetricOptions { background_flush: false, ..MetricOptions::default() }
}

fn series(key: &str) -> Series {
    Series::new(key, [("host", "a")], [])
}

fn sp(s: &Series, points: &[(i64, f64)]) -> SeriesPoints {
    SeriesPoints { series: s.clone(), points: PointBatch::from_pairs(points) }
}

fn pairs(store: &MetricStore, s: &Series) -> Vec<(i64, f64)> {
    store.fetch_one(s, TimeRange::ALL).unwrap().to_pairs()
}

fn wal_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("wal-"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_failed_log_write_is_refused_whole_and_the_log_recovers_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    let (log, _) = RecordLog::open(&path, |_, _| ()).unwrap();
    let log = Arc::new(log);
    log.append(&[b"kept-1"]).unwrap();
    log.fail_writes(Some(ErrorKind::StorageFull));
    let applied = std::sync::Mutex::new(Vec::new());
    // Several writers in one failing group: all are refused, none applied.
    std::thread::scope(|s| {
        for i in 0..4u8 {
            let (log, applied) = (&log, &applied);
            s.spawn(move || {
                let e = log.append_applying(&[&[b'x', i]], |r| applied.lock().unwrap().push(r.to_vec())).unwrap_err();
                assert!(matches!(e, Error::LogFailed { storage_full: true, .. }), "{e}");
            });
        }
    });
    assert!(applied.lock().unwrap().is_empty());
    assert!(log.broken().is_some_and(|b| b.storage_full));
    // Still failing: refused at once, and still broken.
    assert!(log.append(&[b"refused"]).is_err());
    log.fail_writes(None);
    log.append_applying(&[b"kept-2"], |r| applied.lock().unwrap().push(r.to_vec())).unwrap();
    assert_eq!(*applied.lock().unwrap(), vec![b"kept-2".to_vec()]);
    assert!(log.broken().is_none());
    drop(log);
    // Half of each failed group landed on disk; the recovery cut it off.
    let mut records = Vec::new();
    let (_, damage) = RecordLog::open(&path, |_, r| records.push(r.to_vec())).unwrap();
    assert_eq!(records, vec![b"kept-1".to_vec(), b"kept-2".to_vec()]);
    assert!(!damage.any(), "{damage:?}");
}

#[test]
fn a_full_disk_refuses_writes_and_writing_resumes_in_a_fresh_wal_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    let s = series("cpu");
    store.write(&[sp(&s, &[(1, 1.0)])]).unwrap();
    let before = wal_files(dir.path());
    store.inner.wal.fail_writes(Some(ErrorKind::StorageFull));
    let e = store.write(&[sp(&s, &[(2, 2.0)])]).unwrap_err();
    assert!(matches!(e, Error::LogFailed { storage_full: true, .. }), "{e}");
    assert_eq!(pairs(&store, &s), vec![(1, 1.0)], "a refused write is not readable");
    let trouble = store.trouble().expect("unhealthy while the disk is full");
    assert!(trouble.contains("wal-"), "{trouble}");
    store.inner.wal.fail_writes(None);
    // The next write seals the failed WAL at its acknowledged records and
    // goes on in a new file.
    store.write(&[sp(&s, &[(3, 3.0)])]).unwrap();
    assert!(store.trouble().is_none(), "{:?}", store.trouble());
    let after = wal_files(dir.path());
    assert!(after.len() == 2 && after[0] == before[0], "{before:?} then {after:?}");
    assert_eq!(pairs(&store, &s), vec![(1, 1.0), (3, 3.0)]);
    drop(store);
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    assert_eq!(pairs(&store, &s), vec![(1, 1.0), (3, 3.0)], "after a crash and replay");
}

#[test]
fn the_background_thread_recovers_a_failed_wal_and_reports_health_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let o = MetricOptions { flush_interval: Duration::from_secs(3600), ..MetricOptions::default() };
    let store = MetricStore::open(dir.path(), o).unwrap();
    let s = series("cpu");
    store.inner.wal.fail_writes(Some(ErrorKind::PermissionDenied));
    let e = store.write(&[sp(&s, &[(1, 1.0)])]).unwrap_err();
    assert!(matches!(e, Error::LogFailed { storage_full: false, .. }), "{e}");
    assert!(store.trouble().is_some());
    store.inner.wal.fail_writes(None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.trouble().is_some() {
        assert!(Instant::now() < deadline, "still unhealthy: {:?}", store.trouble());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Nothing was durable in the failed file: it was reused, not rotated.
    assert_eq!(wal_files(dir.path()).len(), 1);
    store.write(&[sp(&s, &[(2, 2.0)])]).unwrap();
    assert_eq!(pairs(&store, &s), vec![(2, 2.0)]);
}

#[test]
fn writers_are_refused_while_the_head_is_over_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let o = MetricOptions { flush_points: 1_000_000, head_limit_points: 100, ..opts() };
    let store = MetricStore::open(dir.path(), o).unwrap();
    let s = series("cpu");
    let many: Vec<(i64, f64)> = (1..=150).map(|t| (t, 0.0)).collect();
    store.write(&[sp(&s, &many)]).unwrap();
    let e = store.write(&[sp(&s, &[(500, 1.0)])]).unwrap_err();
    assert!(matches!(e, Error::Busy { points: 150, limit: 100, .. }), "{e}");
    assert!(store.trouble().is_some());
    store.flush().unwrap();
    store.write(&[sp(&s, &[(500, 1.0)])]).unwrap();
    assert_eq!(pairs(&store, &s).len(), 151);
}

#[test]
fn a_delete_range_cut_short_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    let s = series("cpu");
    let all: Vec<(i64, f64)> = (1..=10).map(|t| (t, t as f64)).collect();
    store.write(&[sp(&s, &all[..5])]).unwrap();
    store.flush().unwrap();
    store.write(&[sp(&s, &all[5..])]).unwrap();
    // The tombstone cannot be written: the delete fails, nothing is lost.
    store.inner.catalog_log.active().fail_writes(Some(ErrorKind::StorageFull));
    assert!(store.delete_range(std::slice::from_ref(&s), TimeRange::new(3, 7)).is_err());
    assert_eq!(pairs(&store, &s), all);
    drop(store);
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    assert_eq!(pairs(&store, &s), all, "after a crash at that point");
    // Once it can be written, the delete is whole, and stays so.
    assert_eq!(store.delete_range(std::slice::from_ref(&s), TimeRange::new(3, 7)).unwrap(), 1);
    let kept: Vec<(i64, f64)> = all.iter().copied().filter(|&(t, _)| t <= 3 || t > 7).collect();
    assert_eq!(pairs(&store, &s), kept);
    drop(store);
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    assert_eq!(pairs(&store, &s), kept, "after a restart");
}

#[test]
fn writes_during_a_delete_range_survive_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MetricStore::open(dir.path(), opts()).unwrap());
    let s = series("cpu");
    store.write(&[sp(&s, &[(1, 1.0), (5, 5.0), (9, 9.0)])]).unwrap();
    let writer = {
        let (store, s) = (store.clone(), s.clone());
        std::thread::spawn(move || {
            for t in 100..200 {
                store.write(&[sp(&s, &[(t, 0.5)])]).unwrap();
            }
        })
    };
    for _ in 0..5 {
        store.delete_range(std::slice::from_ref(&s), TimeRange::new(4, 6)).unwrap();
    }
    writer.join().unwrap();
    let got = pairs(&store, &s);
    assert_eq!(&got[..2], &[(1, 1.0), (9, 9.0)]);
    assert_eq!(got.len(), 102, "every concurrent write is kept");
}

#[test]
fn replay_flushes_each_wal_before_reading_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let s = series("cpu");
    {
        let store = MetricStore::open(dir.path(), opts()).unwrap();
        let points: Vec<(i64, f64)> = (1..=1000).map(|t| (t, t as f64)).collect();
        store.write(&[sp(&s, &points)]).unwrap();
        // Dropped without a flush: a crash.
    }
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    let stats = store.stats();
    assert_eq!((stats.head_points, stats.segments, stats.block_points), (0, 1, 1000), "{stats:?}");
    assert_eq!(wal_files(dir.path()).len(), 1, "only the new active WAL is left");
    assert_eq!(pairs(&store, &s).len(), 1000);
}

/// A new series whose definition cannot be made durable (the write-ahead
/// log fails): the write is refused (none of its points logged), the
/// series stays undefined, and the retry defines it with the same id, once
/// and for good, also across a reopen.
#[test]
fn a_failed_series_definition_refuses_the_write_and_the_retry_defines_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    let old = series("old");
    store.write(&[sp(&old, &[(1, 1.0)])]).unwrap();
    let new = series("new");
    store.inner.wal.fail_writes(Some(ErrorKind::StorageFull));
    let e = store.write(&[sp(&new, &[(2, 2.0)])]).unwrap_err();
    assert!(matches!(e, Error::LogFailed { storage_full: true, .. }), "{e}");
    assert_eq!(store.stats().series, 1, "not defined");
    assert!(pairs(&store, &new).is_empty(), "not readable");
    store.inner.wal.fail_writes(None);
    store.write(&[sp(&old, &[(3, 3.0)])]).unwrap();
    store.write(&[sp(&new, &[(2, 2.0)])]).unwrap();
    assert_eq!(store.stats().series, 2);
    assert_eq!(store.inner.catalog.read().len(), 2, "one id for the new series");
    assert_eq!(pairs(&store, &new), vec![(2, 2.0)]);
    drop(store);
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    assert_eq!(store.stats().series, 2, "after a reopen");
    assert_eq!(pairs(&store, &new), vec![(2, 2.0)]);
    assert_eq!(pairs(&store, &old), vec![(1, 1.0), (3, 3.0)]);
}

/// A new series is durable once its write is: its definition travels in the
/// write-ahead log, and reaches the catalog before that log is removed.
#[test]
fn a_series_defined_only_in_the_write_ahead_log_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let s = series("cpu");
    {
        let store = MetricStore::open(dir.path(), opts()).unwrap();
        store.write(&[sp(&s, &[(1, 1.0), (2, 2.0)])]).unwrap();
        assert_eq!(std::fs::metadata(dir.path().join("series.log")).unwrap().len(), 0, "not in the catalog yet");
        // Dropped without a flush: a crash.
    }
    {
        let store = MetricStore::open(dir.path(), opts()).unwrap();
        assert_eq!(pairs(&store, &s), vec![(1, 1.0), (2, 2.0)]);
        assert_eq!(store.stats().series, 1);
        // The replayed log was flushed and removed: the catalog has it now.
        assert!(std::fs::metadata(dir.path().join("series.log")).unwrap().len() > 0);
        store.write(&[sp(&s, &[(3, 3.0)])]).unwrap();
    }
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    assert_eq!(pairs(&store, &s), vec![(1, 1.0), (2, 2.0), (3, 3.0)]);
    assert_eq!(store.inner.catalog.read().len(), 1, "one id, however many replays");
}

/// The catalog cannot be written: writes of new series go on (their
/// definitions are in the write-ahead log), the flush that would remove that
/// log fails and keeps it, health says why, and everything is saved once
/// the catalog can be written again, without a restart.
#[test]
fn a_failing_catalog_holds_back_the_flush_not_the_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    let (a, b) = (series("a"), series("b"));
    store.write(&[sp(&a, &[(1, 1.0)])]).unwrap();
    store.inner.catalog_log.active().fail_writes(Some(ErrorKind::StorageFull));
    store.write(&[sp(&b, &[(2, 2.0)])]).unwrap();
    assert!(store.flush().is_err(), "the log defining the series is kept");
    assert!(store.trouble().is_some(), "health tells");
    assert_eq!(wal_files(dir.path()).len(), 2, "the frozen log and the new one");
    assert_eq!(pairs(&store, &b), vec![(2, 2.0)]);
    store.inner.catalog_log.active().fail_writes(None);
    store.inner.catalog_log.active().recover().unwrap();
    store.flush().unwrap();
    assert_eq!(store.trouble(), None);
    drop(store);
    let store = MetricStore::open(dir.path(), opts()).unwrap();
    assert_eq!(pairs(&store, &a), vec![(1, 1.0)]);
    assert_eq!(pairs(&store, &b), vec![(2, 2.0)]);
    assert_eq!(store.stats().series, 2);
}
