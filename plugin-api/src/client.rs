//! The host side of the boundary: async wrappers over the ABI objects, with
//! plain Rust arguments where that helps and `Result` instead of `RResult`.

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

/// The methods every backend client shares.
macro_rules! lifecycle_methods {
    () => {
        /// Creates tables, indices … (`configure`).
        pub async fn configure(&self) -> PluginResult<()> {
            self.0.configure().await.into_result()
        }

        /// Flushes and closes the backend.
        pub async fn shutdown(&self) -> PluginResult<()> {
            self.0.shutdown().await.into_result()
        }

        pub fn health(&self) -> Health {
            self.0.health()
        }

        pub fn statistics(&self) -> Vec<Statistic> {
            self.0.statistics().into_vec()
        }
    };
}

/// The error for a kind of sample the backend does not store.
fn cannot_store(kind: SampleKind) -> crate::PluginError {
    crate::PluginError::unsupported(&format!("storing {} (the backend does not declare it)", kind.name()))
}

pub struct MetricBackendClient(pub MetricBackendBox);

impl MetricBackendClient {
    pub async fn write(&self, batch: RVec<SeriesPoints>) -> PluginResult<()> {
        self.0.write(batch).await.into_result()
    }

    pub async fn fetch(&self, request: FetchRequest) -> PluginResult<FetchResponse> {
        self.0.fetch(request).await.into_result()
    }

    pub async fn list_series(&self, cursor: Option<&str>, limit: u64) -> PluginResult<SeriesListPage> {
        self.0.list_series(RString::from(cursor.unwrap_or("")), limit).await.into_result()
    }

    pub async fn delete_points(&self, series: Vec<Series>, range: TimeRange) -> PluginResult<u64> {
        self.0.delete_points(series.into(), range).await.into_result()
    }

    pub async fn count_points(&self, series: Vec<Series>, range: TimeRange) -> PluginResult<u64> {
        self.0.count_points(series.into(), range).await.into_result()
    }

    /// What the backend implements beyond `write` and `fetch` (a plugin
    /// built against interface 1.0 answers
    /// [`MetricCapabilities::ASSUMED_FOR_1_0`]).
    pub fn capabilities(&self) -> MetricCapabilities {
        self.0.capabilities()
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
        self.0.write_samples(SampleWriteRequest { kind, batch: batch.into() }).await.into_result()
    }

    /// Reads samples of one kind in `(start, end]`. The batches a plugin
    /// returns are checked before the host slices them: a malformed one is
    /// an `Internal` error, not a panic.
    pub async fn fetch_samples(&self, request: SampleFetchRequest) -> PluginResult<SampleFetchResponse> {
        if !self.stores(request.kind) {
            return Err(cannot_store(request.kind));
        }
        let response = self.0.fetch_samples(request).await.into_result()?;
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
        let response = self.0.fetch_buckets(request).await.into_result()?;
        let bad = |m: String| crate::PluginError::internal(format_args!("plugin answered {m}"));
        response.partials.validate(cells, fields).map_err(bad)?;
        if let Some(i) = response.series_with_data.iter().find(|i| **i as usize >= series) {
            return Err(bad(format!("series index {i} of {series}")));
        }
        Ok(response)
    }

    lifecycle_methods!();
}

pub struct MetadataBackendClient(pub MetadataBackendBox);

impl MetadataBackendClient {
    pub async fn write(&self, series: Vec<Series>) -> PluginResult<()> {
        self.0.write(series.into()).await.into_result()
    }

    pub async fn find_series(&self, filter: &Filter, range: TimeRange, limit: u64) -> PluginResult<SeriesPage> {
        self.0.find_series(metadata_query(filter, range, limit)).await.into_result()
    }

    pub async fn count_series(&self, filter: &Filter, range: TimeRange, limit: u64) -> PluginResult<CountResult> {
        self.0.count_series(metadata_query(filter, range, limit)).await.into_result()
    }

    pub async fn delete_series(&self, filter: &Filter, range: TimeRange, limit: u64) -> PluginResult<DeleteResult> {
        self.0.delete_series(metadata_query(filter, range, limit)).await.into_result()
    }

    pub async fn find_keys(&self, filter: &Filter, range: TimeRange, limit: u64) -> PluginResult<KeysPage> {
        self.0.find_keys(metadata_query(filter, range, limit)).await.into_result()
    }

    pub async fn find_tags(&self, filter: &Filter, range: TimeRange, limit: u64) -> PluginResult<TagsPage> {
        self.0.find_tags(metadata_query(filter, range, limit)).await.into_result()
    }

    pub fn capabilities(&self) -> MetadataCapabilities {
        self.0.capabilities()
    }

    lifecycle_methods!();
}

pub struct SuggestBackendClient(pub SuggestBackendBox);

fn ropt(s: Option<&str>) -> abi_stable::std_types::ROption<RString> {
    s.map(RString::from).into()
}

impl SuggestBackendClient {
    pub async fn write(&self, series: Vec<Series>) -> PluginResult<()> {
        self.0.write(series.into()).await.into_result()
    }

    pub async fn key_suggest(&self, query: MetadataQuery, key: Option<&str>) -> PluginResult<Vec<KeySuggestion>> {
        let request = KeySuggestRequest { query, key: ropt(key) };
        self.0.key_suggest(request).await.into_result().map(RVec::into_vec)
    }

    pub async fn tag_suggest(
        &self,
        query: MetadataQuery,
        key: Option<&str>,
        value: Option<&str>,
    ) -> PluginResult<Vec<TagSuggestion>> {
        let request = TagSuggestRequest { query, key: ropt(key), value: ropt(value) };
        self.0.tag_suggest(request).await.into_result().map(RVec::into_vec)
    }

    pub async fn tag_value_suggest(&self, query: MetadataQuery, key: &str) -> PluginResult<TagValueSuggestion> {
        self.0.tag_value_suggest(TagValueSuggestRequest { query, key: key.into() }).await.into_result()
    }

    pub async fn tag_values_suggest(
        &self,
        query: MetadataQuery,
        exclude: &[String],
        group_limit: u64,
    ) -> PluginResult<TagValuesSuggestion> {
        let exclude = exclude.iter().map(|s| RString::from(s.as_str())).collect();
        self.0.tag_values_suggest(TagValuesSuggestRequest { query, exclude, group_limit }).await.into_result()
    }

    pub async fn tag_key_count(&self, query: MetadataQuery, exact_limit: u64) -> PluginResult<TagKeyCountResult> {
        self.0.tag_key_count(TagKeyCountRequest { query, exact_limit }).await.into_result()
    }

    lifecycle_methods!();
}

pub struct ConsumerClient(pub ConsumerBox);

impl ConsumerClient {
    pub async fn start(&self, sink: IngestSinkBox) -> PluginResult<()> {
        self.0.start(sink).await.into_result()
    }

    pub async fn stop(&self) -> PluginResult<()> {
        self.0.stop().await.into_result()
    }

    pub fn health(&self) -> Health {
        self.0.health()
    }

    pub fn statistics(&self) -> Vec<Statistic> {
        self.0.statistics().into_vec()
    }
}
