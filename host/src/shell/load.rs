//! `metadata-load`: rebuilds the metadata and suggest backends from the
//! series a metric backend stores (Heroic's task of that name), for a lost
//! or newly added Elasticsearch index, say. The series are read with the
//! metric backend's own listing (as `keys` reads them), a page at a time,
//! and each page is written to every metadata and suggest backend.

use std::time::Instant;

use clap::Args;
use heroic_plugin_api::types::TimeRange;
use serde_json::json;

use crate::shell::keys::{ScanArgs, SeriesScan};
use crate::shell::migrate::{pace, start_checkpoint, Checkpoint};
use crate::shell::{Shell, ShellError};

#[derive(Args, Debug)]
pub struct MetadataLoadArgs {
    /// Only series matching this HQL filter (default: every series).
    pub filter: Option<String>,
    /// Series written per second at most, so that a large load does not
    /// swamp the backends a running node shares (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Leave the suggest backends alone (by default both are loaded).
    #[arg(long)]
    pub no_suggest: bool,
    /// Count what would be written, without writing.
    #[arg(long)]
    pub dry_run: bool,
    /// A file recording how far the load got; a run given the file of an
    /// interrupted load goes on from there (see data-migrate).
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub scan: ScanArgs,
}

/// `metadata-load`: one line per metric backend read,
/// `{backend, series, written, dryRun, resumed}` (counted since the start
/// of a resumed load).
pub async fn metadata_load(shell: &Shell, args: &MetadataLoadArgs) -> Result<(), ShellError> {
    let backends = &shell.node()?.backends;
    if backends.metadata.is_empty() && (args.no_suggest || backends.suggest.is_empty()) {
        return Err(ShellError::usage(
            "metadata-load needs a metadata or suggest backend to load, and none is configured",
        ));
    }
    let sources = shell.metric_backends(args.scan.backend.as_deref())?;
    if args.checkpoint.is_some() && sources.len() > 1 {
        return Err(ShellError::usage("--checkpoint follows one metric backend: name it with --backend"));
    }
    let checkpoint_path = args.checkpoint.as_deref().filter(|_| !args.dry_run);
    let started = Instant::now();
    let mut written = 0u64;
    for source in sources {
        let targets = if args.no_suggest { "metadata" } else { "metadata and suggest" };
        let fresh = Checkpoint::fresh("metadata-load", &source.id, targets, args.filter.as_deref(), TimeRange::ALL);
        let (mut checkpoint, resumed) = start_checkpoint(checkpoint_path, fresh)?;
        let mut scan =
            SeriesScan::new(shell, source, "metadata-load", args.filter.as_deref(), None, args.scan.page_size)?;
        if let Some(cursor) = checkpoint.position() {
            scan.resume_at(cursor.to_string());
        }
        while let Some(page) = scan.next_page().await? {
            checkpoint.series += page.len() as u64;
            if page.is_empty() || args.dry_run {
                continue;
            }
            for target in &backends.metadata {
                target.client.write(page.clone()).await.map_err(|e| ShellError::backend("metadata", &target.id, e))?;
            }
            if !args.no_suggest {
                for target in &backends.suggest {
                    let written = target.client.write(page.clone()).await;
                    written.map_err(|e| ShellError::backend("suggest", &target.id, e))?;
                }
            }
            checkpoint.points += page.len() as u64;
            written += page.len() as u64;
            checkpoint.save_scan(&scan, checkpoint_path)?;
            pace(started, written, args.rate).await;
        }
        scan.finish();
        Checkpoint::remove(checkpoint_path);
        shell.out.line(&json!({
            "backend": source.id,
            "series": checkpoint.series,
            "written": checkpoint.points,
            "dryRun": args.dry_run,
            "resumed": resumed,
        }))?;
    }
    Ok(())
}
