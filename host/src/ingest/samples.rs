//! The distribution values of a consumed batch, grouped by series into the
//! columnar batches the metric backends take.
//!
//! Kept apart from the points: a batch of plain points never touches this
//! (the index below allocates nothing until a distribution arrives).

use std::collections::HashMap;

use heroic_plugin_api::samples::{SampleBatch, SeriesSamples};
use heroic_plugin_api::types::Series;

/// Distribution values of one batch, by series.
#[derive(Debug, Default)]
pub struct Distributions {
    series: Vec<SeriesSamples>,
    index: HashMap<Series, usize>,
    /// Samples held (before duplicates are dropped).
    pub samples: usize,
    /// Messages whose metrics (past the ingestion filter) were all
    /// distributions: the ones to report as not written when the metric
    /// backends cannot store them.
    pub only_messages: u64,
}

impl Distributions {
    pub fn push(&mut self, series: Series, time: i64, bytes: &[u8]) {
        let list = &mut self.series;
        let i = *self.index.entry(series).or_insert_with_key(|s| {
            list.push(SeriesSamples { series: s.clone(), samples: SampleBatch::new() });
            list.len() - 1
        });
        self.series[i].samples.push(time, bytes);
        self.samples += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.samples == 0
    }

    /// The series, in arrival order.
    pub fn series(&self) -> impl Iterator<Item = &Series> + '_ {
        self.series.iter().map(|ss| &ss.series)
    }

    /// The batches to write: sorted by time, the last of a repeated
    /// timestamp kept (as for points), as backends expect them.
    pub fn into_batches(self) -> Vec<SeriesSamples> {
        let mut series = self.series;
        for ss in &mut series {
            ss.samples.sort_dedup();
        }
        series
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_series_sorted_last_write_wins() {
        let mut d = Distributions::default();
        let (a, b) = (Series::key_only("a"), Series::key_only("b"));
        d.push(a.clone(), 20, b"x");
        d.push(b.clone(), 5, b"y");
        d.push(a.clone(), 10, b"z");
        d.push(a.clone(), 20, b"w");
        assert_eq!(d.samples, 4);
        assert_eq!(d.series().collect::<Vec<_>>(), vec![&a, &b]);
        let batches = d.into_batches();
        let got: Vec<(i64, &[u8])> = batches[0].samples.iter().collect();
        assert_eq!(got, vec![(10, &b"z"[..]), (20, &b"w"[..])]);
        assert_eq!(batches[1].samples.len(), 1);
    }
}
