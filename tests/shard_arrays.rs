//! Arrays on a shard in the binary format, against real PostgreSQL +
//! pgvector as the control: array parameters sent binary (`= ANY($1::oid[])`,
//! `unnest($1::int4[])`, `text[]` with NULLs), array results (their type
//! OIDs and the exact bytes of `array_send`), array columns, `array_agg`
//! and pgvector's casts between vectors and arrays. tokio-postgres sends and
//! reads every value here in binary.

mod pg_support;
mod shard_support;

use pg_support::{connect_to, PgServer};
use shard_support::{fresh_dir, Shard};
use tokio_postgres::types::{FromSql, ToSql, Type};
use tokio_postgres::Client;

/// Any value's binary bytes, as the server sent them.
#[derive(Debug, PartialEq)]
struct Raw(Option<Vec<u8>>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw.to_vec())))
    }
    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Column names and type names, then every cell's bytes; or the error's
/// SQLSTATE and message.
async fn outcome(c: &Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> String {
    match c.query(sql, params).await {
        Ok(rows) => {
            let mut out = String::new();
            if let Some(first) = rows.first() {
                for col in first.columns() {
                    out.push_str(&format!("{}:{} ", col.name(), col.type_().name()));
                }
            }
            for row in &rows {
                out.push('\n');
                for i in 0..row.len() {
                    out.push_str(&format!("{:?} ", row.get::<_, Raw>(i).0));
                }
            }
            out
        }
        Err(e) => match e.as_db_error() {
            Some(db) => format!("error {} {}", db.code().code(), db.message()),
            None => format!("client error {e}"),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_arrays_match_postgres() {
    let real = PgServer::start().await;
    let shard = Shard::start(&fresh_dir("shard-arrays"));
    let (ours, theirs) = (
        shard.connect().await,
        connect_to(real.port).await.expect("connect to PostgreSQL"),
    );
    let setup = "CREATE TABLE arr (id int PRIMARY KEY, tags text[], nums int8[], v vector(2))";
    for c in [&ours, &theirs] {
        c.batch_execute(setup).await.expect("setup");
    }
    let ints: Vec<i32> = vec![3, 1, 2];
    let oids: Vec<u32> = vec![23, 25, 1007, 4242];
    let texts: Vec<Option<&str>> = vec![Some("a"), None, Some("b c"), Some("")];
    let bigs: Vec<i64> = vec![1, 7];
    let reals: Vec<f32> = vec![1.5, -2.0];
    let empty: Vec<i32> = Vec::new();
    let cases: Vec<(&str, Vec<&(dyn ToSql + Sync)>)> = vec![
        ("SELECT $1::int4[]", vec![&ints]),
        ("SELECT $1::int4[]", vec![&empty]),
        (
            "SELECT typname FROM pg_type WHERE oid = ANY($1::oid[]) ORDER BY typname",
            vec![&oids],
        ),
        ("SELECT $1::text[], cardinality($1::text[])", vec![&texts]),
        ("SELECT x, o FROM unnest($1::int4[]) WITH ORDINALITY AS u(x, o)", vec![&ints]),
        ("SELECT 7 = ANY($1::int8[]), 7 <> ALL($1::int8[]), array_length($1::int8[], 1)", vec![&bigs]),
        ("SELECT $1::real[]::vector::text", vec![&reals]),
        (
            "SELECT ARRAY[1, 2]::int8[], '{}'::float8[], ARRAY['x', NULL], ARRAY[1.5::real, NULL]",
            vec![],
        ),
        ("SELECT '[1,2.5]'::vector::real[], '[1,2]'::halfvec::real[]", vec![]),
        ("SELECT ('{5,6,7}'::int[])[2], ('{5}'::int[])[9]", vec![]),
        (
            "INSERT INTO arr VALUES (1, $1, $2, '[1,2]'), (2, '{z}', NULL, '[3,4]'), (3, NULL, '{}', NULL)",
            vec![&texts, &bigs],
        ),
        ("SELECT * FROM arr ORDER BY id", vec![]),
        ("SELECT id FROM arr WHERE 'z' = ANY(tags) OR 7 = ANY(nums) ORDER BY id", vec![]),
        (
            "SELECT array_agg(id ORDER BY id DESC), array_agg(tags[1] ORDER BY id), array_agg(v::text ORDER BY id) FROM arr",
            vec![],
        ),
        ("SELECT array_agg(id) FROM arr WHERE id > 5", vec![]),
        ("SELECT ARRAY[1, NULL]::vector", vec![]),
        ("SELECT '{1,2}'::bigint[]::vector", vec![]),
        ("SELECT '{1,x}'::int[]", vec![]),
        ("SELECT ARRAY[]", vec![]),
    ];
    for (sql, params) in cases {
        let (a, b) = (
            outcome(&ours, sql, &params).await,
            outcome(&theirs, sql, &params).await,
        );
        assert_eq!(a, b, "{sql}");
    }
    shard.stop();
}
