//! What a query produced, and how it stops early: Heroic answers every
//! limit, backend failure and bucket layout error inside the query's answer
//! (HTTP 200, `limits` and `errors`), never as a failed request, so that a
//! batch keeps its other queries and a dashboard shows a warning.

use std::collections::BTreeSet;
use std::time::Instant;

use heroic_plugin_api::types::TimeRange;
use heroic_query::aggregation::GroupKey;
use heroic_query::{QueryPlan, ResultGroup};
use serde::Serialize;

use crate::http::error::ApiError;

/// The node's name in shard errors and traces: Heroic names a node that
/// answers from its own backends `[local]`.
pub const LOCAL_NODE: &str = "[local]";

/// A limit that was hit (`limits` in the response).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Limit {
    Series,
    Group,
    Quota,
    Aggregation,
}

impl Limit {
    pub const ALL: [Limit; 4] = [Limit::Series, Limit::Group, Limit::Quota, Limit::Aggregation];

    /// Its name as a metric label.
    pub fn label(self) -> &'static str {
        match self {
            Limit::Series => "series",
            Limit::Group => "group",
            Limit::Quota => "quota",
            Limit::Aggregation => "aggregation",
        }
    }
}

/// An entry of `errors`, in Heroic's two shapes for a query.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RequestError {
    /// The query as a whole (a limit, data this node does not store).
    Query { error: String },
    /// A shard that contributed nothing: its backends failed, or the
    /// aggregation could not be laid out. The node is one shard, with no
    /// shard tags.
    Shard { nodes: Vec<String>, shard: GroupKey, error: String },
}

impl RequestError {
    pub fn query(error: impl Into<String>) -> Self {
        RequestError::Query { error: error.into() }
    }

    pub fn shard(error: impl Into<String>) -> Self {
        RequestError::Shard { nodes: vec![LOCAL_NODE.to_string()], shard: GroupKey::new(), error: error.into() }
    }
}

/// What a query produced, before it is turned into Heroic's JSON.
pub struct QueryOutcome {
    pub range: TimeRange,
    pub groups: Vec<ResultGroup>,
    pub limits: BTreeSet<Limit>,
    pub errors: Vec<RequestError>,
    pub pre_aggregation_sample_size: u64,
    /// Time spent in the query, µs.
    pub elapsed_us: u64,
    /// Each metrics fetch call: its kind and time, µs (the detailed trace).
    pub fetches_us: Vec<(FetchKind, u64)>,
}

/// Which call of a metric backend read a query's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchKind {
    /// Points (`fetch`).
    Points,
    /// Points folded into buckets by the plugin (`fetch_buckets`).
    Buckets,
    /// Samples other than points (`fetch_samples`).
    Samples,
}

impl FetchKind {
    /// The name of the call in the detailed trace.
    pub fn trace_name(self) -> &'static str {
        match self {
            FetchKind::Points => "com.spotify.heroic.metric.LocalMetricManager#fetch",
            FetchKind::Buckets => "com.spotify.heroic.metric.LocalMetricManager#fetch_buckets",
            FetchKind::Samples => "com.spotify.heroic.metric.LocalMetricManager#fetch_samples",
        }
    }
}

/// Why a query ended before its groups were built.
pub enum Halt {
    /// It is answered (HTTP 200) with no groups and this error.
    Stopped(RequestError),
    /// The request fails (the node is out of query budget, a filter cannot
    /// be compiled …).
    Failed(ApiError),
}

impl From<ApiError> for Halt {
    fn from(e: ApiError) -> Self {
        Halt::Failed(e)
    }
}

/// Limits hit, points read and fetch times of one query so far.
pub struct Progress {
    pub limits: BTreeSet<Limit>,
    pub sample_size: u64,
    pub fetches_us: Vec<(FetchKind, u64)>,
    started: Instant,
    fail_on_limits: bool,
}

impl Progress {
    pub fn new(fail_on_limits: bool) -> Self {
        Progress {
            limits: BTreeSet::new(),
            sample_size: 0,
            fetches_us: Vec::new(),
            started: Instant::now(),
            fail_on_limits,
        }
    }

    /// Records a limit that trims the answer (series, groups). With
    /// `failOnLimits` the query stops instead, with `message` (Heroic's).
    pub fn hit(&mut self, limit: Limit, message: String) -> Result<(), Halt> {
        self.limits.insert(limit);
        if self.fail_on_limits {
            return Err(Halt::Stopped(RequestError::query(message)));
        }
        Ok(())
    }

    /// A limit that stops the query whatever `failOnLimits` says (data and
    /// aggregation limits: what was read so far would be a partial answer).
    pub fn stop(&mut self, limit: Limit, message: String) -> Halt {
        self.limits.insert(limit);
        Halt::Stopped(RequestError::query(message))
    }

    pub fn outcome(self, plan: &QueryPlan, groups: Vec<ResultGroup>, errors: Vec<RequestError>) -> QueryOutcome {
        QueryOutcome {
            range: plan.range,
            groups,
            limits: self.limits,
            errors,
            pre_aggregation_sample_size: self.sample_size,
            elapsed_us: self.started.elapsed().as_micros() as u64,
            fetches_us: self.fetches_us,
        }
    }
}
