//! TLS for the protocol servers: the `tls:` section the proxy and the
//! shard both read, its PEM files loaded and checked at start, and the
//! acceptor the startup phase hands a socket to after answering an
//! SSLRequest with 'S' (see [`super::startup`]).
//!
//! rustls runs with the `ring` crypto provider only: rustls' default,
//! aws-lc-rs, needs cmake and about 90 s of C compilation, and ring covers
//! what PostgreSQL clients negotiate (TLS 1.2 and 1.3, ECDSA and RSA
//! certificates). The server offers the ALPN protocol `postgresql`, as
//! PostgreSQL 17+ does, so libpq clients that send ALPN are accepted and
//! clients of other protocols are refused during the handshake.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use serde::{Deserialize, Serialize};
use tokio_rustls::TlsAcceptor;

/// The ALPN protocol name PostgreSQL registered.
const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// The `tls:` section of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the server certificate, then any intermediates.
    pub cert_file: PathBuf,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// Refuse clients that do not use TLS (FATAL 28000, as a PostgreSQL
    /// server whose pg_hba.conf has only `hostssl` lines does).
    #[serde(default)]
    pub required: bool,
}

/// A `tls:` mistake: the field (`cert_file` or `key_file`) and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct TlsConfigError {
    /// The field inside the `tls:` section.
    pub field: &'static str,
    /// What is wrong and how to fix it.
    pub problem: String,
}

fn bad(field: &'static str, problem: String) -> TlsConfigError {
    TlsConfigError { field, problem }
}

/// TLS as a server uses it: the handshake and whether plain clients are
/// refused.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
    required: bool,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Runs the server side of a handshake on `stream`.
    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// True when clients without TLS are refused.
    pub fn required(&self) -> bool {
        self.required
    }
}

impl TlsConfig {
    /// Reads the certificate and key and checks that they belong together.
    pub fn load(&self) -> Result<ServerTls, TlsConfigError> {
        let certs = read_certificates(&self.cert_file)?;
        let key = read_key(&self.key_file)?;
        let provider = Arc::new(ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("cert_file", format!("cannot set up TLS: {e}")))?
            .with_no_client_auth();
        let mut config = builder.with_single_cert(certs, key).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => bad(
                "key_file",
                format!(
                    "{} is not the private key of the certificate in {}: give the key the certificate was made with",
                    self.key_file.display(),
                    self.cert_file.display()
                ),
            ),
            other => bad(
                "key_file",
                format!(
                    "{} cannot be used: {other} (use an ECDSA P-256/P-384, Ed25519 or RSA key)",
                    self.key_file.display()
                ),
            ),
        })?;
        config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            required: self.required,
        })
    }
}

fn read(field: &'static str, path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|e| {
        bad(
            field,
            format!(
                "cannot read {}: {e}; give the path of a readable PEM file",
                path.display()
            ),
        )
    })
}

fn pem_problem(path: &Path, what: &str, e: &pem::Error) -> String {
    format!("{} is not a PEM {what} file: {e}", path.display())
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let text = read("cert_file", path)?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("cert_file", pem_problem(path, "certificate", &e)))?;
    if certs.is_empty() {
        return Err(bad(
            "cert_file",
            format!(
                "{} holds no certificate: it must contain a -----BEGIN CERTIFICATE----- block",
                path.display()
            ),
        ));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let text = read("key_file", path)?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| match e {
        pem::Error::NoItemsFound => bad(
            "key_file",
            format!(
                "{} holds no private key: it must contain a -----BEGIN PRIVATE KEY----- (or RSA/EC PRIVATE KEY) block",
                path.display()
            ),
        ),
        other => bad("key_file", pem_problem(path, "private key", &other)),
    })
}
