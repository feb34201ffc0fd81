//! Heroic's Cassandra metric backend (`datastax`, schema `ng`) as a plugin
//! (`plugin = "cassandra"`), reading and writing keyspaces in Heroic's own
//! layout, on Apache Cassandra or ScyllaDB through the `scylla` driver.
//!
//! Module map:
//! - [`config`]: the config table (Heroic's key names, camelCase).
//! - [`row_key`]: Heroic's `metric_key` codec (tiny-serializer encoding of
//!   key, tags, resource and base) and the 2^31 − 1 ms row arithmetic.
//! - [`plan`]: which rows and offsets answer `(start, end]`.
//! - [`cql`]: the CQL text of the schema and the statements.
//! - [`client`]: the driver session, prepared statements, retries with
//!   backoff, paged reads and single-partition batches.
//! - [`backend`]: the `MetricBackend`: write, fetch, delete, count,
//!   configure, health, statistics.
//! - [`listing`]: key listing by token ranges.
//! - [`stats`]: counters for `statistics()` (the SDK's counter set).
//! - [`tls`]: the `tls` table and the rustls client config given to the driver.
//! - [`error`]: errors and the mapping of the driver's errors onto the
//!   host's error kinds.

pub mod backend;
pub mod client;
pub mod config;
pub mod cql;
pub mod error;
pub mod listing;
pub mod plan;
pub mod row_key;
pub mod stats;
pub mod tls;

pub use backend::CassandraBackend;
pub use config::CassandraConfig;

heroic_plugin_api::export_plugin! {
    name: "cassandra",
    metrics: CassandraBackend,
}
