//! `keys`, `count-data` and `delete-keys`: walks the series a metric
//! backend stores, a page at a time, with progress on stderr.
//!
//! They read the metric backend's own list of series (`list_series`), not
//! the metadata backends, so that they also reach series the metadata has
//! lost (expired indices, a metadata backend added later). A backend that
//! cannot list its series falls back to the series the metadata backends
//! know, with a warning.

use clap::Args;
use heroic_plugin_api::client::MetricBackendClient;
use heroic_plugin_api::filter::SeriesMatcher;
use heroic_plugin_api::types::{Series, TimeRange};
use heroic_plugin_api::{ErrorKind, Filter};
use serde_json::json;

use crate::backends::Named;
use crate::shell::options::{self, RangeArgs};
use crate::shell::output::{series_json, Progress};
use crate::shell::{now_ms, Shell, ShellError};

/// Which backend to walk and how.
#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Only this metric backend (default: every one).
    #[arg(long)]
    pub backend: Option<String>,
    /// Series asked of the backend per page.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub page_size: u64,
}

#[derive(Args, Debug)]
pub struct KeysArgs {
    /// Only series matching this HQL filter (default: every series).
    pub filter: Option<String>,
    /// Series printed per backend at most.
    #[arg(long)]
    pub limit: Option<u64>,
    #[command(flatten)]
    pub scan: ScanArgs,
}

#[derive(Args, Debug)]
pub struct CountDataArgs {
    /// Only series matching this HQL filter (default: every series).
    pub filter: Option<String>,
    /// The points counted (default: all of them).
    #[command(flatten)]
    pub range: RangeArgs,
    #[command(flatten)]
    pub scan: ScanArgs,
}

#[derive(Args, Debug)]
pub struct DeleteKeysArgs {
    /// The series whose points are deleted, as an HQL filter (`true` for every series).
    pub filter: String,
    /// The points deleted (default: all of them).
    #[command(flatten)]
    pub range: RangeArgs,
    /// Really delete; without it, only print what would be deleted.
    #[arg(long)]
    pub ok: bool,
    /// Series per delete call.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
    #[command(flatten)]
    pub scan: ScanArgs,
}

fn parse_filter(text: Option<&str>) -> Result<(Filter, SeriesMatcher), ShellError> {
    let filter = options::parse_filter(text)?;
    let matcher = filter.compile().map_err(|e| ShellError::usage(format!("invalid filter: {e}")))?;
    Ok((filter, matcher))
}

/// A scan's progress detail: `12 matched`, then the task's own detail.
fn summary(matched: u64, detail: &str) -> String {
    if detail.is_empty() {
        format!("{matched} matched")
    } else {
        format!("{matched} matched, {detail}")
    }
}

/// The matching series of one metric backend, a page at a time.
pub(crate) struct SeriesScan<'a> {
    shell: &'a Shell,
    backend: &'a Named<MetricBackendClient>,
    filter: Filter,
    matcher: SeriesMatcher,
    /// The range the metadata fallback asks for.
    range: Option<TimeRange>,
    page_size: u64,
    cursor: Option<String>,
    finished: bool,
    scanned: u64,
    matched: u64,
    progress: Progress,
    detail: String,
}

impl<'a> SeriesScan<'a> {
    pub(crate) fn new(
        shell: &'a Shell,
        backend: &'a Named<MetricBackendClient>,
        task: &'static str,
        filter: Option<&str>,
        range: Option<TimeRange>,
        page_size: u64,
    ) -> Result<Self, ShellError> {
        let (filter, matcher) = parse_filter(filter)?;
        let progress = Progress::new(task, &backend.id, shell.progress_interval);
        Ok(SeriesScan {
            shell,
            backend,
            filter,
            matcher,
            range,
            page_size,
            cursor: None,
            finished: false,
            scanned: 0,
            matched: 0,
            progress,
            detail: String::new(),
        })
    }

    /// The next page of matching series (possibly empty), `None` at the end.
    pub(crate) async fn next_page(&mut self) -> Result<Option<Vec<Series>>, ShellError> {
        if self.finished {
            return Ok(None);
        }
        let listed = match self.backend.client.list_series(self.cursor.as_deref(), self.page_size).await {
            Ok(page) => {
                self.cursor = page.next_cursor.into_option().map(|c| c.into_string());
                self.finished = self.cursor.is_none();
                page.series.into_vec()
            }
            Err(e) if e.kind == ErrorKind::UNSUPPORTED && self.scanned == 0 => {
                self.finished = true;
                self.series_from_metadata().await?
            }
            Err(e) => return Err(ShellError::backend("metrics", &self.backend.id, e)),
        };
        self.scanned += listed.len() as u64;
        let page: Vec<Series> = listed.into_iter().filter(|s| self.matcher.matches(s)).collect();
        self.matched += page.len() as u64;
        self.report();
        Ok(Some(page))
    }

    async fn series_from_metadata(&self) -> Result<Vec<Series>, ShellError> {
        tracing::warn!(backend = %self.backend.id, "the metric backend cannot list its series; using the series the metadata backends know");
        let now = now_ms();
        let range = self.range.unwrap_or(TimeRange::new(now - crate::http::metadata::DEFAULT_RANGE_MS, now));
        let mut errors = Vec::new();
        let (series, _) = crate::query::find_series(self.shell.node()?, &self.filter, range, 0, &mut errors).await?;
        match errors.first() {
            None => Ok(series),
            Some(first) => Err(ShellError::Partial { count: errors.len(), first: first.to_string() }),
        }
    }

    pub(crate) fn finish(&self) {
        self.progress.done(self.scanned, &summary(self.matched, &self.detail));
    }

    /// Where the next page starts: `None` before the first page and after
    /// the last one (see [`finished`](Self::finished)).
    pub(crate) fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Whether the last page was read.
    pub(crate) fn finished(&self) -> bool {
        self.finished
    }

    /// Goes on from a cursor an earlier scan stopped at.
    pub(crate) fn resume_at(&mut self, cursor: String) {
        self.cursor = Some(cursor);
    }

    /// What else the task did so far, shown in its progress after the
    /// series counts (`1200 points copied`).
    pub(crate) fn set_detail(&mut self, detail: String) {
        self.detail = detail;
        self.report();
    }

    fn report(&mut self) {
        let (matched, detail) = (self.matched, &self.detail);
        self.progress.update(self.scanned, || summary(matched, detail));
    }
}

/// `keys`: every series a metric backend stores, one line each.
pub async fn keys(shell: &Shell, args: &KeysArgs) -> Result<(), ShellError> {
    for backend in shell.metric_backends(args.scan.backend.as_deref())? {
        let limit = args.limit.unwrap_or(u64::MAX);
        let mut scan = SeriesScan::new(
            shell,
            backend,
            "keys",
            args.filter.as_deref(),
            None,
            args.scan.page_size.min(limit.max(1)),
        )?;
        let mut printed = 0u64;
        'pages: while let Some(page) = scan.next_page().await? {
            for series in &page {
                if printed == limit {
                    break 'pages;
                }
                shell.out.line(&json!({"backend": backend.id, "series": series_json(series)}))?;
                printed += 1;
            }
        }
        scan.finish();
    }
    Ok(())
}

/// `count-data`: the number of matching series and of their points, one
/// line per backend.
pub async fn count_data(shell: &Shell, args: &CountDataArgs) -> Result<(), ShellError> {
    let range = args.range.resolve(now_ms(), TimeRange::ALL.start)?;
    for backend in shell.metric_backends(args.scan.backend.as_deref())? {
        let mut scan =
            SeriesScan::new(shell, backend, "count-data", args.filter.as_deref(), range, args.scan.page_size)?;
        let mut points = 0u64;
        while let Some(page) = scan.next_page().await? {
            if !page.is_empty() {
                let counted = backend.client.count_points(page, range.unwrap_or(TimeRange::ALL)).await;
                points += counted.map_err(|e| ShellError::backend("metrics", &backend.id, e))?;
            }
        }
        scan.finish();
        shell.out.line(&json!({"backend": backend.id, "series": scan.matched, "points": points}))?;
    }
    Ok(())
}

/// `delete-keys`: deletes the points of the matching series. Without `--ok`
/// it only prints the series that would lose their points.
///
/// Every matching series is listed before the first delete: a backend's
/// paging cursor may count series of the page before it (Bigtable's does),
/// and deleting them would make it skip others.
pub async fn delete_keys(shell: &Shell, args: &DeleteKeysArgs) -> Result<(), ShellError> {
    let range = args.range.resolve(now_ms(), TimeRange::ALL.start)?;
    for backend in shell.metric_backends(args.scan.backend.as_deref())? {
        let mut scan =
            SeriesScan::new(shell, backend, "delete-keys: listing", Some(&args.filter), range, args.scan.page_size)?;
        let mut matching = Vec::new();
        while let Some(page) = scan.next_page().await? {
            for series in &page {
                shell.out.line(&json!({"backend": backend.id, "series": series_json(series)}))?;
            }
            matching.extend(page);
        }
        scan.finish();
        let mut deleted = 0u64;
        if args.ok {
            let mut progress = Progress::new("delete-keys: deleting", &backend.id, shell.progress_interval)
                .with_total(matching.len() as u64, "series");
            let mut done = 0u64;
            for chunk in matching.chunks(args.batch_size as usize) {
                let result = backend.client.delete_points(chunk.to_vec(), range.unwrap_or(TimeRange::ALL)).await;
                deleted += result.map_err(|e| ShellError::backend("metrics", &backend.id, e))?;
                done += chunk.len() as u64;
                progress.update(done, || format!("{deleted} had points"));
            }
            progress.done(done, &format!("{deleted} had points"));
        } else {
            tracing::warn!(backend = %backend.id, series = matching.len(), "dry run: nothing deleted; add --ok to delete the points of these series");
        }
        shell
            .out
            .line(&json!({"backend": backend.id, "matched": matching.len(), "deleted": deleted, "dryRun": !args.ok}))?;
    }
    Ok(())
}
