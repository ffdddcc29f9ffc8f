//! Read/write splitting over a real PostgreSQL + pgvector primary and its
//! streaming standby (pg_basebackup -R), and over `pgvshard shard` nodes
//! (`--standby-of`): which node answered is told by
//! `inet_server_port()`, a per-node marker. Reads reach the standby and
//! every statement class that writes, locks or may write reaches the
//! primary (the standby would refuse a write with 25006; a data-modifying
//! WITH is refused by the proxy with 0A000); a standby whose
//! replay is paused is banned by lag and comes back when resumed; and a
//! session reads its own writes in a 1,000-iteration loop while the
//! standby applies WAL late, where a session that did not write sees the
//! standby's older value (the control that shows the loop could fail).
//!
//! Failover, over PostgreSQL and over `pgvshard shard` nodes alike: the
//! primary killed with SIGKILL under a write load, its synchronous
//! standby is promoted by one of two proxies sharing Redis, both route
//! writes to it within 5 s, no acknowledged write is lost, reads go on,
//! and the old primary, restarted, is never written to: PostgreSQL's
//! stays fenced, a `pgvshard shard` rejoins as a standby of the new
//! primary by itself — with a fresh base copy when it had committed a
//! write the standby never got.

mod pg_support;
mod redis_support;
mod shard_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pg_support::{connect_to, text_rows, PgServer};
use pgvshard::proxy::config::ProxyConfig;
use pgvshard::proxy::RunningProxy;
use redis_support::RedisServer;
use shard_support::{eventually, fresh_dir, metrics_port, scrape, value, Shard};

async fn proxy(primary: u16, standby: u16, replication: &str) -> RunningProxy {
    let yaml = format!(
        "listen: 127.0.0.1:0\nshards:\n  - name: s0\n    port: {primary}\n    standbys:\n      - host: 127.0.0.1\n        port: {standby}\nreplication:\n{replication}"
    );
    let config = ProxyConfig::from_yaml(&yaml).expect("valid config");
    pgvshard::proxy::start(config).await.expect("proxy starts")
}

/// Replication settings of the read/write-split scenarios: a lag bound
/// that a paused standby soon passes, no read-your-writes wait, quick polls.
const SPLIT: &str =
    "  max_replica_lag_ms: 500\n  read_your_writes_wait_ms: 0\n  health_check_interval_ms: 50\n";

/// The port of the node that answered `sql` (its first column).
async fn served_by(client: &tokio_postgres::Client, sql: &str) -> u16 {
    let rows = text_rows(client, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    rows[0][0].as_deref().unwrap().parse().unwrap()
}

/// Waits until `SHOW pgvshard.replicas` gives the standby `state`.
async fn standby_state(client: &tokio_postgres::Client, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = text_rows(client, "SHOW pgvshard.replicas").await.unwrap();
        let now = rows[1][4].clone().unwrap();
        if now == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "standby stayed {now}, not {state}: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_use_the_standby_within_bounds_and_sessions_read_their_writes() {
    // Commits flush their WAL, so it reaches the standby at once.
    let primary = PgServer::start_with(&["synchronous_commit=on"]).await;
    let p = primary.connect().await.unwrap();
    p.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, v int); CREATE SEQUENCE s; \
         INSERT INTO t VALUES (1, 0), (2, 0)",
    )
    .await
    .unwrap();
    let standby = PgServer::standby_of(&primary).await;
    let sb = standby.connect().await.unwrap();
    let proxy = proxy(primary.port, standby.port, SPLIT).await;
    let admin = connect_to(proxy.addr.port()).await.unwrap();
    standby_state(&admin, "up").await;
    let rows = text_rows(&admin, "SHOW pgvshard.replicas").await.unwrap();
    assert_eq!(
        rows[0][..5],
        [
            Some("s0".into()),
            Some("s0".into()),
            Some(format!("127.0.0.1:{}", primary.port)),
            Some("primary".into()),
            Some("up".into())
        ]
    );
    assert_eq!(
        rows[1][1..4],
        [
            Some("s0.standby1".into()),
            Some(format!("127.0.0.1:{}", standby.port)),
            Some("standby".into())
        ]
    );

    let reader = connect_to(proxy.addr.port()).await.unwrap();
    statement_classes_reach_their_nodes(&reader, primary.port, standby.port).await;
    // Sequence functions may write too (a `pgvshard shard` has no
    // nextval/setval of its own: its proxy hands out serial keys).
    for sql in [
        "SELECT inet_server_port(), nextval('s')",
        "SELECT inet_server_port(), setval('s', 10)",
    ] {
        assert_eq!(served_by(&reader, sql).await, primary.port, "{sql}");
    }
    // Session overrides.
    let s = connect_to(proxy.addr.port()).await.unwrap();
    s.batch_execute("SET pgvshard.target_session_attrs = 'read-write'")
        .await
        .unwrap();
    assert_eq!(
        served_by(&s, "SELECT inet_server_port()").await,
        primary.port
    );
    s.batch_execute("SET pgvshard.target_session_attrs = 'read-only'")
        .await
        .unwrap();
    assert_eq!(
        served_by(&s, "SELECT inet_server_port()").await,
        standby.port
    );
    let e = db_error(&s, "SET pgvshard.target_session_attrs = 'standby'").await;
    assert_eq!(e.code().code(), "22023", "{e:?}");
    // A READ ONLY transaction reads on the standby and refuses writes as
    // PostgreSQL does; a transaction that wrote reads on the primary.
    let s = connect_to(proxy.addr.port()).await.unwrap();
    s.batch_execute("BEGIN READ ONLY").await.unwrap();
    assert_eq!(
        served_by(&s, "SELECT inet_server_port()").await,
        standby.port
    );
    let e = db_error(&s, "INSERT INTO t VALUES (4, 0)").await;
    assert_eq!(e.code().code(), "25006", "{e:?}");
    assert_eq!(
        e.message(),
        "cannot execute INSERT in a read-only transaction"
    );
    s.batch_execute("ROLLBACK").await.unwrap();
    s.batch_execute("BEGIN; UPDATE t SET v = 5 WHERE id = 2")
        .await
        .unwrap();
    assert_eq!(
        served_by(&s, "SELECT inet_server_port() FROM t WHERE id = 1").await,
        primary.port
    );
    s.batch_execute("COMMIT").await.unwrap();

    paused_standby_is_banned_then_serves_again(&proxy, &sb, primary.port, standby.port).await;
    let metrics = pgvshard::metrics::render(&proxy.registry);
    for family in [
        "pgvshard_node_role{node=\"s0\",shard=\"s0\"} 1",
        "pgvshard_node_role{node=\"s0.standby1\",shard=\"s0\"} 0",
        "pgvshard_replica_lag_bytes{",
        "pgvshard_replica_lag_seconds{",
        "pgvshard_reads_total{reason=\"balanced\",target=\"standby\"}",
        "pgvshard_reads_total{reason=\"locking\",target=\"primary\"}",
    ] {
        assert!(metrics.contains(family), "{family} missing:\n{metrics}");
    }

    let mut on_standby = own_writes_read_back_past_a_lagging_standby(
        primary.port,
        standby.port,
        &sb,
        "  max_replica_lag_ms: 0\n  max_replica_lag_bytes: 0\n  read_your_writes_wait_ms: 2\n  health_check_interval_ms: 50\n",
    )
    .await;
    // Without the delay, the session's reads after its writes use the
    // standby once it replayed them (the wait covers the replication).
    apply_delay(&sb, "0").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ryw = proxy_with(
        primary.port,
        standby.port,
        "  read_your_writes_wait_ms: 200\n  health_check_interval_ms: 50\n",
    )
    .await;
    let writer = connect_to(ryw.addr.port()).await.unwrap();
    for i in 1..=100i32 {
        let (v, port) = write_then_read(&writer, i).await;
        assert_eq!(
            v, i,
            "iteration {i}: a stale read of the session's own write"
        );
        on_standby += usize::from(port == standby.port);
    }
    assert!(
        on_standby >= 50,
        "only {on_standby} reads after a write used the caught-up standby"
    );
    drop(p);
}

/// The same scenarios over `pgvshard shard` processes: a primary and its
/// standby (`--standby-of`), told apart by `inet_server_port()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgvshard_shard_standbys_serve_reads_are_banned_when_paused_and_read_your_writes_holds() {
    let primary = Shard::start(&fresh_dir("replicas-pgvshard-primary"));
    let p = primary.connect().await;
    p.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0), (2, 0)",
    )
    .await
    .unwrap();
    let standby = shard_standby(&primary, "replicas-pgvshard-standby");
    let sb = standby.connect().await;
    let proxy = proxy_with(primary.port, standby.port, SPLIT).await;
    let reader = connect_to(proxy.addr.port()).await.unwrap();
    statement_classes_reach_their_nodes(&reader, primary.port, standby.port).await;
    assert_eq!(
        db_error(&sb, "INSERT INTO t VALUES (4, 0)")
            .await
            .code()
            .code(),
        "25006"
    );
    paused_standby_is_banned_then_serves_again(&proxy, &sb, primary.port, standby.port).await;
    own_writes_read_back_past_a_lagging_standby(
        primary.port,
        standby.port,
        &sb,
        "  max_replica_lag_ms: 0\n  max_replica_lag_bytes: 0\n  read_your_writes_wait_ms: 2\n  health_check_interval_ms: 50\n",
    )
    .await;
}

/// Through the proxy on `t (id, v)` (rows 1 and 2): reads of a session
/// that has not written reach `standby`; locking, functions that may
/// write and the hint reach `primary`; writes of every class succeed
/// (the standby would refuse them with 25006); a data-modifying WITH is
/// refused (0A000) before it reaches any node.
async fn statement_classes_reach_their_nodes(
    reader: &tokio_postgres::Client,
    primary: u16,
    standby: u16,
) {
    for sql in [
        "SELECT inet_server_port()",
        "SELECT inet_server_port() FROM t WHERE id = 1",
        "SELECT inet_server_port(), count(*) FROM t",
    ] {
        assert_eq!(served_by(reader, sql).await, standby, "{sql}");
    }
    let port: i32 = reader
        .query_one("SELECT inet_server_port() FROM t WHERE id = $1", &[&1i32])
        .await
        .unwrap()
        .get(0);
    assert_eq!(port, i32::from(standby), "extended protocol");
    for sql in [
        "SELECT inet_server_port() FROM t WHERE id = 1 FOR UPDATE",
        "SELECT inet_server_port() FROM t WHERE id = 2 FOR SHARE",
        "SELECT inet_server_port(), pg_advisory_xact_lock(7)",
        "/* pgvshard:primary */ SELECT inet_server_port()",
    ] {
        assert_eq!(served_by(reader, sql).await, primary, "{sql}");
    }
    reader
        .batch_execute(
            "INSERT INTO t VALUES (3, 0); UPDATE t SET v = 1 WHERE id = 3; \
             DELETE FROM t WHERE id = 3; CREATE TABLE u (id int PRIMARY KEY); DROP TABLE u",
        )
        .await
        .unwrap();
    for sql in [
        "WITH d AS (DELETE FROM t WHERE id = 2 RETURNING *) SELECT * FROM d",
        "WITH i AS (INSERT INTO t VALUES (5, 0) RETURNING id) SELECT inet_server_port() FROM i",
    ] {
        let e = db_error(reader, sql).await;
        assert_eq!(e.code().code(), "0A000", "{sql}: {e:?}");
    }
}

/// A `pgvshard shard` standby of `primary` named `s0.standby1`, on a
/// fresh data directory for test `name`.
fn shard_standby(primary: &Shard, name: &str) -> Shard {
    let dir = fresh_dir(name);
    let config = dir.with_extension("yaml");
    std::fs::write(
        &config,
        "standby_of:\n  application_name: s0.standby1\n  user: postgres\n",
    )
    .unwrap();
    Shard::start_with(
        &dir,
        &[
            "--standby-of",
            &format!("127.0.0.1:{}", primary.port),
            "--config",
            config.to_str().unwrap(),
        ],
    )
}

/// Sets the standby's `recovery_min_apply_delay`.
async fn apply_delay(standby: &tokio_postgres::Client, delay: &str) {
    standby
        .batch_execute(&format!(
            "ALTER SYSTEM SET recovery_min_apply_delay = '{delay}'"
        ))
        .await
        .unwrap();
    standby
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
}

/// Sets `t`'s row 1 to `i`, then reads it back: (value, answering port).
async fn write_then_read(client: &tokio_postgres::Client, i: i32) -> (i32, u16) {
    client
        .execute("UPDATE t SET v = $1 WHERE id = 1", &[&i])
        .await
        .unwrap();
    value_and_port(client).await
}

/// Row 1's value and the port of the node that answered.
async fn value_and_port(client: &tokio_postgres::Client) -> (i32, u16) {
    let row = client
        .query_one("SELECT v, inet_server_port() FROM t WHERE id = 1", &[])
        .await
        .unwrap();
    (row.get(0), u16::try_from(row.get::<_, i32>(1)).unwrap())
}

/// The error `sql` fails with.
async fn db_error(client: &tokio_postgres::Client, sql: &str) -> tokio_postgres::error::DbError {
    let e = client.batch_execute(sql).await.unwrap_err();
    e.as_db_error()
        .cloned()
        .unwrap_or_else(|| panic!("{sql}: {e:?}"))
}

/// Replay paused: the standby falls behind, is banned, reads go to the
/// primary; resumed, it serves again.
async fn paused_standby_is_banned_then_serves_again(
    proxy: &RunningProxy,
    sb: &tokio_postgres::Client,
    primary: u16,
    standby: u16,
) {
    let admin = connect_to(proxy.addr.port()).await.unwrap();
    sb.batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    let writer = connect_to(proxy.addr.port()).await.unwrap();
    writer
        .batch_execute("UPDATE t SET v = v + 1 WHERE id = 1")
        .await
        .unwrap();
    standby_state(&admin, "banned").await;
    let fresh = connect_to(proxy.addr.port()).await.unwrap();
    assert_eq!(
        served_by(&fresh, "SELECT inet_server_port() FROM t WHERE id = 1").await,
        primary
    );
    let metrics = pgvshard::metrics::render(&proxy.registry);
    assert!(
        metrics.contains("pgvshard_replica_banned{node=\"s0.standby1\",shard=\"s0\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pgvshard_reads_total{reason=\"unavailable\",target=\"primary\"}"),
        "{metrics}"
    );
    sb.batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    standby_state(&admin, "up").await;
    assert_eq!(
        served_by(&fresh, "SELECT inet_server_port() FROM t WHERE id = 1").await,
        standby
    );
}

/// Read-your-writes while the standby applies WAL 300 ms late, with no
/// lag bound that would keep reads off it (`replication`): a session
/// always reads its own value in 1,000 write-then-read iterations; a
/// session that did not write, reading on the standby, sees older
/// values. Returns how many reads after a write the standby served.
async fn own_writes_read_back_past_a_lagging_standby(
    primary: u16,
    standby: u16,
    sb: &tokio_postgres::Client,
    replication: &str,
) -> usize {
    apply_delay(sb, "300ms").await;
    let ryw = proxy_with(primary, standby, replication).await;
    let writer = connect_to(ryw.addr.port()).await.unwrap();
    let other = connect_to(ryw.addr.port()).await.unwrap();
    let (mut on_standby, mut stale_elsewhere) = (0, 0);
    for i in 1..=1000i32 {
        let (v, port) = write_then_read(&writer, i).await;
        assert_eq!(
            v, i,
            "iteration {i}: a stale read of the session's own write"
        );
        on_standby += usize::from(port == standby);
        if i % 50 == 0 {
            let (v, port) = value_and_port(&other).await;
            assert_eq!(port, standby);
            stale_elsewhere += usize::from(v != i);
        }
    }
    assert!(
        stale_elsewhere > 0,
        "the standby never lagged: the loop proved nothing"
    );
    on_standby
}

async fn proxy_with(primary: u16, standby: u16, replication: &str) -> RunningProxy {
    let p = proxy(primary, standby, replication).await;
    let admin = connect_to(p.addr.port()).await.unwrap();
    standby_state(&admin, "up").await;
    p
}

/// A proxy over the nodes on ports `primary` and `standby` sharing
/// `redis` with others, quick to fail over.
async fn failover_proxy(primary: u16, standby: u16, redis: &RedisServer) -> RunningProxy {
    let yaml = format!(
        "listen: 127.0.0.1:0\nshards:\n  - name: s0\n    port: {primary}\n    pool:\n      connect_timeout_ms: 1000\n    standbys:\n      - host: 127.0.0.1\n        port: {standby}\n\
         replication:\n  health_check_interval_ms: 100\n  health_check_timeout_ms: 1000\n  failover_after_ms: 1000\n  failover_wait_ms: 20000\n\
         cache:\n  redis_url: {}\n  key_prefix: failover\n",
        redis.url()
    );
    let config = ProxyConfig::from_yaml(&yaml).expect("valid config");
    let p = pgvshard::proxy::start(config).await.expect("proxy starts");
    let admin = connect_to(p.addr.port()).await.unwrap();
    standby_state(&admin, "up").await;
    p
}

/// `SHOW pgvshard.replicas` rows as (node, addr, role, state, term).
async fn replicas(port: u16) -> Vec<[String; 5]> {
    let c = connect_to(port).await.unwrap();
    text_rows(&c, "SHOW pgvshard.replicas")
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let f = |i: usize| r[i].clone().unwrap_or_default();
            [f(1), f(2), f(3), f(4), f(7)]
        })
        .collect()
}

/// Waits until the proxy on `port` shows the old primary (the first
/// configured node) with `role` and `state`.
async fn old_primary_shows(port: u16, role: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = replicas(port).await;
        if rows[0][2..4] == [role.to_string(), state.to_string()] {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the old primary is not {role} {state}: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `primary` lists the standby `name` as synchronous.
async fn wait_synchronous(primary: &tokio_postgres::Client, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = text_rows(
            primary,
            "SELECT application_name FROM pg_stat_replication WHERE sync_state = 'sync'",
        )
        .await
        .unwrap();
        if rows.first().and_then(|r| r[0].as_deref()) == Some(name) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the standby never became synchronous: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each proxy's `pgvshard_failovers_total` samples, joined by `;`.
fn failover_outcomes(proxies: &[&RunningProxy]) -> Vec<String> {
    proxies
        .iter()
        .map(|p| pgvshard::metrics::render(&p.registry))
        .map(|m| {
            m.lines()
                .filter(|l| l.starts_with("pgvshard_failovers_total{"))
                .collect::<Vec<_>>()
                .join(";")
        })
        .collect()
}

/// The ids of `w` on `node`, in order.
async fn ids_in_w(node: &tokio_postgres::Client) -> Vec<i32> {
    try_ids_in_w(node).await.unwrap()
}

/// The ids of `w` on `node`, in order, or the error.
async fn try_ids_in_w(node: &tokio_postgres::Client) -> Result<Vec<i32>, tokio_postgres::Error> {
    let rows = node.query("SELECT id FROM w ORDER BY id", &[]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Asserts that every id in `ids` is a row of `w` on `node`.
async fn assert_all_on(node: &tokio_postgres::Client, ids: &[i32]) {
    let rows: std::collections::HashSet<i32> = ids_in_w(node).await.into_iter().collect();
    let lost: Vec<&i32> = ids.iter().filter(|id| !rows.contains(id)).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
}

/// Inserts into `w` through two proxies (ids from `first` on, one writer
/// per proxy) and reads through the second, remembering which writes the
/// proxies acknowledged (with when each was sent), and which reads failed.
struct WriteLoad {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(i32, Instant, Instant)>>>,
    read_errors: Arc<Mutex<Vec<String>>>,
    writers: Vec<tokio::task::JoinHandle<()>>,
    reader: tokio::task::JoinHandle<u32>,
}

impl WriteLoad {
    fn start(proxies: [u16; 2], first: i32) -> WriteLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let writers = (0..)
            .zip(proxies)
            .map(|(w, port)| {
                let (stop, acked) = (Arc::clone(&stop), Arc::clone(&acked));
                tokio::spawn(async move {
                    let mut client = connect_to(port).await.unwrap();
                    let mut id = first + w;
                    while !stop.load(Ordering::Relaxed) {
                        if client.is_closed() {
                            client = connect_to(port).await.unwrap();
                        }
                        let sent = Instant::now();
                        match client.execute("INSERT INTO w VALUES ($1)", &[&id]).await {
                            Ok(_) => acked.lock().unwrap().push((id, sent, Instant::now())),
                            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                        id += 2;
                    }
                })
            })
            .collect();
        let read_errors = Arc::new(Mutex::new(Vec::<String>::new()));
        let reader = {
            let (stop, errors) = (Arc::clone(&stop), Arc::clone(&read_errors));
            tokio::spawn(async move {
                let client = connect_to(proxies[1]).await.unwrap();
                let mut reads = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = client.query_one("SELECT count(*) FROM w", &[]).await {
                        errors.lock().unwrap().push(e.to_string());
                    }
                    reads += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                reads
            })
        };
        WriteLoad {
            stop,
            acked,
            read_errors,
            writers,
            reader,
        }
    }

    /// How many writes were acknowledged so far.
    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// When the first write sent after `since` was acknowledged, waiting
    /// for one at most `within`.
    async fn first_ack_after(&self, since: Instant, within: Duration) -> Instant {
        let deadline = since + within;
        loop {
            let first = self
                .acked
                .lock()
                .unwrap()
                .iter()
                .find(|(_, sent, _)| *sent > since)
                .map(|(_, _, at)| *at);
            if let Some(at) = first {
                return at;
            }
            assert!(
                Instant::now() < deadline,
                "writes did not resume within {} s",
                within.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the load, asserts that no read failed, and returns the ids
    /// of the acknowledged writes.
    async fn finish(self) -> Vec<i32> {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.writers {
            w.await.unwrap();
        }
        let reads = self.reader.await.unwrap();
        let read_errors = self.read_errors.lock().unwrap().clone();
        assert!(
            read_errors.is_empty(),
            "{} of {reads} reads failed: {read_errors:?}",
            read_errors.len()
        );
        let ids: Vec<i32> = self
            .acked
            .lock()
            .unwrap()
            .iter()
            .map(|(id, ..)| *id)
            .collect();
        assert!(!ids.is_empty(), "no write was acknowledged");
        ids
    }
}

/// Kills the primary (`kill`) under a write load through the proxies `a`
/// and `b` and checks what either kind of shard must give: writes resume
/// within 5 s, no read fails, both proxies agree that the standby is
/// the primary of term 2 (one promoted it, the other followed), and every
/// acknowledged write is on it (`new_primary`).
async fn kill_primary_under_load(
    a: &RunningProxy,
    b: &RunningProxy,
    kill: impl FnOnce(),
    new_primary: &tokio_postgres::Client,
) {
    let (a_port, b_port) = (a.addr.port(), b.addr.port());
    let load = WriteLoad::start([a_port, b_port], 0);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(load.acked() > 0, "no write went through before the kill");
    kill();
    let killed = Instant::now();
    let resumed = load.first_ack_after(killed, Duration::from_secs(60)).await;
    let took = resumed.duration_since(killed);
    eprintln!(
        "writes resumed {} ms after kill -9 of the primary (failover_after_ms 1000)",
        took.as_millis()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids = load.finish().await;
    assert!(
        took < Duration::from_secs(5),
        "writes resumed only after {} ms",
        took.as_millis()
    );

    // Both proxies agree: the standby is the primary of term 2, promoted
    // by one of them and followed by the other.
    for port in [a_port, b_port] {
        let rows = replicas(port).await;
        assert_eq!(rows[1][0], "s0.standby1", "{rows:?}");
        assert_eq!(
            rows[1][2..],
            ["primary".to_string(), "up".into(), "2".into()],
            "{rows:?}"
        );
        assert_eq!(rows[0][4], "2", "{rows:?}");
    }
    let outcomes = failover_outcomes(&[a, b]);
    let promoted = outcomes
        .iter()
        .filter(|m| m.contains("outcome=\"promoted\",shard=\"s0\"} 1"))
        .count();
    assert_eq!(promoted, 1, "exactly one proxy promotes: {outcomes:?}");
    assert!(
        outcomes.iter().any(|m| m.contains("outcome=\"followed\"")),
        "the other follows: {outcomes:?}"
    );
    assert_all_on(new_primary, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_primary_promotes_its_synchronous_standby_without_losing_writes() {
    let redis = RedisServer::start();
    let mut primary = PgServer::start_with(&["synchronous_commit=on"]).await;
    let p = primary.connect().await.unwrap();
    p.batch_execute("CREATE TABLE w (id int PRIMARY KEY)")
        .await
        .unwrap();
    let standby = PgServer::standby_named(&primary, "s0.standby1").await;
    p.batch_execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
        .await
        .unwrap();
    p.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    wait_synchronous(&p, "s0.standby1").await;
    drop(p);
    let a = failover_proxy(primary.port, standby.port, &redis).await;
    let b = failover_proxy(primary.port, standby.port, &redis).await;
    let (a_port, b_port) = (a.addr.port(), b.addr.port());
    let new_primary = standby.connect().await.unwrap();
    kill_primary_under_load(&a, &b, || primary.kill9(), &new_primary).await;

    // The old primary comes back on its old timeline: fenced, and the
    // writes that follow never reach it.
    primary.start_again().await;
    for port in [a_port, b_port] {
        old_primary_shows(port, "primary", "fenced").await;
    }
    let count = |c: tokio_postgres::Client| async move {
        c.query_one("SELECT count(*) FROM w", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let old_rows = count(primary.connect().await.unwrap()).await;
    for (base, port) in [(1_000_000, a_port), (2_000_000, b_port)] {
        let c = connect_to(port).await.unwrap();
        for id in base..base + 20 {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&id];
            let write = c.execute("INSERT INTO w VALUES ($1)", &params);
            tokio::time::timeout(Duration::from_secs(30), write)
                .await
                .expect("a write after the failover hung (sent to the old primary?)")
                .unwrap();
        }
    }
    assert_eq!(
        count(primary.connect().await.unwrap()).await,
        old_rows,
        "a write reached the old primary"
    );
}

/// The failover over `pgvshard shard` processes: a primary with a
/// synchronous standby, the primary killed with SIGKILL under a write
/// load, then restarted on its port while writes go on: it is never
/// written to and rejoins the new primary as a standby by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_pgvshard_primary_promotes_its_standby_and_the_old_primary_rejoins() {
    let redis = RedisServer::start();
    let dir = fresh_dir("failover-pgvshard-primary");
    let config = dir.with_extension("yaml");
    std::fs::write(
        &config,
        "synchronous_standby_names: 'FIRST 1 (s0.standby1)'\nmetrics_listen: 127.0.0.1:0\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let primary = Shard::start_with(&dir, &["--config", config]);
    let p = primary.connect().await;
    let standby = shard_standby(&primary, "failover-pgvshard-standby");
    wait_synchronous(&p, "s0.standby1").await;
    p.batch_execute("CREATE TABLE w (id int PRIMARY KEY)")
        .await
        .unwrap();
    drop(p);
    let a = failover_proxy(primary.port, standby.port, &redis).await;
    let b = failover_proxy(primary.port, standby.port, &redis).await;
    let (a_port, b_port) = (a.addr.port(), b.addr.port());
    let new_primary = standby.connect().await;
    let old_port = primary.port;
    kill_primary_under_load(&a, &b, move || primary.kill9(), &new_primary).await;

    // Every write acknowledged while the old primary restarts and rejoins
    // is on the new primary: none reached the old one on timeline 1.
    let load = WriteLoad::start([a_port, b_port], 1_000_000);
    let old = Shard::start_on(&dir, old_port, &["--config", config]);
    for port in [a_port, b_port] {
        old_primary_shows(port, "standby", "up").await;
    }
    let ids = load.finish().await;
    assert_all_on(&new_primary, &ids).await;
    assert_rejoined(&old, &standby, &[&a, &b]).await;
    // It restarted in its process: scrapes reach it where they did.
    let port = metrics_port(&dir, 2);
    assert_eq!(metrics_port(&dir, 3), port);
    assert_eq!(value(&scrape(port), "pgvshard_shard_is_standby", &[]), 1.0);
}

/// Asserts that the old primary `old` rejoined `new_primary` as a
/// standby, by one of `proxies`' doing: it streams on timeline 2, holds
/// exactly the new primary's rows and refuses writes.
async fn assert_rejoined(old: &Shard, new_primary: &Shard, proxies: &[&RunningProxy]) {
    for p in proxies {
        old_primary_shows(p.addr.port(), "standby", "up").await;
    }
    let outcomes = failover_outcomes(proxies);
    assert!(
        outcomes
            .iter()
            .any(|m| m.contains("outcome=\"rejoined\",shard=\"s0\"} 1")),
        "no proxy made the old primary rejoin: {outcomes:?}"
    );
    let expected = ids_in_w(&new_primary.connect().await).await;
    // A diverged node restarts once more for its fresh base copy: its
    // sessions may end or be refused meanwhile.
    eventually(20, "the rejoined old primary catches up", || async {
        match old.try_connect().await {
            Ok(c) => try_ids_in_w(&c).await.is_ok_and(|ids| ids == expected),
            Err(_) => false,
        }
    })
    .await;
    assert_eq!(
        old.psql("SELECT status, received_tli FROM pg_stat_wal_receiver")
            .unwrap()
            .trim(),
        "streaming|2"
    );
    assert_eq!(
        db_error(&old.connect().await, "INSERT INTO w VALUES (-1)")
            .await
            .code()
            .code(),
        "25006"
    );
}

/// An old `pgvshard shard` primary that committed a write its standby
/// never applied (asynchronous replication, the standby's replay paused)
/// has WAL past the point where the promoted standby's timeline forked
/// from it: rejoining, it takes a fresh base copy of the new primary
/// instead of serving the write only it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diverged_old_pgvshard_primary_resyncs_when_it_rejoins() {
    let redis = RedisServer::start();
    let dir = fresh_dir("diverged-pgvshard-primary");
    let primary = Shard::start(&dir);
    let p = primary.connect().await;
    let standby = shard_standby(&primary, "diverged-pgvshard-standby");
    p.batch_execute("CREATE TABLE w (id int PRIMARY KEY); INSERT INTO w VALUES (1), (2)")
        .await
        .unwrap();
    let proxy = failover_proxy(primary.port, standby.port, &redis).await;
    let sb = standby.connect().await;
    eventually(20, "the standby replays rows 1 and 2", || async {
        ids_in_w(&sb).await == [1, 2]
    })
    .await;
    sb.batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    p.batch_execute("INSERT INTO w VALUES (3)").await.unwrap();
    let old_port = primary.port;
    primary.kill9();
    // The proxy promotes the standby; a write waits for it.
    let c = connect_to(proxy.addr.port()).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        c.batch_execute("INSERT INTO w VALUES (4)"),
    )
    .await
    .expect("no failover")
    .unwrap();
    assert_eq!(ids_in_w(&sb).await, [1, 2, 4], "row 3 reached the standby");

    let old = Shard::start_on(&dir, old_port, &[]);
    assert_rejoined(&old, &standby, &[&proxy]).await;
    let log = std::fs::read_to_string(dir.with_extension("log")).unwrap();
    assert!(
        log.contains("WAL diverged from the primary's: taking a fresh base copy"),
        "{log}"
    );
}
