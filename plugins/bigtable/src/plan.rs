//! Which ReadRows calls answer "points of a series in `(start, end]`".
//!
//! Heroic sends one ReadRows per period with the qualifier filter
//! `(start offset, end offset]` applied to every row, which loses the point
//! at offset 0 of every row after the first. Here the range is turned into
//! the closed range `[start + 1, end]` and split into at most three reads:
//!
//! - the first row, with qualifiers from the start offset on;
//! - the last row, with qualifiers up to the end offset;
//! - every row in between, whole, as one row range (however many periods it
//!   spans, so "the whole time line" is three reads, not 2^32).
//!
//! Each read scans rows by prefix (`series prefix + base`), so every
//! resource variant of a row is found. Bases are signed big-endian, so a
//! range of bases crossing zero is split in two (negative bases sort after
//! positive ones as bytes).

use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::column_range::{EndQualifier, StartQualifier};
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::row_filter::{Chain, Filter};
use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::{ColumnRange, RowFilter, RowSet};
use heroic_plugin_api::types::TimeRange;

use crate::read_rows::range;
use crate::row_key::{base_of, offset_of, prefix_successor, with_base, PERIOD};

/// One ReadRows call of a fetch.
#[derive(Clone, Debug, PartialEq)]
pub struct Read {
    pub rows: RowSet,
    /// Inclusive offsets to read in each row; `None` reads whole rows.
    pub offsets: Option<(u32, u32)>,
}

/// The row set of the rows of `prefix` with a base in `[first, last]`
/// (multiples of [`PERIOD`]), resource variants included.
pub fn rows_between(prefix: &[u8], first: i64, last: i64) -> RowSet {
    let span = |a: i64, b: i64| range(with_base(prefix, a), prefix_successor(&with_base(prefix, b)));
    let row_ranges =
        if first < 0 && last >= 0 { vec![span(first, -PERIOD), span(0, last)] } else { vec![span(first, last)] };
    RowSet { row_keys: Vec::new(), row_ranges }
}

/// The reads covering `(start, end]` for the series with `prefix`.
pub fn plan(prefix: &[u8], range: TimeRange) -> Vec<Read> {
    if range.start >= range.end {
        return Vec::new();
    }
    let (lo, hi) = (range.start + 1, range.end);
    let (first, last) = (base_of(lo), base_of(hi));
    if first == last {
        return vec![Read { rows: rows_between(prefix, first, first), offsets: Some((offset_of(lo), offset_of(hi))) }];
    }
    let whole_or = |from: u32, to: u32| (from != 0 || to != u32::MAX).then_some((from, to));
    let mut reads = vec![
        Read { rows: rows_between(prefix, first, first), offsets: whole_or(offset_of(lo), u32::MAX) },
        Read { rows: rows_between(prefix, last, last), offsets: whole_or(0, offset_of(hi)) },
    ];
    // i128: from i64::MIN to the last base the difference overflows i64.
    if i128::from(last) - i128::from(first) > i128::from(PERIOD) {
        reads.push(Read { rows: rows_between(prefix, first + PERIOD, last - PERIOD), offsets: None });
    }
    reads
}

/// The filter of a read: the family (and offsets) asked for, newest cell
/// only, and without values when only keys and qualifiers matter.
pub fn filter(family: &str, offsets: Option<(u32, u32)>, strip_values: bool) -> RowFilter {
    let (start, end) = match offsets {
        Some((from, to)) => (
            Some(StartQualifier::StartQualifierClosed(from.to_be_bytes().to_vec())),
            Some(EndQualifier::EndQualifierClosed(to.to_be_bytes().to_vec())),
        ),
        None => (None, None),
    };
    let mut filters = vec![
        RowFilter {
            filter: Some(Filter::ColumnRangeFilter(ColumnRange {
                family_name: family.to_string(),
                start_qualifier: start,
                end_qualifier: end,
            })),
        },
        RowFilter { filter: Some(Filter::CellsPerColumnLimitFilter(1)) },
    ];
    if strip_values {
        filters.push(RowFilter { filter: Some(Filter::StripValueTransformer(true)) });
    }
    RowFilter { filter: Some(Filter::Chain(Chain { filters })) }
}

/// The filter of a key listing: one cell per row, no value.
pub fn keys_only_filter() -> RowFilter {
    RowFilter {
        filter: Some(Filter::Chain(Chain {
            filters: vec![
                RowFilter { filter: Some(Filter::CellsPerRowLimitFilter(1)) },
                RowFilter { filter: Some(Filter::StripValueTransformer(true)) },
            ],
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(reads: &[Read]) -> Vec<Option<(u32, u32)>> {
        reads.iter().map(|r| r.offsets).collect()
    }

    #[test]
    fn one_row() {
        let reads = plan(b"p", TimeRange::new(100, 200));
        assert_eq!(offsets(&reads), vec![Some((101, 200))]);
        assert!(plan(b"p", TimeRange::new(5, 5)).is_empty());
    }

    #[test]
    fn starting_on_a_boundary_keeps_offset_zero_of_later_rows() {
        // (P - 2, P]: the last offset of the first row and offset 0 of the second.
        let reads = plan(b"p", TimeRange::new(PERIOD - 2, PERIOD));
        assert_eq!(offsets(&reads), vec![Some((u32::MAX, u32::MAX)), Some((0, 0))]);
        // (P, 3P]: the second row from offset 1, the fourth row's offset 0, the third whole.
        let reads = plan(b"p", TimeRange::new(PERIOD, 3 * PERIOD));
        assert_eq!(offsets(&reads), vec![Some((1, u32::MAX)), Some((0, 0)), None]);
        assert_eq!(reads[2].rows, rows_between(b"p", 2 * PERIOD, 2 * PERIOD));
    }

    #[test]
    fn the_whole_time_line_is_a_handful_of_reads() {
        let reads = plan(b"p", TimeRange::new(i64::MIN, i64::MAX));
        assert_eq!(reads.len(), 3);
        assert_eq!(reads[2].rows.row_ranges.len(), 2, "bases crossing zero are split");
        assert_eq!(offsets(&reads), vec![Some((1, u32::MAX)), None, None]);
    }

    #[test]
    fn row_ranges_cover_resource_variants() {
        let set = rows_between(b"p", PERIOD, PERIOD);
        let start = with_base(b"p", PERIOD);
        let r = &set.row_ranges[0];
        use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::row_range::{EndKey, StartKey};
        assert_eq!(r.start_key, Some(StartKey::StartKeyClosed(start.clone())));
        let Some(EndKey::EndKeyOpen(end)) = &r.end_key else { panic!("open end expected") };
        let mut variant = start.clone();
        variant.extend_from_slice(&[1, 0, 5]);
        assert!(variant.as_slice() < end.as_slice() && variant > start);
    }
}
