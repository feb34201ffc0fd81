//! The in-memory head: points acknowledged since the last flush, per series,
//! in write order. Plus the helpers that turn several sources of points for
//! one series into one sorted run where the newest write wins.

use std::collections::HashMap;
use std::time::Instant;

use heroic_plugin_api::types::TimeRange;

/// Points of one series in write order.
#[derive(Default)]
pub(crate) struct Buf {
    pub(crate) ts: Vec<i64>,
    pub(crate) vals: Vec<f64>,
    /// Timestamps strictly increasing, so no sort is needed to read.
    sorted: bool,
}

pub(crate) struct Head {
    pub(crate) series: HashMap<u64, Buf>,
    pub(crate) points: usize,
    pub(crate) created: Instant,
    /// When points were last appended (for the idle flush).
    pub(crate) last_write: Instant,
}

impl Default for Head {
    fn default() -> Self {
        let now = Instant::now();
        Head { series: HashMap::new(), points: 0, created: now, last_write: now }
    }
}

impl Head {
    /// Appends little-endian timestamps and values (as the write-ahead log
    /// holds them); both slices are `8 × n` bytes.
    pub(crate) fn append_le(&mut self, id: u64, ts: &[u8], vals: &[u8]) {
        let buf = self.series.entry(id).or_insert_with(|| Buf { sorted: true, ..Buf::default() });
        let start = buf.ts.len();
        buf.ts.extend(ts.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))));
        buf.vals.extend(vals.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))));
        if buf.sorted {
            let from = start.saturating_sub(1);
            buf.sorted = buf.ts[from..].windows(2).all(|w| w[0] < w[1]);
        }
        self.points += buf.ts.len() - start;
        self.last_write = Instant::now();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The points of `id` in `range`, sorted and unique (last write wins).
    pub(crate) fn collect(&self, id: u64, range: TimeRange) -> Option<Run> {
        let buf = self.series.get(&id)?;
        let mut run = Run::default();
        if buf.sorted {
            let lo = buf.ts.partition_point(|&t| t <= range.start);
            let hi = buf.ts.partition_point(|&t| t <= range.end);
            run.ts.extend_from_slice(&buf.ts[lo..hi]);
            run.vals.extend_from_slice(&buf.vals[lo..hi]);
        } else {
            for (&t, &v) in buf.ts.iter().zip(&buf.vals) {
                if range.contains(t) {
                    run.ts.push(t);
                    run.vals.push(v);
                }
            }
            sort_dedup(&mut run.ts, &mut run.vals);
        }
        (!run.ts.is_empty()).then_some(run)
    }

    /// Every series with its points sorted and unique, for a flush.
    pub(crate) fn sorted_series(&self) -> Vec<(u64, Run)> {
        let mut out: Vec<(u64, Run)> = self
            .series
            .iter()
            .filter(|(_, b)| !b.ts.is_empty())
            .map(|(&id, b)| {
                let mut run = Run { ts: b.ts.clone(), vals: b.vals.clone() };
                if !b.sorted {
                    sort_dedup(&mut run.ts, &mut run.vals);
                }
                (id, run)
            })
            .collect();
        out.sort_unstable_by_key(|(id, _)| *id);
        out
    }
}

/// A sorted run of unique timestamps with their values.
#[derive(Default, Debug, Clone, PartialEq)]
pub(crate) struct Run {
    pub(crate) ts: Vec<i64>,
    pub(crate) vals: Vec<f64>,
}

impl Run {
    pub(crate) fn len(&self) -> usize {
        self.ts.len()
    }
    /// Keeps only the points in `range` (the run is sorted).
    pub(crate) fn trim(&mut self, range: TimeRange) {
        let lo = self.ts.partition_point(|&t| t <= range.start);
        let hi = self.ts.partition_point(|&t| t <= range.end);
        if lo == 0 && hi == self.ts.len() {
            return;
        }
        self.ts.truncate(hi);
        self.vals.truncate(hi);
        self.ts.drain(..lo);
        self.vals.drain(..lo);
    }
}

/// Sorts by timestamp; among equal timestamps the one written last wins.
pub(crate) fn sort_dedup(ts: &mut Vec<i64>, vals: &mut Vec<f64>) {
    if ts.windows(2).all(|w| w[0] < w[1]) {
        return;
    }
    let mut pairs: Vec<(i64, f64)> = ts.iter().copied().zip(vals.iter().copied()).collect();
    pairs.sort_by_key(|p| p.0); // stable: later writes stay later
    ts.clear();
    vals.clear();
    for (t, v) in pairs {
        if ts.last() == Some(&t) {
            *vals.last_mut().expect("same length") = v;
        } else {
            ts.push(t);
            vals.push(v);
        }
    }
}

/// Merges runs given oldest first into one; a newer run wins on equal
/// timestamps. Runs that do not overlap (the common case: each flush covers
/// later times than the previous one) are just concatenated.
pub(crate) fn merge_runs(mut runs: Vec<Run>) -> Run {
    runs.retain(|r| !r.ts.is_empty());
    match runs.len() {
        0 => return Run::default(),
        1 => return runs.pop().expect("one run"),
        _ => {}
    }
    // Keep the priority (the position in the input) and order by first timestamp.
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by_key(|&i| runs[i].ts[0]);
    let disjoint = order.windows(2).all(|w| runs[w[0]].ts.last() < runs[w[1]].ts.first());
    let total: usize = runs.iter().map(Run::len).sum();
    let mut out = Run { ts: Vec::with_capacity(total), vals: Vec::with_capacity(total) };
    if disjoint {
        for i in order {
            out.ts.extend_from_slice(&runs[i].ts);
            out.vals.extend_from_slice(&runs[i].vals);
        }
        return out;
    }
    // Overlap: the runs are in priority order, so concatenating them and
    // doing a stable sort keeps the newest value last for each timestamp.
    for r in &runs {
        out.ts.extend_from_slice(&r.ts);
        out.vals.extend_from_slice(&r.vals);
    }
    sort_dedup(&mut out.ts, &mut out.vals);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(points: &[(i64, f64)]) -> Run {
        Run { ts: points.iter().map(|p| p.0).collect(), vals: points.iter().map(|p| p.1).collect() }
    }

    fn append(h: &mut Head, id: u64, ts: &[i64], vals: &[f64]) {
        let le = |x: &mut dyn Iterator<Item = [u8; 8]>| x.flatten().collect::<Vec<u8>>();
        let ts = le(&mut ts.iter().map(|t| t.to_le_bytes()));
        let vals = le(&mut vals.iter().map(|v| v.to_le_bytes()));
        h.append_le(id, &ts, &vals);
    }

    #[test]
    fn head_dedups_last_write_wins() {
        let mut h = Head::default();
        append(&mut h, 1, &[5, 3, 5], &[1.0, 2.0, 3.0]);
        assert!(!h.series[&1].sorted);
        append(&mut h, 1, &[3], &[4.0]);
        append(&mut h, 2, &[1, 2], &[0.0, 0.0]);
        append(&mut h, 2, &[3], &[0.0]);
        assert!(h.series[&2].sorted);
        assert_eq!(h.points, 7);
        let r = h.collect(1, TimeRange::ALL).unwrap();
        assert_eq!(r, run(&[(3, 4.0), (5, 3.0)]));
        assert_eq!(h.collect(1, TimeRange::new(3, 5)).unwrap(), run(&[(5, 3.0)]));
        assert!(h.collect(9, TimeRange::ALL).is_none());
    }

    #[test]
    fn merge_prefers_newer_runs() {
        let old = run(&[(1, 1.0), (2, 1.0), (3, 1.0)]);
        let new = run(&[(2, 9.0), (4, 9.0)]);
        let m = merge_runs(vec![old.clone(), new.clone()]);
        assert_eq!(m, run(&[(1, 1.0), (2, 9.0), (3, 1.0), (4, 9.0)]));
        let later = run(&[(10, 2.0)]);
        let m = merge_runs(vec![later, old]);
        assert_eq!(m.ts, vec![1, 2, 3, 10]);
    }

    #[test]
    fn trim_is_start_exclusive_end_inclusive() {
        let mut r = run(&[(99, 0.0), (100, 0.0), (101, 0.0), (199, 0.0), (200, 0.0), (201, 0.0)]);
        r.trim(TimeRange::new(100, 200));
        assert_eq!(r.ts, vec![101, 199, 200]);
    }
}
