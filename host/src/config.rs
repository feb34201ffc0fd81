//! The node's TOML config.
//!
//! Unknown keys are errors everywhere (`deny_unknown_fields`): a typo must
//! not silently fall back to a default. Each plugin's own table (`config`)
//! is passed to the plugin as JSON, and the plugin checks its keys.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The HTTP server.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where plugin libraries are found.
    #[serde(default)]
    pub plugins: PluginsConfig,
    /// Metric backends: every write goes to all of them, queries read them all.
    #[serde(default)]
    pub metrics: Vec<ComponentConfig>,
    /// Metadata backends: every new series is written to all of them.
    #[serde(default)]
    pub metadata: Vec<ComponentConfig>,
    /// Suggest backends.
    #[serde(default)]
    pub suggest: Vec<ComponentConfig>,
    /// Consumers that take metrics from queues.
    #[serde(default)]
    pub consumers: Vec<ComponentConfig>,
    /// Write path settings.
    #[serde(default)]
    pub ingestion: IngestionConfig,
    /// Query defaults and limits.
    #[serde(default)]
    pub query: QueryConfig,
    /// The other nodes `/cluster/*` reports.
    #[serde(default)]
    pub cluster: ClusterConfig,
}

/// The cluster as `/cluster/status` and `/cluster/nodes` report it. Nodes
/// do not federate queries: each answers for its own backends. Listing the
/// other nodes lets `/cluster/status` show which of them answer.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The other nodes, as URIs (`http://10.0.0.2:8080`), Heroic's static
    /// node list. `http://` nodes are asked for their `/cluster/status` on
    /// each refresh (at start and on `POST /cluster/refresh`); nodes of
    /// other schemes (Heroic's `grpc://`) are listed but count as offline.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// This node's shard tags (`{site = "lon"}`), reported as its `tags`.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Name reported as `service.name` by `GET /status` and `GET /`.
    #[serde(default = "default_service")]
    pub service: String,
    /// Id reported as `service.id` by `GET /status` and `GET /` (Heroic's
    /// `id`; the node's own unique id is in `/cluster/status`).
    #[serde(default = "default_service_id")]
    pub id: String,
    /// Largest body of the routes that store data (`POST /write`,
    /// `PUT /metadata/series`), in bytes. (`max_body_bytes` is the old name.)
    #[serde(default = "default_max_write_body", alias = "max_body_bytes")]
    pub max_write_body_bytes: u64,
    /// Largest body of every other route (queries, metadata, suggest,
    /// parser), in bytes: a query is small, so a large body there is refused
    /// before it is read.
    #[serde(default = "default_max_request_body")]
    pub max_request_body_bytes: u64,
    /// How long to wait for in-flight requests at shutdown, in seconds.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_secs: u64,
    /// Client connections open at once, at most; further connections wait
    /// in the kernel's accept queue until one closes.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A client must send a request's headers within this many seconds of
    /// starting it (or of opening the connection), or the connection is
    /// closed: idle half-open requests cannot pile up.
    #[serde(default = "default_header_timeout")]
    pub header_read_timeout_secs: u64,
    /// Web origins (`https://grafana.example.com`) whose pages may call the
    /// API from a browser (CORS). Empty, the default: none may, and answers
    /// carry no CORS headers. `"*"` allows every origin (not advisable for a
    /// node that accepts writes).
    #[serde(default)]
    pub cors_allowed_origins: Vec<String>,
    /// Bearer tokens for the routes that change data.
    #[serde(default)]
    pub auth: AuthConfig,
}

/// Bearer tokens required on the routes that change data (`POST /write`,
/// `PUT` and `DELETE /metadata/series`). With no tokens configured, those
/// routes are open, as in Heroic.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Accepted tokens, written in the config (clients send
    /// `Authorization: Bearer <token>`).
    #[serde(default)]
    pub write_tokens: Vec<heroic_plugin_api::sdk::Secret>,
    /// A file with more accepted tokens, one per line (blank lines and lines
    /// starting with `#` are ignored), read at start: keeps tokens out of the
    /// config file.
    #[serde(default)]
    pub write_tokens_file: Option<PathBuf>,
}

fn default_listen() -> SocketAddr {
    "127.0.0.1:8080".parse().expect("valid address")
}
fn default_service() -> String {
    "The Heroic Time Series Database".into()
}
fn default_service_id() -> String {
    "heroic".into()
}
fn default_max_write_body() -> u64 {
    64 * 1024 * 1024
}
fn default_max_request_body() -> u64 {
    1024 * 1024
}
fn default_max_connections() -> usize {
    4096
}
fn default_header_timeout() -> u64 {
    30
}
fn default_shutdown_timeout() -> u64 {
    30
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            service: default_service(),
            id: default_service_id(),
            max_write_body_bytes: default_max_write_body(),
            max_request_body_bytes: default_max_request_body(),
            shutdown_timeout_secs: default_shutdown_timeout(),
            max_connections: default_max_connections(),
            header_read_timeout_secs: default_header_timeout(),
            cors_allowed_origins: Vec::new(),
            auth: AuthConfig::default(),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Directories searched for plugin libraries, in order. Relative paths
    /// are relative to the working directory. The directory of the `heroic`
    /// executable is always searched last.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
}

impl PluginsConfig {
    /// The configured directories, then the executable's own.
    pub fn search_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = self.dirs.clone();
        if let Some(exe_dir) = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)) {
            if !dirs.contains(&exe_dir) {
                dirs.push(exe_dir);
            }
        }
        dirs
    }
}

/// One backend or consumer: which plugin provides it and its own config.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    /// Name used in logs, errors and `/status`; defaults to the plugin name.
    pub id: Option<String>,
    /// The plugin, e.g. `local` for `libheroic_plugin_local.so`.
    pub plugin: String,
    /// Run the component's `configure` step at start (create tables,
    /// indices …).
    #[serde(default)]
    pub configure: bool,
    /// The plugin's own settings, passed to it as JSON.
    #[serde(default)]
    pub config: toml::Table,
    /// Consumers only: how the host decodes this consumer's messages,
    /// `spotify100` (JSON v1/v2, the default) or `spotify100-proto`
    /// (Snappy-compressed protobuf batches). See docs/consumers.md.
    #[serde(default)]
    pub schema: Option<crate::ingest::schema::Schema>,
}

impl ComponentConfig {
    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.plugin)
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct IngestionConfig {
    /// Write points to the metric backends.
    #[serde(default = "yes")]
    pub update_metrics: bool,
    /// Write new series to the metadata backends.
    #[serde(default = "yes")]
    pub update_metadata: bool,
    /// Write new series to the suggest backends.
    #[serde(default = "yes")]
    pub update_suggestions: bool,
    /// Series written to metadata and suggest within this many seconds are
    /// not written there again.
    #[serde(default = "default_cache_ttl")]
    pub write_cache_ttl_secs: u64,
    /// Series remembered by the write cache at most.
    #[serde(default = "default_cache_size")]
    pub write_cache_max_series: usize,
    /// Consumers only: an HQL filter (e.g. `key = "cpu" and host = "a"`);
    /// consumed metrics of series that do not match are dropped (counted as
    /// `filtered`). Unset: keep everything.
    #[serde(default)]
    pub filter: Option<String>,
    /// Consumers only: points being written at once, at most, over all
    /// consumers of the node (Heroic's `maxConcurrentWrites`). A batch waits
    /// for room before it is written, which holds back the consumer.
    #[serde(default = "default_max_concurrent_writes")]
    pub max_concurrent_writes: usize,
    /// Consumers only: new series written to the metadata and suggest
    /// backends per second, at most (a series already in the write cache
    /// does not count). Unset: no limit. A batch with new series waits for
    /// its turn, which holds back the consumer.
    #[serde(default)]
    pub metadata_rate_limit: Option<f64>,
}

fn yes() -> bool {
    true
}
fn default_cache_ttl() -> u64 {
    4 * 3600
}
fn default_cache_size() -> usize {
    1_000_000
}
fn default_max_concurrent_writes() -> usize {
    50_000
}

impl Default for IngestionConfig {
    fn default() -> Self {
        IngestionConfig {
            update_metrics: true,
            update_metadata: true,
            update_suggestions: true,
            write_cache_ttl_secs: default_cache_ttl(),
            write_cache_max_series: default_cache_size(),
            filter: None,
            max_concurrent_writes: default_max_concurrent_writes(),
            metadata_rate_limit: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// Accept `/query/*` requests without an `X-Client-Id` header. Heroic
    /// refuses them (400); the Grafana data source sends none unless told to.
    #[serde(default)]
    pub allow_anonymous: bool,
    /// Series a query may read at most (`seriesLimit`). This and the other
    /// limits below are ceilings: a query's `options` may lower them, not
    /// raise them.
    #[serde(default = "default_series_limit")]
    pub series_limit: u64,
    /// Points a query may read at most (`dataLimit`).
    #[serde(default = "default_data_limit")]
    pub data_limit: u64,
    /// Points or buckets an aggregation may keep at most (`aggregationLimit`).
    /// A query without aggregation keeps every point it returns.
    #[serde(default = "default_aggregation_limit")]
    pub aggregation_limit: u64,
    /// Result groups at most (`groupLimit`).
    #[serde(default = "default_group_limit")]
    pub group_limit: u64,
    /// Fail a query that hits a limit instead of returning partial results.
    #[serde(default)]
    pub fail_on_limits: bool,
    /// A query taking longer than this many seconds fails, and its work in
    /// the plugins is cancelled.
    #[serde(default = "default_query_timeout")]
    pub timeout_secs: u64,
    /// Queries running at once, at most (each query of a `/query/batch`
    /// counts). Default: twice the number of CPUs.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    /// How long a query waits for a free slot before it is refused with 503
    /// and `Retry-After`, in milliseconds.
    #[serde(default = "default_queue_timeout")]
    pub queue_timeout_ms: u64,
    /// Points and buckets kept by all running queries together, at most (a
    /// point takes 16 bytes): bounds the node's query memory. A query that
    /// would go over it is refused with 503 and `Retry-After`.
    #[serde(default = "default_max_retained_points")]
    pub max_retained_points: u64,
    /// Features enabled by default (`-name` disables), e.g. `["shift_range"]`.
    #[serde(default)]
    pub features: Vec<String>,
}

fn default_series_limit() -> u64 {
    100_000
}
fn default_data_limit() -> u64 {
    200_000_000
}
fn default_aggregation_limit() -> u64 {
    10_000_000
}
fn default_max_concurrent() -> usize {
    2 * std::thread::available_parallelism().map_or(2, |n| n.get())
}
fn default_queue_timeout() -> u64 {
    5_000
}
fn default_max_retained_points() -> u64 {
    20_000_000
}
fn default_group_limit() -> u64 {
    10_000
}
fn default_query_timeout() -> u64 {
    300
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            allow_anonymous: false,
            series_limit: default_series_limit(),
            data_limit: default_data_limit(),
            aggregation_limit: default_aggregation_limit(),
            group_limit: default_group_limit(),
            fail_on_limits: false,
            timeout_secs: default_query_timeout(),
            max_concurrent: default_max_concurrent(),
            queue_timeout_ms: default_queue_timeout(),
            max_retained_points: default_max_retained_points(),
            features: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse { path: path.into(), message })
    }

    pub fn from_toml(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
        config.check_consumer_settings()?;
        config.check_limits()?;
        Ok(config)
    }

    /// Limits that would make the node refuse everything, or nothing.
    fn check_limits(&self) -> Result<(), String> {
        let s = &self.server;
        let q = &self.query;
        let positive: [(&str, u64); 10] = [
            ("server.max_write_body_bytes", s.max_write_body_bytes),
            ("server.max_request_body_bytes", s.max_request_body_bytes),
            ("server.max_connections", s.max_connections as u64),
            ("server.header_read_timeout_secs", s.header_read_timeout_secs),
            ("query.series_limit", q.series_limit),
            ("query.data_limit", q.data_limit),
            ("query.aggregation_limit", q.aggregation_limit),
            ("query.group_limit", q.group_limit),
            ("query.timeout_secs", q.timeout_secs),
            ("query.max_concurrent", q.max_concurrent as u64),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be at least 1"));
        }
        if q.max_retained_points < q.aggregation_limit.min(q.data_limit) {
            return Err(format!(
                "query.max_retained_points ({}) must be at least query.aggregation_limit ({}): otherwise a query within its own limits could never run",
                q.max_retained_points, q.aggregation_limit
            ));
        }
        if q.max_concurrent > tokio::sync::Semaphore::MAX_PERMITS {
            return Err("query.max_concurrent is too large".into());
        }
        for origin in &s.cors_allowed_origins {
            crate::http::cors::check_origin(origin).map_err(|e| format!("server.cors_allowed_origins: {e}"))?;
        }
        Ok(())
    }

    /// Settings that only make sense for consumers, checked where serde cannot.
    fn check_consumer_settings(&self) -> Result<(), String> {
        for (role, list) in [("metrics", &self.metrics), ("metadata", &self.metadata), ("suggest", &self.suggest)] {
            if let Some(c) = list.iter().find(|c| c.schema.is_some()) {
                return Err(format!("{role} {:?}: `schema` is a consumer setting", c.id()));
            }
        }
        if let Some(filter) = &self.ingestion.filter {
            crate::ingest::filter::compile_filter(filter).map_err(|e| format!("ingestion.filter: {e}"))?;
        }
        if self.ingestion.max_concurrent_writes == 0 {
            return Err("ingestion.max_concurrent_writes must be at least 1".into());
        }
        if self.ingestion.metadata_rate_limit.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err("ingestion.metadata_rate_limit must be a positive number".into());
        }
        Ok(())
    }
}
