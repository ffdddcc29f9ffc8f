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
