//! pgvector's README indexes on expressions and partial indexes on a
//! shard, side by side with PostgreSQL + pgvector: half-precision
//! (`(embedding::halfvec(3)) halfvec_l2_ops`), binary quantization
//! (`(binary_quantize(embedding)::bit(16)) bit_hamming_ops`), subvectors
//! (`(subvector(embedding, 1, 8)::vector(8)) vector_cosine_ops`) and a
//! partial index (`… WHERE (category_id = 1)`). The shard answers from the
//! index (its EXPLAIN says so) with PostgreSQL's distances, after inserts,
//! updates, deletes and COPY, on its standby, after a clean restart (which
//! loads the checkpoint) and after a kill -9 (which replays the WAL);
//! psql's `\d items`, `\di`, `\d <index>` and `pg_indexes` print as
//! PostgreSQL's. Through a proxy (two in-process shards, and two shard
//! processes) each shard answers its part from its index and the merged
//! answer is PostgreSQL's.

mod pg_support;
mod shard_support;

use bytes::Bytes;
use futures_util::SinkExt;
use pg_support::{connect_to, embedded_proxy, text_rows, PgServer, Rng};
use shard_support::{fresh_dir, proxy_over, start_standby_on, wait_caught_up, Shard};
use tokio_postgres::Client;

const DIM: usize = 16;

/// `n` rows from `from` with seeded random vectors and categories 0..3,
/// as COPY text lines.
fn copy_lines(rng: &mut Rng, from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|id| {
            let v: Vec<String> = (0..DIM)
                .map(|_| format!("{:.4}", rng.next_f32() * 2.0 - 1.0))
                .collect();
            format!("{id}\t[{}]\t{}\n", v.join(","), id % 3)
        })
        .collect()
}

/// The same rows as one INSERT.
fn rows(rng: &mut Rng, from: usize, n: usize) -> String {
    let values: Vec<String> = copy_lines(rng, from, n)
        .iter()
        .map(|line| {
            let f: Vec<&str> = line.trim_end().split('\t').collect();
            format!("({}, '{}', {})", f[0], f[1], f[2])
        })
        .collect();
    format!(
        "INSERT INTO items (id, embedding, category_id) VALUES {}",
        values.join(",")
    )
}

/// Loads `lines` with COPY FROM STDIN.
async fn copy(c: &Client, lines: &[String]) {
    let sink = c
        .copy_in("COPY items (id, embedding, category_id) FROM STDIN")
        .await
        .unwrap();
    futures_util::pin_mut!(sink);
    sink.send(Bytes::from(lines.concat())).await.unwrap();
    sink.finish().await.unwrap();
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
        (
            format!("SELECT id, embedding <-> '{q}' AS d FROM items WHERE id > 700 AND 1 = category_id ORDER BY embedding <-> '{q}' LIMIT 10"),
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

/// Every query gives PostgreSQL's distances on our server, whose `shards`
/// shards answer it from the index (EXPLAIN through a proxy shows each
/// shard's plan).
async fn compare_over(pg: &Client, ours: &Client, when: &str, shards: usize) {
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
            let scans = plan
                .iter()
                .filter(|l| l.contains(&format!("Index Scan using {index} on items")))
                .count();
            assert_eq!(scans, shards, "{when}: {sql}\n{plan:#?}");
            // As in PostgreSQL, a WHERE the partial index's predicate
            // implies filters nothing more.
            let filtered = plan.iter().filter(|l| l.contains("Filter: ")).count();
            let extra = if sql.contains(" AND ") { shards } else { 0 };
            assert_eq!(filtered, extra, "{when}: {sql}\n{plan:#?}");
        }
    }
}

/// [`compare_over`] one shard.
async fn compare(pg: &Client, ours: &Client, when: &str) {
    compare_over(pg, ours, when, 1).await
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
    let standby = start_standby_on(&shard, &fresh_dir("expression-indexes-standby"), "s1");
    let (pgc, ours) = (connect_to(pg.port).await.unwrap(), shard.connect().await);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    create_indexed_items(&pgc, &ours, &mut rng).await;
    compare(&pgc, &ours, "after CREATE INDEX").await;

    // Writes after the build: the indexes follow them.
    let lines = copy_lines(&mut rng, 1501, 300);
    copy(&pgc, &lines).await;
    copy(&ours, &lines).await;
    let writes = [
        rows(&mut rng, 1801, 200),
        "UPDATE items SET embedding = embedding * '[-1,1,-1,1,-1,1,-1,1,-1,1,-1,1,-1,1,-1,1]' WHERE id % 7 = 0".into(),
        "UPDATE items SET category_id = 1 WHERE id % 11 = 0".into(),
        "DELETE FROM items WHERE id % 5 = 0".into(),
    ];
    for sql in &writes {
        both(&pgc, &ours, sql).await;
    }
    compare(&pgc, &ours, "after writes").await;
    wait_caught_up(&shard, &standby).await;
    compare(&pgc, &standby.connect().await, "on the standby").await;
    standby.stop();

    // The catalog as PostgreSQL prints it.
    let indexdefs =
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'items' ORDER BY 1";
    assert_eq!(
        text_rows(&ours, indexdefs).await.unwrap(),
        text_rows(&pgc, indexdefs).await.unwrap()
    );
    for command in [
        "\\d items",
        "\\di",
        "\\d items_embedding_idx",
        "\\d items_binary_quantize_idx",
        "\\d items_embedding_idx1",
    ] {
        assert_eq!(
            pg_support::psql(shard.port, command),
            pg_support::psql(pg.port, command),
            "{command}"
        );
    }

    // A clean restart loads the indexes from its checkpoint (the
    // expressions' values computed again from the rows).
    drop(ours);
    shard.stop();
    let shard = Shard::start(&dir);
    let ours = shard.connect().await;
    compare(&pgc, &ours, "after a restart").await;

    // A kill -9 replays the WAL written since into them.
    both(&pgc, &ours, "UPDATE items SET embedding = embedding * '[1,-1,1,-1,1,-1,1,-1,1,-1,1,-1,1,-1,1,-1]', category_id = 2 WHERE id % 13 = 0").await;
    drop(ours);
    shard.kill9();
    let shard = Shard::start(&dir);
    compare(&pgc, &shard.connect().await, "after kill -9").await;
    shard.stop();
}

/// The README's statements through a proxy over two shards on `port`:
/// the index is built on each shard from its rows, kept up to date by
/// writes routed by key, and each shard answers its part of a KNN query
/// from it; the proxy merges them into PostgreSQL's answer.
async fn through_proxy(pg: &Client, port: u16, who: &str) {
    let ours = connect_to(port).await.unwrap();
    let mut rng = Rng(0x0bad_5eed_1234_5678);
    create_indexed_items(pg, &ours, &mut rng).await;
    compare_over(pg, &ours, &format!("{who}: after CREATE INDEX"), 2).await;
    let lines = copy_lines(&mut rng, 1501, 300);
    copy(pg, &lines).await;
    copy(&ours, &lines).await;
    both(pg, &ours, "UPDATE items SET embedding = embedding * '[-1,1,-1,1,-1,1,-1,1,-1,1,-1,1,-1,1,-1,1]', category_id = 1 WHERE id % 7 = 0; DELETE FROM items WHERE id % 5 = 0").await;
    compare_over(pg, &ours, &format!("{who}: after writes"), 2).await;
    let indexdefs =
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'items' ORDER BY 1";
    assert_eq!(
        text_rows(&ours, indexdefs).await.unwrap(),
        text_rows(pg, indexdefs).await.unwrap(),
        "{who}"
    );
    both(pg, &ours, "DROP TABLE items").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_indexes_through_the_proxy_answer_as_postgresql() {
    let pg = PgServer::start().await;
    let pgc = connect_to(pg.port).await.unwrap();
    let embedded = embedded_proxy("expression-indexes-embedded", 2).await;
    through_proxy(&pgc, embedded.addr.port(), "embedded").await;
    embedded.shutdown().await.expect("shutdown");
    let shards = [
        Shard::start(&fresh_dir("expression-indexes-s0")),
        Shard::start(&fresh_dir("expression-indexes-s1")),
    ];
    let proxy = proxy_over(
        "expression-indexes-proxy",
        &[shards[0].port, shards[1].port],
        "",
    );
    through_proxy(&pgc, proxy.port, "2 shard processes").await;
    drop(proxy);
    for s in shards {
        s.stop();
    }
}

/// `items` with 1,500 rows drawn from `rng` and [`INDEXES`], on both
/// servers.
async fn create_indexed_items(pg: &Client, ours: &Client, rng: &mut Rng) {
    both(
        pg,
        ours,
        &format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, embedding vector({DIM}), category_id int); {}",
            rows(rng, 1, 1500)
        ),
    )
    .await;
    for index in INDEXES {
        both(pg, ours, index).await;
    }
}
