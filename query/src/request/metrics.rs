//! `QueryMetrics` (one query), the batch body, and [`plan`].

use crate::limits::MAX_TIME_MS;
use std::collections::BTreeMap;

use heroic_plugin_api::filter::Filter;
use heroic_plugin_api::types::TimeRange;
use serde_json::{Map, Value};

use super::{Feature, FeatureSet, QueryOptions, QueryRange, Source};
use crate::aggregation::{Aggregation, AggregationInstance, AggregationSession, BucketStrategy};
use crate::duration::{cadence_from_range, shift_range};
use crate::error::{join_path, QueryError, Result};

/// The body of `POST /query/metrics` (Heroic's `QueryMetrics`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryMetrics {
    /// An HQL query; when set, its select/from/where replace `aggregation`,
    /// `source` and `filter` (as in Heroic); `range` fills in a missing range.
    pub query: Option<String>,
    pub aggregation: Option<Aggregation>,
    pub source: Option<Source>,
    pub range: Option<QueryRange>,
    pub filter: Option<Filter>,
    pub options: QueryOptions,
    /// Free JSON for the query log.
    pub client_context: Option<Value>,
    /// Legacy: `$key = key`, and-ed into the filter.
    pub key: Option<String>,
    /// Legacy: `k = v` for each entry, and-ed into the filter.
    pub tags: BTreeMap<String, String>,
    pub features: FeatureSet,
}

impl QueryMetrics {
    /// A query given as a `text/plain` HQL body.
    pub fn from_hql(text: &str) -> Self {
        QueryMetrics { query: Some(text.to_string()), ..Default::default() }
    }

    /// Parses the JSON body. Errors name the offending field's path.
    pub fn from_json(v: &Value) -> Result<Self> {
        Self::from_json_at(v, "")
    }

    pub(crate) fn from_json_at(v: &Value, path: &str) -> Result<Self> {
        let obj = v.as_object().ok_or_else(|| QueryError::json(path, format!("expected a query object, got {v}")))?;
        let field = |name: &str| obj.get(name).filter(|v| !v.is_null());
        let p = |name: &str| join_path(path, name);
        let string = |name: &str| -> Result<Option<String>> {
            field(name)
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| QueryError::json(&p(name), format!("expected a string, got {v}")))
                })
                .transpose()
        };
        let aggregation = match field("aggregation") {
            Some(a) => Some(crate::aggregation::json_at(a, &p("aggregation"))?),
            // Legacy `aggregators`: a list run as a chain.
            None => match field("aggregators") {
                Some(Value::Array(items)) if !items.is_empty() => {
                    Some(crate::aggregation::json_at(&Value::Array(items.clone()), &p("aggregators"))?)
                }
                Some(Value::Array(_)) => None,
                Some(other) => {
                    return Err(QueryError::json(
                        &p("aggregators"),
                        format!("expected a list of aggregations, got {other}"),
                    ))
                }
                None => None,
            },
        };
        let source = string("source")?
            .map(|s| {
                Source::from_identifier(&s).ok_or_else(|| {
                    QueryError::json(&p("source"), format!("unknown source \"{s}\" (expected points, spreads, groups, cardinality, distributionPoints or tdigestPoints)"))
                })
            })
            .transpose()?;
        let tags = match field("tags") {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| {
                    v.as_str().map(|s| (k.clone(), s.to_string())).ok_or_else(|| {
                        QueryError::json(&join_path(&p("tags"), k), format!("expected a string, got {v}"))
                    })
                })
                .collect::<Result<_>>()?,
            Some(other) => {
                return Err(QueryError::json(&p("tags"), format!("expected an object of tag values, got {other}")))
            }
            None => BTreeMap::new(),
        };
        Ok(QueryMetrics {
            query: string("query")?,
            aggregation,
            source,
            range: field("range").map(|r| QueryRange::from_json(r, &p("range"))).transpose()?,
            filter: field("filter").map(|f| crate::filter::parse_at(f, &p("filter"))).transpose()?,
            options: field("options")
                .map(|o| QueryOptions::from_json(o, &p("options")))
                .transpose()?
                .unwrap_or_default(),
            client_context: field("clientContext").cloned(),
            key: string("key")?,
            tags,
            features: field("features")
                .map(|f| FeatureSet::from_json(f, &p("features")))
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

/// The body of `POST /query/batch`: named queries and an optional range
/// for those that have none.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchRequest {
    pub queries: BTreeMap<String, QueryMetrics>,
    pub range: Option<QueryRange>,
}

impl BatchRequest {
    pub fn from_json(v: &Value) -> Result<Self> {
        let obj: &Map<String, Value> =
            v.as_object().ok_or_else(|| QueryError::json("", format!("expected a batch object, got {v}")))?;
        let range = obj.get("range").filter(|v| !v.is_null()).map(|r| QueryRange::from_json(r, "range")).transpose()?;
        let queries = match obj.get("queries") {
            Some(Value::Object(q)) => q
                .iter()
                .map(|(name, body)| {
                    let mut m = QueryMetrics::from_json_at(body, &format!("queries.{name}"))?;
                    if m.range.is_none() {
                        m.range = range;
                    }
                    Ok((name.clone(), m))
                })
                .collect::<Result<_>>()?,
            // Heroic answers a batch without queries with no results.
            None | Some(Value::Null) => BTreeMap::new(),
            Some(other) => {
                return Err(QueryError::json("queries", format!("expected an object of named queries, got {other}")))
            }
        };
        Ok(BatchRequest { queries, range })
    }
}

/// Server-side defaults (from the config).
#[derive(Clone, Debug, PartialEq)]
pub struct Defaults {
    /// Features on unless a request turns them off.
    pub features: FeatureSet,
    /// Options used where a request leaves them unset.
    pub options: QueryOptions,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults { features: FeatureSet::heroic_defaults(), options: QueryOptions::default() }
    }
}

/// Everything the host needs to run one query.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryPlan {
    /// The optimised filter to send to the metadata backend.
    pub filter: Filter,
    pub source: Source,
    /// The range to fetch and aggregate over, `(start, end]`, after
    /// `shift_range` (this is the `range` of the response).
    pub range: TimeRange,
    /// The range before shifting.
    pub raw_range: TimeRange,
    /// The aggregation to run.
    pub aggregation: AggregationInstance,
    /// The cadence reported on result groups.
    pub cadence: i64,
    pub bucket_strategy: BucketStrategy,
    /// Request options merged over the defaults.
    pub options: QueryOptions,
    /// The features in force (config combined with the request).
    pub features: FeatureSet,
    pub client_context: Option<Value>,
    /// Why this node has no data for the query although it is valid (a
    /// source it does not store, or `tdigest`): the host answers it with no
    /// groups and this as the query's error, without reading anything.
    pub unavailable: Option<String>,
}

impl QueryPlan {
    /// A fresh aggregation session for this plan, bounded by the query's
    /// `aggregationLimit` and by `ceiling` (the caller's config), whichever
    /// is lower: a client may lower the limit, not raise it. See
    /// [`AggregationInstance::session`].
    pub fn session(&self, ceiling: Option<u64>) -> Result<AggregationSession> {
        let limit = match (self.options.aggregation_limit, ceiling) {
            (Some(asked), Some(ceiling)) => Some(asked.min(ceiling)),
            (asked, ceiling) => asked.or(ceiling),
        };
        self.aggregation.session(self.range, self.bucket_strategy, limit)
    }
}

/// Refuses a range with an end beyond [`MAX_TIME_MS`] either way of the
/// epoch.
pub fn check_range_bounds(range: TimeRange) -> Result<()> {
    let within = |t: i64| (-MAX_TIME_MS..=MAX_TIME_MS).contains(&t);
    if within(range.start) && within(range.end) {
        Ok(())
    } else {
        Err(QueryError::Invalid(format!(
            "range ({}, {}] reaches beyond the end of year 9999 ({MAX_TIME_MS} ms either way of the epoch)",
            range.start, range.end
        )))
    }
}

/// Plans a request at time `now_ms`: resolves the HQL or JSON query, the
/// filter (legacy `key`/`tags` included), the range (with `shift_range` when
/// enabled), bucket sizes (default: range/240 rounded down to a nice step),
/// the bucket strategy and options. Checks the bucket count.
pub fn plan(req: &QueryMetrics, now_ms: i64, defaults: &Defaults) -> Result<QueryPlan> {
    let (aggregation, source, range, filter) = match &req.query {
        Some(text) => {
            let q = crate::hql::parse_query(text)?;
            (q.aggregation()?, q.source()?, q.range(now_ms)?.or(req.range), q.filter.clone())
        }
        None => {
            let mut terms = Vec::new();
            if let Some(k) = &req.key {
                terms.push(Filter::key(k.as_str()));
            }
            terms.extend(req.tags.iter().map(|(k, v)| Filter::match_tag(k.as_str(), v.as_str())));
            terms.extend(req.filter.clone());
            let filter = if terms.is_empty() { None } else { Some(Filter::And(terms)) };
            (req.aggregation.clone(), req.source, req.range, filter)
        }
    };
    let filter = crate::filter::optimize(&filter.unwrap_or(Filter::True));
    let range = range.ok_or_else(|| QueryError::Invalid("Range must be present".into()))?;
    let raw_range = range.resolve(now_ms);
    if raw_range.start > raw_range.end {
        return Err(QueryError::Invalid("range start is after its end".into()));
    }
    check_range_bounds(raw_range)?;
    let features = defaults.features.combine(&req.features);
    let default_size = cadence_from_range(raw_range.start, raw_range.end);
    let aggregation = aggregation.unwrap_or(Aggregation::Empty).apply(default_size)?;
    // A tdigest reads t-digest sketches: distribution points (Heroic forces
    // the source for `group … each tdigest`; points would pass it by
    // anyway), or t-digest points when the query asks for them.
    let source = match source {
        Some(Source::TdigestPoints) => Source::TdigestPoints,
        _ if aggregation.uses_tdigest() => Source::DistributionPoints,
        other => other.unwrap_or(Source::Points),
    };
    // Samples other than points are read by the host from the backends
    // that store them (it answers an error when none does).
    let unavailable = match source {
        Source::Points | Source::DistributionPoints | Source::TdigestPoints | Source::Spreads => None,
        other => Some(format!(
            "source \"{}\" is not stored by this node (only points, spreads, distributionPoints and \
             tdigestPoints are): no data",
            other.identifier()
        )),
    };
    let cadence = aggregation.cadence();
    let range = if features.has(Feature::ShiftRange) {
        let (s, e) = shift_range(raw_range.start, raw_range.end, cadence, now_ms)?;
        TimeRange::new(s, e)
    } else {
        raw_range
    };
    let options = req.options.or(&defaults.options);
    let bucket_strategy = options.bucket_strategy.unwrap_or(if features.has(Feature::EndBucket) {
        BucketStrategy::End
    } else {
        BucketStrategy::Start
    });
    // The buckets are laid out (and refused with `Layout`) when the session
    // starts: a query whose buckets do not fit is answered on its own, not
    // refused as a request.
    Ok(QueryPlan {
        filter,
        source,
        range,
        raw_range,
        aggregation,
        cadence,
        bucket_strategy,
        options,
        features,
        client_context: req.client_context.clone(),
        unavailable,
    })
}
