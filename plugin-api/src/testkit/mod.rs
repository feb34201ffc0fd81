//! The conformance kit: every backend behaviour test written once, run
//! against any plugin library loaded through the real ABI.
//!
//! - [`load_metric_backend`], [`load_metadata_backend`],
//!   [`load_suggest_backend`]: find a plugin library (by path, or by name in
//!   `$HEROIC_PLUGIN_DIRS` and [`default_plugin_dirs`]), load it with
//!   [`crate::loader::load_plugin`], call its `init` (plugin logs go to
//!   stderr) and create a backend from a JSON config. They panic with a clear
//!   message on failure: this is test code.
//! - [`metric`], [`metadata`], [`suggest`]: the suites. Each case is an
//!   `async fn(&Client)` testing one behaviour. Every case uses its own
//!   unique series keys and tag values, so one backend instance (or one
//!   shared external server) can serve every case without interference.
//!   The metric suite's sample cases (`samples`) and its `fetch_buckets`
//!   case (`pushdown`) live in files of their own and are re-exported by
//!   [`metric`].
//! - [`metric_backend_conformance!`](crate::metric_backend_conformance),
//!   [`metadata_backend_conformance!`](crate::metadata_backend_conformance),
//!   [`suggest_backend_conformance!`](crate::suggest_backend_conformance):
//!   expand into one `#[test]` per case, so `cargo test` reports every case
//!   by name (`metric_conformance::interval`, …).
//! - [`consumer`]: a consumer plugin loaded through the ABI, fed to a
//!   recording sink that stands in for the host's write path.
//! - [`node`]: the end-to-end harness, a real `heroic` binary on a free port
//!   talked to over HTTP.
//! - [`disk`]: a small tmpfs that a test can fill up, for full-disk tests.
//! - [`servers`]: the test servers of `scripts/servers/`, required or
//!   started through their scripts.
//!
//! Optional operations (`list_series`, `delete_points`, `count_points`,
//! `delete_series`) may answer [`ErrorKind::UNSUPPORTED`](crate::ErrorKind):
//! the case then prints a note and passes. Any other error fails the case.
//!
//! # Using the kit in a plugin
//!
//! The plugin's `Cargo.toml` builds a `cdylib` (cargo then builds the library
//! into `target/<profile>/` before running the package's integration tests)
//! and takes the kit as a dev-dependency:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dev-dependencies]
//! heroic-plugin-api = { version = "1.1", features = ["testkit"] }
//! serde_json = "1"
//! tempfile = "3"
//! ```
//!
//! Then `tests/conformance.rs`:
//!
//! ```ignore
//! use heroic_plugin_api::testkit::load_metric_backend;
//!
//! // The expression is called once per case and returns a future of the
//! // client, or of `(client, guard)` where the guard (here a temporary
//! // directory) lives until the case has finished.
//! heroic_plugin_api::metric_backend_conformance!(|| async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let client = load_metric_backend("my-backend", serde_json::json!({ "path": dir.path() })).await;
//!     (client, dir)
//! });
//!
//! // A plugin providing several kinds invokes several macros. Each expands
//! // into its own module (`metadata_conformance`, …); pass `mod name,` first
//! // to choose another name, e.g. to run a suite twice with two configs,
//! // and attributes before it to put them on every case, e.g.
//! // `#[ignore = "needs a live server"] mod live,`.
//! heroic_plugin_api::metadata_backend_conformance!(mod metadata_in_memory, || async {
//!     heroic_plugin_api::testkit::load_metadata_backend("my-backend", serde_json::json!({})).await
//! });
//! ```
//!
//! `cargo test --test conformance` then lists `metric_conformance::interval`,
//! `metric_conformance::many_tags`, … A single case can also be called by
//! hand from any async test: `testkit::metric::interval(&client).await`.
//!
//! Environment: `HEROIC_PLUGIN_DIRS` (extra directories to search, searched
//! first), `HEROIC_TESTKIT_LOG` (`error`…`trace`, default `info`: the most
//! verbose plugin log level printed), `HEROIC_TESTKIT_TIMEOUT_SECS` (per
//! case, default 300).

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use abi_stable::std_types::RString;

use crate::client::{MetadataBackendClient, MetricBackendClient, SuggestBackendClient};
use crate::error::{ErrorKind, PluginResult};
use crate::ffi::{HostContext, LogLevel, LogRecord, PluginKinds};
use crate::loader::{find_plugin, library_file_name, list_plugins, load_plugin, LoadedPlugin};
use crate::types::TimeRange;

pub mod alloc;
pub mod consumer;
pub mod disk;
pub mod metadata;
pub mod metric;
pub mod node;
mod pushdown;
mod samples;
pub mod servers;
pub mod sketch;
pub mod suggest;

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

/// Where cargo puts the libraries of the build the running test belongs to:
/// the directory above the test executable's `deps/` (e.g. `target/debug`),
/// then that `deps/` directory itself.
pub fn default_plugin_dirs() -> Vec<PathBuf> {
    let exe = std::env::current_exe().expect("cannot find the running test executable");
    let Some(dir) = exe.parent() else { return Vec::new() };
    if dir.file_name().is_some_and(|n| n == "deps") {
        let mut dirs = Vec::new();
        if let Some(profile_dir) = dir.parent() {
            dirs.push(profile_dir.to_path_buf());
        }
        dirs.push(dir.to_path_buf());
        dirs
    } else {
        vec![dir.to_path_buf()]
    }
}

/// `$HEROIC_PLUGIN_DIRS` (a path list), then [`default_plugin_dirs`].
pub fn plugin_search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("HEROIC_PLUGIN_DIRS").map(|v| std::env::split_paths(&v).collect()).unwrap_or_default();
    dirs.extend(default_plugin_dirs());
    dirs
}

fn looks_like_path(plugin: &str) -> bool {
    plugin.contains('/') || plugin.contains(std::path::MAIN_SEPARATOR) || plugin.ends_with(std::env::consts::DLL_SUFFIX)
}

/// The library of `plugin`: a path to the file itself, or a plugin name
/// (`local` → `libheroic_plugin_local.so`) looked up in `dirs`. Panics with
/// the directories searched and the plugins found there.
pub fn find_library(plugin: &str, dirs: &[PathBuf]) -> PathBuf {
    if looks_like_path(plugin) {
        let path = PathBuf::from(plugin);
        assert!(path.is_file(), "plugin library {} does not exist (or is not a file)", path.display());
        return path;
    }
    // `cargo test` refreshes the library in `target/<profile>/deps/` but only
    // `cargo build` copies it up to `target/<profile>/`: take the newest copy
    // so a test never loads a stale build.
    let newest = dirs
        .iter()
        .map(|d| d.join(library_file_name(plugin)))
        .filter(|p| p.is_file())
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    if let Some(path) = newest {
        return path;
    }
    find_plugin(plugin, dirs).unwrap_or_else(|e| {
        panic!(
            "{e}\n(hint: build the plugin first, e.g. `cargo build -p <its package>`, or set HEROIC_PLUGIN_DIRS; \
             the kit looks for {} in {:?}; plugins there: {:?})",
            library_file_name(plugin),
            dirs,
            list_plugins(dirs)
        )
    })
}

static LOADED: Mutex<Option<HashMap<PathBuf, LoadedPlugin>>> = Mutex::new(None);

extern "C" fn log_to_stderr(record: LogRecord<'_>) {
    let fields = record.fields.as_str();
    eprintln!(
        "[plugin {} {:?} {}] {}{}{}",
        record.plugin.as_str(),
        record.level,
        record.target.as_str(),
        record.message.as_str(),
        if fields.is_empty() { "" } else { " " },
        fields
    );
}

fn testkit_log_level() -> LogLevel {
    match std::env::var("HEROIC_TESTKIT_LOG").unwrap_or_default().to_ascii_lowercase().as_str() {
        "error" => LogLevel::Error,
        "warn" => LogLevel::Warn,
        "debug" => LogLevel::Debug,
        "trace" => LogLevel::Trace,
        _ => LogLevel::Info,
    }
}

/// Finds, loads and initialises a plugin library (once per file and
/// process: later calls return the same library).
pub fn load_library(plugin: &str) -> LoadedPlugin {
    let path = find_library(plugin, &plugin_search_dirs());
    load_library_at(plugin, &path)
}

/// Loads and initialises the library at `path`, once per process.
pub fn load_library_at(name: &str, path: &Path) -> LoadedPlugin {
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    let loaded = loaded.get_or_insert_with(HashMap::new);
    if let Some(plugin) = loaded.get(&key) {
        return plugin.clone();
    }
    let plugin = load_plugin(name, path).unwrap_or_else(|e| panic!("cannot load plugin {name:?}: {e}"));
    (plugin.module.init())(HostContext { log: log_to_stderr, max_level: testkit_log_level() });
    loaded.insert(key, plugin.clone());
    plugin
}

fn require_kind(plugin: &LoadedPlugin, kind: u32, what: &str) {
    assert!(
        plugin.info.kinds.has(kind),
        "plugin {:?} ({}) provides no {what}; it provides: {:?}",
        plugin.info.name.as_str(),
        plugin.path.display(),
        plugin.info.kinds.names()
    );
}

fn created<T>(plugin: &LoadedPlugin, what: &str, result: PluginResult<T>) -> T {
    result.unwrap_or_else(|e| {
        panic!("plugin {:?} ({}) failed to create its {what}: {e}", plugin.info.name.as_str(), plugin.path.display())
    })
}

/// Loads `plugin` (a name or a path, see [`find_library`]) and creates its
/// metric backend from `config`. Panics on any failure.
pub async fn load_metric_backend(plugin: &str, config: serde_json::Value) -> MetricBackendClient {
    let lib = load_library(plugin);
    require_kind(&lib, PluginKinds::METRIC, "metric backend");
    let future = (lib.module.create_metric_backend())(RString::from(config.to_string()));
    MetricBackendClient::new(created(&lib, "metric backend", future.await.into_result()))
}

/// Loads `plugin` and creates its metadata backend from `config`.
pub async fn load_metadata_backend(plugin: &str, config: serde_json::Value) -> MetadataBackendClient {
    let lib = load_library(plugin);
    require_kind(&lib, PluginKinds::METADATA, "metadata backend");
    let future = (lib.module.create_metadata_backend())(RString::from(config.to_string()));
    MetadataBackendClient::new(created(&lib, "metadata backend", future.await.into_result()))
}

/// Loads `plugin` and creates its suggest backend from `config`.
pub async fn load_suggest_backend(plugin: &str, config: serde_json::Value) -> SuggestBackendClient {
    let lib = load_library(plugin);
    require_kind(&lib, PluginKinds::SUGGEST, "suggest backend");
    let future = (lib.module.create_suggest_backend())(RString::from(config.to_string()));
    SuggestBackendClient::new(created(&lib, "suggest backend", future.await.into_result()))
}

// ---------------------------------------------------------------------------
// Running cases
// ---------------------------------------------------------------------------

/// What the expression given to a conformance macro produces: a client, or a
/// client with a guard kept alive until the case has finished (a temporary
/// directory, a container handle …).
pub trait Fixture {
    type Client;
    type Guard;
    fn into_parts(self) -> (Self::Client, Self::Guard);
}

macro_rules! fixture_impls {
    ($($client:ty),*) => {$(
        impl Fixture for $client {
            type Client = $client;
            type Guard = ();
            fn into_parts(self) -> ($client, ()) {
                (self, ())
            }
        }

        impl<G> Fixture for ($client, G) {
            type Client = $client;
            type Guard = G;
            fn into_parts(self) -> ($client, G) {
                self
            }
        }
    )*};
}

fixture_impls!(MetricBackendClient, MetadataBackendClient, SuggestBackendClient);

fn case_timeout() -> Duration {
    let secs = std::env::var("HEROIC_TESTKIT_TIMEOUT_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    Duration::from_secs(secs)
}

/// Runs one case on a fresh host-side tokio runtime, with a timeout
/// (`HEROIC_TESTKIT_TIMEOUT_SECS`, default 300). Used by the macros.
pub fn run_case<F: Future<Output = ()>>(suite: &str, case: &str, future: F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot start the host-side tokio runtime");
    let timeout = case_timeout();
    runtime.block_on(async {
        if tokio::time::timeout(timeout, future).await.is_err() {
            panic!("conformance case {suite}::{case} did not finish within {timeout:?}");
        }
    });
}

// ---------------------------------------------------------------------------
// Helpers shared by the suites
// ---------------------------------------------------------------------------

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A short identifier unique to this call, made of lowercase ASCII letters
/// and digits only (so analysers that split or lowercase leave it whole).
/// Unique across cases, processes and runs against a persistent server.
/// A fresh series for a metric `case`: unique key, two tags, no resource
/// tags.
pub fn new_series(case: &str) -> crate::types::Series {
    crate::types::Series::new(
        format!("conformance-{case}-{}", unique_id()),
        [("case", case), ("kit", "heroic-conformance")],
        [],
    )
}

pub fn unique_id() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("t{:x}{:x}{:x}", nanos % (1u128 << 48), std::process::id() % 4096, n)
}

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The metadata range the suites query with: the last week to an hour ahead
/// (backends with time-based indices pick indices from it).
pub fn recent_range() -> TimeRange {
    let now = now_ms();
    TimeRange::new(now - 7 * 24 * 3600 * 1000, now + 3600 * 1000)
}

/// Prints a line on the test process's real stderr. The test harness
/// captures `print!`/`eprint!` of passing tests, but what the kit skipped
/// must show in every run, so this writes to the stream directly.
pub fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The answer of an optional operation, held to what the backend declares:
/// `None` (after reporting the skip) when the operation is undeclared and
/// the backend answers `Unsupported`. Panics when a declared operation
/// answers `Unsupported`, when an undeclared one answers anything else (the
/// host relies on the declarations), and on any other error.
pub fn optional<T>(suite: &str, case: &str, operation: &str, declared: bool, result: PluginResult<T>) -> Option<T> {
    match (declared, result) {
        (true, Ok(value)) => Some(value),
        (true, Err(e)) if e.kind == ErrorKind::UNSUPPORTED => panic!(
            "{case}: the backend declares {operation} in its capabilities() but answered Unsupported ({e}); \
             implement it or leave it out of capabilities()"
        ),
        (false, Err(e)) if e.kind == ErrorKind::UNSUPPORTED => {
            report(&format!("conformance {suite}::{case}: SKIPPED: {operation} is not declared in capabilities()"));
            None
        }
        (false, Ok(_)) => panic!(
            "{case}: the backend implements {operation} but does not declare it: add it to capabilities() \
             (the host and the kit go by the declaration)"
        ),
        (_, Err(e)) => panic!("{case}: {operation} failed: {e}"),
    }
}

/// The summary of a suite for a backend that declares `declared` (names of
/// its capabilities): which optional cases run and which are skipped, why.
pub fn capability_summary(suite: &str, optional_cases: &[(&str, bool)], declared: &[&str]) -> String {
    let skipped: Vec<String> = optional_cases
        .iter()
        .filter(|(_, on)| !on)
        .map(|(case, _)| format!("{case} (not declared in capabilities())"))
        .collect();
    format!(
        "conformance {suite}: declared capabilities {declared:?}; {} optional case(s) skipped{}{}",
        skipped.len(),
        if skipped.is_empty() { "" } else { ": " },
        skipped.join(", ")
    )
}

/// Unwraps a required operation's answer with the case and operation named.
pub fn required<T>(case: &str, operation: &str, result: PluginResult<T>) -> T {
    result.unwrap_or_else(|e| panic!("{case}: {operation} failed: {e}"))
}

// ---------------------------------------------------------------------------
// Macros
// ---------------------------------------------------------------------------

/// The one list of the cases of each suite. The `CASES` constants and the
/// `#[test]` functions the conformance macros expand to are both made from
/// it, so a case is added in one place (and its `async fn` in the suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __with_cases {
    (metric, $then:ident!($($args:tt)*)) => {
        $crate::$then! { $($args)*
            health, interval, one_point, fetch_unwritten_series, many_points,
            batch_larger_than_write_batch, period_edges, multiple_fetches, long_series,
            many_tags, resource_round_trip, overwrite_same_timestamp, fetch_point_limit,
            list_series, delete_points, count_points, distributions, spreads, tdigests, fetch_buckets,
            capabilities_summary }
    };
    (metadata, $then:ident!($($args:tt)*)) => {
        $crate::$then! { $($args)*
            health, empty_backend, filter_true, filter_false, filter_key, filter_not_key,
            filter_match_tag, filter_has_tag, filter_prefix, filter_regex, filter_and, filter_or,
            filter_not, find_series_limited, count_series, find_keys, find_tags, delete_series,
            resource_round_trip, write_twice_found_once, capabilities_summary }
    };
    (suggest, $then:ident!($($args:tt)*)) => {
        $crate::$then! { $($args)*
            health, empty_backend, key_suggest, tag_suggest, tag_suggest_limit,
            tag_value_suggest, tag_values_suggest, tag_key_count, capabilities_summary }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __case_names {
    ($($case:ident),* $(,)?) => {
        &[$(stringify!($case)),*]
    };
}

/// Expands into one `#[test]` per case, in module `$mod` (default
/// `metric_conformance`). `$make` is called once per case and returns a
/// future of a [`MetricBackendClient`](crate::client::MetricBackendClient)
/// or of `(client, guard)`; see [`crate::testkit`].
#[macro_export]
macro_rules! metric_backend_conformance {
    ($(#[$attr:meta])* mod $mod:ident, $make:expr $(,)?) => {
        $crate::__with_cases!(metric, __conformance_cases!($mod, [$(#[$attr])*], metric, $make;));
    };
    ($make:expr $(,)?) => {
        $crate::metric_backend_conformance!(mod metric_conformance, $make);
    };
}

/// Expands into one `#[test]` per metadata case, in module `$mod` (default
/// `metadata_conformance`). See [`metric_backend_conformance!`].
#[macro_export]
macro_rules! metadata_backend_conformance {
    ($(#[$attr:meta])* mod $mod:ident, $make:expr $(,)?) => {
        $crate::__with_cases!(metadata, __conformance_cases!($mod, [$(#[$attr])*], metadata, $make;));
    };
    ($make:expr $(,)?) => {
        $crate::metadata_backend_conformance!(mod metadata_conformance, $make);
    };
}

/// Expands into one `#[test]` per suggest case, in module `$mod` (default
/// `suggest_conformance`). See [`metric_backend_conformance!`].
#[macro_export]
macro_rules! suggest_backend_conformance {
    ($(#[$attr:meta])* mod $mod:ident, $make:expr $(,)?) => {
        $crate::__with_cases!(suggest, __conformance_cases!($mod, [$(#[$attr])*], suggest, $make;));
    };
    ($make:expr $(,)?) => {
        $crate::suggest_backend_conformance!(mod suggest_conformance, $make);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($mod:ident, $attrs:tt, $suite:ident, $make:expr; $($case:ident),* $(,)?) => {
        #[allow(unused_imports)]
        mod $mod {
            use super::*;

            $( $crate::__conformance_case!($attrs, $suite, $case, $make); )*
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_case {
    ([$(#[$attr:meta])*], $suite:ident, $case:ident, $make:expr) => {
        #[test]
        $(#[$attr])*
        fn $case() {
            $crate::testkit::run_case(stringify!($suite), stringify!($case), async {
                let make = $make;
                let (client, guard) = $crate::testkit::Fixture::into_parts(make().await);
                $crate::testkit::$suite::$case(&client).await;
                if let ::std::result::Result::Err(e) = client.shutdown().await {
                    panic!("{}::{}: shutdown failed: {}", stringify!($suite), stringify!($case), e);
                }
                drop(client);
                drop(guard);
            });
        }
    };
}

/// A free TCP port on 127.0.0.1 for a server a test starts. Ports are never
/// handed out twice in one process: two tests running in parallel could
/// otherwise both be given the port the kernel just released.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<std::collections::BTreeSet<u16>> = Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("cannot bind a port on 127.0.0.1")
            .port();
        if GIVEN.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
}
