//! KNN through the proxy over two real PostgreSQL + pgvector shards equals
//! KNN on one server holding every row (exact scans: same ids, same order,
//! same distance text), for every distance operator, with the simple and
//! the extended protocol.

mod pg_support;

use pg_support::{items_inserts, text_rows, Fixture};

const SCHEMA: &str =
    "CREATE TABLE items (id int PRIMARY KEY, cat int, embedding vector(8), bits bit(16))";

async fn loaded() -> (Fixture, tokio_postgres::Client) {
    let fx = Fixture::start("").await;
    let client = fx.client().await;
    fx.both(&client, SCHEMA).await;
    for insert in items_inserts(1500, 8, 250) {
        fx.both(&client, &insert).await;
    }
    (fx, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knn_equals_one_server_for_every_operator() {
    let (fx, proxy) = loaded().await;
    let reference = fx.reference.connect().await.unwrap();
    let counts = fx.shard_counts("items").await;
    assert_eq!(counts.iter().sum::<i64>(), 1500);
    assert!(
        counts.iter().all(|&c| c > 500),
        "rows spread over both shards: {counts:?}"
    );
    let q = "'[1,2,3,1,2,3,1,2]'";
    for op in ["<->", "<#>", "<=>", "<+>"] {
        for shape in [
            format!("SELECT id, embedding {op} {q} AS d FROM items ORDER BY embedding {op} {q} LIMIT 10"),
            format!("SELECT id, cat FROM items ORDER BY embedding {op} {q} LIMIT 7 OFFSET 5"),
            format!("SELECT id FROM items WHERE cat = 3 ORDER BY embedding {op} {q} LIMIT 12"),
            format!("SELECT * FROM items ORDER BY embedding {op} {q} LIMIT 3"),
        ] {
            let want = text_rows(&reference, &shape).await.unwrap();
            let got = text_rows(&proxy, &shape).await.unwrap();
            assert_eq!(got, want, "{shape}");
            assert!(!got.is_empty());
        }
    }
    // Bit distances are integers with many ties: compare the distances, and
    // the ids strictly inside the last distance.
    for op in ["<~>", "<%>"] {
        let sql = format!("SELECT id, bits {op} B'1010101010101010' AS d FROM items ORDER BY bits {op} B'1010101010101010' LIMIT 20");
        let want = text_rows(&reference, &sql).await.unwrap();
        let got = text_rows(&proxy, &sql).await.unwrap();
        let dists =
            |r: &Vec<Vec<Option<String>>>| r.iter().map(|x| x[1].clone()).collect::<Vec<_>>();
        assert_eq!(dists(&got), dists(&want), "{sql}");
        let last = want.last().unwrap()[1].clone();
        let inside = |r: &Vec<Vec<Option<String>>>| {
            let mut ids: Vec<_> = r
                .iter()
                .filter(|x| x[1] != last)
                .map(|x| x[0].clone())
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(inside(&got), inside(&want), "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_knn_with_binary_vectors_equals_one_server() {
    let (fx, proxy) = loaded().await;
    let reference = fx.reference.connect().await.unwrap();
    let v = pgvector::Vector::from(vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0]);
    for op in ["<->", "<#>", "<=>", "<+>"] {
        let sql = format!("SELECT id, embedding, embedding {op} $1 AS d FROM items WHERE cat <> $3 ORDER BY embedding {op} $1 LIMIT $2");
        let ps = proxy.prepare(&sql).await.unwrap();
        let pr = reference.prepare(&sql).await.unwrap();
        let got = proxy.query(&ps, &[&v, &15i64, &2i32]).await.unwrap();
        let want = reference.query(&pr, &[&v, &15i64, &2i32]).await.unwrap();
        let rows = |rows: &[tokio_postgres::Row]| -> Vec<(i32, Vec<f32>, f64)> {
            rows.iter()
                .map(|r| (r.get(0), r.get::<_, pgvector::Vector>(1).to_vec(), r.get(2)))
                .collect()
        };
        assert_eq!(rows(&got), rows(&want), "{sql}");
        assert_eq!(got.len(), 15);
    }
}

/// Rows at equal distance come back ordered by shard, then by each
/// shard's own order (insertion order for an exact scan), every time; and
/// LIMIT/OFFSET without ORDER BY returns that many of the table's rows
/// (PostgreSQL promises no order), in both protocols.
/// The first column of every row `sql` returns, as int4.
async fn first_ints(client: &tokio_postgres::Client, sql: &str) -> Vec<i32> {
    let rows = client.query(sql, &[]).await.unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ties_are_deterministic_and_limit_needs_no_order_by() {
    let fx = Fixture::start("").await;
    let client = fx.client().await;
    fx.both(
        &client,
        "CREATE TABLE ties (id int PRIMARY KEY, e vector(2))",
    )
    .await;
    let far = [3, 7, 11];
    for id in 1..=16 {
        let v = if far.contains(&id) { "[2,2]" } else { "[1,1]" };
        fx.both(&client, &format!("INSERT INTO ties VALUES ({id}, '{v}')"))
            .await;
    }
    // Each shard's own answer (PostgreSQL's top-N sort orders ties its
    // own way); the proxy merges them by distance, then shard.
    let by_shard = |sql: &'static str| {
        let shards = &fx.shards;
        async move {
            let mut rows = Vec::new();
            for (i, s) in shards.iter().enumerate() {
                let c = s.connect().await.unwrap();
                for row in c.query(sql, &[]).await.unwrap() {
                    rows.push((i, row.get::<_, i32>(0)));
                }
            }
            rows
        }
    };
    let sql = "SELECT id FROM ties ORDER BY e <-> '[1,1]' LIMIT 16";
    let mut want = by_shard(sql).await;
    assert!(want.iter().any(|r| r.0 == 0) && want.iter().any(|r| r.0 == 1));
    want.sort_by_key(|(shard, id)| (far.contains(id), *shard));
    let want: Vec<i32> = want.into_iter().map(|r| r.1).collect();
    for _ in 0..3 {
        assert_eq!(first_ints(&client, sql).await, want);
    }
    // Cosine: [1,1] and [2,2] are at distance 0 from [3,3], all tied.
    let sql = "SELECT id FROM ties ORDER BY e <=> '[3,3]' LIMIT 16";
    let all: Vec<i32> = by_shard(sql).await.into_iter().map(|r| r.1).collect();
    assert_eq!(first_ints(&client, sql).await, all);

    for sql in [
        "SELECT id FROM ties LIMIT 5",
        "SELECT id, e FROM ties WHERE id > 2 LIMIT 4 OFFSET 3",
        "SELECT id FROM ties OFFSET 14",
    ] {
        let rows = text_rows(&client, sql).await.unwrap();
        let reference = text_rows(&fx.reference.connect().await.unwrap(), sql)
            .await
            .unwrap();
        assert_eq!(rows.len(), reference.len(), "{sql}");
        let ids: std::collections::BTreeSet<_> = rows.iter().map(|r| r[0].clone()).collect();
        assert_eq!(ids.len(), rows.len(), "{sql}: repeated rows {rows:?}");
    }
    let rows = client
        .query(
            "SELECT id FROM ties WHERE id >= $1 LIMIT $2 OFFSET $3",
            &[&4i32, &3i64, &1i64],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.get::<_, i32>(0) >= 4));
}
