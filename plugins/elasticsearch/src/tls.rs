//! HTTPS to the nodes (the `tls` table): the CA file and the client
//! certificate handed to the `elasticsearch` crate's HTTP client (reqwest
//! with rustls), and how certificate failures are told apart from a node
//! being down.
//!
//! The files are parsed here first, so that a wrong path or a file that is
//! not PEM is a config error naming the file, instead of the HTTP client's
//! terse build error or a failure at the first request.

use std::path::Path;

use elasticsearch::auth::{ClientCertificate, Credentials};
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::transport::TransportBuilder;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;
use crate::error::{Error, Result};

/// The contents of `path` (the value of `tls.<key>`).
fn read(key: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Config(format!("cannot read tls.{key} {}: {e}", path.display())))
}

/// Checks that `pem` (the contents of `tls.<key>`) holds at least one
/// certificate and nothing malformed.
fn check_certificates(key: &str, path: &Path, pem: &[u8]) -> Result<()> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("tls.{key} {} is not a valid PEM file: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "tls.{key} {} holds no certificate (expected a PEM block such as -----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    for (i, cert) in certs.iter().enumerate() {
        rustls::server::ParsedCertificate::try_from(cert).map_err(|e| {
            Error::Config(format!("tls.{key} {}: certificate {} cannot be parsed: {e}", path.display(), i + 1))
        })?;
    }
    Ok(())
}

/// Trusts `tls.ca_file` and presents the client certificate, if any.
pub fn configure(builder: TransportBuilder, tls: &TlsConfig) -> Result<TransportBuilder> {
    let ca = read("ca_file", &tls.ca_file)?;
    check_certificates("ca_file", &tls.ca_file, &ca)?;
    let ca =
        Certificate::from_pem(&ca).map_err(|e| Error::Config(format!("tls.ca_file {}: {e}", tls.ca_file.display())))?;
    let builder = builder.cert_validation(CertificateValidation::Full(ca));
    match (&tls.cert_file, &tls.key_file) {
        (None, None) => Ok(builder),
        (Some(cert_file), Some(key_file)) => {
            let mut identity = read("cert_file", cert_file)?;
            check_certificates("cert_file", cert_file, &identity)?;
            let key = read("key_file", key_file)?;
            // The parse error is not shown: it could quote part of the key.
            PrivateKeyDer::from_pem_slice(&key).map_err(|_| {
                Error::Config(format!(
                    "tls.key_file {} holds no usable private key (expected -----BEGIN PRIVATE KEY----- or an RSA/EC key)",
                    key_file.display()
                ))
            })?;
            // reqwest takes the chain and the key as one PEM document.
            identity.push(b'\n');
            identity.extend_from_slice(&key);
            Ok(builder.auth(Credentials::Certificate(ClientCertificate::Pem(identity))))
        }
        _ => Err(Error::Config("tls.cert_file and tls.key_file must be given together".into())),
    }
}

/// Whether `e` (or an error under it) is a TLS certificate failure: a CA
/// that does not vouch for the node, a host name the certificate does not
/// name, a client certificate the node refused. Retrying does not fix these.
pub fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(error) = next {
        if error.downcast_ref::<rustls::Error>().is_some_and(is_certificate_failure) {
            return true;
        }
        // rustls' errors reach reqwest wrapped in io::Errors (two deep),
        // whose `source` skips the error they wrap: step into it instead.
        next = match error.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    false
}

fn is_certificate_failure(e: &rustls::Error) -> bool {
    use rustls::AlertDescription as Alert;
    matches!(
        e,
        rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::AlertReceived(
                Alert::BadCertificate | Alert::UnknownCA | Alert::CertificateRequired | Alert::CertificateUnknown
            )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_rustls_errors_are_found() {
        let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, cert);
        assert!(is_certificate_error(&io));
        let other = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(!is_certificate_error(&other));
        let alert = std::io::Error::other(rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired));
        assert!(is_certificate_error(&alert));
        // As reqwest's connector hands it over: an io::Error in an io::Error.
        let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        let nested = std::io::Error::other(std::io::Error::new(std::io::ErrorKind::InvalidData, cert));
        assert!(is_certificate_error(&nested));
    }

    fn configure_error(tls: &TlsConfig) -> String {
        match configure(TransportBuilder::default(), tls) {
            Ok(_) => panic!("{tls:?} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn file_errors_name_the_key_and_the_file() {
        let tls = TlsConfig { ca_file: "/nonexistent/heroic/es-ca.pem".into(), cert_file: None, key_file: None };
        let e = configure_error(&tls);
        assert!(e.contains("cannot read tls.ca_file /nonexistent/heroic/es-ca.pem"), "{e}");
        let dir = std::env::temp_dir().join(format!("heroic-es-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_pem = dir.join("not.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let e = configure_error(&TlsConfig { ca_file: not_pem.clone(), ..tls.clone() });
        assert!(e.contains(&format!("tls.ca_file {} holds no certificate", not_pem.display())), "{e}");
        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        let e = configure_error(&TlsConfig { ca_file: garbage.clone(), ..tls });
        assert!(e.contains(&format!("tls.ca_file {}: certificate 1 cannot be parsed", garbage.display())), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
