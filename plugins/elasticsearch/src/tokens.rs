//! Word and prefix tokens for suggestions, computed here rather than by
//! server analyzers (the two test servers disagree on those; see the
//! README). They mirror Heroic's analyzers:
//!
//! - prefix (`prefix_analyzer`: keyword → lowercase → edge n-grams): every
//!   prefix of the lowercased value, up to [`MAX_PREFIX`] characters;
//! - words (`bag_analyzer`: keyword → word_delimiter → lowercase → edge
//!   n-grams → unique): the value split into words (at non-alphanumerics and
//!   lower→upper case changes, digits staying in their word), lowercased,
//!   each with its prefixes up to [`MAX_WORD_PREFIX`] characters.
//!
//! Ranking ([`score`]) is done here too, from the values themselves, so the
//! order of suggestions does not depend on a server's scoring.

pub const MAX_PREFIX: usize = 20;
pub const MAX_WORD_PREFIX: usize = 10;

/// Prefixes of `s` (by characters), shortest first, at most `max` long.
fn prefixes(s: &str, max: usize) -> impl Iterator<Item = String> + '_ {
    s.char_indices()
        .skip(1)
        .map(|(i, _)| i)
        .chain(std::iter::once(s.len()))
        .take(max)
        .map(move |end| s[..end].to_string())
}

/// Truncates to at most `max` characters.
pub fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Words of `s`, lowercased, in order, without duplicates.
pub fn words(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if !c.is_alphanumeric() {
            push_word(&mut out, &mut cur);
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower {
            push_word(&mut out, &mut cur);
        }
        prev_lower = c.is_lowercase() || c.is_numeric();
        cur.extend(c.to_lowercase());
    }
    push_word(&mut out, &mut cur);
    out
}

fn push_word(out: &mut Vec<String>, cur: &mut String) {
    if !cur.is_empty() && !out.contains(cur) {
        out.push(std::mem::take(cur));
    }
    cur.clear();
}

/// Prefix tokens of a value.
pub fn prefix_tokens(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    prefixes(&s.to_lowercase(), MAX_PREFIX).collect()
}

/// Word tokens of a value.
pub fn word_tokens(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in words(s) {
        for p in prefixes(&w, MAX_WORD_PREFIX) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// What to look up for typed text: its prefix term and its word terms.
pub fn typed_terms(typed: &str) -> (String, Vec<String>) {
    let prefix = truncate(&typed.to_lowercase(), MAX_PREFIX);
    let words = words(typed).into_iter().map(|w| truncate(&w, MAX_WORD_PREFIX)).collect();
    (prefix, words)
}

/// Heroic's ranking, computed on the value: an exact match scores 2, a
/// prefix match 1.5 (case-insensitive), and each typed word that starts a
/// word of the value adds its share of 1. Zero means no match.
pub fn score(value: &str, typed: &str) -> f64 {
    let mut score = 0.0;
    if value == typed {
        score += 2.0;
    }
    if value.to_lowercase().starts_with(&typed.to_lowercase()) {
        score += 1.5;
    }
    let typed_words = words(typed);
    if !typed_words.is_empty() {
        let value_words = words(value);
        let hits = typed_words.iter().filter(|t| value_words.iter().any(|v| v.starts_with(t.as_str()))).count();
        score += hits as f64 / typed_words.len() as f64;
    }
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_like_word_delimiter() {
        assert_eq!(words("cpu-idle.percentageTotal"), vec!["cpu", "idle", "percentage", "total"]);
        assert_eq!(words("disk2 sda1"), vec!["disk2", "sda1"]);
        assert_eq!(words("--"), Vec::<String>::new());
    }

    #[test]
    fn tokens_are_prefixes() {
        assert_eq!(prefix_tokens("AbC"), vec!["a", "ab", "abc"]);
        assert_eq!(prefix_tokens(&"x".repeat(30)).len(), MAX_PREFIX);
        assert!(word_tokens("cpu-idle").contains(&"id".to_string()));
        assert_eq!(prefix_tokens("zü"), vec!["z", "zü"]);
    }

    #[test]
    fn ranks_exact_then_prefix_then_words() {
        let exact = score("cpu", "cpu");
        let prefix = score("cpu-idle", "cpu");
        let word = score("system.cpu", "cpu");
        assert!(exact > prefix && prefix > word && word > 0.0, "{exact} {prefix} {word}");
        assert_eq!(score("memory", "cpu"), 0.0);
    }
}
