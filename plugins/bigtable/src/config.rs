//! The plugin's config table. Names follow Heroic's Bigtable module
//! (camelCase) so an existing Heroic config carries over with few edits.

use std::time::Duration;

use heroic_plugin_api::sdk::support::RetryPolicy;
use serde::Deserialize;

/// Longest flush interval accepted.
pub const MAX_FLUSH_INTERVAL: Duration = Duration::from_secs(60);

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
    /// else Google's endpoints over TLS. Only loopback hosts are accepted
    /// unless `emulatorAllowRemote` is set.
    #[serde(default)]
    pub emulator_endpoint: Option<String>,
    /// Allow an emulator (from `emulatorEndpoint` or the variable) on a host
    /// other than loopback: plain text and no authentication across the
    /// network, logged as a warning at each connect. Off by default, so that
    /// a variable left set cannot silently turn TLS off in production.
    #[serde(default)]
    pub emulator_allow_remote: bool,
    /// Data API endpoint for real Bigtable (TLS).
    #[serde(default = "default_data_endpoint")]
    pub data_endpoint: String,
    /// Table admin API endpoint for real Bigtable (TLS).
    #[serde(default = "default_admin_endpoint")]
    pub admin_endpoint: String,
    /// Most cell mutations in one row entry, and with
    /// `disableBulkMutations` in one MutateRows call (Heroic's
    /// `maxWriteBatchSize`); Bigtable's own ceiling is 100,000 per call.
    #[serde(default = "default_max_write_batch_size")]
    pub max_write_batch_size: usize,
    /// MutateRows calls in flight at once: for the whole backend in bulk
    /// mode, per write with `disableBulkMutations`.
    #[serde(default = "default_write_concurrency")]
    pub write_concurrency: usize,
    /// `true`: each write sends its own MutateRows calls. `false` (the
    /// default): writes go through the bulk writer, which coalesces the
    /// entries of concurrent writes into shared calls. Either way a write
    /// is answered only once its mutations were applied.
    #[serde(default)]
    pub disable_bulk_mutations: bool,
    /// Bulk mode: how long buffered mutations may wait for more to fill
    /// their batch, in seconds (Heroic's name; Heroic's default is 2).
    /// Unset: 0, a batch leaves as soon as a call slot is free. Exclusive
    /// with `flushIntervalMs`.
    #[serde(default)]
    pub flush_interval_seconds: Option<u64>,
    /// Bulk mode: the same wait in milliseconds, for waits below a second.
    /// Exclusive with `flushIntervalSeconds`.
    #[serde(default)]
    pub flush_interval_ms: Option<u64>,
    /// Bulk mode: cell mutations that make a full batch, sent as one
    /// MutateRows call without waiting for the flush interval (Heroic's
    /// `batchSize`). Unset: `maxWriteBatchSize`.
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Bulk mode: most cell mutations accepted and not applied yet; further
    /// writes wait for room (a write larger than this waits for an empty
    /// buffer). Unset: `2 × batchSize × writeConcurrency`, at least 100,000.
    #[serde(default)]
    pub max_buffered_mutations: Option<usize>,
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
    /// Column family holding distribution samples (Heroic's
    /// `distributionPoints`): same row keys and qualifiers as points, the
    /// cell value being the serialised t-digest, stored unchanged.
    #[serde(default = "default_distributions_family")]
    pub distributions_family: String,
    /// Column family holding t-digest points (Heroic's `tdigestPoints`,
    /// which Heroic's Bigtable backend does not store): laid out as
    /// distribution points are.
    #[serde(default = "default_tdigests_family")]
    pub tdigests_family: String,
    /// Column family holding spreads (which Heroic's Bigtable backend does
    /// not store): laid out as points are, the cell value being the 40
    /// bytes of the plugin API's `Spread::encode`.
    #[serde(default = "default_spreads_family")]
    pub spreads_family: String,
    /// Column families `configure` creates besides the four above
    /// (Heroic creates `events` too).
    #[serde(default = "default_extra_families")]
    pub extra_families: Vec<String>,
}

/// How to get OAuth2 tokens for real Bigtable (shared with the pubsub
/// plugin).
pub use heroic_gcp::Credentials;

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
fn default_distributions_family() -> String {
    "distributionPoints".into()
}
fn default_tdigests_family() -> String {
    "tdigestPoints".into()
}
fn default_spreads_family() -> String {
    "spreads".into()
}
fn default_extra_families() -> Vec<String> {
    vec!["events".into()]
}

/// Where and how to connect, after the emulator settings are resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// Plaintext, no credentials; both APIs on one `http://host:port`.
    Emulator(heroic_gcp::Emulator),
    /// TLS with tokens from `credentials`.
    Cloud { data: String, admin: String, credentials: Credentials },
}

impl BigtableConfig {
    /// The families `configure` makes sure exist: the four this backend
    /// writes, then `extraFamilies`.
    pub fn families(&self) -> Vec<String> {
        let mut families = vec![
            self.points_family.clone(),
            self.distributions_family.clone(),
            self.tdigests_family.clone(),
            self.spreads_family.clone(),
        ];
        for family in &self.extra_families {
            if !families.contains(family) {
                families.push(family.clone());
            }
        }
        families
    }

    /// Checks values serde cannot check.
    pub fn validate(&self) -> Result<(), String> {
        if self.project.is_empty() {
            return Err("project must not be empty".into());
        }
        if self.instance.is_empty() || self.table.is_empty() {
            return Err("instance and table must not be empty".into());
        }
        let families = [&self.points_family, &self.distributions_family, &self.tdigests_family, &self.spreads_family];
        let distinct: std::collections::HashSet<&String> = families.iter().copied().collect();
        if families.iter().any(|f| f.is_empty()) || distinct.len() != families.len() {
            // Shared, a point and a sample of one timestamp would be one cell.
            return Err(format!(
                "pointsFamily, distributionsFamily, tdigestsFamily and spreadsFamily must be set and differ, got {families:?}"
            ));
        }
        if !(1..=100_000).contains(&self.max_write_batch_size) {
            return Err(format!("maxWriteBatchSize must be 1..=100000, got {}", self.max_write_batch_size));
        }
        if self.write_concurrency == 0 || self.read_concurrency == 0 {
            return Err("writeConcurrency and readConcurrency must be at least 1".into());
        }
        if !(1..=100_000).contains(&self.batch_size()) {
            return Err(format!("batchSize must be 1..=100000, got {}", self.batch_size()));
        }
        if self.flush_interval_seconds.is_some() && self.flush_interval_ms.is_some() {
            return Err("flushIntervalSeconds and flushIntervalMs are mutually exclusive: set one".into());
        }
        // Every acknowledgement of a lone write waits this long.
        if self.flush_interval() > MAX_FLUSH_INTERVAL {
            return Err(format!(
                "the flush interval must be at most {MAX_FLUSH_INTERVAL:?}, got {:?}",
                self.flush_interval()
            ));
        }
        let buffered = self.max_buffered_mutations();
        // Permits of a tokio semaphore are taken as u32.
        if buffered < self.batch_size() || buffered > u32::MAX as usize {
            return Err(format!(
                "maxBufferedMutations must be batchSize ({}) to {}, got {buffered}",
                self.batch_size(),
                u32::MAX
            ));
        }
        if self.mutate_rpc_timeout_ms == 0 || self.read_rows_rpc_timeout_ms == 0 || self.short_rpc_timeout_ms == 0 {
            return Err("rpc timeouts must be at least 1 ms".into());
        }
        self.target()?;
        Ok(())
    }

    /// Resolves the emulator settings: the config key wins over the
    /// environment variable; an emulator that is not on loopback is refused
    /// unless `emulatorAllowRemote` is set.
    pub fn target(&self) -> Result<Target, String> {
        let emulator = heroic_gcp::emulator(
            "emulatorEndpoint",
            self.emulator_endpoint.as_deref(),
            "BIGTABLE_EMULATOR_HOST",
            self.emulator_allow_remote,
        )
        .map_err(|e| e.to_string())?;
        Ok(match emulator {
            Some(emulator) => Target::Emulator(emulator),
            None => Target::Cloud {
                data: self.data_endpoint.clone(),
                admin: self.admin_endpoint.clone(),
                credentials: self.credentials.clone(),
            },
        })
    }

    /// `projects/P/instances/I`.
    pub fn instance_name(&self) -> String {
        format!("projects/{}/instances/{}", self.project, self.instance)
    }

    /// `projects/P/instances/I/tables/T`.
    pub fn table_name(&self) -> String {
        format!("{}/tables/{}", self.instance_name(), self.table)
    }

    /// Bulk mode's flush interval, from whichever key is set.
    pub fn flush_interval(&self) -> Duration {
        match (self.flush_interval_seconds, self.flush_interval_ms) {
            (Some(s), _) => Duration::from_secs(s),
            (None, Some(ms)) => Duration::from_millis(ms),
            (None, None) => Duration::ZERO,
        }
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or(self.max_write_batch_size)
    }

    pub fn max_buffered_mutations(&self) -> usize {
        self.max_buffered_mutations
            .unwrap_or_else(|| self.batch_size().saturating_mul(self.write_concurrency).saturating_mul(2).max(100_000))
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

    /// How calls retry: `initialBackoffMs` doubling up to `maxBackoffMs`
    /// with jitter, `maxRetries` retries, none starting after
    /// `maxElapsedBackoffMs`.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::new(Duration::from_millis(self.initial_backoff_ms), Duration::from_millis(self.max_backoff_ms))
            .with_max_retries(self.max_retries)
            .with_max_elapsed(Duration::from_millis(self.max_elapsed_backoff_ms))
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
        let Ok(Target::Emulator(e)) = c.target() else { panic!("{:?}", c.target()) };
        assert_eq!((e.url.as_str(), e.remote), ("http://127.0.0.1:8086", false));
    }

    #[test]
    fn a_remote_emulator_needs_the_opt_in() {
        let c = parse(serde_json::json!({ "project": "p", "emulatorEndpoint": "10.1.2.3:8086" })).unwrap();
        let e = c.validate().unwrap_err();
        assert!(e.contains("emulatorEndpoint = \"10.1.2.3:8086\"") && e.contains("only allowed to loopback"), "{e}");
        let c = parse(
            serde_json::json!({ "project": "p", "emulatorEndpoint": "10.1.2.3:8086", "emulatorAllowRemote": true }),
        )
        .unwrap();
        c.validate().unwrap();
        let Ok(Target::Emulator(e)) = c.target() else { panic!("{:?}", c.target()) };
        assert!(e.remote);
    }

    #[test]
    fn bulk_defaults_add_no_wait() {
        let c = parse(serde_json::json!({ "project": "p", "maxWriteBatchSize": 500 })).unwrap();
        assert!(!c.disable_bulk_mutations);
        assert_eq!(c.flush_interval(), Duration::ZERO);
        assert_eq!(c.batch_size(), 500, "batchSize follows maxWriteBatchSize");
        assert_eq!(c.max_buffered_mutations(), 100_000);
        let c = parse(serde_json::json!({ "project": "p", "batchSize": 20_000, "writeConcurrency": 8 })).unwrap();
        assert_eq!(c.max_buffered_mutations(), 320_000);
        c.validate().unwrap();
    }

    #[test]
    fn heroic_bulk_keys_are_taken() {
        let c = parse(serde_json::json!({
            "project": "p", "disableBulkMutations": true, "flushIntervalSeconds": 2, "batchSize": 100,
        }))
        .unwrap();
        c.validate().unwrap();
        assert!(c.disable_bulk_mutations);
        assert_eq!((c.flush_interval(), c.batch_size()), (Duration::from_secs(2), 100));
        let c = parse(serde_json::json!({ "project": "p", "flushIntervalMs": 5 })).unwrap();
        assert_eq!(c.flush_interval(), Duration::from_millis(5));
    }

    #[test]
    fn flush_interval_keys_are_exclusive_and_bounded() {
        let c = parse(serde_json::json!({ "project": "p", "flushIntervalSeconds": 1, "flushIntervalMs": 5 })).unwrap();
        let e = c.validate().unwrap_err();
        assert!(e.contains("flushIntervalSeconds") && e.contains("flushIntervalMs") && e.contains("exclusive"), "{e}");
        let c = parse(serde_json::json!({ "project": "p", "flushIntervalSeconds": 61 })).unwrap();
        assert!(c.validate().unwrap_err().contains("flush interval"));
        let e = parse(serde_json::json!({ "project": "p", "flushInterval": 2 })).unwrap_err();
        assert!(e.to_string().contains("unknown field `flushInterval`"), "{e}");
    }

    #[test]
    fn bulk_sizes_are_bounded() {
        let c = parse(serde_json::json!({ "project": "p", "batchSize": 0 })).unwrap();
        assert!(c.validate().unwrap_err().contains("batchSize"));
        let c = parse(serde_json::json!({ "project": "p", "batchSize": 100_001 })).unwrap();
        assert!(c.validate().unwrap_err().contains("batchSize"));
        let c = parse(serde_json::json!({ "project": "p", "batchSize": 100, "maxBufferedMutations": 99 })).unwrap();
        assert!(c.validate().unwrap_err().contains("maxBufferedMutations"));
    }

    #[test]
    fn families_default_to_heroic_and_must_differ() {
        let c = parse(serde_json::json!({ "project": "p" })).unwrap();
        assert_eq!((c.points_family.as_str(), c.distributions_family.as_str()), ("points", "distributionPoints"));
        let c = parse(serde_json::json!({ "project": "p", "distributionsFamily": "points" })).unwrap();
        assert!(c.validate().unwrap_err().contains("distributionsFamily"));
    }

    #[test]
    fn batch_size_is_bounded() {
        let c = parse(serde_json::json!({ "project": "p", "maxWriteBatchSize": 100_001 })).unwrap();
        assert!(c.validate().unwrap_err().contains("maxWriteBatchSize"));
    }
}
