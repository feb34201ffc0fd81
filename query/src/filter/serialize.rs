//! A filter back to Heroic's JSON array form. Apart from the parsers in
//! `mod.rs` because HQL's answers use it too, and the JSON parser uses HQL
//! (raw `["q", …]` filters): this way neither parser depends on the other's
//! output side.

use heroic_plugin_api::filter::Filter;
use serde_json::{json, Value};

/// Serialises to Heroic's JSON array form (`["and", ["key","a"], …]`), as
/// `/parser/parse-filter` returns it.
pub fn to_json(filter: &Filter) -> Value {
    match filter {
        Filter::True => json!(["true"]),
        Filter::False => json!(["false"]),
        Filter::And(c) | Filter::Or(c) => {
            let op = if matches!(filter, Filter::And(_)) { "and" } else { "or" };
            let mut items = vec![Value::from(op)];
            items.extend(c.iter().map(to_json));
            Value::Array(items)
        }
        Filter::Not(inner) => json!(["not", to_json(inner)]),
        Filter::Key(k) => json!(["key", k]),
        Filter::MatchTag { key, value } => json!(["=", key, value]),
        Filter::HasTag(k) => json!(["+", k]),
        Filter::StartsWith { key, value } => json!(["^", key, value]),
        Filter::Regex { key, pattern } => json!(["~", key, pattern]),
    }
}
