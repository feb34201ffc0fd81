//! The SDK: write a plugin as ordinary async Rust.
//!
//! - [`traits`]: `MetricBackend`, `MetadataBackend`, `SuggestBackend`,
//!   `Consumer` — what a plugin author implements.
//! - [`runtime`]: the plugin's own tokio runtime and the panic guards.
//! - [`logging`]: forwards `tracing` events to the host.
//! - [`adapters`]: turn the traits into the `#[sabi_trait]` objects of [`crate::ffi`].
//! - [`export`]: what [`crate::export_plugin!`] expands to.
//! - [`derive`]: answers computed from series lists (default methods).
//! - [`support`]: code every plugin needs and none should write again:
//!   retries with backoff, the fetch point budget, statistics counters,
//!   health tracking.

pub mod adapters;
pub mod derive;
pub mod export;
pub mod logging;
pub mod runtime;
pub mod secret;
pub use secret::Secret;
pub mod support;
pub mod traits;

pub use adapters::IngestSink;
pub use export::parse_config;
pub use runtime::{runtime, spawn_ffi, spawn_ffi_cancellable};
#[cfg(not(feature = "previous-abi"))]
pub use traits::fetch_buckets_by_fetch;
pub use traits::{Consumer, MetadataBackend, MetricBackend, Query, SuggestBackend};
