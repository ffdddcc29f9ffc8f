//! Slice A end to end through real clients: the pgvector quick start
//! through psql (text) and tokio-postgres (extended protocol, binary
//! results, a `vector` parameter), and a restart that keeps data and index.

mod shard_support;

use pgvector::Vector;
use shard_support::{fresh_dir, Shard};

const SETUP: &str = "
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE items (id bigserial PRIMARY KEY, category int, embedding vector(3));
INSERT INTO items (category, embedding) VALUES (1, '[1,2,3]'), (2, '[4,5,6]'), (1, '[1,1,1]'), (3, '[-1,0,2]') RETURNING id;
CREATE INDEX ON items USING hnsw (embedding vector_l2_ops) WITH (m = 16, ef_construction = 64);
";

const KNN: &str =
    "SELECT id, embedding <-> '[1,2,3]' AS d FROM items ORDER BY embedding <-> '[1,2,3]' LIMIT 5;";

#[test]
fn quick_start_through_psql() {
    let dir = fresh_dir("knn-psql");
    let shard = Shard::start(&dir);
    assert_eq!(shard.psql(SETUP).unwrap(), "1\n2\n3\n4\n");
    assert_eq!(
        shard.psql(KNN).unwrap(),
        "1|0\n3|2.23606797749979\n4|3\n2|5.196152422706632\n"
    );
    let plan = shard.psql(&format!("EXPLAIN {KNN}")).unwrap();
    assert!(
        plan.contains("Index Scan using items_embedding_idx on items"),
        "{plan}"
    );
    assert!(
        plan.contains("Order By: (embedding <-> '[1,2,3]'::vector)"),
        "{plan}"
    );
    let tagged = shard
        .psql_with(
            &[],
            "INSERT INTO items (category, embedding) VALUES (5, '[0,0,0]');",
        )
        .unwrap();
    assert_eq!(tagged, "");
    shard.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_start_through_tokio_postgres() {
    let dir = fresh_dir("knn-tokio");
    let shard = Shard::start(&dir);
    shard.psql(SETUP).unwrap();
    let client = shard.connect().await;
    let stmt = client
        .prepare("SELECT id, embedding, embedding <-> $1 AS d FROM items ORDER BY embedding <-> $1 LIMIT 3")
        .await
        .unwrap();
    let q = Vector::from(vec![1.0, 2.0, 3.0]);
    let rows = client.query(&stmt, &[&q]).await.unwrap();
    let got: Vec<(i64, Vec<f32>, f64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get::<_, Vector>(1).to_vec(), r.get(2)))
        .collect();
    assert_eq!(got[0], (1, vec![1.0, 2.0, 3.0], 0.0));
    assert_eq!(got[1].0, 3);
    assert!((got[1].2 - 5f64.sqrt()).abs() < 1e-12);
    assert_eq!(got.len(), 3);

    let id: i64 = client
        .query_one(
            "INSERT INTO items (category, embedding) VALUES ($1, $2) RETURNING id",
            &[&7i32, &Vector::from(vec![9.0, 9.0, 9.0])],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(id, 5);
    let far: i64 = client
        .query_one(
            "SELECT id FROM items ORDER BY embedding <-> $1 LIMIT 1",
            &[&Vector::from(vec![10.0, 10.0, 10.0])],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(far, 5);
    shard.stop();
}

#[test]
fn restart_keeps_rows_and_index() {
    let dir = fresh_dir("knn-restart");
    let shard = Shard::start(&dir);
    shard.psql(SETUP).unwrap();
    let before = shard.psql(KNN).unwrap();
    shard.stop();
    let shard = Shard::start(&dir);
    assert_eq!(shard.psql(KNN).unwrap(), before);
    let plan = shard.psql(&format!("EXPLAIN {KNN}")).unwrap();
    assert!(
        plan.contains("Index Scan using items_embedding_idx"),
        "{plan}"
    );
    assert_eq!(
        shard
            .psql("INSERT INTO items (embedding) VALUES ('[0,0,0]') RETURNING id;")
            .unwrap(),
        "5\n"
    );
    shard.stop();
}

#[test]
fn session_settings_reach_the_index_search() {
    let dir = fresh_dir("knn-settings");
    let shard = Shard::start(&dir);
    shard.psql(SETUP).unwrap();
    let knn = "SELECT id FROM items ORDER BY embedding <-> '[1,2,3]' LIMIT 4;";
    assert_eq!(shard.psql(knn).unwrap().lines().count(), 4);
    // pgvector's HNSW without iterative scan returns at most ef_search rows.
    let limited = shard
        .psql(&format!("SET hnsw.ef_search = 2; {knn}"))
        .unwrap();
    assert_eq!(limited, "1\n3\n");
    let iterative = shard
        .psql(&format!(
            "SET hnsw.ef_search = 2; SET hnsw.iterative_scan = relaxed_order; {knn}"
        ))
        .unwrap();
    assert_eq!(iterative.lines().count(), 4);
    shard.stop();
}
