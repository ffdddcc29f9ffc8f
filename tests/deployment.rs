//! Deployment as users run it: prometheus/ passes `promtool check config`
//! and `promtool check rules`; `scripts/cluster up` brings the topology up
//! (Redis, the proxy, a real Prometheus, and two shards, each a primary
//! with a synchronous standby: `pgvshard shard` processes by default, or
//! PostgreSQL 18 + pgvector with a prometheus-postgres-exporter per node)
//! on free loopback ports; a mixed load runs through the proxy with
//! tokio-postgres (DDL with an HNSW index, inserts spanning shards, KNN
//! reads checked against the exact answer, a point read, a cache hit, a
//! duplicate key, and a primary killed with SIGKILL and its synchronous
//! standby promoted by the proxy, no acknowledged row lost); each primary
//! has its standby streaming synchronously and the proxy reads from it;
//! Prometheus reports every target of the topology up but the killed
//! node's, and that node down; every query of every panel of
//! dashboards/*.json that applies to the topology is valid PromQL with a
//! non-empty, finite answer from that Prometheus; and `scripts/cluster
//! down` stops every process.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio_postgres::{Client, NoTls};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a program to completion; panics with its output when it fails.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} does not run: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
fn promtool_accepts_the_config_and_the_rules() {
    let dir = repo().join("prometheus");
    let config = run(Command::new("promtool")
        .args(["check", "config"])
        .arg(dir.join("prometheus.yml")));
    assert!(config.contains("SUCCESS"), "{config}");
    let rules = run(Command::new("promtool")
        .args(["check", "rules"])
        .arg(dir.join("alerts.yml")));
    assert!(rules.contains("SUCCESS"), "{rules}");
    let tests = run(Command::new("promtool")
        .args(["test", "rules"])
        .arg(dir.join("alerts_test.yml")));
    assert!(tests.contains("SUCCESS"), "{tests}");
}

/// docker-compose.yml validates with Debian's docker-compose (no Docker
/// engine needed), with and without the postgres-shards profile, names
/// the services of the topology, and every file it mounts exists.
#[test]
fn compose_file_validates() {
    for profile in [None, Some("postgres-shards")] {
        let mut cmd = Command::new("docker-compose");
        cmd.current_dir(repo()).args(["-f", "docker-compose.yml"]);
        if let Some(p) = profile {
            cmd.args(["--profile", p]);
        }
        let text = run(cmd.arg("config"));
        let config: serde_norway::Value = serde_norway::from_str(&text).expect("YAML");
        let services = config["services"].as_mapping().expect("services");
        for name in [
            "proxy",
            "redis",
            "pgvshard-s0",
            "pgvshard-s0-standby",
            "pgvshard-s1",
            "pgvshard-s1-standby",
            "prometheus",
            "grafana",
            "pg-s0",
            "pg-s0-standby",
            "pg-s1",
            "pg-s1-standby",
            "pg-s0-exporter",
            "pg-s0-standby-exporter",
            "pg-s1-exporter",
            "pg-s1-standby-exporter",
            "proxy-postgres",
        ] {
            assert!(services.contains_key(name), "no service {name}:\n{text}");
        }
        for (name, service) in services {
            let mounts = service["volumes"]
                .as_sequence()
                .cloned()
                .unwrap_or_default();
            for mount in mounts {
                let mount = mount.as_str().expect("short volume syntax");
                let source = mount.split(':').next().unwrap();
                if source.starts_with('/') {
                    assert!(
                        Path::new(source).exists(),
                        "{name:?} mounts {source}, which does not exist"
                    );
                }
            }
        }
    }
}

/// Ports of one cluster, by the environment variable scripts/cluster reads.
const PORTS: [&str; 12] = [
    "PGVSHARD_PORT",
    "PGVSHARD_METRICS_PORT",
    "PROMETHEUS_PORT",
    "REDIS_PORT",
    "PGVSHARD_S0_PORT",
    "PGVSHARD_S0_STANDBY_PORT",
    "PGVSHARD_S1_PORT",
    "PGVSHARD_S1_STANDBY_PORT",
    "PGVSHARD_S0_METRICS_PORT",
    "PGVSHARD_S1_METRICS_PORT",
    "PGVSHARD_S0_STANDBY_METRICS_PORT",
    "PGVSHARD_S1_STANDBY_METRICS_PORT",
];

/// A topology started by `scripts/cluster up`, stopped by `down` on drop.
struct Cluster {
    dir: PathBuf,
    ports: Vec<(&'static str, u16)>,
    shards: Shards,
}

/// The kind of shard a topology runs.
#[derive(Clone, Copy, PartialEq)]
enum Shards {
    /// `pgvshard shard` processes: scripts/cluster's default.
    Pgvshard,
    /// PostgreSQL 18 + pgvector (`--shards postgres`).
    Postgres,
}

impl Shards {
    fn name(self) -> &'static str {
        match self {
            Shards::Pgvshard => "pgvshard",
            Shards::Postgres => "postgres",
        }
    }
}

impl Cluster {
    fn up(shards: Shards) -> Cluster {
        // Distinct free ports: every listener is held until all are taken.
        let listeners: Vec<TcpListener> = PORTS
            .iter()
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
            .collect();
        let ports = PORTS
            .iter()
            .zip(&listeners)
            .map(|(name, l)| (*name, l.local_addr().unwrap().port()))
            .collect();
        drop(listeners);
        let dir = std::env::temp_dir().join(format!(
            "pgvshard-deploy-{}-{}",
            std::process::id(),
            shards.name()
        ));
        std::fs::remove_dir_all(&dir).ok();
        let cluster = Cluster { dir, ports, shards };
        let started = Instant::now();
        let mut up = cluster.script("up");
        // pgvshard shards are the default: `up DIR` alone starts them.
        if shards == Shards::Postgres {
            up.args(["--shards", "postgres"]);
        }
        let out = run(up
            .env("PGVSHARD_BIN", env!("CARGO_BIN_EXE_pgvshard"))
            // Every ANN read of the short load feeds the recall panel.
            .env("PGVSHARD_RECALL_SAMPLE_RATE", "1"));
        eprintln!(
            "cluster up ({} shards) in {:.1} s:\n{out}",
            shards.name(),
            started.elapsed().as_secs_f64()
        );
        cluster
    }

    fn script(&self, command: &str) -> Command {
        let mut cmd = Command::new(repo().join("scripts/cluster"));
        cmd.arg(command).arg(&self.dir);
        for (name, port) in &self.ports {
            cmd.env(name, port.to_string());
        }
        cmd
    }

    fn port(&self, name: &str) -> u16 {
        self.ports.iter().find(|(n, _)| *n == name).unwrap().1
    }

    async fn connect(&self) -> Client {
        let (client, conn) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user=app password=app-secret dbname=postgres",
                self.port("PGVSHARD_PORT")
            ),
            NoTls,
        )
        .await
        .expect("connect through the proxy");
        tokio::spawn(conn);
        client
    }

    /// GET on Prometheus' HTTP API, the `data` of its JSON answer.
    fn prometheus(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let mut cmd = Command::new("curl");
        cmd.args(["-sfG", "--max-time", "10"]).arg(format!(
            "http://127.0.0.1:{}{path}",
            self.port("PROMETHEUS_PORT")
        ));
        for (k, v) in query {
            cmd.arg("--data-urlencode").arg(format!("{k}={v}"));
        }
        let body: Value = serde_json::from_str(&run(&mut cmd)).expect("JSON from Prometheus");
        assert_eq!(body["status"], "success", "{path} {query:?}: {body}");
        body["data"].clone()
    }

    /// Waits until Prometheus knows `targets` targets and has scraped
    /// every one at or after `since` (unix seconds).
    fn wait_for_scrape(&self, targets: usize, since: f64) {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let data = self.prometheus("/api/v1/query", &[("query", "timestamp(up)")]);
            let times: Vec<f64> = data["result"]
                .as_array()
                .expect("result")
                .iter()
                .filter_map(|s| s["value"][1].as_str()?.parse().ok())
                .collect();
            if times.len() == targets && times.iter().all(|t| *t >= since) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not every target scraped after {since}: {data}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Every target Prometheus knows, as (job, node, health); node is
    /// empty for targets that are not a shard node.
    fn targets(&self) -> Vec<(String, String, String)> {
        let data = self.prometheus("/api/v1/targets", &[("state", "active")]);
        let label = |t: &Value, name: &str| t["labels"][name].as_str().unwrap_or("").to_string();
        data["activeTargets"]
            .as_array()
            .expect("activeTargets")
            .iter()
            .map(|t| {
                (
                    label(t, "job"),
                    label(t, "node"),
                    t["health"].as_str().unwrap_or("?").to_string(),
                )
            })
            .collect()
    }

    /// The one value of an instant query that must answer one series.
    fn scalar(&self, query: &str) -> f64 {
        let data = self.prometheus("/api/v1/query", &[("query", query)]);
        let result = data["result"].as_array().expect("result");
        assert_eq!(result.len(), 1, "{query}: {data}");
        result[0]["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{query}: {data}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = self.script("down").output();
        if !matches!(&out, Ok(o) if o.status.success()) {
            eprintln!("scripts/cluster down failed: {out:?}");
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn vector(i: i64) -> String {
    format!("[{},{},{}]", i % 7, (i * 3) % 11, i % 5)
}

/// Squared L2 distance of row `i`'s vector to `[1,1,1]`.
fn distance(i: i64) -> i64 {
    [i % 7 - 1, (i * 3) % 11 - 1, i % 5 - 1]
        .iter()
        .map(|x| x * x)
        .sum()
}

/// The 5 smallest distances to `[1,1,1]` among the rows `ids`.
fn exact_top5(ids: impl Iterator<Item = i64>) -> Vec<i64> {
    let mut all: Vec<i64> = ids.map(distance).collect();
    all.sort();
    all.truncate(5);
    all
}

/// Creates the tables of the load.
async fn schema(cluster: &Cluster) {
    cluster
        .connect()
        .await
        .batch_execute(
            "CREATE TABLE items (id bigint PRIMARY KEY, category int NOT NULL, embedding vector(3));
             CREATE INDEX items_embedding ON items USING hnsw (embedding vector_l2_ops);
             CREATE TABLE notes (id bigint PRIMARY KEY, embedding vector(3))",
        )
        .await
        .expect("DDL through the proxy");
}

/// Round `round` (0, 1, …) of the mixed load: writes on both shards, KNN
/// by an index and by comparing rows, point reads, a cache hit, a
/// duplicate key.
async fn load(cluster: &Cluster, round: i64) {
    let client = cluster.connect().await;
    let first = round * 1000 + 1;
    let rows: Vec<String> = (first..first + 60)
        .map(|i| format!("({i}, {}, '{}')", i % 3, vector(i)))
        .collect();
    client
        .batch_execute(&format!("INSERT INTO items VALUES {}", rows.join(",")))
        .await
        .expect("an insert spanning both shards");
    for i in first..first + 10 {
        client
            .execute(
                "INSERT INTO notes VALUES ($1, $2::text::vector)",
                &[&i, &vector(i)],
            )
            .await
            .expect("insert");
    }
    // KNN by the HNSW index, and by comparing rows (notes has no index).
    let knn = "SELECT id FROM items ORDER BY embedding <-> '[1,1,1]' LIMIT 5";
    let want = exact_top5((0..=round).flat_map(|r| r * 1000 + 1..r * 1000 + 61));
    for _ in 0..5 {
        // Compared by distance: which of several rows at an equal distance
        // makes the top 5 is not defined.
        let mut got: Vec<i64> = client
            .query(knn, &[])
            .await
            .expect("KNN")
            .iter()
            .map(|r| distance(r.get(0)))
            .collect();
        got.sort();
        assert_eq!(got, want, "KNN through the proxy");
        let notes = client
            .query(
                "SELECT id FROM notes ORDER BY embedding <-> '[1,1,1]' LIMIT 3",
                &[],
            )
            .await
            .expect("KNN without an index");
        assert_eq!(notes.len(), 3);
    }
    // Point reads by the shard key.
    for i in first + 2..first + 5 {
        let row = client
            .query_one("SELECT category FROM items WHERE id = $1", &[&i])
            .await
            .expect("point read");
        assert_eq!(row.get::<_, i32>(0), (i % 3) as i32);
    }
    // A cache hit: the same read again on the primary (with Redis, answers
    // read on a standby do not fill the cache).
    client
        .batch_execute("SET pgvshard.target_session_attrs = 'read-write'")
        .await
        .expect("SET");
    for _ in 0..3 {
        client.query(knn, &[]).await.expect("KNN on the primary");
    }
    // An error from a shard: a duplicate key (23505).
    let err = client
        .execute("INSERT INTO items VALUES (7, 0, '[0,0,0]')", &[])
        .await
        .expect_err("duplicate key");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION),
        "{err:?}"
    );
}

/// Each primary streams to its standby synchronously (as the primary's
/// pg_stat_replication says).
async fn synchronous_standbys(cluster: &Cluster) {
    for i in 0..2 {
        let (shard, conn) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user=postgres password=shard-secret dbname=postgres",
                cluster.port(&format!("PGVSHARD_S{i}_PORT"))
            ),
            NoTls,
        )
        .await
        .expect("connect to a primary");
        tokio::spawn(conn);
        let rows: Vec<(String, String, String)> = shard
            .query(
                "SELECT application_name::text, state::text, sync_state::text FROM pg_stat_replication",
                &[],
            )
            .await
            .expect("pg_stat_replication")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let standby = format!("s{i}_standby");
        assert_eq!(
            rows,
            [(standby, "streaming".to_string(), "sync".to_string())],
            "shard s{i}'s primary"
        );
    }
}

/// The proxy polls both nodes of each shard and finds the standby serving
/// reads (SHOW pgvshard.replicas).
async fn proxy_reads_from_standbys(cluster: &Cluster) {
    let client = cluster.connect().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let nodes: Vec<(String, String, String)> = client
            .simple_query("SHOW pgvshard.replicas")
            .await
            .expect("SHOW pgvshard.replicas")
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some((
                    r.get("node")?.to_string(),
                    r.get("role")?.to_string(),
                    r.get("state")?.to_string(),
                )),
                _ => None,
            })
            .collect();
        let expected = |(node, role, state): &(String, String, String)| {
            let want = if node.ends_with("_standby") {
                "standby"
            } else {
                "primary"
            };
            role == want && (state == "up" || (want == "standby" && state == "lagging"))
        };
        if nodes.len() == 4 && nodes.iter().all(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy does not see a primary and a readable standby per shard: {nodes:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Kills shard s1's primary (SIGKILL) and writes until the proxy has
/// promoted its synchronous standby; every row acknowledged before is
/// still there.
async fn failover(cluster: &Cluster) {
    let client = cluster.connect().await;
    let before: i64 = client
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .expect("count")
        .get(0);
    let pid_file = match cluster.shards {
        Shards::Pgvshard => "run/s1.pid",
        Shards::Postgres => "s1/data/postmaster.pid",
    };
    let pid = std::fs::read_to_string(cluster.dir.join(pid_file)).expect("s1's pid");
    let pid = pid.lines().next().unwrap().trim();
    run(Command::new("kill").args(["-KILL", pid]));
    // Far from the KNN queries' vector: the load's checks stay exact.
    let rows: Vec<String> = (5001..=5020)
        .map(|i| format!("({i}, {}, '[100,100,{i}]')", i % 3))
        .collect();
    let insert = format!("INSERT INTO items VALUES {}", rows.join(","));
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = client.batch_execute(&insert).await {
        assert!(Instant::now() < deadline, "writes did not resume: {e:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after: i64 = client
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .expect("count after the failover")
        .get(0);
    assert_eq!(after, before + 20, "rows lost or doubled by the failover");
}

/// Sends every query of every panel of the dashboards that apply to the
/// topology (`skip`: the tag of the other topology's dashboards) to
/// Prometheus, `$__rate_interval` as 1m (the load ran within it): each
/// must be valid and answer at least one finite value.
fn check_dashboards(cluster: &Cluster, skip: &str) -> usize {
    let mut checked = 0;
    let mut empty = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("dashboards"))
        .expect("dashboards/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    for file in files {
        let dash: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).expect("JSON");
        let tags = dash["tags"].as_array().expect("tags");
        if tags.iter().any(|t| t == skip) {
            continue;
        }
        let datasource = &dash["templating"]["list"][0];
        assert_eq!(datasource["type"], "datasource", "{}", file.display());
        for panel in dash["panels"].as_array().expect("panels") {
            assert_eq!(panel["datasource"]["uid"], "${datasource}");
            let targets = panel["targets"].as_array().expect("targets");
            assert!(!targets.is_empty());
            for target in targets {
                let expr = target["expr"].as_str().expect("expr");
                let query = expr.replace("$__rate_interval", "1m");
                let data = cluster.prometheus("/api/v1/query", &[("query", &query)]);
                let finite = data["result"].as_array().is_some_and(|r| {
                    r.iter().any(|s| {
                        s["value"][1]
                            .as_str()
                            .and_then(|v| v.parse::<f64>().ok())
                            .is_some_and(f64::is_finite)
                    })
                });
                checked += 1;
                if !finite {
                    empty.push(format!(
                        "{} / {}: {expr} -> {data}",
                        file.file_name().unwrap().to_string_lossy(),
                        panel["title"]
                    ));
                }
            }
        }
    }
    assert!(empty.is_empty(), "empty panels:\n{}", empty.join("\n"));
    checked
}

/// Brings a topology up, loads it, fails shard s1 over, and checks the
/// targets in Prometheus (the jobs `expected`, each with that many
/// targets: all up but the killed node's own) and the dashboards.
async fn topology(shards: Shards, expected: &[(&str, usize)], skip: &str) {
    let cluster = Cluster::up(shards);
    let targets = expected.iter().map(|(_, n)| n).sum();
    schema(&cluster).await;
    // Two rounds with a scrape of every target between them, so counters
    // created by the first round increase in the second and rates over
    // the load are not empty.
    load(&cluster, 0).await;
    synchronous_standbys(&cluster).await;
    proxy_reads_from_standbys(&cluster).await;
    let status = run(&mut cluster.script("status"));
    let processes = status.lines().count() - 1;
    assert_eq!(status.matches("running").count(), processes, "{status}");
    cluster.wait_for_scrape(targets, now());
    failover(&cluster).await;
    load(&cluster, 1).await;
    cluster.wait_for_scrape(targets, now());
    // Prometheus sees the killed primary: a `pgvshard shard` serves its own
    // metrics, so its target is down; a PostgreSQL node's exporter stays
    // up and reports pg_up 0.
    let killed = match shards {
        Shards::Pgvshard => {
            let up = cluster.scalar(r#"up{job="pgvshard-shard",node="s1"}"#);
            assert_eq!(up, 0.0, "s1's target after the kill");
            Some(("pgvshard-shard", "s1"))
        }
        Shards::Postgres => {
            assert_eq!(cluster.scalar(r#"pg_up{node="s1"}"#), 0.0, "s1's pg_up");
            assert_eq!(cluster.scalar(r#"pg_up{node="s1_standby"}"#), 1.0);
            None
        }
    };
    let targets = cluster.targets();
    for (job, count) in expected {
        let known = targets.iter().filter(|(j, _, _)| j == job).count();
        assert_eq!(known, *count, "job {job}: {targets:?}");
    }
    for (job, node, health) in &targets {
        let want = if killed == Some((job.as_str(), node.as_str())) {
            "down"
        } else {
            "up"
        };
        assert_eq!(health, want, "{job} {node}: {targets:?}");
    }
    let queries = check_dashboards(&cluster, skip);
    eprintln!("{queries} dashboard queries answered");
    // `down` stops every process: none runs, no port answers.
    run(&mut cluster.script("down"));
    let status = run(&mut cluster.script("status"));
    assert_eq!(status.matches("stopped").count(), processes, "{status}");
    for (name, port) in &cluster.ports {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", *port)).is_err(),
            "{name} {port} still answers after down"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_shards_with_synchronous_standbys() {
    topology(
        Shards::Postgres,
        &[
            ("pgvshard-proxy", 1),
            ("prometheus", 1),
            ("pgvshard-shard", 0),
            ("postgres", 4),
        ],
        "pgvshard-shards",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgvshard_shards_with_synchronous_standbys() {
    topology(
        Shards::Pgvshard,
        &[
            ("pgvshard-proxy", 1),
            ("prometheus", 1),
            ("pgvshard-shard", 4),
            ("postgres", 0),
        ],
        "postgres-shards",
    )
    .await;
}
