//! Real Python drivers and ORMs (tests/drivers/*.py, installed by
//! scripts/test.sh) against three targets: real PostgreSQL + pgvector as
//! the control, the embedded binary's proxy, and one `pgvshard shard`.
//! Each script runs its scenario on all three and fails at the first step
//! where a target answers differently from the control (or hangs). The
//! servers are shared by this file's tests: the first test starts them,
//! the last one to finish stops them.

mod embedded_support;
mod pg_support;
mod python_support;
mod shard_support;

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use embedded_support::EmbeddedProxy;
use pg_support::{PgServer, TWO_PHASE};
use shard_support::{fresh_dir, proxy_over, Shard};

/// A driver script's limit: far above its run time, so only a hang hits it.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(180);

struct Targets {
    control: PgServer,
    proxy: EmbeddedProxy,
    shard: Shard,
}

fn targets() -> Arc<Targets> {
    static SHARED: Mutex<Weak<Targets>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = shared.upgrade() {
        return t;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let targets = Arc::new(Targets {
        control: runtime.block_on(PgServer::start()),
        proxy: EmbeddedProxy::start("drivers"),
        shard: Shard::start(&fresh_dir("drivers")),
    });
    *shared = Arc::downgrade(&targets);
    targets
}

/// Runs `tests/drivers/<driver>_driver.py` on the three targets (the
/// control first).
fn agree(driver: &str) {
    let t = targets();
    let on = [
        ("control", t.control.port),
        ("proxy", t.proxy.port),
        ("shard", t.shard.port),
    ];
    let out =
        python_support::run_against(&format!("drivers/{driver}_driver.py"), &on, SCRIPT_DEADLINE);
    assert!(
        out.starts_with(&format!("{driver}: ")) && out.contains(" agree on control, proxy, shard"),
        "{out}"
    );
}

#[test]
fn asyncpg_errors_never_hang_and_match_postgres() {
    agree("asyncpg");
}

/// Column names and text values of every row `sql` returns (simple
/// protocol), or its SQLSTATE; connected as `user` to `db`.
async fn answer(
    port: u16,
    user: &str,
    db: &str,
    sql: &str,
) -> Result<Vec<Vec<(String, Option<String>)>>, String> {
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user={user} dbname={db}"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap_or_else(|e| panic!("connect to {port} as {user}: {e}"));
    tokio::spawn(conn);
    let messages = client.simple_query(sql).await.map_err(|e| {
        e.code()
            .map_or_else(|| e.to_string(), |c| c.code().to_string())
    })?;
    Ok(messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                r.columns()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name().to_string(), r.get(i).map(str::to_string)))
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

/// What drivers ask on connect and beside their queries — SHOW in each
/// spelling, the session functions, current_setting — answered as
/// PostgreSQL answers it for the user and database the client connected
/// as (the proxy's shard connections belong to other sessions).
#[test]
fn show_and_session_functions_match_postgres() {
    let t = targets();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(show_and_session_functions(&t));
}

async fn show_and_session_functions(t: &Targets) {
    let control = t.control.connect().await.expect("control");
    control
        .batch_execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'alice') THEN CREATE ROLE alice LOGIN; END IF; END $$",
        )
        .await
        .expect("role alice");
    if control
        .query_opt("SELECT 1 FROM pg_database WHERE datname = 'shop'", &[])
        .await
        .expect("pg_database")
        .is_none()
    {
        control
            .batch_execute("CREATE DATABASE shop")
            .await
            .expect("database shop");
    }
    for sql in [
        "SHOW TRANSACTION ISOLATION LEVEL",
        "show transaction_isolation",
        "SHOW SESSION AUTHORIZATION",
        "SHOW standard_conforming_strings",
        "SHOW datestyle",
        "SHOW client_min_messages",
        "SHOW default_transaction_read_only",
        "SHOW transaction_read_only",
        "SHOW max_identifier_length",
        "SHOW in_hot_standby",
        "SHOW no_such_setting",
        "SELECT current_user, session_user, user, current_database(), current_catalog",
        "SELECT upper(current_user) AS u, current_setting('standard_conforming_strings'), current_setting('no_such_setting', true)",
        "SELECT current_setting('no_such_setting')",
    ] {
        let want = answer(t.control.port, "alice", "shop", sql).await;
        for (name, port) in [("proxy", t.proxy.port), ("shard", t.shard.port)] {
            let got = answer(port, "alice", "shop", sql).await;
            assert_eq!(got, want, "{name}: {sql}");
        }
    }
}

#[test]
fn psycopg2_matches_postgres() {
    agree("psycopg2");
}

#[test]
fn pg8000_matches_postgres() {
    agree("pg8000");
}

#[test]
fn psycopg_matches_postgres() {
    agree("psycopg");
}

#[test]
fn peewee_matches_postgres() {
    agree("peewee");
}

/// Statements drivers and ORMs send beside their own tables' — set-returning
/// functions in FROM, ORDER BY positions over `*`, DISTINCT ON, json and
/// jsonb operators, uuid, indexes on expressions and their catalog, negative
/// LIMIT / OFFSET, set_config — answered as
/// PostgreSQL answers them, on a shard and through the proxy (where a
/// function in FROM is no table: alone it goes to one shard, joined to a
/// sharded table it is scattered with it).
#[test]
fn queries_drivers_send_match_postgres() {
    let t = targets();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(queries_drivers_send(&t));
}

async fn queries_drivers_send(t: &Targets) {
    let setup = [
        "DROP TABLE IF EXISTS sql_items",
        "CREATE TABLE sql_items (id bigint PRIMARY KEY, cat int, embedding vector(3))",
        "INSERT INTO sql_items VALUES (1, 1, '[1,2,3]'), (2, 2, '[3,4,5]'), (3, 1, '[0,0,1]'), (4, 2, NULL)",
        "DROP TABLE IF EXISTS sql_docs",
        "CREATE TABLE sql_docs (id bigint PRIMARY KEY, meta jsonb, body json, e vector(3))",
        r#"INSERT INTO sql_docs VALUES (1, '[1, 2, 3]', '{"a": 1.5,  "b": [1,  2]}', '[1,0,0]'), (2, '{"k": "x", "n": [2]}', '{"a": "2", "a": 3}', '[0,1,0]'), (3, '[2, "k"]', NULL, NULL)"#,
        "CREATE INDEX sql_docs_e ON sql_docs USING hnsw (e vector_l2_ops) WITH (ef_construction = 8, m = 4)",
        "CREATE INDEX sql_docs_e2 ON sql_docs USING hnsw (e vector_cosine_ops)",
        "CREATE INDEX sql_docs_e3 ON sql_docs USING ivfflat (e vector_l2_ops) WITH (lists = 1)",
        "CREATE INDEX ON sql_docs ((meta ->> 'k'))",
        "CREATE INDEX sql_docs_f ON sql_docs (CAST(body ->> 'a' AS FLOAT))",
        "CREATE INDEX sql_docs_gin ON sql_docs USING gin (meta jsonb_path_ops)",
        "CREATE INDEX ON sql_docs USING gin (meta)",
        // LangChain's collection table, less its UNIQUE (name).
        "DROP TABLE IF EXISTS sql_collections",
        "CREATE TABLE sql_collections (uuid UUID PRIMARY KEY, name VARCHAR NOT NULL, cmetadata JSON)",
        r#"INSERT INTO sql_collections VALUES ('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'a', '{"x": 1}'), ('{b0eebc999c0b4ef8bb6d6bb9bd380a11}', 'b', NULL), ('c0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'c', '{}')"#,
    ];
    let targets = [
        ("control", t.control.port),
        ("proxy", t.proxy.port),
        ("shard", t.shard.port),
    ];
    for (name, port) in targets {
        for sql in setup {
            let done = answer(port, "postgres", "postgres", sql).await;
            assert!(done.is_ok(), "{name}: {sql}: {done:?}");
        }
    }
    for sql in [
        "SELECT * FROM generate_series(1, 3)",
        "SELECT g FROM generate_series(1, 10, 4) AS g",
        "SELECT * FROM generate_series(5, 1, -2) WITH ORDINALITY AS s(v, n)",
        "SELECT * FROM generate_series(1::bigint, 2)",
        "SELECT * FROM generate_series(1, 3, 0)",
        "SELECT * FROM unnest(ARRAY[3, 1, 2]) WITH ORDINALITY",
        "SELECT u FROM unnest('{a,NULL,c}'::text[]) u",
        "SELECT s.id, g FROM sql_items s JOIN generate_series(2, 3) g ON g = s.id ORDER BY 1",
        "SELECT * FROM unnest(ARRAY[1, 2]) u, sql_items ORDER BY 1, 2",
        "SELECT * FROM sql_items ORDER BY 1 DESC",
        "SELECT * FROM sql_items ORDER BY 2, 1 DESC",
        "SELECT id, * FROM sql_items ORDER BY 3 DESC NULLS LAST, 1",
        "SELECT * FROM sql_items ORDER BY 9",
        "SELECT id FROM sql_items ORDER BY id DESC LIMIT '2'::INTEGER OFFSET '1'",
        "SELECT DISTINCT ON (cat) cat, id FROM sql_items ORDER BY cat, id DESC",
        "SELECT DISTINCT ON (cat) cat, id, embedding IS NULL FROM sql_items ORDER BY cat DESC NULLS LAST, embedding <-> '[0,0,1]'",
        "SELECT DISTINCT ON (cat) cat, id FROM sql_items ORDER BY cat, id LIMIT 1 OFFSET 1",
        "SELECT DISTINCT ON (1) cat AS c, id FROM sql_items ORDER BY c, 2 DESC",
        "SELECT DISTINCT ON (cat, id) cat, id FROM sql_items ORDER BY cat",
        "SELECT DISTINCT ON (cat) cat FROM sql_items",
        "SELECT DISTINCT ON (cat) cat, id FROM sql_items ORDER BY id",
        // json keeps its text; jsonb's operators; `->>-1` is `->> -1`.
        "SELECT id, meta->>-1 AS last, meta->-2, body, body->'b', body->>'a' FROM sql_docs ORDER BY id",
        "SELECT id, body::jsonb FROM sql_docs ORDER BY id",
        r#"SELECT id FROM sql_docs WHERE meta @> '[2]' OR meta @> '{"n": [2]}' ORDER BY id"#,
        "SELECT id, meta ? 'k', meta ?| array['x', 'k'], meta ?& array['k', 'n'] FROM sql_docs ORDER BY id",
        "SELECT body = body FROM sql_docs",
        "SELECT id FROM sql_docs ORDER BY (body->>'a')::float",
        // LangChain's metadata filters: jsonpath, jsonb_exists.
        r#"SELECT id, jsonb_path_match(meta, CAST('$.k == $v' AS JSONPATH), '{"v": "x"}'), jsonb_path_match(meta, '$.k > $v', '{"v": 1}'), meta @@ '$.n[0] >= 2 && !($.k == null)', meta @? '$[*] ? (@ == 2)', meta @? 'strict $.k' FROM sql_docs ORDER BY id"#,
        "SELECT id, jsonb_exists(meta, 'k'), NOT jsonb_exists(meta, 'k'::varchar), jsonb_exists_any(meta, array['n', 'q']), jsonb_exists_all(meta, array['k', 'n']) FROM sql_docs ORDER BY id",
        r#"SELECT '$.kind == $value'::jsonpath, 'strict $.a[*] ? (@ > 1).size()'::jsonpath, '$."a b" + 1 * -2 == -$.c'::jsonpath"#,
        r#"SELECT jsonb_path_match('{"a": 1}', '$.a')"#,
        r#"SELECT jsonb_path_match('{"a": 1}', '$.a == $x')"#,
        r#"SELECT jsonb_path_exists('{"a": 1}', 'strict $.b', '{}', true), jsonb_path_exists('{"a": [1, 2]}', '$.a ? (@ > 1)')"#,
        "CREATE INDEX ON sql_docs USING gin (body)",
        "CREATE INDEX ON sql_docs USING gin (meta text_ops)",
        // The index on CAST(body ->> 'a' AS FLOAT) refuses a row it fails on.
        r#"INSERT INTO sql_docs VALUES (9, NULL, '{"a": "x"}', NULL)"#,
        // Aggregates over DISTINCT values, across shards through the proxy.
        "SELECT count(DISTINCT cat), count(DISTINCT embedding), count(*), sum(DISTINCT cat), min(DISTINCT id), max(DISTINCT embedding <-> '[0,0,0]') FROM sql_items",
        "SELECT cat, count(DISTINCT embedding), count(id) FROM sql_items GROUP BY cat ORDER BY cat DESC",
        "SELECT count(DISTINCT cat) FROM sql_items WHERE id > 100",
        // pg_typeof: a column's, an expression's, an untyped literal's.
        "SELECT pg_typeof(id), pg_typeof(cat), pg_typeof(embedding), pg_typeof(embedding <-> '[1,1,1]'), pg_typeof(id + cat) FROM sql_items ORDER BY id LIMIT 1",
        "SELECT pg_typeof(meta), pg_typeof(meta -> 'k'), pg_typeof(body ->> 'a'), pg_typeof(body) FROM sql_docs WHERE id = 1",
        "SELECT pg_typeof(1), pg_typeof('a'), pg_typeof(NULL), pg_typeof(NULL::int), pg_typeof(1.5::float8), pg_typeof(ARRAY[1, 2]), pg_typeof('$.a'::jsonpath), pg_typeof(true)",
        "SELECT id FROM sql_docs LIMIT '-1'",
        "SELECT id FROM sql_docs OFFSET -1",
        // Only the options WITH gave; ivfflat's default operator class unnamed.
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'sql_docs' ORDER BY 1",
        "SELECT c.relname, c.reloptions FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid WHERE i.indrelid = 'sql_docs'::regclass ORDER BY 1",
        "SELECT i.indkey, pg_get_expr(i.indexprs, i.indrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname IN ('sql_docs_f', 'sql_docs_expr_idx') ORDER BY c.relname",
        // uuid in every spelling uuid_in reads, as a key, ordered, cast.
        "SELECT uuid, name, cmetadata FROM sql_collections WHERE name <> 'c' ORDER BY uuid DESC",
        "SELECT name FROM sql_collections WHERE uuid = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
        "SELECT name FROM sql_collections WHERE uuid = 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid",
        "SELECT count(*), min(name) FROM sql_collections WHERE uuid > 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a10'",
        "SELECT 'a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11'::uuid, 'a0eebc99'::uuid",
        "SELECT length(gen_random_uuid()::text), gen_random_uuid() = gen_random_uuid()",
        "INSERT INTO sql_collections VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'dup', NULL)",
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid WHERE c.relname = 'sql_collections' AND a.attnum > 0 ORDER BY a.attnum",
        // The collecting aggregates over one shard's rows (the proxy does
        // not combine them across shards).
        "SELECT string_agg(name, ', ' ORDER BY name DESC), json_agg(name ORDER BY name), jsonb_agg(cmetadata ORDER BY name) FROM sql_collections WHERE uuid = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
        "SELECT string_agg(x, '-' ORDER BY x DESC), jsonb_agg(x ORDER BY x) FROM unnest(ARRAY['a', 'b']) x",
        "SELECT jsonb_build_object('n', name, 'm', cmetadata), json_build_array(name, 1), to_jsonb(name), jsonb_typeof(cmetadata::jsonb) FROM sql_collections ORDER BY name",
        // set_config changes the session, as SET does.
        "SELECT set_config('application_name', 'abc', false); SHOW application_name; SELECT current_setting('application_name')",
    ] {
        let want = answer(t.control.port, "postgres", "postgres", sql).await;
        for (name, port) in &targets[1..] {
            let got = answer(*port, "postgres", "postgres", sql).await;
            assert_eq!(got, want, "{name}: {sql}");
        }
    }
    // Each shard would combine only its own rows: the proxy refuses a set
    // operation over a sharded table, naming it.
    let proxy = embedded_support::connect_to(t.proxy.port).await;
    for (sql, op) in [
        (
            "SELECT id FROM sql_items UNION SELECT cat FROM sql_items",
            "UNION",
        ),
        ("SELECT id FROM sql_items EXCEPT ALL SELECT 1", "EXCEPT ALL"),
    ] {
        let e = proxy.simple_query(sql).await.expect_err(sql);
        let e = e.as_db_error().expect("a database error");
        assert_eq!(e.code().code(), "0A000", "{sql}");
        assert!(
            e.message()
                .starts_with(&format!("{op} over sharded tables")),
            "{sql}: {e}"
        );
    }
    for (_, port) in targets {
        answer(
            port,
            "postgres",
            "postgres",
            "DROP TABLE sql_items, sql_docs, sql_collections",
        )
        .await
        .expect("drop");
    }
}

/// SQLAlchemy on psycopg2, psycopg 3 and asyncpg, then SQLModel; its
/// bulk insert of rows whose key the server generates is an `INSERT …
/// SELECT … FROM (VALUES …) ORDER BY sen_counter RETURNING …`, which the
/// proxy splits by shard like `INSERT … VALUES`.
#[test]
fn sqlalchemy_and_sqlmodel_match_postgres() {
    agree("sqlalchemy");
}

#[test]
fn django_matches_postgres() {
    agree("django");
}

/// LlamaIndex's PGVectorStore: a `json` (or `jsonb`) metadata column,
/// btree indexes on expressions over it, metadata filters with `->>`,
/// casts, `@>` and `?|` / `?&`.
#[test]
fn llamaindex_vector_store_matches_postgres() {
    agree("llamaindex");
}

/// uuid and json with the drivers' own types (psycopg 3 text and binary,
/// asyncpg binary and `uuid[]`), a uuid shard key through the proxy.
/// UNIQUE and FOREIGN KEY constraints on a shard as PostgreSQL keeps
/// them: NULLs never conflict, a key freed and taken again in one
/// transaction, ON DELETE CASCADE through two levels, SET NULL, NO ACTION
/// (a delete or a key change refused while referenced), a transaction's
/// own rows seen by the checks, a row changed twice in one transaction,
/// ON CONFLICT … DO UPDATE through a UNIQUE constraint (by columns or name),
/// and DROP / TRUNCATE of a referenced table refused; the constraints'
/// rows in `pg_constraint`, their `pg_get_constraintdef` text and
/// SQLAlchemy's `inspect()` of them.
#[test]
fn constraints_match_postgres() {
    let t = targets();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let targets = [("control", t.control.port), ("shard", t.shard.port)];
            let statements = [
                "DROP TABLE IF EXISTS k_c2; DROP TABLE IF EXISTS k_c1; DROP TABLE IF EXISTS k_p",
                "CREATE TABLE k_p (id int PRIMARY KEY, name text NOT NULL UNIQUE, a int, b int, CONSTRAINT k_ab UNIQUE (a, b))",
                "CREATE TABLE k_c1 (id int PRIMARY KEY, pid int REFERENCES k_p ON DELETE CASCADE, pname text, FOREIGN KEY (pname) REFERENCES k_p (name) ON DELETE SET NULL)",
                "CREATE TABLE k_c2 (id int PRIMARY KEY, c1id int, FOREIGN KEY (c1id) REFERENCES k_c1 (id))",
                "CREATE TABLE k_bad (id int PRIMARY KEY, x int REFERENCES k_p (a))",
                "CREATE TABLE k_bad (id int PRIMARY KEY, x int REFERENCES k_nosuch)",
                "CREATE TABLE k_bad (id int PRIMARY KEY, x int REFERENCES k_p (nosuch))",
                "INSERT INTO k_p VALUES (1, 'one', 1, 1), (2, 'two', 1, NULL), (3, 'three', 1, NULL)",
                "INSERT INTO k_p VALUES (4, 'one', 2, 2)",
                "INSERT INTO k_p VALUES (5, 'five', 1, 1)",
                "UPDATE k_p SET name = 'two' WHERE id = 3",
                "UPDATE k_p SET name = name || '!'",
                "UPDATE k_p SET name = 'one' WHERE id = 1",
                "INSERT INTO k_p VALUES (8, 'one', 7, 7) ON CONFLICT (name) DO UPDATE SET a = excluded.a - 6 RETURNING id, name, a, b",
                "INSERT INTO k_p VALUES (9, 'nine', 1, 1) ON CONFLICT ON CONSTRAINT k_ab DO UPDATE SET name = k_p.name || '?' RETURNING id, name",
                "INSERT INTO k_p VALUES (2, 'one?', 3, 3) ON CONFLICT (name) DO UPDATE SET name = 'one' RETURNING id, name",
                "SELECT * FROM k_p ORDER BY id",
                "INSERT INTO k_c1 VALUES (10, 1, 'one'), (11, 1, NULL), (12, NULL, 'two!'), (13, 3, 'three!')",
                "INSERT INTO k_c1 VALUES (14, 9, NULL)",
                "INSERT INTO k_c1 VALUES (15, 1, 'nine')",
                "INSERT INTO k_c2 VALUES (100, 10), (101, 13), (102, NULL)",
                "UPDATE k_c1 SET pid = 8 WHERE id = 11",
                "UPDATE k_p SET id = 30 WHERE id = 3",
                "DELETE FROM k_c1 WHERE id = 10",
                "DELETE FROM k_p WHERE id = 2; SELECT * FROM k_c1 ORDER BY id",
                "DELETE FROM k_c2 WHERE id = 100",
                "DELETE FROM k_p WHERE id = 1; SELECT * FROM k_c1 ORDER BY id",
                "SELECT * FROM k_c2 ORDER BY id",
                "BEGIN; INSERT INTO k_p VALUES (6, 'six', NULL, NULL); INSERT INTO k_c1 VALUES (16, 6, 'six'); DELETE FROM k_p WHERE id = 6; SELECT * FROM k_c1 ORDER BY id; INSERT INTO k_c1 VALUES (17, 6, NULL)",
                "BEGIN; DELETE FROM k_p WHERE name = 'three!'; INSERT INTO k_p VALUES (7, 'three!', 5, 5); COMMIT; SELECT * FROM k_p ORDER BY id",
                "BEGIN; UPDATE k_p SET a = a + 1 WHERE id = 7; UPDATE k_p SET a = a + 1; DELETE FROM k_p WHERE id = 5; DELETE FROM k_p WHERE id = 5; COMMIT; SELECT * FROM k_p ORDER BY id",
                "SELECT * FROM k_c1 ORDER BY id",
                // PostgreSQL 18 adds NOT NULL rows (contype 'n'); we claim 16.
                "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'k_c1'::regclass AND contype <> 'n' ORDER BY conname",
                "SELECT c.relname, conname, contype, pg_get_constraintdef(k.oid), conkey, confkey, f.relname, confupdtype, confdeltype, confmatchtype FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid LEFT JOIN pg_class f ON f.oid = k.confrelid WHERE c.relname IN ('k_p', 'k_c1', 'k_c2') AND contype <> 'n' ORDER BY c.relname, conname",
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'k_p' ORDER BY indexname",
                "DROP TABLE k_p",
                "TRUNCATE k_p",
                "DROP TABLE k_c2; DROP TABLE k_c1; DROP TABLE k_p",
            ];
            for sql in statements {
                let want = answer(t.control.port, "postgres", "postgres", sql).await;
                for (name, port) in &targets[1..] {
                    let got = answer(*port, "postgres", "postgres", sql).await;
                    assert_eq!(got, want, "{name}: {sql}");
                }
            }
        });
    let out = python_support::run_against(
        "drivers/sa_constraints_driver.py",
        &[("control", t.control.port), ("shard", t.shard.port)],
        SCRIPT_DEADLINE,
    );
    assert!(
        out.starts_with("sa_constraints: ") && out.contains(" agree on control, shard"),
        "{out}"
    );
}

/// LangChain's PGVector store (langchain-postgres, in the virtual
/// environment scripts/test.sh makes for it) end to end on a shard, through
/// the embedded default (four in-process shards) and through two proxies
/// of two shards each — `pgvshard shard` processes and PostgreSQL servers
/// — with its collection table configured as a reference table
/// (`reference_tables`): an advisory lock, tables with
/// UNIQUE and FOREIGN KEY … ON DELETE CASCADE, a GIN index, jsonpath and
/// jsonb_exists filters, the join of its two tables (run on every shard
/// and merged by distance), deletes and the cascade. Through those
/// proxies what stays wrong across shards is still refused, naming the
/// feature: a FOREIGN KEY to a sharded table, a UNIQUE constraint without
/// the shard key.
#[test]
fn langchain_vector_store_matches_postgres() {
    let t = targets();
    let venv = std::env::var("PGVSHARD_LANGCHAIN_VENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/pgvshard/langchain-venv",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let python = format!("{venv}/bin/python");
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: scripts/test.sh creates it"
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let ours = [
        Shard::start(&fresh_dir("langchain-s0")),
        Shard::start(&fresh_dir("langchain-s1")),
    ];
    let postgres = runtime.block_on(async {
        let (a, b) = tokio::join!(
            PgServer::start_with(TWO_PHASE),
            PgServer::start_with(TWO_PHASE)
        );
        [a, b]
    });
    let reference = "reference_tables: [langchain_pg_collection]\n";
    let proxy_ours = proxy_over("langchain-ours", &[ours[0].port, ours[1].port], reference);
    let proxy_pg = proxy_over(
        "langchain-pg",
        &[postgres[0].port, postgres[1].port],
        reference,
    );
    let on = [
        ("control", t.control.port),
        ("proxy", t.proxy.port),
        ("shard", t.shard.port),
        ("proxy-2-shards", proxy_ours.port),
        ("proxy-2-postgres", proxy_pg.port),
    ];
    let out = python_support::run_against_with(
        &python,
        "drivers/langchain_driver.py",
        &on,
        SCRIPT_DEADLINE,
    );
    assert!(
        out.starts_with("langchain: ")
            && out.contains(" agree on control, proxy, shard, proxy-2-shards, proxy-2-postgres"),
        "{out}"
    );
    runtime.block_on(async {
        for port in [proxy_ours.port, proxy_pg.port] {
            let proxy = client(port).await;
            for (sql, feature) in [
                (
                    "CREATE TABLE lc_sharded_collection (uuid UUID PRIMARY KEY, name VARCHAR NOT NULL, UNIQUE (name))",
                    "a UNIQUE constraint without the shard key column (name)",
                ),
                (
                    "CREATE TABLE lc_embedding (id VARCHAR PRIMARY KEY, collection_id UUID REFERENCES lc_sharded_collection (uuid) ON DELETE CASCADE)",
                    "a FOREIGN KEY constraint to sharded table lc_sharded_collection",
                ),
            ] {
                let e = proxy.simple_query(sql).await.expect_err(sql);
                let e = e.as_db_error().expect("a database error");
                assert_eq!(e.code().code(), "0A000", "{sql}");
                assert_eq!(
                    e.message(),
                    format!("{feature} is not supported across shards"),
                    "{sql}"
                );
            }
        }
    });
}

#[test]
fn uuid_and_json_parameters_match_postgres() {
    agree("uuid_json");
}

async fn client(port: u16) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap_or_else(|e| panic!("connect to {port}: {e}"));
    tokio::spawn(conn);
    client
}

/// The first column of each row `sql` returns, as text.
async fn texts(c: &tokio_postgres::Client, sql: &str) -> Vec<Option<String>> {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
            _ => None,
        })
        .collect()
}

/// LangChain's first statement takes `pg_advisory_xact_lock`: a second
/// session cannot take the lock until the first's transaction ends, and a
/// waiter goes on when it does — on a shard and through the proxy (which
/// takes every transaction-level lock on one fixed shard). Session-level
/// locks count their holds as PostgreSQL's on a shard; the proxy refuses
/// them, naming them (its shard connections are pooled per transaction).
#[test]
fn advisory_locks_match_postgres() {
    let t = targets();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(advisory_locks(&t));
}

async fn advisory_locks(t: &Targets) {
    for (name, port) in [
        ("control", t.control.port),
        ("proxy", t.proxy.port),
        ("shard", t.shard.port),
    ] {
        let (a, b) = (client(port).await, client(port).await);
        a.batch_execute("BEGIN; SELECT pg_advisory_xact_lock(1573678846307946496)")
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let try_lock = "SELECT pg_try_advisory_xact_lock(1573678846307946496)";
        assert_eq!(texts(&b, try_lock).await, [Some("f".into())], "{name}");
        let waiter = tokio::spawn(async move {
            let started = std::time::Instant::now();
            b.batch_execute("SELECT pg_advisory_xact_lock(1573678846307946496)")
                .await
                .map(|()| (started.elapsed(), b))
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiter.is_finished(), "{name}: the waiter got the lock");
        a.batch_execute("COMMIT").await.expect("commit");
        let (waited, b) = waiter
            .await
            .expect("waiter")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(waited >= Duration::from_millis(300), "{name}: {waited:?}");
        assert_eq!(texts(&a, try_lock).await, [Some("t".into())], "{name}");
        let session_locks = "SELECT pg_advisory_lock(42), pg_try_advisory_lock(1, 2), pg_advisory_unlock(42), pg_advisory_unlock(42)";
        if name == "proxy" {
            let e = b.simple_query(session_locks).await.expect_err("refused");
            let e = e.as_db_error().expect("a database error");
            assert_eq!(e.code().code(), "0A000");
            assert!(
                e.message().starts_with("session-level advisory locks"),
                "{e}"
            );
            continue;
        }
        let messages = b.simple_query(session_locks).await.expect(name);
        let row = messages
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
                _ => None,
            })
            .expect("a row");
        let values: Vec<_> = (0..4).map(|i| row.get(i)).collect();
        assert_eq!(
            values,
            [Some(""), Some("t"), Some("t"), Some("f")],
            "{name}"
        );
        assert_eq!(
            texts(&a, "SELECT pg_try_advisory_lock(1, 2)").await,
            [Some("f".into())],
            "{name}: b holds (1, 2) for its session"
        );
        drop(b);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            texts(
                &a,
                "SELECT pg_try_advisory_lock(1, 2), pg_advisory_unlock_all()"
            )
            .await,
            [Some("t".into())],
            "{name}: a session's locks end with it"
        );
    }
}
