//! Checks the metadata and suggest suites themselves against small, obviously
//! correct in-memory reference backends. The backends are wrapped in-process
//! with the SDK's adapters (the same objects a plugin library exports), so
//! the suites run through the stable ABI types, minus the dynamic loading.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use heroic_plugin_api::abi_stable::sabi_trait::TD_Opaque;
use heroic_plugin_api::client::{MetadataBackendClient, SuggestBackendClient};
use heroic_plugin_api::ffi::{MetadataBackendFfi_TO, SuggestBackendFfi_TO};
use heroic_plugin_api::sdk::adapters::{MetadataAdapter, SuggestAdapter};
use heroic_plugin_api::sdk::{MetadataBackend, Query, SuggestBackend};
use heroic_plugin_api::types::*;
use heroic_plugin_api::{PluginError, PluginResult, RString, RVec};

#[derive(Default)]
struct Store(Mutex<BTreeSet<Series>>);

impl Store {
    fn write(&self, series: RVec<Series>) {
        self.0.lock().unwrap().extend(series);
    }

    fn matching(&self, query: &Query) -> PluginResult<Vec<Series>> {
        let matcher = query.filter.compile().map_err(PluginError::invalid_input)?;
        Ok(self.0.lock().unwrap().iter().filter(|s| matcher.matches(s)).cloned().collect())
    }

    fn tags(&self, query: &Query) -> PluginResult<BTreeMap<String, BTreeSet<String>>> {
        let mut tags: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for s in self.matching(query)? {
            for t in s.tags.iter() {
                tags.entry(t.key.to_string()).or_default().insert(t.value.to_string());
            }
        }
        Ok(tags)
    }
}

fn take<T>(items: impl IntoIterator<Item = T>, limit: u64) -> (Vec<T>, bool) {
    let mut items: Vec<T> = items.into_iter().collect();
    let limited = limit > 0 && items.len() as u64 > limit;
    if limited {
        items.truncate(limit as usize);
    }
    (items, limited)
}

#[derive(serde::Deserialize)]
struct Config {
    regex: bool,
}

struct RefMetadata {
    regex: bool,
    store: Store,
}

impl MetadataBackend for RefMetadata {
    type Config = Config;

    async fn create(config: Config) -> PluginResult<Self> {
        Ok(RefMetadata { regex: config.regex, store: Store::default() })
    }

    async fn write(&self, series: RVec<Series>) -> PluginResult<()> {
        self.store.write(series);
        Ok(())
    }

    async fn find_series(&self, query: Query) -> PluginResult<SeriesPage> {
        if !self.regex && query.filter.contains_regex() {
            return Err(PluginError::invalid_input("regex filters are not supported here"));
        }
        let (series, limited) = take(self.store.matching(&query)?, query.limit);
        Ok(SeriesPage { series: series.into(), limited })
    }

    async fn delete_series(&self, query: Query) -> PluginResult<DeleteResult> {
        let doomed = self.store.matching(&query)?;
        let mut store = self.store.0.lock().unwrap();
        for s in &doomed {
            store.remove(s);
        }
        Ok(DeleteResult { deleted: doomed.len() as u64, failed: 0 })
    }

    fn capabilities(&self) -> MetadataCapabilities {
        let regex = if self.regex { MetadataCapabilities::REGEX } else { MetadataCapabilities::NONE };
        regex | MetadataCapabilities::DELETE_SERIES
    }
}

struct RefSuggest {
    store: Store,
}

fn starts(value: &str, typed: &Option<String>) -> bool {
    typed.as_deref().is_none_or(|t| value.starts_with(t))
}

fn rstrings(v: impl IntoIterator<Item = String>) -> RVec<RString> {
    v.into_iter().map(RString::from).collect()
}

impl SuggestBackend for RefSuggest {
    type Config = serde_json::Value;

    async fn create(_: serde_json::Value) -> PluginResult<Self> {
        Ok(RefSuggest { store: Store::default() })
    }

    async fn write(&self, series: RVec<Series>) -> PluginResult<()> {
        self.store.write(series);
        Ok(())
    }

    async fn key_suggest(&self, query: Query, key: Option<String>) -> PluginResult<Vec<KeySuggestion>> {
        let keys: BTreeSet<String> =
            self.store.matching(&query)?.into_iter().map(|s| s.key.to_string()).filter(|k| starts(k, &key)).collect();
        let (keys, _) = take(keys, query.limit);
        Ok(keys.into_iter().map(|k| KeySuggestion { score: 1.0, key: k.into() }).collect())
    }

    async fn tag_suggest(
        &self,
        query: Query,
        key: Option<String>,
        value: Option<String>,
    ) -> PluginResult<Vec<TagSuggestion>> {
        let pairs =
            self.store.tags(&query)?.into_iter().flat_map(|(k, vs)| vs.into_iter().map(move |v| (k.clone(), v)));
        let pairs = pairs.filter(|(k, v)| starts(k, &key) && starts(v, &value));
        let (pairs, _) = take(pairs, query.limit);
        Ok(pairs.into_iter().map(|(k, v)| TagSuggestion { score: 1.0, key: k.into(), value: v.into() }).collect())
    }

    async fn tag_value_suggest(&self, query: Query, key: String) -> PluginResult<TagValueSuggestion> {
        let values = self.store.tags(&query)?.remove(&key).unwrap_or_default();
        let (values, limited) = take(values, query.limit);
        Ok(TagValueSuggestion { values: rstrings(values), limited })
    }

    async fn tag_values_suggest(
        &self,
        query: Query,
        exclude: Vec<String>,
        group_limit: u64,
    ) -> PluginResult<TagValuesSuggestion> {
        let groups = self.store.tags(&query)?.into_iter().filter(|(k, _)| !exclude.contains(k));
        let (groups, limited) = take(groups, query.limit);
        let tags = groups
            .into_iter()
            .map(|(key, values)| {
                let (values, limited) = take(values, group_limit);
                TagValues { key: key.into(), values: rstrings(values), limited }
            })
            .collect();
        Ok(TagValuesSuggestion { tags, limited })
    }

    async fn tag_key_count(&self, query: Query, exact_limit: u64) -> PluginResult<TagKeyCountResult> {
        let (groups, limited) = take(self.store.tags(&query)?, query.limit);
        let suggestions = groups
            .into_iter()
            .map(|(key, values)| TagKeyCount {
                key: key.into(),
                count: values.len() as u64,
                exact_values: (values.len() as u64 <= exact_limit).then(|| rstrings(values)).into(),
            })
            .collect();
        Ok(TagKeyCountResult { suggestions, limited })
    }
}

async fn metadata(regex: bool) -> MetadataBackendClient {
    let backend = RefMetadata::create(Config { regex }).await.unwrap();
    MetadataBackendClient::new(MetadataBackendFfi_TO::from_value(MetadataAdapter(Arc::new(backend)), TD_Opaque))
}

heroic_plugin_api::metadata_backend_conformance!(mod metadata_with_regex, || metadata(true));
heroic_plugin_api::metadata_backend_conformance!(mod metadata_without_regex, || metadata(false));

heroic_plugin_api::suggest_backend_conformance!(|| async {
    let backend = RefSuggest::create(serde_json::json!({})).await.unwrap();
    SuggestBackendClient::new(SuggestBackendFfi_TO::from_value(SuggestAdapter(Arc::new(backend)), TD_Opaque))
});

/// The kit holds optional operations to the backend's declarations: a
/// backend cannot pass by answering `Unsupported` to everything.
mod declarations {
    use heroic_plugin_api::testkit::optional;
    use heroic_plugin_api::{PluginError, PluginResult};

    fn verdict(declared: bool, result: PluginResult<u64>) -> Result<Option<u64>, String> {
        std::panic::catch_unwind(|| optional("metric", "delete_points", "delete_points", declared, result)).map_err(
            |p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            },
        )
    }

    #[test]
    fn a_declared_operation_answering_unsupported_fails() {
        let e = verdict(true, Err(PluginError::unsupported("delete_points"))).unwrap_err();
        assert!(e.contains("declares delete_points") && e.contains("answered Unsupported"), "{e}");
    }

    #[test]
    fn an_undeclared_operation_that_works_fails() {
        let e = verdict(false, Ok(1)).unwrap_err();
        assert!(e.contains("does not declare it"), "{e}");
    }

    #[test]
    fn an_undeclared_operation_answering_unsupported_is_skipped() {
        assert_eq!(verdict(false, Err(PluginError::unsupported("delete_points"))), Ok(None));
    }

    #[test]
    fn a_declared_operation_that_works_is_checked() {
        assert_eq!(verdict(true, Ok(3)), Ok(Some(3)));
    }

    #[test]
    fn other_errors_fail_whatever_is_declared() {
        for declared in [true, false] {
            let e = verdict(declared, Err(PluginError::unavailable("down"))).unwrap_err();
            assert!(e.contains("delete_points failed"), "{e}");
        }
    }
}
