//! Support shared by the `wire_*` integration tests: the fixture handler,
//! a server on a free loopback port, tokio-postgres and psql clients for it,
//! and raw-socket helpers.
//!
//! Each `tests/wire_*.rs` file is a crate of its own that includes this
//! module with `mod wire_support;`, and none of them uses every helper, so
//! unused items are expected here rather than dead.
#![allow(dead_code)]

pub mod fixture;
pub mod psql;
pub mod raw;

use std::time::Duration;

use pgvshard::wire::{self, WireConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use fixture::FixtureFactory;

/// A running server: its port, and how to stop it.
pub struct TestServer {
    pub port: u16,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Starts the fixture server on 127.0.0.1:0.
    pub async fn start(config: WireConfig) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(wire::serve(listener, FixtureFactory, config, async {
            stopped.await.ok();
        }));
        TestServer {
            port,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Starts the fixture server with the default config as `change` leaves it.
    pub async fn start_with(change: impl FnOnce(&mut WireConfig)) -> TestServer {
        let mut config = WireConfig::default();
        change(&mut config);
        TestServer::start(config).await
    }

    /// A tokio-postgres config for `user`.
    pub fn pg_config(&self, user: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host("127.0.0.1").port(self.port).user(user).dbname("db");
        c
    }

    /// Connects with tokio-postgres as `user` (trust).
    pub async fn connect(&self, user: &str) -> tokio_postgres::Client {
        let (client, conn) = self
            .pg_config(user)
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }

    /// Signals shutdown and waits for `serve` to return.
    pub async fn stop(mut self) {
        self.stop.take().unwrap().send(()).ok();
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("serve returned")
            .unwrap()
            .unwrap();
    }
}

/// Runs `SELECT 1` over the extended protocol and returns the value, to show
/// a session still works.
pub async fn select_one(client: &tokio_postgres::Client) -> i32 {
    client
        .query_one("SELECT 1", &[])
        .await
        .unwrap()
        .get::<_, i32>(0)
}

/// The SQLSTATE and message of a server error.
pub fn code_and_message(e: &tokio_postgres::Error) -> (String, String) {
    let db = e.as_db_error().expect("a server error");
    (db.code().code().to_string(), db.message().to_string())
}
