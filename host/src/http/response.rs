//! The JSON of one query's answer (Heroic's `QueryMetricsResponse`), fields
//! in the order Heroic's serializer writes them, with its trace.

use std::collections::{BTreeMap, BTreeSet};

use heroic_query::aggregation::GroupKey;
use heroic_query::request::Tracing;
use heroic_query::MetricValues;
use serde::Serialize;
use serde_json::{json, Value};

use crate::query::{common_tags, Limit, QueryOutcome, RequestError, TagValues, LOCAL_NODE};

#[derive(Serialize)]
pub struct ResponseRange {
    pub start: i64,
    pub end: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultGroupJson {
    #[serde(rename = "type")]
    kind: &'static str,
    hash: String,
    shard: GroupKey,
    cadence: i64,
    pub values: MetricValues,
    key: Option<String>,
    tags: GroupKey,
    tag_counts: BTreeMap<String, u64>,
    resource: GroupKey,
    resource_counts: BTreeMap<String, u64>,
}

/// The response of one query.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryResponse {
    query_id: String,
    range: ResponseRange,
    trace: Value,
    limits: BTreeSet<Limit>,
    cached: bool,
    cache: Option<Value>,
    common_tags: TagValues,
    common_resource: TagValues,
    pub result: Vec<ResultGroupJson>,
    pre_aggregation_sample_size: u64,
    errors: Vec<RequestError>,
}

/// A trace entry: `{what: {name}, elapsed (µs), children}`.
fn trace(name: &str, elapsed_us: u64, children: Vec<Value>) -> Value {
    json!({"what": {"name": name}, "elapsed": elapsed_us, "children": children})
}

/// Heroic's trace of a query on one node: the top level is always there
/// (whatever `tracing` says); below it one entry per shard, `null` when
/// tracing is off, else the shard, the node and its metric manager, with
/// one entry per fetch when detailed.
fn query_trace(tracing: Tracing, total_us: u64, outcome: &QueryOutcome) -> Value {
    let shard = match tracing {
        Tracing::None => Value::Null,
        Tracing::Default | Tracing::Detailed => {
            let fetches = match tracing {
                Tracing::Detailed => {
                    outcome.fetches_us.iter().map(|(kind, us)| trace(kind.trace_name(), *us, Vec::new())).collect()
                }
                _ => Vec::new(),
            };
            let manager = trace("com.spotify.heroic.metric.LocalMetricManager#query", outcome.elapsed_us, fetches);
            let node = trace(&format!("{LOCAL_NODE}#query"), outcome.elapsed_us, vec![manager]);
            // The node is one shard, with no shard tags (`{}` in Java).
            trace("com.spotify.heroic.CoreQueryManager#query_shard[{}]", outcome.elapsed_us, vec![node])
        }
    };
    trace("com.spotify.heroic.CoreQueryManager#query", total_us, vec![shard])
}

impl QueryResponse {
    /// The answer to a query whose outcome is `outcome`, `total_us` after it
    /// was received.
    pub fn new(outcome: QueryOutcome, tracing: Tracing, total_us: u64) -> QueryResponse {
        let trace = query_trace(tracing, total_us, &outcome);
        // Each group's tag values, gathered once for its summary and the
        // common tags.
        let tag_sets: Vec<_> = outcome.groups.iter().map(|g| (g.tag_values(false), g.tag_values(true))).collect();
        let common_resource = common_tags(tag_sets.iter().map(|(_, resource)| resource));
        let common_tags = common_tags(tag_sets.iter().map(|(tags, _)| tags));
        let summaries: Vec<_> =
            outcome.groups.iter().zip(&tag_sets).map(|(g, (tags, resource))| g.summary_of(tags, resource)).collect();
        drop(tag_sets);
        let shard = GroupKey::new();
        let result = outcome
            .groups
            .into_iter()
            .zip(summaries)
            .map(|(g, summary)| ResultGroupJson {
                kind: g.values.type_name(),
                hash: g.hash(&shard),
                shard: shard.clone(),
                cadence: g.cadence,
                values: g.values,
                key: summary.key,
                tags: summary.tags,
                tag_counts: summary.tag_counts,
                resource: summary.resource,
                resource_counts: summary.resource_counts,
            })
            .collect();
        QueryResponse {
            query_id: uuid::Uuid::new_v4().to_string(),
            range: ResponseRange { start: outcome.range.start, end: outcome.range.end },
            trace,
            limits: outcome.limits,
            cached: false,
            cache: None,
            common_tags,
            common_resource,
            result,
            pre_aggregation_sample_size: outcome.pre_aggregation_sample_size,
            errors: outcome.errors,
        }
    }
}
