//! `metadata-load`: rebuilds the metadata and suggest backends from the
//! series a metric backend stores (Heroic's task of that name), for a lost
//! or newly added Elasticsearch index, say. The series are read with the
//! metric backend's own listing (as `keys` reads them), a page at a time,
//! and each page is written to every metadata and suggest backend.

use std::time::Instant;

use clap::Args;
use serde_json::json;

use crate::shell::keys::{ScanArgs, SeriesScan};
use crate::shell::migrate::pace;
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
    #[command(flatten)]
    pub scan: ScanArgs,
}

/// `metadata-load`: one line per metric backend read,
/// `{backend, series, written, dryRun}`.
pub async fn metadata_load(shell: &Shell, args: &MetadataLoadArgs) -> Result<(), ShellError> {
    let backends = &shell.node()?.backends;
    if backends.metadata.is_empty() && (args.no_suggest || backends.suggest.is_empty()) {
        return Err(ShellError::usage(
            "metadata-load needs a metadata or suggest backend to load, and none is configured",
        ));
    }
    let started = Instant::now();
    let mut written = 0u64;
    for source in shell.metric_backends(args.scan.backend.as_deref())? {
        let mut scan =
            SeriesScan::new(shell, source, "metadata-load", args.filter.as_deref(), None, args.scan.page_size)?;
        let mut from_source = 0u64;
        while let Some(page) = scan.next_page().await? {
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
            from_source += page.len() as u64;
            written += page.len() as u64;
            pace(started, written, args.rate).await;
        }
        scan.finish();
        shell.out.line(&json!({
            "backend": source.id,
            "series": scan.matched(),
            "written": from_source,
            "dryRun": args.dry_run,
        }))?;
    }
    Ok(())
}
