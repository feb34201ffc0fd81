//! Key listing (the shell's `keys` task): scans row keys, one cell per row
//! and no values, and decodes them into series.
//!
//! All rows of a series (one per period and resource variant) share its
//! prefix, and rows are sorted by key, so a series' rows are contiguous. A
//! page holds whole prefix groups, so no series appears on two pages; only
//! a group with more resource variants than the page limit is split, and the
//! cursor then says how many of its variants were already returned.
//! Cursor: `hex(prefix)` or `hex(prefix):skip`.

use std::ops::ControlFlow;

use googleapis_tonic_google_bigtable_v2::google::bigtable::v2::RowSet;
use heroic_plugin_api::types::{Series, SeriesListPage};

use crate::client::Client;
use crate::error::BigtableError;
use crate::plan::keys_only_filter;
use crate::read_rows::{range, Row};
use crate::row_key;
use crate::stats::Stats;

/// Where a page starts.
#[derive(Debug, Default, PartialEq)]
struct Cursor {
    prefix: Vec<u8>,
    skip: usize,
}

fn encode_cursor(prefix: &[u8], skip: usize) -> String {
    let hex: String = prefix.iter().map(|b| format!("{b:02x}")).collect();
    if skip == 0 {
        hex
    } else {
        format!("{hex}:{skip}")
    }
}

fn decode_cursor(cursor: &str) -> Result<Cursor, BigtableError> {
    let bad = || BigtableError::Config(format!("invalid list cursor {cursor:?}"));
    let (hex, skip) = match cursor.split_once(':') {
        Some((hex, skip)) => (hex, skip.parse().map_err(|_| bad())?),
        None => (cursor, 0),
    };
    if hex.len() % 2 != 0 {
        return Err(bad());
    }
    let prefix = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad()))
        .collect::<Result<Vec<u8>, _>>()?;
    Ok(Cursor { prefix, skip })
}

/// The page being built while rows stream in.
struct Pager {
    limit: usize,
    start: Cursor,
    page: Vec<Series>,
    group_prefix: Option<Vec<u8>>,
    group: Vec<Series>,
    next: Option<String>,
    undecodable: u64,
}

impl Pager {
    /// Adds the finished group to the page. Returns `Break` when the page
    /// is full, with `next` set if the group did not fit whole.
    fn close_group(&mut self) -> ControlFlow<()> {
        let Some(prefix) = self.group_prefix.take() else { return ControlFlow::Continue(()) };
        let mut variants = std::mem::take(&mut self.group);
        let skip = if prefix == self.start.prefix { self.start.skip.min(variants.len()) } else { 0 };
        variants.drain(..skip);
        let room = self.limit - self.page.len();
        if variants.len() > room {
            self.page.extend(variants.drain(..room));
            self.next = Some(encode_cursor(&prefix, skip + room));
            return ControlFlow::Break(());
        }
        self.page.extend(variants);
        ControlFlow::Continue(())
    }

    fn visit(&mut self, row: Row) -> ControlFlow<()> {
        let decoded = match row_key::decode(&row.key) {
            Ok(decoded) => decoded,
            Err(_) => {
                self.undecodable += 1;
                return ControlFlow::Continue(());
            }
        };
        let prefix = row_key::prefix_of(&row.key).expect("a decodable key has a prefix").to_vec();
        if self.group_prefix.as_ref() != Some(&prefix) {
            self.close_group()?;
            if self.page.len() >= self.limit {
                self.next = Some(encode_cursor(&prefix, 0));
                return ControlFlow::Break(());
            }
            self.group_prefix = Some(prefix);
        }
        if !self.group.contains(&decoded.series) {
            self.group.push(decoded.series);
        }
        ControlFlow::Continue(())
    }
}

/// One page of the series stored in the table, `limit` at most (0: all).
pub async fn list_series(
    client: &Client,
    stats: &Stats,
    cursor: Option<String>,
    limit: u64,
) -> Result<SeriesListPage, BigtableError> {
    let start = match cursor.as_deref() {
        Some(c) if !c.is_empty() => decode_cursor(c)?,
        _ => Cursor::default(),
    };
    let limit = if limit == 0 { usize::MAX } else { usize::try_from(limit).unwrap_or(usize::MAX) };
    let rows = RowSet { row_keys: Vec::new(), row_ranges: vec![range(start.prefix.clone(), None)] };
    let mut pager =
        Pager { limit, start, page: Vec::new(), group_prefix: None, group: Vec::new(), next: None, undecodable: 0 };
    client.read_rows(rows, Some(keys_only_filter()), &mut |row| pager.visit(row)).await?;
    if pager.next.is_none() {
        // The stream ended (or stopped right after a full group): the last
        // group is complete.
        let _ = pager.close_group();
    }
    if pager.undecodable > 0 {
        stats.invalid_cells.add(pager.undecodable);
        tracing::warn!(rows = pager.undecodable, "skipped rows whose key is not a heroic row key");
    }
    Ok(SeriesListPage { series: pager.page.into(), next_cursor: pager.next.map(Into::into).into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_rows::Row;

    fn row(series: &Series, ts: i64) -> Row {
        Row { key: row_key::encode(series, ts), cells: Vec::new() }
    }

    fn pager(limit: usize, start: Cursor) -> Pager {
        Pager { limit, start, page: Vec::new(), group_prefix: None, group: Vec::new(), next: None, undecodable: 0 }
    }

    #[test]
    fn cursor_round_trip() {
        assert_eq!(
            decode_cursor(&encode_cursor(&[0, 255, 7], 3)).unwrap(),
            Cursor { prefix: vec![0, 255, 7], skip: 3 }
        );
        assert_eq!(decode_cursor("0aff").unwrap(), Cursor { prefix: vec![10, 255], skip: 0 });
        assert!(decode_cursor("zz").is_err());
    }

    #[test]
    fn pages_hold_whole_groups_and_variants_split_with_a_skip() {
        let a = Series::new("a", [("h", "1")], []);
        let a_res = Series::new("a", [("h", "1")], [("pod", "x")]);
        let b = Series::new("b", Vec::<(&str, &str)>::new(), []);
        let p = row_key::PERIOD;
        // Rows in key order: a@0, a@0+res, a@P, a@P+res, b@0.
        let rows = [row(&a, 0), row(&a_res, 0), row(&a, p), row(&a_res, p), row(&b, 0)];

        let mut pg = pager(1, Cursor::default());
        let stopped = rows.iter().cloned().map(|r| pg.visit(r)).any(|c| c.is_break());
        assert!(stopped);
        assert_eq!(pg.page, vec![a.clone()]);
        let next = decode_cursor(pg.next.as_deref().unwrap()).unwrap();
        assert_eq!(next.skip, 1);

        let mut pg = pager(10, next);
        for r in rows.iter().cloned() {
            assert!(pg.visit(r).is_continue());
        }
        let _ = pg.close_group();
        assert_eq!(pg.page, vec![a_res, b]);
        assert_eq!(pg.next, None);
    }
}
