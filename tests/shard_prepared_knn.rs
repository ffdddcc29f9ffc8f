//! Prepared KNN statements executed again and again on a shard (which
//! plans each once and searches directly at later Executes) answer as
//! PostgreSQL + pgvector does, executed side by side with the same
//! statements, parameters and schema changes in between: other query
//! vectors, new rows, a dropped and re-created index, an exact scan by
//! setting, the session's own uncommitted rows, a NULL or malformed
//! query vector, a table dropped and created again with other columns.

mod pg_support;
mod shard_support;

use pg_support::{connect_to, PgServer};
use pgvector::Vector;
use shard_support::{fresh_dir, Shard};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

const DIM: usize = 3;

/// Rows 1..=n with embeddings far enough apart that no two distances from
/// the test's query vectors tie.
fn rows(from: usize, n: usize) -> String {
    let values: Vec<String> = (from..from + n)
        .map(|i| {
            let f = i as f32;
            format!(
                "({i}, '[{},{},{}]')",
                f * 0.37 % 5.0,
                (f * f * 0.11) % 7.0 - 2.0,
                10.0 - f * 0.53
            )
        })
        .collect();
    format!("INSERT INTO items VALUES {}", values.join(","))
}

fn schema() -> String {
    format!(
        "CREATE TABLE items (id bigint PRIMARY KEY, embedding vector({DIM}));\
         {};\
         CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)",
        rows(1, 40)
    )
}

/// The KNN statements, as clients and the proxy write them.
const STATEMENTS: [&str; 4] = [
    "SELECT id, embedding <-> $1 AS d FROM items ORDER BY embedding <-> $1 LIMIT 5",
    "SELECT items.id FROM items ORDER BY $1 <-> embedding LIMIT 3 OFFSET 2",
    "SELECT id, embedding FROM items i ORDER BY i.embedding <-> $1 LIMIT 4",
    "SELECT id, (embedding <-> $1) FROM items ORDER BY embedding <-> $1 LIMIT 2",
];

/// A value of a result row.
#[derive(Debug)]
enum Cell {
    Distance(f64),
    Vector(Vec<f32>),
}

impl PartialEq for Cell {
    /// Distances to a millionth, relative: PostgreSQL and the shard do not
    /// add up the squares in the same order.
    fn eq(&self, other: &Cell) -> bool {
        match (self, other) {
            (Cell::Distance(a), Cell::Distance(b)) => (a - b).abs() <= 1e-6 * a.abs().max(1.0),
            (Cell::Vector(a), Cell::Vector(b)) => a == b,
            _ => false,
        }
    }
}

/// Each row as its id and other values, or the error's SQLSTATE.
async fn answer(
    c: &Client,
    st: &Statement,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<(i64, Vec<Cell>)>, String> {
    match c.query(st, params).await {
        Ok(rows) => Ok(rows
            .iter()
            .map(|r| {
                let cells = (1..r.len())
                    .map(|i| match r.columns()[i].type_().name() {
                        "float8" => Cell::Distance(r.get(i)),
                        _ => Cell::Vector(r.get::<_, Vector>(i).to_vec()),
                    })
                    .collect();
                (r.get(0), cells)
            })
            .collect()),
        Err(e) => Err(match e.as_db_error() {
            Some(d) => d.code().code().to_string(),
            None => format!("{e:?}"),
        }),
    }
}

struct Pair {
    shard: Client,
    pg: Client,
    statements: Vec<(Statement, Statement)>,
}

impl Pair {
    async fn both(&self, sql: &str) {
        self.shard.batch_execute(sql).await.unwrap();
        self.pg.batch_execute(sql).await.unwrap();
    }

    /// Every statement with `query` (several times each: planned once,
    /// then searched directly), compared; PostgreSQL answers rows, or the
    /// `error` SQLSTATE.
    async fn compare(&self, what: &str, query: Vec<f32>, error: Option<&str>) {
        let v = Vector::from(query);
        for (i, (s, p)) in self.statements.iter().enumerate() {
            let want = answer(&self.pg, p, &[&v]).await;
            match error {
                None => assert!(
                    want.as_ref().is_ok_and(|r| !r.is_empty()),
                    "{what}: {want:?}"
                ),
                Some(code) => assert_eq!(want.as_ref().err().map(String::as_str), Some(code)),
            }
            for _ in 0..3 {
                let got = answer(&self.shard, s, &[&v]).await;
                assert_eq!(got, want, "{what}: {}", STATEMENTS[i]);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_knn_statements_answer_as_postgres_across_changes() {
    let shard_server = Shard::start(&fresh_dir("prepared-knn"));
    let pg_server = PgServer::start().await;
    let shard = shard_server.connect().await;
    let pg = connect_to(pg_server.port).await.unwrap();
    shard.batch_execute(&schema()).await.unwrap();
    pg.batch_execute(&schema()).await.unwrap();
    let mut statements = Vec::new();
    for sql in STATEMENTS {
        statements.push((
            shard.prepare(sql).await.unwrap(),
            pg.prepare(sql).await.unwrap(),
        ));
    }
    let pair = Pair {
        shard,
        pg,
        statements,
    };
    let queries = [
        vec![0.5, 1.0, 9.0],
        vec![4.0, -1.5, 0.25],
        vec![2.0, 3.0, 5.5],
    ];
    for q in &queries {
        pair.compare("first", q.clone(), None).await;
    }
    pair.compare("a malformed query vector", vec![1.0, 2.0], Some("22000"))
        .await;

    pair.both(&rows(41, 10)).await;
    pair.compare("new rows", queries[0].clone(), None).await;

    pair.both("DROP INDEX items_hnsw").await;
    pair.compare("no index", queries[1].clone(), None).await;
    pair.both("CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)")
        .await;
    pair.compare("index again", queries[1].clone(), None).await;

    pair.both("SET enable_indexscan = off").await;
    pair.compare("exact scan by setting", queries[2].clone(), None)
        .await;
    pair.both("RESET enable_indexscan").await;

    // The nearest row to the query, seen only by its own session.
    pair.both("BEGIN; INSERT INTO items VALUES (100, '[0.5,1,9]')")
        .await;
    pair.compare("own uncommitted rows", queries[0].clone(), None)
        .await;
    pair.both("ROLLBACK").await;
    pair.compare("rolled back", queries[0].clone(), None).await;

    pair.both("ALTER TABLE items ADD COLUMN note text").await;
    pair.compare("a column added", queries[2].clone(), None)
        .await;

    // A NULL query vector orders nothing: compare the row count only.
    for (s, p) in &pair.statements {
        let none: Option<Vector> = None;
        let got = pair.shard.query(s, &[&none]).await.map(|r| r.len());
        let want = pair.pg.query(p, &[&none]).await.map(|r| r.len());
        assert_eq!(got.ok(), want.ok());
    }

    pair.both(&format!(
        "DROP TABLE items;\
         CREATE TABLE items (id text PRIMARY KEY, embedding vector({DIM}));\
         INSERT INTO items VALUES ('a', '[1,2,3]'), ('b', '[2,2,3]'), ('c', '[3,2,3]'),\
                                  ('d', '[4,2,3]'), ('e', '[5,2,3]'), ('f', '[6,2,3]');\
         CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)"
    ))
    .await;
    pair.compare(
        "the table made again with other types",
        queries[0].clone(),
        Some("0A000"),
    )
    .await;
}
