//! `metadata-*`: the metadata endpoints, called in-process or over
//! `--connect`.

use clap::Args;
use serde_json::{Map, Value};

use crate::shell::data::parse_series;
use crate::shell::endpoint::Endpoint;
use crate::shell::options::{filter_json, MetadataArgs, RangeArgs};
use crate::shell::{now_ms, Shell, ShellError};

fn body_bytes(body: Map<String, Value>) -> Vec<u8> {
    Value::Object(body).to_string().into_bytes()
}

/// The read-only metadata tasks, by the endpoint they call.
#[derive(Debug, Clone, Copy)]
pub enum Lookup {
    /// `metadata-fetch`: `{errors, series, limited}`.
    Series,
    /// `metadata-count`: `{errors, count, limited}`.
    Count,
    /// `metadata-keys`: `{errors, keys, size, duplicates}`.
    Keys,
    /// `metadata-tags`: `{errors, tags, size}`.
    Tags,
}

pub async fn lookup(shell: &Shell, args: &MetadataArgs, lookup: Lookup) -> Result<(), ShellError> {
    let body = body_bytes(args.body(now_ms())?);
    let endpoint = match lookup {
        Lookup::Series => Endpoint::FindSeries,
        Lookup::Count => Endpoint::CountSeries,
        Lookup::Keys => Endpoint::FindKeys,
        Lookup::Tags => Endpoint::FindTags,
    };
    shell.out.answer(&shell.call(endpoint, &body).await?)
}

#[derive(Args, Debug)]
pub struct MetadataDeleteArgs {
    /// The series to delete, as an HQL filter (`true` for every series).
    pub filter: String,
    /// Delete at most this many series (default: all that match).
    #[arg(long)]
    pub limit: Option<u64>,
    /// Backends with rotating indices delete from the indices of this range
    /// (default: the last 7 days).
    #[command(flatten)]
    pub range: RangeArgs,
    /// Really delete; without it, only print the series that would be deleted.
    #[arg(long)]
    pub ok: bool,
}

/// `metadata-delete`: `{errors, deleted, failed}`; without `--ok`, the
/// series that would be deleted (`{errors, series, limited, dryRun}`).
pub async fn delete(shell: &Shell, args: &MetadataDeleteArgs) -> Result<(), ShellError> {
    // Validates the filter before MetadataArgs turns it into JSON.
    filter_json(&args.filter)?;
    let selection = MetadataArgs {
        filter: Some(args.filter.clone()),
        // 0 lists every match, where the fetch endpoint would stop at 50.
        limit: Some(args.limit.unwrap_or(0)),
        range: RangeArgs { start: args.range.start.clone(), end: args.range.end.clone() },
    };
    let body = body_bytes(selection.body(now_ms())?);
    if args.ok {
        return shell.out.answer(&shell.call(Endpoint::DeleteSeries, &body).await?);
    }
    let answer = shell.call(Endpoint::FindSeries, &body).await?;
    let would_delete = answer.value["series"].as_array().map_or(0, Vec::len);
    tracing::warn!(series = would_delete, "dry run: nothing deleted; add --ok to delete these series");
    let mut marked = answer.value.clone();
    if let Value::Object(fields) = &mut marked {
        fields.insert("dryRun".into(), true.into());
    }
    shell.out.line(&marked)?;
    answer.check_errors()
}

#[derive(Args, Debug)]
pub struct MetadataWriteArgs {
    /// The series, as Heroic's JSON: `{"key": "cpu", "tags": {"host": "a"}}`.
    #[arg(long, short = 's')]
    pub series: String,
}

/// `metadata-write`: registers the series with every metadata and suggest
/// backend (`PUT /metadata/series`); `{errors, times}`.
pub async fn write(shell: &Shell, args: &MetadataWriteArgs) -> Result<(), ShellError> {
    // Parsed here first, for the shell's clearer message on bad JSON.
    parse_series(&args.series)?;
    shell.out.answer(&shell.call(Endpoint::WriteSeries, args.series.as_bytes()).await?)
}
