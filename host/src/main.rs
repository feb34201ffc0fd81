//! `heroic --config FILE`: starts a node.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use heroic::config::Config;
use heroic::node::Node;

#[derive(Parser)]
#[command(name = "heroic", version, about = "Heroic-compatible time-series database")]
struct Args {
    /// The node's TOML config file.
    #[arg(long, short = 'c')]
    config: PathBuf,
}

fn main() {
    let args = Args::parse();
    heroic::logging::init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let result = runtime.block_on(run(args));
    // Plugins own threads of their own; do not wait for them at exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let Err(e) = result {
        // `{:#}` prints the whole chain of causes on one line.
        tracing::error!("{e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::from_file(&args.config)?;
    let listen = config.server.listen;
    let drain_timeout = Duration::from_secs(config.server.shutdown_timeout_secs);
    let node = Node::start(config).await.context("cannot start the node")?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(address = %listen, id = %node.id, "listening");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(heroic::http::serve(node.clone(), listener, async {
        let _ = stop_rx.await;
    }));
    shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    node.mark_stopping();
    let _ = stop_tx.send(());
    if tokio::time::timeout(drain_timeout, server).await.is_err() {
        tracing::warn!(timeout_secs = drain_timeout.as_secs(), "requests still running after the drain timeout");
    }
    node.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
