//! Heroic's Bigtable metric backend as a plugin (`plugin = "bigtable"`),
//! reading and writing tables in Heroic's own layout.
//!
//! Module map:
//! - [`config`]: the config table (Heroic's key names, camelCase).
//! - [`row_key`]: Heroic's row key codec (tiny-serializer compact varints,
//!   UTF-16 lengths, Java tag order, 2^32 ms periods, resource suffix).
//! - [`plan`]: which ReadRows calls and filters answer `(start, end]`.
//! - [`cells`]: the write and read path shared by points and distribution
//!   samples (family and value bytes as parameters), with the bulk writer.
//! - [`read_rows`]: chunk-to-row assembly and resumption of a failed read.
//! - [`client`]: tonic channels, credentials, deadlines, retries with
//!   backoff, MutateRows and the table admin calls.
//! - [`backend`]: the `MetricBackend`: write, fetch, delete, count,
//!   distribution samples, configure, shutdown, health, statistics.
//! - [`bulk`]: the bulk writer coalescing concurrent writes into shared
//!   MutateRows calls, answering each write once its entries are applied.
//! - [`listing`]: key listing by scanning and decoding row keys.
//! - [`stats`]: counters for `statistics()` (the SDK's counter set).
//! - [`error`]: errors and their mapping onto the host's error kinds.

pub mod backend;
pub mod bulk;
pub mod cells;
pub mod client;
pub mod config;
pub mod error;
pub mod listing;
pub mod plan;
pub mod read_rows;
pub mod row_key;
pub mod stats;

pub use backend::BigtableBackend;
pub use config::BigtableConfig;

heroic_plugin_api::export_plugin! {
    name: "bigtable",
    metrics: BigtableBackend,
}
