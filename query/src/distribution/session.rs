//! Queries of `distributionPoints` (or `tdigestPoints`, sketches too): the
//! raw samples, or `tdigest`, which merges the sketches of each group per
//! bucket and answers Heroic's
//! `TDigestAggregationCombiner` shape: three point series per group, the
//! 50th, 75th and 99th percentiles, each with the tag `tdigeststat` set to
//! `P50`, `P75` or `P99` on every series of the group.

use std::collections::{HashMap, HashSet};

use heroic_plugin_api::samples::{SampleBatch, SampleKind};
use heroic_plugin_api::types::{Series, Tag, TimeRange};

use super::codec::{decode, SketchError};
use crate::aggregation::{
    series_key, AggregationInstance, BucketMapping, BucketStrategy, GroupKey, MetricValues, ResultGroup,
};
use crate::error::{QueryError, Result};

/// The statistics the combiner emits, with Heroic's names.
pub const PERCENTILES: [(&str, f64); 3] = [("P50", 0.50), ("P75", 0.75), ("P99", 0.99)];

/// The tag the combiner sets on the series of each percentile's group.
pub const STAT_TAG: &str = "tdigeststat";

/// Digests held per bucket before they are merged into one: merging in
/// batches is far cheaper than one merge per sample.
const MERGE_BATCH: usize = 32;

/// How the groups of a tdigest query are keyed.
#[derive(Clone, Debug)]
enum Grouping {
    /// Every series in one group (top-level `tdigest`).
    All,
    /// `group` (`collapse: false`) or `collapse` by these tags (`None`: every tag).
    By { collapse: bool, of: Option<Vec<String>> },
}

#[derive(Default)]
struct RawGroup {
    series: HashSet<Series>,
    samples: Vec<(i64, Vec<u8>)>,
}

struct DigestGroup {
    series: HashSet<Series>,
    /// Per bucket: digests not merged yet (the first is the merged rest).
    buckets: Vec<Vec<tdigest::TDigest>>,
}

enum Mode {
    Raw(HashMap<GroupKey, RawGroup>),
    Tdigest { grouping: Grouping, mapping: BucketMapping, cadence: i64, groups: HashMap<GroupKey, DigestGroup> },
}

/// A running distribution query: feed it with [`update`](Self::update),
/// then call [`finish`](Self::finish).
pub struct DistributionSession {
    mode: Mode,
    retained: u64,
    /// The kind read, which names the raw samples' collection.
    kind: SampleKind,
}

/// A stored sample that is not a sketch: the query's error names the series.
fn bad_sample(series: &Series, t: i64, e: SketchError) -> QueryError {
    QueryError::Invalid(format!("distribution sample of series {:?} at {t} does not decode: {e}", series.key.as_str()))
}

impl DistributionSession {
    /// A session for `instance` over `range`: `empty` returns the samples,
    /// `tdigest`, `group{each: tdigest}` and `collapse{each: tdigest}`
    /// merge them. Other shapes (a tdigest inside a chain, say) are refused
    /// with [`QueryError::Layout`], an error of this query alone.
    pub fn new(instance: &AggregationInstance, range: TimeRange, strategy: BucketStrategy) -> Result<Self> {
        let tdigest = |grouping: Grouping, each: &AggregationInstance| {
            match each {
            AggregationInstance::Tdigest { size, extent } => {
                let mapping = BucketMapping::new(range, *size, *extent, strategy)?;
                Ok(Mode::Tdigest { grouping, mapping, cadence: *size, groups: HashMap::new() })
            }
            other => Err(QueryError::Layout(format!(
                "distributionPoints and tdigestPoints can be read raw (empty), or merged by tdigest, group or collapse of tdigest; \
                 not by {other:?}"
            ))),
        }
        };
        let mode = match instance {
            AggregationInstance::Empty => Mode::Raw(HashMap::new()),
            AggregationInstance::Group { of, each } => tdigest(Grouping::By { collapse: false, of: of.clone() }, each)?,
            AggregationInstance::Collapse { of, each } => {
                tdigest(Grouping::By { collapse: true, of: of.clone() }, each)?
            }
            AggregationInstance::Chain(items) if items.len() == 1 => return Self::new(&items[0], range, strategy),
            other => tdigest(Grouping::All, other)?,
        };
        Ok(DistributionSession { mode, retained: 0, kind: SampleKind::DISTRIBUTION })
    }

    /// The session reading `kind` instead of distribution points: raw
    /// samples of [`SampleKind::TDIGEST`] are answered as `tdigestPoints`.
    pub fn reading(mut self, kind: SampleKind) -> Self {
        self.kind = kind;
        self
    }

    /// Samples and digests held, for the node's retained-data budget.
    pub fn retained(&self) -> u64 {
        self.retained
    }

    /// Feeds the samples of one series (read with its resource tags).
    pub fn update(&mut self, series: &Series, samples: &SampleBatch) -> Result<()> {
        let key = series_key(series);
        match &mut self.mode {
            Mode::Raw(groups) => {
                let g = groups.entry(key).or_default();
                g.series.insert(series.clone());
                g.samples.extend(samples.iter().map(|(t, v)| (t, v.to_vec())));
                self.retained += samples.len() as u64;
            }
            Mode::Tdigest { grouping, mapping, groups, .. } => {
                let key = match grouping {
                    Grouping::All => GroupKey::new(),
                    Grouping::By { collapse: false, of: None } => key,
                    Grouping::By { collapse: false, of: Some(of) } => {
                        of.iter().filter_map(|k| key.get(k).map(|v| (k.clone(), v.clone()))).collect()
                    }
                    Grouping::By { collapse: true, of: None } => GroupKey::new(),
                    Grouping::By { collapse: true, of: Some(of) } => {
                        key.into_iter().filter(|(k, _)| !of.contains(k)).collect()
                    }
                };
                let g = groups.entry(key).or_insert_with(|| DigestGroup {
                    series: HashSet::new(),
                    buckets: (0..mapping.count()).map(|_| Vec::new()).collect(),
                });
                g.series.insert(series.clone());
                for (t, bytes) in samples.iter() {
                    let sketch = decode(bytes).map_err(|e| bad_sample(series, t, e))?;
                    if sketch.count() <= 0.0 {
                        continue; // Heroic skips empty sketches.
                    }
                    let digest = sketch.to_tdigest();
                    for i in mapping.map(t) {
                        let pending = &mut g.buckets[i];
                        pending.push(digest.clone());
                        self.retained += 1;
                        if pending.len() >= MERGE_BATCH {
                            let merged = tdigest::TDigest::merge_digests(std::mem::take(pending));
                            self.retained -= MERGE_BATCH as u64 - 1;
                            pending.push(merged);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The result groups: per key the raw samples (sorted by time), or the
    /// three percentile groups of each tdigest group, sorted by key then
    /// statistic.
    pub fn finish(self) -> Vec<ResultGroup> {
        let mut out = Vec::new();
        match self.mode {
            Mode::Raw(groups) => {
                for (key, mut g) in groups {
                    g.samples.sort_by_key(|s| s.0);
                    let mut series: Vec<Series> = g.series.into_iter().collect();
                    series.sort();
                    let values = if self.kind == SampleKind::TDIGEST {
                        MetricValues::TdigestPoints(g.samples)
                    } else {
                        MetricValues::Distributions(g.samples)
                    };
                    out.push(ResultGroup { key, series, cadence: 0, values });
                }
            }
            Mode::Tdigest { mapping, cadence, groups, .. } => {
                for (key, g) in groups {
                    let mut stats: [Vec<(i64, f64)>; 3] = Default::default();
                    for (i, pending) in g.buckets.into_iter().enumerate() {
                        if pending.is_empty() {
                            continue; // An empty bucket gives no point (Heroic: invalid).
                        }
                        let digest = tdigest::TDigest::merge_digests(pending);
                        let t = mapping.timestamp(i);
                        for (s, (_, q)) in stats.iter_mut().zip(PERCENTILES) {
                            s.push((t, digest.estimate_quantile(q).unwrap_or(f64::NAN)));
                        }
                    }
                    if stats[0].is_empty() {
                        continue;
                    }
                    for (points, (name, _)) in stats.into_iter().zip(PERCENTILES) {
                        let mut series: Vec<Series> = g.series.iter().map(|s| with_stat(s, name)).collect();
                        series.sort();
                        out.push(ResultGroup {
                            key: key.clone(),
                            series,
                            cadence,
                            values: MetricValues::Points(points),
                        });
                    }
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| a.series.cmp(&b.series)));
        out
    }
}

/// The series with `tdigeststat` set to `stat` (replacing any such tag).
fn with_stat(series: &Series, stat: &str) -> Series {
    let mut s = series.clone();
    let mut tags: Vec<Tag> = s.tags.into_iter().filter(|t| t.key.as_str() != STAT_TAG).collect();
    tags.push(Tag::new(STAT_TAG, stat));
    tags.sort();
    s.tags = tags.into();
    s
}
