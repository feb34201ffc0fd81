//! Every call into a plugin, by backend and operation: the observer each
//! plugin client is given when it is created.

use std::sync::Arc;
use std::time::Duration;

use heroic_plugin_api::client::CallObserver;
use heroic_plugin_api::PluginError;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Call {
    /// `metrics`, `metadata`, `suggest` or `consumer`.
    role: &'static str,
    /// The component's id in the config.
    id: Arc<str>,
    plugin: Arc<str>,
    /// The plugin interface's method: `fetch`, `write`, `find_series` …
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Failure {
    role: &'static str,
    id: Arc<str>,
    plugin: Arc<str>,
    operation: &'static str,
    /// The error's kind (`unavailable`, `timeout`, `invalid input` …).
    kind: &'static str,
}

/// The families of every plugin's calls.
#[derive(Clone)]
pub struct PluginCalls {
    calls: Family<Call, Counter>,
    errors: Family<Failure, Counter>,
    duration: Family<Call, Histogram, fn() -> Histogram>,
}

impl Default for PluginCalls {
    fn default() -> Self {
        PluginCalls {
            calls: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(super::histograms::latency),
        }
    }
}

impl PluginCalls {
    /// The observer for one component's client.
    pub fn observer(&self, role: &'static str, id: &str, plugin: &str) -> Arc<dyn CallObserver> {
        Arc::new(ComponentCalls { families: self.clone(), role, id: id.into(), plugin: plugin.into() })
    }

    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "heroic_plugin_calls",
            "Calls into plugins that ended, by component and operation",
            self.calls.clone(),
        );
        r.register(
            "heroic_plugin_call_errors",
            "Calls into plugins that ended with an error, by component, operation and error kind",
            self.errors.clone(),
        );
        // No `# UNIT` line on a histogram (see `histograms`).
        r.register(
            "heroic_plugin_call_duration_seconds",
            "Time of a call into a plugin, by component and operation",
            self.duration.clone(),
        );
    }
}

/// One component's calls.
struct ComponentCalls {
    families: PluginCalls,
    role: &'static str,
    id: Arc<str>,
    plugin: Arc<str>,
}

impl CallObserver for ComponentCalls {
    fn observe(&self, operation: &'static str, elapsed: Duration, error: Option<&PluginError>) {
        let call = Call { role: self.role, id: self.id.clone(), plugin: self.plugin.clone(), operation };
        self.families.calls.get_or_create(&call).inc();
        self.families.duration.get_or_create(&call).observe(elapsed.as_secs_f64());
        if let Some(e) = error {
            let Call { role, id, plugin, operation } = call;
            self.families.errors.get_or_create(&Failure { role, id, plugin, operation, kind: e.kind.as_str() }).inc();
        }
    }
}
