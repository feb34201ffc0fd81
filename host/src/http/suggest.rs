//! The suggest endpoints: `/metadata/key-suggest`, `/metadata/tag-suggest`,
//! `/metadata/tag-value-suggest`, `/metadata/tag-values-suggest` and
//! `/metadata/tagkey-count`, with Heroic's bodies, defaults (limit 10, the
//! last 7 days) and response shapes.
//!
//! Every configured suggest backend is asked and the answers are merged:
//! a suggestion found by several backends keeps its best score, value sets
//! are unions, and the merged list is cut to the limit again. A failing
//! backend adds an entry to `errors`; the others still answer.
//!
//! Regex filters: the filter is handed to the suggest backend unchanged,
//! and suggest backends do not report whether they evaluate regexes. The
//! `local` plugin evaluates them exactly. The `elasticsearch` plugin pushes
//! down a regex that translates to Lucene syntax and otherwise answers over
//! a superset (the regex clause counts as matching), so suggestions can then
//! come from series the regex excludes; the host cannot finish such a filter
//! since suggestions do not carry their series. Use `/metadata/tags` or
//! `/metadata/keys`, which are exact on every backend, when that matters.

use std::collections::{BTreeMap, BTreeSet};

use heroic_plugin_api::abi_stable::std_types::ROption;
use heroic_plugin_api::client::metadata_query;
use heroic_plugin_api::types::MetadataQuery;
use serde::Serialize;

use crate::http::error::{ApiError, ApiResult};
use crate::http::metadata::{answer, backend_error, shape, MetadataBody};
use crate::node::Node;

/// Default `limit` of every suggest endpoint (Heroic's).
pub const DEFAULT_SUGGEST_LIMIT: u64 = 10;
/// Default `groupLimit` of `/metadata/tag-values-suggest`.
pub const DEFAULT_GROUP_LIMIT: u64 = 10;
/// `/metadata/tagkey-count` lists the values of keys with at most this many.
pub const EXACT_LIMIT: u64 = 10;

struct Request {
    body: MetadataBody,
    limit: u64,
}

impl Request {
    fn parse(body: &[u8]) -> ApiResult<Request> {
        let body = MetadataBody::parse(body)?;
        body.filter.compile().map_err(|e| ApiError::bad_request(e.to_string()))?;
        let limit = body.limit.unwrap_or(DEFAULT_SUGGEST_LIMIT);
        // `match: {fuzzy, tokenize}` is accepted; its shape is checked only.
        if let Some(m) = body.fields.get("match").filter(|m| !m.is_null()) {
            if !m.is_object() {
                return Err(shape("match", &format!("expected an object {{fuzzy, tokenize}}, got {m}")));
            }
        }
        Ok(Request { body, limit })
    }

    fn query(&self) -> MetadataQuery {
        metadata_query(&self.body.filter, self.body.range, self.limit)
    }

    /// A typed text field; empty text counts as nothing typed.
    fn typed(&self, name: &str) -> ApiResult<Option<String>> {
        Ok(self.body.string(name)?.filter(|s| !s.is_empty()))
    }
}

#[derive(Serialize)]
struct Suggestions<T: Serialize> {
    suggestions: Vec<T>,
}

#[derive(Serialize)]
struct LimitedSuggestions<T: Serialize> {
    suggestions: Vec<T>,
    limited: bool,
}

fn by_score<T>(a: &(f64, T), b: &(f64, T)) -> std::cmp::Ordering
where
    T: Ord,
{
    b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1))
}

#[derive(Serialize)]
struct KeySuggestionOut {
    score: f64,
    key: String,
}

/// `POST /metadata/key-suggest` `{key?, filter?, range?, limit?, match?}`
/// → `{errors, suggestions: [{score, key}]}`.
pub async fn key_suggest(node: &Node, body: &[u8]) -> ApiResult<warp::reply::Json> {
    let r = Request::parse(body)?;
    let key = r.typed("key")?;
    let mut errors = Vec::new();
    let mut best: BTreeMap<String, f64> = BTreeMap::new();
    for b in &node.backends.suggest {
        match b.client.key_suggest(r.query(), key.as_deref()).await {
            Ok(found) => {
                for s in found {
                    let e = best.entry(s.key.to_string()).or_insert(f64::NEG_INFINITY);
                    *e = e.max(s.score);
                }
            }
            Err(e) => errors.push(backend_error("suggest", &b.id, e)),
        }
    }
    let mut ranked: Vec<(f64, String)> = best.into_iter().map(|(k, s)| (s, k)).collect();
    ranked.sort_by(by_score);
    ranked.truncate(r.limit as usize);
    let suggestions: Vec<KeySuggestionOut> =
        ranked.into_iter().map(|(score, key)| KeySuggestionOut { score, key }).collect();
    Ok(answer(errors, Suggestions { suggestions }))
}

#[derive(Serialize)]
struct TagSuggestionOut {
    score: f64,
    key: String,
    value: String,
}

/// `POST /metadata/tag-suggest` `{key?, value?, filter?, range?, limit?, match?}`
/// → `{errors, suggestions: [{score, key, value}]}`.
pub async fn tag_suggest(node: &Node, body: &[u8]) -> ApiResult<warp::reply::Json> {
    let r = Request::parse(body)?;
    let (key, value) = (r.typed("key")?, r.typed("value")?);
    let mut errors = Vec::new();
    let mut best: BTreeMap<(String, String), f64> = BTreeMap::new();
    for b in &node.backends.suggest {
        match b.client.tag_suggest(r.query(), key.as_deref(), value.as_deref()).await {
            Ok(found) => {
                for s in found {
                    let e = best.entry((s.key.to_string(), s.value.to_string())).or_insert(f64::NEG_INFINITY);
                    *e = e.max(s.score);
                }
            }
            Err(e) => errors.push(backend_error("suggest", &b.id, e)),
        }
    }
    let mut ranked: Vec<(f64, (String, String))> = best.into_iter().map(|(kv, s)| (s, kv)).collect();
    ranked.sort_by(by_score);
    ranked.truncate(r.limit as usize);
    let suggestions: Vec<TagSuggestionOut> =
        ranked.into_iter().map(|(score, (key, value))| TagSuggestionOut { score, key, value }).collect();
    Ok(answer(errors, Suggestions { suggestions }))
}

/// Cuts a sorted set to `limit` values (0: no limit); true when it did.
fn cut(values: &mut BTreeSet<String>, limit: u64) -> bool {
    let mut cut = false;
    while limit > 0 && values.len() as u64 > limit {
        values.pop_last();
        cut = true;
    }
    cut
}

/// `POST /metadata/tag-value-suggest` `{key?, filter?, range?, limit?}` →
/// `{errors, values, limited}`, values in alphabetical order. Without `key`,
/// the values of every key (as Heroic).
pub async fn tag_value_suggest(node: &Node, body: &[u8]) -> ApiResult<warp::reply::Json> {
    let r = Request::parse(body)?;
    let key = r.typed("key")?;
    let mut errors = Vec::new();
    let mut values: BTreeSet<String> = BTreeSet::new();
    let mut limited = false;
    for b in &node.backends.suggest {
        match &key {
            Some(key) => match b.client.tag_value_suggest(r.query(), key).await {
                Ok(found) => {
                    limited |= found.limited;
                    values.extend(found.values.iter().map(|v| v.to_string()));
                }
                Err(e) => errors.push(backend_error("suggest", &b.id, e)),
            },
            // Every key's values: one more than `limit` per key is enough
            // to know whether the union goes past `limit`.
            None => {
                let all_keys = metadata_query(&r.body.filter, r.body.range, 0);
                let per_key = if r.limit == 0 { 0 } else { r.limit + 1 };
                match b.client.tag_values_suggest(all_keys, &[], per_key).await {
                    Ok(found) => {
                        for t in found.tags.iter() {
                            limited |= t.limited;
                            values.extend(t.values.iter().map(|v| v.to_string()));
                        }
                    }
                    Err(e) => errors.push(backend_error("suggest", &b.id, e)),
                }
            }
        }
    }
    limited |= cut(&mut values, r.limit);
    #[derive(Serialize)]
    struct Values {
        values: BTreeSet<String>,
        limited: bool,
    }
    Ok(answer(errors, Values { values, limited }))
}

#[derive(Serialize)]
struct TagValuesOut {
    key: String,
    values: BTreeSet<String>,
    limited: bool,
}

/// `POST /metadata/tag-values-suggest` `{filter?, range?, limit?, exclude?,
/// groupLimit?}` → `{errors, suggestions: [{key, values, limited}], limited}`:
/// at most `limit` keys, those with the most values first (then by key, as
/// Heroic orders them), each with at most `groupLimit` values.
pub async fn tag_values_suggest(node: &Node, body: &[u8]) -> ApiResult<warp::reply::Json> {
    let r = Request::parse(body)?;
    let exclude: Vec<String> = match r.body.fields.get("exclude") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().map(str::to_string).ok_or_else(|| shape(&format!("exclude[{i}]"), "expected a string"))
            })
            .collect::<ApiResult<_>>()?,
        Some(other) => return Err(shape("exclude", &format!("expected a list of tag keys, got {other}"))),
    };
    let group_limit = r.body.u64("groupLimit")?.unwrap_or(DEFAULT_GROUP_LIMIT);
    let mut errors = Vec::new();
    let mut tags: BTreeMap<String, (BTreeSet<String>, bool)> = BTreeMap::new();
    let mut limited = false;
    for b in &node.backends.suggest {
        // Every key is asked for, since the keys kept are those with the
        // most values, which only the whole answer tells.
        let all_keys = metadata_query(&r.body.filter, r.body.range, 0);
        match b.client.tag_values_suggest(all_keys, &exclude, group_limit).await {
            Ok(found) => {
                limited |= found.limited;
                for t in found.tags.iter() {
                    let e = tags.entry(t.key.to_string()).or_default();
                    e.0.extend(t.values.iter().map(|v| v.to_string()));
                    e.1 |= t.limited;
                }
            }
            Err(e) => errors.push(backend_error("suggest", &b.id, e)),
        }
    }
    if r.limit > 0 && tags.len() as u64 > r.limit {
        limited = true;
    }
    // The number of values found decides the order, before each key is cut
    // to `groupLimit` (a key with more values than that is still ahead).
    let mut ranked: Vec<(String, (BTreeSet<String>, bool))> = tags.into_iter().collect();
    ranked.sort_by(|(ka, (va, _)), (kb, (vb, _))| vb.len().cmp(&va.len()).then_with(|| ka.cmp(kb)));
    let suggestions: Vec<TagValuesOut> = ranked
        .into_iter()
        .take(if r.limit == 0 { usize::MAX } else { r.limit as usize })
        .map(|(key, (mut values, l))| {
            let l = cut(&mut values, group_limit) || l;
            TagValuesOut { key, values, limited: l }
        })
        .collect();
    Ok(answer(errors, LimitedSuggestions { suggestions, limited }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TagKeyCountOut {
    key: String,
    count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    exact_values: Option<BTreeSet<String>>,
}

/// `POST /metadata/tagkey-count` `{filter?, range?, limit?}` →
/// `{errors, suggestions: [{key, count, exactValues?}], limited}`; the values
/// are listed for keys with at most 10 of them.
pub async fn tag_key_count(node: &Node, body: &[u8]) -> ApiResult<warp::reply::Json> {
    let r = Request::parse(body)?;
    let mut errors = Vec::new();
    // key → (largest count, exact values while every backend listed them)
    let mut keys: BTreeMap<String, (u64, Option<BTreeSet<String>>)> = BTreeMap::new();
    let mut limited = false;
    for b in &node.backends.suggest {
        match b.client.tag_key_count(r.query(), EXACT_LIMIT).await {
            Ok(found) => {
                limited |= found.limited;
                for s in found.suggestions.iter() {
                    let exact: Option<BTreeSet<String>> = match &s.exact_values {
                        ROption::RSome(v) => Some(v.iter().map(|x| x.to_string()).collect()),
                        ROption::RNone => None,
                    };
                    match keys.get_mut(s.key.as_str()) {
                        None => {
                            keys.insert(s.key.to_string(), (s.count, exact));
                        }
                        Some((count, merged)) => {
                            *count = (*count).max(s.count);
                            *merged = match (merged.take(), exact) {
                                (Some(mut a), Some(b)) => {
                                    a.extend(b);
                                    *count = (*count).max(a.len() as u64);
                                    (a.len() as u64 <= EXACT_LIMIT).then_some(a)
                                }
                                _ => None,
                            };
                        }
                    }
                }
            }
            Err(e) => errors.push(backend_error("suggest", &b.id, e)),
        }
    }
    if r.limit > 0 && keys.len() as u64 > r.limit {
        limited = true;
    }
    let suggestions: Vec<TagKeyCountOut> = keys
        .into_iter()
        .take(if r.limit == 0 { usize::MAX } else { r.limit as usize })
        .map(|(key, (count, exact_values))| TagKeyCountOut { key, count, exact_values })
        .collect();
    Ok(answer(errors, LimitedSuggestions { suggestions, limited }))
}
