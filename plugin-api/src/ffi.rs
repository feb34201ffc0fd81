//! The boundary itself: the root module every plugin library exports and the
//! `#[sabi_trait]` traits its backends are called through.
//!
//! Plugin authors do not implement these by hand: the SDK ([`crate::sdk`])
//! adapts ordinary async traits to them. The host calls them through the
//! wrappers in [`crate::client`].
//!
//! # Versions
//!
//! The version of this crate *is* the interface version: `MAJOR.MINOR`
//! (the patch number never changes the ABI). A host loads plugins built
//! against its own major version and the same or an older minor version
//! ([`crate::loader`] checks this, then the layout of every type).
//!
//! Rules for a minor version (see `docs/plugin-abi.md`):
//! - new methods of a `#[sabi_trait]` go after the last one, with a default
//!   body (what a plugin built before them answers), and new fields of
//!   [`PluginModule`] after `last_prefix_field`;
//! - value types (`types.rs`, [`PluginError`]) never change; enumerations
//!   that may grow are integers with named values ([`crate::ErrorKind`])
//!   and options are bit sets ([`MetadataCapabilities`]);
//! - the additions of the newest minor version carry
//!   `#[cfg(not(feature = "previous-abi"))]`, so that the compatibility
//!   test can build a plugin exactly as the previous version would have
//!   (the gates of the minor version before are removed at the same time).

use abi_stable::library::RootModule;
#[cfg(not(feature = "previous-abi"))]
use abi_stable::package_version_strings;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RBox, RResult, RStr, RString, RVec};
use abi_stable::{declare_root_module_statics, sabi_trait, StableAbi};
use async_ffi::FfiFuture;

#[cfg(not(feature = "previous-abi"))]
use crate::buckets::*;
use crate::error::PluginError;
use crate::samples::*;
use crate::types::*;

/// The future every asynchronous plugin call returns. The work runs on the
/// plugin's own runtime; the host only awaits the result.
pub type PluginFuture<T> = FfiFuture<RResult<T, PluginError>>;

/// Severity of a log event forwarded from a plugin to the host.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// One log event from a plugin: the fields are already formatted into
/// `fields` as `key=value` pairs.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct LogRecord<'a> {
    /// The plugin's name, as given to `export_plugin!`.
    pub plugin: RStr<'a>,
    pub level: LogLevel,
    pub target: RStr<'a>,
    pub message: RStr<'a>,
    pub fields: RStr<'a>,
}

/// What the host hands a plugin once, right after loading it.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct HostContext {
    /// Called for every log event at or above `max_level`.
    pub log: extern "C" fn(LogRecord<'_>),
    /// The most verbose level the host wants to see.
    pub max_level: LogLevel,
}

/// Which kinds of component a plugin library provides (bit set).
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PluginKinds(pub u32);

impl PluginKinds {
    pub const METRIC: u32 = 1;
    pub const METADATA: u32 = 2;
    pub const SUGGEST: u32 = 4;
    pub const CONSUMER: u32 = 8;

    pub fn has(self, kind: u32) -> bool {
        self.0 & kind != 0
    }

    /// Names of the kinds provided, for messages.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Self::METRIC, "metrics"),
            (Self::METADATA, "metadata"),
            (Self::SUGGEST, "suggest"),
            (Self::CONSUMER, "consumer"),
        ]
        .into_iter()
        .filter(|(k, _)| self.has(*k))
        .map(|(_, n)| n)
        .collect()
    }
}

/// How a plugin library was built (bit set).
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BuildFlags(pub u32);

impl BuildFlags {
    /// Built with `panic = "unwind"`. Without it every panic the SDK would
    /// turn into an error aborts the whole host instead, so the host refuses
    /// such a library.
    pub const PANIC_UNWIND: u32 = 1;

    pub const fn has(self, flag: u32) -> bool {
        self.0 & flag != 0
    }
}

/// Describes a plugin library.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct PluginInfo {
    /// The plugin's name, as written in the host's config (`plugin = "local"`).
    pub name: RString,
    /// The plugin's own version (its crate version).
    pub version: RString,
    pub kinds: PluginKinds,
    pub build: BuildFlags,
}

/// Declares [`MetricBackendFfi`] with the methods of the newest minor
/// version given as arguments, so that the `previous-abi` feature can leave
/// them out (`#[sabi_trait]` does not honour `#[cfg]` on a method).
macro_rules! metric_backend_ffi {
    ($($added:tt)*) => {
        /// A metric backend: stores and reads points.
        #[sabi_trait]
        pub trait MetricBackendFfi: Send + Sync {
            /// Writes points; resolves once they are durable.
            fn write(&self, batch: RVec<SeriesPoints>) -> PluginFuture<()>;
            /// Reads points of many series in `(start, end]`.
            fn fetch(&self, request: FetchRequest) -> PluginFuture<FetchResponse>;
            /// Lists stored series, a page at a time.
            fn list_series(&self, cursor: RString, limit: u64) -> PluginFuture<SeriesListPage>;
            /// Deletes the points of these series in `(start, end]`; returns how many series had data.
            fn delete_points(&self, series: RVec<Series>, range: TimeRange) -> PluginFuture<u64>;
            /// Counts the points of these series in `(start, end]`.
            fn count_points(&self, series: RVec<Series>, range: TimeRange) -> PluginFuture<u64>;
            /// Creates tables or whatever the backend needs (`configure`).
            fn configure(&self) -> PluginFuture<()>;
            /// Flushes buffers and releases resources; called once at shutdown.
            fn shutdown(&self) -> PluginFuture<()>;
            fn health(&self) -> Health;
            #[sabi(last_prefix_field)]
            fn statistics(&self) -> RVec<Statistic>;

            $($added)*
        }
    };
}

/// The methods of the minor versions before the newest, written once for
/// both builds of the interface.
macro_rules! metric_backend_ffi_with {
    ($($newest:tt)*) => {
        metric_backend_ffi! {
            // ---- added in 1.1 ----

            /// What the backend implements beyond `write` and `fetch`. A plugin
            /// built against 1.0 answers with this default.
            fn capabilities(&self) -> MetricCapabilities {
                MetricCapabilities::ASSUMED_FOR_1_0
            }

            // ---- added in 1.2 ----

            /// Writes samples other than points (distributions …); resolves once
            /// they are durable. A plugin built before 1.2 answers `Unsupported`.
            fn write_samples(&self, request: SampleWriteRequest) -> PluginFuture<()> {
                let _ = request;
                unsupported_future("write_samples")
            }

            /// Reads samples of one kind in `(start, end]`. A plugin built before
            /// 1.2 answers `Unsupported`.
            fn fetch_samples(&self, request: SampleFetchRequest) -> PluginFuture<SampleFetchResponse> {
                let _ = request;
                unsupported_future("fetch_samples")
            }

            $($newest)*
        }
    };
}

#[cfg(not(feature = "previous-abi"))]
metric_backend_ffi_with! {
    // ---- added in 1.3 ----

    /// Reads points and folds them into per-bucket partial states (see
    /// [`crate::buckets`]). A plugin built before 1.3 answers `Unsupported`.
    fn fetch_buckets(&self, request: BucketFetchRequest) -> PluginFuture<BucketFetchResponse> {
        let _ = request;
        unsupported_future("fetch_buckets")
    }
}

#[cfg(feature = "previous-abi")]
metric_backend_ffi_with! {}

/// The answer of a method a plugin does not implement (the default body
/// of methods added in a minor version).
fn unsupported_future<T: Send + 'static>(operation: &str) -> PluginFuture<T> {
    use async_ffi::FutureExt;
    std::future::ready(RResult::RErr(PluginError::unsupported(operation))).into_ffi()
}

/// A metadata backend: finds series by filter.
#[sabi_trait]
pub trait MetadataBackendFfi: Send + Sync {
    fn write(&self, series: RVec<Series>) -> PluginFuture<()>;
    fn find_series(&self, query: MetadataQuery) -> PluginFuture<SeriesPage>;
    fn count_series(&self, query: MetadataQuery) -> PluginFuture<CountResult>;
    fn delete_series(&self, query: MetadataQuery) -> PluginFuture<DeleteResult>;
    fn find_keys(&self, query: MetadataQuery) -> PluginFuture<KeysPage>;
    fn find_tags(&self, query: MetadataQuery) -> PluginFuture<TagsPage>;
    fn capabilities(&self) -> MetadataCapabilities;
    fn configure(&self) -> PluginFuture<()>;
    fn shutdown(&self) -> PluginFuture<()>;
    fn health(&self) -> Health;
    #[sabi(last_prefix_field)]
    fn statistics(&self) -> RVec<Statistic>;
}

/// A suggest backend: answers the suggestion endpoints.
#[sabi_trait]
pub trait SuggestBackendFfi: Send + Sync {
    fn write(&self, series: RVec<Series>) -> PluginFuture<()>;
    fn key_suggest(&self, request: KeySuggestRequest) -> PluginFuture<RVec<KeySuggestion>>;
    fn tag_suggest(&self, request: TagSuggestRequest) -> PluginFuture<RVec<TagSuggestion>>;
    fn tag_value_suggest(&self, request: TagValueSuggestRequest) -> PluginFuture<TagValueSuggestion>;
    fn tag_values_suggest(&self, request: TagValuesSuggestRequest) -> PluginFuture<TagValuesSuggestion>;
    fn tag_key_count(&self, request: TagKeyCountRequest) -> PluginFuture<TagKeyCountResult>;
    fn configure(&self) -> PluginFuture<()>;
    fn shutdown(&self) -> PluginFuture<()>;
    fn health(&self) -> Health;
    #[sabi(last_prefix_field)]
    fn statistics(&self) -> RVec<Statistic>;
}

/// Implemented by the host and handed to a consumer: the consumer gives it
/// batches of raw messages and acknowledges them only after it answers `Ok`.
#[sabi_trait]
pub trait IngestSinkFfi: Send + Sync {
    #[sabi(last_prefix_field)]
    fn ingest(&self, batch: RVec<RawMessage>) -> PluginFuture<IngestOutcome>;
}

/// A consumer: takes messages from a queue and hands them to the host.
#[sabi_trait]
pub trait ConsumerFfi: Send + Sync {
    /// Starts consuming into `sink`; resolves once consumption has started.
    fn start(&self, sink: IngestSinkBox) -> PluginFuture<()>;
    /// Stops taking new messages, finishes (and acknowledges) what is in
    /// flight, then resolves.
    fn stop(&self) -> PluginFuture<()>;
    fn health(&self) -> Health;
    #[sabi(last_prefix_field)]
    fn statistics(&self) -> RVec<Statistic>;
}

pub type MetricBackendBox = MetricBackendFfi_TO<'static, RBox<()>>;
pub type MetadataBackendBox = MetadataBackendFfi_TO<'static, RBox<()>>;
pub type SuggestBackendBox = SuggestBackendFfi_TO<'static, RBox<()>>;
pub type IngestSinkBox = IngestSinkFfi_TO<'static, RBox<()>>;
pub type ConsumerBox = ConsumerFfi_TO<'static, RBox<()>>;

/// The root module: what a plugin library exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
// Fields added after `last_prefix_field` in later minor versions are read
// through accessors returning `Option` (`None` from an older plugin).
#[sabi(missing_field(option))]
pub struct PluginModule {
    pub info: extern "C" fn() -> PluginInfo,
    /// Called once, before any `create_*`.
    pub init: extern "C" fn(HostContext),
    // Each `create_*` builds one component from its config, given as a JSON
    // object. (Written out in full: the StableAbi derive must see fn types.)
    pub create_metric_backend: extern "C" fn(config_json: RString) -> FfiFuture<RResult<MetricBackendBox, PluginError>>,
    pub create_metadata_backend:
        extern "C" fn(config_json: RString) -> FfiFuture<RResult<MetadataBackendBox, PluginError>>,
    pub create_suggest_backend:
        extern "C" fn(config_json: RString) -> FfiFuture<RResult<SuggestBackendBox, PluginError>>,
    #[sabi(last_prefix_field)]
    pub create_consumer: extern "C" fn(config_json: RString) -> FfiFuture<RResult<ConsumerBox, PluginError>>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "heroic_plugin";
    const NAME: &'static str = "heroic_plugin";
    #[cfg(not(feature = "previous-abi"))]
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
    #[cfg(feature = "previous-abi")]
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(API_VERSION);
}

/// The interface version a plugin built against this crate declares: the
/// crate's version (or the previous minor version, under the `previous-abi`
/// feature of the compatibility test).
#[cfg(not(feature = "previous-abi"))]
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");
#[cfg(feature = "previous-abi")]
pub const API_VERSION: &str = "1.2.0";

/// The symbol name abi_stable looks up in a plugin library. The export macro
/// writes it as a literal (macro_rules cannot compute it); a test checks that
/// it still matches abi_stable's.
#[doc(hidden)]
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";
