//! Behaviour tests of the metadata and suggest stores (Heroic's
//! AbstractMetadataBackendIT and AbstractSuggestBackendIT cases).

use heroic_plugin_api::filter::Filter;
use heroic_plugin_api::types::Series;

use crate::metadata::MetadataStore;
use crate::suggest::{SuggestOptions, SuggestStore};

fn s(key: &str, tags: &[(&str, &str)]) -> Series {
    Series::new(key, tags.iter().copied(), [("pod", "p1")])
}

fn fixture() -> Vec<Series> {
    vec![
        s("cpu", &[("host", "db1"), ("role", "database")]),
        s("cpu", &[("host", "db2"), ("role", "database")]),
        s("cpu", &[("host", "web1"), ("role", "frontend")]),
        s("memory", &[("host", "db1"), ("role", "database")]),
        s("memory", &[("host", "web1")]),
        s("disk", &[("host", "db1"), ("mount", "/var")]),
    ]
}

fn every_operator() -> Vec<Filter> {
    vec![
        Filter::True,
        Filter::False,
        Filter::key("cpu"),
        Filter::not(Filter::key("cpu")),
        Filter::match_tag("host", "db1"),
        Filter::match_tag("pod", "p1"),
        Filter::has_tag("role"),
        Filter::not(Filter::has_tag("role")),
        Filter::starts_with("host", "db"),
        Filter::starts_with("host", ""),
        Filter::regex("host", "db[0-9]"),
        Filter::regex("host", "db"),
        Filter::regex("role", ".*a.*"),
        Filter::Or(vec![Filter::key("disk"), Filter::match_tag("host", "web1")]),
        Filter::And(vec![Filter::key("cpu"), Filter::not(Filter::match_tag("role", "frontend"))]),
        Filter::And(vec![Filter::True, Filter::has_tag("mount")]),
        Filter::And(vec![]),
        Filter::Or(vec![]),
        Filter::not(Filter::Or(vec![Filter::regex("host", "web.*"), Filter::False])),
    ]
}

#[test]
fn every_filter_operator_matches_the_reference_matcher() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open(dir.path()).unwrap();
    let all = fixture();
    assert_eq!(store.write(&all).unwrap(), all.len());
    assert_eq!(store.write(&all).unwrap(), 0, "known series are not written again");
    for f in every_operator() {
        let m = f.compile().unwrap();
        let want: Vec<Series> = all.iter().filter(|s| m.matches(s)).cloned().collect();
        let page = store.find_series(&f, 0).unwrap();
        assert_eq!(page.series.to_vec(), want, "filter {f}");
        assert!(!page.limited);
        assert_eq!(store.count_series(&f, 0).unwrap().count, want.len() as u64, "count {f}");
    }
}

#[test]
fn limits_keys_tags_delete_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let all = fixture();
    {
        let store = MetadataStore::open(dir.path()).unwrap();
        store.write(&all).unwrap();
        let cpu = Filter::key("cpu");
        let one = store.find_series(&cpu, 1).unwrap();
        assert_eq!((one.series.len(), one.limited), (1, true));
        let three = store.find_series(&cpu, 3).unwrap();
        assert_eq!((three.series.len(), three.limited), (3, false));
        let c = store.count_series(&Filter::not(cpu.clone()), 2).unwrap();
        assert_eq!((c.count, c.limited), (2, true));
        let keys = store.find_keys(&Filter::True, 0).unwrap();
        assert_eq!(keys.keys.iter().map(|k| k.as_str()).collect::<Vec<_>>(), vec!["cpu", "disk", "memory"]);
        assert!(store.find_keys(&Filter::True, 2).unwrap().limited);
        let tags = store.find_tags(&Filter::key("memory"), 0).unwrap();
        let host = tags.tags.iter().find(|t| t.key.as_str() == "host").unwrap();
        assert_eq!(host.values.iter().map(|v| v.as_str()).collect::<Vec<_>>(), vec!["db1", "web1"]);
        assert!(store.find_tags(&Filter::True, 1).unwrap().limited);
        let d = store.delete_series(&Filter::match_tag("host", "db1"), 0).unwrap();
        assert_eq!(d.deleted, 3);
        assert_eq!(store.len(), 3);
        assert!(store.find_series(&Filter::match_tag("host", "db1"), 0).unwrap().series.is_empty());
        assert_eq!(
            store.find_tags(&Filter::True, 0).unwrap().tags.iter().filter(|t| t.key.as_str() == "mount").count(),
            0
        );
    }
    let store = MetadataStore::open(dir.path()).unwrap();
    assert_eq!(store.len(), 3);
    assert_eq!(store.count_series(&Filter::key("cpu"), 0).unwrap().count, 2);
    store.write(&all[..1]).unwrap();
    assert_eq!(store.len(), 4);
    drop(store);
    // The registry had more removes than half: reopening rewrites it.
    let store = MetadataStore::open(dir.path()).unwrap();
    assert_eq!(store.len(), 4);
}

#[test]
fn bad_regex_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open(dir.path()).unwrap();
    let err = store.find_series(&Filter::regex("host", "("), 0).unwrap_err();
    assert!(err.to_string().contains("host"), "{err}");
}

fn suggest() -> (tempfile::TempDir, SuggestStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SuggestStore::open(dir.path(), SuggestOptions::default()).unwrap();
    store.write(&fixture()).unwrap();
    (dir, store)
}

#[test]
fn key_and_tag_suggest() {
    let (_d, st) = suggest();
    let keys = st.key_suggest(&Filter::True, Some("me"), 0).unwrap();
    assert_eq!(keys.iter().map(|k| k.key.as_str()).collect::<Vec<_>>(), vec!["memory"]);
    let keys = st.key_suggest(&Filter::match_tag("host", "db1"), None, 0).unwrap();
    assert_eq!(keys.len(), 3);
    let tags = st.tag_suggest(&Filter::True, Some("host"), Some("db"), 0).unwrap();
    assert_eq!(tags.iter().map(|t| t.value.as_str()).collect::<Vec<_>>(), vec!["db1", "db2"]);
    let exact = st.tag_suggest(&Filter::True, Some("role"), Some("database"), 0).unwrap();
    assert_eq!(exact[0].value.as_str(), "database");
    let either = st.tag_suggest(&Filter::True, Some("web"), Some("web"), 0).unwrap();
    assert_eq!(either.iter().map(|t| t.value.as_str()).collect::<Vec<_>>(), vec!["web1"]);
    let only_key = st.tag_suggest(&Filter::key("disk"), Some("mo"), None, 0).unwrap();
    assert_eq!(only_key.len(), 1);
}

#[test]
fn suggestion_limits() {
    let dir = tempfile::tempdir().unwrap();
    let st = SuggestStore::open(dir.path(), SuggestOptions::default()).unwrap();
    let many: Vec<Series> = (0..300).map(|i| s(&format!("key{i:03}"), &[("v", &format!("val{i:03}"))])).collect();
    st.write(&many).unwrap();
    assert_eq!(st.key_suggest(&Filter::True, Some("key"), 0).unwrap().len(), 50, "default limit");
    assert_eq!(st.key_suggest(&Filter::True, Some("key"), 5).unwrap().len(), 5);
    assert_eq!(st.tag_suggest(&Filter::True, None, Some("val"), 1000).unwrap().len(), 250, "ceiling");
    let v = st.tag_value_suggest(&Filter::True, "v", 10).unwrap();
    assert_eq!((v.values.len(), v.limited), (10, true));
    let v = st.tag_value_suggest(&Filter::key("key007"), "v", 10).unwrap();
    assert_eq!((v.values.to_vec(), v.limited), (vec!["val007".into()], false));
}

#[test]
fn tag_values_and_key_counts() {
    let (_d, st) = suggest();
    let tv = st.tag_values_suggest(&Filter::True, &["mount".to_string()], 1, 0).unwrap();
    assert_eq!(tv.tags.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(), vec!["host", "role"]);
    assert!(tv.tags.iter().all(|t| t.values.len() == 1 && t.limited));
    let tv = st.tag_values_suggest(&Filter::True, &[], 0, 1).unwrap();
    assert_eq!((tv.tags.len(), tv.limited), (1, true));
    let kc = st.tag_key_count(&Filter::True, 2, 0).unwrap();
    let get = |k: &str| kc.suggestions.iter().find(|c| c.key.as_str() == k).unwrap().clone();
    assert_eq!(get("host").count, 3);
    assert!(get("host").exact_values.is_none());
    assert_eq!(get("role").exact_values.into_option().unwrap().len(), 2);
    assert!(!kc.limited);
}

/// Writers racing to register the same new series (their records
/// group-commit, none holds the index while it waits) register each once,
/// also after a reopen.
#[test]
fn concurrent_writers_of_the_same_new_series_register_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<Series> = (0..50).map(|i| s("race", &[("i", &i.to_string())])).collect();
    {
        let store = std::sync::Arc::new(MetadataStore::open(dir.path()).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (store, all) = (store.clone(), all.clone());
                std::thread::spawn(move || {
                    all.iter().map(|x| store.write(std::slice::from_ref(x)).unwrap()).sum::<usize>()
                })
            })
            .collect();
        let added: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(added, 50, "each series counted as new once");
        assert_eq!(store.count_series(&Filter::True, 0).unwrap().count, 50);
    }
    let store = MetadataStore::open(dir.path()).unwrap();
    assert_eq!(store.count_series(&Filter::True, 0).unwrap().count, 50, "after a reopen");
}
