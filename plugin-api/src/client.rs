//! The host side of the boundary: async wrappers over the ABI objects, with
//! plain Rust arguments where that helps and `Result` instead of `RResult`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use abi_stable::std_types::{RString, RVec};

#[cfg(not(feature = "previous-abi"))]
use crate::buckets::*;
use crate::error::PluginResult;
use crate::ffi::*;
use crate::filter::Filter;
use crate::samples::*;
use crate::types::*;

/// Builds the stable query from plain parts.
pub fn metadata_query(filter: &Filter, range: TimeRange, limit: u64) -> MetadataQuery {
    MetadataQuery { filter: filter.to_ffi(), range, limit }
}

/// Told of every call a client makes into its plugin, with how long it took
/// and how it ended: how the host counts plugin calls and their errors
/// (`GET /metrics`). Not told: calls the client answers itself (a kind of
/// sample the backend does not store), calls dropped before they ended (a
/// query that timed out), and the synchronous `health`, `statistics` and
/// `capabilities`.
pub trait CallObserver: Send + Sync {
    /// `operation` is the name of the plugin's method (`fetch`, `write` …).
    fn observe(&self, operation: &'static str, elapsed: Duration, error: Option<&crate::PluginError>);
}

/// A client's observer, if the host gave it one.
#[derive(Clone, Default)]
struct Observer(Option<Arc<dyn CallObserver>>);

impl Observer {
    async fn call<T>(&self, operation: &'static str, call: PluginFuture<T>) -> PluginResult<T> {
        let Some(observer) = &self.0 else { return call.await.into_result() };
        let start = Instant::now();
        let result = call.await.into_result();
        observer.observe(operation, start.elapsed(), result.as_ref().err());
        result
    }
}

/// A client: the plugin's object and the observer of its calls.
macro_rules! observed_client {
    ($client:ident, $ffi:ty) => {
        pub struct $client {
            /// The plugin's object.
            pub ffi: $ffi,
            observer: Observer,
        }

        impl $client {
            pub fn new(ffi: $ffi) -> Self {
                $client { ffi, observer: Observer::default() }
            }

            /// Tells `observer` (if any) of every call into the plugin from
            /// now on.
            pub fn observed_by(mut self, observer: Option<Arc<dyn CallObserver>>) -> Self {
                self.observer = Observer(observer);
                self
            }
        }
    };
}

/// The methods every backend client shares.
macro_rules! lifecycle_methods {
    () => {
        /// Creates tables, indices … (`configure`).
        pub async fn configure(&self) -> PluginResult<()> {
            self.observer.call("configure", self.ffi.configure()).await
        }

        /// Flushes and closes the backend.
        pub async fn shutdown(&self) -> PluginResult<()> {
            self.observer.call("shutdown", self.ffi.shutdown()).await
        }

        pub fn health(&self) -> Health {
            self.ffi.health()
        }

        pub fn statistics(&self) -> Vec<Statistic> {
            self.ffi.statistics().into_vec()
        }
    };
}

/// The error for a kind of sample the backend does not store.
fn cannot_store(kind: SampleKind) -> crate::PluginError {
    crate::PluginError::unsupported(&format!("storing {} (the backend does not declare it)", kind.name()))
}

observed_client!(MetricBackendClient, MetricBackendBox);

impl MetricBackendClient {
    pub async fn write(&self, batch: RVec<SeriesPoints>) -> PluginResult<()> {
        self.observer.call("write", self.ffi.write(batch)).await
    }

    pub async fn fetch(&self, request: FetchRequest) -> PluginResult<FetchResponse> {
        self.observer.call("fetch", self.ffi.fetch(request)).await
    }

    pub async fn list_series(&self, cursor: Option<&str>, limit: u64) -> PluginResult<SeriesListPage> {
        self.observer.call("list_series", self.ffi.list_series(RString::from(cursor.unwrap_or("")), limit)).await
    }

    pub async fn delete_points(&self, series: Vec<Series>, range: TimeRange) -> PluginResult<u64> {
        self.observer.call("delete_points", self.ffi.delete_points(series.into(), range)).await
    }

    pub async fn count_points(&self, series: Vec<Series>, range: TimeRange) -> PluginResult<u64> {
        self.observer.call("count_points", self.ffi.count_points(series.into(), range)).await
    }

    /// What the backend implements beyond `write` and `fetch` (a plugin
    /// built against interface 1.0 answers
    /// [`MetricCapabilities::ASSUMED_FOR_1_0`]).
    pub fn capabilities(&self) -> MetricCapabilities {
        self.ffi.capabilities()
    }

    /// Whether the backend declares that it stores samples of `kind`.
    pub fn stores(&self, kind: SampleKind) -> bool {
        kind.capability().is_some_and(|bit| self.capabilities().contains(bit))
    }

    /// Writes samples of one kind. A backend that does not declare the
    /// kind is not called: the answer is `Unsupported` right away.
    pub async fn write_samples(&self, kind: SampleKind, batch: Vec<SeriesSamples>) -> PluginResult<()> {
        if !self.stores(kind) {
            return Err(cannot_store(kind));
        }
        self.observer
            .call("write_samples", self.ffi.write_samples(SampleWriteRequest { kind, batch: batch.into() }))
            .await
    }

    /// Reads samples of one kind in `(start, end]`. The batches a plugin
    /// returns are checked before the host slices them: a malformed one is
    /// an `Internal` error, not a panic.
    pub async fn fetch_samples(&self, request: SampleFetchRequest) -> PluginResult<SampleFetchResponse> {
        if !self.stores(request.kind) {
            return Err(cannot_store(request.kind));
        }
        let response = self.observer.call("fetch_samples", self.ffi.fetch_samples(request)).await?;
        for s in response.series.iter() {
            s.samples.validate().map_err(|e| crate::PluginError::internal(format_args!("plugin answered {e}")))?;
        }
        Ok(response)
    }

    /// Whether the backend declares [`MetricCapabilities::FETCH_BUCKETS`].
    #[cfg(not(feature = "previous-abi"))]
    pub fn folds_buckets(&self) -> bool {
        self.capabilities().contains(MetricCapabilities::FETCH_BUCKETS)
    }

    /// Reads points folded into per-bucket partials (interface 1.3). A
    /// backend that does not declare it is not called. The answer is
    /// checked before the host reads it: partials of the wrong size or a
    /// series index out of range are an `Internal` error, not a panic.
    #[cfg(not(feature = "previous-abi"))]
    pub async fn fetch_buckets(&self, request: BucketFetchRequest) -> PluginResult<BucketFetchResponse> {
        if !self.folds_buckets() {
            return Err(crate::PluginError::unsupported("fetch_buckets (the backend does not declare it)"));
        }
        request.validate().map_err(crate::PluginError::invalid_input)?;
        let (cells, series, fields) = (request.cells(), request.series.len(), request.fields);
        let response = self.observer.call("fetch_buckets", self.ffi.fetch_buckets(request)).await?;
        let bad = |m: String| crate::PluginError::internal(format_args!("plugin answered {m}"));
        response.partials.validate(cells, fields).map_err(bad)?;
        if let Some(i) = response.series_with_data.iter().find(|i| **i as usize >= series) {
            return Err(bad(format!("series index {i} of {series}")));
        }
        Ok(response)
    }

    lifecycle_methods!();
}

observed_client!(MetadataBackendClient, MetadataBackendBox);

impl MetadataBackendClient {
    pub async fn write(&self, series: Vec<Series>) -> PluginResult<()> {
        self.observer.call("write", self.ffi.write(series.into())).await
    }

    pub async fn find_series(&self, filter: &Filter, range: TimeRange, limit: u64) -> PluginResult<SeriesPage> {
        self.observer.call("find_series", self.ffi.find_series(metadata_query(filter, range, limit))).await
    }

    pub async fn count_series(&self, filter: &Filter, range: TimeRange, limit: u64) -> PluginResult<CountResult> {
        self.observer.call("count_series", self.ffi.count_series(metadata_query(filter, range, limit))).await
    }

    pub async fn delete_series(&self, filter: &Filter, range: TimeRange, limit: u64) -> PluginResult<DeleteResult> {
        self.observer.call("delete_series", self.ffi.delete_series(metadata_query(filter, range, limit))).await
    }

    pub async fn find_keys(&self, filter: &Filter, range: TimeRange, limit: u64) -> PluginResult<KeysPage> {
        self.observer.call("find_keys", self.ffi.find_keys(metadata_query(filter, range, limit))).await
    }

    pub async fn find_tags(&self, filter: &Filter, range: TimeRange, limit: u64) -> PluginResult<TagsPage> {
        self.observer.call("find_tags", self.ffi.find_tags(metadata_query(filter, range, limit))).await
    }

    pub fn capabilities(&self) -> MetadataCapabilities {
        self.ffi.capabilities()
    }

    lifecycle_methods!();
}

observed_client!(SuggestBackendClient, SuggestBackendBox);

fn ropt(s: Option<&str>) -> abi_stable::std_types::ROption<RString> {
    s.map(RString::from).into()
}

impl SuggestBackendClient {
    pub async fn write(&self, series: Vec<Series>) -> PluginResult<()> {
        self.observer.call("write", self.ffi.write(series.into())).await
    }

    pub async fn key_suggest(&self, query: MetadataQuery, key: Option<&str>) -> PluginResult<Vec<KeySuggestion>> {
        let request = KeySuggestRequest { query, key: ropt(key) };
        self.observer.call("key_suggest", self.ffi.key_suggest(request)).await.map(RVec::into_vec)
    }

    pub async fn tag_suggest(
        &self,
        query: MetadataQuery,
        key: Option<&str>,
        value: Option<&str>,
    ) -> PluginResult<Vec<TagSuggestion>> {
        let request = TagSuggestRequest { query, key: ropt(key), value: ropt(value) };
        self.observer.call("tag_suggest", self.ffi.tag_suggest(request)).await.map(RVec::into_vec)
    }

    pub async fn tag_value_suggest(&self, query: MetadataQuery, key: &str) -> PluginResult<TagValueSuggestion> {
        self.observer
            .call("tag_value_suggest", self.ffi.tag_value_suggest(TagValueSuggestRequest { query, key: key.into() }))
            .await
    }

    pub async fn tag_values_suggest(
        &self,
        query: MetadataQuery,
        exclude: &[String],
        group_limit: u64,
    ) -> PluginResult<TagValuesSuggestion> {
        let exclude = exclude.iter().map(|s| RString::from(s.as_str())).collect();
        self.observer
            .call(
                "tag_values_suggest",
                self.ffi.tag_values_suggest(TagValuesSuggestRequest { query, exclude, group_limit }),
            )
            .await
    }

    pub async fn tag_key_count(&self, query: MetadataQuery, exact_limit: u64) -> PluginResult<TagKeyCountResult> {
        self.observer.call("tag_key_count", self.ffi.tag_key_count(TagKeyCountRequest { query, exact_limit })).await
    }

    lifecycle_methods!();
}

observed_client!(ConsumerClient, ConsumerBox);

impl ConsumerClient {
    pub async fn start(&self, sink: IngestSinkBox) -> PluginResult<()> {
        self.observer.call("start", self.ffi.start(sink)).await
    }

    pub async fn stop(&self) -> PluginResult<()> {
        self.observer.call("stop", self.ffi.stop()).await
    }

    pub fn health(&self) -> Health {
        self.ffi.health()
    }

    pub fn statistics(&self) -> Vec<Statistic> {
        self.ffi.statistics().into_vec()
    }
}
