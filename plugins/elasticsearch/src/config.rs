//! Configuration of the metadata and suggest backends (one table each in the
//! host's config). Both share the connection and index settings; the suggest
//! table adds its limits. Unknown keys are errors.

use std::path::PathBuf;
use std::time::Duration;

use heroic_plugin_api::sdk::support::RetryPolicy;
use heroic_plugin_api::sdk::Secret;
use serde::Deserialize;

use crate::error::Error;

/// Which indices hold the documents.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum IndexConfig {
    /// One index forever.
    Single {
        /// Index name; default `heroic-metadata` or `heroic-suggest`.
        #[serde(default)]
        name: Option<String>,
    },
    /// A new index every `interval`, named from `pattern` with `%s` replaced
    /// by `<role>-<interval start in ms>`; old indices age out of reads,
    /// which is the effective metadata retention (as in Heroic).
    Rotating {
        /// Index name pattern; must contain `%s`.
        #[serde(default = "default_pattern")]
        pattern: String,
        /// Length of one index's period: `<n>s|m|h|d|w`, e.g. `7d`.
        #[serde(default = "default_interval")]
        interval: String,
        /// Indices read, the current one included.
        #[serde(default = "default_two")]
        max_read_indices: u32,
        /// Indices written, the current one included.
        #[serde(default = "default_one")]
        max_write_indices: u32,
        /// Read every index that overlaps the query's range instead of a
        /// fixed number (at most 64).
        #[serde(default)]
        dynamic_max_read_indices: bool,
    },
}

fn default_pattern() -> String {
    "heroic-%s".into()
}
fn default_interval() -> String {
    "7d".into()
}
fn default_two() -> u32 {
    2
}
fn default_one() -> u32 {
    1
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig::Single { name: None }
    }
}

/// How the node list is kept up to date.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Sniff {
    /// Use the seeds as given.
    #[default]
    None,
    /// Ask the cluster for its nodes (`GET _nodes/http`) periodically.
    Nodes,
    /// Resolve the seeds' host names periodically and use every address:
    /// a Kubernetes headless service lists one address per ready pod.
    Dns,
}

/// When written documents become visible to searches.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Refresh {
    /// The server's refresh interval (fastest writes; Heroic's behaviour).
    #[default]
    False,
    /// Each bulk waits until its documents are searchable.
    WaitFor,
    /// Each bulk forces a refresh.
    True,
}

impl Refresh {
    pub fn as_param(self) -> Option<&'static str> {
        match self {
            Refresh::False => None,
            Refresh::WaitFor => Some("wait_for"),
            Refresh::True => Some("true"),
        }
    }
}

/// Where regex filters are evaluated.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RegexMode {
    /// As a `regexp` query when the pattern translates to Lucene syntax,
    /// otherwise in the plugin over the other clauses' candidates.
    #[default]
    Pushdown,
    /// Always in the plugin (for servers whose `regexp` cannot be trusted).
    Plugin,
}

/// HTTP basic authentication.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password; printed as `<redacted>`.
    pub password: Secret,
}

/// HTTPS to nodes whose certificates a private CA signed:
/// `tls = { ca_file = "/etc/heroic/es-ca.pem" }`, with `cert_file` and
/// `key_file` for client certificates. Seeds without a scheme then mean
/// `https://`; `http://` seeds are refused. HTTPS seeds with certificates
/// from a public CA need no `tls` table.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the CA certificate(s) that signed the nodes'
    /// certificates, trusted on top of the public web roots. Host names
    /// (or IP addresses) in the seed URLs are always checked.
    pub ca_file: PathBuf,
    /// PEM file of this client's certificate chain (needs `key_file`).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM file of the private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// Declares a backend config: the shared fields plus the role's own ones.
/// (serde cannot combine `flatten` with `deny_unknown_fields`.)
macro_rules! backend_config {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty = $default:expr,)* }) => {
        $(#[$meta])*
        #[derive(Deserialize, Debug, Clone)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            /// Node URLs (`http://host:9200`; `host:port` means http).
            pub seeds: Vec<String>,
            /// Single index or rotating indices.
            pub index: IndexConfig,
            /// Name of the index template `configure` installs.
            pub template_name: Option<String>,
            /// Primary shards of new indices (server default when unset).
            pub number_of_shards: Option<u32>,
            /// Replicas of new indices (server default when unset).
            pub number_of_replicas: Option<u32>,
            /// Install templates and create the write indices at start.
            pub configure: bool,
            /// Documents written per second at most (0: unlimited).
            pub writes_per_second: f64,
            /// Series written recently are not sent again for this long.
            pub write_cache_duration_minutes: u64,
            /// Entries in the write cache at most (it is cleared when full).
            pub write_cache_max_size: usize,
            /// Documents per bulk request at most.
            pub bulk_size: usize,
            /// Hits per page when paging through results (`search_after`).
            pub page_size: usize,
            /// Buckets asked of one terms aggregation; above it the plugin
            /// pages through documents instead, so answers stay complete.
            pub max_terms: usize,
            /// Timeout of one HTTP request, in milliseconds.
            pub request_timeout_ms: u64,
            /// Attempts after the first for a failed request or bulk item.
            pub max_retries: u32,
            /// First retry delay in milliseconds (doubles, capped at 5 s).
            pub retry_backoff_ms: u64,
            /// Basic authentication, if the cluster needs it.
            pub basic_auth: Option<BasicAuth>,
            /// HTTPS with a private CA (and client certificates).
            pub tls: Option<TlsConfig>,
            /// Node discovery.
            pub sniff: Sniff,
            /// Seconds between two discoveries.
            pub sniff_interval_seconds: u64,
            /// Visibility of writes (`false`, `wait_for`, `true`).
            pub refresh: Refresh,
            /// Where regex filters are evaluated.
            pub regex: RegexMode,
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    seeds: vec!["http://127.0.0.1:9200".into()],
                    index: IndexConfig::default(),
                    template_name: None,
                    number_of_shards: None,
                    number_of_replicas: None,
                    configure: false,
                    writes_per_second: 3000.0,
                    write_cache_duration_minutes: 240,
                    write_cache_max_size: 1_000_000,
                    bulk_size: 1000,
                    page_size: 1000,
                    max_terms: 10_000,
                    request_timeout_ms: 30_000,
                    max_retries: 3,
                    retry_backoff_ms: 100,
                    basic_auth: None,
                    tls: None,
                    sniff: Sniff::None,
                    sniff_interval_seconds: 300,
                    refresh: Refresh::False,
                    regex: RegexMode::Pushdown,
                    $($field: $default,)*
                }
            }
        }

        impl $name {
            /// The shared settings, validated.
            pub fn settings(&self, role: Role) -> Result<Settings, Error> {
                Settings::new(role, ConnectionFields {
                    seeds: self.seeds.clone(),
                    index: self.index.clone(),
                    template_name: self.template_name.clone(),
                    number_of_shards: self.number_of_shards,
                    number_of_replicas: self.number_of_replicas,
                    configure: self.configure,
                    writes_per_second: self.writes_per_second,
                    write_cache_duration_minutes: self.write_cache_duration_minutes,
                    write_cache_max_size: self.write_cache_max_size,
                    bulk_size: self.bulk_size,
                    page_size: self.page_size,
                    max_terms: self.max_terms,
                    request_timeout_ms: self.request_timeout_ms,
                    max_retries: self.max_retries,
                    retry_backoff_ms: self.retry_backoff_ms,
                    basic_auth: self.basic_auth.clone(),
                    tls: self.tls.clone(),
                    sniff: self.sniff,
                    sniff_interval_seconds: self.sniff_interval_seconds,
                    refresh: self.refresh,
                    regex: self.regex,
                })
            }
        }
    };
}

backend_config! {
    /// Config of the `elasticsearch` metadata backend.
    MetadataConfig {
        /// Make resource tags searchable in the index (they are always
        /// stored and returned; filters never use them).
        index_resource: bool = false,
    }
}

backend_config! {
    /// Config of the `elasticsearch` suggest backend.
    SuggestConfig {
        /// Suggestions returned when a request gives no limit.
        default_limit: usize = 10,
        /// Suggestions returned at most, whatever a request asks (Heroic: 250).
        max_limit: usize = 250,
    }
}

/// The role a backend plays; it names its indices and template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Metadata,
    Suggest,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Metadata => "metadata",
            Role::Suggest => "suggest",
        }
    }
}

/// The shared fields, as read (see the macro for their meaning).
#[derive(Debug, Clone)]
pub struct ConnectionFields {
    pub seeds: Vec<String>,
    pub index: IndexConfig,
    pub template_name: Option<String>,
    pub number_of_shards: Option<u32>,
    pub number_of_replicas: Option<u32>,
    pub configure: bool,
    pub writes_per_second: f64,
    pub write_cache_duration_minutes: u64,
    pub write_cache_max_size: usize,
    pub bulk_size: usize,
    pub page_size: usize,
    pub max_terms: usize,
    pub request_timeout_ms: u64,
    pub max_retries: u32,
    pub retry_backoff_ms: u64,
    pub basic_auth: Option<BasicAuth>,
    pub tls: Option<TlsConfig>,
    pub sniff: Sniff,
    pub sniff_interval_seconds: u64,
    pub refresh: Refresh,
    pub regex: RegexMode,
}

/// Validated shared settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub role: Role,
    pub fields: ConnectionFields,
    pub template_name: String,
    pub request_timeout: Duration,
    pub write_cache_duration: Duration,
    /// Rotation period in ms; `None` for a single index.
    pub interval_ms: Option<i64>,
}

/// The longest wait between two retries of a request or a bulk item.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(5);

impl Settings {
    /// How failed requests and bulk items are retried: `retry_backoff_ms`
    /// doubling up to 5 s, `max_retries` times. Without jitter: the
    /// documented waits are exact doublings.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::new(Duration::from_millis(self.fields.retry_backoff_ms.max(1)), MAX_RETRY_BACKOFF)
            .with_max_retries(self.fields.max_retries)
            .without_jitter()
    }

    fn new(role: Role, fields: ConnectionFields) -> Result<Self, Error> {
        let bad = |m: String| Err(Error::Config(m));
        if fields.seeds.is_empty() {
            return bad("seeds must name at least one node".into());
        }
        if fields.page_size == 0 || fields.bulk_size == 0 || fields.max_terms == 0 {
            return bad("page_size, bulk_size and max_terms must be positive".into());
        }
        if fields.page_size > 10_000 {
            return bad(format!("page_size {} is above 10000, the servers' result window", fields.page_size));
        }
        if fields.writes_per_second < 0.0 || !fields.writes_per_second.is_finite() {
            return bad(format!("writes_per_second must be 0 or positive, not {}", fields.writes_per_second));
        }
        if fields.request_timeout_ms == 0 {
            return bad("request_timeout_ms must be positive".into());
        }
        if let Some(tls) = &fields.tls {
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                return bad("tls.cert_file and tls.key_file must be given together".into());
            }
            if let Some(seed) = fields.seeds.iter().find(|s| s.trim_start().to_ascii_lowercase().starts_with("http://"))
            {
                return bad(format!("seed {seed:?} is plain http, but tls is set: use https://"));
            }
        }
        // Without the `tls` cargo feature the HTTP client has no TLS at all;
        // say so now rather than fail every request.
        if !cfg!(feature = "tls") {
            let https = fields.seeds.iter().any(|s| s.trim_start().to_ascii_lowercase().starts_with("https://"));
            if fields.tls.is_some() || https {
                return bad("https needs the plugin built with its `tls` cargo feature (on by default)".into());
            }
        }
        let interval_ms = match &fields.index {
            IndexConfig::Single { .. } => None,
            IndexConfig::Rotating { pattern, interval, max_read_indices, max_write_indices, .. } => {
                if !pattern.contains("%s") {
                    return bad(format!("index pattern {pattern:?} has no %s"));
                }
                if *max_read_indices == 0 || *max_write_indices == 0 {
                    return bad("max_read_indices and max_write_indices must be positive".into());
                }
                Some(parse_duration(interval)?.as_millis() as i64)
            }
        };
        Ok(Settings {
            role,
            template_name: fields.template_name.clone().unwrap_or_else(|| format!("heroic-{}", role.as_str())),
            request_timeout: Duration::from_millis(fields.request_timeout_ms),
            write_cache_duration: Duration::from_secs(fields.write_cache_duration_minutes * 60),
            interval_ms,
            fields,
        })
    }
}

/// Parses `<n><unit>` with unit `ms`, `s`, `m`, `h`, `d` or `w`.
pub fn parse_duration(text: &str) -> Result<Duration, Error> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| Error::Config(format!("bad duration {text:?}: expected e.g. 7d")))?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(Error::Config(format!("bad duration unit in {text:?}: use ms, s, m, h, d or w"))),
    };
    if n == 0 {
        return Err(Error::Config(format!("duration {text:?} must be positive")));
    }
    Ok(Duration::from_millis(n * ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_config_and_rejects_unknown_keys() {
        let c: MetadataConfig = serde_json::from_value(serde_json::json!({
            "seeds": ["http://a:9200"],
            "index": {"type": "rotating", "pattern": "x-%s", "interval": "1d", "max_read_indices": 3},
            "number_of_shards": 2, "number_of_replicas": 1, "writes_per_second": 10.0,
            "basic_auth": {"username": "u", "password": "p"}, "sniff": "dns", "refresh": "wait_for",
            "index_resource": true
        }))
        .unwrap();
        let s = c.settings(Role::Metadata).unwrap();
        assert_eq!(s.interval_ms, Some(86_400_000));
        assert_eq!(s.template_name, "heroic-metadata");
        let err = serde_json::from_value::<MetadataConfig>(serde_json::json!({"default_limit": 3})).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let err = serde_json::from_value::<SuggestConfig>(serde_json::json!({"index": {"type": "single", "nme": "x"}}));
        assert!(err.is_err());
    }

    #[test]
    fn debug_output_redacts_the_password() {
        let c: SuggestConfig = serde_json::from_value(serde_json::json!({
            "basic_auth": {"username": "heroic", "password": "hunter2-es"},
        }))
        .unwrap();
        assert_eq!(c.basic_auth.as_ref().unwrap().password.expose(), "hunter2-es");
        let s = c.settings(Role::Suggest).unwrap();
        for shown in [format!("{c:?}"), format!("{c:#?}"), format!("{s:?}"), format!("{:?}", s.fields)] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("heroic") && shown.contains("<redacted>"), "{shown}");
        }
    }

    #[test]
    fn tls_table() {
        let parse = |v: serde_json::Value| serde_json::from_value::<MetadataConfig>(v);
        let c = parse(serde_json::json!({"seeds": ["es:9200", "https://es2:9200"], "tls": {"ca_file": "/ca.pem"}}))
            .unwrap();
        let tls = c.tls.clone().unwrap();
        assert_eq!((tls.ca_file.to_str(), tls.cert_file), (Some("/ca.pem"), None));
        assert_eq!(c.settings(Role::Metadata).is_ok(), cfg!(feature = "tls"));
        let c = parse(serde_json::json!({"seeds": ["http://es:9200"], "tls": {"ca_file": "/ca.pem"}})).unwrap();
        assert!(c.settings(Role::Metadata).unwrap_err().to_string().contains("plain http"));
        let c = parse(serde_json::json!({"seeds": ["https://es:9200"], "tls": {"ca_file": "/c", "key_file": "/k"}}))
            .unwrap();
        assert!(c.settings(Role::Metadata).unwrap_err().to_string().contains("given together"));
        assert!(parse(serde_json::json!({"tls": {"ca_file": "/c", "verify": false}})).is_err());
        assert!(parse(serde_json::json!({"tls": {"cert_file": "/c"}})).is_err(), "ca_file is required");
    }

    #[test]
    fn validates() {
        let mut c = SuggestConfig { seeds: vec![], ..Default::default() };
        assert!(c.settings(Role::Suggest).is_err());
        c.seeds = vec!["x:1".into()];
        c.index = IndexConfig::Rotating {
            pattern: "nopattern".into(),
            interval: "7d".into(),
            max_read_indices: 2,
            max_write_indices: 1,
            dynamic_max_read_indices: false,
        };
        assert!(c.settings(Role::Suggest).unwrap_err().to_string().contains("%s"));
        assert!(parse_duration("7x").is_err());
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
    }
}
