//! The command line: switches that pick the backends, and one subcommand
//! per task. Task-specific arguments live next to their task.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::shell::data::{FetchArgs, ParseQueryArgs, QueryArgs, WriteArgs};
use crate::shell::keys::{CountDataArgs, DeleteKeysArgs, KeysArgs};
use crate::shell::load::MetadataLoadArgs;
use crate::shell::metadata::{MetadataDeleteArgs, MetadataWriteArgs};
use crate::shell::options::MetadataArgs;
use crate::shell::suggest::{SuggestKeyArgs, SuggestTagArgs, SuggestTagValueArgs, SuggestTagValuesArgs};

#[derive(Parser, Debug)]
#[command(
    name = "heroic-shell",
    version,
    about = "Runs tasks (configure, write, fetch, query, keys, metadata-*, suggest-* …) against the backends of a config or profile: the one given, else those typed at the heroic> prompt or piped on stdin",
    after_help = format!(
        "{}\n\nOutput: one JSON value per line on stdout; progress and errors on stderr (RUST_LOG sets the level).\nSee docs/shell.md.",
        crate::shell::profiles::help()
    )
)]
pub struct ShellArgs {
    /// A node config (the TOML of `heroic --config`). Its backends are
    /// used; its consumers are not started and no HTTP server runs.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A built-in profile whose backends are added (repeatable): local,
    /// bigtable, cassandra, elasticsearch-metadata, elasticsearch-suggest.
    #[arg(long = "profile", short = 'P', global = true, value_name = "NAME")]
    pub profiles: Vec<String>,
    /// A profile parameter (repeatable), e.g. `-X local.data_dir=/var/lib/heroic`.
    #[arg(short = 'X', global = true, value_name = "SCOPE.KEY=VALUE")]
    pub params: Vec<String>,
    /// A directory searched for plugin libraries before the config's and
    /// the executable's own (repeatable).
    #[arg(long = "plugin-dir", global = true, value_name = "DIR")]
    pub plugin_dirs: Vec<PathBuf>,
    /// Seconds between two progress reports of long tasks (keys,
    /// count-data, delete-keys); 0 reports every page.
    #[arg(long, global = true, default_value_t = 5, value_name = "SECONDS")]
    pub progress_interval: u64,
    /// The task; without one, tasks are read from the `heroic>` prompt (or
    /// one per line from stdin when it is not a terminal).
    #[command(subcommand)]
    pub task: Option<Task>,
}

#[derive(Subcommand, Debug)]
pub enum Task {
    /// Runs `configure` on every backend: creates tables, column families,
    /// index templates and indices.
    Configure,
    /// Lists the backends with their plugin and health.
    Backends,
    /// Checks the backends' data for damage without changing it (safe next
    /// to a running node); exit status 1 when damage is found.
    CheckData,
    /// Prints the statistics every backend reports about itself.
    Statistics,
    /// Writes points to one series, as `POST /write` does.
    Write(WriteArgs),
    /// Reads the raw points of one series from the metric backends.
    Fetch(FetchArgs),
    /// Runs an HQL query, as `POST /query/metrics` does.
    Query(QueryArgs),
    /// Prints the JSON query an HQL query parses to.
    ParseQuery(ParseQueryArgs),
    /// Lists the series stored in the metric backends.
    Keys(KeysArgs),
    /// Counts the points of the series matching a filter.
    CountData(CountDataArgs),
    /// Deletes the points of the series matching a filter (dry run without --ok).
    DeleteKeys(DeleteKeysArgs),
    /// Finds series in the metadata backends (`POST /metadata/series`).
    MetadataFetch(MetadataArgs),
    /// Counts series in the metadata backends (`POST /metadata/series-count`).
    MetadataCount(MetadataArgs),
    /// Lists series keys of the metadata backends (`POST /metadata/keys`).
    MetadataKeys(MetadataArgs),
    /// Lists tags and their values (`POST /metadata/tags`).
    MetadataTags(MetadataArgs),
    /// Deletes series from the metadata backends (dry run without --ok).
    MetadataDelete(MetadataDeleteArgs),
    /// Registers a series with the metadata and suggest backends.
    MetadataWrite(MetadataWriteArgs),
    /// Rebuilds the metadata and suggest backends from the series a metric
    /// backend stores (a lost or new index).
    MetadataLoad(MetadataLoadArgs),
    /// Suggests keys (`POST /metadata/key-suggest`).
    SuggestKey(SuggestKeyArgs),
    /// Suggests tags (`POST /metadata/tag-suggest`).
    SuggestTag(SuggestTagArgs),
    /// Suggests values of one tag (`POST /metadata/tag-value-suggest`).
    SuggestTagValue(SuggestTagValueArgs),
    /// Suggests values of every tag (`POST /metadata/tag-values-suggest`).
    SuggestTagValues(SuggestTagValuesArgs),
    /// Counts the values of every tag key (`POST /metadata/tagkey-count`).
    SuggestTagKeyCount(MetadataArgs),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_parses() {
        use clap::CommandFactory;
        ShellArgs::command().debug_assert();
    }
}
