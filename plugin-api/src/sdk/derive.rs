//! Answers derived from a list of series, for the default trait methods.

use std::collections::{BTreeMap, BTreeSet};

use abi_stable::std_types::RString;

use crate::types::{KeysPage, Series, TagValues, TagsPage};

/// Distinct keys of `series`, sorted, at most `limit`.
pub fn keys_of(series: &[Series], limit: Option<usize>) -> KeysPage {
    let keys: BTreeSet<&str> = series.iter().map(|s| s.key.as_str()).collect();
    let limited = limit.is_some_and(|l| keys.len() > l);
    KeysPage { keys: keys.into_iter().take(limit.unwrap_or(usize::MAX)).map(RString::from).collect(), limited }
}

/// Tag keys with their distinct values, sorted, at most `limit` values per key.
pub fn tags_of(series: &[Series], limit: Option<usize>) -> TagsPage {
    let mut tags: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in series {
        for t in s.tags.iter() {
            tags.entry(t.key.as_str()).or_default().insert(t.value.as_str());
        }
    }
    let mut any_limited = false;
    let tags = tags
        .into_iter()
        .map(|(key, values)| {
            let limited = limit.is_some_and(|l| values.len() > l);
            any_limited |= limited;
            TagValues {
                key: key.into(),
                values: values.into_iter().take(limit.unwrap_or(usize::MAX)).map(RString::from).collect(),
                limited,
            }
        })
        .collect();
    TagsPage { tags, limited: any_limited }
}
