//! `check-data`: each backend's offline data check (the optional plugin
//! entry point of `heroic_plugin_api::check`), run without creating the
//! backends, so nothing is opened for writing, recovered or locked: it can
//! run next to a node using the same data.
//!
//! One JSON line per finding, then one per backend with what was checked.
//! The exit status is 1 when any damage was found.

use serde_json::json;

use super::error::ShellError;
use super::output::Output;
use crate::config::Config;
use crate::plugins::PluginRegistry;

pub fn check_data(config: &Config, out: &Output) -> Result<(), ShellError> {
    let mut registry = PluginRegistry::new(config.plugins.dirs.clone());
    let mut damaged = Vec::new();
    for (role, list) in [("metrics", &config.metrics), ("metadata", &config.metadata), ("suggest", &config.suggest)] {
        for component in list {
            let id = component.id();
            let plugin = registry.load(&component.plugin)?;
            let check = heroic_plugin_api::loader::find_data_check(&component.plugin, &plugin.path)
                .map_err(|e| ShellError::Setup(e.into()))?;
            let Some(check) = check else {
                out.line(&json!({"role": role, "id": id, "plugin": component.plugin,
                    "checked": null, "message": "this plugin offers no data check"}))?;
                continue;
            };
            let config_json = serde_json::to_string(&component.config).expect("a TOML table is valid JSON");
            let report = check(role.into(), config_json.as_str().into())
                .into_result()
                .map_err(|e| ShellError::backend(role, id, e))?;
            for f in report.findings.iter() {
                out.line(&json!({
                    "role": role,
                    "id": id,
                    "damage": f.damage,
                    "path": f.path.as_str(),
                    "offset": f.offset,
                    "bytes": f.bytes,
                    "message": f.message.as_str(),
                }))?;
            }
            let damage = report.findings.iter().filter(|f| f.damage).count();
            out.line(&json!({
                "role": role,
                "id": id,
                "plugin": component.plugin,
                "checked": report.checked.as_str(),
                "damage": damage,
                "remarks": report.findings.len() - damage,
            }))?;
            if damage > 0 {
                damaged.push(format!("{role} backend {id:?}: {damage} finding(s)"));
            }
        }
    }
    if damaged.is_empty() {
        return Ok(());
    }
    Err(ShellError::Damaged(damaged.join("; ")))
}
