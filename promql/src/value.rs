//! The values of PromQL: labels, samples, series, and what a query answers.

/// A series' labels, sorted by name, names unique; the metric name is the
/// label `__name__`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(pub Vec<(String, String)>);

impl Labels {
    /// Sorts `pairs` by name; an empty value is no label (as in Prometheus).
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Labels {
        let mut v: Vec<(String, String)> = pairs.into_iter().filter(|(_, value)| !value.is_empty()).collect();
        v.sort();
        v.dedup_by(|a, b| a.0 == b.0);
        Labels(v)
    }

    /// The value of `name`, "" when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v.as_str())
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
    /// in place, without copying the others.
    pub(crate) fn into_without_name(mut self) -> Labels {
        self.0.retain(|(n, _)| n != METRIC_NAME);
        self
    }

    /// These labels without those named in `names`.
    pub(crate) fn without<S: AsRef<str>>(&self, names: &[S]) -> Labels {
        Labels(self.0.iter().filter(|(n, _)| !names.iter().any(|x| x.as_ref() == n)).cloned().collect())
    }

    /// Only the labels named in `names`.
    pub(crate) fn keep<S: AsRef<str>>(&self, names: &[S]) -> Labels {
        Labels(self.0.iter().filter(|(n, _)| names.iter().any(|x| x.as_ref() == n)).cloned().collect())
    }

    /// These labels with `name` set to `value`, or removed when `value` is
    /// empty (an empty value is no label).
    pub(crate) fn with(&self, name: &str, value: &str) -> Labels {
        let mut v: Vec<(String, String)> = self.0.iter().filter(|(n, _)| n != name).cloned().collect();
        if !value.is_empty() {
            let at = v.partition_point(|(n, _)| n.as_str() < name);
            v.insert(at, (name.to_string(), value.to_string()));
        }
        Labels(v)
    }
}

/// Prometheus' rendering of a label set in messages: `{a="b", c="d"}`.
impl std::fmt::Display for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("{")?;
        for (i, (n, v)) in self.0.iter().enumerate() {
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
    use super::is_label_name;

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
