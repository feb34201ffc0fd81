//! Google Cloud gRPC plumbing shared by the plugins that speak to Google
//! Cloud (bigtable, pubsub):
//!
//! - [`Credentials`]: the `credentials` config table (how to get OAuth2
//!   tokens), with Heroic's names;
//! - [`emulator_url`]: the emulator selection (a config key, else an
//!   environment variable such as `BIGTABLE_EMULATOR_HOST`);
//! - [`connect`]: a tonic channel, TLS with webpki roots to Google,
//!   plaintext to an emulator;
//! - [`Auth`]: the token provider and the `authorization` header it puts on
//!   each request;
//! - [`GcpError`]: what connecting and getting credentials fail with; each
//!   plugin folds it into its own error type.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gcp_auth::TokenProvider;
use serde::Deserialize;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
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

/// The emulator to use, as a URL: `config_key` when set, else the
/// environment variable `env_var` (e.g. `BIGTABLE_EMULATOR_HOST`); blank
/// values count as unset. A bare `host:port` becomes `http://host:port`.
/// `None`: no emulator, speak to Google.
pub fn emulator_url(config_key: Option<&str>, env_var: &str) -> Option<String> {
    let emulator =
        config_key.map(str::to_string).or_else(|| std::env::var(env_var).ok()).filter(|e| !e.trim().is_empty())?;
    Some(if emulator.contains("://") { emulator } else { format!("http://{emulator}") })
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
            Credentials::Default => {
                Some(gcp_auth::provider().await.map_err(|e| GcpError::Credentials(e.to_string()))?)
            }
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

    #[test]
    fn emulator_key_wins_and_gets_a_scheme() {
        let var = "HEROIC_GCP_TEST_EMULATOR_HOST";
        assert_eq!(emulator_url(Some("127.0.0.1:1"), var), Some("http://127.0.0.1:1".into()));
        assert_eq!(emulator_url(Some("https://e:1"), var), Some("https://e:1".into()));
        assert_eq!(emulator_url(Some("  "), var), None);
        assert_eq!(emulator_url(None, var), None);
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
