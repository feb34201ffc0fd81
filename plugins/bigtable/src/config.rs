//! The plugin's config table. Names follow Heroic's Bigtable module
//! (camelCase) so an existing Heroic config carries over with few edits.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// `[metrics.config]` of a `plugin = "bigtable"` metric backend.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BigtableConfig {
    /// Google Cloud project id (required, as in Heroic).
    pub project: String,
    /// Bigtable instance id.
    #[serde(default = "default_instance")]
    pub instance: String,
    /// App profile id sent with data calls; empty means the default profile.
    #[serde(default)]
    pub profile: String,
    /// Table holding the points.
    #[serde(default = "default_table")]
    pub table: String,
    /// How to authenticate against real Bigtable. Ignored (no credentials)
    /// when an emulator is used.
    #[serde(default)]
    pub credentials: Credentials,
    /// `host:port` of a Bigtable emulator, spoken to in plaintext without
    /// credentials. When unset, `$BIGTABLE_EMULATOR_HOST` is used if set,
    /// else Google's endpoints over TLS.
    #[serde(default)]
    pub emulator_endpoint: Option<String>,
    /// Data API endpoint for real Bigtable (TLS).
    #[serde(default = "default_data_endpoint")]
    pub data_endpoint: String,
    /// Table admin API endpoint for real Bigtable (TLS).
    #[serde(default = "default_admin_endpoint")]
    pub admin_endpoint: String,
    /// Most cell mutations sent in one MutateRows call (Heroic's
    /// `maxWriteBatchSize`); Bigtable's own ceiling is 100,000.
    #[serde(default = "default_max_write_batch_size")]
    pub max_write_batch_size: usize,
    /// MutateRows calls of one write that may be in flight at once.
    #[serde(default = "default_write_concurrency")]
    pub write_concurrency: usize,
    /// ReadRows calls of one fetch that may be in flight at once.
    #[serde(default = "default_read_concurrency")]
    pub read_concurrency: usize,
    /// Deadline of one MutateRows attempt, in milliseconds.
    #[serde(default = "default_mutate_timeout")]
    pub mutate_rpc_timeout_ms: u64,
    /// Deadline of one ReadRows attempt (the whole stream), in milliseconds.
    #[serde(default = "default_read_rows_timeout")]
    pub read_rows_rpc_timeout_ms: u64,
    /// Deadline of short calls (connecting, table admin), in milliseconds.
    #[serde(default = "default_short_timeout")]
    pub short_rpc_timeout_ms: u64,
    /// Attempts after the first one for a call that timed out or found the
    /// server unavailable (Heroic's `maxScanTimeoutRetries`).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// First backoff before a retry, in milliseconds; doubles each retry.
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff_ms: u64,
    /// Longest single backoff, in milliseconds.
    #[serde(default = "default_max_backoff")]
    pub max_backoff_ms: u64,
    /// Stop retrying once this long has passed since the first attempt, in
    /// milliseconds (Heroic's `maxElapsedBackoffMs`).
    #[serde(default = "default_max_elapsed_backoff")]
    pub max_elapsed_backoff_ms: u64,
    /// Column family holding points.
    #[serde(default = "default_points_family")]
    pub points_family: String,
    /// Column families `configure` creates besides `pointsFamily` (Heroic
    /// creates `distributionPoints` and `events`).
    #[serde(default = "default_extra_families")]
    pub extra_families: Vec<String>,
}

/// How to get OAuth2 tokens for real Bigtable.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Credentials {
    /// Application default credentials: `$GOOGLE_APPLICATION_CREDENTIALS`,
    /// gcloud's user credentials, or the metadata server (Heroic's `default`
    /// and `compute-engine`).
    #[default]
    #[serde(alias = "compute-engine")]
    Default,
    /// A service-account JSON key file (Heroic's `json`).
    #[serde(alias = "service-account")]
    Json {
        /// Path of the key file.
        path: PathBuf,
    },
    /// No credentials at all (emulators, proxies that add their own).
    None,
}

fn default_instance() -> String {
    "heroic".into()
}
fn default_table() -> String {
    "metrics".into()
}
fn default_data_endpoint() -> String {
    "https://bigtable.googleapis.com".into()
}
fn default_admin_endpoint() -> String {
    "https://bigtableadmin.googleapis.com".into()
}
fn default_max_write_batch_size() -> usize {
    1000
}
fn default_write_concurrency() -> usize {
    4
}
fn default_read_concurrency() -> usize {
    16
}
fn default_mutate_timeout() -> u64 {
    60_000
}
fn default_read_rows_timeout() -> u64 {
    120_000
}
fn default_short_timeout() -> u64 {
    10_000
}
fn default_max_retries() -> u32 {
    5
}
fn default_initial_backoff() -> u64 {
    50
}
fn default_max_backoff() -> u64 {
    5_000
}
fn default_max_elapsed_backoff() -> u64 {
    60_000
}
fn default_points_family() -> String {
    "points".into()
}
fn default_extra_families() -> Vec<String> {
    vec!["distributionPoints".into(), "events".into()]
}

/// Where and how to connect, after the emulator settings are resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// Plaintext, no credentials; both APIs on one `http://host:port`.
    Emulator(String),
    /// TLS with tokens from `credentials`.
    Cloud { data: String, admin: String, credentials: Credentials },
}

impl BigtableConfig {
    /// Checks values serde cannot check.
    pub fn validate(&self) -> Result<(), String> {
        if self.project.is_empty() {
            return Err("project must not be empty".into());
        }
        if self.instance.is_empty() || self.table.is_empty() {
            return Err("instance and table must not be empty".into());
        }
        if !(1..=100_000).contains(&self.max_write_batch_size) {
            return Err(format!("maxWriteBatchSize must be 1..=100000, got {}", self.max_write_batch_size));
        }
        if self.write_concurrency == 0 || self.read_concurrency == 0 {
            return Err("writeConcurrency and readConcurrency must be at least 1".into());
        }
        if self.mutate_rpc_timeout_ms == 0 || self.read_rows_rpc_timeout_ms == 0 || self.short_rpc_timeout_ms == 0 {
            return Err("rpc timeouts must be at least 1 ms".into());
        }
        Ok(())
    }

    /// Resolves the emulator settings: the config key wins over the
    /// environment variable.
    pub fn target(&self) -> Target {
        let emulator = self
            .emulator_endpoint
            .clone()
            .or_else(|| std::env::var("BIGTABLE_EMULATOR_HOST").ok())
            .filter(|e| !e.trim().is_empty());
        match emulator {
            Some(e) if e.contains("://") => Target::Emulator(e),
            Some(e) => Target::Emulator(format!("http://{e}")),
            None => Target::Cloud {
                data: self.data_endpoint.clone(),
                admin: self.admin_endpoint.clone(),
                credentials: self.credentials.clone(),
            },
        }
    }

    /// `projects/P/instances/I`.
    pub fn instance_name(&self) -> String {
        format!("projects/{}/instances/{}", self.project, self.instance)
    }

    /// `projects/P/instances/I/tables/T`.
    pub fn table_name(&self) -> String {
        format!("{}/tables/{}", self.instance_name(), self.table)
    }

    pub fn mutate_timeout(&self) -> Duration {
        Duration::from_millis(self.mutate_rpc_timeout_ms)
    }

    pub fn read_rows_timeout(&self) -> Duration {
        Duration::from_millis(self.read_rows_rpc_timeout_ms)
    }

    pub fn short_timeout(&self) -> Duration {
        Duration::from_millis(self.short_rpc_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<BigtableConfig, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn defaults_follow_heroic() {
        let c = parse(serde_json::json!({ "project": "p" })).unwrap();
        assert_eq!((c.instance.as_str(), c.table.as_str()), ("heroic", "metrics"));
        assert_eq!(c.max_write_batch_size, 1000);
        assert_eq!(c.credentials, Credentials::Default);
        assert_eq!(c.table_name(), "projects/p/instances/heroic/tables/metrics");
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = parse(serde_json::json!({ "project": "p", "tabel": "x" })).unwrap_err();
        assert!(e.to_string().contains("tabel"), "{e}");
    }

    #[test]
    fn credentials_variants() {
        let c = parse(serde_json::json!({ "project": "p", "credentials": { "type": "json", "path": "/k.json" } }));
        assert_eq!(c.unwrap().credentials, Credentials::Json { path: "/k.json".into() });
        let c = parse(serde_json::json!({ "project": "p", "credentials": { "type": "compute-engine" } }));
        assert_eq!(c.unwrap().credentials, Credentials::Default);
        let c = parse(serde_json::json!({ "project": "p", "credentials": { "type": "none" } }));
        assert_eq!(c.unwrap().credentials, Credentials::None);
    }

    #[test]
    fn emulator_endpoint_wins() {
        let c = parse(serde_json::json!({ "project": "p", "emulatorEndpoint": "127.0.0.1:8086" })).unwrap();
        assert_eq!(c.target(), Target::Emulator("http://127.0.0.1:8086".into()));
    }

    #[test]
    fn batch_size_is_bounded() {
        let c = parse(serde_json::json!({ "project": "p", "maxWriteBatchSize": 100_001 })).unwrap();
        assert!(c.validate().unwrap_err().contains("maxWriteBatchSize"));
    }
}
