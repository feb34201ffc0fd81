//! Heroic filter JSON: parsing (array and object forms, Grafana sugar, raw
//! HQL via `["q", …]`) and serialising back to the array form.
//!
//! The tree itself is [`heroic_plugin_api::filter::Filter`]; simplification
//! is in [`optimize`](crate::filter::optimize()).

mod optimize;
pub mod serialize;

pub use heroic_plugin_api::filter::Filter;
use serde_json::Value;

use crate::error::{index_path, join_path, QueryError, Result};
use crate::limits::MAX_FILTER_DEPTH;
pub use optimize::optimize;
pub use serialize::to_json;

/// Parses a filter in Heroic's JSON form and optimises it.
///
/// Errors carry a serde-style path relative to the filter (`$[2][1]`).
pub fn parse_json(value: &Value) -> Result<Filter> {
    parse_at(value, "").map(|f| optimize(&f))
}

/// Parses without optimising, with errors reported under `path`.
pub(crate) fn parse_at(value: &Value, path: &str) -> Result<Filter> {
    let filter = parse_nested(value, path, 1)?;
    // Raw HQL (`["q", …]`) inside the JSON adds levels of its own.
    if filter.depth() > MAX_FILTER_DEPTH {
        return Err(too_deep(path));
    }
    Ok(filter)
}

fn too_deep(path: &str) -> QueryError {
    QueryError::json(path, format!("filter nested more than {MAX_FILTER_DEPTH} levels deep (the nesting limit)"))
}

/// Parses one node at nesting level `depth` (the root is level 1).
fn parse_nested(value: &Value, path: &str, depth: usize) -> Result<Filter> {
    if depth > MAX_FILTER_DEPTH {
        return Err(too_deep(path));
    }
    match value {
        Value::Array(items) => parse_array(items, path, depth),
        Value::Object(_) => parse_object(value, path, depth),
        other => Err(QueryError::json(path, format!("expected a filter (array or object), got {other}"))),
    }
}

fn string_arg(items: &[Value], i: usize, path: &str, op: &str) -> Result<String> {
    match items.get(i) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(QueryError::json(
            &index_path(path, i),
            format!("operator \"{op}\": expected a string argument, got {other}"),
        )),
        None => Err(QueryError::json(path, format!("operator \"{op}\": missing argument {i}"))),
    }
}

fn arity(items: &[Value], n: usize, path: &str, op: &str) -> Result<()> {
    if items.len() != n + 1 {
        return Err(QueryError::json(
            path,
            format!("operator \"{op}\" takes {n} argument(s), got {}", items.len() - 1),
        ));
    }
    Ok(())
}

fn parse_array(items: &[Value], path: &str, depth: usize) -> Result<Filter> {
    let op = match items.first() {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(QueryError::json(&index_path(path, 0), format!("expected operator (string), got {other}")))
        }
        None => return Err(QueryError::json(path, "empty filter array: expected an operator")),
    };
    let two = |items: &[Value]| -> Result<(String, String)> {
        arity(items, 2, path, op)?;
        Ok((string_arg(items, 1, path, op)?, string_arg(items, 2, path, op)?))
    };
    Ok(match op {
        "and" | "or" => {
            let children = items[1..]
                .iter()
                .enumerate()
                .map(|(i, v)| parse_nested(v, &index_path(path, i + 1), depth + 1))
                .collect::<Result<Vec<_>>>()?;
            if op == "and" {
                Filter::And(children)
            } else {
                Filter::Or(children)
            }
        }
        "not" => {
            arity(items, 1, path, op)?;
            Filter::not(parse_nested(&items[1], &index_path(path, 1), depth + 1)?)
        }
        "key" => {
            arity(items, 1, path, op)?;
            Filter::Key(string_arg(items, 1, path, op)?)
        }
        "=" => {
            let (k, v) = two(items)?;
            Filter::match_tag(k, v)
        }
        "!=" => {
            let (k, v) = two(items)?;
            Filter::not(Filter::match_tag(k, v))
        }
        "+" => {
            arity(items, 1, path, op)?;
            Filter::HasTag(string_arg(items, 1, path, op)?)
        }
        "^" => {
            let (k, v) = two(items)?;
            Filter::starts_with(k, v)
        }
        "!^" => {
            let (k, v) = two(items)?;
            Filter::not(Filter::starts_with(k, v))
        }
        "~" | "=~" => {
            let (k, v) = two(items)?;
            Filter::regex(k, v)
        }
        "!~" => {
            let (k, v) = two(items)?;
            Filter::not(Filter::regex(k, v))
        }
        "true" => {
            arity(items, 0, path, op)?;
            Filter::True
        }
        "false" => {
            arity(items, 0, path, op)?;
            Filter::False
        }
        "q" => {
            arity(items, 1, path, op)?;
            raw(&string_arg(items, 1, path, op)?, &index_path(path, 1))?
        }
        other => {
            return Err(QueryError::json(
                &index_path(path, 0),
                format!("no such filter operator: \"{other}\" (expected one of and, or, not, key, =, !=, +, ^, !^, ~, =~, !~, true, false, q)"),
            ))
        }
    })
}

fn raw(hql: &str, path: &str) -> Result<Filter> {
    crate::hql::parse_filter(hql).map_err(|e| QueryError::json(path, format!("in raw filter {hql:?}: {e}")))
}

fn parse_object(value: &Value, path: &str, depth: usize) -> Result<Filter> {
    let obj = value.as_object().expect("checked by caller");
    let ty = match obj.get("type") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(QueryError::json(
                &join_path(path, "type"),
                format!("expected 'type' to be a string, got {other}"),
            ))
        }
        None => return Err(QueryError::json(path, "expected 'type' field")),
    };
    let field = |name: &str| -> Result<String> {
        match obj.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(QueryError::json(&join_path(path, name), format!("expected a string, got {other}"))),
            None => Err(QueryError::json(path, format!("filter \"{ty}\": missing field '{name}'"))),
        }
    };
    let sub = |name: &str| -> Result<Filter> {
        let v =
            obj.get(name).ok_or_else(|| QueryError::json(path, format!("filter \"{ty}\": missing field '{name}'")))?;
        parse_nested(v, &join_path(path, name), depth + 1)
    };
    Ok(match ty {
        "and" | "or" => {
            // Heroic's Java name is `filters`; some clients send `filterList`.
            let (name, list) = match (obj.get("filters"), obj.get("filterList")) {
                (Some(l), _) => ("filters", l),
                (None, Some(l)) => ("filterList", l),
                (None, None) => {
                    return Err(QueryError::json(path, format!("filter \"{ty}\": missing field 'filters'")))
                }
            };
            let lp = join_path(path, name);
            let items = list.as_array().ok_or_else(|| QueryError::json(&lp, "expected a list of filters"))?;
            let children = items
                .iter()
                .enumerate()
                .map(|(i, v)| parse_nested(v, &index_path(&lp, i), depth + 1))
                .collect::<Result<Vec<_>>>()?;
            if ty == "and" {
                Filter::And(children)
            } else {
                Filter::Or(children)
            }
        }
        "not" => Filter::not(sub("filter")?),
        "key" => Filter::Key(field("key")?),
        "=" | "matchTag" => Filter::match_tag(field("tag")?, field("value")?),
        "+" | "hasTag" => Filter::HasTag(field("tag")?),
        "^" | "startsWith" => Filter::starts_with(field("tag")?, field("value")?),
        "~" | "regex" => Filter::regex(field("tag")?, field("value")?),
        "true" => Filter::True,
        "false" => Filter::False,
        "q" => raw(&field("filter")?, &join_path(path, "filter"))?,
        other => return Err(QueryError::json(&join_path(path, "type"), format!("no such filter type: \"{other}\""))),
    })
}

#[cfg(test)]
mod tests;
