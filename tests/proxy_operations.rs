//! Operating a running `pgvshard proxy` process over two `pgvshard
//! shard` processes: a configuration reload (SQL and SIGHUP) applies
//! pools, cache settings and users while a client stays connected and
//! keeps querying; an invalid file is refused with the reason and the old
//! configuration keeps serving; settings that need a restart are named.
//! Also `log_format: json`, the slow-statement log with per-shard
//! timings, and `SHOW pgvshard.stats` / `pgvshard.stats_reset()`. TLS
//! certificates are rotated by a reload too.

mod pg_support;
mod shard_support;
mod tls_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use pg_support::{text_rows, PgServer};
use shard_support::{eventually, fresh_dir, sqlstate, ProxyProcess, Shard};
use tokio_postgres::Client;

const SCHEMA: &str = "CREATE TABLE t (id bigint PRIMARY KEY, v vector(2))";

fn insert() -> String {
    let rows: Vec<String> = (1..=20).map(|i| format!("({i}, '[{i},1]')")).collect();
    format!("INSERT INTO t VALUES {}", rows.join(", "))
}

/// The proxy's file: SCRAM `users` (`name: password` lines), the pool
/// size of both shards, then `extra` top-level YAML.
fn proxy_yaml(shards: &[&Shard], users: &[(&str, &str)], pool: usize, extra: &str) -> String {
    let mut yaml = String::from("listen: 127.0.0.1:0\nauth:\n  method: scram-sha-256\n  users:\n");
    for (u, p) in users {
        yaml.push_str(&format!("    {u}: {p}\n"));
    }
    yaml.push_str("shards:\n");
    for (i, s) in shards.iter().enumerate() {
        yaml.push_str(&format!(
            "  - name: s{i}\n    port: {}\n    dbname: db\n    pool:\n      size: {pool}\n",
            s.port
        ));
    }
    yaml.push_str(extra);
    yaml
}

async fn login(port: u16, user: &str, password: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user(user)
        .password(password)
        .dbname("db")
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(conn);
    Ok(client)
}

/// psql's stdout and stderr for `sql` as `user` on `port`.
fn psql_as(port: u16, user: &str, password: &str, db: &str, sql: &str) -> (String, String) {
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-d", db])
        .args(["-p", &port.to_string(), "-U", user, "-c", sql])
        .env("PGPASSWORD", password)
        .output()
        .expect("psql runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn count(client: &Client) -> String {
    let rows = text_rows(client, "SELECT count(*) FROM t").await.unwrap();
    rows[0][0].clone().unwrap()
}

/// `SHOW pgvshard.pools`: size per shard.
async fn pool_sizes(client: &Client) -> Vec<String> {
    text_rows(client, "SHOW pgvshard.pools")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r[1].clone().unwrap())
        .collect()
}

/// `SHOW pgvshard.config` by name: (setting, context, pending_restart).
async fn settings(client: &Client) -> BTreeMap<String, (Option<String>, String, String)> {
    text_rows(client, "SHOW pgvshard.config")
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let (name, setting) = (r[0].clone().unwrap(), r[1].clone());
            (
                name,
                (setting, r[2].clone().unwrap(), r[3].clone().unwrap()),
            )
        })
        .collect()
}

/// `SHOW pgvshard.cache`: L1 hits.
async fn l1_hits(client: &Client) -> u64 {
    let rows = text_rows(client, "SHOW pgvshard.cache").await.unwrap();
    let l1 = rows.iter().find(|r| r[0].as_deref() == Some("l1")).unwrap();
    l1[1].as_deref().unwrap().parse().unwrap()
}

/// The proxy's `/metrics` body (the address it logged).
fn scrape(proxy: &ProxyProcess) -> String {
    use std::io::{Read, Write};
    let log = proxy.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("metrics endpoint listening"))
        .expect("the proxy logs its metrics address");
    let addr = line
        .split("addr=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

fn hangup(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_applies_pools_cache_and_users_while_clients_stay_connected() {
    let pg = PgServer::start().await;
    let s0 = Shard::start(&fresh_dir("ops-reload-s0"));
    let s1 = Shard::start(&fresh_dir("ops-reload-s1"));
    let shards = [&s0, &s1];
    let config = fresh_dir("ops-reload").join("proxy.yaml");
    let alice = [("alice", "a-secret")];
    let cache_on = "cache:\n  enabled: true\nmetrics:\n  listen: 127.0.0.1:0\n";
    write(&config, &proxy_yaml(&shards, &alice, 2, cache_on));
    let proxy = ProxyProcess::start(&config, &[]);

    let a = login(proxy.port, "alice", "a-secret").await.unwrap();
    a.batch_execute(SCHEMA).await.unwrap();
    a.batch_execute(&insert()).await.unwrap();
    assert_eq!(count(&a).await, "20");
    assert_eq!(pool_sizes(&a).await, ["2", "2"]);
    let refused = login(proxy.port, "bob", "b-secret").await.unwrap_err();
    assert_eq!(sqlstate(&refused), "28P01");
    let point = "SELECT v FROM t WHERE id = 1";
    for _ in 0..2 {
        text_rows(&a, point).await.unwrap();
    }
    let hits = l1_hits(&a).await;
    assert!(hits >= 1, "{hits}");

    // A new user, bigger pools, cache settings — and a new listen address,
    // which needs a restart.
    let both = [("alice", "a-secret"), ("bob", "b-secret")];
    let cache =
        "cache:\n  enabled: true\n  ttl_seconds: 60\n  uncached_tables: [t]\n  l1_bytes: 1000000\n";
    let edited = proxy_yaml(&shards, &both, 5, cache).replace("127.0.0.1:0", "127.0.0.1:1");
    write(&config, &edited);
    let (ours, warnings) = psql_as(
        proxy.port,
        "alice",
        "a-secret",
        "db",
        "SELECT pgvshard.reload()",
    );
    let (theirs, _) = psql_as(
        pg.port,
        "postgres",
        "",
        "postgres",
        "SELECT pg_reload_conf()",
    );
    assert_eq!(ours, theirs, "{warnings}");
    assert!(
        warnings.contains(
            "WARNING:  setting \"listen\" cannot be changed without restarting the proxy"
        ) && warnings.contains("setting \"cache.l1_bytes\" cannot be changed"),
        "{warnings}"
    );

    // The client connected before the reload keeps its session.
    assert_eq!(count(&a).await, "20");
    assert_eq!(pool_sizes(&a).await, ["5", "5"]);
    let b = login(proxy.port, "bob", "b-secret").await.unwrap();
    assert_eq!(count(&b).await, "20");
    let s = settings(&a).await;
    let get = |n: &str| s.get(n).cloned().unwrap_or_else(|| panic!("no {n}"));
    assert_eq!(
        get("shards[0].pool.size"),
        (Some("5".into()), "reload".into(), "f".into())
    );
    assert_eq!(
        get("listen"),
        (Some("127.0.0.1:0".into()), "restart".into(), "t".into())
    );
    assert_eq!(
        get("cache.l1_bytes"),
        (Some("67108864".into()), "restart".into(), "t".into())
    );
    assert_eq!(get("cache.ttl_seconds").0, Some("60".into()));
    assert_eq!(get("cache.uncached_tables").0, Some("[\"t\"]".into()));
    assert_eq!(get("auth.users.bob").0, Some("********".into()));
    assert!(s.values().all(|(v, _, _)| v.as_deref() != Some("b-secret")));
    // t is no longer cached.
    for _ in 0..2 {
        text_rows(&a, point).await.unwrap();
    }
    assert_eq!(l1_hits(&a).await, hits);

    // An invalid file is refused with the reason; the old one serves.
    write(&config, &proxy_yaml(&shards, &both, 0, cache_on));
    let e = a
        .simple_query("SELECT pgvshard.reload()")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "F0000");
    let db = e.as_db_error().unwrap();
    assert!(
        db.message()
            .contains("contains errors; no changes were applied"),
        "{db:?}"
    );
    assert!(
        db.detail()
            .unwrap_or_default()
            .contains("shards[0].pool.size"),
        "{db:?}"
    );
    assert_eq!(pool_sizes(&a).await, ["5", "5"]);
    assert_eq!(count(&b).await, "20");
    let metrics = scrape(&proxy);
    assert!(
        metrics.contains("pgvshard_config_last_reload_successful 0"),
        "{metrics}"
    );
    assert!(metrics.contains("pgvshard_config_reloads_total{outcome=\"applied\"} 1"));
    assert!(metrics.contains("pgvshard_config_reloads_total{outcome=\"refused\"} 1"));

    // SIGHUP: the invalid file is logged and refused, a valid one applied.
    hangup(proxy.pid());
    eventually(10, "the refusal logged", || async {
        proxy
            .log_text()
            .contains("contains errors; no changes were applied")
    })
    .await;
    assert_eq!(pool_sizes(&a).await, ["5", "5"]);
    write(&config, &proxy_yaml(&shards, &alice, 3, cache_on));
    hangup(proxy.pid());
    eventually(10, "pools resized by SIGHUP", || async {
        pool_sizes(&a).await == ["3", "3"]
    })
    .await;
    assert!(scrape(&proxy).contains("pgvshard_config_last_reload_successful 1"));
    // A shard sent SIGHUP too (kill -HUP on every process) keeps serving.
    hangup(s0.pid());
    let shard_log = s0.dir.with_extension("log");
    eventually(10, "the shard logs the SIGHUP", || async {
        std::fs::read_to_string(&shard_log)
            .unwrap()
            .contains("a shard has no configuration to reload; ignored")
    })
    .await;
    // bob is no longer configured: a new login fails, his open session stays.
    let refused = login(proxy.port, "bob", "b-secret").await.unwrap_err();
    assert_eq!(sqlstate(&refused), "28P01");
    assert_eq!(count(&b).await, "20");
    assert_eq!(count(&a).await, "20");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_slow_statements_and_statement_stats() {
    let s0 = Shard::start_with(&fresh_dir("ops-logs-s0"), &["--log-format", "json"]);
    let s1 = Shard::start(&fresh_dir("ops-logs-s1"));
    let config = fresh_dir("ops-logs").join("proxy.yaml");
    let extra = "log_format: json\nlog_min_duration_ms: 0\n";
    write(
        &config,
        &proxy_yaml(&[&s0, &s1], &[("alice", "a-secret")], 4, extra),
    );
    let proxy = ProxyProcess::start(&config, &[]);
    let a = login(proxy.port, "alice", "a-secret").await.unwrap();
    a.batch_execute(SCHEMA).await.unwrap();
    a.batch_execute(&insert()).await.unwrap();
    let knn = "SELECT id FROM t ORDER BY v <-> '[1,1]' LIMIT 3";
    let ids = text_rows(&a, knn).await.unwrap();
    assert_eq!(
        ids,
        [[Some("1".into())], [Some("2".into())], [Some("3".into())]]
    );

    let stats = text_rows(&a, "SHOW pgvshard.stats").await.unwrap();
    let row = |class: &str| {
        stats
            .iter()
            .find(|r| r[0].as_deref() == Some(class))
            .cloned()
            .unwrap()
    };
    // class, calls, errors, rows, …
    assert_eq!(
        row("knn")[1..4],
        [Some("1".into()), Some("0".into()), Some("3".into())]
    );
    assert_eq!(
        row("write")[1..4],
        [Some("1".into()), Some("0".into()), Some("20".into())]
    );
    assert_eq!(row("ddl")[1], Some("1".into()));
    // The extended protocol: Describe announces the types the rows carry.
    let typed = a.query("SHOW pgvshard.stats", &[]).await.unwrap();
    let knn_row = typed.iter().find(|r| r.get::<_, &str>(0) == "knn").unwrap();
    assert_eq!(knn_row.get::<_, i64>(1), 1);
    assert!(knn_row.get::<_, f64>(4) > 0.0);
    let reload_types = a.prepare("SELECT pgvshard.reload()").await.unwrap();
    assert_eq!(
        reload_types.columns()[0].type_(),
        &tokio_postgres::types::Type::BOOL
    );

    // Every line is one JSON object with the four fixed fields; the slow
    // log has one line per statement with its per-shard timings.
    let log = proxy.log_text();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for l in &lines {
        for key in ["ts", "level", "target", "message"] {
            assert!(l.get(key).is_some(), "{key} missing in {l}");
        }
    }
    // The fixed keys come first, in this order.
    for line in log.lines() {
        let order: Vec<usize> = ["\"ts\":", ",\"level\":", ",\"target\":", ",\"message\":"]
            .iter()
            .map(|k| line.find(k).unwrap_or(usize::MAX))
            .collect();
        assert!(line.starts_with("{\"ts\":") && order.is_sorted(), "{line}");
    }
    let slow: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["target"] == "pgvshard::slow")
        .collect();
    let knn_line = slow
        .iter()
        .find(|l| l["statement"] == knn)
        .unwrap_or_else(|| panic!("no slow line for the KNN query: {log}"));
    assert_eq!(knn_line["class"], "knn");
    assert_eq!(knn_line["user"], "alice");
    assert_eq!(knn_line["database"], "db");
    assert_eq!(knn_line["rows"], 3);
    assert_eq!(knn_line["sqlstate"], "00000");
    assert!(knn_line["duration_ms"].as_f64().unwrap() > 0.0);
    let shards = knn_line["shards"].as_str().unwrap();
    assert!(shards.contains("s0=") && shards.contains("s1="), "{shards}");
    assert_eq!(knn_line["level"], "INFO");
    // A shard started with --log-format json logs the same way.
    let shard_log = std::fs::read_to_string(s0.dir.with_extension("log")).unwrap();
    let listening: serde_json::Value = shard_log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .find(|l: &serde_json::Value| l["message"] == "pgvshard shard listening")
        .expect("the shard's listening line");
    assert_eq!(listening["addr"], format!("127.0.0.1:{}", s0.port));
    assert!(knn_line["ts"].as_str().unwrap().ends_with('Z'));

    // Reset (pg_stat_statements_reset()'s name and answer: the time).
    let reset = text_rows(&a, "SELECT pgvshard.stats_reset()")
        .await
        .unwrap();
    assert_eq!(reset.len(), 1);
    assert!(
        reset[0][0].as_deref().unwrap().ends_with("+00"),
        "{reset:?}"
    );
    let stats = text_rows(&a, "SHOW pgvshard.stats").await.unwrap();
    assert!(
        stats
            .iter()
            .filter(|r| r[0].as_deref() != Some("other"))
            .all(|r| r[1].as_deref() == Some("0")),
        "{stats:?}"
    );
}

/// A client over TLS that trusts only `certs`.
async fn login_tls(port: u16, certs: &tls_support::Certs) -> Result<Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::Config::new()
        .host("localhost")
        .hostaddr(std::net::Ipv4Addr::LOCALHOST.into())
        .port(port)
        .user("postgres")
        .dbname("db")
        .ssl_mode(tokio_postgres::config::SslMode::Require)
        .connect(certs.connector())
        .await?;
    tokio::spawn(conn);
    Ok(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_rotates_the_tls_certificate_without_closing_sessions() {
    let s0 = Shard::start(&fresh_dir("ops-tls-s0"));
    let dir = fresh_dir("ops-tls");
    let (old, new) = (
        tls_support::Certs::generate(&dir, "old"),
        tls_support::Certs::generate(&dir, "new"),
    );
    let config = dir.join("proxy.yaml");
    let yaml = |certs: &tls_support::Certs| {
        format!(
            "listen: 127.0.0.1:0\nshards:\n  - name: s0\n    port: {}\n    dbname: db\n{}",
            s0.port,
            certs.yaml(true)
        )
    };
    write(&config, &yaml(&old));
    let proxy = ProxyProcess::start(&config, &[]);
    let before = login_tls(proxy.port, &old).await.unwrap();
    before.batch_execute(SCHEMA).await.unwrap();
    assert!(login_tls(proxy.port, &new).await.is_err());

    write(&config, &yaml(&new));
    let reloaded = text_rows(&before, "SELECT pgvshard.reload()")
        .await
        .unwrap();
    assert_eq!(reloaded, [[Some("t".to_string())]]);
    // New connections get the new certificate; the open session goes on.
    let after = login_tls(proxy.port, &new).await.unwrap();
    after.batch_execute(&insert()).await.unwrap();
    assert!(login_tls(proxy.port, &old).await.is_err());
    assert_eq!(count(&before).await, "20");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_raises_and_lowers_max_client_connections_keeping_sessions() {
    let s0 = Shard::start(&fresh_dir("ops-max-conn-s0"));
    let config = fresh_dir("ops-max-conn").join("proxy.yaml");
    let user = [("alice", "a-secret")];
    let yaml = |n: usize| proxy_yaml(&[&s0], &user, 2, &format!("max_client_connections: {n}\n"));
    write(&config, &yaml(2));
    let proxy = ProxyProcess::start(&config, &[]);
    let first = login(proxy.port, "alice", "a-secret").await.unwrap();
    let second = login(proxy.port, "alice", "a-secret").await.unwrap();
    first.batch_execute(SCHEMA).await.unwrap();
    let over = login(proxy.port, "alice", "a-secret").await.unwrap_err();
    assert_eq!(sqlstate(&over), "53300");

    write(&config, &yaml(3));
    text_rows(&first, "SELECT pgvshard.reload()").await.unwrap();
    let third = login(proxy.port, "alice", "a-secret").await.unwrap();
    third.batch_execute(&insert()).await.unwrap();

    // Lowered under the sessions open: none is closed, no new one enters.
    write(&config, &yaml(1));
    text_rows(&first, "SELECT pgvshard.reload()").await.unwrap();
    let over = login(proxy.port, "alice", "a-secret").await.unwrap_err();
    assert_eq!(sqlstate(&over), "53300");
    for c in [&first, &second, &third] {
        assert_eq!(count(c).await, "20");
    }
    // Two leave; one session is the limit again.
    drop((second, third));
    eventually(10, "a place after the sessions left", || async {
        login(proxy.port, "alice", "a-secret").await.is_err()
    })
    .await;
    drop(first);
    eventually(10, "one session allowed again", || async {
        login(proxy.port, "alice", "a-secret").await.is_ok()
    })
    .await;
}

/// The proxy's file for one PostgreSQL shard on `primary` with the
/// standbys `standbys` (name, port), polled every 50 ms.
fn replica_yaml(primary: u16, standbys: &[(&str, u16)]) -> String {
    let mut yaml = format!(
        "listen: 127.0.0.1:0\nreplication:\n  health_check_interval_ms: 50\n  read_your_writes_wait_ms: 0\nshards:\n  - name: s0\n    port: {primary}\n    dbname: postgres\n    standbys:"
    );
    if standbys.is_empty() {
        yaml.push_str(" []\n");
    }
    yaml.push('\n');
    for (name, port) in standbys {
        yaml.push_str(&format!(
            "      - name: {name}\n        host: 127.0.0.1\n        port: {port}\n"
        ));
    }
    yaml
}

/// `SHOW pgvshard.replicas`: (node, role) of every node.
async fn replica_nodes(client: &Client) -> Vec<(String, String)> {
    text_rows(client, "SHOW pgvshard.replicas")
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r[1].clone().unwrap(), r[3].clone().unwrap()))
        .collect()
}

/// Ports that answered `inet_server_port()` in 20 reads through `client`.
async fn read_ports(client: &Client) -> std::collections::BTreeSet<u16> {
    let mut ports = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let rows = text_rows(client, "SELECT inet_server_port()")
            .await
            .unwrap();
        ports.insert(rows[0][0].as_deref().unwrap().parse().unwrap());
    }
    ports
}

/// Sessions open on a PostgreSQL server other than the asking one.
async fn sessions_on(server: &PgServer) -> i64 {
    let c = server.connect().await.unwrap();
    c.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adds_moves_and_removes_standbys_while_a_client_reads() {
    let primary = PgServer::start_with(&["synchronous_commit=on"]).await;
    let a = PgServer::standby_named(&primary, "a").await;
    let b = PgServer::standby_named(&primary, "b").await;
    let config = fresh_dir("ops-standbys").join("proxy.yaml");
    write(&config, &replica_yaml(primary.port, &[]));
    let proxy = ProxyProcess::start(&config, &[]);
    let (client, conn) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            proxy.port
        ),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    // Without standbys every read is the primary's.
    assert_eq!(read_ports(&client).await, [primary.port].into());
    assert_eq!(
        replica_nodes(&client).await,
        [("s0".into(), "primary".into())]
    );

    // Standby a added by `pgvshard.reload()`: no restart asked for, reads
    // move to it once polled, the same session goes on.
    write(&config, &replica_yaml(primary.port, &[("a", a.port)]));
    let (_, warnings) = psql_as(
        proxy.port,
        "postgres",
        "",
        "postgres",
        "SELECT pgvshard.reload()",
    );
    assert!(!warnings.contains("WARNING"), "{warnings}");
    eventually(20, "reads served by standby a", || async {
        read_ports(&client).await == [a.port].into()
    })
    .await;
    assert_eq!(
        replica_nodes(&client).await,
        [
            ("s0".into(), "primary".into()),
            ("a".into(), "standby".into())
        ]
    );
    let s = settings(&client).await;
    assert_eq!(
        s["shards[0].standbys[0].port"],
        (Some(a.port.to_string()), "reload".into(), "f".into())
    );

    // a replaced by b by SIGHUP: reads move to b, a's pools are closed.
    write(&config, &replica_yaml(primary.port, &[("b", b.port)]));
    hangup(proxy.pid());
    eventually(20, "reads served by standby b", || async {
        read_ports(&client).await == [b.port].into()
    })
    .await;
    assert_eq!(
        replica_nodes(&client).await,
        [
            ("s0".into(), "primary".into()),
            ("b".into(), "standby".into())
        ]
    );
    eventually(10, "no session of the proxy left on a", || async {
        sessions_on(&a).await == 0
    })
    .await;
    assert!(sessions_on(&b).await > 0);
    assert!(proxy.log_text().contains("standbys reconfigured"));

    // All standbys removed: the primary takes the reads again, and writes
    // were never disturbed.
    write(&config, &replica_yaml(primary.port, &[]));
    hangup(proxy.pid());
    eventually(20, "reads back on the primary", || async {
        read_ports(&client).await == [primary.port].into()
    })
    .await;
    client
        .batch_execute(
            "CREATE TABLE after_reloads (id int PRIMARY KEY); INSERT INTO after_reloads VALUES (1)",
        )
        .await
        .unwrap();
    eventually(10, "no session of the proxy left on b", || async {
        sessions_on(&b).await == 0
    })
    .await;
}
