//! Finding and loading plugin libraries.
//!
//! A plugin named `local` is the file `libheroic_plugin_local.so` (or the
//! platform's equivalent) in one of the configured directories. Every
//! failure names the plugin and, where it matters, the file and both API
//! versions, because an operator seeing "layout mismatch" alone cannot act.

use std::path::{Path, PathBuf};

use abi_stable::abi_stability::abi_checking::{check_layout_compatibility_with_globals, CheckingGlobals};
use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::StableAbi;

use crate::ffi::{BuildFlags, PluginInfo, PluginModuleRef, API_VERSION};

const FILE_STEM_PREFIX: &str = "heroic_plugin_";

/// A plugin library loaded and checked against this API.
#[derive(Clone)]
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub info: PluginInfo,
    pub module: PluginModuleRef,
    /// The interface version the plugin was built against (at most the host's).
    pub api_version: String,
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
         but this host has heroic-plugin-api {host_version}{advice}{details}",
        advice = version_advice(plugin_version, host_version)
    )]
    IncompatibleVersion { name: String, path: PathBuf, plugin_version: String, host_version: String, details: String },

    #[error("plugin {name:?} ({path}) is not a heroic plugin library: {reason}")]
    NotAPlugin { name: String, path: PathBuf, reason: String },

    #[error(
        "plugin {name:?} ({path}) was built with `panic = \"abort\"`: a panic in it would abort the whole \
         host; rebuild it with `panic = \"unwind\"` in its Cargo profile"
    )]
    PanicAbort { name: String, path: PathBuf },
}

/// What to do about a version mismatch, for the message.
fn version_advice(plugin: &str, host: &str) -> String {
    let Some(h) = Version::parse(host) else { return String::new() };
    let newer = Version::parse(plugin).is_some_and(|p| p.major == h.major && p.minor > h.minor);
    let upgrade = if newer { "upgrade the host, or " } else { "" };
    format!(
        ", which loads plugins built against {major}.0 to {major}.{minor}: {upgrade}rebuild the plugin against {major}.{minor}",
        major = h.major,
        minor = h.minor
    )
}

/// An interface version, `MAJOR.MINOR.PATCH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    /// Parses `1.2.3` (a pre-release or build suffix is ignored).
    pub fn parse(s: &str) -> Option<Version> {
        let core = s.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        let v = Version { major: parts.next()??, minor: parts.next()??, patch: parts.next().unwrap_or(Some(0))? };
        parts.next().is_none().then_some(v)
    }

    /// The version of the interface this host was built with.
    pub fn host() -> Version {
        Version::parse(API_VERSION).expect("the crate version is a valid version")
    }
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
/// A plugin built against this host's major version and the same or an
/// older minor version loads; anything else is refused with a message
/// naming both versions. Then the layout of every type and trait the plugin
/// shares with the host is checked.
///
/// abi_stable's own check assumes the other direction (a loader built
/// against an *older* interface than its libraries, so it refuses a library
/// with fewer trait methods than the loader knows). For an older plugin we
/// therefore run the layout check with the plugin's layout in the role of
/// the interface: every field and method the plugin has must match the
/// host's, and the ones it lacks (appended in later minor versions) answer
/// their defaults.
///
/// Each library is loaded with `lib_header_from_path` rather than
/// `RootModule::load_from_file`, which caches one library per module type
/// and would silently hand back the first plugin for every later one.
pub fn load_plugin(name: &str, path: &Path) -> Result<LoadedPlugin, LoadError> {
    let header = lib_header_from_path(path).map_err(|e| match e {
        LibraryError::OpenError { .. } => {
            LoadError::Open { name: name.into(), path: path.into(), reason: e.to_string().trim().to_string() }
        }
        other => {
            LoadError::NotAPlugin { name: name.into(), path: path.into(), reason: other.to_string().trim().into() }
        }
    })?;
    let plugin_version = header.version_strings().version.to_string();
    let incompatible = |details: String| LoadError::IncompatibleVersion {
        name: name.into(),
        path: path.into(),
        plugin_version: plugin_version.clone(),
        host_version: API_VERSION.into(),
        details,
    };
    let host = Version::host();
    let plugin = Version::parse(&plugin_version).ok_or_else(|| incompatible(" (not a version number)".into()))?;
    if plugin.major != host.major || plugin.minor > host.minor {
        return Err(incompatible(String::new()));
    }
    let layout_error = |e: LibraryError| match e {
        LibraryError::IncompatibleVersionNumber { .. } | LibraryError::AbiInstability(_) => {
            incompatible(format!(" (layout check: {})", one_line(&e.to_string())))
        }
        other => {
            LoadError::NotAPlugin { name: name.into(), path: path.into(), reason: other.to_string().trim().into() }
        }
    };
    let module = if plugin.minor == host.minor {
        header.init_root_module::<PluginModuleRef>().map_err(layout_error)?
    } else {
        let plugin_layout =
            header.layout().ok_or_else(|| incompatible(" (the library carries no layout to check)".into()))?;
        // With checking state of its own: abi_stable merges what it learns of
        // prefix types into process-wide state that assumes the usual
        // direction, and this reversed pair would make it refuse the next
        // plugin built against the host's own version.
        check_layout_compatibility_with_globals(
            plugin_layout,
            <PluginModuleRef as StableAbi>::LAYOUT,
            &CheckingGlobals::new(),
        )
        .map_err(|e| incompatible(format!(" (layout check: {})", one_line(&e.to_string()))))?;
        // SAFETY: the check above proved that every field and method the
        // plugin's root module has matches the host's layout; the host only
        // reaches the ones the plugin lacks through accessors that see they
        // are missing (defaults, `Option`).
        unsafe { header.init_root_module_with_unchecked_layout::<PluginModuleRef>() }.map_err(layout_error)?
    };
    let info = (module.info())();
    if !info.build.has(BuildFlags::PANIC_UNWIND) {
        return Err(LoadError::PanicAbort { name: name.into(), path: path.into() });
    }
    Ok(LoadedPlugin { path: path.to_path_buf(), info, module, api_version: plugin_version })
}

/// The first lines of a (long, multi-line) layout error, on one line.
fn one_line(message: &str) -> String {
    message.trim().lines().map(str::trim).filter(|l| !l.is_empty()).take(6).collect::<Vec<_>>().join(" ")
}

/// The data check the library at `path` exports (see [`crate::check`]), or
/// `None` when it offers none. The library stays loaded for the life of the
/// process, as plugins do.
pub fn find_data_check(name: &str, path: &Path) -> Result<Option<crate::check::CheckFn>, LoadError> {
    let lib = abi_stable::library::RawLibrary::load_at(path).map_err(|e| LoadError::Open {
        name: name.into(),
        path: path.into(),
        reason: e.to_string().trim().to_string(),
    })?;
    let lib: &'static abi_stable::library::RawLibrary = Box::leak(Box::new(lib));
    let symbol = format!("{}\0", crate::check::CHECK_SYMBOL);
    // SAFETY: the symbol's name carries its signature's version, and
    // `export_data_check!` is the only way the SDK defines it, with exactly
    // `CheckFn`'s signature.
    match unsafe { lib.get::<crate::check::CheckFn>(symbol.as_bytes()) } {
        Ok(f) => Ok(Some(*f)),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(Version::parse("1.2.3"), Some(Version { major: 1, minor: 2, patch: 3 }));
        assert_eq!(Version::parse("1.2"), Some(Version { major: 1, minor: 2, patch: 0 }));
        assert_eq!(Version::parse("1.2.3-rc.1"), Some(Version { major: 1, minor: 2, patch: 3 }));
        assert_eq!(Version::parse("x.2.3"), None);
        assert_eq!(Version::parse("1.2.3.4"), None);
    }

    #[test]
    fn advice_names_the_range_the_host_loads() {
        assert_eq!(
            version_advice("1.5.0", "1.1.0"),
            ", which loads plugins built against 1.0 to 1.1: upgrade the host, or rebuild the plugin against 1.1"
        );
        assert_eq!(
            version_advice("0.1.0", "1.1.0"),
            ", which loads plugins built against 1.0 to 1.1: rebuild the plugin against 1.1"
        );
    }
}
