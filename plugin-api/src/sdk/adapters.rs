//! Adapters from the author-facing traits to the `#[sabi_trait]` ones.
//!
//! Each method clones the `Arc` to the backend and hands back an FFI future
//! that runs the call inside the plugin runtime (`runtime::InPlace`): one
//! boundary crossing per call, whatever the batch size. Synchronous methods
//! are guarded so a panic becomes an error value instead of aborting the
//! host.

use std::sync::Arc;

use abi_stable::std_types::{RString, RVec};

#[cfg(not(feature = "previous-abi"))]
use crate::buckets::*;
use crate::error::{PluginError, PluginResult};
use crate::ffi::*;
use crate::samples::*;
use crate::sdk::runtime::{guard_future, guard_or, ready_ffi, spawn_ffi, spawn_ffi_cancellable};
use crate::sdk::traits::{Consumer, MetadataBackend, MetricBackend, Query, SuggestBackend};
use crate::types::*;

/// Decodes the stable query once, so backends see an ordinary filter.
fn decode(query: MetadataQuery) -> PluginResult<Query> {
    let filter =
        query.filter.to_filter().map_err(|e| PluginError::invalid_input(format_args!("invalid filter: {e}")))?;
    Ok(Query { filter, range: query.range, limit: query.limit })
}

fn unhealthy(e: PluginError) -> Health {
    Health::unhealthy(e.to_string())
}

fn no_statistics(_: PluginError) -> RVec<Statistic> {
    RVec::new()
}

/// Spawns `$call` (an expression using `this`, a clone of the backend `Arc`)
/// to run to its end, even if the host stops waiting (writes, deletes,
/// lifecycle). The setup is guarded: these run inside `extern "C"` methods.
macro_rules! spawn_call {
    ($self:ident, |$this:ident| $call:expr) => {{
        guard_future(|| {
            let $this = Arc::clone(&$self.0);
            spawn_ffi(async move { $call.await })
        })
    }};
}

/// Spawns a read: dropped by the host (timeout, client gone), it is cancelled.
macro_rules! spawn_read {
    ($self:ident, |$this:ident| $call:expr) => {{
        guard_future(|| {
            let $this = Arc::clone(&$self.0);
            spawn_ffi_cancellable(async move { $call.await })
        })
    }};
}

/// The methods every backend kind shares: configure, shutdown, health, statistics.
macro_rules! lifecycle_methods {
    () => {
        fn configure(&self) -> PluginFuture<()> {
            spawn_call!(self, |this| this.configure())
        }

        fn shutdown(&self) -> PluginFuture<()> {
            spawn_call!(self, |this| this.shutdown())
        }

        fn health(&self) -> Health {
            guard_or(unhealthy, || self.0.health())
        }

        fn statistics(&self) -> RVec<Statistic> {
            guard_or(no_statistics, || self.0.statistics().into())
        }
    };
}

/// Spawns a call whose stable query must be decoded first; a read (cancelled
/// when dropped) unless `write` is given.
macro_rules! spawn_query {
    ($self:ident, $query:expr, |$this:ident, $q:ident| $call:expr) => {{
        guard_future(|| match decode($query) {
            Ok($q) => spawn_read!($self, |$this| $call),
            Err(e) => ready_ffi(Err(e)),
        })
    }};
    (write $self:ident, $query:expr, |$this:ident, $q:ident| $call:expr) => {{
        guard_future(|| match decode($query) {
            Ok($q) => spawn_call!($self, |$this| $call),
            Err(e) => ready_ffi(Err(e)),
        })
    }};
}

pub struct MetricAdapter<B>(pub Arc<B>);

impl<B: MetricBackend> MetricBackendFfi for MetricAdapter<B> {
    fn write(&self, batch: RVec<SeriesPoints>) -> PluginFuture<()> {
        spawn_call!(self, |this| this.write(batch))
    }

    fn fetch(&self, request: FetchRequest) -> PluginFuture<FetchResponse> {
        spawn_read!(self, |this| this.fetch(request))
    }

    fn list_series(&self, cursor: RString, limit: u64) -> PluginFuture<SeriesListPage> {
        let cursor = (!cursor.is_empty()).then(|| cursor.into_string());
        spawn_read!(self, |this| this.list_series(cursor, limit))
    }

    fn delete_points(&self, series: RVec<Series>, range: TimeRange) -> PluginFuture<u64> {
        spawn_call!(self, |this| this.delete_points(series, range))
    }

    fn count_points(&self, series: RVec<Series>, range: TimeRange) -> PluginFuture<u64> {
        spawn_read!(self, |this| this.count_points(series, range))
    }

    fn capabilities(&self) -> MetricCapabilities {
        // A panicking capabilities() declares nothing beyond the required.
        guard_or(|_| MetricCapabilities::NONE, || self.0.capabilities())
    }

    fn write_samples(&self, request: SampleWriteRequest) -> PluginFuture<()> {
        spawn_call!(self, |this| this.write_samples(request.kind, request.batch))
    }

    fn fetch_samples(&self, request: SampleFetchRequest) -> PluginFuture<SampleFetchResponse> {
        spawn_read!(self, |this| this.fetch_samples(request))
    }

    #[cfg(not(feature = "previous-abi"))]
    fn fetch_buckets(&self, request: BucketFetchRequest) -> PluginFuture<BucketFetchResponse> {
        spawn_read!(self, |this| this.fetch_buckets(request))
    }

    lifecycle_methods!();
}

pub struct MetadataAdapter<B>(pub Arc<B>);

impl<B: MetadataBackend> MetadataBackendFfi for MetadataAdapter<B> {
    fn write(&self, series: RVec<Series>) -> PluginFuture<()> {
        spawn_call!(self, |this| this.write(series))
    }

    fn find_series(&self, query: MetadataQuery) -> PluginFuture<SeriesPage> {
        spawn_query!(self, query, |this, q| this.find_series(q))
    }

    fn count_series(&self, query: MetadataQuery) -> PluginFuture<CountResult> {
        spawn_query!(self, query, |this, q| this.count_series(q))
    }

    fn delete_series(&self, query: MetadataQuery) -> PluginFuture<DeleteResult> {
        spawn_query!(write self, query, |this, q| this.delete_series(q))
    }

    fn find_keys(&self, query: MetadataQuery) -> PluginFuture<KeysPage> {
        spawn_query!(self, query, |this, q| this.find_keys(q))
    }

    fn find_tags(&self, query: MetadataQuery) -> PluginFuture<TagsPage> {
        spawn_query!(self, query, |this, q| this.find_tags(q))
    }

    fn capabilities(&self) -> MetadataCapabilities {
        // A panicking capabilities() is treated as "can do nothing special".
        guard_or(|_| MetadataCapabilities::NONE, || self.0.capabilities())
    }

    lifecycle_methods!();
}

pub struct SuggestAdapter<B>(pub Arc<B>);

impl<B: SuggestBackend> SuggestBackendFfi for SuggestAdapter<B> {
    fn write(&self, series: RVec<Series>) -> PluginFuture<()> {
        spawn_call!(self, |this| this.write(series))
    }

    fn key_suggest(&self, request: KeySuggestRequest) -> PluginFuture<RVec<KeySuggestion>> {
        let key = request.key.into_option().map(RString::into_string);
        spawn_query!(self, request.query, |this, q| async move { this.key_suggest(q, key).await.map(RVec::from) })
    }

    fn tag_suggest(&self, request: TagSuggestRequest) -> PluginFuture<RVec<TagSuggestion>> {
        let key = request.key.into_option().map(RString::into_string);
        let value = request.value.into_option().map(RString::into_string);
        spawn_query!(
            self,
            request.query,
            |this, q| async move { this.tag_suggest(q, key, value).await.map(RVec::from) }
        )
    }

    fn tag_value_suggest(&self, request: TagValueSuggestRequest) -> PluginFuture<TagValueSuggestion> {
        let key = request.key.into_string();
        spawn_query!(self, request.query, |this, q| this.tag_value_suggest(q, key))
    }

    fn tag_values_suggest(&self, request: TagValuesSuggestRequest) -> PluginFuture<TagValuesSuggestion> {
        let exclude: Vec<String> = request.exclude.into_iter().map(RString::into_string).collect();
        let group_limit = request.group_limit;
        spawn_query!(self, request.query, |this, q| this.tag_values_suggest(q, exclude, group_limit))
    }

    fn tag_key_count(&self, request: TagKeyCountRequest) -> PluginFuture<TagKeyCountResult> {
        let exact_limit = request.exact_limit;
        spawn_query!(self, request.query, |this, q| this.tag_key_count(q, exact_limit))
    }

    lifecycle_methods!();
}

pub struct ConsumerAdapter<C>(pub Arc<C>);

impl<C: Consumer> ConsumerFfi for ConsumerAdapter<C> {
    fn start(&self, sink: IngestSinkBox) -> PluginFuture<()> {
        spawn_call!(self, |this| this.start(crate::sdk::IngestSink::new(sink)))
    }

    fn stop(&self) -> PluginFuture<()> {
        spawn_call!(self, |this| this.stop())
    }

    fn health(&self) -> Health {
        guard_or(unhealthy, || self.0.health())
    }

    fn statistics(&self) -> RVec<Statistic> {
        guard_or(no_statistics, || self.0.statistics().into())
    }
}

/// The consumer's handle on the host: hand it batches, acknowledge on `Ok`.
#[derive(Clone)]
pub struct IngestSink(Arc<IngestSinkBox>);

impl IngestSink {
    pub fn new(sink: IngestSinkBox) -> Self {
        IngestSink(Arc::new(sink))
    }

    /// Gives a batch to the host; resolves once its valid messages are
    /// durable in every backend (acknowledge then), or with an error (do not
    /// acknowledge; retry later).
    pub async fn ingest(&self, batch: Vec<RawMessage>) -> PluginResult<IngestOutcome> {
        self.0.ingest(batch.into()).await.into_result()
    }
}
