//! The metadata backend: one document per series, `_id` = Heroic's series
//! hash; find, count, delete, keys and tags for every filter operator.
//!
//! Paging uses `search_after` sorted by `hash` (no scroll contexts to leak).
//! Keys and tags come from terms aggregations, and when an aggregation would
//! be truncated (more than `max_terms` buckets) or a regex has to be
//! finished here, from paging through the documents, so answers are always
//! complete (Heroic returned an empty map for tags and 10 keys).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use elasticsearch::http::Method;
use heroic_plugin_api::abi_stable::std_types::{RString, RVec};
use heroic_plugin_api::error::PluginResult;
use heroic_plugin_api::sdk::{MetadataBackend, Query};
use heroic_plugin_api::types::*;
use serde_json::{json, Value};

use crate::client::{Body, EsClient};
use crate::config::{MetadataConfig, Role, Settings};
use crate::error::{Error, Result};
use crate::hash::series_id;
use crate::mappings::{self, Layout};
use crate::now_ms;
use crate::query::{plan, tag_term, Plan};
use crate::writer::{Doc, Writer};

pub struct EsMetadata {
    pub(crate) client: Arc<EsClient>,
    pub(crate) settings: Settings,
    pub(crate) layout: Layout,
    pub(crate) writer: Writer,
    index_resource: bool,
}

/// Splits the `k\0v` terms of a document back into tags.
pub fn parse_tags(v: &Value) -> RVec<Tag> {
    let mut tags: Vec<Tag> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str())
        .filter_map(|t| t.split_once('\0'))
        .map(|(k, v)| Tag::new(k, v))
        .collect();
    tags.sort();
    tags.into()
}

fn terms_of(tags: &[Tag]) -> Vec<String> {
    tags.iter().map(|t| tag_term(&t.key, &t.value)).collect()
}

pub fn series_doc(s: &Series, hash: &str) -> Value {
    json!({
        "key": s.key.as_str(),
        "tags": terms_of(&s.tags),
        "tag_keys": s.tags.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(),
        "resource": terms_of(&s.resource),
        "hash": hash,
    })
}

fn series_of(source: &Value) -> Series {
    Series {
        key: RString::from(source["key"].as_str().unwrap_or_default()),
        tags: parse_tags(&source["tags"]),
        resource: parse_tags(&source["resource"]),
    }
}

impl EsMetadata {
    pub async fn open(config: MetadataConfig) -> Result<Self> {
        let settings = config.settings(Role::Metadata)?;
        let client = EsClient::new(&settings)?;
        client.ping().await?;
        let backend = EsMetadata {
            layout: Layout::new(&settings),
            writer: Writer::new(&settings),
            client,
            index_resource: config.index_resource,
            settings,
        };
        if backend.settings.fields.configure {
            backend.configure_indices().await?;
        }
        Ok(backend)
    }

    /// The HTTP client (benchmarks refresh indices through it).
    pub fn client(&self) -> &EsClient {
        &self.client
    }

    pub async fn configure_indices(&self) -> Result<()> {
        let m = mappings::metadata_mappings(self.index_resource);
        mappings::configure(&self.client, &self.settings, &self.layout, &m, now_ms()).await
    }

    pub async fn write_series(&self, series: &[Series]) -> Result<()> {
        let indices = self.layout.write_indices(now_ms());
        let mut docs = Vec::with_capacity(series.len() * indices.len());
        for s in series {
            let hash = series_id(s);
            let source = series_doc(s, &hash);
            for index in &indices {
                docs.push(Doc { index: index.clone(), id: hash.clone(), source: source.clone() });
            }
        }
        self.writer.create(&self.client, docs).await
    }

    fn plan(&self, q: &Query) -> Result<Plan> {
        plan(&q.filter, self.settings.fields.regex)
    }

    /// Pages through matching documents sorted by hash, calling `each` with
    /// every distinct series that passes the plan; stops when `each`
    /// returns false.
    async fn scan(
        &self,
        q: &Query,
        plan: &Plan,
        fields: &[&str],
        mut each: impl FnMut(&str, &Value) -> bool,
    ) -> Result<()> {
        let indices = self.layout.read_indices(q.range, now_ms());
        let page = self.settings.fields.page_size;
        let mut after: Option<String> = None;
        let mut last: Option<String> = None;
        loop {
            let mut body = json!({
                "size": page,
                "query": plan.query,
                "sort": [{"hash": "asc"}],
                "_source": fields,
                "track_total_hits": false,
            });
            if let Some(a) = &after {
                body["search_after"] = json!([a]);
            }
            let answer = self.client.search("find series", &indices, body).await?;
            let hits = answer["hits"]["hits"].as_array().cloned().unwrap_or_default();
            for hit in &hits {
                let source = &hit["_source"];
                let hash = source["hash"].as_str().or_else(|| hit["_id"].as_str()).unwrap_or_default().to_string();
                // Rotating indices hold one copy per index: copies sort together.
                if last.as_deref() == Some(hash.as_str()) {
                    continue;
                }
                last = Some(hash.clone());
                if let Some(m) = &plan.post {
                    if !m.matches(&series_of(source)) {
                        continue;
                    }
                }
                if !each(&hash, source) {
                    return Ok(());
                }
            }
            if hits.len() < page {
                return Ok(());
            }
            after = hits.last().and_then(|h| h["sort"][0].as_str().map(String::from));
            if after.is_none() {
                return Err(Error::Decode { op: "find series".into(), reason: "hit without sort values".into() });
            }
        }
    }

    pub async fn find(&self, q: &Query) -> Result<SeriesPage> {
        let plan = self.plan(q)?;
        let limit = q.limit();
        let mut out = Vec::new();
        let mut limited = false;
        self.scan(q, &plan, &["key", "tags", "resource", "hash"], |_, source| {
            if limit.is_some_and(|l| out.len() >= l) {
                limited = true;
                return false;
            }
            out.push(series_of(source));
            true
        })
        .await?;
        Ok(SeriesPage { series: out.into(), limited })
    }

    pub async fn count(&self, q: &Query) -> Result<CountResult> {
        let plan = self.plan(q)?;
        let limit = q.limit();
        if plan.exact() && !self.layout.multi_read() {
            let indices = self.layout.read_indices(q.range, now_ms());
            let path = format!("{}/_count", indices.join(","));
            let answer = self
                .client
                .ok(
                    "count series",
                    Method::Post,
                    &path,
                    &[("ignore_unavailable", "true"), ("allow_no_indices", "true")],
                    Some(Body::Json(json!({"query": plan.query}))),
                )
                .await?;
            let total = answer["count"]
                .as_u64()
                .ok_or_else(|| Error::Decode { op: "count series".into(), reason: answer.to_string() })?;
            return Ok(match limit {
                Some(l) if total > l as u64 => CountResult { count: l as u64, limited: true },
                _ => CountResult { count: total, limited: false },
            });
        }
        let mut count = 0u64;
        let mut limited = false;
        self.scan(q, &plan, &["hash", "key", "tags"], |_, _| {
            if limit.is_some_and(|l| count >= l as u64) {
                limited = true;
                return false;
            }
            count += 1;
            true
        })
        .await?;
        Ok(CountResult { count, limited })
    }

    pub async fn delete(&self, q: &Query) -> Result<DeleteResult> {
        let plan = self.plan(q)?;
        let limit = q.limit();
        let mut hashes = Vec::new();
        self.scan(q, &plan, &["hash", "key", "tags"], |h, _| {
            if limit.is_some_and(|l| hashes.len() >= l) {
                return false;
            }
            hashes.push(h.to_string());
            true
        })
        .await?;
        if hashes.is_empty() {
            return Ok(DeleteResult::default());
        }
        // A series may have a copy in every read index (and the write ones).
        let mut indices = self.layout.read_indices(q.range, now_ms());
        for w in self.layout.write_indices(now_ms()) {
            if !indices.contains(&w) {
                indices.push(w);
            }
        }
        let mut deleted: HashSet<String> = HashSet::new();
        let mut failed: HashSet<String> = HashSet::new();
        let query: Vec<(&str, &str)> =
            self.settings.fields.refresh.as_param().map(|r| vec![("refresh", r)]).unwrap_or_default();
        for chunk in hashes.chunks(self.settings.fields.bulk_size) {
            let mut body = String::new();
            for h in chunk {
                for index in &indices {
                    body.push_str(&json!({"delete": {"_index": index, "_id": h}}).to_string());
                    body.push('\n');
                }
            }
            let answer = self.client.ok("bulk delete", Method::Post, "_bulk", &query, Some(Body::Ndjson(body))).await?;
            for item in answer["items"].as_array().into_iter().flatten() {
                let r = &item["delete"];
                let id = r["_id"].as_str().unwrap_or_default().to_string();
                match r["status"].as_u64().unwrap_or(0) {
                    200..=299 => {
                        deleted.insert(id);
                    }
                    // A missing copy (index never created, or no copy there) is fine.
                    404 => {}
                    _ => {
                        tracing::warn!("deleting series {id}: {}", crate::client::error_reason(r));
                        failed.insert(id);
                    }
                }
            }
        }
        self.writer.forget();
        let failed = failed.difference(&deleted).count() as u64;
        Ok(DeleteResult { deleted: deleted.len() as u64, failed })
    }

    /// A terms aggregation on `field`, or `None` when it would be truncated.
    async fn terms(&self, q: &Query, plan: &Plan, field: &str) -> Result<Option<Vec<String>>> {
        let max = self.settings.fields.max_terms;
        let body = json!({
            "size": 0,
            "query": plan.query,
            "aggs": {"t": {"terms": {"field": field, "size": max}}},
        });
        let indices = self.layout.read_indices(q.range, now_ms());
        let answer = self.client.search("terms", &indices, body).await?;
        let agg = &answer["aggregations"]["t"];
        let buckets = agg["buckets"].as_array().cloned().unwrap_or_default();
        if agg["sum_other_doc_count"].as_u64().unwrap_or(0) > 0 || buckets.len() >= max {
            return Ok(None);
        }
        Ok(Some(buckets.iter().filter_map(|b| b["key"].as_str().map(String::from)).collect()))
    }

    pub async fn keys(&self, q: &Query) -> Result<KeysPage> {
        let plan = self.plan(q)?;
        let limit = q.limit();
        let mut keys = BTreeSet::new();
        let found = if plan.exact() { self.terms(q, &plan, "key").await? } else { None };
        match found {
            Some(found) => keys.extend(found),
            None => {
                self.count_scan_fallback();
                self.scan(q, &plan, &["key", "tags", "hash"], |_, s| {
                    keys.insert(s["key"].as_str().unwrap_or_default().to_string());
                    true
                })
                .await?;
            }
        }
        let limited = limit.is_some_and(|l| keys.len() > l);
        Ok(KeysPage { keys: keys.into_iter().take(limit.unwrap_or(usize::MAX)).map(RString::from).collect(), limited })
    }

    pub async fn tags(&self, q: &Query) -> Result<TagsPage> {
        let plan = self.plan(q)?;
        let mut tags: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut add = |term: &str| {
            if let Some((k, v)) = term.split_once('\0') {
                tags.entry(k.to_string()).or_default().insert(v.to_string());
            }
        };
        let found = if plan.exact() { self.terms(q, &plan, "tags").await? } else { None };
        match found {
            Some(found) => found.iter().for_each(|t| add(t)),
            None => {
                self.count_scan_fallback();
                self.scan(q, &plan, &["key", "tags", "hash"], |_, s| {
                    s["tags"].as_array().into_iter().flatten().filter_map(|t| t.as_str()).for_each(&mut add);
                    true
                })
                .await?;
            }
        }
        let limit = q.limit().unwrap_or(usize::MAX);
        let mut any = false;
        let tags = tags
            .into_iter()
            .map(|(key, values)| {
                let limited = values.len() > limit;
                any |= limited;
                TagValues {
                    key: key.into(),
                    values: values.into_iter().take(limit).map(RString::from).collect(),
                    limited,
                }
            })
            .collect();
        Ok(TagsPage { tags, limited: any })
    }

    fn count_scan_fallback(&self) {
        self.client.stats.scan_fallbacks.inc();
    }

    /// The writer's counters, then the client's.
    pub fn stats(&self) -> Vec<Statistic> {
        let mut stats = self.writer.stats.statistics();
        stats.extend(self.client.stats.statistics());
        stats
    }
}

impl MetadataBackend for EsMetadata {
    type Config = MetadataConfig;

    async fn create(config: MetadataConfig) -> PluginResult<Self> {
        Ok(EsMetadata::open(config).await?)
    }

    async fn write(&self, series: RVec<Series>) -> PluginResult<()> {
        Ok(self.write_series(&series).await?)
    }

    async fn find_series(&self, q: Query) -> PluginResult<SeriesPage> {
        Ok(self.find(&q).await?)
    }

    async fn count_series(&self, q: Query) -> PluginResult<CountResult> {
        Ok(self.count(&q).await?)
    }

    async fn delete_series(&self, q: Query) -> PluginResult<DeleteResult> {
        Ok(self.delete(&q).await?)
    }

    async fn find_keys(&self, q: Query) -> PluginResult<KeysPage> {
        Ok(self.keys(&q).await?)
    }

    async fn find_tags(&self, q: Query) -> PluginResult<TagsPage> {
        Ok(self.tags(&q).await?)
    }

    fn capabilities(&self) -> MetadataCapabilities {
        // Regexes are always finished here, pushed down or not.
        MetadataCapabilities::REGEX | MetadataCapabilities::DELETE_SERIES
    }

    async fn configure(&self) -> PluginResult<()> {
        Ok(self.configure_indices().await?)
    }

    fn health(&self) -> Health {
        self.client.health()
    }

    fn statistics(&self) -> Vec<Statistic> {
        self.stats()
    }
}
