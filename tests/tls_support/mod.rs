//! Support shared by the TLS tests: self-signed certificates made with the
//! openssl command line, psql run with a libpq connection string (so each
//! test chooses its sslmode), and a tokio-postgres TLS connector (rustls
//! with the `ring` provider) that trusts one certificate.
//!
//! Each test file that uses it includes it with `mod tls_support;`, and
//! none uses every helper, so unused items are expected here.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio_postgres_rustls::MakeRustlsConnect;

/// A self-signed certificate and its key, as PEM files.
pub struct Certs {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certs {
    /// A fresh P-256 certificate for `localhost` and 127.0.0.1, valid one
    /// day, written to `dir/<stem>.crt` and `dir/<stem>.key`.
    pub fn generate(dir: &Path, stem: &str) -> Certs {
        std::fs::create_dir_all(dir).unwrap();
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-subj", "/CN=localhost", "-days", "1"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            // webpki refuses a CA certificate as the server's own.
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .args(["-addext", "extendedKeyUsage=serverAuth"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Certs { cert, key }
    }

    /// The `tls:` section of a proxy or shard YAML file for these files.
    pub fn yaml(&self, required: bool) -> String {
        format!(
            "tls:\n  cert_file: {}\n  key_file: {}\n  required: {required}\n",
            self.cert.display(),
            self.key.display()
        )
    }

    /// A tokio-postgres connector that trusts only this certificate.
    pub fn connector(&self) -> MakeRustlsConnect {
        MakeRustlsConnect::new(self.client_config())
    }

    /// A rustls client configuration (ring) that trusts only this
    /// certificate and offers no ALPN protocol.
    pub fn client_config(&self) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&self.cert).unwrap())
            .unwrap();
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
    }
}

/// A fresh, empty directory under the target dir for test `name`.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tls-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// libpq's connection string for the server on `port` as user `postgres`,
/// database `db`, with `extra` settings (sslmode, sslrootcert, host, …).
/// `hostaddr` pins the address so that `host=localhost` is only the name
/// the certificate is checked against.
pub fn conninfo(port: u16, extra: &str) -> String {
    format!("hostaddr=127.0.0.1 host=localhost port={port} user=postgres dbname=db {extra}")
}

/// Runs `psql` with `conninfo`, stopping at the first error, with
/// unaligned tuples-only output; each of `commands` is one `-c`.
pub async fn psql(conninfo: &str, commands: &[&str]) -> Output {
    let mut command = Command::new("psql");
    command
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(conninfo);
    for c in commands {
        command.args(["-c", c]);
    }
    tokio::task::spawn_blocking(move || command.output().expect("psql is installed"))
        .await
        .unwrap()
}

/// stdout of a psql run that must succeed.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr of a psql run that must fail.
pub fn refused(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "psql succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// True when psql's `\conninfo` output says the session uses TLS 1.3:
/// psql up to 17 prints "SSL connection (protocol: TLSv1.3, …)", psql 18 a
/// table with an "SSL Protocol" row (unaligned: `SSL Protocol|TLSv1.3`).
pub fn conninfo_says_tls13(out: &str) -> bool {
    out.contains("SSL connection (protocol: TLSv1.3") || out.contains("SSL Protocol|TLSv1.3")
}
