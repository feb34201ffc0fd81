//! Suggestions over the series index: keys, tag pairs, values of a key,
//! values of every key and distinct-value counts, each narrowed by a filter.
//!
//! Matching follows Heroic's Elasticsearch suggest in spirit, without ES:
//! a candidate scores 2.0 when it equals what was typed (case-insensitive),
//! 1.5 when it starts with it, and 1.0 when every typed term (split on
//! whitespace) starts a word of the candidate (words split on punctuation
//! and on lower-to-upper case changes, like `word_delimiter`); the scores
//! add up, and a candidate with score 0 is left out.

use std::path::Path;
use std::sync::Arc;

use heroic_plugin_api::abi_stable::std_types::{RNone, RSome, RString, RVec};
use heroic_plugin_api::filter::Filter;
use heroic_plugin_api::types::{
    KeySuggestion, Series, TagKeyCount, TagKeyCountResult, TagSuggestion, TagValueSuggestion, TagValues,
    TagValuesSuggestion,
};

use crate::error::Result;
use crate::metadata::MetadataStore;

/// Limits of the suggest store.
#[derive(Clone, Debug)]
pub struct SuggestOptions {
    /// Suggestions returned when the request gives no limit.
    pub default_limit: usize,
    /// Suggestions returned at most, whatever the request asks.
    pub max_limit: usize,
}

impl Default for SuggestOptions {
    fn default() -> Self {
        SuggestOptions { default_limit: 50, max_limit: 250 }
    }
}

pub struct SuggestStore {
    pub(crate) store: Arc<MetadataStore>,
    opts: SuggestOptions,
}

/// Words of `s`, lower-cased: split on anything not alphanumeric and where
/// a lower-case letter is followed by an upper-case one.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// How well `candidate` matches what was typed; `None` when it does not.
pub(crate) fn score(candidate: &str, typed: &str) -> Option<f64> {
    let q = typed.trim().to_lowercase();
    if q.is_empty() {
        return Some(1.0);
    }
    let c = candidate.to_lowercase();
    let mut s = 0.0;
    if c == q {
        s += 2.0;
    }
    if c.starts_with(&q) {
        s += 1.5;
    }
    let ws = words(candidate);
    if q.split_whitespace().all(|t| ws.iter().any(|w| w.starts_with(t))) {
        s += 1.0;
    }
    (s > 0.0).then_some(s)
}

impl SuggestStore {
    pub fn open(dir: impl AsRef<Path>, opts: SuggestOptions) -> Result<SuggestStore> {
        Ok(SuggestStore { store: Arc::new(MetadataStore::open(dir)?), opts })
    }

    /// Opens the registry in `dir` shared with the other backends of this
    /// process on the same directory (see [`MetadataStore::open_shared`]).
    pub fn open_shared(dir: impl AsRef<Path>, opts: SuggestOptions) -> Result<SuggestStore> {
        Ok(SuggestStore { store: MetadataStore::open_shared(dir)?, opts })
    }

    /// Why the store cannot take writes, if it cannot (see [`MetadataStore::trouble`]).
    pub fn trouble(&self) -> Option<String> {
        self.store.trouble()
    }

    /// See [`MetadataStore::warning`].
    pub fn warning(&self) -> Option<String> {
        self.store.warning()
    }

    /// Registers series so that they can be suggested. Durable on return.
    pub fn write(&self, series: &[Series]) -> Result<usize> {
        self.store.write(series)
    }

    fn limit(&self, limit: u64) -> usize {
        if limit == 0 {
            self.opts.default_limit
        } else {
            usize::try_from(limit).unwrap_or(usize::MAX).min(self.opts.max_limit)
        }
    }

    /// Series keys matching `key`, best first, then alphabetical.
    pub fn key_suggest(&self, filter: &Filter, key: Option<&str>, limit: u64) -> Result<Vec<KeySuggestion>> {
        let index = self.store.index.read();
        let set = index.eval(filter)?;
        let mut out: Vec<KeySuggestion> = index
            .keys_of(&set)
            .into_iter()
            .filter_map(|k| Some(KeySuggestion { score: score(k, key.unwrap_or(""))?, key: k.into() }))
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.key.cmp(&b.key)));
        out.truncate(self.limit(limit));
        Ok(out)
    }

    /// Tag pairs matching a typed key and/or value, best first. When key and
    /// value are the same text (one search box), either side may match.
    pub fn tag_suggest(
        &self,
        filter: &Filter,
        key: Option<&str>,
        value: Option<&str>,
        limit: u64,
    ) -> Result<Vec<TagSuggestion>> {
        let index = self.store.index.read();
        let set = index.eval(filter)?;
        let either = key.is_some() && key == value;
        let mut out = Vec::new();
        for (k, values) in index.tags_of(&set) {
            let ks = score(k, key.unwrap_or(""));
            if !either && ks.is_none() {
                continue;
            }
            for v in values {
                let vs = score(v, value.unwrap_or(""));
                let total = if either {
                    match (ks, vs) {
                        (None, None) => continue,
                        (a, b) => a.unwrap_or(0.0).max(b.unwrap_or(0.0)),
                    }
                } else {
                    match (ks, vs) {
                        (Some(a), Some(b)) => a + b,
                        _ => continue,
                    }
                };
                out.push(TagSuggestion { score: total, key: k.into(), value: v.into() });
            }
        }
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| (&a.key, &a.value).cmp(&(&b.key, &b.value))));
        out.truncate(self.limit(limit));
        Ok(out)
    }

    /// Distinct values of tag `key`, sorted.
    pub fn tag_value_suggest(&self, filter: &Filter, key: &str, limit: u64) -> Result<TagValueSuggestion> {
        let index = self.store.index.read();
        let set = index.eval(&Filter::And(vec![filter.clone(), Filter::has_tag(key)]))?;
        let tags = index.tags_of(&set);
        let values = tags.get(key).cloned().unwrap_or_default();
        let limit = self.limit(limit);
        Ok(TagValueSuggestion {
            limited: values.len() > limit,
            values: values.into_iter().take(limit).map(RString::from).collect(),
        })
    }

    /// Every tag key (but `exclude`) with up to `group_limit` values; at most
    /// `limit` keys.
    pub fn tag_values_suggest(
        &self,
        filter: &Filter,
        exclude: &[String],
        group_limit: u64,
        limit: u64,
    ) -> Result<TagValuesSuggestion> {
        let index = self.store.index.read();
        let set = index.eval(filter)?;
        let limit = self.limit(limit);
        let group_limit = if group_limit == 0 { usize::MAX } else { group_limit as usize };
        let mut keys: Vec<_> =
            index.tags_of(&set).into_iter().filter(|(k, _)| !exclude.iter().any(|e| e == k)).collect();
        let limited = keys.len() > limit;
        keys.truncate(limit);
        let tags: RVec<TagValues> = keys
            .into_iter()
            .map(|(k, values)| TagValues {
                key: k.into(),
                limited: values.len() > group_limit,
                values: values.into_iter().take(group_limit).map(RString::from).collect(),
            })
            .collect();
        Ok(TagValuesSuggestion { tags, limited })
    }

    /// Tag keys with their number of distinct values; the values too when
    /// there are at most `exact_limit`.
    pub fn tag_key_count(&self, filter: &Filter, exact_limit: u64, limit: u64) -> Result<TagKeyCountResult> {
        let index = self.store.index.read();
        let set = index.eval(filter)?;
        let limit = self.limit(limit);
        let tags = index.tags_of(&set);
        let limited = tags.len() > limit;
        let suggestions = tags
            .into_iter()
            .take(limit)
            .map(|(k, values)| TagKeyCount {
                key: k.into(),
                count: values.len() as u64,
                exact_values: if values.len() as u64 <= exact_limit {
                    RSome(values.into_iter().map(RString::from).collect())
                } else {
                    RNone
                },
            })
            .collect();
        Ok(TagKeyCountResult { suggestions, limited })
    }

    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoring() {
        assert_eq!(words("diskUsedBytes.total-io"), vec!["disk", "used", "bytes", "total", "io"]);
        assert_eq!(score("cpu", "cpu"), Some(4.5));
        assert_eq!(score("cpu-idle", "cpu"), Some(2.5));
        assert_eq!(score("system.cpu", "cpu"), Some(1.0));
        assert_eq!(score("system.cpu", "sys cp"), Some(1.0));
        assert_eq!(score("memory", "cpu"), None);
        assert_eq!(score("anything", ""), Some(1.0));
    }
}
