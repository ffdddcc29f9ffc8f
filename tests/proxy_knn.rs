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
