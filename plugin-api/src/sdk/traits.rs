//! The traits a plugin author implements: ordinary async Rust.
//!
//! Every method has the stable types in its signature where data is bulky
//! (points, series lists) so nothing is copied at the boundary, and plain
//! Rust types elsewhere. Optional operations have default bodies that answer
//! "unsupported".

use std::future::Future;
use std::sync::Arc;

use abi_stable::std_types::RVec;
use serde::de::DeserializeOwned;

#[cfg(not(feature = "previous-abi"))]
use crate::buckets::*;
use crate::error::{PluginError, PluginResult};
use crate::filter::Filter;
use crate::samples::*;
use crate::types::*;

/// A metadata or suggest query with its filter already decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub filter: Filter,
    /// Backends with time-based indices use it to pick indices; it is not a
    /// filter on series.
    pub range: TimeRange,
    /// At most this many results (0: no limit).
    pub limit: u64,
}

impl Query {
    /// The limit as an `Option`, `None` meaning unlimited.
    pub fn limit(&self) -> Option<usize> {
        (self.limit > 0).then_some(self.limit as usize)
    }
}

/// A metric backend. Implement it and name the type in [`crate::export_plugin!`].
pub trait MetricBackend: Sized + Send + Sync + 'static {
    /// The plugin's config table, parsed from JSON. Use
    /// `#[serde(deny_unknown_fields)]` so typos are reported.
    type Config: DeserializeOwned + Send + 'static;

    /// Builds the backend; fail here if its server cannot be reached.
    fn create(config: Self::Config) -> impl Future<Output = PluginResult<Self>> + Send;

    /// Stores points; resolve only once they are durable.
    fn write(&self, batch: RVec<SeriesPoints>) -> impl Future<Output = PluginResult<()>> + Send;

    /// Reads points in `(start, end]` for every requested series.
    fn fetch(&self, request: FetchRequest) -> impl Future<Output = PluginResult<FetchResponse>> + Send;

    /// Lists stored series a page at a time; `cursor` is `None` for the first page.
    fn list_series(
        &self,
        _cursor: Option<String>,
        _limit: u64,
    ) -> impl Future<Output = PluginResult<SeriesListPage>> + Send {
        async { Err(PluginError::unsupported("list_series")) }
    }

    /// Deletes points in `(start, end]`; returns how many series had data.
    fn delete_points(
        &self,
        _series: RVec<Series>,
        _range: TimeRange,
    ) -> impl Future<Output = PluginResult<u64>> + Send {
        async { Err(PluginError::unsupported("delete_points")) }
    }

    /// Counts points in `(start, end]`. The default fetches and counts.
    fn count_points(&self, series: RVec<Series>, range: TimeRange) -> impl Future<Output = PluginResult<u64>> + Send {
        async move {
            let response = self.fetch(FetchRequest { series, range, point_limit: 0 }).await?;
            Ok(response.series.iter().map(|s| s.points.len() as u64).sum())
        }
    }

    /// Stores samples other than points (interface 1.2); resolve only once
    /// they are durable. Declare the kind's capability bit
    /// ([`SampleKind::capability`]) when you implement it; the default
    /// answers `Unsupported`, as does a kind you do not know.
    fn write_samples(
        &self,
        kind: SampleKind,
        _batch: RVec<SeriesSamples>,
    ) -> impl Future<Output = PluginResult<()>> + Send {
        async move { Err(PluginError::unsupported(&format!("write_samples of {}", kind.name()))) }
    }

    /// Reads samples of `request.kind` in `(start, end]` for every requested
    /// series (interface 1.2); the default answers `Unsupported`.
    fn fetch_samples(
        &self,
        request: SampleFetchRequest,
    ) -> impl Future<Output = PluginResult<SampleFetchResponse>> + Send {
        async move { Err(PluginError::unsupported(&format!("fetch_samples of {}", request.kind.name()))) }
    }

    /// Reads points in `(start, end]` and folds them into per-bucket
    /// partial states (interface 1.3, see [`crate::buckets`]): nothing per
    /// point crosses to the host. Declare
    /// [`MetricCapabilities::FETCH_BUCKETS`] to be asked. The default
    /// answers `Unsupported`; a backend that cannot fold while it decodes
    /// can answer [`fetch_buckets_by_fetch`], which folds what `fetch`
    /// answers, and already spares the boundary. Not when `fetch` answers
    /// several resource variants of one requested series: their resource
    /// tags may put them in other groups than the requested series'.
    #[cfg(not(feature = "previous-abi"))]
    fn fetch_buckets(
        &self,
        request: BucketFetchRequest,
    ) -> impl Future<Output = PluginResult<BucketFetchResponse>> + Send {
        let _ = request;
        async { Err(PluginError::unsupported("fetch_buckets")) }
    }

    /// The optional operations this backend implements. Declare every one
    /// you implement: the conformance kit fails a backend that answers
    /// `Unsupported` for a declared operation, or anything else for an
    /// undeclared one. The default declares `count_points`, which the SDK
    /// provides from `fetch`.
    fn capabilities(&self) -> MetricCapabilities {
        MetricCapabilities::COUNT_POINTS
    }

    /// Creates tables or whatever storage the backend needs.
    fn configure(&self) -> impl Future<Output = PluginResult<()>> + Send {
        async { Ok(()) }
    }

    /// Flushes and releases resources; called once when the host stops.
    fn shutdown(&self) -> impl Future<Output = PluginResult<()>> + Send {
        async { Ok(()) }
    }

    fn health(&self) -> Health {
        Health::healthy()
    }

    fn statistics(&self) -> Vec<Statistic> {
        Vec::new()
    }
}

/// A `fetch_buckets` for any backend: folds what `backend.fetch` answers
/// into the request's partials, one series after the other (see
/// [`MetricBackend::fetch_buckets`] for when not to use it).
#[cfg(not(feature = "previous-abi"))]
pub async fn fetch_buckets_by_fetch<B: MetricBackend>(
    backend: &B,
    request: BucketFetchRequest,
) -> PluginResult<BucketFetchResponse> {
    request.validate().map_err(PluginError::invalid_input)?;
    let fetch = FetchRequest { series: request.series.clone(), range: request.range, point_limit: request.point_limit };
    let fetched = backend.fetch(fetch).await?;
    let mut out = BucketFetchResponse {
        partials: BucketPartials::new(request.fields, request.cells()),
        limited: fetched.limited,
        ..BucketFetchResponse::default()
    };
    let mut seen = vec![false; request.series.len()];
    for s in fetched.series.iter() {
        let Some(&group) = request.groups.get(s.request_index as usize) else {
            return Err(PluginError::internal(format_args!("fetch answered unknown series {}", s.request_index)));
        };
        out.partials.fold(&request.layout, group as usize, &s.points.timestamps, &s.points.values);
        out.points += s.points.len() as u64;
        if !s.points.is_empty() && !std::mem::replace(&mut seen[s.request_index as usize], true) {
            out.series_with_data.push(s.request_index);
        }
    }
    Ok(out)
}

/// A metadata backend. Only `write` and `find_series` are required; the
/// others default to answers computed from `find_series`.
pub trait MetadataBackend: Sized + Send + Sync + 'static {
    type Config: DeserializeOwned + Send + 'static;

    fn create(config: Self::Config) -> impl Future<Output = PluginResult<Self>> + Send;

    fn write(&self, series: RVec<Series>) -> impl Future<Output = PluginResult<()>> + Send;

    /// Series matching the filter, at most `limit`, with `limited` set when
    /// more matched.
    fn find_series(&self, query: Query) -> impl Future<Output = PluginResult<SeriesPage>> + Send;

    fn count_series(&self, query: Query) -> impl Future<Output = PluginResult<CountResult>> + Send {
        async move {
            let page = self.find_series(query).await?;
            Ok(CountResult { count: page.series.len() as u64, limited: page.limited })
        }
    }

    fn delete_series(&self, _query: Query) -> impl Future<Output = PluginResult<DeleteResult>> + Send {
        async { Err(PluginError::unsupported("delete_series")) }
    }

    fn find_keys(&self, query: Query) -> impl Future<Output = PluginResult<KeysPage>> + Send {
        async move {
            let limit = query.limit();
            let page = self.find_series(Query { limit: 0, ..query }).await?;
            Ok(crate::sdk::derive::keys_of(&page.series, limit))
        }
    }

    fn find_tags(&self, query: Query) -> impl Future<Output = PluginResult<TagsPage>> + Send {
        async move {
            let limit = query.limit();
            let page = self.find_series(Query { limit: 0, ..query }).await?;
            Ok(crate::sdk::derive::tags_of(&page.series, limit))
        }
    }

    /// What the backend does beyond the required operations. A backend
    /// that cannot evaluate regexes gets a relaxed filter and the host
    /// finishes the job; declare `DELETE_SERIES` when you implement
    /// `delete_series` (the conformance kit holds you to it). The default
    /// declares regexes only.
    fn capabilities(&self) -> MetadataCapabilities {
        MetadataCapabilities::REGEX
    }

    fn configure(&self) -> impl Future<Output = PluginResult<()>> + Send {
        async { Ok(()) }
    }

    fn shutdown(&self) -> impl Future<Output = PluginResult<()>> + Send {
        async { Ok(()) }
    }

    fn health(&self) -> Health {
        Health::healthy()
    }

    fn statistics(&self) -> Vec<Statistic> {
        Vec::new()
    }
}

/// A suggest backend.
pub trait SuggestBackend: Sized + Send + Sync + 'static {
    type Config: DeserializeOwned + Send + 'static;

    fn create(config: Self::Config) -> impl Future<Output = PluginResult<Self>> + Send;

    fn write(&self, series: RVec<Series>) -> impl Future<Output = PluginResult<()>> + Send;

    /// Keys matching what was typed so far (`key`), best first.
    fn key_suggest(
        &self,
        query: Query,
        key: Option<String>,
    ) -> impl Future<Output = PluginResult<Vec<KeySuggestion>>> + Send;

    /// Tag pairs matching a typed key and/or value, best first.
    fn tag_suggest(
        &self,
        query: Query,
        key: Option<String>,
        value: Option<String>,
    ) -> impl Future<Output = PluginResult<Vec<TagSuggestion>>> + Send;

    /// Values of tag `key`.
    fn tag_value_suggest(
        &self,
        query: Query,
        key: String,
    ) -> impl Future<Output = PluginResult<TagValueSuggestion>> + Send;

    /// Every tag key with its values, leaving out `exclude`, at most
    /// `group_limit` values per key.
    fn tag_values_suggest(
        &self,
        query: Query,
        exclude: Vec<String>,
        group_limit: u64,
    ) -> impl Future<Output = PluginResult<TagValuesSuggestion>> + Send;

    /// Tag keys with their number of distinct values; the values themselves
    /// for keys with at most `exact_limit` of them.
    fn tag_key_count(
        &self,
        query: Query,
        exact_limit: u64,
    ) -> impl Future<Output = PluginResult<TagKeyCountResult>> + Send;

    fn configure(&self) -> impl Future<Output = PluginResult<()>> + Send {
        async { Ok(()) }
    }

    fn shutdown(&self) -> impl Future<Output = PluginResult<()>> + Send {
        async { Ok(()) }
    }

    fn health(&self) -> Health {
        Health::healthy()
    }

    fn statistics(&self) -> Vec<Statistic> {
        Vec::new()
    }
}

/// A queue consumer. `start` spawns the consuming tasks (on
/// [`crate::sdk::runtime()`]) and returns; each batch goes to
/// [`IngestSink::ingest`] and is acknowledged only after it answers `Ok`.
pub trait Consumer: Sized + Send + Sync + 'static {
    type Config: DeserializeOwned + Send + 'static;

    fn create(config: Self::Config) -> impl Future<Output = PluginResult<Self>> + Send;

    fn start(self: Arc<Self>, sink: crate::sdk::IngestSink) -> impl Future<Output = PluginResult<()>> + Send;

    /// Stop taking messages, finish and acknowledge what is in flight.
    fn stop(&self) -> impl Future<Output = PluginResult<()>> + Send;

    fn health(&self) -> Health {
        Health::healthy()
    }

    fn statistics(&self) -> Vec<Statistic> {
        Vec::new()
    }
}

#[cfg(all(test, not(feature = "previous-abi")))]
mod tests {
    use super::*;

    /// A backend that answers one fixed fetch: `fetch_buckets_by_fetch`
    /// must fold what it answers.
    struct Fixed;

    impl MetricBackend for Fixed {
        type Config = ();
        async fn create(_: ()) -> PluginResult<Self> {
            Ok(Fixed)
        }
        async fn write(&self, _: RVec<SeriesPoints>) -> PluginResult<()> {
            Ok(())
        }
        async fn fetch(&self, request: FetchRequest) -> PluginResult<FetchResponse> {
            assert_eq!(request.point_limit, 7, "the limit is passed on");
            let fetched = |i: u32, points: &[(i64, f64)]| FetchedSeries {
                request_index: i,
                resource: RVec::new(),
                points: PointBatch::from_pairs(points),
            };
            let series = vec![fetched(2, &[(5, 1.0), (15, 2.0)]), fetched(0, &[(6, 4.0)]), fetched(1, &[])];
            Ok(FetchResponse { series: series.into(), limited: true })
        }
    }

    #[test]
    fn fetch_buckets_by_fetch_folds_what_fetch_answers() {
        let layout = BucketLayout::new(TimeRange::new(0, 20), 10, 10, BucketLayout::END).unwrap();
        let request = BucketFetchRequest {
            series: (0..3).map(|i| Series::new(format!("s{i}"), [("a", "b")], [])).collect::<Vec<_>>().into(),
            groups: vec![0, 1, 0].into(),
            group_count: 2,
            range: TimeRange::new(0, 20),
            layout,
            fields: PartialFields::SUM,
            point_limit: 7,
        };
        let answer = block_on(fetch_buckets_by_fetch(&Fixed, request));
        assert_eq!(answer.partials.count.as_slice(), &[2, 1, 0, 0]);
        assert_eq!(answer.partials.sum.as_slice(), &[5.0, 2.0, 0.0, 0.0]);
        assert!(answer.partials.max.is_empty());
        assert_eq!((answer.series_with_data.as_slice(), answer.points, answer.limited), (&[2, 0][..], 3, true));
    }

    fn block_on<T>(f: impl Future<Output = PluginResult<T>>) -> T {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f).unwrap()
    }
}
