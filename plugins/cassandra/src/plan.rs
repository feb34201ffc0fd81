//! Which rows, and which offsets in them, answer "points of a series in
//! `(start, end]`".
//!
//! Heroic's ng schema reads every row of the range with
//! `offset > start offset AND offset <= end offset`, where a row after the
//! first gets start offset 0, so the point at offset 0 of every later row
//! is lost; and a range ending exactly on a row's base skips that row, so
//! the point at `end` is lost too. Here the range becomes the closed range
//! `[start + 1, end]`, clipped to the configured timestamp window, and each
//! row gets exactly its share of it:
//!
//! - rows only partly covered (at most the first and the last) are read
//!   with Heroic's statement and their own bounds ([`RowRead::Part`]);
//! - rows wholly covered are read without bounds ([`RowRead::Whole`]); the
//!   backend packs them into `IN` queries.
//!
//! Partitions are hashed, so there is no row-range scan as in Bigtable:
//! every row of the range is visited, hence the bounded window.

use heroic_plugin_api::types::TimeRange;

use crate::row_key::{base_of, row_span, ROW_WIDTH};

/// One row's part of a fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowRead {
    /// Offsets `after < offset <= upto` of the row with `base`.
    Part { base: i64, after: i32, upto: i32 },
    /// Every offset of the row with `base`.
    Whole { base: i64 },
}

impl RowRead {
    pub fn base(&self) -> i64 {
        match *self {
            RowRead::Part { base, .. } | RowRead::Whole { base } => base,
        }
    }

    /// The timestamps this read covers, inclusive.
    pub fn timestamps(&self) -> (i64, i64) {
        match *self {
            RowRead::Part { base, after, upto } => (base + i64::from(after) + 1, base + i64::from(upto)),
            RowRead::Whole { base } => row_span(base),
        }
    }
}

/// The row reads covering `(range.start, range.end]` within `window`
/// (inclusive bounds), in timestamp order.
pub fn plan(range: TimeRange, window: (i64, i64)) -> Vec<RowRead> {
    let Some(first) = range.start.checked_add(1) else { return Vec::new() };
    let (lo, hi) = (first.max(window.0), range.end.min(window.1));
    if lo > hi {
        return Vec::new();
    }
    let last_base = base_of(hi);
    let mut base = base_of(lo);
    let mut reads = Vec::new();
    loop {
        let (row_first, row_last) = row_span(base);
        let (from, to) = (lo.max(row_first), hi.min(row_last));
        if (from, to) == (row_first, row_last) {
            reads.push(RowRead::Whole { base });
        } else {
            // from - base - 1 >= -(2^31 - 1) and to - base <= 2^31 - 2: both fit.
            reads.push(RowRead::Part { base, after: (from - base - 1) as i32, upto: (to - base) as i32 });
        }
        if base >= last_base {
            break;
        }
        // Bases are consecutive multiples of the width, zero included.
        match base.checked_add(ROW_WIDTH) {
            Some(next) => base = next,
            None => break,
        }
    }
    reads
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: i64 = ROW_WIDTH;
    const WIDE: (i64, i64) = (i64::MIN, i64::MAX);

    /// The reads must cover exactly `[start + 1, end]` ∩ window, in order,
    /// without overlap, each inside its own row.
    fn check_cover(range: TimeRange, window: (i64, i64)) -> Vec<RowRead> {
        let reads = plan(range, window);
        let lo = range.start.saturating_add(1).max(window.0);
        let hi = range.end.min(window.1);
        if range.start == i64::MAX || lo > hi {
            assert!(reads.is_empty(), "{range:?}: {reads:?}");
            return reads;
        }
        let mut next = lo;
        for read in &reads {
            let (first, last) = read.timestamps();
            assert_eq!(first, next, "{range:?}: gap or overlap before {read:?}");
            assert!(first <= last, "{range:?}: empty read {read:?}");
            let (row_first, row_last) = row_span(read.base());
            assert!(row_first <= first && last <= row_last, "{range:?}: {read:?} leaves its row");
            next = last.saturating_add(1);
            if last == i64::MAX {
                break;
            }
        }
        assert_eq!(reads.last().map(|r| r.timestamps().1), Some(hi), "{range:?}: the reads stop early");
        reads
    }

    #[test]
    fn one_row() {
        assert_eq!(check_cover(TimeRange::new(100, 200), WIDE), vec![RowRead::Part { base: 0, after: 100, upto: 200 }]);
        assert!(plan(TimeRange::new(5, 5), WIDE).is_empty());
        assert!(plan(TimeRange::new(9, 5), WIDE).is_empty());
        assert!(plan(TimeRange::new(i64::MAX, i64::MAX), WIDE).is_empty());
    }

    #[test]
    fn offset_zero_of_a_later_row_is_read() {
        // (W - 2, W]: the last offset of row 0 and offset 0 of row W.
        assert_eq!(
            check_cover(TimeRange::new(W - 2, W), WIDE),
            vec![
                RowRead::Part { base: 0, after: i32::MAX - 2, upto: i32::MAX - 1 },
                RowRead::Part { base: W, after: -1, upto: 0 }
            ]
        );
        // (W, 3W]: row W from offset 1, row 2W whole, row 3W's offset 0.
        assert_eq!(
            check_cover(TimeRange::new(W, 3 * W), WIDE),
            vec![
                RowRead::Part { base: W, after: 0, upto: i32::MAX - 1 },
                RowRead::Whole { base: 2 * W },
                RowRead::Part { base: 3 * W, after: -1, upto: 0 }
            ]
        );
    }

    #[test]
    fn negative_timestamps_and_row_zero() {
        // Row -W holds (-2W, -W], row 0 holds (-W, W), row W holds [W, 2W).
        assert_eq!(
            check_cover(TimeRange::new(-W - 5, W + 5), WIDE),
            vec![
                RowRead::Part { base: -W, after: -5, upto: 0 },
                RowRead::Whole { base: 0 },
                RowRead::Part { base: W, after: -1, upto: 5 }
            ]
        );
        assert_eq!(check_cover(TimeRange::new(-10, -1), WIDE), vec![RowRead::Part { base: 0, after: -10, upto: -1 }]);
        assert_eq!(check_cover(TimeRange::new(-W - 1, -W), WIDE), vec![RowRead::Part { base: -W, after: -1, upto: 0 }]);
    }

    #[test]
    fn the_window_clips_and_bounds_the_whole_time_line() {
        let window = (0, (1 << 42) - 1);
        let reads = check_cover(TimeRange::new(i64::MIN, i64::MAX), window);
        assert_eq!(reads.len(), 2049);
        assert_eq!(reads[0], RowRead::Part { base: 0, after: -1, upto: i32::MAX - 1 });
        assert!(reads[1..2048].iter().all(|r| matches!(r, RowRead::Whole { .. })));
        assert!(matches!(reads[2048], RowRead::Part { base, after: -1, .. } if base == 2048 * W));
        // Negative timestamps are outside the default window.
        assert_eq!(
            check_cover(TimeRange::new(-100, 100), window),
            vec![RowRead::Part { base: 0, after: -1, upto: 100 }]
        );
        assert!(plan(TimeRange::new(-100, -1), window).is_empty());
        assert!(plan(TimeRange::new(1 << 42, i64::MAX), window).is_empty());
    }

    #[test]
    fn ranges_around_boundaries_are_covered_exactly() {
        let edges = [-2 * W, -W - 1, -W, -W + 1, -1, 0, 1, W - 1, W, W + 1, 2 * W, 300 * W, 300 * W + 7];
        for &start in &edges {
            for &end in &edges {
                for delta in [-1, 0, 1] {
                    check_cover(TimeRange::new(start, end + delta), WIDE);
                    check_cover(TimeRange::new(start, end + delta), (0, 400 * W));
                }
            }
        }
        check_cover(TimeRange::new(i64::MAX - 3 * W, i64::MAX), WIDE);
        check_cover(TimeRange::new(i64::MIN, i64::MIN + 3 * W), WIDE);
    }
}
