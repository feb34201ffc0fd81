//! Aggregation pushdown, the session's side: which aggregations a plugin's
//! `fetch_buckets` can answer (see `heroic_plugin_api::buckets`) and which
//! group each series falls in. The partial states a plugin returns are
//! merged into the session as if its points had been folded here
//! (`AggregationSession::update_partials`, in `session.rs`).
//!
//! Pushed down: a bucketed `sum`, `sum2`, `average`, `min`, `max`, `count`
//! or `spread`, alone or as the `each` of a `group` or `collapse`. Each is a
//! function of count, sum, sum of squares, min and max per bucket, so the
//! answer is the same as folding the points here, up to the order of
//! floating-point additions.

use heroic_plugin_api::buckets::{BucketLayout, PartialFields};
use heroic_plugin_api::types::Series;

use super::instance::AggregationInstance;
use super::result::{series_key, tag_value, GroupKey};
use super::session::{group_key, AggregationSession};
use super::BucketKind;

/// What a bucket fetch computes for a session.
#[derive(Clone, Debug, PartialEq)]
pub struct Pushdown {
    pub layout: BucketLayout,
    pub fields: PartialFields,
    /// `None`: every series in one group; else `group`/`collapse` by these.
    grouping: Option<(bool, Option<Vec<String>>)>,
}

impl Pushdown {
    /// The key of the group `series` falls in; series with equal keys are
    /// folded into the same cells.
    pub fn group_of(&self, series: &Series) -> GroupKey {
        match &self.grouping {
            None => GroupKey::new(),
            // `group` by named tags, the usual case: their values are looked
            // up in the series, not copied out of a key of all its tags
            // first (a dozen allocations a series, at 100,000 series a
            // twentieth of a grouped query).
            Some((false, Some(of))) => {
                of.iter().filter_map(|k| Some((k.clone(), tag_value(series, k)?.to_string()))).collect()
            }
            Some((collapse, of)) => group_key(*collapse, of.as_deref(), &series_key(series)),
        }
    }
}

/// The partial fields a bucketed aggregation needs, if it can be pushed down.
fn fields_of(kind: &BucketKind) -> Option<PartialFields> {
    Some(match kind {
        BucketKind::Sum | BucketKind::Average => PartialFields::COUNT | PartialFields::SUM,
        BucketKind::Sum2 => PartialFields::COUNT | PartialFields::SUM2,
        BucketKind::Min => PartialFields::COUNT | PartialFields::MIN,
        BucketKind::Max => PartialFields::COUNT | PartialFields::MAX,
        BucketKind::Count => PartialFields::COUNT,
        BucketKind::Spread => PartialFields::ALL,
        _ => return None,
    })
}

impl AggregationSession {
    /// The bucket fetch that can answer this session, if there is one.
    pub fn pushdown(&self) -> Option<Pushdown> {
        let (grouping, each) = match self.instance() {
            AggregationInstance::Group { of, each } => (Some((false, of.clone())), &**each),
            AggregationInstance::Collapse { of, each } => (Some((true, of.clone())), &**each),
            bucket => (None, bucket),
        };
        let AggregationInstance::Bucket { kind, size, extent } = each else {
            return None;
        };
        let fields = fields_of(kind)?;
        let layout = self.mapping(*size, *extent).ok()?.layout();
        Some(Pushdown { layout, fields, grouping })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use heroic_plugin_api::buckets::BucketPartials;
    use heroic_plugin_api::types::TimeRange;

    use super::*;
    use crate::aggregation::{Aggregation, BucketStrategy, ResultGroup};

    fn session(hql: &str) -> AggregationSession {
        let q = crate::hql::parse_query(hql).unwrap();
        let agg = q.aggregation().unwrap().unwrap_or(Aggregation::Empty);
        agg.apply(1).unwrap().session(TimeRange::new(0, 40), BucketStrategy::End, None).unwrap()
    }

    fn data() -> Vec<(Series, Vec<(i64, f64)>)> {
        let s = |host: &str, site: &str| Series::new("cpu", [("host", host), ("site", site)], [("pod", host)]);
        vec![
            (s("a", "lon"), vec![(5, 1.0), (10, 3.0), (12, 2.0), (30, -4.0), (40, 6.0), (41, 9.0)]),
            (s("b", "lon"), vec![(1, 0.5), (20, f64::NAN), (25, 7.0)]),
            (s("c", "sto"), vec![(11, -1.0), (39, 2.0)]),
            (s("d", "sto"), vec![]),
        ]
    }

    /// The groups of folding the points here, and of merging the partials
    /// a plugin would fold from the same points.
    fn both(hql: &str) -> (Vec<ResultGroup>, Vec<ResultGroup>) {
        let mut here = session(hql);
        for (s, points) in data() {
            let (ts, vs): (Vec<i64>, Vec<f64>) = points.into_iter().unzip();
            if !ts.is_empty() {
                here.update(&s, &ts, &vs).unwrap();
            }
        }
        let mut pushed = session(hql);
        let pd = pushed.pushdown().unwrap_or_else(|| panic!("{hql} is pushed down"));
        let mut groups: HashMap<GroupKey, (usize, Vec<Series>)> = HashMap::new();
        let mut order = Vec::new();
        let indices: Vec<usize> = data()
            .iter()
            .map(|(s, _)| {
                let key = pd.group_of(s);
                let n = groups.len();
                let g = groups.entry(key.clone()).or_insert_with(|| {
                    order.push(key);
                    (n, Vec::new())
                });
                g.0
            })
            .collect();
        let mut partials = BucketPartials::new(pd.fields, groups.len() * pd.layout.count());
        for ((s, points), &g) in data().into_iter().zip(&indices) {
            let (ts, vs): (Vec<i64>, Vec<f64>) = points.into_iter().unzip();
            partials.fold(&pd.layout, g, &ts, &vs);
            if !ts.is_empty() {
                groups.get_mut(&order[g]).unwrap().1.push(s);
            }
        }
        for key in &order {
            let (g, series) = &groups[key];
            pushed.update_partials(key, series.clone(), &partials, *g).unwrap();
        }
        (here.finish().unwrap(), pushed.finish().unwrap())
    }

    #[test]
    fn pushed_down_aggregations_answer_as_folding_the_points() {
        for hql in [
            "sum(10ms)",
            "sum2(10ms)",
            "average(10ms)",
            "min(5ms)",
            "max(10ms)",
            "count(10ms)",
            "spread(10ms)",
            "sum(10ms, 20ms)",
            "sum(10ms) by host",
            "average(10ms) by site",
            "max(20ms) by pod",
            "count(10ms) by *",
            "collapse(host, sum(10ms))",
        ] {
            let (here, pushed) = both(hql);
            assert!(!here.is_empty(), "{hql}");
            assert_eq!(here, pushed, "{hql}");
        }
    }

    #[test]
    fn other_aggregations_are_not_pushed_down() {
        for hql in ["quantile(10ms)", "stddev(10ms)", "delta", "sum(10ms) | max(20ms)", "cardinality(10ms)", "*"] {
            assert!(session(hql).pushdown().is_none(), "{hql}");
        }
    }

    proptest::proptest! {
        /// A `group` by named tags keys a series as the general rule does
        /// (its tags overlaid by its resource tags, the last of repeated
        /// keys winning, named tags it lacks left out).
        #[test]
        fn grouping_by_named_tags_keys_series_as_the_general_rule(
            tags in proptest::collection::vec((0u8..4, 0u8..3), 0..6),
            resource in proptest::collection::vec((0u8..4, 0u8..3), 0..3),
            of in proptest::collection::vec(0u8..5, 0..4),
        ) {
            let pairs = |v: &[(u8, u8)]| v.iter().map(|(k, v)| (format!("k{k}"), format!("v{v}"))).collect::<Vec<_>>();
            let series = Series::new("cpu", pairs(&tags), pairs(&resource));
            let of: Vec<String> = of.iter().map(|k| format!("k{k}")).collect();
            let pd = Pushdown {
                layout: BucketLayout::new(TimeRange::new(0, 10), 10, 10, 0).unwrap(),
                fields: PartialFields::COUNT,
                grouping: Some((false, Some(of.clone()))),
            };
            proptest::prop_assert_eq!(pd.group_of(&series), group_key(false, Some(&of), &series_key(&series)));
        }
    }
}
