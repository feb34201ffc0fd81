//! The metadata backend suite (Heroic's `AbstractMetadataBackendIT`).
//!
//! Each case writes its own small set of series, all tagged `run=<unique id>`
//! and keyed `<id>-a`, `<id>-b` …, and every query is restricted to them
//! (`run = <id>` or a unique key), so cases can share one backend.
//!
//! The fixture of the filter cases:
//!
//! | series | key      | tags                                                 |
//! |--------|----------|------------------------------------------------------|
//! | s0     | `<id>-a` | run, host=db1, role=database, site=lon               |
//! | s1     | `<id>-a` | run, host=db2, role=database                         |
//! | s2     | `<id>-b` | run, host=web1, role=frontend, site=lon              |
//! | s3     | `<id>-c` | run, host=web2                                       |

use std::collections::{BTreeMap, BTreeSet};

use super::{optional, recent_range, required, unique_id};
use crate::client::MetadataBackendClient;
use crate::filter::Filter;
use crate::types::*;

/// Every case of the suite (from the one list, `__with_cases!`).
pub const CASES: &[&str] = crate::__with_cases!(metadata, __case_names!());

/// The optional cases and the capability each needs.
pub const OPTIONAL: &[(&str, MetadataCapabilities)] = &[("delete_series", MetadataCapabilities::DELETE_SERIES)];

// --- helpers ----------------------------------------------------------------

/// The series of one case (see the module docs) and the filter isolating them.
pub struct Fixture {
    pub id: String,
    pub series: Vec<Series>,
}

impl Fixture {
    pub fn key(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.id)
    }

    /// `run = <id>`: exactly this fixture's series.
    pub fn run(&self) -> Filter {
        Filter::match_tag("run", self.id.as_str())
    }

    /// `run = <id> and f`.
    pub fn only(&self, f: Filter) -> Filter {
        Filter::And(vec![self.run(), f])
    }

    pub fn pick(&self, indices: &[usize]) -> Vec<Series> {
        indices.iter().map(|&i| self.series[i].clone()).collect()
    }
}

/// Writes the four series of the filter cases.
pub async fn fixture(c: &MetadataBackendClient, case: &str) -> Fixture {
    let id = unique_id();
    let key = |s: &str| format!("{id}-{s}");
    let run = ("run", id.as_str());
    let series = vec![
        Series::new(key("a"), [run, ("host", "db1"), ("role", "database"), ("site", "lon")], []),
        Series::new(key("a"), [run, ("host", "db2"), ("role", "database")], []),
        Series::new(key("b"), [run, ("host", "web1"), ("role", "frontend"), ("site", "lon")], []),
        Series::new(key("c"), [run, ("host", "web2")], []),
    ];
    required(case, "write", c.write(series.clone()).await);
    Fixture { id, series }
}

/// Finds series as the host does: a backend that cannot evaluate regexes
/// gets the filter with regexes relaxed, and the full filter is applied to
/// its candidates.
pub async fn find_as_host(c: &MetadataBackendClient, case: &str, filter: &Filter, limit: u64) -> SeriesPage {
    if filter.contains_regex() && !c.capabilities().contains(MetadataCapabilities::REGEX) {
        let relaxed = filter.without_regex();
        let mut page = required(case, "find_series", c.find_series(&relaxed, recent_range(), 0).await);
        let matcher = filter.compile().unwrap_or_else(|e| panic!("{case}: {e}"));
        let mut kept: Vec<Series> = page.series.into_iter().filter(|s| matcher.matches(s)).collect();
        page.limited = limit > 0 && kept.len() as u64 > limit;
        if limit > 0 {
            kept.truncate(limit as usize);
        }
        page.series = kept.into();
        return page;
    }
    required(case, "find_series", c.find_series(filter, recent_range(), limit).await)
}

/// Compares sets of series (order and duplicates matter not for the set,
/// but duplicates are reported).
pub fn assert_series(case: &str, what: &str, actual: &[Series], expected: &[Series]) {
    let actual_set: BTreeSet<&Series> = actual.iter().collect();
    assert_eq!(actual_set.len(), actual.len(), "{case}: {what}: the same series was returned twice: {actual:#?}");
    let expected_set: BTreeSet<&Series> = expected.iter().collect();
    if actual_set != expected_set {
        let missing: Vec<_> = expected_set.difference(&actual_set).collect();
        let extra: Vec<_> = actual_set.difference(&expected_set).collect();
        panic!("{case}: {what}: wrong series.\nmissing: {missing:#?}\nunexpected: {extra:#?}");
    }
}

async fn check_filter(c: &MetadataBackendClient, case: &str, fx: &Fixture, filter: Filter, expected: &[usize]) {
    let page = find_as_host(c, case, &filter, 0).await;
    assert!(!page.limited, "{case}: {filter}: limited=true without a limit");
    assert_series(case, &filter.to_string(), &page.series, &fx.pick(expected));
}

// --- cases ------------------------------------------------------------------

/// A freshly created backend reports itself healthy and ready, and its
/// statistics and capabilities can be read.
pub async fn health(c: &MetadataBackendClient) {
    let health = c.health();
    assert!(health.ok && health.ready, "health: backend not healthy after creation: {health:?}");
    let _ = c.statistics();
    let _ = c.capabilities();
}

/// Heroic's `*NoIdx` cases: queries before anything matching was written
/// answer empty, not an error.
pub async fn empty_backend(c: &MetadataBackendClient) {
    let case = "empty_backend";
    let filter = Filter::key(format!("{}-never-written", unique_id()));
    let page = required(case, "find_series", c.find_series(&filter, recent_range(), 0).await);
    assert!(page.series.is_empty() && !page.limited, "{case}: find_series: {page:?}");
    let count = required(case, "count_series", c.count_series(&filter, recent_range(), 0).await);
    assert_eq!(count, CountResult { count: 0, limited: false }, "{case}: count_series");
    let keys = required(case, "find_keys", c.find_keys(&filter, recent_range(), 0).await);
    assert!(keys.keys.is_empty() && !keys.limited, "{case}: find_keys: {keys:?}");
    let tags = required(case, "find_tags", c.find_tags(&filter, recent_range(), 0).await);
    assert!(tags.tags.is_empty() && !tags.limited, "{case}: find_tags: {tags:?}");
}

/// `true` matches every series.
pub async fn filter_true(c: &MetadataBackendClient) {
    let case = "filter_true";
    let fx = fixture(c, case).await;
    check_filter(c, case, &fx, fx.only(Filter::True), &[0, 1, 2, 3]).await;
    // Bare `true` sees other cases' series too: check ours are among them.
    let page = find_as_host(c, case, &Filter::True, 0).await;
    for s in &fx.series {
        assert!(page.series.contains(s), "{case}: bare `true` did not find {s:?}");
    }
}

/// `false` matches nothing.
pub async fn filter_false(c: &MetadataBackendClient) {
    let case = "filter_false";
    let fx = fixture(c, case).await;
    check_filter(c, case, &fx, Filter::False, &[]).await;
    check_filter(c, case, &fx, fx.only(Filter::False), &[]).await;
}

/// `$key = k`.
pub async fn filter_key(c: &MetadataBackendClient) {
    let case = "filter_key";
    let fx = fixture(c, case).await;
    check_filter(c, case, &fx, Filter::key(fx.key("a")), &[0, 1]).await;
    check_filter(c, case, &fx, Filter::key(fx.key("c")), &[3]).await;
    check_filter(c, case, &fx, Filter::key(fx.key("nope")), &[]).await;
    // A key filter is exact: a prefix of a key matches nothing.
    check_filter(c, case, &fx, Filter::key(fx.id.clone()), &[]).await;
}

/// `$key != k` (Heroic's `countSeriesTest` uses it).
pub async fn filter_not_key(c: &MetadataBackendClient) {
    let case = "filter_not_key";
    let fx = fixture(c, case).await;
    check_filter(c, case, &fx, fx.only(Filter::not(Filter::key(fx.key("a")))), &[2, 3]).await;
    check_filter(c, case, &fx, fx.only(Filter::not(Filter::key(fx.key("nope")))), &[0, 1, 2, 3]).await;
}

/// `k = v`.
pub async fn filter_match_tag(c: &MetadataBackendClient) {
    let case = "filter_match_tag";
    let fx = fixture(c, case).await;
    check_filter(c, case, &fx, fx.only(Filter::match_tag("host", "db1")), &[0]).await;
    check_filter(c, case, &fx, fx.only(Filter::match_tag("role", "database")), &[0, 1]).await;
    check_filter(c, case, &fx, fx.only(Filter::match_tag("role", "data")), &[]).await;
    check_filter(c, case, &fx, fx.only(Filter::match_tag("nope", "db1")), &[]).await;
    check_filter(c, case, &fx, fx.run(), &[0, 1, 2, 3]).await;
}

/// `+k`.
pub async fn filter_has_tag(c: &MetadataBackendClient) {
    let case = "filter_has_tag";
    let fx = fixture(c, case).await;
    check_filter(c, case, &fx, fx.only(Filter::has_tag("site")), &[0, 2]).await;
    check_filter(c, case, &fx, fx.only(Filter::has_tag("role")), &[0, 1, 2]).await;
    check_filter(c, case, &fx, fx.only(Filter::has_tag("nope")), &[]).await;
}

/// `k ^ prefix`.
pub async fn filter_prefix(c: &MetadataBackendClient) {
    let case = "filter_prefix";
    let fx = fixture(c, case).await;
    check_filter(c, case, &fx, fx.only(Filter::starts_with("host", "web")), &[2, 3]).await;
    check_filter(c, case, &fx, fx.only(Filter::starts_with("host", "db2")), &[1]).await;
    check_filter(c, case, &fx, fx.only(Filter::starts_with("host", "")), &[0, 1, 2, 3]).await;
    check_filter(c, case, &fx, fx.only(Filter::starts_with("host", "eb")), &[]).await;
    check_filter(c, case, &fx, fx.only(Filter::starts_with("site", "l")), &[0, 2]).await;
}

/// `k ~ regex`, a full match. A backend without the regex capability gets
/// the filter relaxed and the host finishes the job (as [`find_as_host`]
/// does); the answer must then hold every candidate.
pub async fn filter_regex(c: &MetadataBackendClient) {
    let case = "filter_regex";
    if !c.capabilities().contains(MetadataCapabilities::REGEX) {
        eprintln!(
            "note: {case}: the backend does not evaluate regexes itself; checking that its answer to the \
             relaxed filter holds every match (the host applies the regex)"
        );
    }
    let fx = fixture(c, case).await;
    check_filter(c, case, &fx, fx.only(Filter::regex("host", "db[0-9]")), &[0, 1]).await;
    check_filter(c, case, &fx, fx.only(Filter::regex("host", "db")), &[]).await;
    check_filter(c, case, &fx, fx.only(Filter::regex("host", "db1|web2")), &[0, 3]).await;
    check_filter(c, case, &fx, fx.only(Filter::regex("host", ".*eb.*")), &[2, 3]).await;
    check_filter(c, case, &fx, fx.only(Filter::not(Filter::regex("host", "web.*"))), &[0, 1]).await;
}

/// `a and b`.
pub async fn filter_and(c: &MetadataBackendClient) {
    let case = "filter_and";
    let fx = fixture(c, case).await;
    let and = |v: Vec<Filter>| Filter::And([vec![fx.run()], v].concat());
    check_filter(c, case, &fx, and(vec![Filter::match_tag("role", "database"), Filter::has_tag("site")]), &[0]).await;
    check_filter(c, case, &fx, and(vec![Filter::key(fx.key("a")), Filter::match_tag("host", "db2")]), &[1]).await;
    check_filter(c, case, &fx, and(vec![Filter::match_tag("host", "db1"), Filter::match_tag("host", "db2")]), &[])
        .await;
}

/// `a or b`.
pub async fn filter_or(c: &MetadataBackendClient) {
    let case = "filter_or";
    let fx = fixture(c, case).await;
    check_filter(
        c,
        case,
        &fx,
        fx.only(Filter::Or(vec![Filter::match_tag("host", "db1"), Filter::match_tag("host", "web2")])),
        &[0, 3],
    )
    .await;
    check_filter(c, case, &fx, Filter::Or(vec![Filter::key(fx.key("b")), Filter::key(fx.key("c"))]), &[2, 3]).await;
    check_filter(
        c,
        case,
        &fx,
        fx.only(Filter::Or(vec![Filter::has_tag("site"), Filter::starts_with("host", "web")])),
        &[0, 2, 3],
    )
    .await;
}

/// `!f`, including nested under `and` and over `or`.
pub async fn filter_not(c: &MetadataBackendClient) {
    let case = "filter_not";
    let fx = fixture(c, case).await;
    check_filter(c, case, &fx, fx.only(Filter::not(Filter::has_tag("role"))), &[3]).await;
    check_filter(c, case, &fx, fx.only(Filter::not(Filter::match_tag("role", "database"))), &[2, 3]).await;
    check_filter(
        c,
        case,
        &fx,
        fx.only(Filter::not(Filter::Or(vec![Filter::match_tag("host", "db1"), Filter::has_tag("site")]))),
        &[1, 3],
    )
    .await;
    check_filter(
        c,
        case,
        &fx,
        fx.only(Filter::And(vec![
            Filter::Or(vec![Filter::match_tag("role", "database"), Filter::match_tag("role", "frontend")]),
            Filter::not(Filter::match_tag("site", "lon")),
        ])),
        &[1],
    )
    .await;
    check_filter(c, case, &fx, fx.only(Filter::not(Filter::True)), &[]).await;
    check_filter(c, case, &fx, fx.only(Filter::not(Filter::False)), &[0, 1, 2, 3]).await;
}

/// Heroic's `findSeriesLimited`: with limit 1 of 3, one series and
/// limited=true; with limit 3 of 3, all and limited=false.
pub async fn find_series_limited(c: &MetadataBackendClient) {
    let case = "find_series_limited";
    let fx = fixture(c, case).await;
    let filter = fx.only(Filter::has_tag("role")); // s0, s1, s2
    let all = fx.pick(&[0, 1, 2]);
    for (limit, expect_len, expect_limited) in [(1, 1, true), (2, 2, true), (3, 3, false), (4, 3, false), (0, 3, false)]
    {
        let page = required(case, "find_series", c.find_series(&filter, recent_range(), limit).await);
        assert_eq!(
            (page.series.len(), page.limited),
            (expect_len, expect_limited),
            "{case}: limit {limit} of 3 matching series: (series returned, limited)"
        );
        for s in page.series.iter() {
            assert!(all.contains(s), "{case}: limit {limit}: unexpected series {s:?}");
        }
    }
}

/// Heroic's `countSeriesTest`, with `not key` among the filters.
pub async fn count_series(c: &MetadataBackendClient) {
    let case = "count_series";
    let fx = fixture(c, case).await;
    for (filter, expected) in [
        (fx.run(), 4),
        (fx.only(Filter::not(Filter::key(fx.key("a")))), 2),
        (Filter::key(fx.key("a")), 2),
        (fx.only(Filter::has_tag("site")), 2),
        (fx.only(Filter::False), 0),
    ] {
        let count = required(case, "count_series", c.count_series(&filter, recent_range(), 0).await);
        assert_eq!(count, CountResult { count: expected, limited: false }, "{case}: count_series({filter})");
    }
    let count = required(case, "count_series", c.count_series(&fx.run(), recent_range(), 2).await);
    assert!(count.limited && count.count <= 2, "{case}: 4 series counted with limit 2: {count:?}");
}

/// Heroic's `findKeys`: distinct keys of the matching series.
pub async fn find_keys(c: &MetadataBackendClient) {
    let case = "find_keys";
    let fx = fixture(c, case).await;
    let page = required(case, "find_keys", c.find_keys(&fx.run(), recent_range(), 0).await);
    let keys: Vec<String> = page.keys.iter().map(|k| k.to_string()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), keys.len(), "{case}: a key was returned twice: {keys:?}");
    assert_eq!(sorted, vec![fx.key("a"), fx.key("b"), fx.key("c")], "{case}: keys of run={}", fx.id);
    assert!(!page.limited, "{case}: limited without a limit");

    let page = required(case, "find_keys", c.find_keys(&fx.only(Filter::has_tag("site")), recent_range(), 0).await);
    let keys: BTreeSet<String> = page.keys.iter().map(|k| k.to_string()).collect();
    assert_eq!(keys, BTreeSet::from([fx.key("a"), fx.key("b")]), "{case}: keys of series with a site");

    let page = required(case, "find_keys", c.find_keys(&fx.run(), recent_range(), 2).await);
    assert!(page.keys.len() <= 2 && page.limited, "{case}: 3 keys with limit 2: {page:?}");
}

/// Heroic's `findTags`: every tag key with its distinct values.
pub async fn find_tags(c: &MetadataBackendClient) {
    let case = "find_tags";
    let fx = fixture(c, case).await;
    let page = required(case, "find_tags", c.find_tags(&fx.run(), recent_range(), 0).await);
    let mut got: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in page.tags.iter() {
        let values: Vec<String> = t.values.iter().map(|v| v.to_string()).collect();
        let set: BTreeSet<String> = values.iter().cloned().collect();
        assert_eq!(set.len(), values.len(), "{case}: tag {} has a value twice: {values:?}", t.key);
        assert!(got.insert(t.key.to_string(), set).is_none(), "{case}: tag key {} returned twice", t.key);
        assert!(!t.limited, "{case}: tag {} limited without a limit", t.key);
    }
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let expected = BTreeMap::from([
        ("host".to_string(), set(&["db1", "db2", "web1", "web2"])),
        ("role".to_string(), set(&["database", "frontend"])),
        ("run".to_string(), set(&[fx.id.as_str()])),
        ("site".to_string(), set(&["lon"])),
    ]);
    assert_eq!(got, expected, "{case}: tags of run={}", fx.id);
    assert!(!page.limited, "{case}: limited without a limit");
}

/// Heroic's `deleteSeries`: deleted series are no longer found; the others
/// stay. Optional: a backend that does not declare `DELETE_SERIES` must
/// answer `Unsupported`.
pub async fn delete_series(c: &MetadataBackendClient) {
    let case = "delete_series";
    let fx = fixture(c, case).await;
    let filter = fx.only(Filter::key(fx.key("a")));
    let Some(result) = optional(
        "metadata",
        case,
        "delete_series",
        c.capabilities().contains(MetadataCapabilities::DELETE_SERIES),
        c.delete_series(&filter, recent_range(), 0).await,
    ) else {
        return;
    };
    assert_eq!(result, DeleteResult { deleted: 2, failed: 0 }, "{case}: deleting the 2 series of key {}", fx.key("a"));
    check_filter(c, case, &fx, fx.run(), &[2, 3]).await;
    check_filter(c, case, &fx, Filter::key(fx.key("a")), &[]).await;
    let count = required(case, "count_series", c.count_series(&fx.run(), recent_range(), 0).await);
    assert_eq!(count.count, 2, "{case}: count after the delete");
}

/// Heroic's `findSeriesComplexTestIndexResource`: resource tags are stored
/// and returned with the series, but are not filterable.
pub async fn resource_round_trip(c: &MetadataBackendClient) {
    let case = "resource_round_trip";
    let id = unique_id();
    let with = Series::new(format!("{id}-r"), [("run", id.as_str()), ("host", "h1")], [("pod", "p-1"), ("zone", "z")]);
    let without = Series::new(format!("{id}-r"), [("run", id.as_str()), ("host", "h2")], []);
    required(case, "write", c.write(vec![with.clone(), without.clone()]).await);
    let run = Filter::match_tag("run", id.as_str());
    let page = required(case, "find_series", c.find_series(&run, recent_range(), 0).await);
    assert_series(case, "series with resource tags", &page.series, &[with.clone(), without]);
    let page = required(case, "find_series", c.find_series(&Filter::match_tag("host", "h1"), recent_range(), 0).await);
    assert!(page.series.contains(&with), "{case}: host=h1 did not find the series with its resource tags");
    let by_resource = Filter::And(vec![run.clone(), Filter::match_tag("pod", "p-1")]);
    let page = required(case, "find_series", c.find_series(&by_resource, recent_range(), 0).await);
    assert!(
        page.series.is_empty(),
        "{case}: resource tags must not be filterable, yet pod=p-1 found {:?}",
        page.series
    );
    let page = required(
        case,
        "find_series",
        c.find_series(&Filter::And(vec![run, Filter::has_tag("zone")]), recent_range(), 0).await,
    );
    assert!(page.series.is_empty(), "{case}: resource tags must not be filterable, yet +zone found {:?}", page.series);
}

/// Writing the same series again (as every write of points does) keeps one
/// series.
pub async fn write_twice_found_once(c: &MetadataBackendClient) {
    let case = "write_twice_found_once";
    let id = unique_id();
    let s = Series::new(format!("{id}-w"), [("run", id.as_str()), ("host", "h1")], []);
    required(case, "write", c.write(vec![s.clone()]).await);
    required(case, "write", c.write(vec![s.clone(), s.clone()]).await);
    let run = Filter::match_tag("run", id.as_str());
    let page = required(case, "find_series", c.find_series(&run, recent_range(), 0).await);
    assert_series(case, "series written three times", &page.series, &[s]);
    let count = required(case, "count_series", c.count_series(&run, recent_range(), 0).await);
    assert_eq!(count.count, 1, "{case}: count of a series written three times");
}

/// Prints which optional cases this backend's declared capabilities skip.
pub async fn capabilities_summary(c: &MetadataBackendClient) {
    let caps = c.capabilities();
    let cases: Vec<(&str, bool)> = OPTIONAL.iter().map(|(case, cap)| (*case, caps.contains(*cap))).collect();
    super::report(&super::capability_summary("metadata", &cases, &caps.names()));
}
