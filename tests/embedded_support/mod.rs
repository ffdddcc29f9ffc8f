//! The real `pgvshard` binary with no subcommand (the embedded default:
//! the proxy and four in-process shards) on an OS-chosen port, with its
//! data in a fresh directory, for tests that point real clients (psycopg,
//! pgbench, PgBouncer) at it. The port is read from the line the binary
//! prints on start, so parallel tests never race for a port.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A fresh directory for test `name` under cargo's temp dir.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("embedded-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test dir");
    dir
}

/// A running embedded proxy; killed when dropped.
pub struct EmbeddedProxy {
    /// The proxy's port on 127.0.0.1 (trust auth, any user).
    pub port: u16,
    /// The test's directory (the data is under `dir/data`).
    pub dir: PathBuf,
    child: Child,
}

impl EmbeddedProxy {
    /// Starts the binary for test `name` and waits for its announcement.
    pub fn start(name: &str) -> EmbeddedProxy {
        let dir = fresh_dir(name);
        let log = std::fs::File::create(dir.join("proxy.log")).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_pgvshard"))
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("pgvshard starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let port = line
                    .split_once(" proxy on ")
                    .and_then(|(_, rest)| rest.split_whitespace().next())
                    .and_then(|addr| addr.rsplit(':').next())
                    .and_then(|p| p.parse::<u16>().ok());
                if let Some(port) = port {
                    tx.send(port).ok();
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "pgvshard did not announce its port; see {}",
                    dir.join("proxy.log").display()
                )
            });
        EmbeddedProxy { port, dir, child }
    }

    /// A tokio-postgres client (its connection task spawned).
    pub async fn connect(&self) -> tokio_postgres::Client {
        connect_to(self.port).await
    }
}

/// A tokio-postgres client of 127.0.0.1:`port` as `postgres` (its
/// connection task spawned).
pub async fn connect_to(port: u16) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap_or_else(|e| panic!("connect to port {port}: {e}"));
    tokio::spawn(async move {
        conn.await.ok();
    });
    client
}

impl Drop for EmbeddedProxy {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Creates `table (id int PRIMARY KEY, embedding vector(dim))` with ids
/// 0..`rows` and seeded vectors in [0, 1).
pub async fn load_vectors(client: &tokio_postgres::Client, table: &str, rows: usize, dim: usize) {
    client
        .batch_execute(&format!(
            "CREATE TABLE {table} (id int PRIMARY KEY, embedding vector({dim}))"
        ))
        .await
        .expect("CREATE TABLE");
    for insert in vector_inserts(table, rows, dim, 500) {
        client.batch_execute(&insert).await.expect("INSERT");
    }
}

/// `INSERT` statements for `rows` rows of `table (id, embedding)`,
/// seeded, `per` rows each.
fn vector_inserts(table: &str, rows: usize, dim: usize, per: usize) -> Vec<String> {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 40) as f32 / (1u64 << 24) as f32
    };
    let values: Vec<String> = (0..rows)
        .map(|id| {
            let v: Vec<String> = (0..dim).map(|_| format!("{:.3}", next())).collect();
            format!("({id}, '[{}]')", v.join(","))
        })
        .collect();
    values
        .chunks(per)
        .map(|c| {
            format!(
                "INSERT INTO {table} (id, embedding) VALUES {}",
                c.join(", ")
            )
        })
        .collect()
}
