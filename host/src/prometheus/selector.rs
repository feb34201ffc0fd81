//! PromQL label matchers as the node's filters, and its series as PromQL
//! labels.
//!
//! The metric name (`__name__`) is the series key, every other label a
//! tag. Resource identifiers are not labels: the filters cannot select by
//! them, so a matcher on one could never be honoured; the variants of a
//! series are read as that one series. Label matchers follow Prometheus: a missing label
//! has the value "", so `job=""` selects the series without `job`, and
//! `job!="api"` the series whose `job` is another value *or* missing;
//! regexes are anchored at both ends, as the filter's own regexes are.
//!
//! The filter sent to the metadata backends may select more than the
//! matchers (it has no regex on the series key), never less: every series
//! found is checked against the matchers here.

use heroic_plugin_api::types::Series;
use heroic_plugin_api::Filter;
use heroic_promql::Labels;
use promql_parser::label::{MatchOp, Matcher, Matchers};

/// The label that holds the metric name.
pub const NAME: &str = "__name__";

/// What the metadata backends are asked for, and the matchers that decide.
pub struct Selector {
    /// Selects at least the series of the matchers.
    pub filter: Filter,
    /// A series is selected when it matches every matcher of one of these.
    alternatives: Vec<Vec<Matcher>>,
}

impl Selector {
    /// The selector of `matchers` (their `or` alternatives too).
    pub fn new(matchers: &Matchers) -> Selector {
        let alternatives: Vec<Vec<Matcher>> = if matchers.or_matchers.is_empty() {
            vec![matchers.matchers.clone()]
        } else {
            matchers.or_matchers.clone()
        };
        let mut filters: Vec<Filter> =
            alternatives.iter().map(|all| Filter::And(all.iter().map(filter_of).collect())).collect();
        let filter = match filters.len() {
            1 => filters.remove(0),
            _ => Filter::Or(filters),
        };
        Selector { filter, alternatives }
    }

    /// Every series (all of them: `Filter::True`).
    pub fn all() -> Selector {
        Selector { filter: Filter::True, alternatives: vec![Vec::new()] }
    }

    /// Whether `labels` match.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.alternatives.iter().any(|all| all.iter().all(|m| m.is_match(labels.get(&m.name))))
    }
}

/// The filter of one matcher: exact where the filter can say it, wider
/// where it cannot (a regex on the series key).
fn filter_of(m: &Matcher) -> Filter {
    // Whether a series without the label (value "") is selected.
    let takes_missing = m.is_match("");
    if m.name == NAME {
        return match &m.op {
            MatchOp::Equal if !m.value.is_empty() => Filter::key(m.value.clone()),
            MatchOp::NotEqual if !m.value.is_empty() => Filter::Not(Box::new(Filter::key(m.value.clone()))),
            // Every series has a key: checked on the host.
            _ => Filter::True,
        };
    }
    let has = || Filter::HasTag(m.name.clone());
    let not = |f: Filter| Filter::Not(Box::new(f));
    match &m.op {
        // A tag stored with an empty value is no label to PromQL.
        MatchOp::Equal if m.value.is_empty() => Filter::Or(vec![not(has()), Filter::match_tag(m.name.clone(), "")]),
        MatchOp::Equal => Filter::match_tag(m.name.clone(), m.value.clone()),
        MatchOp::NotEqual if m.value.is_empty() => has(),
        MatchOp::NotEqual => not(Filter::match_tag(m.name.clone(), m.value.clone())),
        MatchOp::Re(_) => {
            let re = Filter::regex(m.name.clone(), m.value.clone());
            if takes_missing {
                Filter::Or(vec![re, not(has())])
            } else {
                re
            }
        }
        MatchOp::NotRe(_) => {
            let re = Filter::regex(m.name.clone(), m.value.clone());
            if takes_missing {
                not(re)
            } else {
                Filter::And(vec![has(), not(re)])
            }
        }
    }
}

/// A series' labels: `__name__` from its key, and its tags.
pub fn labels_of(series: &Series) -> Labels {
    Labels::new(
        std::iter::once((NAME, series.key.as_str()))
            .chain(series.tags.iter().map(|t| (t.key.as_str(), t.value.as_str()))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(query: &str) -> Selector {
        match promql_parser::parser::parse(query).expect("parses") {
            promql_parser::parser::Expr::VectorSelector(vs) => Selector::new(&heroic_promql::matchers_with_name(&vs)),
            e => panic!("not a selector: {e:?}"),
        }
    }

    fn series(key: &str, tags: &[(&str, &str)]) -> Series {
        Series::new(key, tags.iter().copied(), Vec::<(&str, &str)>::new())
    }

    /// The filter selects at least what the matchers do; the matchers
    /// decide. Checked over series with and without each label.
    #[test]
    fn filters_select_what_prometheus_selects() {
        let all = [
            series("up", &[]),
            series("up", &[("job", "api")]),
            series("up", &[("job", "db")]),
            series("up", &[("job", "")]),
            series("down", &[("job", "api")]),
        ];
        let cases: &[(&str, &[usize])] = &[
            (r#"up"#, &[0, 1, 2, 3]),
            (r#"up{job="api"}"#, &[1]),
            (r#"up{job!="api"}"#, &[0, 2, 3]),
            (r#"up{job=""}"#, &[0, 3]),
            (r#"up{job!=""}"#, &[1, 2]),
            (r#"up{job=~"a.*"}"#, &[1]),
            (r#"up{job=~"a.*|"}"#, &[0, 1, 3]),
            (r#"up{job!~"a.*"}"#, &[0, 2, 3]),
            (r#"up{job!~"d.*|"}"#, &[1]),
            (r#"{__name__=~"u.*", job="api"}"#, &[1]),
            (r#"{__name__!="up", job="api"}"#, &[4]),
            (r#"{job="api" or job="db"}"#, &[1, 2, 4]),
        ];
        for (query, expected) in cases {
            let selector = select(query);
            let matcher = selector.filter.compile().expect("compiles");
            let chosen: Vec<usize> =
                (0..all.len()).filter(|&i| matcher.matches(&all[i]) && selector.matches(&labels_of(&all[i]))).collect();
            assert_eq!(&chosen, expected, "{query}");
            for (i, s) in all.iter().enumerate() {
                if selector.matches(&labels_of(s)) {
                    assert!(matcher.matches(s), "{query}: the filter drops series {i}");
                }
            }
        }
    }
}
