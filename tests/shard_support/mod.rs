//! Starting real `pgvshard shard` processes on free loopback ports with a
//! temporary data directory, and talking to them with psql and
//! tokio-postgres.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A fresh, empty directory under the target dir for test `name` (and no
/// log beside it).
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("shard-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    // An earlier run's log would show its ports.
    let _ = std::fs::remove_file(dir.with_extension("log"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The port a shard logged after `skip` bytes of its log: shards start on
/// port 0 and log the address they bound, so parallel tests never race for
/// a port picked in advance.
fn logged_port(log: &Path, skip: u64) -> Option<u16> {
    let text = std::fs::read(log).ok()?;
    let fresh = String::from_utf8_lossy(text.get(skip as usize..)?).into_owned();
    let line = fresh
        .lines()
        .find(|l| l.contains("pgvshard shard listening"))?;
    // Text (`… addr=127.0.0.1:5433`) or JSON (`"addr":"127.0.0.1:5433"`).
    let addr = match line.split("\"addr\":\"").nth(1) {
        Some(rest) => rest.split('"').next()?,
        None => line,
    };
    addr.rsplit(':').next()?.trim().parse().ok()
}

/// A running shard process.
pub struct Shard {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Shard {
    /// Starts a shard on `dir` and waits until it accepts connections.
    pub fn start(dir: &Path) -> Shard {
        Shard::start_with(dir, &[])
    }

    /// Starts a shard on a fresh directory for test `name` and runs the
    /// setup `sql` through psql.
    pub fn with_schema(name: &str, sql: &str) -> Shard {
        let shard = Shard::start(&fresh_dir(name));
        if let Err(e) = shard.psql(sql) {
            panic!("setup failed: {e}");
        }
        shard
    }

    /// Starts a shard with extra command-line arguments (e.g. `--config`).
    pub fn start_with(dir: &Path, extra: &[&str]) -> Shard {
        Shard::launch(dir, "127.0.0.1:0", extra)
    }

    /// Starts a shard again on `port` (where a proxy expects it), with
    /// extra command-line arguments.
    pub fn start_on(dir: &Path, port: u16, extra: &[&str]) -> Shard {
        Shard::launch(dir, &format!("127.0.0.1:{port}"), extra)
    }

    fn launch(dir: &Path, listen: &str, extra: &[&str]) -> Shard {
        let log_path = dir.with_extension("log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let skip = log.metadata().unwrap().len();
        let mut child = Command::new(env!("CARGO_BIN_EXE_pgvshard"))
            .args(["shard", "--listen", listen, "--data-dir"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Some(port) = logged_port(&log_path, skip) {
                break port;
            }
            let exited = child.try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "shard did not start; see {}",
                log_path.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        Shard {
            port,
            dir: dir.to_path_buf(),
            child: Some(child),
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "shard exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "shard did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL (no shutdown at all).
    pub fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Runs `sql` through psql (unaligned, tuples only, stop on error)
    /// and returns stdout, or stderr on failure.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        self.psql_with(&["-A", "-t"], sql)
    }

    /// Runs `sql` through psql with extra flags.
    pub fn psql_with(&self, flags: &[&str], sql: &str) -> Result<String, String> {
        let mut child = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "db",
            ])
            .args(["-p", &self.port.to_string()])
            .args(flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("psql is installed (scripts/test.sh installs postgresql-client)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// A tokio-postgres client.
    pub async fn connect(&self) -> tokio_postgres::Client {
        self.try_connect().await.unwrap()
    }

    /// A tokio-postgres client, or the error (the shard may be restarting).
    pub async fn try_connect(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, conn) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname("db")
            .connect(tokio_postgres::NoTls)
            .await?;
        tokio::spawn(conn);
        Ok(client)
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The SQLSTATE of a tokio-postgres error.
pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no code: {e}"))
}

/// What `sql` answers, as one line: the first column of its rows joined
/// by commas, or `error SQLSTATE` (scripts compared with PostgreSQL's).
pub async fn answer_line(client: &tokio_postgres::Client, sql: &str) -> String {
    match client.simple_query(sql).await {
        Ok(msgs) => msgs
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(","),
        Err(e) => format!("error {}", sqlstate(&e)),
    }
}

/// A running `pgvshard proxy --config FILE` process; killed on drop.
pub struct ProxyProcess {
    pub port: u16,
    pub log: PathBuf,
    child: Child,
}

impl ProxyProcess {
    /// Starts a proxy from `config` with the environment `env`, its log
    /// at `config` with the extension `log`; waits until it listens.
    pub fn start(config: &Path, env: &[(&str, &str)]) -> ProxyProcess {
        let log = config.with_extension("log");
        let child = Command::new(env!("CARGO_BIN_EXE_pgvshard"))
            .arg("proxy")
            .arg("--config")
            .arg(config)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut proxy = ProxyProcess {
            port: 0,
            log,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(port) = proxy_port(&proxy.log_text()) {
                proxy.port = port;
                return proxy;
            }
            assert!(
                Instant::now() < deadline,
                "proxy did not start: {}",
                proxy.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to end.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A `pgvshard proxy` process over the servers listening on `ports` (as
/// shards s0, s1, …; `pgvshard shard` processes or PostgreSQL), with
/// `extra` YAML appended to its configuration.
pub fn proxy_over(name: &str, ports: &[u16], extra: &str) -> ProxyProcess {
    let dir = fresh_dir(name);
    let mut yaml = String::from("listen: 127.0.0.1:0\nshards:\n");
    for (i, port) in ports.iter().enumerate() {
        yaml.push_str(&format!(
            "  - name: s{i}\n    port: {port}\n    pool:\n      size: 4\n      connect_timeout_ms: 2000\n"
        ));
    }
    yaml.push_str(extra);
    let config = dir.join("proxy.yaml");
    std::fs::write(&config, yaml).expect("write the proxy's configuration");
    ProxyProcess::start(&config, &[])
}

/// The port in the proxy's "listening" line (text or JSON logs).
fn proxy_port(log: &str) -> Option<u16> {
    let line = log
        .lines()
        .find(|l| l.contains("pgvshard proxy listening"))?;
    let addr = match line.split("addr=").nth(1) {
        Some(rest) => rest.split_whitespace().next()?,
        None => line.split("\"addr\":\"").nth(1)?.split('"').next()?,
    };
    addr.rsplit(':').next()?.parse().ok()
}

/// Polls `check` until it holds, for at most `secs` seconds.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} within {secs} s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The metrics port the shard at `dir` logged at its `start`-th start
/// (1 for the first): it logs it just after its listening line, so this
/// waits for it.
pub fn metrics_port(dir: &Path, start: usize) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(dir.with_extension("log")).unwrap();
        let port = log
            .lines()
            .filter(|l| l.contains("metrics endpoint listening"))
            .nth(start - 1)
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.trim().parse().ok());
        if let Some(port) = port {
            return port;
        }
        assert!(
            Instant::now() < deadline,
            "the shard logs its metrics address"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The body of `GET /metrics`.
pub fn scrape(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    reply.split("\r\n\r\n").nth(1).unwrap().to_string()
}

/// The value of the sample `name` whose labels include every one of
/// `labels` (`key="value"`).
pub fn value(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let series = l.rsplit_once(' ').map_or("", |(s, _)| s);
            let bare = series.split('{').next().unwrap_or("");
            bare == name && labels.iter().all(|want| series.contains(want))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {name}{labels:?} in\n{text}"))
}

/// A standby named `name` of `primary` on `dir` (empty or its own).
pub fn start_standby_on(primary: &Shard, dir: &Path, name: &str) -> Shard {
    let config = config_file(dir, name);
    Shard::start_with(
        dir,
        &[
            "--standby-of",
            &format!("127.0.0.1:{}", primary.port),
            "--config",
            config.to_str().unwrap(),
        ],
    )
}

/// A shard config naming the standby `name` of a primary (user postgres).
fn config_file(dir: &Path, name: &str) -> PathBuf {
    let path = dir.with_extension("yaml");
    std::fs::write(
        &path,
        format!(
            "metrics_listen: \"127.0.0.1:0\"\nstandby_of:\n  application_name: {name}\n  user: postgres\n"
        ),
    )
    .unwrap();
    path
}

/// Polls until `standby` has replayed everything `primary` wrote.
pub async fn wait_caught_up(primary: &Shard, standby: &Shard) {
    let p = primary.connect().await;
    let target: String = p
        .query_one("SELECT pg_current_wal_lsn()", &[])
        .await
        .unwrap()
        .get(0);
    let s = standby.connect().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let replayed: Option<String> = s
            .query_one("SELECT pg_last_wal_replay_lsn()", &[])
            .await
            .unwrap()
            .get(0);
        if replayed.as_deref() == Some(target.as_str()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "standby on port {} stuck at {replayed:?}, primary at {target}",
            standby.port
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
