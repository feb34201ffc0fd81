//! The optional offline data check behind `heroic-shell check-data`.
//!
//! A plugin may export one more entry point, [`CHECK_SYMBOL`], that looks at
//! what a backend config points at (files, tables …) and reports damage
//! *without changing anything*, while the node may still be running on it.
//! It is found by symbol name, outside the root module: a plugin without it
//! loads and works as before, and adding it needed no interface version.
//! The symbol's name carries the version of its signature (`_v1`); a new
//! signature gets a new name.
//!
//! Plugins export it with [`export_data_check!`](crate::export_data_check),
//! which runs the check inside a panic guard; the host finds it with
//! [`crate::loader::find_data_check`].

use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::std_types::{RResult, RStr, RString, RVec};
use abi_stable::StableAbi;

use crate::error::{ErrorKind, PluginError};

/// The exported symbol's name.
pub const CHECK_SYMBOL: &str = "heroic_check_data_v1";

/// The entry point: the backend's role (`metrics`, `metadata`, `suggest`)
/// and its config table as JSON.
pub type CheckFn = extern "C" fn(role: RStr<'_>, config_json: RStr<'_>) -> RResult<CheckReport, PluginError>;

/// What a check found.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default, PartialEq)]
pub struct CheckReport {
    /// What was looked at, in a few words ("series.log, 3 wal files, 2
    /// segments (1,204 blocks)").
    pub checked: RString,
    pub findings: RVec<CheckFinding>,
}

impl CheckReport {
    /// Whether any finding is damage (not only a remark).
    pub fn damaged(&self) -> bool {
        self.findings.iter().any(|f| f.damage)
    }
}

/// One thing found: damage (data lost or unreadable) or a remark.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, Default, PartialEq)]
pub struct CheckFinding {
    /// Data is lost or unreadable here (else: a remark, e.g. a leftover
    /// temporary file).
    pub damage: bool,
    /// The file (or table …) concerned.
    pub path: RString,
    /// Where in it, and how many bytes are concerned (0 when not known).
    pub offset: u64,
    pub bytes: u64,
    pub message: RString,
}

/// Runs a plugin's check inside the panic guard; used by
/// [`export_data_check!`](crate::export_data_check).
#[doc(hidden)]
pub fn __run(
    role: RStr<'_>,
    config_json: RStr<'_>,
    check: fn(&str, serde_json::Value) -> Result<CheckReport, PluginError>,
) -> RResult<CheckReport, PluginError> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let config = serde_json::from_str(config_json.as_str())
            .map_err(|e| PluginError::config(format_args!("the backend config is not valid JSON: {e}")))?;
        check(role.as_str(), config)
    }));
    match outcome {
        Ok(result) => result.into(),
        Err(_) => RResult::RErr(PluginError::new(ErrorKind::PANIC, "the data check panicked")),
    }
}

/// Exports `check: fn(role: &str, config: serde_json::Value) ->
/// Result<CheckReport, PluginError>` as the plugin's data check.
#[macro_export]
macro_rules! export_data_check {
    ($check:path) => {
        #[no_mangle]
        pub extern "C" fn heroic_check_data_v1(
            role: $crate::abi_stable::std_types::RStr<'_>,
            config_json: $crate::abi_stable::std_types::RStr<'_>,
        ) -> $crate::abi_stable::std_types::RResult<$crate::check::CheckReport, $crate::PluginError> {
            $crate::check::__run(role, config_json, $check)
        }
    };
}
