//! pgvector's README indexes on expressions and partial indexes on a
//! shard, side by side with PostgreSQL + pgvector: half-precision
//! (`(embedding::halfvec(3)) halfvec_l2_ops`), binary quantization
//! (`(binary_quantize(embedding)::bit(16)) bit_hamming_ops`), subvectors
//! (`(subvector(embedding, 1, 8)::vector(8)) vector_cosine_ops`) and a
//! partial index (`… WHERE (category_id = 1)`). The shard answers from the
//! index (its EXPLAIN says so) with PostgreSQL's distances, after inserts,
//! updates, deletes and COPY, and after a restart that replays the WAL;
//! `\d items` and `pg_indexes` print as PostgreSQL's.

mod pg_support;
mod shard_support;

use pg_support::{connect_to, text_rows, PgServer, Rng};
use shard_support::{fresh_dir, Shard};
use tokio_postgres::Client;

const DIM: usize = 16;

/// `n` rows from `from` with seeded random vectors and categories 0..3.
fn rows(rng: &mut Rng, from: usize, n: usize) -> String {
    let values: Vec<String> = (from..from + n)
        .map(|id| {
            let v: Vec<String> = (0..DIM)
                .map(|_| format!("{:.4}", rng.next_f32() * 2.0 - 1.0))
                .collect();
            format!("({id}, '[{}]', {})", v.join(","), id % 3)
        })
        .collect();
    format!(
        "INSERT INTO items (id, embedding, category_id) VALUES {}",
        values.join(",")
    )
}

/// The indexes, as pgvector's README writes them (at this table's size).
const INDEXES: &[&str] = &[
    "CREATE INDEX ON items USING hnsw ((embedding::halfvec(16)) halfvec_l2_ops)",
    "CREATE INDEX ON items USING hnsw ((binary_quantize(embedding)::bit(16)) bit_hamming_ops)",
    "CREATE INDEX ON items USING hnsw ((subvector(embedding, 1, 8)::vector(8)) vector_cosine_ops)",
    "CREATE INDEX ON items USING hnsw (embedding vector_l2_ops) WHERE (category_id = 1)",
];

/// Each KNN query with the distance it orders by, and the index that
/// serves it on the shard.
fn queries(q: &str) -> Vec<(String, &'static str)> {
    vec![
        (
            format!("SELECT id, embedding::halfvec(16) <-> '{q}' AS d FROM items ORDER BY embedding::halfvec(16) <-> '{q}' LIMIT 10"),
            "items_embedding_idx",
        ),
        (
            format!("SELECT id, binary_quantize(embedding)::bit(16) <~> binary_quantize('{q}'::vector) AS d FROM items ORDER BY binary_quantize(embedding)::bit(16) <~> binary_quantize('{q}'::vector) LIMIT 10"),
            "items_binary_quantize_idx",
        ),
        (
            format!("SELECT id, subvector(embedding, 1, 8)::vector(8) <=> subvector('{q}'::vector, 1, 8) AS d FROM items ORDER BY subvector(embedding, 1, 8)::vector(8) <=> subvector('{q}'::vector, 1, 8) LIMIT 10"),
            "items_subvector_idx",
        ),
        (
            format!("SELECT id, embedding <-> '{q}' AS d FROM items WHERE category_id = 1 ORDER BY embedding <-> '{q}' LIMIT 10"),
            "items_embedding_idx1",
        ),
    ]
}

/// The distances of a query's rows (ids may differ between servers at
/// equal distances, which Hamming distances on 16 bits have many of).
async fn distances(c: &Client, sql: &str) -> Vec<f64> {
    text_rows(c, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r[1].as_deref().unwrap().parse().unwrap())
        .collect()
}

/// Every query gives PostgreSQL's distances on the shard, which answers
/// it from its index.
async fn compare(pg: &Client, ours: &Client, when: &str) {
    let mut rng = Rng(0x51ed_270b_1a2f_3c4d);
    for _ in 0..5 {
        let v: Vec<String> = (0..DIM)
            .map(|_| format!("{:.4}", rng.next_f32() * 2.0 - 1.0))
            .collect();
        let q = format!("[{}]", v.join(","));
        for (sql, index) in queries(&q) {
            let (want, got) = (distances(pg, &sql).await, distances(ours, &sql).await);
            assert_eq!(want.len(), got.len(), "{when}: {sql}");
            for (a, b) in want.iter().zip(&got) {
                assert!((a - b).abs() < 1e-4, "{when}: {sql}\n{want:?}\n{got:?}");
            }
            let plan = text_rows(ours, &format!("EXPLAIN {sql}")).await.unwrap();
            let plan: Vec<String> = plan.into_iter().map(|r| r[0].clone().unwrap()).collect();
            assert!(
                plan.iter()
                    .any(|l| l.contains(&format!("Index Scan using {index} on items"))),
                "{when}: {sql}\n{plan:#?}"
            );
        }
    }
}

async fn both(pg: &Client, ours: &Client, sql: &str) {
    pg.batch_execute(sql).await.unwrap();
    ours.batch_execute(sql).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_expression_and_partial_indexes_answer_as_postgresql() {
    let pg = PgServer::start().await;
    let dir = fresh_dir("expression-indexes");
    let shard = Shard::start(&dir);
    let (pgc, ours) = (connect_to(pg.port).await.unwrap(), shard.connect().await);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    both(
        &pgc,
        &ours,
        &format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, embedding vector({DIM}), category_id int); {}",
            rows(&mut rng, 1, 1500)
        ),
    )
    .await;
    for index in INDEXES {
        both(&pgc, &ours, index).await;
    }
    compare(&pgc, &ours, "after CREATE INDEX").await;

    // Writes after the build: the indexes follow them.
    let writes = [
        rows(&mut rng, 1501, 500),
        "UPDATE items SET embedding = embedding * '[-1,1,-1,1,-1,1,-1,1,-1,1,-1,1,-1,1,-1,1]' WHERE id % 7 = 0".into(),
        "UPDATE items SET category_id = 1 WHERE id % 11 = 0".into(),
        "DELETE FROM items WHERE id % 5 = 0".into(),
    ];
    for sql in &writes {
        both(&pgc, &ours, sql).await;
    }
    compare(&pgc, &ours, "after writes").await;

    // The catalog as PostgreSQL prints it.
    let indexdefs =
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'items' ORDER BY 1";
    assert_eq!(
        text_rows(&ours, indexdefs).await.unwrap(),
        text_rows(&pgc, indexdefs).await.unwrap()
    );
    assert_eq!(
        pg_support::psql(shard.port, "\\d items"),
        pg_support::psql(pg.port, "\\d items")
    );

    // A restart replays the WAL into the same indexes.
    drop(ours);
    shard.stop();
    let shard = Shard::start(&dir);
    let ours = shard.connect().await;
    compare(&pgc, &ours, "after a restart").await;
    shard.stop();
}
