//! Key listing (the shell's `keys` task): Heroic's key streaming, a page of
//! `SELECT DISTINCT metric_key, token(metric_key) … WHERE token(metric_key)
//! > ? LIMIT ?` at a time, each key decoded into its series.
//!
//! Partitions come back in token (hash) order, so the rows of one series
//! (one per period it has points in) are scattered: a series appears once
//! per page it has rows in, like Heroic's `keys` listing one entry per row
//! key. Duplicates within a page are dropped. The cursor is the last token
//! of the page as a decimal number. Two keys with the same token (a
//! Murmur3 collision) across a page boundary would lose the second one, as
//! in Heroic.

use heroic_plugin_api::types::{Series, SeriesListPage};

use crate::client::Client;
use crate::error::CassandraError;
use crate::row_key;
use crate::stats::Stats;

/// Decoded rows of one page.
#[derive(Debug, Default, PartialEq)]
struct Page {
    series: Vec<Series>,
    /// Where the next page starts; `None` when this page was the last.
    next: Option<i64>,
    undecodable: u64,
}

fn parse_cursor(cursor: Option<&str>) -> Result<i64, CassandraError> {
    match cursor.map(str::trim) {
        None | Some("") => Ok(i64::MIN), // Murmur3 never yields i64::MIN
        Some(c) => c.parse().map_err(|_| CassandraError::Cursor(c.to_string())),
    }
}

/// Decodes a page of `(key, token)` rows read with `LIMIT limit`.
fn decode_page(rows: Vec<(Vec<u8>, i64)>, limit: i32) -> Page {
    let mut page = Page::default();
    // A full page may have more after it; a short one is the end.
    if rows.len() >= limit as usize {
        page.next = rows.last().map(|r| r.1);
    }
    for (key, _) in rows {
        match row_key::decode(&key) {
            Ok(decoded) if !page.series.contains(&decoded.series) => page.series.push(decoded.series),
            Ok(_) => {}
            Err(_) => page.undecodable += 1,
        }
    }
    page
}

/// One page of the series stored in the table, at most `limit` (0: all).
pub async fn list_series(
    client: &Client,
    stats: &Stats,
    cursor: Option<String>,
    limit: u64,
) -> Result<SeriesListPage, CassandraError> {
    let after = parse_cursor(cursor.as_deref())?;
    let limit = if limit == 0 { i32::MAX } else { limit.min(i32::MAX as u64) as i32 };
    let statements = client.statements().await?;
    let rows: Vec<(Vec<u8>, i64)> = client.read("list keys", &statements.list_keys, (after, limit)).await?;
    stats.keys_listed.add(rows.len() as u64);
    let page = decode_page(rows, limit);
    if page.undecodable > 0 {
        stats.invalid_rows.add(page.undecodable);
        tracing::warn!(rows = page.undecodable, "skipped row keys that are not heroic ng row keys");
    }
    Ok(SeriesListPage { series: page.series.into(), next_cursor: page.next.map(|t| t.to_string().into()).into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors() {
        assert_eq!(parse_cursor(None).unwrap(), i64::MIN);
        assert_eq!(parse_cursor(Some("")).unwrap(), i64::MIN);
        assert_eq!(parse_cursor(Some("-42")).unwrap(), -42);
        assert!(matches!(parse_cursor(Some("0aff")), Err(CassandraError::Cursor(_))));
    }

    #[test]
    fn pages_dedupe_series_and_stop_when_short() {
        let a = Series::new("a", [("h", "1")], []);
        let b = Series::new("b", Vec::<(&str, &str)>::new(), [("pod", "x")]);
        let rows = vec![
            (row_key::encode(&a, 0), -5),
            (vec![0xff, 0x01], 3),
            (row_key::encode(&a, 10 * row_key::ROW_WIDTH), 7),
            (row_key::encode(&b, 0), 9),
        ];
        let page = decode_page(rows.clone(), 4);
        assert_eq!(page, Page { series: vec![a.clone(), b.clone()], next: Some(9), undecodable: 1 });
        let page = decode_page(rows, 5);
        assert_eq!(page.next, None, "fewer rows than the limit: the last page");
        assert_eq!(decode_page(Vec::new(), 1), Page::default());
    }
}
