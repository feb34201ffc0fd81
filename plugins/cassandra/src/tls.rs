//! TLS to the nodes: the `tls` config table and the rustls client config
//! the driver is given.
//!
//! Only the CA file's certificates are trusted (no system or public roots):
//! a cluster's node certificates are signed by its own CA, and trusting
//! public CAs as well would let anyone with a public certificate for a
//! node's address pose as that node.
//!
//! The driver connects to node *addresses* (the seeds, then the addresses
//! the cluster reports in `system.peers`) and checks the certificate
//! against the IP address, not a host name. Node certificates often name
//! hosts only, hence `verifyHostname = false`: the chain is still verified
//! against the CA, only the name check is skipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;

/// `tls = { caFile = "/etc/heroic/cassandra-ca.pem" }` (with optional
/// `certFile` and `keyFile` for client certificates, and `verifyHostname`).
/// Without the table the plugin speaks plain CQL.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsConfig {
    /// PEM file of the CA certificate(s) that signed the nodes'
    /// certificates; the only certificates trusted.
    pub ca_file: PathBuf,
    /// PEM file of this client's certificate chain, for clusters that
    /// require client certificates (`require_client_auth`); needs `keyFile`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM file of the private key of `certFile` (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Check that a node's certificate names the IP address connected to
    /// (the driver connects by address). `false` still verifies the chain
    /// against `caFile`; only the name check is skipped.
    #[serde(default = "yes")]
    pub verify_hostname: bool,
}

fn yes() -> bool {
    true
}

/// Why the TLS context cannot be built; each names the config key and the
/// file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read tls.{key} {path}: {source}")]
    Read { key: &'static str, path: PathBuf, source: std::io::Error },
    #[error("tls.{key} {path} is not a valid PEM file: {reason}")]
    Pem { key: &'static str, path: PathBuf, reason: String },
    #[error("tls.{key} {path} holds no {what} (expected a PEM block such as -----BEGIN {marker}-----)")]
    Empty { key: &'static str, path: PathBuf, what: &'static str, marker: &'static str },
    #[error("tls.caFile {path}: certificate {index} cannot be used as a trust anchor: {reason}")]
    BadCa { path: PathBuf, index: usize, reason: String },
    #[error("tls.certFile and tls.keyFile must be given together")]
    HalfClientIdentity,
    #[error("tls.certFile {cert} and tls.keyFile {key}: {reason}")]
    BadClientIdentity { cert: PathBuf, key: PathBuf, reason: String },
    #[error("tls setup failed: {0}")]
    Setup(String),
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { key, path: path.to_path_buf(), source })
}

/// Every certificate of the PEM file `path` (other blocks are skipped).
fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().map_err(|e| TlsError::Pem {
        key,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(TlsError::Empty { key, path: path.to_path_buf(), what: "certificate", marker: "CERTIFICATE" });
    }
    Ok(certs)
}

/// The trust anchors of `caFile`.
pub fn root_store(ca_file: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for (index, cert) in certificates("caFile", ca_file)?.into_iter().enumerate() {
        roots.add(cert).map_err(|e| TlsError::BadCa {
            path: ca_file.to_path_buf(),
            index: index + 1,
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("keyFile", path)?;
    // The parse error is not shown: it could quote part of the key.
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            TlsError::Empty { key: "keyFile", path: path.to_path_buf(), what: "private key", marker: "PRIVATE KEY" }
        }
        _ => TlsError::Pem {
            key: "keyFile",
            path: path.to_path_buf(),
            reason: "the private key cannot be parsed".into(),
        },
    })
}

/// The client config for the driver: only `caFile` trusted, the client
/// certificate when configured, ring as the crypto provider (the one the
/// rest of the workspace uses; rustls cannot pick one by itself when more
/// than one is compiled in).
pub fn client_config(tls: &TlsConfig) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = Arc::new(root_store(&tls.ca_file)?);
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let builder = if tls.verify_hostname {
        builder.with_root_certificates(roots)
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnly { roots, provider }))
    };
    let config = match (&tls.cert_file, &tls.key_file) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = certificates("certFile", cert)?;
            builder.with_client_auth_cert(chain, private_key(key)?).map_err(|e| TlsError::BadClientIdentity {
                cert: cert.clone(),
                key: key.clone(),
                reason: e.to_string(),
            })?
        }
        _ => return Err(TlsError::HalfClientIdentity),
    };
    Ok(Arc::new(config))
}

/// Whether a connection failed because of the peer's certificate (a wrong
/// CA, a name mismatch, an expired certificate): a deployment error that
/// retrying does not fix.
pub fn is_certificate_error(e: &std::io::Error) -> bool {
    // tokio-rustls wraps the rustls error in an io::Error; step through
    // any further io::Error layers to it.
    let mut inner = e.get_ref();
    while let Some(io) = inner.and_then(|i| i.downcast_ref::<std::io::Error>()) {
        inner = io.get_ref();
    }
    inner.and_then(|inner| inner.downcast_ref::<rustls::Error>()).is_some_and(|e| {
        matches!(
            e,
            rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::UnsupportedNameType
                | rustls::Error::AlertReceived(
                    rustls::AlertDescription::BadCertificate
                        | rustls::AlertDescription::UnknownCA
                        | rustls::AlertDescription::CertificateRequired
                        | rustls::AlertDescription::CertificateUnknown
                )
        )
    })
}

/// Verifies the chain against the CA and nothing else (`verifyHostname =
/// false`). The signature checks of the handshake are rustls' own.
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<TlsConfig, serde_json::Error> {
        serde_json::from_value(v)
    }

    fn temp_file(name: &str, contents: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("heroic-cassandra-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn the_table_parses_with_defaults() {
        let t = parse(serde_json::json!({ "caFile": "/ca.pem" })).unwrap();
        assert_eq!(t, TlsConfig { ca_file: "/ca.pem".into(), cert_file: None, key_file: None, verify_hostname: true });
        let t = parse(serde_json::json!({ "caFile": "/ca.pem", "certFile": "/c.pem", "keyFile": "/k.pem", "verifyHostname": false }))
            .unwrap();
        assert!(!t.verify_hostname);
        assert_eq!(t.key_file.as_deref(), Some(Path::new("/k.pem")));
        let e = parse(serde_json::json!({ "caFile": "/ca.pem", "ca_file": "/x" })).unwrap_err();
        assert!(e.to_string().contains("unknown field `ca_file`"), "{e}");
        let e = parse(serde_json::json!({ "certFile": "/c.pem" })).unwrap_err();
        assert!(e.to_string().contains("missing field `caFile`"), "{e}");
    }

    #[test]
    fn ca_file_errors_name_the_file() {
        let config =
            |ca: &Path| TlsConfig { ca_file: ca.to_path_buf(), cert_file: None, key_file: None, verify_hostname: true };
        let missing = Path::new("/nonexistent/heroic/ca.pem");
        let e = client_config(&config(missing)).unwrap_err().to_string();
        assert!(e.starts_with("cannot read tls.caFile /nonexistent/heroic/ca.pem: "), "{e}");

        let empty = temp_file("empty.pem", "just some text\n");
        let e = client_config(&config(&empty)).unwrap_err().to_string();
        assert!(e.contains(&format!("tls.caFile {} holds no certificate", empty.display())), "{e}");

        let broken = temp_file("broken.pem", "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n");
        let e = client_config(&config(&broken)).unwrap_err().to_string();
        assert!(e.contains(&format!("tls.caFile {} is not a valid PEM file", broken.display())), "{e}");

        let garbage = temp_file("garbage.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        let e = client_config(&config(&garbage)).unwrap_err().to_string();
        assert!(e.contains(&format!("tls.caFile {}: certificate 1 cannot be used", garbage.display())), "{e}");
    }
}
