//! Streaming replication between real `pgvshard shard` processes on
//! loopback: standbys started empty from a primary under a concurrent
//! write load (inserts, updates, deletes, CREATE INDEX) converge to the
//! same rows and the same KNN answers; a standby killed with SIGKILL and
//! restarted catches up; one down while the primary removed the WAL it
//! needs says so and re-syncs from an empty data directory; standbys
//! refuse writes with the errors a real PostgreSQL 18 standby gives for
//! the same statements; asynchronous commits (`synchronous_commit = off`)
//! skip the fsync, reach standbys only once flushed, and a simulated power
//! failure loses only the unflushed tail.

mod pg_support;
mod shard_support;

use pg_support::PgServer;
use shard_support::{
    answer_line, eventually, fresh_dir, metrics_port, scrape, start_standby_on, value,
    wait_caught_up, Shard,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DIM: usize = 8;

/// A standby named `name` of `primary`, on a fresh (empty) data directory.
fn start_standby(primary: &Shard, test: &str, name: &str) -> Shard {
    let dir = fresh_dir(&format!("{test}-{name}"));
    start_standby_on(primary, &dir, name)
}

fn vector(seed: u64) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let parts: Vec<String> = (0..DIM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("{:.3}", (x % 2000) as f64 / 1000.0 - 1.0)
        })
        .collect();
    format!("[{}]", parts.join(","))
}

/// One writer: inserts, updates and deletes over its own key range.
async fn write_load(port: u16, writer: u64, statements: u64) -> u64 {
    let client = shard_support_connect(port).await;
    let base = 10_000 * (writer + 1);
    let mut done = 0;
    for i in 0..statements {
        let id = base + i;
        let sql = match i % 5 {
            0..=2 => format!(
                "INSERT INTO items (id, cat, embedding) VALUES ({id}, {}, '{}')",
                i % 7,
                vector(id)
            ),
            3 => format!(
                "UPDATE items SET embedding = '{}', cat = cat + 1 WHERE id = {}",
                vector(id * 31),
                id - 2
            ),
            _ => format!("DELETE FROM items WHERE id = {}", id - 4),
        };
        client.simple_query(&sql).await.unwrap();
        done += 1;
    }
    done
}

async fn shard_support_connect(port: u16) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname("db")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// Every row and KNN answers (exact and HNSW at the same settings), as
/// text: what must be identical on the primary and its standbys.
async fn contents(port: u16) -> Vec<String> {
    let client = shard_support_connect(port).await;
    let mut out = Vec::new();
    let rows = |msgs: Vec<tokio_postgres::SimpleQueryMessage>| -> Vec<String> {
        msgs.iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_string())
                        .collect::<Vec<_>>()
                        .join("|"),
                ),
                _ => None,
            })
            .collect()
    };
    out.extend(rows(
        client
            .simple_query("SELECT id, cat, embedding FROM items ORDER BY id")
            .await
            .unwrap(),
    ));
    for q in 0..5 {
        for exact in ["off", "on"] {
            let sql = format!(
                "SET enable_indexscan = {}; SET hnsw.ef_search = 40; \
                 SELECT id FROM items ORDER BY embedding <-> '{}' LIMIT 10",
                if exact == "on" { "off" } else { "on" },
                vector(777 + q)
            );
            out.push(format!(
                "knn {q} exact={exact}: {}",
                rows(client.simple_query(&sql).await.unwrap()).join(",")
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standbys_started_under_load_converge_and_one_killed_catches_up() {
    let test = "repl-converge";
    let rows: Vec<String> = (1..=200)
        .map(|i| format!("({i}, {}, '{}')", i % 7, vector(i)))
        .collect();
    let primary = Shard::with_schema(
        &format!("{test}-primary"),
        &format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, cat int, embedding vector({DIM}));
             INSERT INTO items VALUES {};",
            rows.join(",")
        ),
    );
    // Standby 1 starts empty from the primary before the load.
    let s1_dir = fresh_dir(&format!("{test}-s1"));
    let s1 = start_standby_on(&primary, &s1_dir, "s1");
    let writers: Vec<_> = (0..3)
        .map(|w| tokio::spawn(write_load(primary.port, w, 250)))
        .collect();
    // Under load: an index build, a standby started empty, and standby 1
    // killed and restarted.
    let p = shard_support_connect(primary.port).await;
    p.simple_query("CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)")
        .await
        .unwrap();
    let s2 = start_standby(&primary, test, "s2");
    s1.kill9();
    let s1 = start_standby_on(&primary, &s1_dir, "s1");
    let mut written = 0;
    for w in writers {
        written += w.await.unwrap();
    }
    assert_eq!(written, 750);
    wait_caught_up(&primary, &s1).await;
    wait_caught_up(&primary, &s2).await;
    let expected = contents(primary.port).await;
    assert!(expected.len() > 500, "{}", expected.len());
    assert_eq!(contents(s1.port).await, expected, "standby s1 differs");
    assert_eq!(contents(s2.port).await, expected, "standby s2 differs");

    // What the primary and the standbys report.
    let rows = p
        .simple_query(
            "SELECT application_name, state, sent_lsn = replay_lsn, sync_state \
             FROM pg_stat_replication ORDER BY application_name",
        )
        .await
        .unwrap();
    let seen: Vec<String> = rows
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(format!(
                "{} {} {} {}",
                r.get(0).unwrap(),
                r.get(1).unwrap(),
                r.get(2).unwrap(),
                r.get(3).unwrap()
            )),
            _ => None,
        })
        .collect();
    assert_eq!(seen, ["s1 streaming t async", "s2 streaming t async"]);
    let s = shard_support_connect(s2.port).await;
    let row = s
        .query_one(
            "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(), \
             pg_last_xact_replay_timestamp() IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0) && row.get::<_, bool>(1) && row.get::<_, bool>(2));
    let status = s2
        .psql("SELECT status, sender_port FROM pg_stat_wal_receiver")
        .unwrap();
    assert_eq!(status.trim(), format!("streaming|{}", primary.port));
    assert_eq!(
        primary.psql("SELECT pg_is_in_recovery()").unwrap().trim(),
        "f"
    );
    // `pgvshard shard promote` turns s2 into a primary of its own.
    let promoted = std::process::Command::new(env!("CARGO_BIN_EXE_pgvshard"))
        .args(["shard", "promote", "--data-dir"])
        .arg(&s2.dir)
        .output()
        .unwrap();
    assert!(
        promoted.status.success(),
        "{}",
        String::from_utf8_lossy(&promoted.stderr)
    );
    assert_eq!(s2.psql("SELECT pg_is_in_recovery()").unwrap().trim(), "f");
    s2.psql("INSERT INTO items VALUES (1, 1, '[1,1,1,1,1,1,1,1]') ON CONFLICT DO NOTHING; DELETE FROM items WHERE id = 1")
        .unwrap();
    s1.stop();
    s2.stop();
    primary.stop();
}

/// (SQLSTATE, message) of each statement, or "ok".
async fn outcomes(client: &tokio_postgres::Client, statements: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for sql in statements {
        out.push(match client.simple_query(sql).await {
            Ok(_) => format!("{sql}: ok"),
            Err(e) => match e.as_db_error() {
                Some(db) => format!("{sql}: {} {}", db.code().code(), db.message()),
                None => format!("{sql}: {e}"),
            },
        });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_refuses_writes_as_a_postgres_standby_does() {
    let setup = "CREATE TABLE t (id int PRIMARY KEY, x int); INSERT INTO t VALUES (1, 1);";
    let statements = [
        "INSERT INTO t VALUES (2, 2)",
        "UPDATE t SET x = 3",
        "DELETE FROM t",
        "CREATE TABLE u (a int)",
        "CREATE INDEX ON t (x)",
        "DROP TABLE t",
        "TRUNCATE t",
        "ALTER TABLE t ADD COLUMN y int",
        "SELECT pg_current_wal_lsn()",
        "SELECT count(*) FROM t",
    ];
    let pg_primary = PgServer::start().await;
    pg_primary
        .connect()
        .await
        .unwrap()
        .batch_execute(setup)
        .await
        .unwrap();
    let pg_standby = PgServer::standby_of(&pg_primary).await;
    let pg = outcomes(&pg_standby.connect().await.unwrap(), &statements).await;

    let primary = Shard::with_schema("repl-refuse-primary", setup);
    let standby = start_standby(&primary, "repl-refuse", "s1");
    wait_caught_up(&primary, &standby).await;
    let ours = outcomes(&shard_support_connect(standby.port).await, &statements).await;
    assert_eq!(ours, pg);

    // Replication connections: only users with the replication right.
    let refused = std::process::Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-c",
            "IDENTIFY_SYSTEM",
            &format!(
                "host=127.0.0.1 port={} user=alice dbname=replication replication=true",
                primary.port
            ),
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("must be superuser or replication role to start walsender"),
        "{stderr}"
    );
    let identified = std::process::Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-c",
            "IDENTIFY_SYSTEM",
            &format!(
                "host=127.0.0.1 port={} user=postgres dbname=replication replication=true",
                primary.port
            ),
        ])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&identified.stdout)
        .trim()
        .to_string();
    let lsn = primary.psql("SELECT pg_current_wal_lsn()").unwrap();
    let fields: Vec<&str> = line.split('|').collect();
    assert_eq!(fields.len(), 4, "{line}");
    assert_eq!(fields[1], "1");
    assert_eq!(fields[2], lsn.trim());
    standby.stop();
    primary.stop();
}

/// Inserts ids `from..` until the server fails, noting each acknowledged one.
async fn insert_until_failure(
    port: u16,
    from: i64,
    acked: std::sync::Arc<std::sync::Mutex<Vec<i64>>>,
) {
    let client = shard_support_connect(port).await;
    for id in from.. {
        let sql = format!("INSERT INTO t VALUES ({id}, 0)");
        if client.simple_query(&sql).await.is_err() {
            return;
        }
        acked.lock().unwrap().push(id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_synchronous_commits_survive_the_primary() {
    let test = "repl-sync";
    let dir = fresh_dir(&format!("{test}-primary"));
    let config = dir.with_extension("yaml");
    std::fs::write(
        &config,
        "synchronous_standby_names: 'FIRST 1 (s1)'\nmetrics_listen: \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let primary = Shard::start_with(&dir, &["--config", config.to_str().unwrap()]);
    primary
        .psql("SET synchronous_commit = local; CREATE TABLE t (id bigint PRIMARY KEY, x int)")
        .unwrap();
    let s1_dir = fresh_dir(&format!("{test}-s1"));
    let s1 = start_standby_on(&primary, &s1_dir, "s1");
    let s2 = start_standby(&primary, test, "s2");
    wait_caught_up(&primary, &s1).await;
    wait_caught_up(&primary, &s2).await;
    assert_eq!(
        primary
            .psql(
                "SHOW synchronous_standby_names; \
                 SELECT application_name, sync_priority, sync_state FROM pg_stat_replication \
                 ORDER BY application_name"
            )
            .unwrap(),
        "FIRST 1 (s1)\ns1|1|sync\ns2|0|async\n"
    );

    // remote_apply: a row acknowledged by the primary is already visible
    // on the synchronous standby.
    let p = shard_support_connect(primary.port).await;
    let r = shard_support_connect(s1.port).await;
    p.simple_query("SET synchronous_commit = remote_apply")
        .await
        .unwrap();
    for id in 1..=30i64 {
        p.simple_query(&format!("INSERT INTO t VALUES ({id}, 1)"))
            .await
            .unwrap();
        let n: i64 = r
            .query_one(&format!("SELECT count(*) FROM t WHERE id = {id}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "row {id} not yet visible on s1");
    }

    // Replication metrics on both sides.
    let m = scrape(metrics_port(&primary.dir, 1));
    assert_eq!(value(&m, "pgvshard_shard_is_standby", &[]), 0.0);
    assert_eq!(value(&m, "pgvshard_shard_timeline", &[]), 1.0);
    assert!(value(&m, "pgvshard_shard_wal_sent_bytes_total", &[]) > 0.0);
    assert_eq!(
        value(
            &m,
            "pgvshard_shard_replication_lag_bytes",
            &["standby=\"s1\""]
        ),
        0.0
    );
    let replay_lag = value(
        &m,
        "pgvshard_shard_replication_lag_seconds",
        &["standby=\"s1\"", "kind=\"replay\""],
    );
    assert!((0.0..10.0).contains(&replay_lag), "{replay_lag}");
    let m = scrape(metrics_port(&s1.dir, 1));
    assert_eq!(value(&m, "pgvshard_shard_is_standby", &[]), 1.0);
    assert!(value(&m, "pgvshard_shard_wal_replayed_bytes_total", &[]) > 0.0);

    // Without s1, `on` waits and `local` does not.
    s1.kill9();
    p.simple_query("SET synchronous_commit = local")
        .await
        .unwrap();
    p.simple_query("INSERT INTO t VALUES (100, 2)")
        .await
        .unwrap();
    let waiting = shard_support_connect(primary.port).await;
    let (done_tx, mut done) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let r = waiting.simple_query("INSERT INTO t VALUES (101, 2)").await;
        let _ = done_tx.send(r.is_ok());
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        done.try_recv().is_err(),
        "a synchronous commit returned without s1"
    );
    let s1 = start_standby_on(&primary, &s1_dir, "s1");
    let returned = tokio::time::timeout(Duration::from_secs(30), done).await;
    assert!(matches!(returned, Ok(Ok(true))), "{returned:?}");

    // SIGKILL the primary under a synchronous write load: every
    // acknowledged insert is on s1.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            tokio::spawn(insert_until_failure(
                primary.port,
                1000 + w * 100_000,
                acked.clone(),
            ))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 300 {
        assert!(Instant::now() < deadline, "the write load stalled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let primary_dir = primary.dir.clone();
    primary.kill9();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let on_s1: std::collections::HashSet<i64> = shard_support_connect(s1.port)
        .await
        .query("SELECT id FROM t", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let missing: Vec<i64> = acked
        .iter()
        .filter(|id| !on_s1.contains(id))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not on s1: {missing:?}"
    );
    assert!(on_s1.contains(&101));

    // Promote s1: a new timeline; it takes writes.
    let c1 = shard_support_connect(s1.port).await;
    let promoted: bool = c1
        .query_one("SELECT pg_promote()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(promoted);
    assert_eq!(s1.psql("SELECT pg_is_in_recovery()").unwrap().trim(), "f");
    c1.simple_query("INSERT INTO t VALUES (500, 7)")
        .await
        .unwrap();
    let again = c1.simple_query("SELECT pg_promote()").await.unwrap_err();
    assert_eq!(shard_support::sqlstate(&again), "55000");

    // The old primary comes back as a standby of s1 and s2 follows s1:
    // both end with s1's rows (the old primary's unreplicated tail, if it
    // has one, discarded) and refuse writes.
    let old = start_standby_on(&s1, &primary_dir, "old");
    s2.kill9();
    let s2 = start_standby_on(&s1, &fresh_or_kept(test, "s2"), "s2");
    c1.simple_query("INSERT INTO t VALUES (501, 8)")
        .await
        .unwrap();
    let ids = |port| async move {
        shard_support_connect(port)
            .await
            .simple_query("SELECT id FROM t ORDER BY id")
            .await
            .unwrap()
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    wait_caught_up(&s1, &old).await;
    wait_caught_up(&s1, &s2).await;
    let expected = ids(s1.port).await;
    assert_eq!(ids(old.port).await, expected);
    assert_eq!(ids(s2.port).await, expected);
    let refused = shard_support_connect(old.port)
        .await
        .simple_query("INSERT INTO t VALUES (502, 9)")
        .await
        .unwrap_err();
    assert_eq!(shard_support::sqlstate(&refused), "25006");
    assert_eq!(
        old.psql("SELECT status, received_tli FROM pg_stat_wal_receiver")
            .unwrap()
            .trim(),
        "streaming|2"
    );
    old.stop();
    s2.stop();
    s1.stop();
}

/// A client whose notices (severity, SQLSTATE, message | detail) are kept.
async fn noting_client(
    port: u16,
) -> (
    tokio_postgres::Client,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    let (client, mut conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    let notices = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = notices.clone();
    tokio::spawn(async move {
        while let Some(Ok(m)) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            if let tokio_postgres::AsyncMessage::Notice(n) = m {
                kept.lock().unwrap().push(format!(
                    "{} {} {} | {}",
                    n.severity(),
                    n.code().code(),
                    n.message(),
                    n.detail().unwrap_or("")
                ));
            }
        }
    });
    (client, notices)
}

/// `fut`, logged with the time it took; a step over 15 s fails the test
/// instead of hanging it.
async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(15), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: still running after 15 s"));
    eprintln!("{what}: {} ms", started.elapsed().as_millis());
    r
}

/// What a server does with `synchronous_commit` spellings, and with
/// commits whose wait for an absent synchronous standby is canceled (by a
/// cancel request, past statement_timeout, at COMMIT, in COPY): each line
/// says whether the statement succeeded, its notices, and what is stored.
async fn synchronous_commit_behaviour(port: u16) -> Vec<String> {
    let mut seen = Vec::new();
    let (c, notices) = bounded("connect", noting_client(port)).await;
    for v in [
        "true", "false", "yes", "no", "1", "0", "'1'", "ON", "Off", "tru", "2", "local",
    ] {
        let set = format!("SET synchronous_commit = {v}");
        seen.push(match bounded(&set, c.simple_query(&set)).await {
            Ok(_) => format!(
                "{v}: {}",
                bounded("SHOW", answer_line(&c, "SHOW synchronous_commit")).await
            ),
            Err(e) => {
                let db = e.as_db_error().unwrap();
                format!("{v}: {} {} {:?}", db.code().code(), db.message(), db.hint())
            }
        });
    }
    // One statement per query: the implicit transaction of a
    // multi-statement query commits after its RESET, and would wait.
    bounded("CREATE TABLE", c.batch_execute("CREATE TABLE t (id int)"))
        .await
        .unwrap();
    bounded("RESET", c.batch_execute("RESET synchronous_commit"))
        .await
        .unwrap();
    let canceled = |sql: &'static str| {
        let (token, c) = (c.cancel_token(), &c);
        async move {
            let cancel = async {
                tokio::time::sleep(Duration::from_millis(600)).await;
                token.cancel_query(tokio_postgres::NoTls).await.unwrap();
            };
            let (r, ()) = bounded(sql, async { tokio::join!(c.simple_query(sql), cancel) }).await;
            r.map(|_| "ok".to_string())
                .unwrap_or_else(|e| shard_support::sqlstate(&e))
        }
    };
    let mut step = |what: &str, outcome: String| {
        seen.push(format!(
            "{what}: {outcome} {:?}",
            std::mem::take(&mut *notices.lock().unwrap())
        ));
    };
    step("cancel request", canceled("INSERT INTO t VALUES (1)").await);
    // statement_timeout does not end the wait: only the cancel request.
    bounded(
        "SET statement_timeout",
        c.batch_execute("SET statement_timeout = '200ms'"),
    )
    .await
    .unwrap();
    step(
        "statement_timeout",
        canceled("INSERT INTO t VALUES (2)").await,
    );
    bounded(
        "BEGIN; INSERT",
        c.batch_execute("RESET statement_timeout; BEGIN; INSERT INTO t VALUES (3)"),
    )
    .await
    .unwrap();
    step("COMMIT", canceled("COMMIT").await);
    let sink = bounded(
        "COPY FROM STDIN",
        c.copy_in::<_, bytes::Bytes>("COPY t FROM STDIN"),
    )
    .await
    .unwrap();
    let token = c.cancel_token();
    let copied = bounded("COPY with a cancel", async {
        tokio::join!(
            async {
                let mut sink = std::pin::pin!(sink);
                futures_util::SinkExt::send(&mut sink, bytes::Bytes::from_static(b"4\n"))
                    .await
                    .unwrap();
                sink.as_mut().finish().await
            },
            async {
                tokio::time::sleep(Duration::from_millis(600)).await;
                token.cancel_query(tokio_postgres::NoTls).await.unwrap();
            }
        )
        .0
    })
    .await;
    // tokio-postgres sends COPY by the extended protocol: PostgreSQL
    // commits at Sync, after CommandComplete, so the WARNING comes after
    // the count; a round trip collects it.
    bounded("SELECT 1", c.simple_query("SELECT 1"))
        .await
        .unwrap();
    step("COPY", format!("{:?}", copied.map_err(|e| e.to_string())));
    // A write that runs past statement_timeout fails and leaves nothing.
    bounded(
        "SET statement_timeout",
        c.batch_execute("SET statement_timeout = '100ms'"),
    )
    .await
    .unwrap();
    let long = "INSERT INTO t SELECT g FROM generate_series(10, 2000000) g";
    seen.push(format!(
        "mid-statement: {}",
        bounded(long, answer_line(&c, long)).await
    ));
    bounded(
        "SET local",
        c.batch_execute("RESET statement_timeout; SET synchronous_commit = local"),
    )
    .await
    .unwrap();
    seen.push(bounded("SELECT", answer_line(&c, "SELECT id FROM t ORDER BY id")).await);
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_commit_spellings_and_canceled_waits_match_postgres() {
    let pg = bounded(
        "PostgreSQL",
        PgServer::start_with(&["synchronous_standby_names=s1", "synchronous_commit=on"]),
    )
    .await;
    let expected = synchronous_commit_behaviour(pg.port).await;
    // A canceled wait is a WARNING and the commit stands.
    assert!(
        expected[12].starts_with("cancel request: ok [\"WARNING 01000 canceling wait"),
        "{expected:?}"
    );
    let dir = fresh_dir("repl-cancel-wait");
    let config = dir.with_extension("yaml");
    std::fs::write(&config, "synchronous_standby_names: s1\n").unwrap();
    let primary = Shard::start_with(&dir, &["--config", config.to_str().unwrap()]);
    assert_eq!(synchronous_commit_behaviour(primary.port).await, expected);
    primary.stop();
}

/// Start LSN of the oldest WAL segment left in a shard's data directory.
fn oldest_segment(data: &Path) -> u64 {
    segment_starts(data).into_iter().min().unwrap_or(0)
}

/// Start LSNs of the WAL segments in a shard's data directory.
fn segment_starts(data: &Path) -> Vec<u64> {
    std::fs::read_dir(data.join("wal"))
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            u64::from_str_radix(name.strip_suffix(".wal")?, 16).ok()
        })
        .collect()
}

/// What a power failure may leave of a WAL flushed up to `flushed`: the
/// WAL after it cut off, the first `torn` bytes after it kept (a torn
/// write of the next frame).
fn lose_unflushed_wal(data: &Path, flushed: u64, torn: u64) {
    const SEGMENT_HEADER: u64 = 24;
    for start in segment_starts(data) {
        let path = data.join("wal").join(format!("{start:016X}.wal"));
        if start > flushed {
            std::fs::remove_file(&path).unwrap();
        } else {
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            let len = f.metadata().unwrap().len();
            let keep = SEGMENT_HEADER + flushed - start + torn;
            f.set_len(keep.min(len)).unwrap();
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The ids in `t`, in order.
async fn ids(client: &tokio_postgres::Client) -> Vec<i64> {
    client
        .query("SELECT id FROM t ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A shard on `dir` whose WAL writer flushes every `ms` milliseconds.
fn start_with_writer_delay(dir: &Path, ms: u64) -> Shard {
    let config = dir.with_extension(format!("{ms}.yaml"));
    std::fs::write(&config, format!("wal_writer_delay_ms: {ms}\n")).unwrap();
    Shard::start_with(dir, &["--config", config.to_str().unwrap()])
}

async fn lsn_of(client: &tokio_postgres::Client, function: &str) -> u64 {
    let row = client
        .query_one(&format!("SELECT {function}()::text"), &[])
        .await
        .unwrap();
    parse_lsn(row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asynchronous_commits_skip_the_fsync_and_a_crash_loses_at_most_the_unflushed_tail() {
    let test = "repl-async";
    let dir = fresh_dir(test);
    // A WAL writer that waits 10 s: only synchronous commits flush here.
    let primary = start_with_writer_delay(&dir, 10_000);
    let client = primary.connect().await;
    client
        .batch_execute("CREATE TABLE t (id bigint PRIMARY KEY)")
        .await
        .unwrap();
    let standby = start_standby(&primary, test, "s1");
    let reader = shard_support_connect(standby.port).await;
    // 50 commits, one row each; all asynchronous but the 25th.
    let mut ends = Vec::new();
    for id in 1..=50i64 {
        let level = if id == 25 { "on" } else { "off" };
        client
            .batch_execute(&format!(
                "SET synchronous_commit = {level}; INSERT INTO t VALUES ({id})"
            ))
            .await
            .unwrap();
        ends.push(lsn_of(&client, "pg_current_wal_lsn").await);
    }
    // Visible at once; flushed only up to the synchronous commit.
    assert_eq!(ids(&client).await, (1..=50).collect::<Vec<_>>());
    let flushed = lsn_of(&client, "pg_current_wal_flush_lsn").await;
    assert!(
        flushed >= ends[24] && flushed < ends[49],
        "flushed {flushed:X}, commit 25 ends at {:X}, commit 50 at {:X}",
        ends[24],
        ends[49]
    );
    // The standby gets only flushed WAL: up to the 25th commit.
    let deadline = Instant::now() + Duration::from_secs(10);
    while reader
        .query("SELECT id FROM t", &[])
        .await
        .map_or(0, |rows| rows.len())
        < 25
    {
        assert!(Instant::now() < deadline, "the standby replays commit 25");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ids(&reader).await, (1..=25).collect::<Vec<_>>());
    standby.stop();

    // The process dying loses nothing: its WAL is in the page cache.
    primary.kill9();
    let power_loss = fresh_dir(&format!("{test}-power-loss"));
    copy_dir(&dir, &power_loss);
    let restarted = start_with_writer_delay(&dir, 10_000);
    let client = restarted.connect().await;
    assert_eq!(ids(&client).await, (1..=50).collect::<Vec<_>>());

    // A power failure loses the unflushed tail, and only that: the
    // commits ending at or before the flushed position, in order.
    lose_unflushed_wal(&power_loss, flushed, 7);
    let survivor = Shard::start(&power_loss);
    let kept = ends.iter().filter(|&&end| end <= flushed).count() as i64;
    assert!(kept >= 25, "{kept} commits flushed");
    assert_eq!(
        ids(&survivor.connect().await).await,
        (1..=kept).collect::<Vec<_>>()
    );
    survivor.stop();

    // The WAL writer flushes an asynchronous commit within its delay.
    restarted.stop();
    let primary = start_with_writer_delay(&dir, 100);
    let client = primary.connect().await;
    client
        .batch_execute("SET synchronous_commit = off; INSERT INTO t VALUES (51)")
        .await
        .unwrap();
    let committed = Instant::now();
    let end = lsn_of(&client, "pg_current_wal_lsn").await;
    while lsn_of(&client, "pg_current_wal_flush_lsn").await < end {
        assert!(
            committed.elapsed() < Duration::from_secs(2),
            "the WAL writer flushes within its delay"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    primary.stop();
}

fn parse_lsn(text: &str) -> u64 {
    let (hi, lo) = text.trim().split_once('/').unwrap();
    (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_behind_the_retained_wal_says_so_and_resyncs_from_an_empty_directory() {
    let test = "repl-behind";
    // 1 MiB segments and a checkpoint per MiB: a few MiB of writes move
    // the primary past what a disconnected standby needs.
    let dir = fresh_dir(&format!("{test}-primary"));
    let config = dir.with_extension("yaml");
    std::fs::write(
        &config,
        "wal_segment_mb: 1\ncheckpoint_wal_mb: 1\nwal_keep_mb: 0\n",
    )
    .unwrap();
    let primary = Shard::start_with(&dir, &["--config", config.to_str().unwrap()]);
    primary
        .psql("CREATE TABLE t (id bigint PRIMARY KEY, pad text); INSERT INTO t VALUES (0, 'first')")
        .unwrap();
    let s1_dir = fresh_dir(&format!("{test}-s1"));
    let s1 = start_standby_on(&primary, &s1_dir, "s1");
    wait_caught_up(&primary, &s1).await;
    let needed = parse_lsn(&s1.psql("SELECT pg_last_wal_replay_lsn()").unwrap());
    s1.kill9();

    // While s1 is down: 4 MiB of WAL, and checkpoints remove the segment
    // holding s1's position (nothing holds it for a disconnected standby).
    let pad = "x".repeat(4000);
    for chunk in 0..4 {
        let values: Vec<String> = (1..=256)
            .map(|i| format!("({}, '{pad}')", chunk * 1000 + i))
            .collect();
        primary
            .psql(&format!("INSERT INTO t VALUES {}", values.join(",")))
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while oldest_segment(&primary.dir) <= needed {
        assert!(
            Instant::now() < deadline,
            "no checkpoint removed the WAL at {needed:X}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Restarted, s1 cannot stream: it says why and what to do, keeps
    // serving what it has, and is not streaming.
    let s1 = start_standby_on(&primary, &s1_dir, "s1");
    let log = s1_dir.with_extension("log");
    let deadline = Instant::now() + Duration::from_secs(30);
    let said = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("too far behind")) {
            break line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "s1 did not say it is behind:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        said.contains("has already been removed")
            && said.contains("start it on an empty data directory"),
        "{said}"
    );
    assert_eq!(s1.psql("SELECT count(*) FROM t").unwrap().trim(), "1");
    assert_ne!(
        s1.psql("SELECT status FROM pg_stat_wal_receiver")
            .unwrap()
            .trim(),
        "streaming"
    );

    // The documented re-sync: stop it, empty its data directory, start
    // it again: a fresh base copy, then streaming.
    s1.stop();
    std::fs::remove_dir_all(&s1_dir).unwrap();
    std::fs::create_dir_all(&s1_dir).unwrap();
    let s1 = start_standby_on(&primary, &s1_dir, "s1");
    primary
        .psql("INSERT INTO t VALUES (9999, 'after')")
        .unwrap();
    wait_caught_up(&primary, &s1).await;
    let ids = "SELECT count(*), sum(id), sum(length(pad)) FROM t";
    assert_eq!(s1.psql(ids).unwrap(), primary.psql(ids).unwrap());
    assert_eq!(
        s1.psql("SELECT status FROM pg_stat_wal_receiver")
            .unwrap()
            .trim(),
        "streaming"
    );
    s1.stop();
    primary.stop();
}

/// The data directory a test's standby `name` used (kept as it is).
fn fresh_or_kept(test: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("shard-{test}-{name}"))
}

/// The ids of `t` on `shard`, in order, joined by commas.
fn ids_of(shard: &Shard) -> String {
    let out = shard.psql("SELECT id FROM t ORDER BY id").unwrap();
    out.lines().collect::<Vec<_>>().join(",")
}

/// A promoted standby remembers its promotion, as PostgreSQL's does: run
/// again with its original `--standby-of` (its old primary, back on
/// timeline 1 with a write of its own), it stays the primary of timeline
/// 2 and keeps its rows instead of copying the old primary's. A standby
/// on timeline 2 pointed at the old primary refuses to follow it and
/// keeps its rows too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_standby_never_follows_a_primary_on_an_older_timeline() {
    let test = "repl-promoted";
    let primary = Shard::start(&fresh_dir(&format!("{test}-primary")));
    primary
        .psql("CREATE TABLE t (id bigint PRIMARY KEY); INSERT INTO t VALUES (1)")
        .unwrap();
    let s1_dir = fresh_dir(&format!("{test}-s1"));
    let s1 = start_standby_on(&primary, &s1_dir, "s1");
    wait_caught_up(&primary, &s1).await;
    let (old_dir, old_port) = (primary.dir.clone(), primary.port);
    primary.kill9();
    assert_eq!(s1.psql("SELECT pg_promote()").unwrap().trim(), "t");
    s1.psql("INSERT INTO t VALUES (2)").unwrap();
    let s2 = start_standby(&s1, test, "s2");
    wait_caught_up(&s1, &s2).await;
    let s2_dir = s2.dir.clone();
    s2.stop();

    // The old primary is back on its port, on timeline 1, and writes.
    let old = Shard::start_on(&old_dir, old_port, &[]);
    old.psql("INSERT INTO t VALUES (3)").unwrap();

    // s1 restarted exactly as it was first started: still the primary.
    s1.stop();
    let s1 = start_standby_on(&old, &s1_dir, "s1");
    assert_eq!(
        s1.psql("SELECT pg_is_in_recovery(), timeline_id FROM pg_control_checkpoint()")
            .unwrap()
            .trim(),
        "f|2"
    );
    assert_eq!(ids_of(&s1), "1,2");
    s1.psql("INSERT INTO t VALUES (4)").unwrap();
    let log = std::fs::read_to_string(s1_dir.with_extension("log")).unwrap();
    assert!(
        log.contains("this data directory was promoted: starting as a primary"),
        "{log}"
    );

    // s2, on timeline 2, pointed at the old primary: it stays a standby
    // with timeline 2's rows and says why it does not follow.
    let s2 = start_standby_on(&old, &s2_dir, "s2");
    let s2_log = s2_dir.with_extension("log");
    eventually(20, "s2 refuses the older timeline", || async {
        std::fs::read_to_string(&s2_log).unwrap().contains(&format!(
            "primary 127.0.0.1:{old_port} is on timeline 1, older than this server's timeline 2"
        ))
    })
    .await;
    assert_eq!(s2.psql("SELECT pg_is_in_recovery()").unwrap().trim(), "t");
    assert_eq!(ids_of(&s2), "1,2");
    s2.stop();
    s1.stop();
    old.stop();
}

/// A client for 127.0.0.1:`port` as `user`.
async fn connect_as(port: u16, user: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user={user} dbname=postgres"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    client
}

/// What `user` gets from `statements` on the server at `port`, and
/// whether pg_roles calls it a superuser.
async fn privileges(port: u16, user: &str, statements: &[&str]) -> Vec<String> {
    let client = connect_as(port, user).await;
    let mut seen = outcomes(&client, statements).await;
    let sql = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user";
    seen.push(format!("rolsuper: {}", answer_line(&client, sql).await));
    seen
}

/// Only superusers may run ALTER SYSTEM and the recovery control
/// functions, on a primary and on a standby: the others get PostgreSQL's
/// 42501 (before any 55000), compared with a PostgreSQL 18 primary and
/// standby and a non-superuser role on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_control_is_for_superusers_as_in_postgres() {
    let anyone = [
        "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1'",
        "ALTER SYSTEM RESET primary_conninfo",
        "SELECT pg_wal_replay_pause()",
        "SELECT pg_wal_replay_resume()",
        "SELECT pg_promote()",
        "SELECT pg_promote(false)",
        "SELECT pg_reload_conf()",
        "SELECT pg_is_wal_replay_paused()",
    ];
    let superuser_on_primary = [
        "ALTER SYSTEM RESET primary_conninfo",
        "SELECT pg_wal_replay_pause()",
        "SELECT pg_reload_conf()",
    ];
    let superuser_on_standby = [
        "SELECT pg_wal_replay_pause()",
        "SELECT pg_wal_replay_resume()",
        "SELECT pg_is_wal_replay_paused()",
        "SELECT pg_reload_conf()",
    ];
    let pg_primary = PgServer::start().await;
    pg_primary
        .connect()
        .await
        .unwrap()
        .batch_execute("CREATE ROLE alice LOGIN")
        .await
        .unwrap();
    let pg_standby = PgServer::standby_of(&pg_primary).await;
    let rounds = |primary: u16, standby: u16| {
        [
            (primary, "alice", &anyone[..]),
            (standby, "alice", &anyone[..]),
            (primary, "postgres", &superuser_on_primary[..]),
            (standby, "postgres", &superuser_on_standby[..]),
        ]
    };
    let mut expected = Vec::new();
    for (port, user, statements) in rounds(pg_primary.port, pg_standby.port) {
        expected.push(privileges(port, user, statements).await);
    }
    assert!(
        expected[0][0].ends_with("42501 permission denied to set parameter \"primary_conninfo\""),
        "{expected:?}"
    );

    let primary = Shard::start(&fresh_dir("repl-privileges"));
    let standby = start_standby(&primary, "repl-privileges", "s1");
    wait_caught_up(&primary, &standby).await;
    let mut seen = Vec::new();
    for (port, user, statements) in rounds(primary.port, standby.port) {
        seen.push(privileges(port, user, statements).await);
    }
    assert_eq!(seen, expected);
    // pgvshard's own recovery control function, which PostgreSQL lacks.
    assert_eq!(
        outcomes(
            &connect_as(primary.port, "alice").await,
            &["SELECT pgvshard_rejoin_as_standby()"]
        )
        .await,
        [
            "SELECT pgvshard_rejoin_as_standby(): 42501 permission denied for function \
             pgvshard_rejoin_as_standby"
        ]
    );
    standby.stop();
    primary.stop();
}
