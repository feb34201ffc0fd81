//! Sizes the fetch calls of a read from the points per series seen so far.
//!
//! A fetch call per series would cost a boundary crossing (and a plugin
//! task) per series; one call for every series would hold them all at once.
//! A chunk aims at a number of points instead: few long series or many
//! short ones make about the same allocation, whatever the range.

/// Chunk lengths for one read: `first` series, then as many as make about
/// `points` points at the density seen so far, at most `most` series.
pub(crate) struct Chunker {
    first: usize,
    most: usize,
    points: u64,
    series_seen: u64,
    points_seen: u64,
}

impl Chunker {
    pub(crate) fn new(first: usize, most: usize, points: u64) -> Chunker {
        Chunker { first, most, points, series_seen: 0, points_seen: 0 }
    }

    /// The length of the next chunk, of the `remaining` series.
    pub(crate) fn next_len(&self, remaining: usize) -> usize {
        let len = if self.series_seen == 0 {
            self.first
        } else {
            let per_series = self.points_seen.div_ceil(self.series_seen).max(1);
            usize::try_from(self.points / per_series).unwrap_or(usize::MAX).clamp(1, self.most)
        };
        len.min(remaining)
    }

    /// Records that a chunk of `series` held `points`.
    pub(crate) fn saw(&mut self, series: usize, points: u64) {
        self.series_seen += series as u64;
        self.points_seen += points;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_the_density_seen() {
        let mut c = Chunker::new(32, 256, 1000);
        assert_eq!(c.next_len(10_000), 32, "nothing seen yet");
        assert_eq!(c.next_len(5), 5, "never more than remain");
        c.saw(32, 32 * 100);
        assert_eq!(c.next_len(10_000), 10, "100 points a series");
        c.saw(10, 10);
        // 3,210 points over 42 series: 77 a series.
        assert_eq!(c.next_len(10_000), 12);
        let mut sparse = Chunker::new(32, 256, 1000);
        sparse.saw(32, 0);
        assert_eq!(sparse.next_len(10_000), 256, "empty series: as many as allowed");
        let mut dense = Chunker::new(32, 256, 1000);
        dense.saw(1, 1_000_000);
        assert_eq!(dense.next_len(10_000), 1, "at least one series");
    }
}
