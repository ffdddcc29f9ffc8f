//! Transaction blocks over several shards through the proxy, compared
//! statement by statement with one PostgreSQL server running the same
//! script: writes on any shard, reads of the block's own writes (KNN
//! included), savepoints, errors, ROLLBACK, DDL inside the block, strings
//! of several statements (one implicit transaction), a client
//! that disconnects, and two blocks writing the same keys. Run over
//! `pgvshard shard` processes and over real PostgreSQL shards.

mod pg_support;
mod shard_support;

use std::time::Duration;

use pg_support::{connect_to, PgServer, TWO_PHASE};
use shard_support::{answer_line, fresh_dir, Shard};
use tokio_postgres::Client;

async fn proxy_over(shards: &[(u16, &str)]) -> pgvshard::proxy::RunningProxy {
    let mut yaml = String::from("listen: 127.0.0.1:0\nshards:\n");
    for (i, (port, db)) in shards.iter().enumerate() {
        yaml.push_str(&format!(
            "  - name: s{i}\n    port: {port}\n    dbname: {db}\n    pool:\n      size: 6\n      connect_timeout_ms: 1000\n"
        ));
    }
    let config = pgvshard::proxy::config::ProxyConfig::from_yaml(&yaml).expect("valid config");
    pgvshard::proxy::start(config).await.expect("proxy starts")
}

/// Each step's rows (first column, comma-separated) or SQLSTATE; a step
/// names the session (0 or 1) that runs it.
async fn run(sessions: &[Client; 2], script: &[(usize, &str)]) -> Vec<String> {
    let mut out = Vec::new();
    for (who, sql) in script {
        let line = answer_line(&sessions[*who], sql).await;
        out.push(format!("[{who}] {sql} => {line}"));
    }
    out
}

async fn two(port: u16) -> [Client; 2] {
    [
        connect_to(port).await.unwrap(),
        connect_to(port).await.unwrap(),
    ]
}

/// Rows on both shards (ids 1..=8 hash to both of two shards), written,
/// read back, changed and rolled back in blocks.
const BLOCKS: &[(usize, &str)] = &[
    (0, "CREATE TABLE items (id bigint PRIMARY KEY, cat int, v vector(2))"),
    (0, "BEGIN"),
    (0, "INSERT INTO items VALUES (1, 1, '[1,1]'), (2, 1, '[2,2]'), (3, 1, '[3,3]'), (4, 1, '[4,4]'), (5, 1, '[5,5]'), (6, 1, '[6,6]')"),
    (0, "SELECT id FROM items ORDER BY id"),
    (1, "SELECT count(*) FROM items"),
    (0, "UPDATE items SET cat = 2 WHERE id IN (1, 2, 3)"),
    (0, "SELECT id FROM items ORDER BY v <-> '[0,0]' LIMIT 3"),
    (0, "SELECT count(*) FROM items WHERE cat = 2"),
    (0, "SAVEPOINT s1"),
    (0, "DELETE FROM items WHERE cat = 1"),
    (0, "SELECT count(*) FROM items"),
    (0, "ROLLBACK TO s1"),
    (0, "SELECT count(*) FROM items"),
    (0, "INSERT INTO items VALUES (7, 3, '[7,7]')"),
    (0, "RELEASE s1"),
    (0, "COMMIT"),
    (1, "SELECT id FROM items ORDER BY id"),
    (1, "SELECT count(*) FROM items WHERE cat = 2"),
    (0, "BEGIN"),
    (0, "INSERT INTO items VALUES (8, 1, '[8,8]'), (9, 1, '[9,9]')"),
    (0, "INSERT INTO items VALUES (1, 1, '[1,1]')"),
    (0, "SELECT 1"),
    (0, "COMMIT"),
    (1, "SELECT count(*) FROM items"),
    (0, "BEGIN"),
    (0, "DELETE FROM items"),
    (0, "SELECT count(*) FROM items"),
    (0, "ROLLBACK"),
    (1, "SELECT count(*) FROM items"),
];

/// DDL inside blocks: committed on every shard, or rolled back on all.
const DDL: &[(usize, &str)] = &[
    (0, "BEGIN"),
    (0, "CREATE TABLE docs (id bigint PRIMARY KEY, emb vector(3))"),
    (0, "CREATE INDEX ON docs USING hnsw (emb vector_l2_ops)"),
    (0, "INSERT INTO docs VALUES (1, '[1,0,0]'), (2, '[0,2,0]'), (3, '[0,0,3]'), (4, '[4,2,0]'), (5, '[5,5,5]'), (6, '[0.5,0.2,0]')"),
    (0, "SELECT id FROM docs ORDER BY emb <-> '[1,0,0]' LIMIT 3"),
    (0, "SELECT count(*) FROM docs"),
    (0, "COMMIT"),
    (1, "SELECT id FROM docs ORDER BY emb <-> '[1,0,0]' LIMIT 3"),
    (1, "SELECT count(*) FROM docs"),
    (0, "BEGIN"),
    (0, "CREATE TABLE gone (id bigint PRIMARY KEY, emb vector(3))"),
    (0, "INSERT INTO gone VALUES (1, '[1,1,1]'), (2, '[2,2,2]'), (3, '[3,3,3]'), (4, '[4,4,4]')"),
    (0, "SELECT count(*) FROM gone"),
    (0, "ROLLBACK"),
    (1, "SELECT count(*) FROM gone"),
    (0, "CREATE TABLE gone (id bigint PRIMARY KEY, note text)"),
    (0, "INSERT INTO gone VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')"),
    (1, "SELECT count(*) FROM gone"),
];

/// Simple Queries holding several statements: one implicit transaction
/// over both shards, committed when the string ends, rolled back when a
/// statement fails; COMMIT, ROLLBACK and BEGIN inside the string.
const IMPLICIT: &[(usize, &str)] = &[
    (0, "CREATE TABLE imp (id bigint PRIMARY KEY, v vector(2))"),
    (0, "INSERT INTO imp VALUES (1, '[1,1]'), (2, '[2,2]'); INSERT INTO imp VALUES (3, '[3,3]'), (4, '[4,4]'); SELECT 1/0"),
    (1, "SELECT count(*) FROM imp"),
    (0, "INSERT INTO imp VALUES (1, '[1,1]'), (2, '[2,2]'); INSERT INTO imp VALUES (3, '[3,3]'), (4, '[4,4]')"),
    (1, "SELECT id FROM imp ORDER BY id"),
    (0, "INSERT INTO imp VALUES (5, '[5,5]'); INSERT INTO imp VALUES (6, '[6,6]'), (1, '[1,1]')"),
    (1, "SELECT id FROM imp ORDER BY id"),
    (0, "DELETE FROM imp; SELECT count(*) FROM imp"),
    (1, "SELECT count(*) FROM imp"),
    (0, "INSERT INTO imp VALUES (7, '[7,7]'); COMMIT; INSERT INTO imp VALUES (8, '[8,8]'); SELECT 1/0"),
    (1, "SELECT id FROM imp ORDER BY id"),
    (0, "INSERT INTO imp VALUES (9, '[9,9]'); ROLLBACK"),
    (0, "INSERT INTO imp VALUES (10, '[1,0]'); BEGIN; INSERT INTO imp VALUES (11, '[1,1]')"),
    (1, "SELECT id FROM imp ORDER BY id"),
    (0, "SELECT id FROM imp ORDER BY v <-> '[1,0]' LIMIT 2"),
    (0, "ROLLBACK"),
    (1, "SELECT id FROM imp ORDER BY id"),
    (0, "SAVEPOINT s; SELECT 1"),
    (0, "SET LOCAL work_mem = '2MB'; SHOW work_mem"),
    (0, "SHOW work_mem"),
    (0, "SET work_mem = '1MB'; SELECT 1/0"),
    (0, "SHOW work_mem"),
    (0, "CREATE TABLE imp2 (id bigint PRIMARY KEY); INSERT INTO imp2 VALUES (1), (2), (3); SELECT 1/0"),
    (1, "SELECT count(*) FROM imp2"),
    (0, "DISCARD ALL; SELECT 1"),
    (0, "SELECT 1; SELECT 2"),
];

/// Transaction modes: a read-only block (BEGIN READ ONLY, SET TRANSACTION,
/// the session's default) refuses writes; AND CHAIN opens the next block
/// with the same modes; outside a block it is an error. VACUUM, ANALYZE and
/// CHECKPOINT reach every shard; VACUUM refuses a block.
const MODES: &[(usize, &str)] = &[
    (0, "CREATE TABLE modes (id bigint PRIMARY KEY, v vector(2))"),
    (0, "BEGIN READ ONLY"),
    (0, "SHOW transaction_read_only"),
    (0, "INSERT INTO modes VALUES (1, '[1,1]')"),
    (0, "ROLLBACK"),
    (
        0,
        "BEGIN; SET TRANSACTION READ ONLY; SELECT count(*) FROM modes",
    ),
    (0, "UPDATE modes SET v = '[0,0]'"),
    (0, "ROLLBACK"),
    (0, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"),
    (0, "DELETE FROM modes"),
    (0, "SHOW transaction_read_only"),
    (0, "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE"),
    (
        0,
        "START TRANSACTION ISOLATION LEVEL READ COMMITTED, READ WRITE",
    ),
    (
        0,
        "INSERT INTO modes VALUES (1, '[1,1]'), (2, '[2,2]'), (3, '[3,3]')",
    ),
    (0, "COMMIT AND CHAIN"),
    (1, "SELECT count(*) FROM modes"),
    (0, "INSERT INTO modes VALUES (4, '[4,4]'), (5, '[5,5]')"),
    (0, "ROLLBACK AND CHAIN"),
    (0, "SELECT id FROM modes ORDER BY id"),
    (0, "COMMIT"),
    (0, "COMMIT AND CHAIN"),
    (
        0,
        "BEGIN READ ONLY; COMMIT AND CHAIN; SHOW transaction_read_only",
    ),
    (0, "INSERT INTO modes VALUES (6, '[6,6]')"),
    (0, "ROLLBACK"),
    (0, "SELECT 1; ROLLBACK AND CHAIN"),
    (1, "SELECT id FROM modes ORDER BY id"),
    (0, "VACUUM modes"),
    (0, "VACUUM (ANALYZE, VERBOSE false) modes (v)"),
    (0, "ANALYZE nosuch"),
    (0, "SELECT 1; VACUUM modes"),
    (0, "CHECKPOINT"),
    (0, "BEGIN"),
    (0, "ANALYZE modes"),
    (0, "VACUUM modes"),
    (0, "ROLLBACK"),
];

/// A proxy over two `pgvshard shard` processes and one over two
/// PostgreSQL shards, each against one PostgreSQL server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_over_several_shards_match_postgres() {
    let (reference, pa, pb) = tokio::join!(
        PgServer::start(),
        PgServer::start_with(TWO_PHASE),
        PgServer::start_with(TWO_PHASE)
    );
    let script: Vec<(usize, &str)> = BLOCKS
        .iter()
        .chain(DDL)
        .chain(IMPLICIT)
        .chain(MODES)
        .copied()
        .collect();
    let expected = run(&two(reference.port).await, &script).await;
    assert!(expected[3].ends_with("=> 1,2,3,4,5,6"), "{expected:#?}");
    let (a, b) = (
        Shard::start(&fresh_dir("txn-blocks-a")),
        Shard::start(&fresh_dir("txn-blocks-b")),
    );
    for shards in [
        [(a.port, "db"), (b.port, "db")],
        [(pa.port, "postgres"), (pb.port, "postgres")],
    ] {
        let proxy = proxy_over(&shards).await;
        let got = run(&two(proxy.addr.port()).await, &script).await;
        assert_eq!(got, expected, "shards {shards:?}");
    }
    // Both shards hold rows of every table (the block wrote on both).
    for shard in [pa.connect().await.unwrap(), pb.connect().await.unwrap()] {
        for table in ["items", "docs", "gone"] {
            let n: i64 = shard
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .unwrap()
                .get(0);
            assert!(n > 0, "{table} has rows on every shard");
        }
    }
}

/// A client that goes away inside a block that wrote on both shards:
/// nothing is applied and no key stays locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_rolls_back_everywhere() {
    let (pa, pb) = tokio::join!(
        PgServer::start_with(TWO_PHASE),
        PgServer::start_with(TWO_PHASE)
    );
    let proxy = proxy_over(&[(pa.port, "postgres"), (pb.port, "postgres")]).await;
    let setup = connect_to(proxy.addr.port()).await.unwrap();
    setup
        .batch_execute("CREATE TABLE t (id bigint PRIMARY KEY, v vector(2))")
        .await
        .unwrap();
    let insert = "INSERT INTO t VALUES (1, '[1,1]'), (2, '[2,2]'), (3, '[3,3]'), (4, '[4,4]'), (5, '[5,5]'), (6, '[6,6]')";
    let leaving = connect_to(proxy.addr.port()).await.unwrap();
    leaving.batch_execute("BEGIN").await.unwrap();
    leaving.batch_execute(insert).await.unwrap();
    drop(leaving);
    // The same keys: this would wait on the gone client's locks.
    let again = tokio::time::timeout(Duration::from_secs(20), setup.batch_execute(insert)).await;
    again.expect("no key stays locked").unwrap();
    let n: i64 = setup
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 6, "only the second INSERT's rows");
}

/// Two blocks write the same two keys, one on each shard, in opposite
/// orders. PostgreSQL shards wait on each other's row locks across the
/// two servers (a deadlock neither server sees; `lock_timeout` ends it);
/// `pgvshard shard`s find the conflict at COMMIT. Either way the two
/// never both commit, and the rows never mix the two writers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_writing_the_same_keys_never_both_commit() {
    let settings = ["max_prepared_transactions=10", "lock_timeout=1000"];
    let (pa, pb) = tokio::join!(
        PgServer::start_with(&settings),
        PgServer::start_with(&settings)
    );
    let (a, b) = (
        Shard::start(&fresh_dir("txn-same-keys-a")),
        Shard::start(&fresh_dir("txn-same-keys-b")),
    );
    for shards in [
        [(a.port, "db"), (b.port, "db")],
        [(pa.port, "postgres"), (pb.port, "postgres")],
    ] {
        let proxy = proxy_over(&shards).await;
        let port = proxy.addr.port();
        let setup = connect_to(port).await.unwrap();
        setup
            .batch_execute("CREATE TABLE k (id bigint PRIMARY KEY, who text)")
            .await
            .unwrap();
        // An id on each shard.
        let slots = pgvshard::proxy::slots::SlotMap::even(2);
        let x = (1..)
            .find(|i: &i64| slots.shard_of(&i.to_string()) == 0)
            .unwrap();
        let y = (1..)
            .find(|i: &i64| slots.shard_of(&i.to_string()) == 1)
            .unwrap();
        let (t1, t2) = (
            connect_to(port).await.unwrap(),
            connect_to(port).await.unwrap(),
        );
        t1.batch_execute(&format!("BEGIN; INSERT INTO k VALUES ({x}, 't1')"))
            .await
            .unwrap();
        t2.batch_execute(&format!("BEGIN; INSERT INTO k VALUES ({y}, 't2')"))
            .await
            .unwrap();
        let second = |c: Client, id: i64, who: &'static str| async move {
            // Either may fail (a lock timeout, a unique violation); the
            // block then answers COMMIT with ROLLBACK.
            c.batch_execute(&format!("INSERT INTO k VALUES ({id}, '{who}')"))
                .await
                .ok();
            c.batch_execute("COMMIT").await.ok();
        };
        tokio::join!(second(t1, y, "t1"), second(t2, x, "t2"));
        let rows = pg_support::text_rows(&setup, "SELECT id, who FROM k ORDER BY id")
            .await
            .unwrap();
        let writers: Vec<Option<String>> = rows.iter().map(|r| r[1].clone()).collect();
        assert!(
            writers.is_empty() || (writers.len() == 2 && writers[0] == writers[1]),
            "mixed writers: {rows:?} on {shards:?}"
        );
    }
}
