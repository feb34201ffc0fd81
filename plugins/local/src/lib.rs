//! The `local` plugin: Heroic's metric, metadata and suggest backends on
//! local disk, so that a single node runs with no servers.
//!
//! Module map:
//! - [`metrics`]: the metric store API (write, fetch, list, delete, count);
//!   `flush` does recovery at open, flushes, deletes and compaction.
//! - `frame`: record framing, and reading records back past damage.
//! - `log`: append-only record log with group commit and recovery from failed
//!   writes (the WAL, the series catalog, the metadata registry); its
//!   `queued` module lets writers on the async runtime await their group's
//!   fsync instead of blocking a thread on it.
//! - `compacted`: a record log whose older records are kept in compressed
//!   snapshots (the series catalog and the registries).
//! - `wal_record`: the write-ahead log's records (points, new series),
//!   written and applied.
//! - `head`: the in-memory head and the last-write-wins merge of runs.
//! - `read`: the fetch path (block selection, parallel decoding).
//! - `fold`: the bucket fetch (aggregation pushdown): blocks folded
//!   straight into per-bucket partials.
//! - `segment`: immutable segment files of compressed blocks with an index
//!   (`segment_index`: its two formats).
//! - `codec`: block compression (pco, with decimal scaling of values).
//! - `block_cache`: blocks decoded to a compact form, and the cache of
//!   them, bounded in bytes, that reads go through.
//! - [`samples`]: distribution and t-digest points (serialised t-digests) and spreads,
//!   each kind in a log of its own, replayed into memory at open.
//! - [`metadata`]: the series registry and its inverted tag index (`index`).
//! - `series_table`: ids by series without a copy of the series (the
//!   catalog's and the index's).
//! - [`suggest`]: key, tag and value suggestions over the same index.
//! - [`backends`]: the SDK traits implemented on the engine, and the
//!   `export_plugin!` call that makes this library the `local` plugin.
//! - [`check`]: the read-only data directory check behind
//!   `heroic-shell check-data`.
//! - `dir_lock`: the exclusive lock on a store's directory.
//! - `memory`: the memory the process may use (container or machine), for
//!   the default size of the decoded-block cache.
//! - `encoding`, [`error`]: binary helpers and the error type.

pub mod backends;
pub mod check;
pub mod error;
pub mod metadata;
pub mod metrics;
pub mod samples;
pub mod suggest;

mod block_cache;
mod codec;
mod compacted;
mod dir_lock;
mod encoding;
mod flush;
mod fold;
mod frame;
mod head;
mod index;
mod log;
mod memory;
mod read;
mod segment;
mod segment_index;
mod series_table;
mod store;
mod wal_record;

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod metadata_tests;
#[cfg(test)]
mod metrics_tests;

pub use error::{Error, Result};
pub use metadata::MetadataStore;
pub use metrics::{MetricOptions, MetricStats, MetricStore};
pub use suggest::{SuggestOptions, SuggestStore};
