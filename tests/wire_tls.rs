//! TLS in the wire layer, with psql and tokio-postgres (rustls, ring):
//! a client gets TLS exactly when its sslmode asks for it, `required`
//! refuses plain startups as a `hostssl`-only PostgreSQL does, direct TLS
//! (PostgreSQL 17's `sslnegotiation=direct`) works with ALPN, garbage in
//! place of a handshake ends only that connection, CancelRequest works
//! over plain TCP and over TLS, and `pgvshard shard` serves TLS from its
//! `tls:` section.

mod shard_support;
mod tls_support;
mod wire_support;

use std::time::Duration;

use pgvshard::wire::{TlsConfig, WireConfig};
use tls_support::{conninfo, conninfo_says_tls13, fresh_dir, ok, psql, refused, Certs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::config::{SslMode, SslNegotiation};
use tokio_postgres::NoTls;
use wire_support::{code_and_message, raw, select_one, TestServer};

const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
const GSSENC_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];

async fn tls_server(name: &str, required: bool) -> (TestServer, Certs) {
    let certs = Certs::generate(&fresh_dir(name), "server");
    let tls = TlsConfig {
        cert_file: certs.cert.clone(),
        key_file: certs.key.clone(),
        required,
    }
    .load()
    .unwrap();
    let server = TestServer::start_with(|c| c.tls = Some(tls)).await;
    (server, certs)
}

/// A tokio-postgres session over TLS; with `Prefer` its CancelRequests
/// may go over plain TCP (with `NoTls`).
async fn tls_client(server: &TestServer, certs: &Certs, mode: SslMode) -> tokio_postgres::Client {
    let mut config = tokio_postgres::Config::new();
    config
        .host("localhost")
        .hostaddr([127, 0, 0, 1].into())
        .port(server.port)
        .user("alice")
        .dbname("db")
        .ssl_mode(mode);
    let (client, conn) = config.connect(certs.connector()).await.unwrap();
    tokio::spawn(conn);
    client
}

/// Reads exactly one byte: the server's answer to SSLRequest/GSSENCRequest.
async fn answer(stream: &mut tokio::net::TcpStream) -> u8 {
    let mut b = [0u8; 1];
    stream.read_exact(&mut b).await.unwrap();
    b[0]
}

/// A raw connection whose SSLRequest the server accepted ('S').
async fn tls_accepted(port: u16) -> tokio::net::TcpStream {
    let mut s = raw::connect(port).await.unwrap();
    s.write_all(&SSL_REQUEST).await.unwrap();
    assert_eq!(answer(&mut s).await, b'S');
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_gets_tls_when_its_sslmode_asks() {
    let (server, certs) = tls_server("psql-modes", false).await;
    let root = format!("sslrootcert={}", certs.cert.display());
    let conninfo_for = |mode: &str| conninfo(server.port, &format!("sslmode={mode} {root}"));
    for mode in ["require", "verify-ca", "verify-full", "prefer"] {
        let out = ok(&psql(&conninfo_for(mode), &["\\conninfo", "SELECT 1"]).await);
        assert!(conninfo_says_tls13(&out), "{mode}: {out}");
        assert!(out.ends_with("1\n"), "{mode}: {out}");
    }
    let out = ok(&psql(&conninfo_for("disable"), &["\\conninfo", "SELECT 1"]).await);
    assert!(!conninfo_says_tls13(&out), "{out}");
    assert!(out.ends_with("1\n"), "{out}");
    // A client that trusts another certificate refuses this server.
    let other = Certs::generate(&fresh_dir("psql-modes-other"), "other");
    let stranger = conninfo(
        server.port,
        &format!("sslmode=verify-full sslrootcert={}", other.cert.display()),
    );
    let err = refused(&psql(&stranger, &["SELECT 1"]).await);
    assert!(err.contains("certificate verify failed"), "{err}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tls_ssl_request_gets_n() {
    let server = TestServer::start(WireConfig::default()).await;
    let err = refused(&psql(&conninfo(server.port, "sslmode=require"), &["SELECT 1"]).await);
    assert!(
        err.contains("server does not support SSL, but SSL was required"),
        "{err}"
    );
    let out = ok(&psql(&conninfo(server.port, "sslmode=prefer"), &["SELECT 1"]).await);
    assert_eq!(out, "1\n");
    // Asking twice is refused as PostgreSQL refuses it.
    let mut s = raw::connect(server.port).await.unwrap();
    s.write_all(&SSL_REQUEST).await.unwrap();
    assert_eq!(answer(&mut s).await, b'N');
    s.write_all(&SSL_REQUEST).await.unwrap();
    let reply = String::from_utf8_lossy(&raw::read_to_close(&mut s).await).into_owned();
    assert!(
        reply.contains("unsupported frontend protocol 1234.5679"),
        "{reply}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_tls_refuses_plain_startup_with_28000() {
    let (server, certs) = tls_server("required", true).await;
    let e = server
        .pg_config("alice")
        .connect(NoTls)
        .await
        .err()
        .expect("a plain startup is refused");
    assert_eq!(
        code_and_message(&e),
        (
            "28000".to_string(),
            "no pg_hba.conf entry for host \"127.0.0.1\", user \"alice\", database \"db\", no encryption".to_string()
        )
    );
    let err = refused(&psql(&conninfo(server.port, "sslmode=disable"), &["SELECT 1"]).await);
    assert!(err.contains("no encryption"), "{err}");
    let client = tls_client(&server, &certs, SslMode::Require).await;
    assert_eq!(select_one(&client).await, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_a_handshake_ends_only_that_connection() {
    let (server, certs) = tls_server("garbage", false).await;
    // Not a TLS record at all.
    let mut s = tls_accepted(server.port).await;
    s.write_all(&[0x42; 300]).await.unwrap();
    raw::read_to_close(&mut s).await;
    // A handshake record cut short, then the client leaves.
    let mut s = tls_accepted(server.port).await;
    s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    drop(s);
    // A direct-TLS start whose ClientHello is nonsense.
    let mut s = raw::connect(server.port).await.unwrap();
    s.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
        .await
        .unwrap();
    raw::read_to_close(&mut s).await;
    // Plain bytes sent right behind SSLRequest are refused, not decrypted.
    let mut s = raw::connect(server.port).await.unwrap();
    let mut both = SSL_REQUEST.to_vec();
    both.extend_from_slice(&raw::startup_packet("mallory"));
    s.write_all(&both).await.unwrap();
    assert_eq!(answer(&mut s).await, b'S');
    raw::assert_fatal_08p01(
        &raw::read_to_close(&mut s).await,
        "received unencrypted data after SSL request",
    );
    // GSSENCRequest gets 'N'; TLS may still follow.
    let mut s = raw::connect(server.port).await.unwrap();
    s.write_all(&GSSENC_REQUEST).await.unwrap();
    assert_eq!(answer(&mut s).await, b'N');
    s.write_all(&SSL_REQUEST).await.unwrap();
    assert_eq!(answer(&mut s).await, b'S');
    drop(s);
    let client = tls_client(&server, &certs, SslMode::Require).await;
    assert_eq!(select_one(&client).await, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_reaches_a_tls_session_over_plain_tcp_and_over_tls() {
    // Required: the sessions are surely over TLS; cancels need not be.
    let (server, certs) = tls_server("cancel", true).await;
    for over_tls in [false, true] {
        let client = tls_client(&server, &certs, SslMode::Prefer).await;
        let token = client.cancel_token();
        let running = tokio::spawn(async move {
            let r = client.simple_query("SELECT sleep(10000)").await.map(drop);
            (r, client)
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        if over_tls {
            token.cancel_query(certs.connector()).await.unwrap();
        } else {
            token.cancel_query(NoTls).await.unwrap();
        }
        let (result, client) = tokio::time::timeout(Duration::from_secs(5), running)
            .await
            .expect("the statement was canceled")
            .unwrap();
        let (code, _) = code_and_message(&result.unwrap_err());
        assert_eq!(code, "57014", "over TLS: {over_tls}");
        assert_eq!(select_one(&client).await, 1);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shard_server_serves_tls_from_its_config() {
    let dir = fresh_dir("shard");
    let certs = Certs::generate(&dir, "shard");
    let config = dir.join("shard.yaml");
    std::fs::write(&config, certs.yaml(true)).unwrap();
    let shard = shard_support::Shard::start_with(
        &dir.join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let verify = format!("sslmode=verify-full sslrootcert={}", certs.cert.display());
    let out = ok(&psql(
        &conninfo(shard.port, &verify),
        &[
            "\\conninfo",
            "CREATE TABLE t (id int PRIMARY KEY, v vector(2))",
            "INSERT INTO t VALUES (1, '[0,0]'), (2, '[5,5]'), (3, '[1,1]')",
            "SELECT id FROM t ORDER BY v <-> '[0.9,0.9]' LIMIT 2",
        ],
    )
    .await);
    assert!(conninfo_says_tls13(&out), "{out}");
    assert!(out.ends_with("3\n1\n"), "{out}");
    let err = refused(&psql(&conninfo(shard.port, "sslmode=disable"), &["SELECT 1"]).await);
    assert!(err.contains("no encryption"), "{err}");
    shard.stop();

    // A key that is not the certificate's stops the shard at start.
    let other = Certs::generate(&dir, "other");
    let mismatched = Certs {
        cert: certs.cert.clone(),
        key: other.key.clone(),
    };
    std::fs::write(&config, mismatched.yaml(false)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgvshard"))
        .args(["shard", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tls.key_file:") && err.contains("is not the private key of the certificate"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_tls_without_ssl_request_needs_alpn() {
    let (server, certs) = tls_server("direct", true).await;
    let direct = |alpn: bool| {
        let mut config = tokio_postgres::Config::new();
        config
            .host("localhost")
            .hostaddr([127, 0, 0, 1].into())
            .port(server.port)
            .user("alice")
            .dbname("db")
            .ssl_mode(SslMode::Require)
            .ssl_negotiation(SslNegotiation::Direct);
        let mut tls = certs.client_config();
        if alpn {
            tls.alpn_protocols = vec![b"postgresql".to_vec()];
        }
        (config, tokio_postgres_rustls::MakeRustlsConnect::new(tls))
    };
    let (config, connector) = direct(true);
    let (client, conn) = config.connect(connector).await.unwrap();
    tokio::spawn(conn);
    assert_eq!(select_one(&client).await, 1);
    let (config, connector) = direct(false);
    let e = config.connect(connector).await.err().expect("refused");
    assert_eq!(
        code_and_message(&e),
        (
            "08P01".to_string(),
            "received direct SSL connection request without ALPN protocol negotiation extension"
                .to_string()
        )
    );
    server.stop().await;
}
