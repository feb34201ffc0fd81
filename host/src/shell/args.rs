//! The command line: switches that pick the backends, and one subcommand
//! per task. Task-specific arguments live next to their task.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::shell::data::{FetchArgs, ParseQueryArgs, QueryArgs, WriteArgs};
use crate::shell::keys::{CountDataArgs, DeleteKeysArgs, KeysArgs};
use crate::shell::load::MetadataLoadArgs;
use crate::shell::metadata::{MetadataDeleteArgs, MetadataWriteArgs};
use crate::shell::migrate::{DataMigrateArgs, MetadataMigrateArgs};
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
    /// Send the tasks to a running node's HTTP API (`HOST:PORT` or a URL)
    /// instead of opening backends: query, write, metadata-*, suggest-*,
    /// backends.
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub connect: Option<String>,
    /// The bearer token sent with --connect (the node's `write_tokens`,
    /// needed for writes and deletes when the node has some).
    #[arg(long, global = true, env = "HEROIC_SHELL_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Seconds between two progress lines of long tasks (keys, count-data,
    /// delete-keys, metadata-load, *-migrate) when stderr is not a
    /// terminal (a terminal gets a progress bar); 0 reports every page.
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
    /// Copies metadata (series) from one metadata backend to another.
    MetadataMigrate(MetadataMigrateArgs),
    /// Copies the points of the matching series from one metric backend to
    /// another (resumable with --checkpoint).
    DataMigrate(DataMigrateArgs),
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

impl Task {
    /// The task's name on the command line (`count-data`).
    pub fn name(&self) -> String {
        // clap names a subcommand after its variant, in kebab case.
        let debug = format!("{self:?}");
        let variant = debug.split(['(', ' ', '{']).next().unwrap_or_default();
        let mut name = String::new();
        for (i, c) in variant.chars().enumerate() {
            if c.is_ascii_uppercase() {
                if i > 0 {
                    name.push('-');
                }
                name.push(c.to_ascii_lowercase());
            } else {
                name.push(c);
            }
        }
        name
    }

    /// Whether the task has an endpoint of the HTTP API to go to, so that
    /// it runs with `--connect` against a running node.
    pub fn runs_over_http(&self) -> bool {
        matches!(
            self,
            Task::Backends
                | Task::Write(_)
                | Task::Query(_)
                | Task::ParseQuery(_)
                | Task::MetadataFetch(_)
                | Task::MetadataCount(_)
                | Task::MetadataKeys(_)
                | Task::MetadataTags(_)
                | Task::MetadataDelete(_)
                | Task::MetadataWrite(_)
                | Task::SuggestKey(_)
                | Task::SuggestTag(_)
                | Task::SuggestTagValue(_)
                | Task::SuggestTagValues(_)
                | Task::SuggestTagKeyCount(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_parses() {
        use clap::CommandFactory;
        ShellArgs::command().debug_assert();
    }

    #[test]
    fn task_names_are_the_command_line_names() {
        use clap::{CommandFactory, Parser};
        let command = ShellArgs::command();
        for (line, name) in
            [("count-data", "count-data"), ("backends", "backends"), ("suggest-tag-key-count", "suggest-tag-key-count")]
        {
            let args = ShellArgs::try_parse_from(["heroic-shell", line]).unwrap();
            assert_eq!(args.task.unwrap().name(), name);
            assert!(command.find_subcommand(name).is_some(), "{name}");
        }
    }
}
