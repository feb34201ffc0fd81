//! `commonTags` and `commonResource` of a response, as Heroic's
//! `QueryMetricsResponseSerializer.calculateCommon` computes them.

use std::collections::{BTreeMap, BTreeSet};

use heroic_query::ResultGroup;

type TagValues = BTreeMap<String, BTreeSet<String>>;

/// Tag values borrowed from the groups' series: nothing is allocated per
/// series (a group may hold 100,000 of them).
type Borrowed<'a> = BTreeMap<&'a str, BTreeSet<&'a str>>;

/// Every value of each tag (resource tag with `resource`) over a group's
/// series.
fn of_group(group: &ResultGroup, resource: bool) -> Borrowed<'_> {
    let mut out = Borrowed::new();
    for s in &group.series {
        let tags = if resource { &s.resource } else { &s.tags };
        for t in tags.iter() {
            out.entry(t.key.as_str()).or_default().insert(t.value.as_str());
        }
    }
    out
}

/// The keys found in every group, each with its values across all of them.
/// Keys are intersected so that a client making a column per common key
/// (the Grafana data source does) gets no empty cells; values are unioned.
pub fn common_tags(groups: &[ResultGroup], resource: bool) -> TagValues {
    let mut per_group = groups.iter().map(|g| of_group(g, resource));
    let Some(mut common) = per_group.next() else { return TagValues::new() };
    for group in per_group {
        common.retain(|key, _| group.contains_key(key));
        for (key, values) in common.iter_mut() {
            values.extend(group[key].iter().copied());
        }
    }
    common.into_iter().map(|(k, vs)| (k.to_string(), vs.into_iter().map(str::to_string).collect())).collect()
}

#[cfg(test)]
mod tests {
    use heroic_plugin_api::types::Series;
    use heroic_query::MetricValues;

    use super::*;

    fn group(series: Vec<Series>) -> ResultGroup {
        ResultGroup { key: Default::default(), series, cadence: 0, values: MetricValues::Points(vec![]) }
    }

    #[test]
    fn keys_are_intersected_and_values_unioned() {
        let none: [(&str, &str); 0] = [];
        let groups = [
            group(vec![Series::new("k", [("host", "a"), ("site", "lon")], [("pod", "p1")])]),
            group(vec![Series::new("k", [("host", "b")], [("pod", "p2")]), Series::new("k", [("host", "c")], none)]),
        ];
        let tags = common_tags(&groups, false);
        assert_eq!(tags, TagValues::from([("host".into(), ["a", "b", "c"].map(String::from).into())]));
        let resource = common_tags(&groups, true);
        assert_eq!(resource, TagValues::from([("pod".into(), ["p1", "p2"].map(String::from).into())]));
        assert!(common_tags(&[], false).is_empty());
    }
}
