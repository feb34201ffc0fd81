//! Filter simplification, following Heroic's `optimize()` rules, except that
//! an `and` left empty is `true` and an `or` left empty is `false` (Heroic
//! had them backwards: an empty `and` became `false`).

use std::collections::BTreeSet;

use heroic_plugin_api::filter::Filter;

/// Simplifies a filter:
/// - `and`/`or` are flattened, sorted and de-duplicated, `true`/`false`
///   children are absorbed;
/// - De Morgan is applied to `not or` inside `and` and `not and` inside `or`;
/// - `x and !x` → false, `x or !x` → true;
/// - `k=a and k=b` (a≠b) → false, `$key=a and $key=b` → false;
/// - nested prefixes collapse (the more specific one in `and`, the less
///   specific one in `or`);
/// - `!!x` → x, `!true` → false, `!false` → true.
pub fn optimize(filter: &Filter) -> Filter {
    match filter {
        Filter::And(children) => {
            let mut terms = BTreeSet::new();
            for c in children {
                if !push_and(optimize(c), &mut terms) {
                    return Filter::False;
                }
            }
            finish_and(terms)
        }
        Filter::Or(children) => {
            let mut terms = BTreeSet::new();
            for c in children {
                if !push_or(optimize(c), &mut terms) {
                    return Filter::True;
                }
            }
            finish_or(terms)
        }
        Filter::Not(inner) => match inner.as_ref() {
            Filter::Not(x) => optimize(x),
            other => match optimize(other) {
                Filter::True => Filter::False,
                Filter::False => Filter::True,
                Filter::Not(x) => *x,
                o => Filter::not(o),
            },
        },
        other => other.clone(),
    }
}

/// Adds an optimised term to an `and`; false when the whole `and` is false.
fn push_and(f: Filter, out: &mut BTreeSet<Filter>) -> bool {
    match f {
        Filter::True => true,
        Filter::False => false,
        Filter::And(c) => c.into_iter().all(|t| push_and(t, out)),
        Filter::Not(inner) => match *inner {
            // De Morgan: !(a or b) = !a and !b
            Filter::Or(c) => c.into_iter().all(|t| push_and(optimize(&Filter::not(t)), out)),
            other => {
                out.insert(Filter::not(other));
                true
            }
        },
        other => {
            out.insert(other);
            true
        }
    }
}

/// Adds an optimised term to an `or`; false when the whole `or` is true.
fn push_or(f: Filter, out: &mut BTreeSet<Filter>) -> bool {
    match f {
        Filter::False => true,
        Filter::True => false,
        Filter::Or(c) => c.into_iter().all(|t| push_or(t, out)),
        Filter::Not(inner) => match *inner {
            // De Morgan: !(a and b) = !a or !b
            Filter::And(c) => c.into_iter().all(|t| push_or(optimize(&Filter::not(t)), out)),
            other => {
                out.insert(Filter::not(other));
                true
            }
        },
        other => {
            out.insert(other);
            true
        }
    }
}

fn strictly_prefixed(a: &str, b: &str) -> bool {
    a != b && a.starts_with(b)
}

fn finish_and(terms: BTreeSet<Filter>) -> Filter {
    let mut result = Vec::with_capacity(terms.len());
    for f in &terms {
        match f {
            Filter::Not(inner) if terms.contains(inner.as_ref()) => return Filter::False,
            Filter::StartsWith { key, value } => {
                // foo ^ hello and foo ^ helloworld → foo ^ helloworld
                let covered = terms.iter().any(|o| {
                    matches!(o, Filter::StartsWith { key: k2, value: v2 } if k2 == key && strictly_prefixed(v2, value))
                });
                if covered {
                    continue;
                }
            }
            Filter::MatchTag { key, value } => {
                let conflict = terms
                    .iter()
                    .any(|o| matches!(o, Filter::MatchTag { key: k2, value: v2 } if k2 == key && v2 != value));
                if conflict {
                    return Filter::False;
                }
            }
            Filter::Key(k) if terms.iter().any(|o| matches!(o, Filter::Key(k2) if k2 != k)) => return Filter::False,
            _ => {}
        }
        result.push(f.clone());
    }
    match result.len() {
        0 => Filter::True,
        1 => result.pop().expect("one"),
        _ => Filter::And(result),
    }
}

fn finish_or(terms: BTreeSet<Filter>) -> Filter {
    let mut result = Vec::with_capacity(terms.len());
    for f in &terms {
        match f {
            Filter::Not(inner) if terms.contains(inner.as_ref()) => return Filter::True,
            Filter::StartsWith { key, value } => {
                // foo ^ hello or foo ^ helloworld → foo ^ hello
                let covered = terms.iter().any(|o| {
                    matches!(o, Filter::StartsWith { key: k2, value: v2 } if k2 == key && strictly_prefixed(value, v2))
                });
                if covered {
                    continue;
                }
            }
            _ => {}
        }
        result.push(f.clone());
    }
    match result.len() {
        0 => Filter::False,
        1 => result.pop().expect("one"),
        _ => Filter::Or(result),
    }
}
