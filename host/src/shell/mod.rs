//! `heroic-shell`: one-off tasks against a node's backends, without
//! starting the node (Heroic's shell, section 7 of the reference).
//!
//! The backends come from a config file (`--config`, the format of
//! `heroic --config`), built-in profiles (`-P local -X local.data_dir=…`),
//! or both. Consumers are not started and no HTTP server runs. Each task
//! prints JSON lines on stdout; progress and errors go to stderr.
//!
//! The query, metadata and suggest tasks call the same handlers as the HTTP
//! API, so they answer exactly as the endpoints do; the metric-backend tasks
//! (`keys`, `count-data`, `delete-keys`, `fetch`) use the backend's paging,
//! counting and deleting operations directly.
//!
//! - [`args`]: the command line and the arguments tasks share.
//! - [`profiles`]: built-in profiles and `-X` parameters.
//! - [`operations`]: `configure`, `backends`, `statistics`.
//! - [`check`]: `check-data`, the backends' read-only data checks.
//! - [`data`]: `write`, `fetch`, `query`, `parse-query`.
//! - [`keys`]: `keys`, `count-data`, `delete-keys`.
//! - [`metadata`]: the `metadata-*` tasks that go through the HTTP handlers.
//! - [`load`]: `metadata-load`, metadata rebuilt from a metric backend.
//! - [`suggest`]: the `suggest-*` tasks.
//! - [`migrate`]: `data-migrate` and `metadata-migrate`, copies between
//!   backends, resumable from a checkpoint file.
//! - [`output`]: JSON lines and progress (a bar on a terminal).
//! - [`endpoint`]: the HTTP endpoints the tasks answer as, called
//!   in-process; [`remote`]: the same over HTTP (`--connect`).
//! - [`interactive`]: no task on the command line: the `heroic>` prompt,
//!   or tasks piped on stdin, one per line.

pub mod args;
pub mod check;
pub mod data;
pub mod endpoint;
mod error;
pub mod interactive;
pub mod keys;
pub mod load;
pub mod metadata;
pub mod migrate;
pub mod operations;
pub mod options;
pub mod output;
pub mod profiles;
pub mod remote;
pub mod suggest;

use std::sync::Arc;
use std::time::Duration;

use heroic_plugin_api::client::MetricBackendClient;

pub use args::{ShellArgs, Task};
use endpoint::Endpoint;
pub use error::ShellError;
use metadata::Lookup;
use output::{Answer, Output};
use remote::Remote;

use crate::backends::Named;
use crate::config::Config;
use crate::node::Node;

/// Which plugin provides a backend, for `backends`.
pub struct BackendOrigin {
    pub role: &'static str,
    pub id: String,
    pub plugin: String,
}

/// What the tasks work on.
enum Target {
    /// Backends the shell opened itself.
    Backends(Arc<Node>),
    /// A running node, over its HTTP API (`--connect`).
    Remote(Remote),
}

/// A started set of backends (or a connection to a node) and where the
/// task's answers go.
pub struct Shell {
    target: Target,
    pub origins: Vec<BackendOrigin>,
    pub out: Output,
    pub progress_interval: Duration,
}

/// The config the shell's backends are made from: the file's (without its
/// consumers), plus the profiles' backends, plus `--plugin-dir`s.
pub fn build_config(args: &ShellArgs) -> Result<Config, ShellError> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if !config.consumers.is_empty() {
        tracing::info!(consumers = config.consumers.len(), "the shell does not start the config's consumers");
        config.consumers.clear();
    }
    profiles::apply_profiles(&mut config, &args.profiles, &args.params)?;
    let mut dirs = args.plugin_dirs.clone();
    dirs.append(&mut config.plugins.dirs);
    config.plugins.dirs = dirs;
    if config.metrics.is_empty() && config.metadata.is_empty() && config.suggest.is_empty() {
        return Err(ShellError::usage(format!(
            "no backends: give --config FILE and/or -P PROFILE (profiles: {})",
            profiles::PROFILES.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(config)
}

impl Shell {
    /// Loads the plugins and creates the backends of `config`.
    pub async fn start(config: Config, progress_interval: Duration) -> Result<Shell, ShellError> {
        let mut origins = Vec::new();
        for (role, list) in [("metrics", &config.metrics), ("metadata", &config.metadata), ("suggest", &config.suggest)]
        {
            origins.extend(list.iter().map(|c| BackendOrigin {
                role,
                id: c.id().to_string(),
                plugin: c.plugin.clone(),
            }));
        }
        let node = Node::start(config).await?;
        Ok(Shell { target: Target::Backends(node), origins, out: Output, progress_interval })
    }

    /// A shell whose tasks go to a running node's HTTP API.
    pub fn connect(remote: Remote, progress_interval: Duration) -> Shell {
        Shell { target: Target::Remote(remote), origins: Vec::new(), out: Output, progress_interval }
    }

    /// The node whose backends the shell opened; an error under `--connect`
    /// (the tasks that need it are refused before they start, by `run_task`).
    pub fn node(&self) -> Result<&Arc<Node>, ShellError> {
        match &self.target {
            Target::Backends(node) => Ok(node),
            Target::Remote(remote) => Err(ShellError::usage(format!(
                "this task opens the backends itself; it cannot run against {} (drop --connect)",
                remote.base()
            ))),
        }
    }

    /// The node's address under `--connect`.
    pub fn remote(&self) -> Option<&Remote> {
        match &self.target {
            Target::Backends(_) => None,
            Target::Remote(remote) => Some(remote),
        }
    }

    /// Calls an endpoint of the HTTP API: its handler, on the shell's own
    /// backends, or the node's route under `--connect`.
    pub async fn call(&self, endpoint: Endpoint, body: &[u8]) -> Result<Answer, ShellError> {
        match &self.target {
            Target::Backends(node) => endpoint.call_in_process(node, body).await,
            Target::Remote(remote) => remote.call(endpoint, body).await,
        }
    }

    /// One line on what the tasks work on, for the prompt's greeting.
    pub fn describe(&self) -> String {
        match &self.target {
            Target::Backends(_) => format!("{} backend(s) started", self.origins.len()),
            Target::Remote(remote) => format!("connected to {}", remote.base()),
        }
    }

    /// The metric backends a task works on: the one named by `--backend`, or all.
    pub fn metric_backends(&self, only: Option<&str>) -> Result<Vec<&Named<MetricBackendClient>>, ShellError> {
        let all = &self.node()?.backends.metrics;
        let chosen: Vec<_> = all.iter().filter(|b| only.is_none_or(|id| b.id == id)).collect();
        if chosen.is_empty() {
            let ids: Vec<&str> = all.iter().map(|b| b.id.as_str()).collect();
            return Err(ShellError::usage(match only {
                Some(id) => format!("no metric backend {id:?}; metric backends: {}", ids.join(", ")),
                None => "this task needs a metric backend, and none is configured".to_string(),
            }));
        }
        Ok(chosen)
    }

    /// Flushes and closes every backend.
    pub async fn shutdown(&self) {
        if let Target::Backends(node) = &self.target {
            node.shutdown().await;
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Runs the task of `args` and closes the backends, whatever the outcome.
/// Without a task, runs the tasks read from the prompt or stdin
/// ([`interactive`]) against backends started once.
pub async fn run(args: ShellArgs) -> Result<(), ShellError> {
    if let Some(Task::ParseQuery(a)) = &args.task {
        return data::parse_query(&Output, a).await;
    }
    let interval = Duration::from_secs(args.progress_interval);
    if let Some(address) = &args.connect {
        if args.config.is_some() || !args.profiles.is_empty() {
            return Err(ShellError::usage(
                "--connect sends the tasks to a running node; --config and -P open backends here: give one or the other",
            ));
        }
        let shell = Shell::connect(Remote::new(address, args.token.clone())?, interval);
        return run_given(&shell, args.task.as_ref()).await;
    }
    let config = build_config(&args)?;
    if let Some(Task::CheckData) = &args.task {
        // Without creating the backends: opening one recovers (changes) it.
        return check::check_data(&config, &Output);
    }
    let shell = Shell::start(config, interval).await?;
    let result = run_given(&shell, args.task.as_ref()).await;
    shell.shutdown().await;
    result
}

/// The task of the command line, or those of the prompt or stdin.
async fn run_given(shell: &Shell, task: Option<&Task>) -> Result<(), ShellError> {
    match task {
        Some(task) => run_task(shell, task).await,
        None => interactive::run_lines(shell).await,
    }
}

pub(crate) async fn run_task(shell: &Shell, task: &Task) -> Result<(), ShellError> {
    if let Some(remote) = shell.remote() {
        if !task.runs_over_http() {
            return Err(ShellError::usage(format!(
                "{} works on the backends themselves and cannot run against {}: run it where the backends' config is \
                 (without --connect)",
                task.name(),
                remote.base()
            )));
        }
    }
    match task {
        Task::Configure => operations::configure(shell).await,
        Task::Backends => operations::backends(shell).await,
        Task::Statistics => operations::statistics(shell),
        Task::Write(a) => data::write(shell, a).await,
        Task::Fetch(a) => data::fetch(shell, a).await,
        Task::Query(a) => data::query(shell, a).await,
        Task::ParseQuery(a) => data::parse_query(&shell.out, a).await,
        // Handled by `run` before any backend starts: opening one would
        // recover, that is change, the data the check is to look at.
        Task::CheckData => Err(ShellError::usage("check-data runs without starting the backends (see `run`)")),
        Task::Keys(a) => keys::keys(shell, a).await,
        Task::CountData(a) => keys::count_data(shell, a).await,
        Task::DeleteKeys(a) => keys::delete_keys(shell, a).await,
        Task::MetadataFetch(a) => metadata::lookup(shell, a, Lookup::Series).await,
        Task::MetadataCount(a) => metadata::lookup(shell, a, Lookup::Count).await,
        Task::MetadataKeys(a) => metadata::lookup(shell, a, Lookup::Keys).await,
        Task::MetadataTags(a) => metadata::lookup(shell, a, Lookup::Tags).await,
        Task::MetadataDelete(a) => metadata::delete(shell, a).await,
        Task::MetadataWrite(a) => metadata::write(shell, a).await,
        Task::MetadataLoad(a) => load::metadata_load(shell, a).await,
        Task::DataMigrate(a) => migrate::data_migrate(shell, a).await,
        Task::MetadataMigrate(a) => migrate::metadata_migrate(shell, a).await,
        Task::SuggestKey(a) => suggest::key(shell, a).await,
        Task::SuggestTag(a) => suggest::tag(shell, a).await,
        Task::SuggestTagValue(a) => suggest::tag_value(shell, a).await,
        Task::SuggestTagValues(a) => suggest::tag_values(shell, a).await,
        Task::SuggestTagKeyCount(a) => suggest::tag_key_count(shell, a).await,
    }
}
