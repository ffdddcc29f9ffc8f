//! kill -9 of a real shard process under concurrent writers over
//! tokio-postgres, then a restart: every acknowledged transaction is
//! there, no transaction is half there, and the ANN index agrees with
//! the table.

mod shard_support;

use pgvector::Vector;
use shard_support::{fresh_dir, Shard};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WRITERS: i64 = 4;
const DIM: usize = 8;

fn vector_for(id: i64) -> Vector {
    let mut x = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    Vector::from(
        (0..DIM)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 2000) as f32 / 100.0 - 10.0
            })
            .collect::<Vec<f32>>(),
    )
}

/// Transactions a writer started: (first id, second id) → acknowledged.
type Ledger = Arc<Mutex<BTreeMap<(i64, i64), bool>>>;

async fn writer(shard_port: u16, w: i64, ledger: Ledger) {
    let Ok((client, conn)) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(shard_port)
        .user("postgres")
        .dbname("db")
        .connect(tokio_postgres::NoTls)
        .await
    else {
        return;
    };
    tokio::spawn(conn);
    let Ok(insert) = client
        .prepare("INSERT INTO items (id, grp, embedding) VALUES ($1, $2, $3)")
        .await
    else {
        return;
    };
    for n in 0.. {
        let (a, b) = (w * 1_000_000 + 2 * n, w * 1_000_000 + 2 * n + 1);
        ledger.lock().unwrap().insert((a, b), false);
        let txn = async {
            client.batch_execute("BEGIN").await?;
            client.execute(&insert, &[&a, &n, &vector_for(a)]).await?;
            client.execute(&insert, &[&b, &n, &vector_for(b)]).await?;
            client.batch_execute("COMMIT").await
        };
        if txn.await.is_err() {
            return;
        }
        ledger.lock().unwrap().insert((a, b), true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_concurrent_writers_loses_nothing_acknowledged() {
    let dir = fresh_dir("crash");
    let shard = Shard::start(&dir);
    shard
        .psql(&format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, grp bigint NOT NULL, embedding vector({DIM}));
             CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops) WITH (m = 8, ef_construction = 32);"
        ))
        .unwrap();
    let ledger: Ledger = Arc::default();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(shard.port, w, ledger.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let acked_before_kill = ledger.lock().unwrap().values().filter(|a| **a).count();
    shard.kill9();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        acked_before_kill > 20,
        "the load ran ({acked_before_kill} commits)"
    );

    let shard = Shard::start(&dir);
    let client = shard.connect().await;
    let present: BTreeSet<i64> = client
        .query("SELECT id FROM items", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let ledger = ledger.lock().unwrap().clone();
    for (&(a, b), &acked) in &ledger {
        let (has_a, has_b) = (present.contains(&a), present.contains(&b));
        assert_eq!(has_a, has_b, "transaction ({a}, {b}) is half there");
        if acked {
            assert!(has_a, "acknowledged transaction ({a}, {b}) is lost");
        }
    }
    let known: BTreeSet<i64> = ledger.keys().flat_map(|&(a, b)| [a, b]).collect();
    assert!(present.is_subset(&known), "rows nobody wrote");

    client
        .batch_execute("SET hnsw.iterative_scan = relaxed_order; SET hnsw.max_scan_tuples = 1000000; SET hnsw.ef_search = 1000")
        .await
        .unwrap();
    let zero = Vector::from(vec![0.0; DIM]);
    let via_index: Vec<i64> = client
        .query(
            "SELECT id FROM items ORDER BY embedding <-> $1 LIMIT 1000000",
            &[&zero],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let via_index: BTreeSet<i64> = via_index.into_iter().collect();
    assert_eq!(
        via_index, present,
        "the index holds exactly the table's rows"
    );
    let plan: String = client
        .query(
            "EXPLAIN SELECT id FROM items ORDER BY embedding <-> '[0,0,0,0,0,0,0,0]' LIMIT 5",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    assert!(plan.contains("Index Scan using items_hnsw"), "{plan}");
    for &id in present.iter().step_by(present.len() / 20 + 1) {
        let nearest: i64 = client
            .query_one(
                "SELECT id FROM items ORDER BY embedding <-> $1 LIMIT 1",
                &[&vector_for(id)],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(nearest, id, "row {id} is found by its own vector");
    }
    shard.stop();
}

/// A sequence's values are not transactional but survive a kill -9: after
/// the restart `nextval` continues past every value handed out before
/// (skipping some, as PostgreSQL does after a crash), and a `setval`
/// holds as set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_continue_after_kill_9() {
    let dir = fresh_dir("crash-sequences");
    let shard = Shard::start(&dir);
    let client = shard.connect().await;
    client
        .batch_execute(
            "CREATE SEQUENCE ids; CREATE SEQUENCE set_here; CREATE SEQUENCE down INCREMENT -3",
        )
        .await
        .unwrap();
    let mut handed = 0;
    for _ in 0..40 {
        handed = next(&client, "ids").await;
    }
    assert_eq!(handed, 40);
    client
        .batch_execute("BEGIN; SELECT setval('set_here', 500); ROLLBACK")
        .await
        .unwrap();
    let down = next(&client, "down").await;
    drop(client);
    let port = shard.port;
    shard.kill9();
    let shard = Shard::start_on(&dir, port, &[]);
    let client = shard.connect().await;
    let after = next(&client, "ids").await;
    assert!(after > handed, "{after} after {handed}");
    assert_eq!(
        next(&client, "set_here").await,
        501,
        "setval holds, rolled back or not"
    );
    assert!(next(&client, "down").await < down);
    shard.stop();
}

async fn next(client: &tokio_postgres::Client, seq: &str) -> i64 {
    let sql = format!("SELECT nextval('{seq}')");
    client.query_one(&sql, &[]).await.unwrap().get(0)
}
