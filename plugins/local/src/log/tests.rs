//! Behaviour tests of the record log: group commit, failed writes and
//! recovery, rotation and sealing.

use std::io::Write;

use super::*;
use crate::frame::{frame, HEADER};

pub(super) fn read_all(path: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    RecordLog::open(path, |_, r| out.push(r.to_vec())).unwrap();
    out
}

#[test]
fn records_survive_reopen_and_torn_tail_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    let (log, damage) = RecordLog::open(&path, |_, _| ()).unwrap();
    assert!(!damage.any());
    log.append(&[b"one", b"two"]).unwrap();
    log.append(&[b"three"]).unwrap();
    drop(log);
    // Simulate a crash in the middle of a write: half a record at the end.
    let mut torn_bytes = Vec::new();
    frame(&mut torn_bytes, b"four-is-long");
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&torn_bytes[..torn_bytes.len() - 3]).unwrap();
    drop(f);
    let (log, damage) = RecordLog::open(&path, |_, _| ()).unwrap();
    assert!(damage.tail > 0 && damage.skipped.is_empty(), "{damage:?}");
    log.append(&[b"five"]).unwrap();
    drop(log);
    let got = read_all(&path);
    assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec(), b"five".to_vec()]);
}

#[test]
fn a_log_damaged_in_the_middle_keeps_what_follows_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    let (log, _) = RecordLog::open(&path, |_, _| ()).unwrap();
    log.append(&[b"one", b"two", b"three"]).unwrap();
    drop(log);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[HEADER + 3 + HEADER + 1] ^= 0x40; // inside "two"
    std::fs::write(&path, &bytes).unwrap();
    let (log, damage) = RecordLog::open(&path, |_, _| ()).unwrap();
    assert_eq!(damage.skipped, vec![(HEADER + 3, HEADER + 3)]);
    assert_eq!(damage.tail, 0);
    log.append(&[b"four"]).unwrap();
    drop(log);
    assert_eq!(read_all(&path), vec![b"one".to_vec(), b"three".to_vec(), b"four".to_vec()]);
}

/// Small records are written into zeros laid down ahead of them; a
/// crash leaves those zeros, which are free space on reopen (no damage,
/// and the next record lands right after the last one), and a clean
/// close cuts them off.
#[test]
fn free_space_is_written_ahead_and_cut_off_at_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    let (log, _) = RecordLog::open(&path, |_, _| ()).unwrap();
    log.append(&[b"one"]).unwrap();
    log.append(&[b"two"]).unwrap();
    let records_len = log.durable_len();
    let file_len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(file_len, 8 << 10, "zeros written ahead, to a page boundary");
    // A crash now: the file as it is on disk, zeros and all.
    let crashed = dir.path().join("crashed.log");
    std::fs::copy(&path, &crashed).unwrap();
    drop(log);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), records_len, "a clean close keeps only the records");

    let (log, damage) = RecordLog::open(&crashed, |_, _| ()).unwrap();
    assert!(!damage.any(), "{damage:?}");
    assert_eq!(damage.free as u64, file_len - records_len);
    log.append(&[b"three"]).unwrap();
    drop(log);
    assert_eq!(read_all(&crashed), vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);

    // A large record is written as it comes, without zeros after it.
    let (log, _) = RecordLog::open(&path, |_, _| ()).unwrap();
    let big = vec![7u8; 2 * SMALL_GROUP + 1];
    log.append(&[&big]).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), log.durable_len());
}

#[test]
fn concurrent_writers_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    let (log, _) = RecordLog::open(&path, |_, _| ()).unwrap();
    let log = Arc::new(log);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..50u32 {
                    log.append(&[&[t as u8, i as u8]]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(log);
    assert_eq!(read_all(&path).len(), 400);
}
