//! The series filter: an ordinary Rust tree ([`Filter`]) for code on either
//! side, and a flat stable form ([`FfiFilter`]) for the boundary.
//!
//! The stable form is a list of nodes whose children are indices into the
//! same list (root at index 0), because a flat list has a fixed layout that
//! abi_stable can check, where a recursive enum would not.
//!
//! Parsing (JSON, HQL) and simplification live in the host; here is only the
//! tree and how to evaluate it against a series, which every metadata backend
//! needs.

use std::fmt;

use abi_stable::std_types::RVec;
use regex::Regex;

use crate::types::Series;
pub use crate::types::{FfiFilter, FilterNode, FilterOp};

/// How deep a filter may nest (`not`, `and`, `or` and parentheses each add a
/// level). Every walk over a filter is recursive, so an unbounded depth would
/// let one request overflow a thread's stack; parsers refuse deeper filters
/// and [`FfiFilter::to_filter`] refuses to rebuild them. Real filters, those
/// of Grafana and of people, are a handful of levels deep.
pub const MAX_FILTER_DEPTH: usize = 64;

/// A filter on series. Tags are matched on `Series::tags` only: resource tags
/// are not indexed and cannot be filtered on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Filter {
    True,
    False,
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// The series key equals this.
    Key(String),
    /// Tag `key` exists and equals `value`.
    MatchTag {
        key: String,
        value: String,
    },
    /// Tag `key` exists.
    HasTag(String),
    /// Tag `key` exists and starts with `value`.
    StartsWith {
        key: String,
        value: String,
    },
    /// Tag `key` exists and matches `pattern` as a whole (not a substring).
    Regex {
        key: String,
        pattern: String,
    },
}

impl Filter {
    pub fn match_tag(key: impl Into<String>, value: impl Into<String>) -> Filter {
        Filter::MatchTag { key: key.into(), value: value.into() }
    }

    pub fn starts_with(key: impl Into<String>, value: impl Into<String>) -> Filter {
        Filter::StartsWith { key: key.into(), value: value.into() }
    }

    pub fn regex(key: impl Into<String>, pattern: impl Into<String>) -> Filter {
        Filter::Regex { key: key.into(), pattern: pattern.into() }
    }

    pub fn key(key: impl Into<String>) -> Filter {
        Filter::Key(key.into())
    }

    pub fn has_tag(key: impl Into<String>) -> Filter {
        Filter::HasTag(key.into())
    }

    // An associated constructor like the others here (`Filter::not(f)`), not
    // the `!` operator, which would read oddly on a filter tree.
    #[allow(clippy::should_implement_trait)]
    // `Filter::not(x)` reads like the HQL it stands for; `!x` would need an
    // owned value and hide the allocation.
    #[allow(clippy::should_implement_trait)]
    pub fn not(inner: Filter) -> Filter {
        Filter::Not(Box::new(inner))
    }

    /// How many levels the tree has (a leaf has 1). Walks the tree with an
    /// explicit stack, so it is safe on a tree of any depth.
    pub fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(self, 1usize)];
        while let Some((f, d)) = stack.pop() {
            deepest = deepest.max(d);
            match f {
                Filter::And(c) | Filter::Or(c) => stack.extend(c.iter().map(|c| (c, d + 1))),
                Filter::Not(inner) => stack.push((inner, d + 1)),
                _ => {}
            }
        }
        deepest
    }

    /// Whether any node of the tree is a regex.
    pub fn contains_regex(&self) -> bool {
        match self {
            Filter::Regex { .. } => true,
            Filter::And(c) | Filter::Or(c) => c.iter().any(Filter::contains_regex),
            Filter::Not(inner) => inner.contains_regex(),
            _ => false,
        }
    }

    /// Compiles the regexes once, for evaluating against many series.
    pub fn compile(&self) -> Result<SeriesMatcher, FilterError> {
        SeriesMatcher::new(self)
    }

    /// Converts to the stable form for the boundary.
    pub fn to_ffi(&self) -> FfiFilter {
        let mut nodes = RVec::new();
        push_node(self, &mut nodes);
        FfiFilter { nodes }
    }

    /// A filter that is a superset of this one with every regex replaced so
    /// that no series that matches `self` is lost: the backend answers with
    /// candidates and the host applies the full filter afterwards.
    pub fn without_regex(&self) -> Filter {
        relax_regex(self, true)
    }
}

fn relax_regex(filter: &Filter, positive: bool) -> Filter {
    match filter {
        // Under an even number of `not`s, `true` keeps every candidate; under
        // an odd number, `false` does (since `not false` is `true`).
        Filter::Regex { .. } => {
            if positive {
                Filter::True
            } else {
                Filter::False
            }
        }
        Filter::And(c) => Filter::And(c.iter().map(|f| relax_regex(f, positive)).collect()),
        Filter::Or(c) => Filter::Or(c.iter().map(|f| relax_regex(f, positive)).collect()),
        Filter::Not(inner) => Filter::Not(Box::new(relax_regex(inner, !positive))),
        other => other.clone(),
    }
}

impl fmt::Display for Filter {
    /// Writes the filter in HQL syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn join(f: &mut fmt::Formatter<'_>, children: &[Filter], op: &str) -> fmt::Result {
            write!(f, "(")?;
            for (i, c) in children.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                write!(f, "{c}")?;
            }
            write!(f, ")")
        }
        match self {
            Filter::True => write!(f, "true"),
            Filter::False => write!(f, "false"),
            Filter::And(c) => join(f, c, "and"),
            Filter::Or(c) => join(f, c, "or"),
            Filter::Not(inner) => write!(f, "!({inner})"),
            Filter::Key(k) => write!(f, "$key = {}", quote(k)),
            Filter::MatchTag { key, value } => write!(f, "{} = {}", quote(key), quote(value)),
            Filter::HasTag(k) => write!(f, "+{}", quote(k)),
            Filter::StartsWith { key, value } => write!(f, "{} ^ {}", quote(key), quote(value)),
            Filter::Regex { key, pattern } => write!(f, "{} ~ {}", quote(key), quote(pattern)),
        }
    }
}

fn quote(s: &str) -> String {
    let simple = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || ":/_-.".contains(c))
        && !matches!(s, "and" | "or" | "not" | "in" | "true" | "false" | "from" | "where" | "by");
    if simple {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// A filter that could not be compiled or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("invalid regex {pattern:?} for tag {key:?}: {reason}")]
    InvalidRegex { key: String, pattern: String, reason: String },
    #[error("malformed filter at node {node}: {reason}")]
    Malformed { node: usize, reason: String },
}

impl FfiFilter {
    /// Rebuilds the tree; fails on out-of-range or cyclic child indices.
    pub fn to_filter(&self) -> Result<Filter, FilterError> {
        if self.nodes.is_empty() {
            return Ok(Filter::True);
        }
        read_node(&self.nodes, 0, 1)
    }
}

fn node(op: FilterOp, key: &str, value: &str) -> FilterNode {
    FilterNode { op, key: key.into(), value: value.into(), children: RVec::new() }
}

fn push_node(filter: &Filter, nodes: &mut RVec<FilterNode>) -> u32 {
    let index = nodes.len();
    let leaf = match filter {
        Filter::True => node(FilterOp::TRUE, "", ""),
        Filter::False => node(FilterOp::FALSE, "", ""),
        Filter::Key(k) => node(FilterOp::KEY, "", k),
        Filter::MatchTag { key, value } => node(FilterOp::MATCH_TAG, key, value),
        Filter::HasTag(k) => node(FilterOp::HAS_TAG, k, ""),
        Filter::StartsWith { key, value } => node(FilterOp::STARTS_WITH, key, value),
        Filter::Regex { key, pattern } => node(FilterOp::REGEX, key, pattern),
        Filter::And(_) => node(FilterOp::AND, "", ""),
        Filter::Or(_) => node(FilterOp::OR, "", ""),
        Filter::Not(_) => node(FilterOp::NOT, "", ""),
    };
    nodes.push(leaf);
    let children: Vec<&Filter> = match filter {
        Filter::And(c) | Filter::Or(c) => c.iter().collect(),
        Filter::Not(inner) => vec![inner.as_ref()],
        _ => Vec::new(),
    };
    let child_indices: RVec<u32> = children.into_iter().map(|c| push_node(c, nodes)).collect();
    nodes[index].children = child_indices;
    index as u32
}

fn read_node(nodes: &[FilterNode], index: usize, depth: usize) -> Result<Filter, FilterError> {
    let n = nodes
        .get(index)
        .ok_or_else(|| FilterError::Malformed { node: index, reason: "child index out of range".into() })?;
    if depth > MAX_FILTER_DEPTH {
        return Err(FilterError::Malformed {
            node: index,
            reason: format!("nested more than {MAX_FILTER_DEPTH} levels deep"),
        });
    }
    let children = || -> Result<Vec<Filter>, FilterError> {
        n.children
            .iter()
            .map(|&c| {
                // Children always come after their parent, which also rules out cycles.
                if (c as usize) <= index {
                    return Err(FilterError::Malformed { node: index, reason: "child before parent".into() });
                }
                read_node(nodes, c as usize, depth + 1)
            })
            .collect()
    };
    Ok(match n.op {
        FilterOp::TRUE => Filter::True,
        FilterOp::FALSE => Filter::False,
        FilterOp::AND => Filter::And(children()?),
        FilterOp::OR => Filter::Or(children()?),
        FilterOp::NOT => {
            let mut c = children()?;
            if c.len() != 1 {
                return Err(FilterError::Malformed { node: index, reason: "not takes one child".into() });
            }
            Filter::Not(Box::new(c.remove(0)))
        }
        FilterOp::KEY => Filter::Key(n.value.to_string()),
        FilterOp::MATCH_TAG => Filter::match_tag(n.key.as_str(), n.value.as_str()),
        FilterOp::HAS_TAG => Filter::HasTag(n.key.to_string()),
        FilterOp::STARTS_WITH => Filter::starts_with(n.key.as_str(), n.value.as_str()),
        FilterOp::REGEX => Filter::regex(n.key.as_str(), n.value.as_str()),
        // An operator of a later interface version: refuse the filter
        // rather than guess (the host only sends what the plugin knows).
        other => {
            return Err(FilterError::Malformed { node: index, reason: format!("unknown operator {}", other.0) });
        }
    })
}

/// A filter with its regexes compiled, to test many series.
#[derive(Clone, Debug)]
pub struct SeriesMatcher {
    root: MatchNode,
}

#[derive(Clone, Debug)]
enum MatchNode {
    True,
    False,
    And(Vec<MatchNode>),
    Or(Vec<MatchNode>),
    Not(Box<MatchNode>),
    Key(String),
    MatchTag(String, String),
    HasTag(String),
    StartsWith(String, String),
    Regex(String, Regex),
}

impl SeriesMatcher {
    pub fn new(filter: &Filter) -> Result<Self, FilterError> {
        Ok(SeriesMatcher { root: compile(filter)? })
    }

    pub fn matches(&self, series: &Series) -> bool {
        eval(&self.root, series)
    }
}

/// Compiles `pattern` so that it must match a whole value, as Java's
/// `String.matches` (Heroic's semantics) does.
///
/// The pattern is parsed on its own first: wrapped as it is written, a
/// pattern such as `x)|(.*` would close the wrapping group itself and match
/// every value. A pattern that parses alone has balanced groups, so the
/// anchors put around it hold.
pub fn compile_full_match(key: &str, pattern: &str) -> Result<Regex, FilterError> {
    let invalid =
        |reason: String| FilterError::InvalidRegex { key: key.to_string(), pattern: pattern.to_string(), reason };
    regex_syntax::ast::parse::Parser::new().parse(pattern).map_err(|e| invalid(e.to_string()))?;
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| invalid(e.to_string()))
}

fn compile(filter: &Filter) -> Result<MatchNode, FilterError> {
    let all = |c: &[Filter]| c.iter().map(compile).collect::<Result<Vec<_>, _>>();
    Ok(match filter {
        Filter::True => MatchNode::True,
        Filter::False => MatchNode::False,
        Filter::And(c) => MatchNode::And(all(c)?),
        Filter::Or(c) => MatchNode::Or(all(c)?),
        Filter::Not(inner) => MatchNode::Not(Box::new(compile(inner)?)),
        Filter::Key(k) => MatchNode::Key(k.clone()),
        Filter::MatchTag { key, value } => MatchNode::MatchTag(key.clone(), value.clone()),
        Filter::HasTag(k) => MatchNode::HasTag(k.clone()),
        Filter::StartsWith { key, value } => MatchNode::StartsWith(key.clone(), value.clone()),
        Filter::Regex { key, pattern } => MatchNode::Regex(key.clone(), compile_full_match(key, pattern)?),
    })
}

fn eval(node: &MatchNode, s: &Series) -> bool {
    match node {
        MatchNode::True => true,
        MatchNode::False => false,
        MatchNode::And(c) => c.iter().all(|n| eval(n, s)),
        MatchNode::Or(c) => c.iter().any(|n| eval(n, s)),
        MatchNode::Not(inner) => !eval(inner, s),
        MatchNode::Key(k) => s.key.as_str() == k,
        MatchNode::MatchTag(k, v) => s.tag(k) == Some(v.as_str()),
        MatchNode::HasTag(k) => s.tag(k).is_some(),
        MatchNode::StartsWith(k, v) => s.tag(k).is_some_and(|t| t.starts_with(v.as_str())),
        MatchNode::Regex(k, re) => s.tag(k).is_some_and(|t| re.is_match(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Series {
        Series::new("cpu", [("host", "db1"), ("role", "database")], [("pod", "p1")])
    }

    #[test]
    fn round_trips_through_the_stable_form() {
        let f = Filter::And(vec![
            Filter::key("cpu"),
            Filter::not(Filter::Or(vec![Filter::match_tag("a", "b"), Filter::regex("h", "d.*")])),
            Filter::has_tag("x"),
            Filter::starts_with("p", "q"),
            Filter::True,
            Filter::False,
        ]);
        assert_eq!(f.to_ffi().to_filter().unwrap(), f);
    }

    #[test]
    fn rejects_malformed_stable_filters() {
        let mut ffi = Filter::not(Filter::True).to_ffi();
        ffi.nodes[0].children = vec![0u32].into();
        assert!(ffi.to_filter().is_err());
        ffi.nodes[0].children = vec![7u32].into();
        assert!(ffi.to_filter().is_err());
    }

    #[test]
    fn evaluates_every_operator() {
        let s = series();
        let m = |f: Filter| f.compile().unwrap().matches(&s);
        assert!(m(Filter::key("cpu")));
        assert!(!m(Filter::key("cp")));
        assert!(m(Filter::match_tag("host", "db1")));
        assert!(!m(Filter::match_tag("pod", "p1")), "resource tags are not filterable");
        assert!(m(Filter::has_tag("role")));
        assert!(!m(Filter::has_tag("pod")));
        assert!(m(Filter::starts_with("role", "data")));
        assert!(!m(Filter::starts_with("role", "base")));
        assert!(m(Filter::regex("host", "db[0-9]")));
        assert!(!m(Filter::regex("host", "db")), "regex must match the whole value");
        assert!(m(Filter::not(Filter::False)));
        assert!(m(Filter::And(vec![])));
        assert!(!m(Filter::Or(vec![])));
    }

    #[test]
    fn relaxing_regex_never_loses_a_match() {
        let s = series();
        let cases = [
            Filter::regex("host", "db1"),
            Filter::not(Filter::regex("host", "xx")),
            Filter::not(Filter::And(vec![Filter::regex("host", "xx"), Filter::key("cpu")])),
        ];
        for f in cases {
            assert!(f.compile().unwrap().matches(&s));
            assert!(f.without_regex().compile().unwrap().matches(&s), "{f}");
            assert!(!f.without_regex().contains_regex());
        }
    }

    #[test]
    fn a_pattern_cannot_escape_its_anchors() {
        let s = series();
        for pattern in ["zzz)|(.*", "x)|(?:.*", ".*)|(", "(?x)db1#", "a\\"] {
            let f = Filter::regex("host", pattern);
            match f.compile() {
                Ok(m) => assert!(!m.matches(&s), "{pattern:?} matched"),
                Err(e) => assert!(e.to_string().contains("invalid regex"), "{e}"),
            }
        }
        assert!(Filter::regex("host", "zzz)|(.*").compile().is_err());
        // Alternation stays inside the anchors.
        assert!(Filter::regex("host", "zz|db1").compile().unwrap().matches(&s));
        assert!(!Filter::regex("host", "zz|db").compile().unwrap().matches(&s));
    }

    #[test]
    fn stable_filters_nested_too_deep_are_refused() {
        let mut f = Filter::key("cpu");
        for _ in 0..MAX_FILTER_DEPTH - 1 {
            f = Filter::not(f);
        }
        assert_eq!(f.depth(), MAX_FILTER_DEPTH);
        assert_eq!(f.to_ffi().to_filter().unwrap(), f);
        let deeper = Filter::not(f);
        let err = deeper.to_ffi().to_filter().unwrap_err();
        assert!(err.to_string().contains("nested more than 64"), "{err}");
    }

    #[test]
    fn bad_regex_is_a_clear_error() {
        let err = Filter::regex("host", "(").compile().unwrap_err();
        assert!(err.to_string().contains("host"), "{err}");
    }
}
