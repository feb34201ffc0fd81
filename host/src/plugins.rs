//! Loading plugin libraries and creating the components named in the config.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use abi_stable::std_types::RString;
use heroic_plugin_api::client::*;
use heroic_plugin_api::ffi::{HostContext, PluginKinds};
use heroic_plugin_api::loader::{find_plugin, load_plugin, LoadError, LoadedPlugin};
use heroic_plugin_api::PluginError;

use crate::config::ComponentConfig;
use crate::telemetry::calls::PluginCalls;

#[derive(Debug, thiserror::Error)]
pub enum PluginSetupError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("plugin {plugin:?} ({path}) provides no {role} backend; it provides: {provided}")]
    WrongKind { plugin: String, path: PathBuf, role: &'static str, provided: String },
    #[error("{role} {id:?} (plugin {plugin:?}): {error}")]
    Create { role: &'static str, id: String, plugin: String, error: PluginError },
    /// A setting the node checks as it starts (an environment variable that
    /// plugins read, a token file …) is invalid.
    #[error("{0}")]
    Environment(String),
}

/// The roles a component can play, with the names used in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Metrics,
    Metadata,
    Suggest,
    Consumer,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Metrics => "metrics",
            Role::Metadata => "metadata",
            Role::Suggest => "suggest",
            Role::Consumer => "consumer",
        }
    }

    fn kind_bit(self) -> u32 {
        match self {
            Role::Metrics => PluginKinds::METRIC,
            Role::Metadata => PluginKinds::METADATA,
            Role::Suggest => PluginKinds::SUGGEST,
            Role::Consumer => PluginKinds::CONSUMER,
        }
    }
}

/// Loads each plugin library once and hands out its components.
pub struct PluginRegistry {
    dirs: Vec<PathBuf>,
    loaded: HashMap<String, LoadedPlugin>,
    /// Where the clients created count their calls, if anywhere.
    calls: Option<PluginCalls>,
}

impl PluginRegistry {
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        PluginRegistry { dirs, loaded: HashMap::new(), calls: None }
    }

    /// Every client created from now on counts its calls in `calls`.
    pub fn observed_by(mut self, calls: PluginCalls) -> Self {
        self.calls = Some(calls);
        self
    }

    fn observer(&self, c: &ComponentConfig, role: Role) -> Option<Arc<dyn CallObserver>> {
        self.calls.as_ref().map(|calls| calls.observer(role.name(), c.id(), &c.plugin))
    }

    /// Loads (once) the library of plugin `name` and initialises its logging.
    pub fn load(&mut self, name: &str) -> Result<&LoadedPlugin, PluginSetupError> {
        if !self.loaded.contains_key(name) {
            // Checked here, before any plugin reads it, so that a bad value
            // stops the node with a message instead of inside a plugin.
            heroic_plugin_api::sdk::runtime::configured_threads()
                .map_err(|e| PluginSetupError::Environment(format!("invalid environment: {e}")))?;
            let path = find_plugin(name, &self.dirs)?;
            let plugin = load_plugin(name, &path)?;
            (plugin.module.init())(HostContext {
                log: crate::logging::plugin_log,
                max_level: crate::logging::max_level(),
            });
            tracing::info!(
                plugin = name,
                version = %plugin.info.version,
                interface = %plugin.api_version,
                path = %path.display(),
                provides = ?plugin.info.kinds.names(),
                "plugin loaded"
            );
            self.loaded.insert(name.to_string(), plugin);
        }
        Ok(&self.loaded[name])
    }

    fn checked(
        &mut self,
        component: &ComponentConfig,
        role: Role,
    ) -> Result<(LoadedPlugin, RString), PluginSetupError> {
        let plugin = self.load(&component.plugin)?.clone();
        if !plugin.info.kinds.has(role.kind_bit()) {
            return Err(PluginSetupError::WrongKind {
                plugin: component.plugin.clone(),
                path: plugin.path.clone(),
                role: role.name(),
                provided: plugin.info.kinds.names().join(", "),
            });
        }
        let json = serde_json::to_string(&component.config).expect("a TOML table is valid JSON");
        Ok((plugin, json.into()))
    }

    fn create_error(component: &ComponentConfig, role: Role, error: PluginError) -> PluginSetupError {
        PluginSetupError::Create {
            role: role.name(),
            id: component.id().to_string(),
            plugin: component.plugin.clone(),
            error,
        }
    }

    pub async fn metric_backend(&mut self, c: &ComponentConfig) -> Result<MetricBackendClient, PluginSetupError> {
        let (plugin, json) = self.checked(c, Role::Metrics)?;
        let created = (plugin.module.create_metric_backend())(json).await.into_result();
        let client = created.map(MetricBackendClient::new).map_err(|e| Self::create_error(c, Role::Metrics, e))?;
        let client = client.observed_by(self.observer(c, Role::Metrics));
        // A plugin built against interface 1.0 has no capabilities() and
        // answers the interface's default here.
        tracing::info!(id = c.id(), plugin = %c.plugin, capabilities = ?client.capabilities().names(), "metric backend created");
        Ok(client)
    }

    pub async fn metadata_backend(&mut self, c: &ComponentConfig) -> Result<MetadataBackendClient, PluginSetupError> {
        let (plugin, json) = self.checked(c, Role::Metadata)?;
        let created = (plugin.module.create_metadata_backend())(json).await.into_result();
        let client = created.map(MetadataBackendClient::new).map_err(|e| Self::create_error(c, Role::Metadata, e))?;
        let client = client.observed_by(self.observer(c, Role::Metadata));
        tracing::info!(id = c.id(), plugin = %c.plugin, capabilities = ?client.capabilities().names(), "metadata backend created");
        Ok(client)
    }

    pub async fn suggest_backend(&mut self, c: &ComponentConfig) -> Result<SuggestBackendClient, PluginSetupError> {
        let (plugin, json) = self.checked(c, Role::Suggest)?;
        let created = (plugin.module.create_suggest_backend())(json).await.into_result();
        let client = created.map(SuggestBackendClient::new).map_err(|e| Self::create_error(c, Role::Suggest, e))?;
        Ok(client.observed_by(self.observer(c, Role::Suggest)))
    }

    pub async fn consumer(&mut self, c: &ComponentConfig) -> Result<ConsumerClient, PluginSetupError> {
        let (plugin, json) = self.checked(c, Role::Consumer)?;
        let created = (plugin.module.create_consumer())(json).await.into_result();
        let client = created.map(ConsumerClient::new).map_err(|e| Self::create_error(c, Role::Consumer, e))?;
        Ok(client.observed_by(self.observer(c, Role::Consumer)))
    }
}
