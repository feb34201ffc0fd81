//! Aggregations: the model parsed from JSON or HQL ([`Aggregation`]), the
//! resolved tree with bucket sizes ([`AggregationInstance`]) and its
//! streaming execution ([`AggregationSession`]).

mod bucket;
mod cardinality;
mod dsl;
mod instance;
mod json;
mod post;
mod pushdown;
mod result;
mod session;

pub use bucket::{BucketMapping, BucketStrategy, MAX_BUCKET_COUNT};
pub use instance::AggregationInstance;
pub use pushdown::Pushdown;
pub use result::{group_hash, murmur3_32, series_key, GroupKey, MetricValues, ResultGroup, SpreadValue, TagValueSets};
pub use session::AggregationSession;

use serde_json::{json, Value};

use crate::duration::Duration;

/// How `cardinality` counts distinct values.
#[derive(Clone, Debug, PartialEq)]
pub enum CardinalityMethod {
    /// Exact distinct count (a set of hashes per bucket).
    Exact { include_key: bool },
    /// HyperLogLog with a relative error (`precision`, default 0.01).
    Hll { precision: f64, include_key: bool },
    /// HyperLogLog++ with `precision` index bits (default 16, 4..=18).
    Hllp { precision: u8, include_key: bool },
}

impl Default for CardinalityMethod {
    fn default() -> Self {
        CardinalityMethod::Hllp { precision: 16, include_key: false }
    }
}

/// The per-bucket reducers.
#[derive(Clone, Debug, PartialEq)]
pub enum BucketKind {
    Sum,
    Sum2,
    Average,
    Min,
    Max,
    Count,
    StdDev,
    Spread,
    Quantile {
        q: f64,
        error: f64,
    },
    RatePerSecond,
    Cardinality(CardinalityMethod),
    /// `tpl`, Heroic's template aggregation: 0 for every bucket.
    Template,
    /// `group-unique`: the distinct samples of each bucket (by timestamp,
    /// the first to arrive wins, as in Heroic's `GroupUniqueBucket`), as a
    /// `groups` collection.
    GroupUnique,
}

impl BucketKind {
    /// The bucket aggregations that take no parameters, by the name JSON
    /// (`{"type": …}`) and HQL (`sum(1m)`) both use: the one list the
    /// parsers and [`BucketKind::name`] read.
    pub const SIMPLE: [(&'static str, BucketKind); 11] = [
        ("sum", BucketKind::Sum),
        ("sum2", BucketKind::Sum2),
        ("average", BucketKind::Average),
        ("min", BucketKind::Min),
        ("max", BucketKind::Max),
        ("count", BucketKind::Count),
        ("stddev", BucketKind::StdDev),
        ("spread", BucketKind::Spread),
        ("ratePerSecond", BucketKind::RatePerSecond),
        ("tpl", BucketKind::Template),
        // Not reachable from HQL, whose names cannot hold a `-` (nor in Heroic).
        ("group-unique", BucketKind::GroupUnique),
    ];

    /// The parameterless bucket aggregation called `name`.
    pub fn simple(name: &str) -> Option<BucketKind> {
        Self::SIMPLE.iter().find(|(n, _)| *n == name).map(|(_, k)| k.clone())
    }

    pub fn name(&self) -> &'static str {
        match self {
            BucketKind::Quantile { .. } => "quantile",
            BucketKind::Cardinality(_) => "cardinality",
            simple => Self::SIMPLE.iter().find(|(_, k)| k == simple).map_or("unknown", |(n, _)| n),
        }
    }
}

/// Which groups a filtering aggregation keeps.
#[derive(Clone, Debug, PartialEq)]
pub enum FilterK {
    /// The `k` groups with the largest area under the curve.
    TopK(u64),
    /// The `k` groups with the smallest area.
    BottomK(u64),
    /// Groups whose maximum is above `k`.
    AboveK(f64),
    /// Groups whose minimum is below `k`.
    BelowK(f64),
}

/// An aggregation as the user wrote it; sizes may be unset (they default
/// from the query range when the aggregation is [applied](Aggregation::apply)).
#[derive(Clone, Debug, PartialEq)]
pub enum Aggregation {
    /// No down-sampling: series with the same group key are merged.
    Empty,
    /// `of = None`: one group per tag set; `Some([])`: one group.
    Group {
        of: Option<Vec<String>>,
        each: Box<Aggregation>,
    },
    /// Key = the tags minus `of` (`None`: one group).
    Collapse {
        of: Option<Vec<String>>,
        each: Box<Aggregation>,
    },
    Chain(Vec<Aggregation>),
    /// Default size/extent for the inner aggregation.
    Options {
        size: Option<Duration>,
        extent: Option<Duration>,
        aggregation: Box<Aggregation>,
    },
    Bucket {
        kind: BucketKind,
        size: Option<Duration>,
        extent: Option<Duration>,
    },
    /// Merges t-digest sketches into percentiles. Its input is
    /// `distributionPoints`, which the plugin interface does not carry yet:
    /// it is parsed and planned so that a batch using it does not fail, and
    /// the host answers such a query with no groups and an error.
    Tdigest {
        size: Option<Duration>,
        extent: Option<Duration>,
    },
    Delta,
    DeltaPerSecond,
    NotNegative,
    Filter(FilterK),
    PointsAbove(f64),
    PointsBelow(f64),
}

impl Aggregation {
    /// A chain of the given aggregations (one element: itself; none: empty).
    pub fn chain(mut items: Vec<Aggregation>) -> Aggregation {
        match items.len() {
            0 => Aggregation::Empty,
            1 => items.pop().expect("one"),
            _ => Aggregation::Chain(items),
        }
    }

    /// Serialises in Heroic's aggregation JSON (the form [`Aggregation::from_json`] reads).
    pub fn to_json(&self) -> Value {
        let dur = |d: &Option<Duration>| d.map(|d| Value::from(d.to_string()));
        match self {
            Aggregation::Empty => json!({"type": "empty"}),
            Aggregation::Group { of, each } => json!({"type": "group", "of": of, "each": each.to_json()}),
            Aggregation::Collapse { of, each } => json!({"type": "collapse", "of": of, "each": each.to_json()}),
            Aggregation::Chain(c) => {
                json!({"type": "chain", "chain": c.iter().map(Aggregation::to_json).collect::<Vec<_>>()})
            }
            Aggregation::Options { size, extent, aggregation } => json!({
                "type": "opts",
                "sampling": {"size": dur(size), "extent": dur(extent)},
                "aggregation": aggregation.to_json(),
            }),
            Aggregation::Bucket { kind, size, extent } => {
                let mut v = json!({"type": kind.name(), "size": dur(size), "extent": dur(extent)});
                match kind {
                    BucketKind::Quantile { q, error } => {
                        v["q"] = json!(q);
                        v["error"] = json!(error);
                    }
                    BucketKind::Cardinality(m) => {
                        v["method"] = match m {
                            CardinalityMethod::Exact { include_key } => {
                                json!({"type": "exact", "includeKey": include_key})
                            }
                            CardinalityMethod::Hll { precision, include_key } => {
                                json!({"type": "hll", "precision": precision, "includeKey": include_key})
                            }
                            CardinalityMethod::Hllp { precision, include_key } => {
                                json!({"type": "hllp", "precision": precision, "includeKey": include_key})
                            }
                        }
                    }
                    _ => {}
                }
                v
            }
            Aggregation::Tdigest { size, extent } => {
                json!({"type": "tdigest", "size": dur(size), "extent": dur(extent)})
            }
            Aggregation::Delta => json!({"type": "delta"}),
            Aggregation::DeltaPerSecond => json!({"type": "deltaPerSecond"}),
            Aggregation::NotNegative => json!({"type": "notNegative"}),
            Aggregation::Filter(FilterK::TopK(k)) => json!({"type": "topk", "k": k}),
            Aggregation::Filter(FilterK::BottomK(k)) => json!({"type": "bottomk", "k": k}),
            Aggregation::Filter(FilterK::AboveK(k)) => json!({"type": "abovek", "k": k}),
            Aggregation::Filter(FilterK::BelowK(k)) => json!({"type": "belowk", "k": k}),
            Aggregation::PointsAbove(t) => json!({"type": "pointsabove", "threshold": t}),
            Aggregation::PointsBelow(t) => json!({"type": "pointsbelow", "threshold": t}),
        }
    }
}

#[cfg(test)]
mod tests;

/// Parses aggregation JSON with errors reported under `path`.
pub(crate) fn json_at(v: &serde_json::Value, path: &str) -> crate::error::Result<Aggregation> {
    json::parse(v, path)
}
