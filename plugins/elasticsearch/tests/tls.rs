//! HTTPS for real: a throwaway CA and node certificate (rcgen), and a
//! TLS-terminating proxy (tokio-rustls) on 127.0.0.1 in front of the
//! osmem-server test server (start it with `scripts/servers/elasticsearch.sh
//! start`; the README's test command does). With the CA file the backend
//! writes and reads over https; without it, or with another CA, or with a
//! certificate for another name, it fails with a clear certificate error.
#![cfg(feature = "tls")]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use heroic_plugin_api::error::{ErrorKind, PluginError};
use heroic_plugin_api::filter::Filter;
use heroic_plugin_api::sdk::{MetadataBackend, Query};
use heroic_plugin_api::types::{Series, TimeRange};
use heroic_plugin_elasticsearch::config::MetadataConfig;
use heroic_plugin_elasticsearch::EsMetadata;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

const OSMEM: &str = "127.0.0.1:9200";

fn require_server() {
    heroic_plugin_api::testkit::servers::require_server("osmem-server", OSMEM, "scripts/servers/elasticsearch.sh");
}

/// A CA, with its certificate written to `dir/<name>-ca.pem`.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    file: PathBuf,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, format!("heroic test {name} ca"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let file = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&file, issuer.pem()).unwrap();
        Ca { issuer, file }
    }

    /// A certificate for `names` (IP addresses become IP SANs), written to
    /// `dir/<name>.pem` and `dir/<name>-key.pem`.
    fn issue(&self, dir: &Path, name: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_file, key_file) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}-key.pem")));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }
}

/// A fresh directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("heroic-es-tls-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A TLS-terminating proxy on 127.0.0.1 in front of `upstream`, serving
/// `cert_file`; requires a client certificate from `client_ca` when given.
/// Returns its port and the number of completed handshakes.
async fn tls_proxy(
    upstream: &'static str,
    cert_file: &Path,
    key_file: &Path,
    client_ca: Option<&Path>,
) -> (u16, Arc<AtomicUsize>) {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let chain = CertificateDer::pem_file_iter(cert_file).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(key_file).unwrap();
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).unwrap() {
                roots.add(cert.unwrap()).unwrap();
            }
            builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(roots.into(), provider).build().unwrap(),
            )
        }
    };
    let acceptor = TlsAcceptor::from(Arc::new(builder.with_single_cert(chain, key).unwrap()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counted = handshakes.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, counted) = (acceptor.clone(), counted.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
            });
        }
    });
    (port, handshakes)
}

fn config(seed: &str, tls: Option<Value>, index: &str) -> MetadataConfig {
    let mut c = json!({
        "seeds": [seed],
        "index": {"type": "single", "name": index},
        "configure": true,
        "refresh": "wait_for",
        "max_retries": 1,
        "retry_backoff_ms": 10,
        "request_timeout_ms": 10_000,
    });
    if let Some(tls) = tls {
        c["tls"] = tls;
    }
    serde_json::from_value(c).unwrap()
}

async fn create_error(config: MetadataConfig) -> PluginError {
    match EsMetadata::create(config).await {
        Ok(_) => panic!("the backend was created"),
        Err(e) => {
            eprintln!("create failed as expected: {e}");
            e
        }
    }
}

#[tokio::test]
async fn https_with_the_ca_file_writes_and_reads() {
    require_server();
    let dir = TempDir::new("ok");
    let ca = Ca::new(&dir.0, "cluster");
    let (cert, key) = ca.issue(&dir.0, "node", &["127.0.0.1", "localhost"]);
    let (port, handshakes) = tls_proxy(OSMEM, &cert, &key, None).await;
    let index = format!("tls-ok-{}", std::process::id());
    // A seed without a scheme means https once `tls` is set.
    for seed in [format!("https://localhost:{port}"), format!("127.0.0.1:{port}")] {
        let backend = EsMetadata::create(config(&seed, Some(json!({"ca_file": ca.file})), &index)).await.unwrap();
        let series = Series::new("tls-key", [("host", "a")], Vec::<(&str, &str)>::new());
        backend.write(vec![series].into()).await.unwrap();
        let query = Query { filter: Filter::Key("tls-key".into()), range: TimeRange::new(0, i64::MAX), limit: 0 };
        let found = backend.find_series(query).await.unwrap();
        assert_eq!(found.series.len(), 1, "{seed}: {:?}", found.series);
    }
    assert!(handshakes.load(Ordering::SeqCst) >= 2, "the requests did not go through the tls proxy");
}

#[tokio::test]
async fn without_the_ca_or_with_another_it_is_a_clear_certificate_error() {
    require_server();
    let dir = TempDir::new("wrong-ca");
    let (ca, other) = (Ca::new(&dir.0, "cluster"), Ca::new(&dir.0, "other"));
    let (cert, key) = ca.issue(&dir.0, "node", &["127.0.0.1"]);
    let (port, handshakes) = tls_proxy(OSMEM, &cert, &key, None).await;
    let seed = format!("https://127.0.0.1:{port}");
    for tls in [None, Some(json!({"ca_file": other.file}))] {
        let e = create_error(config(&seed, tls.clone(), "tls-refused")).await;
        assert_eq!(e.kind, ErrorKind::CONFIG, "{tls:?}: {e}");
        assert!(e.message.contains("elasticsearch tls failed"), "{tls:?}: {e}");
        assert!(e.message.contains("invalid peer certificate: UnknownIssuer"), "{tls:?}: {e}");
    }
    assert_eq!(handshakes.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_host_name_is_checked() {
    require_server();
    let dir = TempDir::new("names");
    let ca = Ca::new(&dir.0, "cluster");
    let (cert, key) = ca.issue(&dir.0, "node", &["es-1.example"]);
    let (port, _) = tls_proxy(OSMEM, &cert, &key, None).await;
    let e = create_error(config(&format!("https://127.0.0.1:{port}"), Some(json!({"ca_file": ca.file})), "tls-names"))
        .await;
    assert_eq!(e.kind, ErrorKind::CONFIG, "{e}");
    assert!(e.message.contains("not valid for name"), "{e}");
}

#[tokio::test]
async fn a_client_certificate_is_presented_when_configured() {
    require_server();
    let dir = TempDir::new("client-cert");
    let ca = Ca::new(&dir.0, "cluster");
    let (cert, key) = ca.issue(&dir.0, "node", &["127.0.0.1"]);
    let (client_cert, client_key) = ca.issue(&dir.0, "client", &["heroic-client"]);
    let (port, _) = tls_proxy(OSMEM, &cert, &key, Some(&ca.file)).await;
    let seed = format!("https://127.0.0.1:{port}");
    let index = format!("tls-client-{}", std::process::id());
    let tls = json!({"ca_file": ca.file, "cert_file": client_cert, "key_file": client_key});
    let mut with_auth = config(&seed, Some(tls), &index);
    // Basic auth goes along (a header), the client certificate takes the
    // crate's one credential slot; osmem ignores the header.
    with_auth.basic_auth = serde_json::from_value(json!({"username": "u", "password": "p"})).unwrap();
    EsMetadata::create(with_auth).await.unwrap();
    // Without the client certificate the proxy refuses the handshake.
    let e = create_error(config(&seed, Some(json!({"ca_file": ca.file})), &index)).await;
    assert_eq!(e.kind, ErrorKind::CONFIG, "{e}");
    assert!(e.message.contains("CertificateRequired") && e.message.contains("tls.cert_file"), "{e}");
}

#[tokio::test]
async fn unreadable_tls_files_are_config_errors_naming_them() {
    let e = create_error(config("https://127.0.0.1:1", Some(json!({"ca_file": "/nonexistent/es-ca.pem"})), "x")).await;
    assert_eq!(e.kind, ErrorKind::CONFIG, "{e}");
    assert!(e.message.contains("cannot read tls.ca_file /nonexistent/es-ca.pem"), "{e}");
    let dir = TempDir::new("files");
    let ca = Ca::new(&dir.0, "cluster");
    let tls = json!({"ca_file": ca.file, "cert_file": ca.file, "key_file": ca.file});
    let e = create_error(config("https://127.0.0.1:1", Some(tls), "x")).await;
    assert_eq!(e.kind, ErrorKind::CONFIG, "{e}");
    assert!(e.message.contains(&format!("tls.key_file {} holds no usable private key", ca.file.display())), "{e}");
}

/// Basic auth reaches the server as a header (no TLS needed to see it).
#[tokio::test]
async fn basic_auth_is_sent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client closed before sending a request");
            head.extend_from_slice(&buf[..n]);
        }
        let body = "{}";
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(answer.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&head).into_owned()
    });
    let c: MetadataConfig = serde_json::from_value(json!({
        "seeds": [format!("http://127.0.0.1:{port}")],
        "basic_auth": {"username": "heroic", "password": "s3cret"},
    }))
    .unwrap();
    EsMetadata::create(c).await.unwrap();
    let head = server.await.unwrap();
    let authorization =
        head.lines().find_map(|l| l.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("authorization")));
    // base64("heroic:s3cret")
    assert_eq!(authorization.map(|(_, value)| value.trim()), Some("Basic aGVyb2ljOnMzY3JldA=="), "{head}");
}
