//! `data-migrate` and `metadata-migrate` (Heroic's tasks of those names):
//! copies between two backends of one role, a page at a time, with a rate
//! cap, a dry run, and a checkpoint file so that a long copy that stopped
//! (a crash, Ctrl-C, a backend that went away) goes on where it was.
//!
//! Copying is idempotent in both stores (a point written again at the same
//! time keeps its value; a series registered again changes nothing), so the
//! checkpoint only has to be behind, never ahead: it is written after the
//! page it names is acknowledged by the target.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use heroic_plugin_api::client::{MetadataBackendClient, MetricBackendClient};
use heroic_plugin_api::samples::{SampleFetchRequest, SampleKind, SeriesSamples};
use heroic_plugin_api::types::{FetchRequest, Series, SeriesPoints, TimeRange};
use heroic_plugin_api::{Filter, PluginError, PluginResult};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::backends::Named;
use crate::shell::keys::SeriesScan;
use crate::shell::options::{parse_filter, RangeArgs};
use crate::shell::output::Progress;
use crate::shell::{now_ms, Shell, ShellError};

#[derive(Args, Debug)]
pub struct DataMigrateArgs {
    /// Only series matching this HQL filter (default: every series).
    pub filter: Option<String>,
    /// The metric backend read from (its id).
    #[arg(long)]
    pub from: String,
    /// The metric backend written to (its id).
    #[arg(long)]
    pub to: String,
    /// The points copied (default: all of them).
    #[command(flatten)]
    pub range: RangeArgs,
    /// Points written per second at most, so that a copy does not swamp
    /// backends a running node uses (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Series read and written per call (their points are held in memory).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub page_size: u64,
    /// Count the series and points that would be copied, without writing.
    #[arg(long)]
    pub dry_run: bool,
    /// A file recording how far the copy got; a run given a file left by
    /// an interrupted run of the same copy goes on from there. Removed when
    /// the copy completes.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct MetadataMigrateArgs {
    /// Only series matching this HQL filter (default: every series).
    pub filter: Option<String>,
    /// The metadata backend read from (its id).
    #[arg(long)]
    pub from: String,
    /// The metadata backend written to (its id).
    #[arg(long)]
    pub to: String,
    /// Backends with rotating indices read the indices of this range
    /// (default: the last 7 days, as the metadata endpoints).
    #[command(flatten)]
    pub range: RangeArgs,
    /// Series written per second at most (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Series per write to the target.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub page_size: u64,
    /// Count the series that would be copied, without writing.
    #[arg(long)]
    pub dry_run: bool,
    /// A file recording how far the copy got (as for data-migrate).
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
}

/// How far a copy got, as saved in `--checkpoint`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct Checkpoint {
    /// `data-migrate` or `metadata-migrate`.
    task: String,
    from: String,
    to: String,
    filter: Option<String>,
    /// The range the first run resolved, `(start, end]` in milliseconds
    /// (`7d` would mean another range later).
    range: (i64, i64),
    /// Where to go on: the listing cursor after the last page copied
    /// (data), or the last key copied (metadata).
    position: Option<String>,
    /// Series copied so far.
    pub(crate) series: u64,
    /// Points copied so far (data).
    pub(crate) points: u64,
}

impl Checkpoint {
    /// Nothing copied yet.
    pub(crate) fn fresh(task: &str, from: &str, to: &str, filter: Option<&str>, range: TimeRange) -> Checkpoint {
        Checkpoint {
            task: task.into(),
            from: from.into(),
            to: to.into(),
            filter: filter.map(str::to_string),
            range: (range.start, range.end),
            position: None,
            series: 0,
            points: 0,
        }
    }

    pub(crate) fn range(&self) -> TimeRange {
        TimeRange::new(self.range.0, self.range.1)
    }

    /// Where the copy goes on, if it is resumed.
    pub(crate) fn position(&self) -> Option<&str> {
        self.position.as_deref()
    }

    /// After a page of a [`SeriesScan`] was written: saves the scan's
    /// cursor, unless that was the last page (nothing left to resume).
    pub(crate) fn save_scan(&mut self, scan: &SeriesScan<'_>, path: Option<&Path>) -> Result<(), ShellError> {
        match path {
            Some(path) if !scan.finished() => {
                self.position = scan.cursor().map(str::to_string);
                self.save(path)
            }
            _ => Ok(()),
        }
    }

    /// The checkpoint at `path` when it is one of this copy; `None` when
    /// there is none.
    fn load(path: &Path, fresh: &Checkpoint) -> Result<Option<Checkpoint>, ShellError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ShellError::usage(format!("cannot read --checkpoint {}: {e}", path.display()))),
        };
        let saved: Checkpoint = serde_json::from_str(&text).map_err(|e| {
            ShellError::usage(format!("--checkpoint {} is not a checkpoint of heroic-shell: {e}", path.display()))
        })?;
        let same = (&saved.task, &saved.from, &saved.to, &saved.filter)
            == (&fresh.task, &fresh.from, &fresh.to, &fresh.filter);
        if !same {
            return Err(ShellError::usage(format!(
                "--checkpoint {} belongs to another copy ({} --from {} --to {}, filter {:?}); give another file or \
                 delete it to start over",
                path.display(),
                saved.task,
                saved.from,
                saved.to,
                saved.filter.as_deref().unwrap_or("none")
            )));
        }
        Ok(Some(saved))
    }

    /// Replaces the file in one step (write, sync, rename), so a crash
    /// leaves the old checkpoint or the new one, never half of one.
    fn save(&self, path: &Path) -> Result<(), ShellError> {
        let failed =
            |e: std::io::Error| ShellError::Request(format!("cannot save --checkpoint {}: {e}", path.display()));
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other).map_err(failed)?;
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&temporary).map_err(failed)?;
            file.write_all(&text).map_err(failed)?;
            file.sync_all().map_err(failed)?;
        }
        std::fs::rename(&temporary, path).map_err(failed)
    }

    pub(crate) fn remove(path: Option<&Path>) {
        let Some(path) = path else { return };
        // A copy done in one page never saved one.
        if let Err(e) = std::fs::remove_file(path).or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(e),
        }) {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove the checkpoint of the finished copy");
        }
    }
}

/// Sleeps as long as `done` units are ahead of `rate` a second.
pub(crate) async fn pace(started: Instant, done: u64, rate: u64) {
    if rate == 0 {
        return;
    }
    let due = Duration::from_secs_f64(done as f64 / rate as f64);
    if let Some(ahead) = due.checked_sub(started.elapsed()) {
        tokio::time::sleep(ahead).await;
    }
}

/// Tries a backend call again while it fails transiently (the backend is
/// busy, a server went away for a moment), waiting longer each time, up to
/// `ATTEMPTS` tries; the checkpoint keeps the copy resumable past that.
async fn retrying<T, F, Fut>(what: &str, mut call: F) -> PluginResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = PluginResult<T>>,
{
    const ATTEMPTS: u32 = 6;
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                let backoff = Duration::from_millis(500 << attempt).min(Duration::from_secs(30));
                let wait = e.retry_after().map_or(backoff, |hint| hint.max(backoff));
                tracing::warn!(what, attempt, error = %e, wait_ms = wait.as_millis() as u64, "transient failure; trying again");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

fn one_metric_backend<'a>(shell: &'a Shell, id: &str) -> Result<&'a Named<MetricBackendClient>, ShellError> {
    Ok(shell.metric_backends(Some(id))?.remove(0))
}

fn one_metadata_backend<'a>(shell: &'a Shell, id: &str) -> Result<&'a Named<MetadataBackendClient>, ShellError> {
    let all = &shell.node()?.backends.metadata;
    all.iter().find(|b| b.id == id).ok_or_else(|| {
        let ids: Vec<&str> = all.iter().map(|b| b.id.as_str()).collect();
        ShellError::usage(format!("no metadata backend {id:?}; metadata backends: {}", ids.join(", ")))
    })
}

fn distinct(from: &str, to: &str) -> Result<(), ShellError> {
    if from == to {
        return Err(ShellError::usage(format!("--from and --to are both {from:?}: a copy needs two backends")));
    }
    Ok(())
}

/// The copy's checkpoint: the one in `--checkpoint` when it is there, else
/// a fresh one.
pub(crate) fn start_checkpoint(path: Option<&Path>, fresh: Checkpoint) -> Result<(Checkpoint, bool), ShellError> {
    let Some(path) = path else { return Ok((fresh, false)) };
    match Checkpoint::load(path, &fresh)? {
        Some(saved) => {
            tracing::info!(path = %path.display(), position = ?saved.position, series = saved.series, points = saved.points, "resuming from the checkpoint");
            Ok((saved, true))
        }
        None => Ok((fresh, false)),
    }
}

/// The kinds of samples (besides points) both backends store: those are
/// copied too. Kinds only the source stores are named in a warning.
fn sample_kinds(from: &Named<MetricBackendClient>, to: &Named<MetricBackendClient>) -> Vec<SampleKind> {
    let mut kinds = Vec::new();
    for kind in [SampleKind::DISTRIBUTION, SampleKind::SPREAD, SampleKind::TDIGEST] {
        match (from.client.stores(kind), to.client.stores(kind)) {
            (true, true) => kinds.push(kind),
            (true, false) => tracing::warn!(
                from = %from.id, to = %to.id, kind = kind.name(),
                "the target cannot store this kind of sample: such samples are not copied"
            ),
            _ => {}
        }
    }
    kinds
}

/// Copies the points (and the samples both store) of one page of series.
/// Returns the points and samples written.
async fn copy_page(
    from: &Named<MetricBackendClient>,
    to: &Named<MetricBackendClient>,
    page: &[Series],
    range: TimeRange,
    kinds: &[SampleKind],
) -> Result<u64, ShellError> {
    let source = |e: PluginError| ShellError::backend("metrics", &from.id, e);
    let target = |e: PluginError| ShellError::backend("metrics", &to.id, e);
    let series_of = |index: u32, resource: &abi_stable::std_types::RVec<_>| -> Result<Series, ShellError> {
        let mut series = page.get(index as usize).cloned().ok_or_else(|| {
            source(PluginError::internal(format_args!("fetch answered series {index} of a page of {}", page.len())))
        })?;
        if !resource.is_empty() {
            // Bigtable keeps resource variants apart and answers each.
            series.resource = resource.clone();
        }
        Ok(series)
    };
    let request = FetchRequest { series: page.to_vec().into(), range, point_limit: 0 };
    let fetched = retrying("fetch", || from.client.fetch(request.clone())).await.map_err(source)?;
    let mut batch = Vec::with_capacity(fetched.series.len());
    let mut copied = 0u64;
    for f in fetched.series.into_iter().filter(|f| !f.points.is_empty()) {
        copied += f.points.len() as u64;
        batch.push(SeriesPoints { series: series_of(f.request_index, &f.resource)?, points: f.points });
    }
    if !batch.is_empty() {
        let batch: abi_stable::std_types::RVec<SeriesPoints> = batch.into();
        retrying("write", || to.client.write(batch.clone())).await.map_err(target)?;
    }
    for &kind in kinds {
        let request = SampleFetchRequest { kind, series: page.to_vec().into(), range, sample_limit: 0 };
        let fetched = retrying("fetch samples", || from.client.fetch_samples(request.clone())).await.map_err(source)?;
        let mut batch = Vec::new();
        for f in fetched.series.into_iter().filter(|f| !f.samples.is_empty()) {
            copied += f.samples.len() as u64;
            batch.push(SeriesSamples { series: series_of(f.request_index, &f.resource)?, samples: f.samples });
        }
        if !batch.is_empty() {
            retrying("write samples", || to.client.write_samples(kind, batch.clone())).await.map_err(target)?;
        }
    }
    Ok(copied)
}

/// `data-migrate`: one line at the end,
/// `{from, to, series, points, dryRun, resumed}` (`points` counts samples
/// of the other kinds too).
pub async fn data_migrate(shell: &Shell, args: &DataMigrateArgs) -> Result<(), ShellError> {
    distinct(&args.from, &args.to)?;
    let from = one_metric_backend(shell, &args.from)?;
    let to = one_metric_backend(shell, &args.to)?;
    let range = args.range.resolve(now_ms(), TimeRange::ALL.start)?.unwrap_or(TimeRange::ALL);
    let fresh = Checkpoint::fresh("data-migrate", &from.id, &to.id, args.filter.as_deref(), range);
    let checkpoint_path = args.checkpoint.as_deref().filter(|_| !args.dry_run);
    let (mut checkpoint, resumed) = start_checkpoint(checkpoint_path, fresh)?;
    let range = checkpoint.range();
    let kinds = sample_kinds(from, to);
    let mut scan = SeriesScan::new(shell, from, "data-migrate", args.filter.as_deref(), Some(range), args.page_size)?;
    if let Some(cursor) = checkpoint.position() {
        scan.resume_at(cursor.to_string());
    }
    let started = Instant::now();
    let mut copied_now = 0u64;
    while let Some(page) = scan.next_page().await? {
        for chunk in page.chunks(args.page_size as usize) {
            let copied = if args.dry_run {
                let counted = from.client.count_points(chunk.to_vec(), range).await;
                counted.map_err(|e| ShellError::backend("metrics", &from.id, e))?
            } else {
                copy_page(from, to, chunk, range, &kinds).await?
            };
            checkpoint.series += chunk.len() as u64;
            checkpoint.points += copied;
            copied_now += copied;
            pace(started, copied_now, args.rate).await;
        }
        scan.set_detail(format!("{} points {}", checkpoint.points, if args.dry_run { "to copy" } else { "copied" }));
        checkpoint.save_scan(&scan, checkpoint_path)?;
    }
    scan.finish();
    Checkpoint::remove(checkpoint_path);
    shell.out.line(&json!({
        "from": from.id,
        "to": to.id,
        "series": checkpoint.series,
        "points": checkpoint.points,
        "dryRun": args.dry_run,
        "resumed": resumed,
    }))
}

/// `metadata-migrate`: key by key (the metadata backends list series
/// without a cursor, so a key is the page: memory holds the series of one
/// key at a time), one line at the end,
/// `{from, to, keys, series, dryRun, resumed}` (`keys` listed in all,
/// also those a resumed run skips).
pub async fn metadata_migrate(shell: &Shell, args: &MetadataMigrateArgs) -> Result<(), ShellError> {
    distinct(&args.from, &args.to)?;
    let from = one_metadata_backend(shell, &args.from)?;
    let to = one_metadata_backend(shell, &args.to)?;
    let now = now_ms();
    let range = args
        .range
        .resolve(now, now - crate::http::metadata::DEFAULT_RANGE_MS)?
        .unwrap_or(TimeRange::new(now - crate::http::metadata::DEFAULT_RANGE_MS, now));
    let filter = parse_filter(args.filter.as_deref())?;
    let fresh = Checkpoint::fresh("metadata-migrate", &from.id, &to.id, args.filter.as_deref(), range);
    let checkpoint_path = args.checkpoint.as_deref().filter(|_| !args.dry_run);
    let (mut checkpoint, resumed) = start_checkpoint(checkpoint_path, fresh)?;
    let range = checkpoint.range();
    let source = |e: PluginError| ShellError::backend("metadata", &from.id, e);
    let keys = retrying("find keys", || from.client.find_keys(&filter, range, 0)).await.map_err(source)?;
    if keys.limited {
        tracing::warn!(from = %from.id, keys = keys.keys.len(), "the backend listed only part of the keys; copy in parts with a narrower filter");
    }
    let mut keys: Vec<String> = keys.keys.into_iter().map(|k| k.into_string()).collect();
    keys.sort();
    let listed = keys.len();
    if let Some(last) = &checkpoint.position {
        keys.retain(|k| k > last);
    }
    let mut progress =
        Progress::new("metadata-migrate", &from.id, shell.progress_interval).with_total(keys.len() as u64, "keys");
    let started = Instant::now();
    let mut copied_now = 0u64;
    for (done, key) in keys.iter().enumerate() {
        let of_key = Filter::And(vec![filter.clone(), Filter::Key(key.clone())]);
        let page = retrying("find series", || from.client.find_series(&of_key, range, 0)).await.map_err(source)?;
        if page.limited {
            tracing::warn!(from = %from.id, key, series = page.series.len(), "the backend listed only part of this key's series");
        }
        let series = page.series.into_vec();
        for chunk in series.chunks(args.page_size as usize) {
            if !args.dry_run {
                let written = retrying("write", || to.client.write(chunk.to_vec())).await;
                written.map_err(|e| ShellError::backend("metadata", &to.id, e))?;
            }
            copied_now += chunk.len() as u64;
            pace(started, copied_now, args.rate).await;
        }
        checkpoint.series += series.len() as u64;
        checkpoint.position = Some(key.clone());
        if let Some(path) = checkpoint_path {
            checkpoint.save(path)?;
        }
        let total = checkpoint.series;
        progress.update(done as u64 + 1, || format!("{total} series"));
    }
    progress.done(keys.len() as u64, &format!("{} series", checkpoint.series));
    Checkpoint::remove(checkpoint_path);
    shell.out.line(&json!({
        "from": from.id,
        "to": to.id,
        "keys": listed,
        "series": checkpoint.series,
        "dryRun": args.dry_run,
        "resumed": resumed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(task: &str, to: &str) -> Checkpoint {
        Checkpoint::fresh(task, "a", to, Some("$key = cpu"), TimeRange::new(0, 10))
    }

    #[test]
    fn a_checkpoint_resumes_only_its_own_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.json");
        assert_eq!(Checkpoint::load(&path, &checkpoint("data-migrate", "b")).unwrap(), None);
        let mut saved = checkpoint("data-migrate", "b");
        saved.position = Some("cursor-7".into());
        saved.series = 700;
        saved.save(&path).unwrap();
        // Another range (a relative --start resolved later) still resumes.
        let mut later = checkpoint("data-migrate", "b");
        later.range = (5, 15);
        assert_eq!(Checkpoint::load(&path, &later).unwrap(), Some(saved));
        let e = Checkpoint::load(&path, &checkpoint("data-migrate", "c")).unwrap_err().to_string();
        assert!(e.contains("belongs to another copy"), "{e}");
        std::fs::write(&path, "{").unwrap();
        let e = Checkpoint::load(&path, &later).unwrap_err().to_string();
        assert!(e.contains("not a checkpoint"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_tried_again_and_others_are_not() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let result = retrying("write", || async {
            match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 | 1 => Err(PluginError::unavailable("busy")),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!((result.unwrap(), calls.load(std::sync::atomic::Ordering::SeqCst)), (7, 3));
        calls.store(0, std::sync::atomic::Ordering::SeqCst);
        let result: PluginResult<()> = retrying("write", || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(PluginError::config("bad"))
        })
        .await;
        assert!(result.is_err() && calls.load(std::sync::atomic::Ordering::SeqCst) == 1);
    }
}
