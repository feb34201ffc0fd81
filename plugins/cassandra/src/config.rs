//! The plugin's config table. Names follow Heroic's `datastax` module
//! (camelCase) where Heroic has the setting; durations are in milliseconds
//! as in the other plugins.

use std::time::Duration;

use heroic_plugin_api::sdk::Secret;
use serde::Deserialize;

use crate::row_key::ROW_WIDTH;
pub use crate::tls::TlsConfig;

/// The CQL native protocol port, used for seeds given without one.
pub const DEFAULT_PORT: u16 = 9042;

/// Most rows a fetch of the whole window may have to visit; bounds the
/// planner's memory (100,000 rows of 2^31 − 1 ms is about 6,800 years).
pub const MAX_WINDOW_ROWS: i64 = 100_000;

/// `[metrics.config]` of a `plugin = "cassandra"` metric backend.
/// Keys left out take their value from [`CassandraConfig::default`].
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct CassandraConfig {
    /// Contact points, `host` or `host:port` (port 9042 when left out);
    /// the driver discovers the rest of the cluster from them.
    pub seeds: Vec<String>,
    /// Keyspace holding the `metrics` table (Heroic's `schema.keyspace`).
    pub keyspace: String,
    /// Table holding the points. Heroic's name is fixed to `metrics`.
    pub table: String,
    /// Replication factor of the keyspace `configure` creates
    /// (SimpleStrategy, as Heroic's `keyspace.cql`). Ignored when the
    /// keyspace exists.
    pub replication_factor: u32,
    /// Create the table `WITH COMPACT STORAGE`, exactly as Heroic did. Only
    /// Cassandra 3.x accepts it; the columns seen through CQL are the same
    /// either way.
    pub compact_storage: bool,
    /// Rows per page of a read (Heroic's `fetchSize`).
    pub fetch_size: i32,
    /// Client-side timeout of one request (one page of a read, one write
    /// batch), in milliseconds (Heroic's `readTimeout`, 30 s).
    pub read_timeout_ms: u64,
    /// Timeout of opening one connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Consistency level of reads and writes (Heroic's `consistencyLevel`).
    pub consistency_level: ConsistencyLevel,
    /// How to log in (Heroic's `authentication`).
    pub authentication: Authentication,
    /// TLS to the nodes, trusting the CA in `tls.caFile` (see
    /// [`TlsConfig`]); plain CQL when left out. Use it whenever
    /// `authentication` is set: the password travels in the clear otherwise.
    pub tls: Option<TlsConfig>,
    /// Points per write batch. A batch only ever holds points of one
    /// partition (an unlogged single-partition batch is one mutation).
    pub max_write_batch_size: usize,
    /// Write batches in flight at once, per write.
    pub write_concurrency: usize,
    /// Queries in flight at once, per fetch, count or delete.
    pub read_concurrency: usize,
    /// Rows (partitions) read by one `IN` query when a fetch covers whole
    /// rows. ScyllaDB refuses more than 100 by default.
    pub max_partitions_per_query: usize,
    /// Attempts after the first one for a request that timed out or found
    /// no replica available (on top of the driver's own retry policy).
    pub max_retries: u32,
    /// First backoff before a retry, in milliseconds; doubles each retry.
    pub initial_backoff_ms: u64,
    /// Longest single backoff, in milliseconds.
    pub max_backoff_ms: u64,
    /// No retry starts after this long since the first attempt, in milliseconds.
    pub max_elapsed_backoff_ms: u64,
    /// Earliest timestamp stored, in ms. A row key says nothing a query can
    /// range over (partitions are hashed), so a fetch visits every row of
    /// its range that lies in `[minTimestampMs, maxTimestampMs]`; writes
    /// outside are refused so that every point written can be read back.
    pub min_timestamp_ms: i64,
    /// Latest timestamp stored, in ms (default 2^42 − 1, in the year 2109).
    pub max_timestamp_ms: i64,
}

/// Heroic's (and the DataStax driver's) consistency level names.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsistencyLevel {
    Any,
    #[default]
    One,
    Two,
    Three,
    Quorum,
    All,
    LocalQuorum,
    EachQuorum,
    LocalOne,
}

/// Heroic's `authentication`: `{ type = "none" }` or
/// `{ type = "plain", username = …, password = … }`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Authentication {
    #[default]
    None,
    Plain {
        /// User name sent with the SASL PLAIN mechanism.
        username: String,
        /// Its password; printed as `<redacted>`.
        password: Secret,
    },
}

impl Default for CassandraConfig {
    /// Heroic's defaults where Heroic has the setting.
    fn default() -> Self {
        CassandraConfig {
            seeds: vec!["localhost".into()],
            keyspace: "heroic".into(),
            table: "metrics".into(),
            replication_factor: 3,
            compact_storage: false,
            fetch_size: 5000,
            read_timeout_ms: 30_000,
            connect_timeout_ms: 5_000,
            consistency_level: ConsistencyLevel::One,
            authentication: Authentication::None,
            tls: None,
            max_write_batch_size: 500,
            write_concurrency: 16,
            read_concurrency: 16,
            max_partitions_per_query: 100,
            max_retries: 3,
            initial_backoff_ms: 100,
            max_backoff_ms: 5_000,
            max_elapsed_backoff_ms: 60_000,
            min_timestamp_ms: 0,
            // 2^42 - 1 ms: 2109-05-15, 2,049 rows after the epoch.
            max_timestamp_ms: (1 << 42) - 1,
        }
    }
}

/// Whether `name` can be written into CQL unquoted: Cassandra's rule for
/// keyspace and table names (letters, digits, underscores, ≤ 48 chars).
fn is_cql_name(name: &str) -> bool {
    name.len() <= 48
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `host:port` of a seed, adding the default port when there is none
/// (`[v6]:port`, `v6` and `host` are understood).
pub fn seed_address(seed: &str) -> Result<String, String> {
    let seed = seed.trim();
    if seed.is_empty() {
        return Err("a seed is empty".into());
    }
    if seed.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(seed.to_string());
    }
    if seed.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(format!("[{seed}]:{DEFAULT_PORT}"));
    }
    match seed.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => {
            port.parse::<u16>().map_err(|_| format!("seed {seed:?} has an invalid port"))?;
            Ok(seed.to_string())
        }
        Some(_) => Err(format!("seed {seed:?} is not host, host:port or an IP address")),
        None => Ok(format!("{seed}:{DEFAULT_PORT}")),
    }
}

impl CassandraConfig {
    /// Checks values serde cannot check.
    pub fn validate(&self) -> Result<(), String> {
        if self.seeds.is_empty() {
            return Err("seeds must name at least one node".into());
        }
        for seed in &self.seeds {
            seed_address(seed)?;
        }
        for (what, name) in [("keyspace", &self.keyspace), ("table", &self.table)] {
            if !is_cql_name(name) {
                return Err(format!(
                    "{what} {name:?} is not a valid name (a letter, then letters, digits or _, 48 at most)"
                ));
            }
        }
        if self.replication_factor == 0 {
            return Err("replicationFactor must be at least 1".into());
        }
        if self.fetch_size <= 0 {
            return Err(format!("fetchSize must be at least 1, got {}", self.fetch_size));
        }
        // A batch of more than 65,535 statements is refused by the protocol.
        if !(1..=10_000).contains(&self.max_write_batch_size) {
            return Err(format!("maxWriteBatchSize must be 1..=10000, got {}", self.max_write_batch_size));
        }
        if self.write_concurrency == 0 || self.read_concurrency == 0 || self.max_partitions_per_query == 0 {
            return Err("writeConcurrency, readConcurrency and maxPartitionsPerQuery must be at least 1".into());
        }
        if self.read_timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return Err("readTimeoutMs and connectTimeoutMs must be at least 1 ms".into());
        }
        if self.min_timestamp_ms > self.max_timestamp_ms {
            return Err("minTimestampMs must not be after maxTimestampMs".into());
        }
        let rows = (i128::from(self.max_timestamp_ms) - i128::from(self.min_timestamp_ms)) / i128::from(ROW_WIDTH);
        if rows > i128::from(MAX_WINDOW_ROWS) {
            return Err(format!(
                "minTimestampMs..maxTimestampMs spans {rows} rows of {ROW_WIDTH} ms; at most {MAX_WINDOW_ROWS} are allowed"
            ));
        }
        if let Authentication::Plain { username, .. } = &self.authentication {
            if username.is_empty() {
                return Err("authentication.username must not be empty".into());
            }
        }
        if let Some(tls) = &self.tls {
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                return Err("tls.certFile and tls.keyFile must be given together".into());
            }
        }
        Ok(())
    }

    /// The seeds as `host:port`.
    pub fn seed_addresses(&self) -> Vec<String> {
        self.seeds.iter().filter_map(|s| seed_address(s).ok()).collect()
    }

    pub fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.read_timeout_ms)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// The timestamps this backend stores, inclusive.
    pub fn window(&self) -> (i64, i64) {
        (self.min_timestamp_ms, self.max_timestamp_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<CassandraConfig, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn defaults_follow_heroic() {
        let c = parse(serde_json::json!({})).unwrap();
        assert_eq!(c.seeds, vec!["localhost".to_string()]);
        assert_eq!(c.seed_addresses(), vec!["localhost:9042".to_string()]);
        assert_eq!((c.keyspace.as_str(), c.table.as_str()), ("heroic", "metrics"));
        assert_eq!((c.replication_factor, c.fetch_size, c.read_timeout_ms), (3, 5000, 30_000));
        assert_eq!(c.consistency_level, ConsistencyLevel::One);
        assert_eq!(c.authentication, Authentication::None);
        assert!(!c.compact_storage);
        assert_eq!(c.window(), (0, 4_398_046_511_103));
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = parse(serde_json::json!({ "keyspcae": "x" })).unwrap_err();
        assert!(e.to_string().contains("unknown field `keyspcae`"), "{e}");
        let e = parse(
            serde_json::json!({ "authentication": { "type": "plain", "username": "u", "password": "p", "x": 1 } }),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `x`"), "{e}");
        // Heroic keys that are not taken here are refused, not ignored.
        for key in ["configure", "schema", "readTimeout", "retryPolicy", "poolingOptions"] {
            let e = parse(serde_json::json!({ key: 1 })).unwrap_err();
            assert!(e.to_string().contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn heroic_names_parse() {
        let c = parse(serde_json::json!({
            "seeds": ["10.0.0.1", "cass-2:9142", "::1", "[::1]:9043"],
            "keyspace": "metrics_ks",
            "fetchSize": 100,
            "consistencyLevel": "LOCAL_QUORUM",
            "authentication": { "type": "plain", "username": "heroic", "password": "secret" },
        }))
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.seed_addresses(), ["10.0.0.1:9042", "cass-2:9142", "[::1]:9042", "[::1]:9043"]);
        assert_eq!(c.consistency_level, ConsistencyLevel::LocalQuorum);
        assert_eq!(c.authentication, Authentication::Plain { username: "heroic".into(), password: "secret".into() });
        assert_eq!(c.tls, None);
        let e = parse(serde_json::json!({ "consistencyLevel": "one" })).unwrap_err();
        assert!(e.to_string().contains("unknown variant `one`"), "{e}");
    }

    #[test]
    fn bad_values_are_refused() {
        let bad = |v: serde_json::Value, needle: &str| {
            let e = parse(v.clone()).unwrap().validate().unwrap_err();
            assert!(e.contains(needle), "{v}: {e}");
        };
        bad(serde_json::json!({ "seeds": [] }), "seeds");
        bad(serde_json::json!({ "seeds": ["host:port"] }), "invalid port");
        bad(serde_json::json!({ "seeds": [""] }), "empty");
        bad(serde_json::json!({ "keyspace": "heroic; DROP TABLE x" }), "keyspace");
        bad(serde_json::json!({ "table": "1metrics" }), "table");
        bad(serde_json::json!({ "replicationFactor": 0 }), "replicationFactor");
        bad(serde_json::json!({ "fetchSize": 0 }), "fetchSize");
        bad(serde_json::json!({ "maxWriteBatchSize": 0 }), "maxWriteBatchSize");
        bad(serde_json::json!({ "readConcurrency": 0 }), "readConcurrency");
        bad(serde_json::json!({ "minTimestampMs": 10, "maxTimestampMs": 5 }), "minTimestampMs");
        bad(serde_json::json!({ "minTimestampMs": i64::MIN, "maxTimestampMs": i64::MAX }), "rows");
        bad(serde_json::json!({ "authentication": { "type": "plain", "username": "", "password": "" } }), "username");
    }

    #[test]
    fn debug_output_redacts_the_password() {
        let c = parse(serde_json::json!({
            "authentication": { "type": "plain", "username": "heroic", "password": "hunter2-cassandra" },
        }))
        .unwrap();
        let Authentication::Plain { password, .. } = &c.authentication else { panic!("plain") };
        assert_eq!(password.expose(), "hunter2-cassandra");
        for shown in [format!("{c:?}"), format!("{c:#?}"), format!("{:?}", c.authentication)] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("heroic") && shown.contains("<redacted>"), "{shown}");
        }
        // A password given as a number is refused without echoing it.
        let e = parse(serde_json::json!({ "authentication": { "type": "plain", "username": "u", "password": 98765 } }))
            .unwrap_err();
        assert!(!e.to_string().contains("98765"), "{e}");
    }

    #[test]
    fn tls_table_parses_and_client_identity_needs_both_files() {
        let c = parse(serde_json::json!({ "tls": { "caFile": "/etc/ca.pem" } })).unwrap();
        c.validate().unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.ca_file, std::path::Path::new("/etc/ca.pem"));
        assert!(tls.verify_hostname, "names are checked unless turned off");
        let c = parse(serde_json::json!({ "tls": { "caFile": "/ca.pem", "certFile": "/c.pem" } })).unwrap();
        assert!(c.validate().unwrap_err().contains("tls.certFile and tls.keyFile"));
        let c = parse(serde_json::json!({ "tls": { "caFile": "/ca.pem", "keyFile": "/k.pem" } })).unwrap();
        assert!(c.validate().unwrap_err().contains("tls.certFile and tls.keyFile"));
        let e = parse(serde_json::json!({ "tls": { "caFile": "/ca.pem", "verify": false } })).unwrap_err();
        assert!(e.to_string().contains("unknown field `verify`"), "{e}");
    }

    #[test]
    fn the_window_may_include_negative_timestamps() {
        let c = parse(serde_json::json!({ "minTimestampMs": -(1i64 << 42) })).unwrap();
        c.validate().unwrap();
        assert_eq!(c.window().0, -(1 << 42));
    }
}
