//! Turning a ReadRows response stream back into rows, and narrowing a row
//! set so a retried read resumes after the last row already delivered.
//!
//! Bigtable sends cells as chunks: the row key, family and qualifier are
//! only sent when they change, a large value may be split over several
//! chunks (`value_size` > 0 on all but the last), and a row ends with
//! `commit_row` or is abandoned with `reset_row`.

use std::cmp::Ordering;

use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::read_rows_response::{cell_chunk::RowStatus, CellChunk};
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::row_range::{EndKey, StartKey};
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::{RowRange, RowSet};

/// One cell: only the newest version is ever asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub family: String,
    pub qualifier: Vec<u8>,
    pub value: Vec<u8>,
}

/// A committed row.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub key: Vec<u8>,
    pub cells: Vec<Cell>,
}

/// Assembles chunks into rows.
#[derive(Default)]
pub struct RowAssembler {
    key: Option<Vec<u8>>,
    family: Option<String>,
    qualifier: Option<Vec<u8>>,
    cells: Vec<Cell>,
    /// A value being received in pieces.
    partial: Option<Cell>,
    last_committed: Option<Vec<u8>>,
}

impl RowAssembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one chunk; returns the row it completes, if any.
    pub fn push(&mut self, chunk: CellChunk) -> Result<Option<Row>, String> {
        if !chunk.row_key.is_empty() {
            if self.key.as_ref().is_some_and(|k| *k != chunk.row_key) {
                return Err("a new row key arrived before the previous row was committed".into());
            }
            if self.last_committed.as_ref().is_some_and(|k| k.as_slice() >= chunk.row_key.as_slice()) {
                return Err("row keys are not increasing".into());
            }
            self.key = Some(chunk.row_key);
        }
        if self.key.is_none() {
            return Err("a cell arrived without a row key".into());
        }
        if let Some(RowStatus::ResetRow(true)) = chunk.row_status {
            self.reset();
            return Ok(None);
        }
        if let Some(family) = chunk.family_name {
            self.family = Some(family);
            if chunk.qualifier.is_none() {
                return Err("a new column family arrived without a qualifier".into());
            }
        }
        if let Some(qualifier) = chunk.qualifier {
            self.qualifier = Some(qualifier);
        }
        let family = self.family.clone().ok_or("a cell arrived without a column family")?;
        let qualifier = self.qualifier.clone().ok_or("a cell arrived without a qualifier")?;
        let piece = match self.partial.take() {
            Some(mut cell) => {
                cell.value.extend_from_slice(&chunk.value);
                cell
            }
            None => Cell { family, qualifier, value: chunk.value },
        };
        if chunk.value_size > 0 {
            self.partial = Some(piece);
        } else {
            self.cells.push(piece);
        }
        if let Some(RowStatus::CommitRow(true)) = chunk.row_status {
            if self.partial.is_some() {
                return Err("a row was committed in the middle of a split value".into());
            }
            let key = self.key.take().expect("checked above");
            self.last_committed = Some(key.clone());
            let cells = std::mem::take(&mut self.cells);
            self.family = None;
            self.qualifier = None;
            return Ok(Some(Row { key, cells }));
        }
        Ok(None)
    }

    fn reset(&mut self) {
        self.key = None;
        self.family = None;
        self.qualifier = None;
        self.cells.clear();
        self.partial = None;
    }

    /// Checks the stream did not end in the middle of a row.
    pub fn finish(&self) -> Result<(), String> {
        if self.key.is_some() {
            return Err("the stream ended in the middle of a row".into());
        }
        Ok(())
    }
}

/// Narrows `set` to the keys after `last` (exclusive). Returns `false` when
/// nothing is left: the caller must then not send the read at all, since an
/// empty row set means "the whole table" to Bigtable.
pub fn resume_after(set: &mut RowSet, last: &[u8]) -> bool {
    set.row_keys.retain(|k| k.as_slice() > last);
    let mut ranges = Vec::with_capacity(set.row_ranges.len());
    for mut range in std::mem::take(&mut set.row_ranges) {
        let ends_before = match &range.end_key {
            Some(EndKey::EndKeyOpen(end)) => end.as_slice() <= last,
            Some(EndKey::EndKeyClosed(end)) => end.as_slice() <= last,
            None => false,
        };
        if ends_before {
            continue;
        }
        let starts_before = match &range.start_key {
            Some(StartKey::StartKeyClosed(start)) => start.as_slice().cmp(last) != Ordering::Greater,
            Some(StartKey::StartKeyOpen(start)) => start.as_slice() < last,
            None => true,
        };
        if starts_before {
            range.start_key = Some(StartKey::StartKeyOpen(last.to_vec()));
        }
        ranges.push(range);
    }
    set.row_ranges = ranges;
    !set.row_keys.is_empty() || !set.row_ranges.is_empty()
}

/// `[start, end)`, `end` `None` meaning to the end of the table.
pub fn range(start: Vec<u8>, end: Option<Vec<u8>>) -> RowRange {
    RowRange { start_key: Some(StartKey::StartKeyClosed(start)), end_key: end.map(EndKey::EndKeyOpen) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(key: &[u8], family: Option<&str>, q: Option<&[u8]>, value: &[u8], status: Option<RowStatus>) -> CellChunk {
        CellChunk {
            row_key: key.to_vec(),
            family_name: family.map(str::to_string),
            qualifier: q.map(<[u8]>::to_vec),
            value: value.to_vec(),
            row_status: status,
            ..Default::default()
        }
    }

    #[test]
    fn assembles_rows_with_elided_fields_and_split_values() {
        let mut a = RowAssembler::new();
        assert_eq!(a.push(chunk(b"r1", Some("points"), Some(b"q1"), b"v1", None)).unwrap(), None);
        let mut split = chunk(b"", None, Some(b"q2"), b"ab", None);
        split.value_size = 4;
        assert_eq!(a.push(split).unwrap(), None);
        let row = a.push(chunk(b"", None, None, b"cd", Some(RowStatus::CommitRow(true)))).unwrap().unwrap();
        assert_eq!(row.key, b"r1");
        assert_eq!(row.cells.len(), 2);
        assert_eq!(row.cells[1], Cell { family: "points".into(), qualifier: b"q2".to_vec(), value: b"abcd".to_vec() });
        a.finish().unwrap();
    }

    #[test]
    fn reset_row_drops_what_was_received() {
        let mut a = RowAssembler::new();
        a.push(chunk(b"r1", Some("f"), Some(b"q"), b"x", None)).unwrap();
        a.push(chunk(b"", None, None, b"", Some(RowStatus::ResetRow(true)))).unwrap();
        let row = a.push(chunk(b"r1", Some("f"), Some(b"q"), b"y", Some(RowStatus::CommitRow(true)))).unwrap().unwrap();
        assert_eq!(row.cells, vec![Cell { family: "f".into(), qualifier: b"q".to_vec(), value: b"y".to_vec() }]);
    }

    #[test]
    fn stream_ending_mid_row_is_an_error() {
        let mut a = RowAssembler::new();
        a.push(chunk(b"r1", Some("f"), Some(b"q"), b"x", None)).unwrap();
        assert!(a.finish().is_err());
    }

    #[test]
    fn resuming_narrows_ranges() {
        let mut set = RowSet {
            row_keys: vec![b"a".to_vec(), b"m".to_vec()],
            row_ranges: vec![range(b"b".to_vec(), Some(b"d".to_vec())), range(b"e".to_vec(), None)],
        };
        assert!(resume_after(&mut set, b"c"));
        assert_eq!(set.row_keys, vec![b"m".to_vec()]);
        assert_eq!(set.row_ranges[0].start_key, Some(StartKey::StartKeyOpen(b"c".to_vec())));
        assert_eq!(set.row_ranges[1].start_key, Some(StartKey::StartKeyClosed(b"e".to_vec())));
        assert!(!resume_after(
            &mut RowSet { row_keys: vec![], row_ranges: vec![range(b"a".to_vec(), Some(b"b".to_vec()))] },
            b"b"
        ));
    }
}
