//! Heroic-compatible query logic: filters, HQL, aggregations and request
//! planning. Pure logic, no I/O: the host fetches data and serves HTTP.
//!
//! # Module map
//! - [`filter`]: filter JSON (array/object forms, Grafana sugar) ⇄ [`Filter`], and the optimiser.
//! - [`hql`]: HQL lexer and parser → [`hql::Query`] (and its `/parser/parse-query` JSON).
//! - [`aggregation`]: the aggregation model ([`Aggregation`]), resolved trees
//!   ([`AggregationInstance`]), streaming execution ([`AggregationSession`]) and
//!   results ([`ResultGroup`], with Heroic's group hash).
//! - [`request`]: `/query/metrics` and `/query/batch` bodies and [`plan`].
//! - [`duration`]: durations, time units, the default cadence and `shift_range`.
//! - [`error`]: [`QueryError`], every variant a client error (HTTP 400).
//! - [`limits`]: how deep filters, expressions and aggregations may nest.
//!
//! # Usage
//! ```
//! use heroic_query::{plan, Defaults, QueryMetrics};
//! use heroic_plugin_api::types::Series;
//!
//! let body = serde_json::json!({
//!     "query": "sum(10ms) from points(0, 40) where $key = cpu",
//!     "features": ["-shift_range"],
//! });
//! let request = QueryMetrics::from_json(&body)?;
//! let plan = plan(&request, 1_000_000, &Defaults::default())?;
//! // 1. find series matching `plan.filter` with the metadata backend;
//! // 2. fetch their points in `plan.range`, one chunk at a time:
//! let mut session = plan.session(None)?;
//! let s1 = Series::new("cpu", [("host", "a")], Vec::<(&str, &str)>::new());
//! session.update(&s1, &[10, 30], &[1.0, 2.0])?;
//! // 3. turn the groups into the response.
//! let groups = session.finish()?;
//! assert_eq!(groups[0].cadence, 10);
//! assert_eq!(groups[0].values.to_json(), serde_json::json!([[10, 1.0], [30, 2.0]]));
//! let _hash = groups[0].hash(&Default::default());
//! # Ok::<(), heroic_query::QueryError>(())
//! ```

pub mod aggregation;
pub mod distribution;
pub mod duration;
pub mod error;
pub mod filter;
pub mod hql;
pub mod limits;
pub mod request;

pub use aggregation::{
    Aggregation, AggregationInstance, AggregationSession, BucketStrategy, GroupKey, MetricValues, Pushdown,
    ResultGroup, SpreadValue, TagValueSets,
};
pub use error::QueryError;
pub use heroic_plugin_api::filter::Filter;
pub use request::{plan, BatchRequest, Defaults, QueryMetrics, QueryPlan};
