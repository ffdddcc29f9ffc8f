//! Authentication and the connection limit.

mod wire_support;

use pgvshard::wire::{AuthMethod, WireConfig};
use tokio_postgres::NoTls;
use wire_support::{code_and_message, psql, select_one, TestServer};

fn scram_config() -> WireConfig {
    WireConfig {
        auth: AuthMethod::ScramSha256,
        ..WireConfig::default()
    }
    .with_user("alice", "s3cret")
}

#[tokio::test]
async fn scram_accepts_the_right_password() {
    let server = TestServer::start(scram_config()).await;
    let (client, conn) = server
        .pg_config("alice")
        .password("s3cret")
        .connect(NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    assert_eq!(select_one(&client).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn scram_refuses_wrong_passwords_and_unknown_users_alike() {
    let server = TestServer::start(scram_config()).await;
    for (user, password) in [("alice", "wrong"), ("mallory", "s3cret")] {
        let e = server
            .pg_config(user)
            .password(password)
            .connect(NoTls)
            .await
            .err()
            .expect("refused");
        let (code, message) = code_and_message(&e);
        assert_eq!(code, "28P01");
        assert_eq!(
            message,
            format!("password authentication failed for user \"{user}\"")
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn psql_authenticates_with_scram() {
    let server = TestServer::start(scram_config()).await;
    let run = |password: &str| {
        let mut command = server.psql_query("alice", "SELECT 1");
        command.env("PGPASSWORD", password);
        psql::output(command)
    };
    let ok = run("s3cret").await;
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "1\n");
    let bad = run("nope").await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr)
        .contains("password authentication failed for user \"alice\""));
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_limit_get_53300() {
    let server = TestServer::start_with(|c| c.max_connections = 1).await;
    let first = server.connect("a").await;
    let e = server
        .pg_config("b")
        .connect(NoTls)
        .await
        .err()
        .expect("refused");
    assert_eq!(e.as_db_error().unwrap().code().code(), "53300");
    drop(first);
    // The slot frees once the first session has ended.
    let mut connected = false;
    for _ in 0..50 {
        if server.pg_config("c").connect(NoTls).await.is_ok() {
            connected = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(connected);
    server.stop().await;
}

/// The salt a SCRAM exchange for `user` offers (server-first's `s=`).
async fn offered_salt(server: &TestServer, user: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = wire_support::raw::connect(server.port).await.unwrap();
    s.write_all(&wire_support::raw::startup_packet(user))
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"R"), "no SASL request");
    let first = b"n,,n=,r=clientnonce";
    let mut body = b"SCRAM-SHA-256\0".to_vec();
    body.extend_from_slice(&(first.len() as i32).to_be_bytes());
    body.extend_from_slice(first);
    let mut msg = b"p".to_vec();
    msg.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    msg.extend_from_slice(&body);
    s.write_all(&msg).await.unwrap();
    let n = s.read(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf[9..n]).into_owned();
    text.split(',')
        .find_map(|f| f.strip_prefix("s="))
        .expect("a salt")
        .to_string()
}

#[tokio::test]
async fn an_unknown_user_gets_the_same_salt_every_time() {
    // PostgreSQL derives the mock salt from the user name: a salt that
    // changed per attempt would tell that the user does not exist.
    let server = TestServer::start(scram_config()).await;
    let first = offered_salt(&server, "mallory").await;
    assert_eq!(offered_salt(&server, "mallory").await, first);
    assert_ne!(offered_salt(&server, "eve").await, first);
    let alice = offered_salt(&server, "alice").await;
    assert_eq!(offered_salt(&server, "alice").await, alice);
    server.stop().await;
}

#[tokio::test]
async fn passwords_are_saslprepped_as_postgres_does() {
    // SASLprep maps a soft hyphen to nothing and a no-break space to a
    // space: libpq and tokio-postgres send the prepared password's proof.
    let server = TestServer::start(
        WireConfig {
            auth: AuthMethod::ScramSha256,
            ..WireConfig::default()
        }
        .with_user("bob", "I\u{00AD}X\u{00A0}Y"),
    )
    .await;
    for password in ["IX Y", "I\u{00AD}X\u{00A0}Y"] {
        let (client, conn) = server
            .pg_config("bob")
            .password(password)
            .connect(NoTls)
            .await
            .unwrap_or_else(|e| panic!("{password:?}: {e}"));
        tokio::spawn(conn);
        assert_eq!(select_one(&client).await, 1);
    }
    server.stop().await;
}
