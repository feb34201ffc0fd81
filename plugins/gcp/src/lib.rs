//! Google Cloud gRPC plumbing shared by the plugins that speak to Google
//! Cloud (bigtable, pubsub):
//!
//! - [`Credentials`]: the `credentials` config table (how to get OAuth2
//!   tokens), with Heroic's names;
//! - [`emulator`]: the emulator selection (a config key, else an
//!   environment variable such as `BIGTABLE_EMULATOR_HOST`), refused for
//!   hosts other than loopback unless explicitly allowed;
//! - [`connect`]: a tonic channel, TLS with webpki roots to Google,
//!   plaintext to an emulator ([`connect_emulator`]);
//! - [`Auth`]: the token provider and the `authorization` header it puts on
//!   each request;
//! - [`GcpError`]: what connecting and getting credentials fail with; each
//!   plugin folds it into its own error type.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gcp_auth::TokenProvider;
use serde::Deserialize;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint, Uri};
use tonic::Status;

/// Failures of connecting and of getting credentials.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum GcpError {
    /// The endpoint is invalid or did not answer in time.
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    /// The configured credentials could not be loaded.
    #[error("cannot get credentials: {0}")]
    Credentials(String),
    /// An emulator setting names a host other than loopback.
    #[error(
        "{setting} = {value:?} selects the emulator mode, whose plain-text, unauthenticated connections are \
         only allowed to loopback (127.0.0.0/8, ::1, localhost); unset it to use Google Cloud over TLS, or set \
         emulatorAllowRemote = true to connect to this host in plain text anyway"
    )]
    RemoteEmulator { setting: String, value: String },
}

/// How to get OAuth2 tokens for real Google Cloud (Heroic's `credentials`).
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

/// An emulator to speak to: plain text, no credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emulator {
    /// `http://host:port`.
    pub url: String,
    /// Where it was set: the config key or the environment variable.
    pub setting: String,
    /// Not a loopback host (allowed by `emulatorAllowRemote = true`).
    pub remote: bool,
}

/// The emulator to use: the config key `key` (`value`) when set, else the
/// environment variable `env_var` (e.g. `BIGTABLE_EMULATOR_HOST`); blank
/// values count as unset. A bare `host:port` becomes `http://host:port`.
/// `None`: no emulator, speak to Google over TLS.
///
/// The emulator mode turns TLS and authentication off, so a variable left
/// over in a production environment must not quietly send data and queries
/// in the clear across the network: hosts other than loopback are refused
/// unless `allow_remote` (the `emulatorAllowRemote` key) is set.
pub fn emulator(
    key: &str,
    value: Option<&str>,
    env_var: &str,
    allow_remote: bool,
) -> Result<Option<Emulator>, GcpError> {
    let configured = value.map(|v| (v.to_string(), key.to_string()));
    let from_env = || std::env::var(env_var).ok().map(|v| (v, format!("the environment variable {env_var}")));
    let Some((value, setting)) = configured.or_else(from_env).filter(|(v, _)| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let value = value.trim().to_string();
    let url = if value.contains("://") { value.clone() } else { format!("http://{value}") };
    let remote = !url.parse::<Uri>().ok().and_then(|u| u.host().map(is_loopback_host)).unwrap_or(false);
    if remote && !allow_remote {
        return Err(GcpError::RemoteEmulator { setting, value });
    }
    Ok(Some(Emulator { url, setting, remote }))
}

/// `localhost`, or an address in 127.0.0.0/8 or `::1` (also IPv4-mapped).
/// Other names are not resolved: what they resolve to can change.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        Err(_) => false,
    }
}

/// A plain-text channel to `emulator`, with a warning each time the
/// emulator is not on this machine.
pub async fn connect_emulator(emulator: &Emulator, timeout: Duration) -> Result<Channel, GcpError> {
    if emulator.remote {
        tracing::warn!(
            url = %emulator.url,
            setting = %emulator.setting,
            "emulator mode towards a remote host (emulatorAllowRemote = true): plain text, no authentication"
        );
    }
    connect(&emulator.url, false, timeout).await
}

/// Opens a channel to `url`: TLS with the webpki roots when `tls`
/// (Google), plaintext otherwise (emulators). Fails when no connection is
/// made within `timeout`.
pub async fn connect(url: &str, tls: bool, timeout: Duration) -> Result<Channel, GcpError> {
    let err = |reason: String| GcpError::Connect { endpoint: url.to_string(), reason };
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| err(format!("invalid endpoint: {e}")))?
        .connect_timeout(timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    if tls {
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().with_webpki_roots())
            .map_err(|e| err(format!("tls setup failed: {e}")))?;
    }
    match tokio::time::timeout(timeout, endpoint.connect()).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(e)) => Err(err(format!("{e} ({:?})", std::error::Error::source(&e)))),
        Err(_) => Err(err(format!("no connection within {timeout:?}"))),
    }
}

/// OAuth2 tokens for the requests of one client, or none (emulators,
/// `Credentials::None`). Cheap to clone.
#[derive(Clone, Default)]
pub struct Auth {
    provider: Option<Arc<dyn TokenProvider>>,
    scopes: &'static [&'static str],
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("tokens", &self.provider.is_some()).field("scopes", &self.scopes).finish()
    }
}

impl Auth {
    /// No tokens: requests go out without an `authorization` header.
    pub fn none() -> Self {
        Auth::default()
    }

    /// Loads `credentials`; tokens are asked for `scopes`.
    pub async fn new(credentials: &Credentials, scopes: &'static [&'static str]) -> Result<Self, GcpError> {
        let provider: Option<Arc<dyn TokenProvider>> = match credentials {
            Credentials::None => None,
            Credentials::Default => Some(gcp_auth::provider().await.map_err(|e| GcpError::Credentials(e.to_string()))?),
            Credentials::Json { path } => Some(Arc::new(
                gcp_auth::CustomServiceAccount::from_file(path)
                    .map_err(|e| GcpError::Credentials(format!("{}: {e}", path.display())))?,
            )),
        };
        Ok(Auth { provider, scopes })
    }

    /// Puts `authorization: Bearer …` on `request` when there are
    /// credentials; a token that cannot be had is `UNAUTHENTICATED`.
    pub async fn authorize<T>(&self, request: &mut tonic::Request<T>) -> Result<(), Status> {
        if let Some(provider) = &self.provider {
            let token =
                provider.token(self.scopes).await.map_err(|e| Status::unauthenticated(format!("no token: {e}")))?;
            let value = format!("Bearer {}", token.as_str())
                .parse()
                .map_err(|_| Status::unauthenticated("token is not a valid header value"))?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_names_and_aliases() {
        let parse = |v: serde_json::Value| serde_json::from_value::<Credentials>(v);
        assert_eq!(parse(serde_json::json!({"type": "default"})).unwrap(), Credentials::Default);
        assert_eq!(parse(serde_json::json!({"type": "compute-engine"})).unwrap(), Credentials::Default);
        assert_eq!(parse(serde_json::json!({"type": "none"})).unwrap(), Credentials::None);
        let json = Credentials::Json { path: "/k.json".into() };
        assert_eq!(parse(serde_json::json!({"type": "json", "path": "/k.json"})).unwrap(), json);
        assert_eq!(parse(serde_json::json!({"type": "service-account", "path": "/k.json"})).unwrap(), json);
        let e = parse(serde_json::json!({"type": "json", "path": "/k.json", "paht": 1})).unwrap_err();
        assert!(e.to_string().contains("paht"), "{e}");
        assert!(parse(serde_json::json!({"type": "jwt"})).is_err());
    }

    fn url(value: Option<&str>, var: &str) -> Option<String> {
        emulator("emulatorEndpoint", value, var, false).unwrap().map(|e| e.url)
    }

    #[test]
    fn emulator_key_wins_and_gets_a_scheme() {
        let var = "HEROIC_GCP_TEST_UNSET_EMULATOR_HOST";
        assert_eq!(url(Some("127.0.0.1:1"), var), Some("http://127.0.0.1:1".into()));
        assert_eq!(url(Some("https://localhost:1"), var), Some("https://localhost:1".into()));
        assert_eq!(url(Some("  "), var), None);
        assert_eq!(url(None, var), None);
    }

    #[test]
    fn only_loopback_emulators_are_allowed_by_default() {
        let var = "HEROIC_GCP_TEST_UNSET_EMULATOR_HOST";
        for host in [
            "127.0.0.1:8086",
            "127.1.2.3:1",
            "localhost:8086",
            "LOCALHOST:1",
            "[::1]:8086",
            "http://[::ffff:127.0.0.1]:1",
        ] {
            let e = emulator("emulatorEndpoint", Some(host), var, false).unwrap().unwrap();
            assert!(!e.remote, "{host}");
            assert_eq!(e.setting, "emulatorEndpoint");
        }
        for host in [
            "10.0.0.5:8086",
            "bigtable-emulator:8086",
            "localhost.example.com:1",
            "[2001:db8::1]:1",
            "http://:1",
            "0.0.0.0:1",
        ] {
            let e = emulator("emulatorEndpoint", Some(host), var, false).unwrap_err();
            let text = e.to_string();
            assert!(text.starts_with(&format!("emulatorEndpoint = {host:?} selects the emulator mode")), "{text}");
            assert!(text.contains("only allowed to loopback") && text.contains("emulatorAllowRemote"), "{text}");
            // The explicit opt-in allows it, marked remote (connect_emulator warns).
            let e = emulator("emulatorEndpoint", Some(host), var, true).unwrap().unwrap();
            assert!(e.remote, "{host}");
        }
    }

    #[test]
    fn the_environment_variable_is_named_in_the_error() {
        // A variable name no other test uses: tests run in parallel threads.
        let var = "HEROIC_GCP_TEST_REMOTE_EMULATOR_HOST";
        // Only this test reads or writes this variable (edition 2021: safe).
        std::env::set_var(var, "bigtable.internal:8086");
        let e = emulator("emulatorEndpoint", None, var, false).unwrap_err().to_string();
        assert!(e.starts_with(&format!("the environment variable {var} = \"bigtable.internal:8086\"")), "{e}");
        assert!(e.contains("plain-text, unauthenticated connections are only allowed to loopback"), "{e}");
        // The config key still wins over the variable.
        assert_eq!(url(Some("127.0.0.1:2"), var), Some("http://127.0.0.1:2".into()));
        std::env::set_var(var, "127.0.0.1:9");
        assert_eq!(url(None, var), Some("http://127.0.0.1:9".into()));
        std::env::remove_var(var);
    }

    #[tokio::test]
    async fn bad_endpoints_are_connect_errors() {
        let e = connect("not a url", false, Duration::from_millis(100)).await.unwrap_err();
        assert!(matches!(&e, GcpError::Connect { endpoint, .. } if endpoint == "not a url"), "{e}");
        let e = Auth::new(&Credentials::Json { path: "/nonexistent/key.json".into() }, &[]).await.unwrap_err();
        assert!(matches!(&e, GcpError::Credentials(m) if m.starts_with("/nonexistent/key.json")), "{e}");
    }

    #[tokio::test]
    async fn no_credentials_add_no_header() {
        let mut request = tonic::Request::new(());
        Auth::new(&Credentials::None, &[]).await.unwrap().authorize(&mut request).await.unwrap();
        Auth::none().authorize(&mut request).await.unwrap();
        assert!(request.metadata().get("authorization").is_none());
    }
}
