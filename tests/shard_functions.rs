//! PostgreSQL's function resolution on a shard, with real PostgreSQL +
//! pgvector as the control in each test: the types an untyped `$n` gets
//! from the function it is passed to (what tokio-postgres reads from
//! ParameterDescription to encode its values), and the errors for calls
//! no function matches.

mod pg_support;
mod shard_support;

use pg_support::{connect_to, PgServer};
use pgvector::Vector;
use shard_support::{fresh_dir, Shard};
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

const SCHEMA: &str = "CREATE TABLE items (id int4 PRIMARY KEY, embedding vector(2));\
                      INSERT INTO items VALUES (1, '[3,4]')";

/// A shard and a PostgreSQL server with [`SCHEMA`], and a client of each.
async fn servers(name: &str) -> (Shard, PgServer, Client, Client) {
    let shard = Shard::start(&fresh_dir(name));
    let pg = PgServer::start().await;
    let (s, p) = (shard.connect().await, connect_to(pg.port).await.unwrap());
    s.batch_execute(SCHEMA).await.unwrap();
    p.batch_execute(SCHEMA).await.unwrap();
    (shard, pg, s, p)
}

/// The parameter type names a prepared `sql` announces, or the error.
async fn parameter_types(c: &Client, sql: &str) -> String {
    match c.prepare(sql).await {
        Ok(st) => st
            .params()
            .iter()
            .map(|t| t.name().to_string())
            .collect::<Vec<_>>()
            .join(","),
        Err(e) => format!("error {e:?}"),
    }
}

/// The first column of each row as text (`query` with `params`), or the
/// error's SQLSTATE, message and hint.
async fn answer(c: &Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> String {
    match c.query(sql, params).await {
        Ok(rows) => rows
            .iter()
            .map(|r| {
                let ty = r.columns()[0].type_().name();
                let value = match ty {
                    "void" => String::new(),
                    "bool" => format!("{:?}", r.get::<_, Option<bool>>(0)),
                    "float8" => format!("{:?}", r.get::<_, Option<f64>>(0)),
                    "int4" => format!("{:?}", r.get::<_, Option<i32>>(0)),
                    "vector" => format!("{:?}", r.get::<_, Option<Vector>>(0)),
                    _ => format!("{:?}", r.get::<_, Option<String>>(0)),
                };
                format!("{ty}:{value}")
            })
            .collect::<Vec<_>>()
            .join(","),
        Err(e) => match e.as_db_error() {
            Some(d) => format!("{} {} / {:?}", d.code().code(), d.message(), d.hint()),
            None => format!("error {e:?}"),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untyped_function_arguments_take_the_signature_types() {
    let (_shard, _pg, s, p) = servers("fn_param_types").await;
    for sql in [
        "SELECT pg_advisory_xact_lock($1)",
        "SELECT pg_advisory_lock($1, $2)",
        "SELECT pg_try_advisory_xact_lock($1)",
        "SELECT pg_advisory_unlock($1)",
        "SELECT pg_sleep($1)",
        "SELECT pg_promote($1, $2)",
        "SELECT pg_promote($1)",
        "SELECT set_config($1, $2, $3)",
        "SELECT current_setting($1, $2)",
        "SELECT to_regtype($1)",
        "SELECT format_type($1, $2)",
        "SELECT abs($1)",
        "SELECT length($1)",
        "SELECT l2_distance($1::vector, $2)",
        "SELECT cosine_distance($1, embedding) FROM items",
        "SELECT subvector($1::vector, $2, $3)",
        "SELECT vector_dims($1::vector), abs($2)",
        "SELECT id FROM items WHERE id = abs($1::int4) AND pg_try_advisory_lock($2)",
        "SELECT coalesce($1, 0) FROM items WHERE id = $1",
    ] {
        assert_eq!(
            parameter_types(&s, sql).await,
            parameter_types(&p, sql).await,
            "{sql}"
        );
    }
    // The values the announced types make the client send.
    let v = Vector::from(vec![1.0, 2.0, 3.0]);
    let cases: [(&str, &[&(dyn ToSql + Sync)]); 8] = [
        ("SELECT pg_advisory_xact_lock($1)", &[&42i64]),
        ("SELECT pg_advisory_lock($1, $2)", &[&1i32, &2i32]),
        ("SELECT pg_advisory_unlock($1, $2)", &[&1i32, &2i32]),
        ("SELECT pg_sleep($1)", &[&0.01f64]),
        (
            "SELECT set_config($1, $2, $3)",
            &[&"application_name", &"fn", &false],
        ),
        ("SELECT abs($1)", &[&-2.5f64]),
        ("SELECT subvector($1::vector, $2, $3)", &[&v, &2i32, &2i32]),
        (
            "SELECT l2_distance(embedding, $1) FROM items",
            &[&Vector::from(vec![0.0, 0.0])],
        ),
    ];
    for (sql, params) in cases {
        assert_eq!(
            answer(&s, sql, params).await,
            answer(&p, sql, params).await,
            "{sql}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_no_function_matches_are_42883_with_the_hint() {
    let (_shard, _pg, s, p) = servers("fn_no_match").await;
    for sql in [
        "SELECT nosuch('a')",
        "SELECT nosuch('[1,2]')",
        "SELECT nosuch(1, 'x')",
        "SELECT nosuch(embedding) FROM items",
        "SELECT l2_distance('[1,2]'::vector, 3)",
        "SELECT vector_dims(1)",
        "SELECT lower(1)",
        "SELECT pg_sleep('1', 1)",
        "SELECT nosuch(NULL, 2.5::float8)",
    ] {
        let want = answer(&p, sql, &[]).await;
        assert!(want.starts_with("42883 "), "{sql}: {want}");
        assert_eq!(answer(&s, sql, &[]).await, want, "{sql}");
    }
    // Several candidates and nothing to choose by: 42725, at Parse on
    // PostgreSQL.
    let sql = "SELECT l2_distance($1, '[1,2]')";
    let want = answer(&p, sql, &[&"[3,4]"]).await;
    assert!(want.starts_with("42725 "), "{want}");
    assert_eq!(answer(&s, sql, &[&"[3,4]"]).await, want);
}
