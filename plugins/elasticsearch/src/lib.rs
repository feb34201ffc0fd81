//! Heroic's Elasticsearch metadata and suggest backends, as a plugin.
//!
//! Module map:
//! - [`config`]: the backends' config tables (shared connection and index
//!   settings, role-specific extras), validated into [`config::Settings`].
//! - [`client`]: HTTP through the `elasticsearch` crate: our own node pool,
//!   retries with backoff, node discovery (`_nodes/http` or DNS).
//! - [`hash`]: Heroic's series id (murmur3_128, byte-compatible).
//! - [`query`]: filters to query DSL, regex translation to Lucene syntax.
//! - [`mappings`]: index names (single or rotating), templates, `configure`.
//! - [`writer`]: create-only bulk writes, write cache, rate limit, retries.
//! - [`tokens`]: word and prefix tokens and suggestion ranking.
//! - [`metadata`]: the metadata backend.
//! - [`suggest`]: the suggest backend.
//! - `tls` (with the `tls` cargo feature, on by default): the CA file and
//!   client certificate of the `tls` table, and certificate failures.

pub mod client;
pub mod config;
pub mod error;
pub mod hash;
pub mod mappings;
pub mod metadata;
pub mod query;
pub mod suggest;
#[cfg(feature = "tls")]
pub mod tls;
pub mod tokens;
pub mod writer;

pub use metadata::EsMetadata;
pub use suggest::EsSuggest;

/// Now, in ms since the epoch (picks rotating indices).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

heroic_plugin_api::export_plugin! {
    name: "elasticsearch",
    metadata: EsMetadata,
    suggest: EsSuggest,
}
