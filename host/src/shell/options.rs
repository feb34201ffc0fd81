//! Arguments shared by several tasks: a time range, a filter, a metadata
//! query. In a file of their own so that the tasks and the command line
//! (`args.rs`, which gathers every task's arguments) both depend on them,
//! and not on each other.

use clap::Args;
use heroic_plugin_api::types::TimeRange;
use heroic_plugin_api::Filter;
use heroic_query::hql::ExprKind;
use serde_json::Value;

use crate::shell::ShellError;

/// A time argument: milliseconds, an HQL time expression (`$now - 1h`,
/// `{2024-01-01 12:00}`) or a bare duration meaning that long ago (`7d`).
pub fn parse_time(text: &str, now: i64, what: &str) -> Result<i64, ShellError> {
    let invalid = |e: heroic_query::QueryError| ShellError::usage(format!("invalid {what} {text:?}: {e}"));
    let expr = heroic_query::hql::parse_expression(text).map_err(invalid)?;
    let millis = expr.eval_millis(now).map_err(invalid)?;
    Ok(if matches!(expr.kind, ExprKind::Duration { .. }) { now - millis } else { millis })
}

/// `--start` and `--end` of a task.
#[derive(Args, Debug, Default)]
pub struct RangeArgs {
    /// Start of the range, excluded: milliseconds, `$now - 1h`, `{2024-01-01}` or `7d` (7 days ago).
    #[arg(long, allow_hyphen_values = true)]
    pub start: Option<String>,
    /// End of the range, included (same forms as --start).
    #[arg(long, allow_hyphen_values = true)]
    pub end: Option<String>,
}

impl RangeArgs {
    /// The range given, with `default_start` and now filling in what is missing;
    /// `None` when neither end is given.
    pub fn resolve(&self, now: i64, default_start: i64) -> Result<Option<TimeRange>, ShellError> {
        if self.start.is_none() && self.end.is_none() {
            return Ok(None);
        }
        let start = self.start.as_deref().map(|s| parse_time(s, now, "--start")).transpose()?.unwrap_or(default_start);
        let end = self.end.as_deref().map(|s| parse_time(s, now, "--end")).transpose()?.unwrap_or(now);
        if start >= end {
            return Err(ShellError::usage(format!("empty range: --start ({start}) must be before --end ({end})")));
        }
        Ok(Some(TimeRange::new(start, end)))
    }
}

/// Parses an HQL filter (a where clause); none is every series.
pub fn parse_filter(text: Option<&str>) -> Result<Filter, ShellError> {
    match text {
        Some(text) => heroic_query::hql::parse_filter(text)
            .map_err(|e| ShellError::usage(format!("invalid filter {text:?}: {e}"))),
        None => Ok(Filter::True),
    }
}

/// Parses an HQL filter (a where clause) into its JSON form.
pub fn filter_json(text: &str) -> Result<Value, ShellError> {
    Ok(heroic_query::filter::to_json(&parse_filter(Some(text))?))
}

/// The arguments every metadata and suggest task takes.
#[derive(Args, Debug)]
pub struct MetadataArgs {
    /// Which series: an HQL filter such as `$key = cpu and host = a`
    /// (every series when absent).
    pub filter: Option<String>,
    /// At most this many results (default: the HTTP endpoint's).
    #[arg(long)]
    pub limit: Option<u64>,
    /// Backends with rotating indices read the indices of this range
    /// (default: the last 7 days, as the HTTP API); it does not filter series.
    #[command(flatten)]
    pub range: RangeArgs,
}

impl MetadataArgs {
    /// The request body of the matching HTTP endpoint.
    pub fn body(&self, now: i64) -> Result<serde_json::Map<String, Value>, ShellError> {
        let mut body = serde_json::Map::new();
        if let Some(filter) = &self.filter {
            body.insert("filter".into(), filter_json(filter)?);
        }
        if let Some(limit) = self.limit {
            body.insert("limit".into(), limit.into());
        }
        let week_ago = now - crate::http::metadata::DEFAULT_RANGE_MS;
        if let Some(range) = self.range.resolve(now, week_ago)? {
            body.insert(
                "range".into(),
                serde_json::json!({"type": "absolute", "start": range.start, "end": range.end}),
            );
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_millis_expressions_or_durations_ago() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_time("1000", now, "--start").unwrap(), 1000);
        assert_eq!(parse_time("$now - 1h", now, "--start").unwrap(), now - 3_600_000);
        assert_eq!(parse_time("7d", now, "--start").unwrap(), now - 7 * 86_400_000);
        assert_eq!(parse_time("{2024-01-01}", now, "--start").unwrap(), 1_704_067_200_000);
        let e = parse_time("yesterday(", now, "--start").unwrap_err().to_string();
        assert!(e.starts_with("invalid --start \"yesterday(\": 1:"), "{e}");
    }

    #[test]
    fn ranges_default_their_missing_end_and_refuse_empty_ones() {
        let range = |start: Option<&str>, end: Option<&str>| RangeArgs {
            start: start.map(Into::into),
            end: end.map(Into::into),
        };
        assert_eq!(range(None, None).resolve(5000, 0).unwrap(), None);
        assert_eq!(range(Some("1000"), None).resolve(5000, 0).unwrap(), Some(TimeRange::new(1000, 5000)));
        assert_eq!(range(None, Some("2000")).resolve(5000, 0).unwrap(), Some(TimeRange::new(0, 2000)));
        assert!(range(Some("3000"), Some("2000")).resolve(5000, 0).unwrap_err().to_string().contains("empty range"));
    }
}
