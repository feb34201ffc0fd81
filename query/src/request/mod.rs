//! The `/query/metrics` and `/query/batch` request bodies, and planning a
//! request into what the host must do ([`QueryPlan`]).

use std::collections::BTreeSet;

use heroic_plugin_api::types::TimeRange;
use serde_json::{json, Value};

use crate::aggregation::BucketStrategy;
use crate::duration::TimeUnit;
use crate::error::{join_path, QueryError, Result};

/// What kind of data a query reads (Heroic's `MetricType` identifiers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    Points,
    Spreads,
    Groups,
    Cardinality,
    DistributionPoints,
    TdigestPoints,
}

impl Source {
    pub fn from_identifier(s: &str) -> Option<Source> {
        Some(match s {
            "points" => Source::Points,
            "spreads" => Source::Spreads,
            "groups" => Source::Groups,
            "cardinality" => Source::Cardinality,
            "distributionPoints" => Source::DistributionPoints,
            "tdigestPoints" => Source::TdigestPoints,
            _ => return None,
        })
    }

    pub fn identifier(self) -> &'static str {
        match self {
            Source::Points => "points",
            Source::Spreads => "spreads",
            Source::Groups => "groups",
            Source::Cardinality => "cardinality",
            Source::DistributionPoints => "distributionPoints",
            Source::TdigestPoints => "tdigestPoints",
        }
    }
}

/// A query range as written: relative to now, or absolute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryRange {
    /// The last `value` `unit`s before now.
    Relative { unit: TimeUnit, value: i64 },
    /// `(start, end]` in milliseconds.
    Absolute { start: i64, end: i64 },
}

impl QueryRange {
    /// The range in milliseconds for a given `now`.
    pub fn resolve(&self, now: i64) -> TimeRange {
        match *self {
            QueryRange::Relative { unit, value } => {
                TimeRange::new(now.saturating_sub(value.saturating_mul(unit.millis())), now)
            }
            QueryRange::Absolute { start, end } => TimeRange::new(start, end),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            QueryRange::Relative { unit, value } => {
                json!({"type": "relative", "unit": unit.java_name(), "value": value})
            }
            QueryRange::Absolute { start, end } => json!({"type": "absolute", "start": start, "end": end}),
        }
    }

    /// `{"type":"absolute","start","end"}` or `{"type":"relative","unit","value"}`
    /// (unit: a Java `TimeUnit` name, any case; default DAYS as in Heroic).
    pub fn from_json(v: &Value, path: &str) -> Result<QueryRange> {
        let obj = v.as_object().ok_or_else(|| QueryError::json(path, format!("expected a range object, got {v}")))?;
        let int = |name: &str| -> Result<i64> {
            let f = obj.get(name).ok_or_else(|| QueryError::json(path, format!("range: missing field '{name}'")))?;
            f.as_i64().ok_or_else(|| QueryError::json(&join_path(path, name), format!("expected an integer, got {f}")))
        };
        match obj.get("type").and_then(Value::as_str) {
            Some("absolute") => {
                let (start, end) = (int("start")?, int("end")?);
                if start > end {
                    return Err(QueryError::json(path, format!("range start {start} is after end {end}")));
                }
                Ok(QueryRange::Absolute { start, end })
            }
            Some("relative") => {
                let unit = match obj.get("unit") {
                    None | Some(Value::Null) => TimeUnit::Days,
                    Some(Value::String(u)) => TimeUnit::from_java_name(u).ok_or_else(|| {
                        QueryError::json(
                            &join_path(path, "unit"),
                            format!(
                                "unknown time unit \"{u}\" (expected MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS)"
                            ),
                        )
                    })?,
                    Some(other) => {
                        return Err(QueryError::json(
                            &join_path(path, "unit"),
                            format!("expected a string, got {other}"),
                        ))
                    }
                };
                let value = int("value")?;
                if value < 0 {
                    return Err(QueryError::json(&join_path(path, "value"), "a relative range must not be negative"));
                }
                Ok(QueryRange::Relative { unit, value })
            }
            Some(other) => Err(QueryError::json(
                &join_path(path, "type"),
                format!("unknown range type \"{other}\" (expected absolute or relative)"),
            )),
            None => Err(QueryError::json(path, "range: missing field 'type'")),
        }
    }
}

/// Heroic's query features.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    DistributedAggregations,
    ShiftRange,
    SlicedDataFetch,
    EndBucket,
    CacheQuery,
    MetadataLiveCursor,
}

impl Feature {
    const ALL: [(Feature, &'static str); 6] = [
        (Feature::DistributedAggregations, "distributed_aggregations"),
        (Feature::ShiftRange, "shift_range"),
        (Feature::SlicedDataFetch, "sliced_data_fetch"),
        // sic: Heroic's id has the typo.
        (Feature::EndBucket, "end_bucket_stategy"),
        (Feature::CacheQuery, "cache_query"),
        (Feature::MetadataLiveCursor, "metadata.live_cursor"),
    ];

    /// Parses a feature id with or without the `com.spotify.heroic.` prefix.
    pub fn parse(s: &str) -> Option<Feature> {
        let short = s.strip_prefix("com.spotify.heroic.").unwrap_or(s);
        Feature::ALL.iter().find(|(_, id)| *id == short).map(|(f, _)| *f)
    }

    pub fn id(self) -> String {
        let short = Feature::ALL.iter().find(|(f, _)| *f == self).map(|(_, id)| *id).unwrap_or_default();
        format!("com.spotify.heroic.{short}")
    }
}

/// Features to turn on and off (`["shift_range", "-cache_query"]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeatureSet {
    pub enabled: BTreeSet<Feature>,
    pub disabled: BTreeSet<Feature>,
}

impl FeatureSet {
    /// Heroic's defaults: `shift_range` and `end_bucket_stategy` on.
    pub fn heroic_defaults() -> Self {
        FeatureSet { enabled: [Feature::ShiftRange, Feature::EndBucket].into(), disabled: BTreeSet::new() }
    }

    /// Parses a list of feature names; a leading `-` disables.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> std::result::Result<Self, String> {
        let mut set = FeatureSet::default();
        for name in names {
            let (off, id) = match name.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, name),
            };
            let f = Feature::parse(id).ok_or_else(|| format!("unknown feature \"{name}\""))?;
            if off {
                set.enabled.remove(&f);
                set.disabled.insert(f);
            } else {
                set.disabled.remove(&f);
                set.enabled.insert(f);
            }
        }
        Ok(set)
    }

    fn from_json(v: &Value, path: &str) -> Result<Self> {
        let items =
            v.as_array().ok_or_else(|| QueryError::json(path, format!("expected a list of feature names, got {v}")))?;
        let names = items
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.as_str().ok_or_else(|| {
                    QueryError::json(&format!("{path}[{i}]"), format!("expected a feature name, got {s}"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        FeatureSet::parse(names).map_err(|m| QueryError::json(path, m))
    }

    /// `self` overridden by `other` (a request's features over the config's).
    pub fn combine(&self, other: &FeatureSet) -> FeatureSet {
        let mut out = self.clone();
        for f in &other.enabled {
            out.disabled.remove(f);
            out.enabled.insert(*f);
        }
        for f in &other.disabled {
            out.enabled.remove(f);
            out.disabled.insert(*f);
        }
        out
    }

    pub fn has(&self, f: Feature) -> bool {
        self.enabled.contains(&f)
    }
}

/// How much of a query's trace to answer with (`options.tracing`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tracing {
    /// `false` or `"none"`: the shards' traces are `null`.
    None,
    /// Absent, `true` or `"default"`: a trace per shard and node.
    #[default]
    Default,
    /// `"detailed"`: also one entry per fetch.
    Detailed,
}

/// `options` of a query. Unset fields fall back to the config's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryOptions {
    pub bucket_strategy: Option<BucketStrategy>,
    pub tracing: Option<Tracing>,
    pub fetch_size: Option<u64>,
    pub data_limit: Option<u64>,
    pub aggregation_limit: Option<u64>,
    pub group_limit: Option<u64>,
    pub series_limit: Option<u64>,
    pub fail_on_limits: Option<bool>,
}

impl QueryOptions {
    fn from_json(v: &Value, path: &str) -> Result<Self> {
        let obj =
            v.as_object().ok_or_else(|| QueryError::json(path, format!("expected an options object, got {v}")))?;
        let field = |name: &str| obj.get(name).filter(|v| !v.is_null());
        let limit = |name: &str| -> Result<Option<u64>> {
            field(name)
                .map(|v| {
                    v.as_u64().ok_or_else(|| {
                        QueryError::json(&join_path(path, name), format!("expected a non-negative integer, got {v}"))
                    })
                })
                .transpose()
        };
        let bucket_strategy = field("bucketStrategy")
            .map(|v| {
                v.as_str().and_then(BucketStrategy::parse).ok_or_else(|| {
                    QueryError::json(
                        &join_path(path, "bucketStrategy"),
                        format!("expected \"start\" or \"end\", got {v}"),
                    )
                })
            })
            .transpose()?;
        let tracing = match field("tracing") {
            None => None,
            Some(Value::Bool(true)) => Some(Tracing::Default),
            Some(Value::Bool(false)) => Some(Tracing::None),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("NONE") => Some(Tracing::None),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("DEFAULT") => Some(Tracing::Default),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("DETAILED") => Some(Tracing::Detailed),
            Some(other) => {
                return Err(QueryError::json(
                    &join_path(path, "tracing"),
                    format!("expected a boolean or NONE, DEFAULT, DETAILED, got {other}"),
                ))
            }
        };
        let fail_on_limits = field("failOnLimits")
            .map(|v| {
                v.as_bool().ok_or_else(|| {
                    QueryError::json(&join_path(path, "failOnLimits"), format!("expected a boolean, got {v}"))
                })
            })
            .transpose()?;
        Ok(QueryOptions {
            bucket_strategy,
            tracing,
            fetch_size: limit("fetchSize")?,
            data_limit: limit("dataLimit")?,
            aggregation_limit: limit("aggregationLimit")?,
            group_limit: limit("groupLimit")?,
            series_limit: limit("seriesLimit")?,
            fail_on_limits,
        })
    }

    /// `self` where set, else `fallback`.
    pub fn or(&self, fallback: &QueryOptions) -> QueryOptions {
        QueryOptions {
            bucket_strategy: self.bucket_strategy.or(fallback.bucket_strategy),
            tracing: self.tracing.or(fallback.tracing),
            fetch_size: self.fetch_size.or(fallback.fetch_size),
            data_limit: self.data_limit.or(fallback.data_limit),
            aggregation_limit: self.aggregation_limit.or(fallback.aggregation_limit),
            group_limit: self.group_limit.or(fallback.group_limit),
            series_limit: self.series_limit.or(fallback.series_limit),
            fail_on_limits: self.fail_on_limits.or(fallback.fail_on_limits),
        }
    }
}

mod metrics;
pub use metrics::{check_range_bounds, plan, BatchRequest, Defaults, QueryMetrics, QueryPlan};
