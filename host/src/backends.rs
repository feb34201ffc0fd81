//! The backends of a running node, created from the config.

use heroic_plugin_api::client::*;
use heroic_plugin_api::types::Health;
use heroic_plugin_api::PluginError;

use crate::config::{ComponentConfig, Config};
use crate::plugins::{PluginRegistry, PluginSetupError, Role};

/// A component with the id it has in the config.
pub struct Named<T> {
    pub id: String,
    /// The plugin it runs on.
    pub plugin: String,
    pub client: T,
}

/// Every backend of the node, by role.
#[derive(Default)]
pub struct Backends {
    pub metrics: Vec<Named<MetricBackendClient>>,
    pub metadata: Vec<Named<MetadataBackendClient>>,
    pub suggest: Vec<Named<SuggestBackendClient>>,
}

/// Health of one component, for `/status`.
pub struct ComponentHealth {
    pub role: Role,
    pub id: String,
    pub health: Health,
}

async fn configure_if_asked(
    c: &ComponentConfig,
    role: Role,
    configure: impl std::future::Future<Output = Result<(), PluginError>>,
) -> Result<(), PluginSetupError> {
    if c.configure {
        tracing::info!(role = role.name(), id = c.id(), "configuring backend");
        configure.await.map_err(|error| PluginSetupError::Create {
            role: role.name(),
            id: c.id().to_string(),
            plugin: c.plugin.clone(),
            error,
        })?;
    }
    Ok(())
}

impl Backends {
    /// Creates every backend of the config, running `configure` where asked.
    pub async fn start(config: &Config, registry: &mut PluginRegistry) -> Result<Backends, PluginSetupError> {
        let mut backends = Backends::default();
        for c in &config.metrics {
            let client = registry.metric_backend(c).await?;
            configure_if_asked(c, Role::Metrics, client.configure()).await?;
            backends.metrics.push(Named { id: c.id().to_string(), plugin: c.plugin.clone(), client });
        }
        for c in &config.metadata {
            let client = registry.metadata_backend(c).await?;
            configure_if_asked(c, Role::Metadata, client.configure()).await?;
            backends.metadata.push(Named { id: c.id().to_string(), plugin: c.plugin.clone(), client });
        }
        for c in &config.suggest {
            let client = registry.suggest_backend(c).await?;
            configure_if_asked(c, Role::Suggest, client.configure()).await?;
            backends.suggest.push(Named { id: c.id().to_string(), plugin: c.plugin.clone(), client });
        }
        Ok(backends)
    }

    /// One line per backend of `role`, in config order, for `GET /backends`
    /// (Heroic lists each backend's `toString()`: free text).
    pub fn describe(&self, role: Role) -> Vec<String> {
        let line = |plugin: &str, id: &str| format!("{plugin}({} backend, id={id})", role.name());
        match role {
            Role::Metrics => self.metrics.iter().map(|b| line(&b.plugin, &b.id)).collect(),
            Role::Metadata => self.metadata.iter().map(|b| line(&b.plugin, &b.id)).collect(),
            Role::Suggest => self.suggest.iter().map(|b| line(&b.plugin, &b.id)).collect(),
            _ => Vec::new(),
        }
    }

    pub fn health(&self) -> Vec<ComponentHealth> {
        let mut out = Vec::new();
        for b in &self.metrics {
            out.push(ComponentHealth { role: Role::Metrics, id: b.id.clone(), health: b.client.health() });
        }
        for b in &self.metadata {
            out.push(ComponentHealth { role: Role::Metadata, id: b.id.clone(), health: b.client.health() });
        }
        for b in &self.suggest {
            out.push(ComponentHealth { role: Role::Suggest, id: b.id.clone(), health: b.client.health() });
        }
        out
    }

    /// Flushes and closes every backend; errors are logged, not returned,
    /// so that one failing backend does not keep the others from closing.
    pub async fn shutdown(&self) {
        for b in &self.metrics {
            if let Err(e) = b.client.shutdown().await {
                tracing::error!(role = "metrics", id = %b.id, error = %e, "backend shutdown failed");
            }
        }
        for b in &self.metadata {
            if let Err(e) = b.client.shutdown().await {
                tracing::error!(role = "metadata", id = %b.id, error = %e, "backend shutdown failed");
            }
        }
        for b in &self.suggest {
            if let Err(e) = b.client.shutdown().await {
                tracing::error!(role = "suggest", id = %b.id, error = %e, "backend shutdown failed");
            }
        }
    }
}
