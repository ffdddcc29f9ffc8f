//! Savepoints and two-phase commit on a `pgvshard shard`, with real
//! PostgreSQL (max_prepared_transactions set) as the control: the same
//! statements give the same rows and SQLSTATEs on both. A prepared
//! transaction stays invisible, blocks a conflicting writer until it is
//! decided, and survives kill -9 and a checkpointed restart.

mod pg_support;
mod shard_support;

use pg_support::PgServer;
use shard_support::{fresh_dir, Shard};
use std::time::Duration;
use tokio_postgres::{Client, SimpleQueryMessage};

/// Each statement's rows (first column, as text) or its SQLSTATE.
async fn run_script(client: &Client, script: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for sql in script {
        let line = match client.simple_query(sql).await {
            Ok(msgs) => {
                let rows: Vec<String> = msgs
                    .iter()
                    .filter_map(|m| match m {
                        SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("NULL").to_string()),
                        _ => None,
                    })
                    .collect();
                format!("ok [{}]", rows.join(","))
            }
            Err(e) => format!("error {}", shard_support::sqlstate(&e)),
        };
        out.push(format!("{sql} => {line}"));
    }
    out
}

async fn both(pg: &Client, shard: &Client, script: &[&str]) -> Vec<String> {
    let expected = run_script(pg, script).await;
    let got = run_script(shard, script).await;
    assert_eq!(
        got, expected,
        "shard (left) differs from PostgreSQL (right)"
    );
    got
}

const SAVEPOINTS: &[&str] = &[
    "CREATE TABLE sp (id bigint PRIMARY KEY, v text)",
    "SAVEPOINT a",
    "RELEASE a",
    "ROLLBACK TO a",
    "BEGIN",
    "INSERT INTO sp VALUES (1, 'a')",
    "SAVEPOINT s1",
    "INSERT INTO sp VALUES (2, 'b')",
    "SELECT id FROM sp ORDER BY id",
    "ROLLBACK TO s1",
    "SELECT id FROM sp ORDER BY id",
    "INSERT INTO sp VALUES (1, 'dup')",
    "SELECT 1",
    "RELEASE s1",
    "ROLLBACK TO SAVEPOINT s1",
    "INSERT INTO sp VALUES (3, 'c')",
    "SAVEPOINT \"_pg3_1\"",
    "SAVEPOINT s2",
    "RELEASE SAVEPOINT \"_pg3_1\"",
    "ROLLBACK TO s2",
    "ROLLBACK TO s1",
    "SELECT id FROM sp ORDER BY id",
    "COMMIT",
    "SELECT id FROM sp ORDER BY id",
    "BEGIN",
    "INSERT INTO sp VALUES (4, 'd')",
    "SAVEPOINT x",
    "INSERT INTO sp VALUES (5, 'e')",
    "SAVEPOINT x",
    "INSERT INTO sp VALUES (6, 'f')",
    "ROLLBACK TO x",
    "RELEASE x",
    "SELECT id FROM sp ORDER BY id",
    "RELEASE x",
    "ROLLBACK",
    "BEGIN",
    "INSERT INTO sp VALUES (4, 'd')",
    "SAVEPOINT y",
    "INSERT INTO sp VALUES (5, 'e')",
    "RELEASE y",
    "COMMIT",
    "SELECT id FROM sp ORDER BY id",
];

const TWO_PHASE: &[&str] = &[
    "CREATE TABLE tp (id bigint PRIMARY KEY, v text)",
    "COMMIT PREPARED 'nope'",
    "ROLLBACK PREPARED 'nope'",
    "PREPARE TRANSACTION 'outside'",
    "BEGIN",
    "INSERT INTO tp VALUES (1, 'a')",
    "PREPARE TRANSACTION 'g1'",
    "SELECT id FROM tp",
    "SELECT gid FROM pg_prepared_xacts",
    "BEGIN",
    "INSERT INTO tp VALUES (2, 'b')",
    "PREPARE TRANSACTION 'g1'",
    "SELECT id FROM tp",
    "BEGIN",
    "COMMIT PREPARED 'g1'",
    "ROLLBACK",
    "COMMIT PREPARED 'g1'",
    "COMMIT PREPARED 'g1'",
    "SELECT id FROM tp",
    "BEGIN",
    "DELETE FROM tp WHERE id = 1",
    "INSERT INTO tp VALUES (3, 'c')",
    "PREPARE TRANSACTION 'g2'",
    "SELECT id FROM tp ORDER BY id",
    "ROLLBACK PREPARED 'g2'",
    "SELECT id FROM tp ORDER BY id",
    "BEGIN",
    "INSERT INTO tp VALUES (1, 'dup')",
    "PREPARE TRANSACTION 'g3'",
    "SELECT count(*) FROM pg_prepared_xacts",
    "BEGIN",
    "PREPARE TRANSACTION 'empty'",
    "SELECT gid FROM pg_prepared_xacts",
    "COMMIT PREPARED 'empty'",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn savepoints_and_prepared_transactions_match_postgres() {
    let pg = PgServer::start_with(&["max_prepared_transactions=10"]).await;
    let shard = Shard::start(&fresh_dir("two-phase-script"));
    let (p, s) = (pg.connect().await.unwrap(), shard.connect().await);
    let sp = both(&p, &s, SAVEPOINTS).await;
    assert!(sp[sp.len() - 1].ends_with("ok [1,4,5]"), "{sp:#?}");
    assert!(
        sp.contains(&"ROLLBACK TO s2 => error 3B001".to_string()),
        "{sp:#?}"
    );
    let tp = both(&p, &s, TWO_PHASE).await;
    assert!(
        tp.iter()
            .any(|l| l == "SELECT gid FROM pg_prepared_xacts => ok [g1]"),
        "{tp:#?}"
    );
    assert!(
        tp.iter()
            .any(|l| l == "INSERT INTO tp VALUES (1, 'dup') => error 23505"),
        "{tp:#?}"
    );
}

/// A writer whose key a prepared transaction holds waits until the
/// decision, then fails (committed) — on both servers; a writer of
/// another key does not wait.
async fn conflicting_writer_waits(first: Client, second: Client) -> String {
    first
        .batch_execute("CREATE TABLE w (id bigint PRIMARY KEY)")
        .await
        .unwrap();
    first
        .batch_execute("BEGIN; INSERT INTO w VALUES (5); PREPARE TRANSACTION 'hold'")
        .await
        .unwrap();
    second
        .batch_execute("INSERT INTO w VALUES (6)")
        .await
        .unwrap();
    let waiter = tokio::spawn(async move {
        let r = second.batch_execute("INSERT INTO w VALUES (5)").await;
        r.map_err(|e| shard_support::sqlstate(&e))
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!waiter.is_finished(), "the conflicting insert did not wait");
    first.batch_execute("COMMIT PREPARED 'hold'").await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiting insert ends after the decision")
        .unwrap();
    format!("{outcome:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_transaction_blocks_conflicting_writers_as_postgres_does() {
    let pg = PgServer::start_with(&["max_prepared_transactions=10"]).await;
    let shard = Shard::start(&fresh_dir("two-phase-block"));
    let expected =
        conflicting_writer_waits(pg.connect().await.unwrap(), pg.connect().await.unwrap()).await;
    assert_eq!(expected, "Err(\"23505\")");
    let got = conflicting_writer_waits(shard.connect().await, shard.connect().await).await;
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_transactions_need_max_prepared_transactions() {
    let pg = PgServer::start().await;
    let dir = fresh_dir("two-phase-disabled");
    let config = dir.with_extension("yaml");
    std::fs::write(&config, "max_prepared_transactions: 0\n").unwrap();
    let shard = Shard::start_with(&dir, &["--config", config.to_str().unwrap()]);
    let script = [
        "SHOW max_prepared_transactions",
        "CREATE TABLE d (id bigint PRIMARY KEY)",
        "BEGIN",
        "INSERT INTO d VALUES (1)",
        "PREPARE TRANSACTION 'x'",
        "SELECT count(*) FROM d",
    ];
    let out = both(
        &pg.connect().await.unwrap(),
        &shard.connect().await,
        &script,
    )
    .await;
    assert_eq!(out[4], "PREPARE TRANSACTION 'x' => error 55000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_transaction_survives_kill_9_and_checkpoints() {
    let dir = fresh_dir("two-phase-crash");
    let shard = Shard::start(&dir);
    shard
        .psql(
            "CREATE TABLE c (id bigint PRIMARY KEY, v text);
             INSERT INTO c VALUES (1, 'one');
             BEGIN; INSERT INTO c VALUES (2, 'two'); UPDATE c SET v = 'uno' WHERE id = 1;
             PREPARE TRANSACTION 'crash';",
        )
        .unwrap();
    let state = |s: &Shard| {
        s.psql("SELECT gid FROM pg_prepared_xacts; SELECT id, v FROM c ORDER BY id;")
            .unwrap()
    };
    assert_eq!(state(&shard), "crash\n1|one\n");
    shard.kill9();
    let shard = Shard::start(&dir);
    assert_eq!(state(&shard), "crash\n1|one\n", "replayed from the WAL");
    shard.stop();
    let shard = Shard::start(&dir);
    assert_eq!(state(&shard), "crash\n1|one\n", "kept by the checkpoint");
    let blocked = shard.psql("SET statement_timeout = '300ms'; UPDATE c SET v = 'x' WHERE id = 1;");
    assert!(blocked.unwrap_err().contains("canceling statement"));
    shard.psql("COMMIT PREPARED 'crash'").unwrap();
    assert_eq!(state(&shard), "1|uno\n2|two\n");
    shard.kill9();
    let shard = Shard::start(&dir);
    assert_eq!(state(&shard), "1|uno\n2|two\n");
}
