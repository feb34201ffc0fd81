//! `configure`, `backends` and `statistics`: one line per backend.

use std::collections::BTreeMap;

use heroic_plugin_api::types::{Health, Statistic};
use heroic_plugin_api::PluginResult;
use serde_json::json;

use crate::shell::endpoint::Endpoint;
use crate::shell::{Shell, ShellError};

/// The calls every backend answers, whatever its role.
enum AnyBackend<'a> {
    Metrics(&'a heroic_plugin_api::client::MetricBackendClient),
    Metadata(&'a heroic_plugin_api::client::MetadataBackendClient),
    Suggest(&'a heroic_plugin_api::client::SuggestBackendClient),
}

impl AnyBackend<'_> {
    async fn configure(&self) -> PluginResult<()> {
        match self {
            AnyBackend::Metrics(c) => c.configure().await,
            AnyBackend::Metadata(c) => c.configure().await,
            AnyBackend::Suggest(c) => c.configure().await,
        }
    }

    fn health(&self) -> Health {
        match self {
            AnyBackend::Metrics(c) => c.health(),
            AnyBackend::Metadata(c) => c.health(),
            AnyBackend::Suggest(c) => c.health(),
        }
    }

    fn statistics(&self) -> Vec<Statistic> {
        match self {
            AnyBackend::Metrics(c) => c.statistics(),
            AnyBackend::Metadata(c) => c.statistics(),
            AnyBackend::Suggest(c) => c.statistics(),
        }
    }
}

/// Every backend with its role and id, in config order.
fn all_backends(shell: &Shell) -> Result<Vec<(&'static str, &str, AnyBackend<'_>)>, ShellError> {
    let b = &shell.node()?.backends;
    let metrics = b.metrics.iter().map(|n| ("metrics", n.id.as_str(), AnyBackend::Metrics(&n.client)));
    let metadata = b.metadata.iter().map(|n| ("metadata", n.id.as_str(), AnyBackend::Metadata(&n.client)));
    let suggest = b.suggest.iter().map(|n| ("suggest", n.id.as_str(), AnyBackend::Suggest(&n.client)));
    Ok(metrics.chain(metadata).chain(suggest).collect())
}

/// `configure`: creates what every backend needs (tables, indices …). A
/// failing backend does not stop the others; the task fails at the end.
pub async fn configure(shell: &Shell) -> Result<(), ShellError> {
    let mut failures = Vec::new();
    for (role, id, backend) in all_backends(shell)? {
        tracing::info!(role, id, "configuring backend");
        match backend.configure().await {
            Ok(()) => shell.out.line(&json!({"role": role, "id": id, "configured": true}))?,
            Err(e) => {
                let error = ShellError::backend(role, id, e).to_string();
                shell.out.line(&json!({"role": role, "id": id, "configured": false, "error": error}))?;
                failures.push(error);
            }
        }
    }
    match failures.first() {
        None => Ok(()),
        Some(first) => Err(ShellError::Partial { count: failures.len(), first: first.clone() }),
    }
}

/// `backends`: role, id, plugin and health of each backend. Under
/// `--connect`, the node's backends and consumers as `GET /status` lists
/// them (without the plugin, which the endpoint does not name).
pub async fn backends(shell: &Shell) -> Result<(), ShellError> {
    if shell.remote().is_some() {
        let status = shell.call(Endpoint::Status, b"").await?;
        let components = status.value.get("components").and_then(|c| c.as_array()).cloned().unwrap_or_default();
        for c in components {
            shell.out.line(&json!({
                "role": c["role"],
                "id": c["id"],
                "health": {"ok": c["ok"], "ready": c["ready"], "message": c.get("message").cloned().unwrap_or("".into())},
            }))?;
        }
        return Ok(());
    }
    for (role, id, backend) in all_backends(shell)? {
        let plugin = shell.origins.iter().find(|o| o.role == role && o.id == id).map(|o| o.plugin.as_str());
        let health = backend.health();
        shell.out.line(&json!({
            "role": role,
            "id": id,
            "plugin": plugin,
            "health": {"ok": health.ok, "ready": health.ready, "message": health.message.as_str()},
        }))?;
    }
    Ok(())
}

/// `statistics`: the figures each backend reports (series, bytes, calls …).
pub fn statistics(shell: &Shell) -> Result<(), ShellError> {
    for (role, id, backend) in all_backends(shell)? {
        let figures: BTreeMap<String, f64> =
            backend.statistics().into_iter().map(|s| (s.name.into_string(), s.value)).collect();
        shell.out.line(&json!({"role": role, "id": id, "statistics": figures}))?;
    }
    Ok(())
}
