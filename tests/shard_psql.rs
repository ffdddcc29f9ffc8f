//! psql's describe commands on a shard, and through the embedded proxy
//! (four shards), print what they print on real PostgreSQL + pgvector for
//! the same schema: psql's own catalog queries (regular-expression
//! operators, `COLLATE`, joins over pg_class, pg_attribute, pg_index,
//! pg_constraint, …) run on the shard's system catalog like any other
//! query.

mod embedded_support;
mod pg_support;
mod shard_support;

use embedded_support::EmbeddedProxy;
use pg_support::PgServer;
use shard_support::Shard;
use std::process::Command;

const SCHEMA: &str = "
    CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL DEFAULT 'x',
                        score integer DEFAULT -1, embedding vector(3));
    CREATE INDEX ON items USING hnsw (embedding vector_l2_ops);
    CREATE INDEX ON items (score);
    CREATE TABLE child (id integer PRIMARY KEY, label varchar(20) UNIQUE,
                        item_id bigint REFERENCES items (id) ON DELETE CASCADE,
                        other_id bigint REFERENCES items ON DELETE SET NULL);
    CREATE SEQUENCE counter AS integer START 5 INCREMENT 2 MAXVALUE 1000 CACHE 3 CYCLE;
";

/// The describe commands compared, one psql run each.
const COMMANDS: &[&str] = &[
    "\\dt",
    "\\d items",
    "\\d+ items",
    "\\d child",
    "\\di",
    "\\d items_pkey",
    "\\dt chi*",
    "\\ds",
    "\\d counter",
    "\\d items_id_seq",
    "\\d nosuch",
    "\\du",
    "\\db",
    "\\dRp",
    "\\dRs",
    "\\dE",
];

/// The schema through the proxy: its tables are sharded, so no foreign key
/// between them (refused across shards).
const SHARDED_SCHEMA: &str = "
    CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL DEFAULT 'x',
                        score integer DEFAULT -1, embedding vector(3));
    CREATE INDEX ON items USING hnsw (embedding vector_l2_ops);
    CREATE INDEX ON items (score);
    CREATE TABLE child (id integer PRIMARY KEY, item_id bigint);
";

/// The commands compared through the proxy (catalog queries go to one
/// shard; DDL reached every shard). `\\dt` names the tables: the proxy's
/// two-phase commit keeps its decisions in a table of its own,
/// `pgvshard_decisions`, which a bare `\\dt` lists too.
const PROXY_COMMANDS: &[&str] = &[
    "\\dt (items|child)",
    "\\d items",
    "\\d+ items",
    "\\di (items|child)*",
    "\\d nosuch",
    "\\du",
    "\\db",
];

/// psql's output (stdout, then stderr) for `command` on `port`.
fn psql(port: u16, command: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"])
        .args(["-p", &port.to_string(), "-c", command])
        .output()
        .expect("psql is installed (scripts/test.sh installs postgresql-client)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `schema` on a fresh PostgreSQL, then each of `commands` through
/// psql on both servers; `ours` (named `who`) must print what PostgreSQL
/// prints.
async fn compare_with_postgres(ours: u16, who: &str, schema: &str, commands: &[&str]) {
    let pg = PgServer::start().await;
    pg.connect()
        .await
        .unwrap()
        .batch_execute(schema)
        .await
        .unwrap();
    for command in commands {
        let (want, got) = (psql(pg.port, command), psql(ours, command));
        assert_eq!(
            got, want,
            "psql {command}: {who} (left) vs PostgreSQL (right)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_commands_print_what_postgres_prints() {
    let shard = Shard::with_schema("psql-describe", SCHEMA);
    compare_with_postgres(shard.port, "shard", SCHEMA, COMMANDS).await;
    shard.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_commands_through_the_proxy_print_what_postgres_prints() {
    let proxy = EmbeddedProxy::start("psql-describe");
    proxy
        .connect()
        .await
        .batch_execute(SHARDED_SCHEMA)
        .await
        .unwrap();
    compare_with_postgres(proxy.port, "proxy", SHARDED_SCHEMA, PROXY_COMMANDS).await;
}

/// A catalog relation of objects a shard cannot have (policies, triggers,
/// publications) has PostgreSQL's columns and, as on a PostgreSQL server
/// without such objects, no rows; a name no PostgreSQL catalog has is
/// 42P01 on both; one whose rows are PostgreSQL's own objects (`pg_proc`)
/// is refused by name rather than answered wrongly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_relations_answer_as_postgres_or_are_refused_by_name() {
    let shard = Shard::with_schema("psql-catalogs", SCHEMA);
    let queries = [
        "SELECT * FROM pg_catalog.pg_policy",
        "SELECT tgname, tgisinternal FROM pg_trigger WHERE NOT tgisinternal",
        "SELECT * FROM pg_catalog.pg_publication",
        "SELECT * FROM pg_statistic_ext",
        "SELECT spcname, pg_tablespace_location(oid) FROM pg_tablespace ORDER BY 1",
    ];
    compare_with_postgres(shard.port, "shard", SCHEMA, &queries).await;
    let pg = PgServer::start().await;
    let (ours, theirs) = (shard.connect().await, pg.connect().await.unwrap());
    for sql in [
        "SELECT * FROM pg_catalog.pg_nosuch",
        "SELECT 1 FROM pg_nosuch",
    ] {
        let want = theirs.simple_query(sql).await.unwrap_err();
        let got = ours.simple_query(sql).await.unwrap_err();
        assert_eq!(got.code(), want.code(), "{sql}: {got}");
    }
    let refused = ours
        .simple_query("SELECT proname FROM pg_proc")
        .await
        .unwrap_err();
    let db = refused.as_db_error().expect("an ErrorResponse");
    assert_eq!(db.code().code(), "0A000");
    assert!(db.message().contains("pg_proc"), "{}", db.message());
    theirs
        .simple_query("SELECT proname FROM pg_proc")
        .await
        .unwrap();
    shard.stop();
}
