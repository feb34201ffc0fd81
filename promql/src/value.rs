//! The values of PromQL: labels, samples, series, and what a query answers.

/// A series' labels, sorted by name, names unique; the metric name is the
/// label `__name__`.
///
/// Held as one string of every name and value, one after the other, and
/// where each ends: a query over 100,000 series builds, compares, hashes,
/// copies and drops as many label sets, and eleven allocations a set (a
/// `Vec` of five pairs of `String`s) were a fifth of such a query's time.
/// Ordered as the list of `(name, value)` pairs.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels {
    /// Every name and value, in order.
    text: String,
    /// Where each name and each value ends in `text`.
    ends: Vec<usize>,
}

impl Labels {
    /// Sorts `pairs` by name; an empty value is no label (as in Prometheus).
    /// Of two pairs with one name, the lesser value is kept.
    pub fn new<N: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (N, V)>) -> Labels {
        let mut v: Vec<(N, V)> = pairs.into_iter().filter(|(_, value)| !value.as_ref().is_empty()).collect();
        let sorted = v.windows(2).all(|w| w[0].0.as_ref() < w[1].0.as_ref());
        if !sorted {
            v.sort_by(|a, b| (a.0.as_ref(), a.1.as_ref()).cmp(&(b.0.as_ref(), b.1.as_ref())));
            v.dedup_by(|a, b| a.0.as_ref() == b.0.as_ref());
        }
        Labels::from_sorted(v.iter().map(|(n, value)| (n.as_ref(), value.as_ref())))
    }

    /// Labels of pairs already sorted by name, names unique, values not
    /// empty.
    fn from_sorted<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Labels {
        let (count, len) = pairs.clone().fold((0, 0), |(c, l), (n, v)| (c + 1, l + n.len() + v.len()));
        let mut labels = Labels { text: String::with_capacity(len), ends: Vec::with_capacity(2 * count) };
        for (n, v) in pairs {
            labels.text.push_str(n);
            labels.ends.push(labels.text.len());
            labels.text.push_str(v);
            labels.ends.push(labels.text.len());
        }
        labels
    }

    /// The pairs, sorted by name.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone + '_ {
        (0..self.ends.len() / 2).map(move |i| self.pair(i))
    }

    fn pair(&self, i: usize) -> (&str, &str) {
        let (name_end, value_end) = (self.ends[2 * i], self.ends[2 * i + 1]);
        (&self.text[self.pair_start(i)..name_end], &self.text[name_end..value_end])
    }

    /// Where pair `i` starts in `text`: where the one before it ends.
    fn pair_start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.ends[2 * i - 1]
        }
    }

    /// How many labels there are.
    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The value of `name`, "" when absent.
    pub fn get(&self, name: &str) -> &str {
        self.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v)
    }
}

impl Ord for Labels {
    /// As the lists of pairs compare: field by field (a name, its value,
    /// the next name, …), each as bytes, the shorter list first.
    fn cmp(&self, other: &Labels) -> std::cmp::Ordering {
        let (a, b) = (self.text.as_bytes(), other.text.as_bytes());
        let (mut from_a, mut from_b) = (0, 0);
        for (&end_a, &end_b) in self.ends.iter().zip(&other.ends) {
            match a[from_a..end_a].cmp(&b[from_b..end_b]) {
                std::cmp::Ordering::Equal => (from_a, from_b) = (end_a, end_b),
                unequal => return unequal,
            }
        }
        self.ends.len().cmp(&other.ends.len())
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Labels) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Debug for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// One point: milliseconds since the epoch and a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

/// A series with its samples in time order (what the host reads for a
/// selection, and each series of a range query's answer).
#[derive(Clone, Debug, PartialEq)]
pub struct RangeSeries {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// What a query answers.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An instant query's number, at `t`.
    Scalar(Sample),
    /// An instant query's string, at `t`.
    String { t: i64, value: String },
    /// An instant query's vector: one sample per series, each at the
    /// evaluation time.
    Vector(Vec<(Labels, Sample)>),
    /// A range query's answer (or an instant query of a range selector):
    /// series sorted by labels.
    Matrix(Vec<RangeSeries>),
}

/// The label holding the metric name.
pub(crate) const METRIC_NAME: &str = "__name__";

impl Labels {
    /// These labels without the metric name.
    pub(crate) fn without_name(&self) -> Labels {
        self.without(&[METRIC_NAME])
    }

    /// [`without_name`](Self::without_name) of labels no longer needed:
    /// in place, without a copy.
    pub(crate) fn into_without_name(mut self) -> Labels {
        let Some(i) = self.iter().position(|(n, _)| n == METRIC_NAME) else { return self };
        let (start, end) = (self.pair_start(i), self.ends[2 * i + 1]);
        self.text.replace_range(start..end, "");
        self.ends.drain(2 * i..2 * i + 2);
        for e in &mut self.ends[2 * i..] {
            *e -= end - start;
        }
        self
    }

    /// These labels without those named in `names`.
    pub(crate) fn without<S: AsRef<str>>(&self, names: &[S]) -> Labels {
        Labels::from_sorted(self.iter().filter(|(n, _)| !names.iter().any(|x| x.as_ref() == *n)))
    }

    /// Only the labels named in `names`.
    pub(crate) fn keep<S: AsRef<str>>(&self, names: &[S]) -> Labels {
        Labels::from_sorted(self.iter().filter(|(n, _)| names.iter().any(|x| x.as_ref() == *n)))
    }

    /// These labels with `name` set to `value`, or removed when `value` is
    /// empty (an empty value is no label).
    pub(crate) fn with(&self, name: &str, value: &str) -> Labels {
        let others = self.iter().filter(|(n, _)| *n != name);
        let before = others.clone().filter(|(n, _)| *n < name);
        let after = others.filter(|(n, _)| *n > name);
        let set = (!value.is_empty()).then_some((name, value));
        Labels::from_sorted(before.chain(set).chain(after))
    }
}

/// Prometheus' rendering of a label set in messages: `{a="b", c="d"}`.
impl std::fmt::Display for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("{")?;
        for (i, (n, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}={v:?}")?;
        }
        f.write_str("}")
    }
}

/// Whether `name` is a Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    type Pairs = Vec<(String, String)>;

    /// What `Labels::new` means: pairs sorted by name and value, empty
    /// values left out, the first of each name kept.
    fn reference(pairs: &Pairs) -> Pairs {
        let mut v: Pairs = pairs.iter().filter(|(_, value)| !value.is_empty()).cloned().collect();
        v.sort();
        v.dedup_by(|a, b| a.0 == b.0);
        v
    }

    fn pairs_of(l: &Labels) -> Pairs {
        l.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn pairs() -> impl Strategy<Value = Pairs> {
        // Few names, so that sets share names and prefixes; values may be
        // empty or hold any character.
        let name = prop_oneof![Just("__name__".to_string()), "[a-c]{1,2}"];
        proptest::collection::vec((name, "\\PC{0,3}"), 0..6)
    }

    proptest! {
        #[test]
        fn labels_hold_their_pairs_and_order_as_the_pairs_do(a in pairs(), b in pairs()) {
            let (la, lb) = (Labels::new(a.clone()), Labels::new(b.clone()));
            let (ra, rb) = (reference(&a), reference(&b));
            prop_assert_eq!(pairs_of(&la), ra.clone());
            prop_assert_eq!(la.len(), ra.len());
            prop_assert_eq!(la.cmp(&lb), ra.cmp(&rb));
            prop_assert_eq!(la == lb, ra == rb);
            for (n, v) in &ra {
                prop_assert_eq!(la.get(n), v.as_str());
            }
            prop_assert_eq!(la.get("zz"), "");
        }

        #[test]
        fn labels_are_edited_as_their_pairs(a in pairs(), name in "[a-c_]{1,2}", value in "[xy]{0,2}") {
            let (l, r) = (Labels::new(a.clone()), reference(&a));
            let without: Pairs = r.iter().filter(|(n, _)| n != METRIC_NAME).cloned().collect();
            prop_assert_eq!(pairs_of(&l.without_name()), without.clone());
            prop_assert_eq!(pairs_of(&l.clone().into_without_name()), without);
            prop_assert_eq!(l.clone().into_without_name(), l.without_name());
            let kept: Pairs = r.iter().filter(|(n, _)| *n == name).cloned().collect();
            prop_assert_eq!(pairs_of(&l.keep(&[&name])), kept);
            let mut with: Pairs = r.iter().filter(|(n, _)| *n != name).cloned().collect();
            with.push((name.clone(), value.clone()));
            prop_assert_eq!(pairs_of(&l.with(&name, &value)), reference(&with));
            prop_assert_eq!(l.with(&name, &value), Labels::new(with));
        }
    }

    #[test]
    fn labels_print_as_prometheus_does() {
        let l = Labels::new([("job", "api"), ("__name__", "up"), ("empty", "")]);
        assert_eq!(l.to_string(), r#"{__name__="up", job="api"}"#);
        assert_eq!(format!("{l:?}"), r#"{"__name__": "up", "job": "api"}"#);
        assert_eq!(Labels::default().to_string(), "{}");
    }

    #[test]
    fn label_names_are_prometheus_names() {
        assert!(is_label_name("job"));
        assert!(is_label_name("__name__"));
        assert!(is_label_name("_a1"));
        assert!(!is_label_name("1a"));
        assert!(!is_label_name(""));
        assert!(!is_label_name("a-b"));
    }
}
