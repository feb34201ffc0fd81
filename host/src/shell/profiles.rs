//! Built-in profiles (`-P name`): backends the shell adds to its config
//! without a config file, set with `-X scope.key=value`.
//!
//! A parameter's scope is the profile's name or its shared scope
//! (`elasticsearch` sets both Elasticsearch profiles). After the scope, a
//! role name (`metrics.`, `metadata.`, `suggest.`) narrows it to one
//! backend of the profile; dots after that are nested tables
//! (`-X elasticsearch.index.type=single`). The value is read as a TOML value
//! when it is one (`1000`, `true`, `["a", "b"]`, `{type = "json"}`) and as a
//! string otherwise. The plugin checks every key, so a misspelt one is
//! refused with the plugin's own message.

use std::path::PathBuf;

use crate::config::{ComponentConfig, Config};
use crate::plugins::Role;
use crate::shell::ShellError;

/// A built-in profile.
pub struct Profile {
    pub name: &'static str,
    /// Prefixes of its `-X` keys besides its name (Heroic's scope, and the
    /// older ones Heroic's documentation still shows, such as `datastax.`).
    pub scopes: &'static [&'static str],
    pub plugin: &'static str,
    pub roles: &'static [Role],
    pub description: &'static str,
    /// Keys holding a list, for which `a,b` means `["a", "b"]`.
    list_keys: &'static [&'static str],
    /// Friendlier names for plugin keys.
    aliases: &'static [(&'static str, &'static str)],
    /// Heroic's own parameters that are not plugin keys as they stand:
    /// the key and value `-X` sets instead, if the parameter is one.
    heroic_param: fn(&str, &str) -> Option<(&'static str, toml::Value)>,
}

pub const PROFILES: &[Profile] = &[
    Profile {
        name: "local",
        scopes: &[],
        plugin: "local",
        roles: &[Role::Metrics, Role::Metadata, Role::Suggest],
        description: "metrics, metadata and suggest on local disk; -X local.data_dir=DIR (default ./data, as examples/local.toml)",
        list_keys: &[],
        aliases: &[],
        heroic_param: no_heroic_param,
    },
    Profile {
        name: "bigtable",
        scopes: &[],
        plugin: "bigtable",
        roles: &[Role::Metrics],
        description: "metrics on Bigtable; -X bigtable.project=P -X bigtable.instance=I [-X bigtable.credentials=default|compute-engine|json -X bigtable.json=FILE] [-X bigtable.emulatorEndpoint=HOST:PORT] [-X bigtable.configure]",
        list_keys: &["extraFamilies"],
        aliases: &[],
        heroic_param: bigtable_credentials,
    },
    Profile {
        name: "cassandra",
        scopes: &["datastax"],
        plugin: "cassandra",
        roles: &[Role::Metrics],
        description: "metrics on Cassandra/ScyllaDB; -X cassandra.seeds=HOST[:PORT][,…] [-X cassandra.keyspace=K] [-X cassandra.configure] (or datastax.)",
        list_keys: &["seeds"],
        aliases: &[],
        heroic_param: no_heroic_param,
    },
    elasticsearch("elasticsearch-metadata", &[Role::Metadata], "metadata on Elasticsearch; -X elasticsearch.seeds=URL[,URL…] (or .url)"),
    elasticsearch("elasticsearch-suggest", &[Role::Suggest], "suggest on Elasticsearch; -X elasticsearch.seeds=URL[,URL…] (or .url)"),
];

/// An Elasticsearch profile: both share the `elasticsearch` scope, so one
/// `-X elasticsearch.url=…` sets the two.
const fn elasticsearch(name: &'static str, roles: &'static [Role], description: &'static str) -> Profile {
    Profile {
        name,
        scopes: &["elasticsearch"],
        plugin: "elasticsearch",
        roles,
        description,
        list_keys: &["seeds"],
        aliases: &[("url", "seeds")],
        heroic_param: no_heroic_param,
    }
}

/// `local`'s data directory when none is given: where examples/local.toml keeps it.
const LOCAL_DEFAULT_DATA_DIR: &str = "./data";

/// The profiles and what they provide, for `--help`.
pub fn help() -> String {
    let lines: Vec<String> = PROFILES.iter().map(|p| format!("  {:<24}{}", p.name, p.description)).collect();
    format!("Profiles (-P):\n{}", lines.join("\n"))
}

fn profile_names() -> String {
    PROFILES.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

pub fn find_profile(name: &str) -> Result<&'static Profile, ShellError> {
    PROFILES
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ShellError::usage(format!("unknown profile {name:?}; available profiles: {}", profile_names())))
}

/// `-X` text as error messages show it: the value of a key that looks
/// secret (`cassandra.authentication.password=…`) is not echoed, since
/// error output ends up in terminals' scrollback and CI logs.
fn shown(text: &str) -> String {
    match text.split_once('=') {
        Some((key, _)) if heroic_plugin_api::sdk::secret::is_secret_key(key) => {
            format!("{key}={}", heroic_plugin_api::sdk::secret::REDACTED)
        }
        _ => text.to_string(),
    }
}

/// One `-X scope.key=value`, split.
struct Param<'a> {
    text: &'a str,
    scope: &'a str,
    path: &'a str,
    value: &'a str,
}

/// Splits `scope.key=value`; a bare `scope.key` is a flag set to `true`,
/// as in Heroic (`-X bigtable.configure`).
fn split_param(text: &str) -> Result<Param<'_>, ShellError> {
    let (key, value) = text.split_once('=').unwrap_or((text, "true"));
    let (scope, path) = key.split_once('.').filter(|(s, p)| !s.is_empty() && !p.is_empty()).ok_or_else(|| {
        ShellError::usage(format!(
            "-X {text}: expected scope.key=value or scope.flag, e.g. local.data_dir=/var/lib/heroic"
        ))
    })?;
    Ok(Param { text, scope, path, value })
}

/// For profiles whose keys are all the plugin's.
fn no_heroic_param(_: &str, _: &str) -> Option<(&'static str, toml::Value)> {
    None
}

/// Heroic's Bigtable profile names credentials by a word and gives their
/// file in a key of its own; the plugin takes a `credentials` table.
fn bigtable_credentials(path: &str, value: &str) -> Option<(&'static str, toml::Value)> {
    match path {
        // Heroic reads `credential` although it documents `credentials`.
        "credentials" | "credential" if !value.trim_start().starts_with('{') => {
            Some(("credentials.type", toml::Value::String(value.to_string())))
        }
        "json" | "keyFile" => Some(("credentials.path", toml::Value::String(value.to_string()))),
        _ => None,
    }
}

/// A `-X` value: TOML when it parses as one, else the text itself.
fn parse_value(text: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {text}")).ok().and_then(|mut t| t.remove("v")) {
        // Dates would reach the plugin as TOML's private datetime struct.
        Some(toml::Value::Datetime(_)) | None => toml::Value::String(text.to_string()),
        Some(value) => value,
    }
}

/// Sets `path` (dotted) in `table`, creating nested tables on the way.
fn set_path(table: &mut toml::Table, path: &str, value: toml::Value, param: &str) -> Result<(), ShellError> {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().expect("split yields one part at least");
    let mut current = table;
    for part in parts {
        let entry = current.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| ShellError::usage(format!("-X {param}: {part:?} is already set to a value, not a table")))?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

/// The directory of a role under the `local` profile's data directory, as
/// in examples/local.toml: suggest shares the metadata registry.
fn local_subdir(role: Role) -> &'static str {
    match role {
        Role::Suggest => Role::Metadata.name(),
        _ => role.name(),
    }
}

impl Profile {
    fn component(&self, role: Role) -> ComponentConfig {
        let mut config = toml::Table::new();
        if self.name == "local" {
            let dir = PathBuf::from(LOCAL_DEFAULT_DATA_DIR).join(local_subdir(role));
            config.insert("data_dir".into(), toml::Value::String(dir.display().to_string()));
        }
        ComponentConfig {
            id: Some(self.name.to_string()),
            plugin: self.plugin.to_string(),
            configure: false,
            config,
            schema: None,
        }
    }

    fn matches(&self, scope: &str) -> bool {
        scope == self.name || self.scopes.contains(&scope)
    }

    /// Applies one parameter to this profile's components of `config`.
    fn apply(&self, param: &Param, config: &mut Config) -> Result<(), ShellError> {
        // `metrics.flush_points` narrows the parameter to one role.
        let (roles, path) = match param.path.split_once('.') {
            Some((role, rest)) if self.roles.iter().any(|r| r.name() == role) => {
                (self.roles.iter().filter(|r| r.name() == role).copied().collect::<Vec<_>>(), rest)
            }
            _ => (self.roles.to_vec(), param.path),
        };
        let path = self.aliases.iter().find(|(alias, _)| *alias == path).map_or(path, |(_, key)| *key);
        for role in roles {
            let component = components_mut(config, role)
                .iter_mut()
                .find(|c| c.id.as_deref() == Some(self.name))
                .expect("the profile's components were added before its parameters");
            if path == "configure" {
                // Heroic's `-X bigtable.configure`: the backend's configure
                // step at start, not a key of the plugin's config.
                component.configure = match parse_value(param.value) {
                    toml::Value::Boolean(b) => b,
                    _ => {
                        return Err(ShellError::usage(format!("-X {}: configure is true or false", shown(param.text))))
                    }
                };
                continue;
            }
            if let Some((key, value)) = (self.heroic_param)(path, param.value) {
                set_path(&mut component.config, key, value, &shown(param.text))?;
                continue;
            }
            let value = if self.name == "local" && path == "data_dir" && param.path == "data_dir" {
                // The profile's one directory holds a directory per role.
                toml::Value::String(PathBuf::from(param.value).join(local_subdir(role)).display().to_string())
            } else if self.list_keys.contains(&path) && !param.value.trim_start().starts_with('[') {
                toml::Value::Array(param.value.split(',').map(|s| toml::Value::String(s.trim().to_string())).collect())
            } else {
                parse_value(param.value)
            };
            set_path(&mut component.config, path, value, &shown(param.text))?;
        }
        Ok(())
    }
}

fn components_mut(config: &mut Config, role: Role) -> &mut Vec<ComponentConfig> {
    match role {
        Role::Metrics => &mut config.metrics,
        Role::Metadata => &mut config.metadata,
        Role::Suggest => &mut config.suggest,
        Role::Consumer => &mut config.consumers,
    }
}

/// Adds the components of `profiles` to `config`, then applies `params`.
pub fn apply_profiles(config: &mut Config, profiles: &[String], params: &[String]) -> Result<(), ShellError> {
    let mut selected: Vec<&Profile> = Vec::new();
    for name in profiles {
        let profile = find_profile(name)?;
        if selected.iter().any(|p| p.name == profile.name) {
            continue;
        }
        for &role in profile.roles {
            let components = components_mut(config, role);
            if components.iter().any(|c| c.id() == profile.name) {
                return Err(ShellError::usage(format!(
                    "profile {:?}: the config already has a {} backend with id {:?}",
                    profile.name,
                    role.name(),
                    profile.name
                )));
            }
            components.push(profile.component(role));
        }
        selected.push(profile);
    }
    for text in params {
        let param = split_param(text)?;
        let targets: Vec<&&Profile> = selected.iter().filter(|p| p.matches(param.scope)).collect();
        if targets.is_empty() {
            let known: Vec<&str> = PROFILES.iter().filter(|p| p.matches(param.scope)).map(|p| p.name).collect();
            let text = shown(text);
            return Err(ShellError::usage(if known.is_empty() {
                format!("-X {text}: no profile is called {:?}; available profiles: {}", param.scope, profile_names())
            } else {
                format!("-X {text}: profile {} is not selected (add -P {})", known.join(" or "), known[0])
            }));
        }
        for profile in targets {
            profile.apply(&param, config)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(profiles: &[&str], params: &[&str]) -> Result<Config, ShellError> {
        let mut config = Config::default();
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        apply_profiles(&mut config, &owned(profiles), &owned(params)).map(|()| config)
    }

    #[test]
    fn local_profile_puts_each_role_under_the_data_dir() {
        let config = build(&["local"], &["local.data_dir=/tmp/h", "local.metrics.flush_points=10"]).unwrap();
        assert_eq!(config.metrics[0].config["data_dir"].as_str(), Some("/tmp/h/metrics"));
        assert_eq!(config.metadata[0].config["data_dir"].as_str(), Some("/tmp/h/metadata"));
        assert_eq!(
            config.suggest[0].config["data_dir"].as_str(),
            Some("/tmp/h/metadata"),
            "shared, as examples/local.toml"
        );
        assert_eq!(config.metrics[0].config["flush_points"].as_integer(), Some(10));
        assert!(!config.metadata[0].config.contains_key("flush_points"));
    }

    #[test]
    fn cassandra_seeds_split_on_commas() {
        let config = build(&["cassandra"], &["cassandra.seeds=10.0.0.1,10.0.0.2:9043"]).unwrap();
        let seeds = &config.metrics[0].config["seeds"];
        assert_eq!(*seeds, toml::Value::Array(vec!["10.0.0.1".into(), "10.0.0.2:9043".into()]));
        assert_eq!(config.metrics[0].plugin, "cassandra");
    }

    #[test]
    fn values_are_toml_when_they_parse_and_lists_split_on_commas() {
        let config = build(
            &["bigtable", "elasticsearch-metadata", "elasticsearch-suggest"],
            &[
                "bigtable.emulatorEndpoint=127.0.0.1:8086",
                "bigtable.maxRetries=3",
                "elasticsearch.url=http://a:9200,http://b:9200",
                "elasticsearch-suggest.index={type = \"single\", name = \"s\"}",
            ],
        )
        .unwrap();
        let bigtable = &config.metrics[0].config;
        assert_eq!(bigtable["emulatorEndpoint"].as_str(), Some("127.0.0.1:8086"));
        assert_eq!(bigtable["maxRetries"].as_integer(), Some(3));
        for es in [&config.metadata[0].config, &config.suggest[0].config] {
            assert_eq!(es["seeds"], toml::Value::Array(vec!["http://a:9200".into(), "http://b:9200".into()]));
        }
        assert_eq!(config.suggest[0].config["index"]["name"].as_str(), Some("s"));
        assert!(!config.metadata[0].config.contains_key("index"));
    }

    #[test]
    fn unknown_or_unselected_profiles_are_refused_with_the_list() {
        let e = build(&["memory"], &[]).unwrap_err().to_string();
        assert!(e.contains("unknown profile \"memory\"") && e.contains("local, bigtable, cassandra"), "{e}");
        let e = build(&["local"], &["bigtable.project=p"]).unwrap_err().to_string();
        assert!(e.contains("not selected (add -P bigtable)"), "{e}");
        let e = build(&["local"], &["nosuch.key=1"]).unwrap_err().to_string();
        assert!(e.contains("no profile is called \"nosuch\""), "{e}");
        let e = build(&["local"], &["local"]).unwrap_err().to_string();
        assert!(e.contains("expected scope.key=value or scope.flag"), "{e}");
    }

    /// The lines of Heroic's getting-started guide, verbatim.
    #[test]
    fn heroic_flag_forms() {
        let config = build(
            &["bigtable"],
            &["bigtable.project=p", "bigtable.instance=i", "bigtable.credentials=default", "bigtable.configure"],
        )
        .unwrap();
        let bigtable = &config.metrics[0];
        assert!(bigtable.configure, "a bare flag is true");
        assert_eq!(bigtable.config["credentials"]["type"].as_str(), Some("default"));
        assert!(!bigtable.config.contains_key("configure"));

        let config = build(&["bigtable"], &["bigtable.credentials=json", "bigtable.json=/k.json"]).unwrap();
        let credentials = &config.metrics[0].config["credentials"];
        assert_eq!((credentials["type"].as_str(), credentials["path"].as_str()), (Some("json"), Some("/k.json")));

        let config = build(&["cassandra"], &["cassandra.seeds=a,b", "datastax.configure"]).unwrap();
        assert!(config.metrics[0].configure, "datastax. is the cassandra profile's scope");
        assert_eq!(config.metrics[0].config["seeds"], toml::Value::Array(vec!["a".into(), "b".into()]));

        let config = build(
            &["elasticsearch-suggest", "elasticsearch-metadata"],
            &["elasticsearch.seeds=http://127.0.0.1:9200", "elasticsearch.configure=false"],
        )
        .unwrap();
        assert!(!config.metadata[0].configure && !config.suggest[0].configure);
        let e = build(&["bigtable"], &["bigtable.configure=maybe"]).unwrap_err().to_string();
        assert!(e.contains("configure is true or false"), "{e}");
    }

    #[test]
    fn errors_do_not_echo_secret_values() {
        let e = build(&["local"], &["cassandra.authentication.password=hunter2"]).unwrap_err().to_string();
        assert!(
            e.contains("-X cassandra.authentication.password=<redacted>: profile cassandra is not selected"),
            "{e}"
        );
        let e = build(&["local"], &["nosuch.basic_auth.password=hunter2"]).unwrap_err().to_string();
        assert!(!e.contains("hunter2") && e.contains("no profile is called"), "{e}");
        let e = build(&["cassandra"], &["cassandra.authentication=x", "cassandra.authentication.password=hunter2"])
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2") && e.contains("already set to a value"), "{e}");
        // Other values are still shown: they help find the mistake.
        let e = build(&["local"], &["bigtable.project=my-project"]).unwrap_err().to_string();
        assert!(e.contains("-X bigtable.project=my-project"), "{e}");
    }
}
