//! The two-stage rerank query and SELECT DISTINCT through the proxy over
//! two real PostgreSQL + pgvector shards equal one server holding every
//! row (exact scans: same rows, same order, same text), with the simple
//! and the extended protocol; shapes that cannot be combined are refused
//! with 0A000.

mod embedded_support;
mod pg_support;

use embedded_support::EmbeddedProxy;
use pg_support::{text_rows, Fixture, PgServer, Rng};

/// The query vector's signs: + - + - + - + -.
const Q: &str = "[1,-2,3,-1,2,-3,1,-2]";

/// 400 rows; exactly 20 of them (ids spread over both shards) have at
/// most one sign differing from `Q`, every other row at least three, so
/// the global top-20 by Hamming distance of `binary_quantize` is one set.
fn rows() -> Vec<String> {
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let signs = [1.0f32, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0];
    (0..400)
        .map(|id| {
            let flips: Vec<usize> = if id % 20 == 7 {
                if id % 40 == 7 {
                    vec![]
                } else {
                    vec![id % 8]
                }
            } else {
                vec![id % 8, (id + 3) % 8, (id + 5) % 8]
            };
            let v: Vec<String> = signs
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let s = if flips.contains(&i) { -s } else { *s };
                    format!("{:.4}", s * (0.1 + rng.next_f32() * 3.0))
                })
                .collect();
            format!("({id}, {}, '[{}]')", id % 5, v.join(","))
        })
        .collect()
}

async fn loaded() -> (Fixture, tokio_postgres::Client, tokio_postgres::Client) {
    let fx = Fixture::start("").await;
    let proxy = fx.client().await;
    fx.both(
        &proxy,
        "CREATE TABLE items (id int PRIMARY KEY, cat int, embedding vector(8))",
    )
    .await;
    for chunk in rows().chunks(100) {
        fx.both(
            &proxy,
            &format!("INSERT INTO items VALUES {}", chunk.join(", ")),
        )
        .await;
    }
    let reference = fx.reference.connect().await.unwrap();
    (fx, proxy, reference)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerank_equals_one_server() {
    let (fx, proxy, reference) = loaded().await;
    let counts = fx.shard_counts("items").await;
    assert!(counts.iter().all(|&c| c > 100), "{counts:?}");
    let inner = format!(
        "ORDER BY binary_quantize(embedding)::bit(8) <~> binary_quantize('{Q}'::vector) LIMIT 20"
    );
    for sql in [
        format!("SELECT * FROM (SELECT id, embedding FROM items {inner}) ORDER BY embedding <=> '{Q}' LIMIT 5"),
        format!("SELECT * FROM (SELECT * FROM items {inner}) AS s ORDER BY embedding <-> '{Q}' LIMIT 7 OFFSET 2"),
        format!("SELECT * FROM (SELECT id, embedding FROM items WHERE cat <> 3 {inner}) ORDER BY embedding::halfvec(8) <=> '{Q}'::halfvec(8) LIMIT 6"),
        format!("SELECT * FROM (SELECT id, cat, embedding FROM items {inner}) ORDER BY embedding <=> '{Q}' LIMIT 50"),
    ] {
        let want = text_rows(&reference, &sql).await.unwrap();
        let got = text_rows(&proxy, &sql).await.unwrap();
        assert!(!want.is_empty(), "{sql}");
        assert_eq!(got, want, "{sql}");
    }
    // Running the whole query on each shard would pick each shard's own
    // top 20 (including rows outside the global top 20): the answer
    // must only hold the 20 near rows.
    let sql = format!(
        "SELECT * FROM (SELECT id, embedding FROM items {inner}) ORDER BY embedding <=> '{Q}' LIMIT 30"
    );
    let got = text_rows(&proxy, &sql).await.unwrap();
    assert_eq!(got.len(), 20);
    assert!(got
        .iter()
        .all(|r| r[0].as_deref().unwrap().parse::<i32>().unwrap() % 20 == 7));

    // Extended protocol, the query vector and both limits as parameters.
    let sql = "SELECT * FROM (SELECT id, embedding FROM items ORDER BY binary_quantize(embedding)::bit(8) <~> binary_quantize($1::vector) LIMIT $2) ORDER BY embedding <=> $1 LIMIT $3";
    let v = pgvector::Vector::from(vec![1.0, -2.0, 3.0, -1.0, 2.0, -3.0, 1.0, -2.0]);
    let ps = proxy.prepare(sql).await.unwrap();
    let pr = reference.prepare(sql).await.unwrap();
    let got = proxy.query(&ps, &[&v, &20i64, &4i64]).await.unwrap();
    let want = reference.query(&pr, &[&v, &20i64, &4i64]).await.unwrap();
    let rows = |rows: &[tokio_postgres::Row]| -> Vec<(i32, Vec<f32>)> {
        rows.iter()
            .map(|r| (r.get(0), r.get::<_, pgvector::Vector>(1).to_vec()))
            .collect()
    };
    assert_eq!(rows(&got), rows(&want));
    assert_eq!(got.len(), 4);
}

/// The embedded binary's four in-process shards answer the rerank and
/// DISTINCT as one PostgreSQL + pgvector server does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_shards_equal_one_server() {
    let embedded = EmbeddedProxy::start("rerank");
    let proxy = embedded.connect().await;
    let server = PgServer::start().await;
    let reference = server.connect().await.unwrap();
    for c in [&proxy, &reference] {
        c.batch_execute("CREATE TABLE items (id int PRIMARY KEY, cat int, embedding vector(8))")
            .await
            .unwrap();
        for chunk in rows().chunks(100) {
            c.batch_execute(&format!("INSERT INTO items VALUES {}", chunk.join(", ")))
                .await
                .unwrap();
        }
    }
    for sql in [
        format!("SELECT * FROM (SELECT id, embedding FROM items ORDER BY binary_quantize(embedding)::bit(8) <~> binary_quantize('{Q}'::vector) LIMIT 20) ORDER BY embedding <=> '{Q}' LIMIT 5"),
        "SELECT DISTINCT cat FROM items WHERE id % 3 = 0 ORDER BY cat DESC LIMIT 3".to_string(),
        "SELECT DISTINCT ON (cat) cat, id FROM items ORDER BY cat, id".to_string(),
        format!("SELECT DISTINCT ON (cat) cat, id FROM items ORDER BY cat DESC, embedding <-> '{Q}' LIMIT 4 OFFSET 1"),
        // Uncorrelated scalar subqueries run first, on the shard of their key.
        "SELECT id FROM items ORDER BY embedding <-> (SELECT embedding FROM items WHERE id = 42) LIMIT 5".to_string(),
        "SELECT id FROM items WHERE id = 9 AND cat = (SELECT cat FROM items WHERE id = 14)".to_string(),
    ] {
        let want = text_rows(&reference, &sql).await.unwrap();
        let got = text_rows(&proxy, &sql).await.unwrap();
        assert!(!want.is_empty(), "{sql}");
        assert_eq!(got, want, "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_subqueries_are_refused() {
    let (_fx, proxy, _reference) = loaded().await;
    for sql in [
        // The outer query projects something else than the inner rows.
        format!("SELECT id FROM (SELECT id, embedding FROM items ORDER BY embedding <-> '{Q}' LIMIT 20) ORDER BY embedding <=> '{Q}' LIMIT 5"),
        format!("WITH c AS MATERIALIZED (SELECT id, embedding FROM items ORDER BY embedding <-> '{Q}' LIMIT 20) SELECT * FROM c ORDER BY embedding <=> '{Q}' LIMIT 5"),
        "SELECT * FROM (SELECT id FROM items ORDER BY id LIMIT 3) s".to_string(),
        "SELECT id FROM items WHERE cat > (SELECT avg(cat) FROM items)".to_string(),
        // Subqueries in expressions would see one shard's rows only
        // (an uncorrelated scalar one is evaluated first, below).
        "SELECT id FROM items WHERE id IN (SELECT id FROM items WHERE cat = 1)".to_string(),
        "SELECT id FROM items o WHERE cat = (SELECT cat FROM items i WHERE i.id = o.id)".to_string(),
        // A data-modifying WITH is not a read.
        "WITH d AS (DELETE FROM items WHERE id = 1 RETURNING *) SELECT * FROM d WHERE id = 1".to_string(),
    ] {
        let e = proxy.simple_query(&sql).await.unwrap_err();
        let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e}"));
        assert_eq!(db.code().code(), "0A000", "{sql}: {}", db.message());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_equals_one_server() {
    let fx = Fixture::start("").await;
    let proxy = fx.client().await;
    fx.both(
        &proxy,
        "CREATE TABLE t (id int PRIMARY KEY, cat int, tag text, price numeric, f float8)",
    )
    .await;
    // Equal values with different bytes: 1.0 / 1.00 and -0 / 0.
    let values: Vec<String> = (0..300)
        .map(|id| {
            let price = ["1.0", "1.00", "2.5", "NULL"][id % 4];
            let f = ["-0", "0", "1.5"][id % 3];
            format!("({id}, {}, 't{}', {price}, {f})", id % 7, id % 3)
        })
        .collect();
    fx.both(
        &proxy,
        &format!("INSERT INTO t VALUES {}", values.join(", ")),
    )
    .await;
    assert!(fx.shard_counts("t").await.iter().all(|&c| c > 50));
    let reference = fx.reference.connect().await.unwrap();
    for sql in [
        "SELECT DISTINCT cat FROM t ORDER BY cat",
        "SELECT DISTINCT cat, tag AS g FROM t WHERE id > 10 ORDER BY g DESC, cat LIMIT 5 OFFSET 2",
        "SELECT DISTINCT tag FROM t WHERE cat = 99 ORDER BY 1",
        "SELECT DISTINCT price FROM t ORDER BY price NULLS FIRST",
        "SELECT DISTINCT f FROM t ORDER BY f",
        "SELECT DISTINCT 1 AS one, cat FROM t ORDER BY cat",
    ] {
        let want = text_rows(&reference, sql).await.unwrap();
        let got = text_rows(&proxy, sql).await.unwrap();
        assert_eq!(got.len(), want.len(), "{sql}: {got:?} vs {want:?}");
        let numeric = |r: &Vec<Vec<Option<String>>>| -> Vec<Vec<Option<f64>>> {
            r.iter()
                .map(|row| {
                    row.iter()
                        .map(|v| v.as_deref().map(|s| s.parse::<f64>().unwrap_or(f64::NAN)))
                        .collect()
                })
                .collect()
        };
        if sql.contains("price") || sql.contains(" f ") {
            // Which of two equal values one server keeps is its choice.
            assert_eq!(numeric(&got), numeric(&want), "{sql}");
        } else {
            assert_eq!(got, want, "{sql}");
        }
    }
    // Without ORDER BY the order is unspecified: compare as sets.
    let sql = "SELECT DISTINCT cat, tag FROM t";
    let mut want = text_rows(&reference, sql).await.unwrap();
    let mut got = text_rows(&proxy, sql).await.unwrap();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(got.len(), 21);
    // Extended protocol with a parameter.
    let sql = "SELECT DISTINCT cat FROM t WHERE id < $1 ORDER BY cat DESC LIMIT 3";
    let got: Vec<i32> = proxy
        .query(sql, &[&100i32])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(got, vec![6, 5, 4]);
}
