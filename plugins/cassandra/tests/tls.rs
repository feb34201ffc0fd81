//! TLS to the nodes, without a Cassandra: a throwaway CA and node
//! certificate (rcgen), and a TLS listener on 127.0.0.1 standing in for a
//! node. It completes (or refuses) the TLS handshake and then closes, so
//! `create` fails afterwards in every case (no CQL is spoken); what is
//! checked is whether the driver's handshake succeeded, and that failures
//! are clear `Config` errors.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use heroic_plugin_api::testkit::load_library;
use heroic_plugin_api::{ErrorKind, PluginError};
use heroic_plugin_cassandra::tls::{client_config, TlsConfig};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{Acceptor, WebPkiClientVerifier};
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::LazyConfigAcceptor;

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

    /// A leaf certificate for `names` (IP addresses become IP SANs), its
    /// files `dir/<name>.pem` and `dir/<name>-key.pem`.
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

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heroic-cassandra-tls-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What the stand-in node saw.
#[derive(Default)]
struct Seen {
    client_hellos: usize,
    handshakes: usize,
    /// Handshakes that presented a client certificate.
    client_certs: usize,
    errors: Vec<String>,
}

/// A TLS listener on 127.0.0.1 serving `cert_file`, requiring a client
/// certificate signed by `client_ca` when given. Each connection is
/// handshaken and then closed.
fn tls_node(
    runtime: &tokio::runtime::Runtime,
    cert_file: &Path,
    key_file: &Path,
    client_ca: Option<&Path>,
) -> (String, Arc<Mutex<Seen>>) {
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
    let config = Arc::new(builder.with_single_cert(chain, key).unwrap());
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let seen_by_node = seen.clone();
    runtime.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (config, seen) = (config.clone(), seen_by_node.clone());
            tokio::spawn(async move {
                let start = match LazyConfigAcceptor::new(Acceptor::default(), tcp).await {
                    Ok(start) => start,
                    Err(e) => return seen.lock().unwrap().errors.push(format!("before the client hello: {e}")),
                };
                seen.lock().unwrap().client_hellos += 1;
                match start.into_stream(config).await {
                    Ok(stream) => {
                        let mut seen = seen.lock().unwrap();
                        seen.handshakes += 1;
                        if stream.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty()) {
                            seen.client_certs += 1;
                        }
                        // Dropped: the connection closes before any CQL.
                    }
                    Err(e) => seen.lock().unwrap().errors.push(e.to_string()),
                }
            });
        }
    });
    (addr, seen)
}

/// `create` through the real ABI, as the host calls it; it must fail (no
/// CQL is spoken here) within a bound.
fn create_error(config: serde_json::Value) -> PluginError {
    let lib = load_library("cassandra");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let result = runtime.block_on(async {
        let future = (lib.module.create_metric_backend())(config.to_string().into());
        tokio::time::timeout(Duration::from_secs(30), future).await
    });
    match result.expect("create did not answer within 30 s").into_result() {
        Ok(_) => panic!("create succeeded without a cql server: {config}"),
        Err(e) => {
            eprintln!("create failed as expected: {e}");
            e
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

fn tls(ca: &Path) -> TlsConfig {
    TlsConfig { ca_file: ca.to_path_buf(), cert_file: None, key_file: None, verify_hostname: true }
}

#[test]
fn the_context_builds_from_a_generated_ca_and_client_identity() {
    let dir = temp_dir("context");
    let ca = Ca::new(&dir, "cluster");
    let (cert, key) = ca.issue(&dir, "client", &["heroic-client"]);
    client_config(&tls(&ca.file)).unwrap();
    client_config(&TlsConfig { cert_file: Some(cert.clone()), key_file: Some(key.clone()), ..tls(&ca.file) }).unwrap();
    client_config(&TlsConfig { verify_hostname: false, ..tls(&ca.file) }).unwrap();
    // A certificate given as the key is refused, naming the file.
    let e = client_config(&TlsConfig { cert_file: Some(cert.clone()), key_file: Some(cert.clone()), ..tls(&ca.file) })
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("tls.keyFile {} holds no private key", cert.display())), "{e}");
    // A key given as the CA: no certificate in it.
    let e = client_config(&tls(&key)).unwrap_err().to_string();
    assert!(e.contains(&format!("tls.caFile {} holds no certificate", key.display())), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_driver_completes_a_tls_handshake_with_the_configured_ca() {
    let dir = temp_dir("handshake");
    let ca = Ca::new(&dir, "cluster");
    let (cert, key) = ca.issue(&dir, "node", &["127.0.0.1"]);
    let runtime = runtime();
    let (seed, seen) = tls_node(&runtime, &cert, &key, None);
    let config = serde_json::json!({ "seeds": [seed], "connectTimeoutMs": 1000, "tls": { "caFile": ca.file } });
    let e = create_error(config);
    // The handshake succeeded; what failed is the CQL that never came.
    assert_eq!(e.kind, ErrorKind::UNAVAILABLE, "{e}");
    let seen = seen.lock().unwrap();
    assert!(seen.handshakes >= 1, "no tls handshake completed; node errors: {:?}", seen.errors);
    drop(seen);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_node_certificate_from_another_ca_is_a_clear_config_error() {
    let dir = temp_dir("wrong-ca");
    let (ca, other) = (Ca::new(&dir, "cluster"), Ca::new(&dir, "other"));
    let (cert, key) = ca.issue(&dir, "node", &["127.0.0.1"]);
    let runtime = runtime();
    let (seed, seen) = tls_node(&runtime, &cert, &key, None);
    let config = serde_json::json!({ "seeds": [seed], "connectTimeoutMs": 1000, "tls": { "caFile": other.file } });
    let e = create_error(config);
    assert_eq!(e.kind, ErrorKind::CONFIG, "{e}");
    assert!(e.message.contains("invalid peer certificate: UnknownIssuer"), "{e}");
    assert!(e.message.contains("signed by the CA in tls.caFile"), "{e}");
    let seen = seen.lock().unwrap();
    assert!(seen.client_hellos >= 1, "the driver never started a tls handshake: {:?}", seen.errors);
    assert_eq!(seen.handshakes, 0, "the handshake must not complete with the wrong ca");
    drop(seen);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn verify_hostname_checks_the_node_address() {
    let dir = temp_dir("names");
    let ca = Ca::new(&dir, "cluster");
    // Named by host name only: the driver connects to 127.0.0.1.
    let (cert, key) = ca.issue(&dir, "node", &["cassandra-1.example"]);
    let runtime = runtime();
    let (seed, seen) = tls_node(&runtime, &cert, &key, None);
    let e =
        create_error(serde_json::json!({ "seeds": [seed], "connectTimeoutMs": 1000, "tls": { "caFile": ca.file } }));
    assert_eq!(e.kind, ErrorKind::CONFIG, "{e}");
    assert!(e.message.contains("not valid for name"), "{e}");
    assert_eq!(seen.lock().unwrap().handshakes, 0);

    // verifyHostname = false: the chain is still checked, the name is not.
    let config = serde_json::json!({
        "seeds": [seed], "connectTimeoutMs": 1000, "tls": { "caFile": ca.file, "verifyHostname": false },
    });
    let e = create_error(config);
    assert_eq!(e.kind, ErrorKind::UNAVAILABLE, "{e}");
    assert!(seen.lock().unwrap().handshakes >= 1, "{:?}", seen.lock().unwrap().errors);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn verify_hostname_false_still_refuses_another_ca() {
    let dir = temp_dir("chain-only");
    let (ca, other) = (Ca::new(&dir, "cluster"), Ca::new(&dir, "other"));
    let (cert, key) = ca.issue(&dir, "node", &["cassandra-1.example"]);
    let runtime = runtime();
    let (seed, seen) = tls_node(&runtime, &cert, &key, None);
    let config = serde_json::json!({
        "seeds": [seed], "connectTimeoutMs": 1000, "tls": { "caFile": other.file, "verifyHostname": false },
    });
    let e = create_error(config);
    assert_eq!(e.kind, ErrorKind::CONFIG, "{e}");
    assert!(e.message.contains("invalid peer certificate"), "{e}");
    assert_eq!(seen.lock().unwrap().handshakes, 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_client_certificate_is_presented_when_configured() {
    let dir = temp_dir("client-cert");
    let ca = Ca::new(&dir, "cluster");
    let (cert, key) = ca.issue(&dir, "node", &["127.0.0.1"]);
    let (client_cert, client_key) = ca.issue(&dir, "client", &["heroic-client"]);
    let runtime = runtime();
    let (seed, seen) = tls_node(&runtime, &cert, &key, Some(&ca.file));
    let config = serde_json::json!({
        "seeds": [seed], "connectTimeoutMs": 1000,
        "tls": { "caFile": ca.file, "certFile": client_cert, "keyFile": client_key },
    });
    let e = create_error(config);
    assert_eq!(e.kind, ErrorKind::UNAVAILABLE, "{e}");
    let seen = seen.lock().unwrap();
    assert!(seen.client_certs >= 1, "no handshake with a client certificate: {:?}", seen.errors);
    drop(seen);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_unreadable_ca_file_fails_create_with_a_config_error_naming_it() {
    let e = create_error(
        serde_json::json!({ "seeds": ["127.0.0.1:1"], "tls": { "caFile": "/nonexistent/heroic/ca.pem" } }),
    );
    assert_eq!(e.kind, ErrorKind::CONFIG, "{e}");
    assert!(e.message.contains("cannot read tls.caFile /nonexistent/heroic/ca.pem"), "{e}");
    let e = create_error(
        serde_json::json!({ "seeds": ["127.0.0.1:1"], "tls": { "caFile": "/ca.pem", "keyFile": "/k.pem" } }),
    );
    assert_eq!(e.kind, ErrorKind::CONFIG, "{e}");
    assert!(e.message.contains("tls.certFile and tls.keyFile must be given together"), "{e}");
}
