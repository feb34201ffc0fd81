//! The suggest backend. One index holds two kinds of documents: `series`
//! (one per series: key suggestions) and `tag` (one per series and tag: tag
//! suggestions, values, counts). Both carry the series' key and tags, so the
//! request's filter applies to either. Candidates come from terms
//! aggregations; ranking is computed here ([`crate::tokens::score`]).
//!
//! A missing index (nothing written yet, or `configure` never run) gives
//! an empty answer, not an error.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use heroic_plugin_api::abi_stable::std_types::{ROption, RString, RVec};
use heroic_plugin_api::error::PluginResult;
use heroic_plugin_api::sdk::{Query, SuggestBackend};
use heroic_plugin_api::types::*;
use serde_json::{json, Value};

use crate::client::EsClient;
use crate::config::{Role, Settings, SuggestConfig};
use crate::error::Result;
use crate::hash::{murmur3_x64_128, series_id, to_hex};
use crate::mappings::{self, Layout};
use crate::metadata::series_doc;
use crate::now_ms;
use crate::query::{plan, tag_term};
use crate::tokens::{self, prefix_tokens, typed_terms, word_tokens};
use crate::writer::{Doc, Writer};

pub struct EsSuggest {
    client: Arc<EsClient>,
    settings: Settings,
    layout: Layout,
    writer: Writer,
    default_limit: usize,
    max_limit: usize,
}

/// The documents of one series: its `series` document and one `tag`
/// document per tag.
pub fn suggest_docs(s: &Series) -> Vec<(String, Value)> {
    let hash = series_id(s);
    let mut base = series_doc(s, &hash);
    let obj = base.as_object_mut().expect("object");
    // Resource tags are not indexed for suggestions (as in Heroic).
    obj.remove("resource");
    obj.remove("hash");
    obj.insert("series_id".into(), json!(hash));
    let mut docs = Vec::with_capacity(1 + s.tags.len());
    let mut series = base.clone();
    series["kind"] = json!("series");
    series["key_prefix"] = json!(prefix_tokens(&s.key));
    series["key_words"] = json!(word_tokens(&s.key));
    docs.push((hash.clone(), series));
    for t in s.tags.iter() {
        let kv = tag_term(&t.key, &t.value);
        let mut doc = base.clone();
        doc["kind"] = json!("tag");
        doc["skey"] = json!(t.key.as_str());
        doc["sval"] = json!(t.value.as_str());
        doc["skey_prefix"] = json!(prefix_tokens(&t.key));
        doc["skey_words"] = json!(word_tokens(&t.key));
        doc["sval_prefix"] = json!(prefix_tokens(&t.value));
        doc["sval_words"] = json!(word_tokens(&t.value));
        doc["kv"] = json!(kv);
        let id = format!("{hash}:{}", &to_hex(murmur3_x64_128(kv.as_bytes(), 0))[..16]);
        docs.push((id, doc));
    }
    docs
}

/// Matches typed text against a field's exact, prefix and word terms.
fn typed_clause(field: &str, typed: &str) -> Value {
    let (prefix, words) = typed_terms(typed);
    let mut should = vec![json!({"term": {field: typed}}), json!({"term": {format!("{field}_prefix"): prefix}})];
    if !words.is_empty() {
        should.push(json!({"terms": {format!("{field}_words"): words}}));
    }
    json!({"bool": {"should": should, "minimum_should_match": 1}})
}

fn buckets(agg: &Value) -> Vec<Value> {
    agg["buckets"].as_array().cloned().unwrap_or_default()
}

fn truncated(agg: &Value, asked: usize) -> bool {
    agg["sum_other_doc_count"].as_u64().unwrap_or(0) > 0 || buckets(agg).len() >= asked
}

fn strings_of(agg: &Value) -> Vec<String> {
    buckets(agg).iter().filter_map(|b| b["key"].as_str().map(String::from)).collect()
}

impl EsSuggest {
    pub async fn open(config: SuggestConfig) -> Result<Self> {
        let settings = config.settings(Role::Suggest)?;
        let client = EsClient::new(&settings)?;
        client.ping().await?;
        let backend = EsSuggest {
            layout: Layout::new(&settings),
            writer: Writer::new(&settings),
            client,
            default_limit: config.default_limit.max(1),
            max_limit: config.max_limit.max(1),
            settings,
        };
        if backend.settings.fields.configure {
            backend.configure_indices().await?;
        }
        Ok(backend)
    }

    pub async fn configure_indices(&self) -> Result<()> {
        mappings::configure(&self.client, &self.settings, &self.layout, &mappings::suggest_mappings(), now_ms()).await
    }

    pub async fn write_series(&self, series: &[Series]) -> Result<()> {
        let indices = self.layout.write_indices(now_ms());
        let mut docs = Vec::new();
        for s in series {
            for (id, source) in suggest_docs(s) {
                for index in &indices {
                    docs.push(Doc { index: index.clone(), id: id.clone(), source: source.clone() });
                }
            }
        }
        self.writer.create(&self.client, docs).await
    }

    /// Suggestions to return: the request's limit, or the default, capped.
    fn suggestion_limit(&self, q: &Query) -> usize {
        q.limit().unwrap_or(self.default_limit).min(self.max_limit)
    }

    /// Bucket count to ask for: `limit + 1` (to tell if more exist), or
    /// `max_terms` without a limit.
    fn bucket_size(&self, limit: Option<usize>) -> usize {
        let max = self.settings.fields.max_terms;
        limit.map_or(max, |l| (l + 1).min(max))
    }

    /// Runs a size-0 search of `kind` documents matching the filter and
    /// `must`, with `aggs`; returns the aggregations.
    async fn aggregate(
        &self,
        op: &str,
        q: &Query,
        kind: &str,
        must: Vec<Value>,
        must_not: Vec<Value>,
        aggs: Value,
    ) -> Result<Value> {
        let p = plan(&q.filter, self.settings.fields.regex)?;
        let body = json!({
            "size": 0,
            "query": {"bool": {"filter": [{"term": {"kind": kind}}, p.query], "must": must, "must_not": must_not}},
            "aggs": aggs,
        });
        let indices = self.layout.read_indices(q.range, now_ms());
        let answer = self.client.search(op, &indices, body).await?;
        Ok(answer["aggregations"].clone())
    }

    pub async fn keys(&self, q: &Query, typed: Option<&str>) -> Result<Vec<KeySuggestion>> {
        let typed = typed.filter(|t| !t.is_empty());
        let must = typed.map(|t| vec![typed_clause("key", t)]).unwrap_or_default();
        let size = self.settings.fields.max_terms;
        let aggs = self
            .aggregate(
                "key suggest",
                q,
                "series",
                must,
                vec![],
                json!({"k": {"terms": {"field": "key", "size": size}}}),
            )
            .await?;
        let mut out: Vec<(f64, String)> = strings_of(&aggs["k"])
            .into_iter()
            .map(|k| (typed.map_or(1.0, |t| tokens::score(&k, t)), k))
            .filter(|(s, _)| *s > 0.0)
            .collect();
        // Best first; ties in key order so answers are stable.
        out.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        out.truncate(self.suggestion_limit(q));
        Ok(out.into_iter().map(|(score, key)| KeySuggestion { score, key: key.into() }).collect())
    }

    pub async fn tags(&self, q: &Query, key: Option<&str>, value: Option<&str>) -> Result<Vec<TagSuggestion>> {
        let key = key.filter(|t| !t.is_empty());
        let value = value.filter(|t| !t.is_empty());
        let either = matches!((key, value), (Some(k), Some(v)) if k == v);
        let must = match (key, value) {
            // One word typed for both: it may be either a key or a value.
            (Some(k), Some(_)) if either => {
                vec![
                    json!({"bool": {"should": [typed_clause("skey", k), typed_clause("sval", k)], "minimum_should_match": 1}}),
                ]
            }
            _ => {
                key.map(|k| typed_clause("skey", k)).into_iter().chain(value.map(|v| typed_clause("sval", v))).collect()
            }
        };
        let size = self.settings.fields.max_terms;
        let aggs = self
            .aggregate("tag suggest", q, "tag", must, vec![], json!({"kv": {"terms": {"field": "kv", "size": size}}}))
            .await?;
        let mut out: Vec<(f64, String, String)> = Vec::new();
        for kv in strings_of(&aggs["kv"]) {
            let Some((k, v)) = kv.split_once('\0') else { continue };
            let ks = key.map(|t| tokens::score(k, t));
            let vs = value.map(|t| tokens::score(v, t));
            let matched = if either {
                ks.unwrap_or(0.0) > 0.0 || vs.unwrap_or(0.0) > 0.0
            } else {
                ks.is_none_or(|s| s > 0.0) && vs.is_none_or(|s| s > 0.0)
            };
            if matched {
                let score = (ks.unwrap_or(0.0) + vs.unwrap_or(0.0)).max(if key.is_none() && value.is_none() {
                    1.0
                } else {
                    0.0
                });
                out.push((score, k.to_string(), v.to_string()));
            }
        }
        out.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| (&a.1, &a.2).cmp(&(&b.1, &b.2))));
        out.truncate(self.suggestion_limit(q));
        Ok(out.into_iter().map(|(score, k, v)| TagSuggestion { score, key: k.into(), value: v.into() }).collect())
    }

    pub async fn tag_values_of(&self, q: &Query, key: &str) -> Result<TagValueSuggestion> {
        let limit = q.limit();
        let size = self.bucket_size(limit);
        let must = vec![json!({"term": {"skey": key}})];
        let aggs = self
            .aggregate(
                "tag value suggest",
                q,
                "tag",
                must,
                vec![],
                json!({"v": {"terms": {"field": "sval", "size": size}}}),
            )
            .await?;
        let mut values = strings_of(&aggs["v"]);
        values.sort();
        let limited = limit.is_some_and(|l| values.len() > l);
        values.truncate(limit.unwrap_or(usize::MAX));
        Ok(TagValueSuggestion { values: values.into_iter().map(RString::from).collect(), limited })
    }

    pub async fn tag_values(&self, q: &Query, exclude: &[String], group_limit: u64) -> Result<TagValuesSuggestion> {
        let limit = q.limit();
        let group = (group_limit > 0).then_some(group_limit as usize);
        let (size, group_size) = (self.bucket_size(limit), self.bucket_size(group));
        let must_not = if exclude.is_empty() { vec![] } else { vec![json!({"terms": {"skey": exclude}})] };
        let aggs = json!({"k": {"terms": {"field": "skey", "size": size}, "aggs": {"v": {"terms": {"field": "sval", "size": group_size}}}}});
        let aggs = self.aggregate("tag values suggest", q, "tag", vec![], must_not, aggs).await?;
        let mut by_key: BTreeMap<String, (BTreeSet<String>, bool)> = BTreeMap::new();
        for b in buckets(&aggs["k"]) {
            let Some(k) = b["key"].as_str() else { continue };
            let values: BTreeSet<String> = strings_of(&b["v"]).into_iter().collect();
            let limited =
                group.is_some_and(|g| values.len() > g) || (group.is_none() && truncated(&b["v"], group_size));
            by_key.insert(k.to_string(), (values, limited));
        }
        let limited = limit.is_some_and(|l| by_key.len() > l);
        let tags = by_key
            .into_iter()
            .take(limit.unwrap_or(usize::MAX))
            .map(|(key, (values, limited))| TagValues {
                key: key.into(),
                values: values.into_iter().take(group.unwrap_or(usize::MAX)).map(RString::from).collect(),
                limited,
            })
            .collect();
        Ok(TagValuesSuggestion { tags, limited })
    }

    pub async fn key_counts(&self, q: &Query, exact_limit: u64) -> Result<TagKeyCountResult> {
        let limit = q.limit();
        let size = self.bucket_size(limit);
        let exact = exact_limit as usize;
        let aggs = json!({"k": {"terms": {"field": "skey", "size": size}, "aggs": {
            "n": {"cardinality": {"field": "sval"}},
            "v": {"terms": {"field": "sval", "size": exact + 1}},
        }}});
        let aggs = self.aggregate("tag key count", q, "tag", vec![], vec![], aggs).await?;
        let mut out: Vec<TagKeyCount> = Vec::new();
        for b in buckets(&aggs["k"]) {
            let Some(k) = b["key"].as_str() else { continue };
            let mut values = strings_of(&b["v"]);
            let complete = !truncated(&b["v"], exact + 1) && values.len() <= exact;
            let (count, exact_values) = if complete {
                values.sort();
                (values.len() as u64, ROption::RSome(values.into_iter().map(RString::from).collect::<RVec<_>>()))
            } else {
                (b["n"]["value"].as_u64().unwrap_or(0).max(values.len() as u64), ROption::RNone)
            };
            out.push(TagKeyCount { key: k.into(), count, exact_values });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        let limited = limit.is_some_and(|l| out.len() > l);
        out.truncate(limit.unwrap_or(usize::MAX));
        Ok(TagKeyCountResult { suggestions: out.into(), limited })
    }
}

impl SuggestBackend for EsSuggest {
    type Config = SuggestConfig;

    async fn create(config: SuggestConfig) -> PluginResult<Self> {
        Ok(EsSuggest::open(config).await?)
    }

    async fn write(&self, series: RVec<Series>) -> PluginResult<()> {
        Ok(self.write_series(&series).await?)
    }

    async fn key_suggest(&self, q: Query, key: Option<String>) -> PluginResult<Vec<KeySuggestion>> {
        Ok(self.keys(&q, key.as_deref()).await?)
    }

    async fn tag_suggest(
        &self,
        q: Query,
        key: Option<String>,
        value: Option<String>,
    ) -> PluginResult<Vec<TagSuggestion>> {
        Ok(self.tags(&q, key.as_deref(), value.as_deref()).await?)
    }

    async fn tag_value_suggest(&self, q: Query, key: String) -> PluginResult<TagValueSuggestion> {
        Ok(self.tag_values_of(&q, &key).await?)
    }

    async fn tag_values_suggest(
        &self,
        q: Query,
        exclude: Vec<String>,
        group_limit: u64,
    ) -> PluginResult<TagValuesSuggestion> {
        Ok(self.tag_values(&q, &exclude, group_limit).await?)
    }

    async fn tag_key_count(&self, q: Query, exact_limit: u64) -> PluginResult<TagKeyCountResult> {
        Ok(self.key_counts(&q, exact_limit).await?)
    }

    async fn configure(&self) -> PluginResult<()> {
        Ok(self.configure_indices().await?)
    }

    fn health(&self) -> Health {
        self.client.health()
    }

    fn statistics(&self) -> Vec<Statistic> {
        // The same counters as the metadata backend's: the writer's, then
        // the client's.
        let mut stats = self.writer.stats.statistics();
        stats.extend(self.client.stats.statistics());
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_series_document_and_one_per_tag() {
        let s = Series::new("cpu-idle", [("host", "db1"), ("role", "database")], [("pod", "p")]);
        let docs = suggest_docs(&s);
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].1["kind"], "series");
        assert!(docs[0].1.get("resource").is_none());
        assert_eq!(docs[1].1["kv"], "host\0db1");
        assert!(docs[2].1["sval_prefix"].as_array().unwrap().contains(&json!("data")));
        assert!(docs[1].0.starts_with(&docs[0].0));
        assert_ne!(docs[1].0, docs[2].0);
    }
}
