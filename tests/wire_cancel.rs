//! CancelRequest, statement_timeout and server shutdown.

mod wire_support;

use std::time::Duration;

use pgvshard::wire::WireConfig;
use tokio_postgres::NoTls;
use wire_support::{code_and_message, raw, select_one, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_stops_async_and_blocking_statements() {
    let server = TestServer::start(WireConfig::default()).await;
    for sql in [
        "SELECT sleep(10000)",
        "SELECT spin(10000)",
        "SELECT spin_in_place(10000)",
    ] {
        let client = server.connect("alice").await;
        let token = client.cancel_token();
        let started = std::time::Instant::now();
        let running = tokio::spawn(async move {
            let r = client.simple_query(sql).await.map(drop);
            (r, client)
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        token.cancel_query(NoTls).await.unwrap();
        let (result, client) = running.await.unwrap();
        let (code, message) = code_and_message(&result.unwrap_err());
        assert_eq!(code, "57014");
        assert_eq!(message, "canceling statement due to user request");
        assert!(started.elapsed() < Duration::from_secs(5));
        // The session survives and a later cancel does not hit the next query.
        token.cancel_query(NoTls).await.unwrap();
        assert_eq!(select_one(&client).await, 1);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_cancels_with_57014() {
    let server = TestServer::start(WireConfig::default()).await;
    let client = server.connect("alice").await;
    client
        .simple_query("SET statement_timeout = '100ms'")
        .await
        .unwrap();
    // Awaiting, on the blocking pool, and on the session's own thread
    // (where only the runtime's timer, not the session's task, runs).
    for sql in [
        "SELECT sleep(10000)",
        "SELECT spin(10000)",
        "SELECT spin_in_place(10000)",
    ] {
        let started = std::time::Instant::now();
        let (code, message) = code_and_message(&client.query(sql, &[]).await.unwrap_err());
        assert_eq!(code, "57014");
        assert_eq!(message, "canceling statement due to statement timeout");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // The simple protocol too.
    let e = client
        .simple_query("SELECT spin_in_place(10000)")
        .await
        .unwrap_err();
    assert_eq!(code_and_message(&e).0, "57014");
    assert_eq!(
        client.simple_query("SELECT sleep(10)").await.unwrap().len(),
        3
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_running_statements_finish_and_closes_idle_sessions() {
    let server = TestServer::start(WireConfig::default()).await;
    let idle = server.connect("idle").await;
    let busy = server.connect("busy").await;
    let running = tokio::spawn(async move { busy.query_one("SELECT sleep(300)", &[]).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let port = server.port;
    server.stop().await;
    let row = running
        .await
        .unwrap()
        .expect("the running statement finished");
    assert!(row.get::<_, bool>(0));
    assert!(idle.simple_query("SELECT 1").await.is_err());
    assert!(idle.is_closed());
    assert!(raw::connect(port).await.is_err());
}
