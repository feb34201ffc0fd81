//! Finding and loading plugin libraries.
//!
//! A plugin named `local` is the file `libheroic_plugin_local.so` (or the
//! platform's equivalent) in one of the configured directories. Every
//! failure names the plugin and, where it matters, the file and both API
//! versions, because an operator seeing "layout mismatch" alone cannot act.

use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError};

use crate::ffi::{PluginInfo, PluginModuleRef, API_VERSION};

const FILE_STEM_PREFIX: &str = "heroic_plugin_";

/// A plugin library loaded and checked against this API.
#[derive(Clone)]
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub info: PluginInfo,
    pub module: PluginModuleRef,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "plugin {name:?} not found: looked for {file_name} in {searched}; plugins found there: {found}",
        searched = display_paths(searched),
        found = if found.is_empty() { "none".to_string() } else { found.join(", ") }
    )]
    NotFound { name: String, file_name: String, searched: Vec<PathBuf>, found: Vec<String> },

    #[error("plugin {name:?} ({path}) could not be opened: {reason}")]
    Open { name: String, path: PathBuf, reason: String },

    #[error(
        "plugin {name:?} ({path}) was built against heroic-plugin-api {plugin_version}, \
         but this host has heroic-plugin-api {host_version}; rebuild the plugin against {host_version}{details}"
    )]
    IncompatibleVersion { name: String, path: PathBuf, plugin_version: String, host_version: String, details: String },

    #[error("plugin {name:?} ({path}) is not a heroic plugin library: {reason}")]
    NotAPlugin { name: String, path: PathBuf, reason: String },
}

fn display_paths(paths: &[PathBuf]) -> String {
    let v: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    if v.is_empty() {
        "no directories".into()
    } else {
        v.join(", ")
    }
}

/// The file name of plugin `name` on this platform.
pub fn library_file_name(name: &str) -> String {
    format!(
        "{}{FILE_STEM_PREFIX}{}{}",
        std::env::consts::DLL_PREFIX,
        name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}

/// Plugin names found in `dirs`, sorted and de-duplicated.
pub fn list_plugins(dirs: &[PathBuf]) -> Vec<String> {
    let prefix = format!("{}{FILE_STEM_PREFIX}", std::env::consts::DLL_PREFIX);
    let suffix = std::env::consts::DLL_SUFFIX;
    let mut names: Vec<String> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            file.strip_prefix(&prefix)?.strip_suffix(suffix).map(str::to_string)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The path of plugin `name`: the first directory of `dirs` that has it.
pub fn find_plugin(name: &str, dirs: &[PathBuf]) -> Result<PathBuf, LoadError> {
    let file_name = library_file_name(name);
    dirs.iter().map(|d| d.join(&file_name)).find(|p| p.is_file()).ok_or_else(|| LoadError::NotFound {
        name: name.to_string(),
        file_name,
        searched: dirs.to_vec(),
        found: list_plugins(dirs),
    })
}

/// Loads the library at `path` and checks it against this API version.
///
/// Each library is loaded with `lib_header_from_path` rather than
/// `RootModule::load_from_file`, which caches one library per module type
/// and would silently hand back the first plugin for every later one.
pub fn load_plugin(name: &str, path: &Path) -> Result<LoadedPlugin, LoadError> {
    let header = lib_header_from_path(path).map_err(|e| match e {
        LibraryError::OpenError { .. } => {
            LoadError::Open { name: name.into(), path: path.into(), reason: e.to_string().trim().to_string() }
        }
        other => LoadError::NotAPlugin { name: name.into(), path: path.into(), reason: other.to_string().trim().into() },
    })?;
    let plugin_version = header.version_strings().version.to_string();
    let module = header.init_root_module::<PluginModuleRef>().map_err(|e| {
        let details = match &e {
            LibraryError::IncompatibleVersionNumber { .. } => String::new(),
            other => format!(" (layout check: {})", other.to_string().trim().lines().take(6).collect::<Vec<_>>().join(" ")),
        };
        match e {
            LibraryError::IncompatibleVersionNumber { .. } | LibraryError::AbiInstability(_) => {
                LoadError::IncompatibleVersion {
                    name: name.into(),
                    path: path.into(),
                    plugin_version: plugin_version.clone(),
                    host_version: API_VERSION.into(),
                    details,
                }
            }
            other => LoadError::NotAPlugin { name: name.into(), path: path.into(), reason: other.to_string().trim().into() },
        }
    })?;
    let info = (module.info())();
    Ok(LoadedPlugin { path: path.to_path_buf(), info, module })
}
