//! The Heroic host: loads plugins named in a TOML config and serves
//! Heroic's HTTP API on top of them.
//!
//! - [`alloc`]: allocator tuning applied at start.
//! - [`config`]: the TOML config (unknown keys are errors).
//! - [`logging`]: the host's log and the plugin log callback.
//! - [`plugins`]: finding, loading and instantiating plugin libraries.
//! - [`backends`]: the node's backends by role, their health and shutdown.
//! - [`write_cache`], [`writer`]: the write path (points, then new series).
//! - [`ingest`], [`consumers`]: consumer plugins and the ingestion pipeline
//!   (schemas, filter, backpressure) they feed.
//! - [`cluster`]: this node and the other nodes `/cluster/*` reports.
//! - [`node`]: a running node, shared by all handlers.
//! - [`query`]: runs planned queries (metadata, fetch, aggregate, limits).
//! - [`render`]: a query's groups drawn as a PNG chart (`/render/image`).
//! - [`telemetry`]: the node's own figures, scraped at `GET /metrics`.
//! - [`prometheus`]: Prometheus' protocols: remote-write read into the
//!   node's writes, PromQL selections read through the plugins (the query
//!   API's routes are in `http::prometheus_api`, its evaluator the
//!   `heroic-promql` crate).
//! - [`http`]: the HTTP API.
//! - [`shell`]: `heroic-shell`, one-off tasks against the backends.

pub mod alloc;
pub mod backends;
pub mod cluster;
pub mod config;
pub mod consumers;
pub mod http;
pub mod ingest;
pub mod logging;
pub mod node;
pub mod plugins;
pub mod prometheus;
pub mod query;
pub mod render;
pub mod shell;
pub mod telemetry;
pub mod write_cache;
pub mod writer;
