//! Filters to query DSL. Every operator is pushed down:
//!
//! - `$key = k` → `term key`; `k = v` → `term tags "k\0v"`;
//!   `+k` → `term tag_keys`; `k ^ p` → `prefix tags "k\0p"`;
//! - `k ~ re` → `regexp tags "k\0<re>"` when the pattern translates to
//!   Lucene's syntax (Lucene regexps are anchored, like Heroic's full
//!   match). Otherwise the regex is relaxed to a superset (`true` under an
//!   even number of `not`s, `false` under an odd one) and the plugin applies
//!   the whole filter to the candidates ([`Plan::post`]).
//!
//! The same fields exist in metadata documents and in both kinds of suggest
//! documents, so one translation serves both backends.

use heroic_plugin_api::filter::{Filter, SeriesMatcher};
use serde_json::{json, Value};

use crate::config::RegexMode;
use crate::error::{Error, Result};

/// A filter, as sent to the server and as finished by the plugin.
#[derive(Debug, Clone)]
pub struct Plan {
    pub query: Value,
    /// Set when a regex could not be pushed down: candidates must be
    /// checked against the full filter.
    pub post: Option<SeriesMatcher>,
}

impl Plan {
    pub fn exact(&self) -> bool {
        self.post.is_none()
    }
}

pub fn plan(filter: &Filter, mode: RegexMode) -> Result<Plan> {
    // Compile first: a bad regex is the caller's error whatever the mode.
    let matcher = filter.compile().map_err(|e| Error::InvalidInput(e.to_string()))?;
    let mut relaxed = false;
    let query = translate(filter, mode, true, &mut relaxed);
    Ok(Plan { query, post: relaxed.then_some(matcher) })
}

/// The `k\0v` term of a tag.
pub fn tag_term(key: &str, value: &str) -> String {
    format!("{key}\0{value}")
}

pub fn match_all() -> Value {
    json!({"match_all": {}})
}

pub fn match_none() -> Value {
    json!({"bool": {"must_not": [{"match_all": {}}]}})
}

fn translate(filter: &Filter, mode: RegexMode, positive: bool, relaxed: &mut bool) -> Value {
    match filter {
        Filter::True => match_all(),
        Filter::False => match_none(),
        Filter::And(c) if c.is_empty() => match_all(),
        Filter::Or(c) if c.is_empty() => match_none(),
        Filter::And(c) => {
            let parts: Vec<Value> = c.iter().map(|f| translate(f, mode, positive, relaxed)).collect();
            json!({"bool": {"filter": parts}})
        }
        Filter::Or(c) => {
            let parts: Vec<Value> = c.iter().map(|f| translate(f, mode, positive, relaxed)).collect();
            json!({"bool": {"should": parts, "minimum_should_match": 1}})
        }
        Filter::Not(inner) => json!({"bool": {"must_not": [translate(inner, mode, !positive, relaxed)]}}),
        Filter::Key(k) => json!({"term": {"key": k}}),
        Filter::MatchTag { key, value } => json!({"term": {"tags": tag_term(key, value)}}),
        Filter::HasTag(k) => json!({"term": {"tag_keys": k}}),
        Filter::StartsWith { key, value } => json!({"prefix": {"tags": tag_term(key, value)}}),
        Filter::Regex { key, pattern } => {
            let lucene = (mode == RegexMode::Pushdown).then(|| to_lucene(pattern)).flatten();
            match lucene {
                // Grouped, so that an alternation stays after the key.
                Some(re) => json!({"regexp": {"tags": {"value": format!("{}\0({re})", escape_literal(key))}}}),
                None => {
                    *relaxed = true;
                    if positive {
                        match_all()
                    } else {
                        match_none()
                    }
                }
            }
        }
    }
}

/// Characters Lucene's regexp syntax gives a meaning that Java's does not
/// (or that are operators in both): escaped when meant literally.
const LUCENE_SPECIAL: &str = ".?+*|{}[]()\"\\#@&<>~";

fn escape_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if LUCENE_SPECIAL.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Translates a Java/Rust regex to Lucene regexp syntax, or `None` when it
/// uses something Lucene lacks or means differently (anchors inside the
/// pattern, lookaround, flags, backreferences, most escapes).
pub fn to_lucene(pattern: &str) -> Option<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    let n = chars.len();
    let mut depth = 0i32;
    while i < n {
        let c = chars[i];
        match c {
            // Full-match semantics make leading `^` and trailing `$` no-ops.
            '^' if i == 0 => {}
            '$' if i + 1 == n && !ends_escaped(&chars, i) => {}
            '^' | '$' => return None,
            '(' => {
                if chars.get(i + 1) == Some(&'?') {
                    if chars.get(i + 2) == Some(&':') {
                        i += 2;
                    } else {
                        return None;
                    }
                }
                depth += 1;
                out.push('(');
            }
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
                out.push(')');
            }
            '*' | '+' | '?' => {
                out.push(c);
                match chars.get(i + 1) {
                    // Lazy and greedy agree under a full match.
                    Some('?') => i += 1,
                    Some('+') => return None,
                    _ => {}
                }
            }
            '.' | '|' => out.push(c),
            '{' => {
                let close = chars[i..].iter().position(|&c| c == '}')? + i;
                let inner: String = chars[i + 1..close].iter().collect();
                let ok = !inner.is_empty()
                    && inner.split(',').count() <= 2
                    && inner.split(',').enumerate().all(|(j, p)| {
                        (j == 1 && p.is_empty()) || p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty()
                    });
                if !ok {
                    return None;
                }
                out.push('{');
                out.push_str(&inner);
                out.push('}');
                i = close;
            }
            '[' => {
                i = class(&chars, i, &mut out)?;
            }
            '\\' => {
                let e = *chars.get(i + 1)?;
                i += 1;
                match e {
                    'd' => out.push_str("[0-9]"),
                    'w' => out.push_str("[a-zA-Z0-9_]"),
                    e if e.is_ascii_alphanumeric() => return None,
                    e => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            }
            '}' | ']' => return None,
            c if LUCENE_SPECIAL.contains(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
        i += 1;
    }
    (depth == 0).then_some(out)
}

fn ends_escaped(chars: &[char], i: usize) -> bool {
    chars[..i].iter().rev().take_while(|&&c| c == '\\').count() % 2 == 1
}

/// Copies a character class starting at `chars[start] == '['`; returns the
/// index of its closing `]`.
fn class(chars: &[char], start: usize, out: &mut String) -> Option<usize> {
    let mut i = start + 1;
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ']' if !first => {
                out.push(']');
                return Some(i);
            }
            '[' | '&' => return None,
            '\\' => {
                let e = *chars.get(i + 1)?;
                i += 1;
                match e {
                    'd' => out.push_str("0-9"),
                    'w' => out.push_str("a-zA-Z0-9_"),
                    e if e.is_ascii_alphanumeric() => return None,
                    e => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            }
            '-' => out.push('-'),
            c if LUCENE_SPECIAL.contains(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
        first = false;
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_common_patterns() {
        assert_eq!(to_lucene("db[0-9]").as_deref(), Some("db[0-9]"));
        assert_eq!(to_lucene("db1|web2").as_deref(), Some("db1|web2"));
        assert_eq!(to_lucene(".*eb.*").as_deref(), Some(".*eb.*"));
        assert_eq!(to_lucene("^a(?:b|c)+?$").as_deref(), Some("a(b|c)+"));
        assert_eq!(to_lucene(r"\d{2,3}\.x").as_deref(), Some(r"[0-9]{2,3}\.x"));
        assert_eq!(to_lucene("a@b#c~d").as_deref(), Some(r"a\@b\#c\~d"));
        assert_eq!(to_lucene(r"[\w-]+").as_deref(), Some("[a-zA-Z0-9_-]+"));
    }

    #[test]
    fn refuses_what_lucene_cannot_do() {
        for p in
            [r"a\b", "(?i)abc", "a^b", "(?=x)", r"\s+", "[[:alpha:]]", "a{x}", "(a", "a)", r"(a)\1", "[a&&b]", "a*+"]
        {
            assert_eq!(to_lucene(p), None, "{p}");
        }
    }

    #[test]
    fn relaxes_untranslatable_regexes_by_polarity() {
        let f = Filter::And(vec![Filter::key("k"), Filter::not(Filter::regex("h", "(?i)x"))]);
        let p = plan(&f, RegexMode::Pushdown).unwrap();
        assert!(!p.exact());
        assert_eq!(p.query["bool"]["filter"][1]["bool"]["must_not"][0], match_none());
        let p = plan(&Filter::regex("h", "x.*"), RegexMode::Pushdown).unwrap();
        assert!(p.exact());
        assert_eq!(p.query["regexp"]["tags"]["value"], "h\0(x.*)");
        let p = plan(&Filter::regex("h", "a|b"), RegexMode::Pushdown).unwrap();
        assert_eq!(p.query["regexp"]["tags"]["value"], "h\0(a|b)");
        let p = plan(&Filter::regex("h", "x.*"), RegexMode::Plugin).unwrap();
        assert_eq!(p.query, match_all());
        assert!(plan(&Filter::regex("h", "("), RegexMode::Pushdown).is_err());
    }

    #[test]
    fn escapes_tag_keys_in_regexps() {
        let p = plan(&Filter::regex("a.b", "x"), RegexMode::Pushdown).unwrap();
        assert_eq!(p.query["regexp"]["tags"]["value"], "a\\.b\0(x)");
    }
}
