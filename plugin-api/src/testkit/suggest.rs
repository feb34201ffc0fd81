//! The suggest backend suite (Heroic's `AbstractSuggestBackendIT`).
//!
//! Each case writes series under keys unique to it and restricts every query
//! to them (a `$key` filter, or a unique key prefix for key suggestions), so
//! cases can share one backend. Suggest backends may match loosely (Heroic's
//! Elasticsearch backend tokenises and n-grams), so where a backend could
//! reasonably return near matches the cases check "contains" and limits
//! rather than exact lists; where the filter isolates the answer (values of a
//! tag of this case's series) they check it exactly.

use std::collections::{BTreeMap, BTreeSet};

use super::{recent_range, required, unique_id};
use crate::client::{metadata_query, SuggestBackendClient};
use crate::filter::Filter;
use crate::types::*;

/// Every case of the suite (from the one list, `__with_cases!`).
pub const CASES: &[&str] = crate::__with_cases!(suggest, __case_names!());

// --- helpers ----------------------------------------------------------------

fn query(filter: &Filter, limit: u64) -> MetadataQuery {
    metadata_query(filter, recent_range(), limit)
}

/// Five series under one unique key: `host` h0…h4, `role` database or
/// frontend, `site` lon. Returns the key.
pub async fn fixture(c: &SuggestBackendClient, case: &str) -> String {
    let key = format!("{}-suggest", unique_id());
    let series: Vec<Series> = (0..5)
        .map(|i| {
            let host = format!("h{i}");
            let role = if i % 2 == 0 { "database" } else { "frontend" };
            Series::new(key.as_str(), [("host", host.as_str()), ("role", role), ("site", "lon")], [])
        })
        .collect();
    required(case, "write", c.write(series).await);
    key
}

fn strings(v: &[abi_stable::std_types::RString]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn pairs(suggestions: &[TagSuggestion]) -> Vec<(String, String)> {
    suggestions.iter().map(|s| (s.key.to_string(), s.value.to_string())).collect()
}

fn assert_no_duplicates<T: Ord + std::fmt::Debug>(case: &str, what: &str, items: &[T]) {
    let distinct: BTreeSet<&T> = items.iter().collect();
    assert_eq!(distinct.len(), items.len(), "{case}: {what}: duplicates in {items:?}");
}

// --- cases ------------------------------------------------------------------

/// A freshly created backend reports itself healthy and ready, and its
/// statistics can be read.
pub async fn health(c: &SuggestBackendClient) {
    let health = c.health();
    assert!(health.ok && health.ready, "health: backend not healthy after creation: {health:?}");
    let _ = c.statistics();
}

/// Heroic's `*NoIdx` cases: asking before anything matching was written
/// gives an empty answer, not an error.
pub async fn empty_backend(c: &SuggestBackendClient) {
    let case = "empty_backend";
    let id = unique_id();
    let filter = Filter::key(format!("{id}-never-written"));
    let keys = required(case, "key_suggest", c.key_suggest(query(&filter, 10), Some(id.as_str())).await);
    assert!(keys.is_empty(), "{case}: key_suggest: {keys:?}");
    let tags = required(case, "tag_suggest", c.tag_suggest(query(&filter, 10), Some("host"), None).await);
    assert!(tags.is_empty(), "{case}: tag_suggest: {tags:?}");
    let values = required(case, "tag_value_suggest", c.tag_value_suggest(query(&filter, 10), "host").await);
    assert_eq!(values, TagValueSuggestion::default(), "{case}: tag_value_suggest");
    let values = required(case, "tag_values_suggest", c.tag_values_suggest(query(&filter, 10), &[], 10).await);
    assert_eq!(values, TagValuesSuggestion::default(), "{case}: tag_values_suggest");
    let counts = required(case, "tag_key_count", c.tag_key_count(query(&filter, 10), 10).await);
    assert_eq!(counts, TagKeyCountResult::default(), "{case}: tag_key_count");
}

/// Heroic's `keySuggest`: a prefix of a key finds it; limits hold.
pub async fn key_suggest(c: &SuggestBackendClient) {
    let case = "key_suggest";
    let id = unique_id();
    let alpha = format!("{id}-alpha");
    let beta = format!("{id}-beta");
    let series = vec![
        Series::new(alpha.as_str(), [("host", "h1")], []),
        Series::new(alpha.as_str(), [("host", "h2")], []),
        Series::new(beta.as_str(), [("host", "h1")], []),
    ];
    required(case, "write", c.write(series).await);

    let typed = format!("{id}-al");
    let got = required(case, "key_suggest", c.key_suggest(query(&Filter::True, 10), Some(typed.as_str())).await);
    let keys: Vec<String> = got.iter().map(|k| k.key.to_string()).collect();
    assert!(keys.contains(&alpha), "{case}: {typed:?} did not suggest {alpha:?}: {keys:?}");
    assert_eq!(keys.first(), Some(&alpha), "{case}: {typed:?}: the best suggestion must be {alpha:?}: {keys:?}");
    assert_no_duplicates(case, "keys", &keys);
    assert!(got.iter().all(|k| k.score.is_finite()), "{case}: scores must be finite: {got:?}");

    let got = required(case, "key_suggest", c.key_suggest(query(&Filter::True, 10), Some(id.as_str())).await);
    let keys: Vec<String> = got.iter().map(|k| k.key.to_string()).collect();
    assert!(keys.contains(&alpha) && keys.contains(&beta), "{case}: {id:?} must suggest both keys: {keys:?}");

    let got = required(case, "key_suggest", c.key_suggest(query(&Filter::True, 1), Some(id.as_str())).await);
    assert_eq!(got.len(), 1, "{case}: limit 1 with two matching keys: {got:?}");

    // The filter restricts suggestions too.
    let filter = Filter::match_tag("host", "h2");
    let got = required(case, "key_suggest", c.key_suggest(query(&filter, 10), Some(id.as_str())).await);
    let keys: Vec<String> = got.iter().map(|k| k.key.to_string()).collect();
    assert!(keys.contains(&alpha) && !keys.contains(&beta), "{case}: with filter host=h2: {keys:?}");
}

/// Heroic's `tagSuggestSmall`: tag pairs by typed key, by typed value, and by
/// both, restricted by the filter, each pair once.
pub async fn tag_suggest(c: &SuggestBackendClient) {
    let case = "tag_suggest";
    let key = fixture(c, case).await;
    let filter = Filter::key(key.as_str());
    let role = |v: &str| ("role".to_string(), v.to_string());

    let got = pairs(&required(case, "tag_suggest", c.tag_suggest(query(&filter, 0), Some("ro"), None).await));
    assert!(got.contains(&role("database")) && got.contains(&role("frontend")), "{case}: key \"ro\": {got:?}");
    assert!(got.iter().all(|(k, _)| k != "host"), "{case}: key \"ro\" suggested a host tag: {got:?}");
    assert_no_duplicates(case, "key \"ro\"", &got);

    let got = pairs(&required(case, "tag_suggest", c.tag_suggest(query(&filter, 0), None, Some("data")).await));
    assert!(got.contains(&role("database")), "{case}: value \"data\": {got:?}");
    assert!(!got.contains(&role("frontend")), "{case}: value \"data\" suggested role=frontend: {got:?}");

    let got =
        pairs(&required(case, "tag_suggest", c.tag_suggest(query(&filter, 0), Some("role"), Some("front")).await));
    assert!(got.contains(&role("frontend")), "{case}: key \"role\", value \"front\": {got:?}");
    assert!(!got.contains(&role("database")), "{case}: key \"role\", value \"front\" suggested role=database: {got:?}");

    let other = Filter::key(format!("{key}-other"));
    let got = required(case, "tag_suggest", c.tag_suggest(query(&other, 0), Some("role"), None).await);
    assert!(got.is_empty(), "{case}: a filter matching no series: {got:?}");
}

/// Heroic's `tagSuggestLimit`: the limit caps the number of pairs.
pub async fn tag_suggest_limit(c: &SuggestBackendClient) {
    let case = "tag_suggest_limit";
    let key = fixture(c, case).await;
    let filter = Filter::key(key.as_str());
    let got = required(case, "tag_suggest", c.tag_suggest(query(&filter, 0), Some("host"), None).await);
    assert_eq!(got.len(), 5, "{case}: five host values without a limit: {:?}", pairs(&got));
    for limit in [1u64, 3] {
        let got = required(case, "tag_suggest", c.tag_suggest(query(&filter, limit), Some("host"), None).await);
        assert_eq!(got.len() as u64, limit, "{case}: five host values with limit {limit}: {:?}", pairs(&got));
    }
}

/// Heroic's `tagValueSuggestSmall` / `tagValueSuggestLimited`: the values of
/// one tag key; a limit below their number sets `limited`.
pub async fn tag_value_suggest(c: &SuggestBackendClient) {
    let case = "tag_value_suggest";
    let key = fixture(c, case).await;
    let filter = Filter::key(key.as_str());
    let got = required(case, "tag_value_suggest", c.tag_value_suggest(query(&filter, 0), "host").await);
    let values = strings(&got.values);
    assert_no_duplicates(case, "values", &values);
    assert_eq!(
        values.iter().cloned().collect::<BTreeSet<_>>(),
        set(&["h0", "h1", "h2", "h3", "h4"]),
        "{case}: values of host"
    );
    assert!(!got.limited, "{case}: limited without a limit");

    let got = required(case, "tag_value_suggest", c.tag_value_suggest(query(&filter, 10), "role").await);
    assert_eq!(
        strings(&got.values).into_iter().collect::<BTreeSet<_>>(),
        set(&["database", "frontend"]),
        "{case}: role"
    );
    assert!(!got.limited, "{case}: 2 values with limit 10: limited must be false");

    let got = required(case, "tag_value_suggest", c.tag_value_suggest(query(&filter, 3), "host").await);
    let values = strings(&got.values);
    assert_eq!(values.len(), 3, "{case}: 5 values with limit 3: {values:?}");
    assert!(got.limited, "{case}: 5 values with limit 3: limited must be true");
    assert!(values.iter().all(|v| set(&["h0", "h1", "h2", "h3", "h4"]).contains(v)), "{case}: {values:?}");

    let got = required(case, "tag_value_suggest", c.tag_value_suggest(query(&filter, 0), "nope").await);
    assert_eq!(got, TagValueSuggestion::default(), "{case}: a tag key no series has");
}

/// Heroic's `tagValuesSuggestSmall` / `tagValuesTruncatedSuggest`: every tag
/// key with its values, `exclude` left out, at most `group_limit` values per
/// key with `limited` set on the truncated ones.
pub async fn tag_values_suggest(c: &SuggestBackendClient) {
    let case = "tag_values_suggest";
    let key = fixture(c, case).await;
    let filter = Filter::key(key.as_str());
    let by_key = |r: &TagValuesSuggestion| -> BTreeMap<String, (Vec<String>, bool)> {
        let map: BTreeMap<String, (Vec<String>, bool)> =
            r.tags.iter().map(|t| (t.key.to_string(), (strings(&t.values), t.limited))).collect();
        assert_eq!(map.len(), r.tags.len(), "{case}: a tag key appears twice: {r:?}");
        map
    };

    let r = required(case, "tag_values_suggest", c.tag_values_suggest(query(&filter, 0), &[], 10).await);
    let got = by_key(&r);
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), set(&["host", "role", "site"]), "{case}: keys: {r:?}");
    assert_eq!(got["host"].0.iter().cloned().collect::<BTreeSet<_>>(), set(&["h0", "h1", "h2", "h3", "h4"]));
    assert_eq!(got["role"].0.iter().cloned().collect::<BTreeSet<_>>(), set(&["database", "frontend"]));
    assert_eq!(got["site"].0, vec!["lon".to_string()]);
    assert!(
        got.values().all(|(_, limited)| !limited) && !r.limited,
        "{case}: nothing is truncated with group limit 10: {r:?}"
    );

    let r =
        required(case, "tag_values_suggest", c.tag_values_suggest(query(&filter, 0), &["site".to_string()], 3).await);
    let got = by_key(&r);
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), set(&["host", "role"]), "{case}: exclude site: {r:?}");
    let (host, host_limited) = &got["host"];
    assert_eq!(host.len(), 3, "{case}: 5 host values with group limit 3: {host:?}");
    assert!(host_limited, "{case}: 5 host values with group limit 3: limited must be true");
    let (role, role_limited) = &got["role"];
    assert_eq!(role.len(), 2, "{case}: 2 role values with group limit 3: {role:?}");
    assert!(!role_limited, "{case}: 2 role values with group limit 3: limited must be false");
}

/// Heroic's `tagKeyCount`: each tag key with its number of distinct values,
/// and the values themselves when there are at most `exact_limit`.
pub async fn tag_key_count(c: &SuggestBackendClient) {
    let case = "tag_key_count";
    let key = fixture(c, case).await;
    let filter = Filter::key(key.as_str());
    let r = required(case, "tag_key_count", c.tag_key_count(query(&filter, 0), 2).await);
    let got: BTreeMap<String, &TagKeyCount> = r.suggestions.iter().map(|s| (s.key.to_string(), s)).collect();
    assert_eq!(got.len(), r.suggestions.len(), "{case}: a tag key appears twice: {r:?}");
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), set(&["host", "role", "site"]), "{case}: {r:?}");
    let exact =
        |k: &str| got[k].exact_values.clone().into_option().map(|v| strings(&v).into_iter().collect::<BTreeSet<_>>());
    assert_eq!(got["host"].count, 5, "{case}: distinct host values");
    assert_eq!(exact("host"), None, "{case}: 5 host values > exact_limit 2: no exact values");
    assert_eq!(got["role"].count, 2, "{case}: distinct role values");
    assert_eq!(exact("role"), Some(set(&["database", "frontend"])), "{case}: role values (2 ≤ exact_limit 2)");
    assert_eq!(got["site"].count, 1, "{case}: distinct site values");
    assert_eq!(exact("site"), Some(set(&["lon"])), "{case}: site values");
    assert!(!r.limited, "{case}: limited without a limit");
}

/// Every suggest operation is required: nothing is skipped.
pub async fn capabilities_summary(_: &SuggestBackendClient) {
    super::report(&super::capability_summary("suggest", &[], &[]));
}
