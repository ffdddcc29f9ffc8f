//! The client side of TLS, for servers that connect to other servers (the
//! proxy to its remote shards): libpq's `sslmode` values `disable`,
//! `prefer`, `require` and `verify-full`, negotiated as libpq does — an
//! SSLRequest, the one-byte answer, then the handshake on the same
//! socket — with the same rustls + `ring` stack as [`super::tls`].
//!
//! `prefer` and `require` encrypt without checking who answers, as in
//! libpq (the handshake signatures are still verified against the
//! certificate the server sent, so only its identity goes unchecked);
//! `verify-full` checks the chain against `sslrootcert` and the host name.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::responder::ClientIo;
use super::startup::SSL_REQUEST;
use super::tls::TlsConfigError;

/// Whether and how a connection to a server uses TLS (libpq's names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Plain TCP; no SSLRequest is sent.
    #[default]
    Disable,
    /// TLS when the server offers it, else plain TCP.
    Prefer,
    /// TLS or no connection; the certificate is not checked.
    Require,
    /// TLS with the certificate checked against `sslrootcert` and the host.
    VerifyFull,
}

/// TLS settings of connections to one server.
#[derive(Clone)]
pub struct ClientTls {
    mode: SslMode,
    connector: Option<TlsConnector>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Settings for `mode`; `verify-full` needs `root_cert` (a PEM file of
    /// the certificates to trust). Errors name the field (`sslmode` or
    /// `sslrootcert`).
    pub fn new(mode: SslMode, root_cert: Option<&Path>) -> Result<Self, TlsConfigError> {
        let provider = Arc::new(ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("sslmode", format!("cannot set up TLS: {e}")))?;
        let mut config = match (mode, root_cert) {
            (SslMode::Disable, _) => {
                return Ok(ClientTls {
                    mode,
                    connector: None,
                })
            }
            (SslMode::VerifyFull, None) => {
                return Err(bad(
                    "sslrootcert",
                    "verify-full needs the PEM file of the certificates to trust".to_string(),
                ))
            }
            (SslMode::VerifyFull, Some(path)) => builder
                .with_root_certificates(roots(path)?)
                .with_no_client_auth(),
            (SslMode::Prefer | SslMode::Require, _) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
                .with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(ClientTls {
            mode,
            connector: Some(TlsConnector::from(Arc::new(config))),
        })
    }

    /// Negotiates TLS on a fresh connection to `host` as the mode asks and
    /// returns the stream to run the startup on; the error says why the
    /// connection cannot go on.
    pub async fn negotiate(
        &self,
        mut socket: TcpStream,
        host: &str,
    ) -> Result<Box<dyn ClientIo>, String> {
        let Some(connector) = &self.connector else {
            return Ok(Box::new(socket));
        };
        let mut request = 8i32.to_be_bytes().to_vec();
        request.extend_from_slice(&SSL_REQUEST.to_be_bytes());
        socket
            .write_all(&request)
            .await
            .map_err(|e| e.to_string())?;
        // One byte, read unbuffered: anything after 'S' belongs to TLS.
        let answer = socket.read_u8().await.map_err(|e| e.to_string())?;
        match answer {
            b'S' => {
                let name = ServerName::try_from(host.to_string())
                    .map_err(|e| format!("\"{host}\" is not a host name for TLS: {e}"))?;
                let stream = connector
                    .connect(name, socket)
                    .await
                    .map_err(|e| format!("TLS handshake failed: {e}"))?;
                Ok(Box::new(stream))
            }
            b'N' if self.mode == SslMode::Prefer => Ok(Box::new(socket)),
            b'N' => Err("server does not support SSL, but SSL was required".to_string()),
            other => Err(format!(
                "received invalid response to SSL negotiation: {}",
                char::from(other).escape_default()
            )),
        }
    }
}

fn bad(field: &'static str, problem: String) -> TlsConfigError {
    TlsConfigError { field, problem }
}

fn roots(path: &Path) -> Result<RootCertStore, TlsConfigError> {
    let text = std::fs::read(path).map_err(|e| {
        bad(
            "sslrootcert",
            format!(
                "cannot read {}: {e}; give a readable PEM file",
                path.display()
            ),
        )
    })?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&text) {
        let cert = cert.map_err(|e| {
            bad(
                "sslrootcert",
                format!("{} is not a PEM certificate file: {e}", path.display()),
            )
        })?;
        roots.add(cert).map_err(|e| {
            bad(
                "sslrootcert",
                format!("{} holds an unusable certificate: {e}", path.display()),
            )
        })?;
    }
    if roots.is_empty() {
        return Err(bad(
            "sslrootcert",
            format!("{} holds no certificate", path.display()),
        ));
    }
    Ok(roots)
}

/// `prefer`/`require`: any certificate is accepted as the server's, but
/// the handshake must be signed by the key of the certificate it sent.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
