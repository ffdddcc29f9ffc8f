//! The SQL subset of a shard through psql: types, defaults, DML with
//! RETURNING and ON CONFLICT, WHERE forms, ORDER BY / LIMIT / OFFSET,
//! aggregates (of vectors too) with GROUP BY, pgvector's operators and
//! functions, the rerank and distance-threshold query patterns, ALTER /
//! TRUNCATE / DROP, settings, and errors with their SQLSTATEs.

mod shard_support;

use shard_support::{sqlstate, Shard};

const SCHEMA: &str = "
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE t (id serial PRIMARY KEY, name text NOT NULL DEFAULT 'x', score real, big bigint,
  flag boolean, v varchar(5), d date, ts timestamptz, j jsonb, e vector(3), h halfvec(3),
  s sparsevec(5), b bit(4));
INSERT INTO t (name, score, big, flag, v, d, ts, j, e, h, s, b) VALUES
  ('a', 1.5, 10, true, 'abc', '2024-01-02', '2024-01-02 03:04:05+00', '{\"k\": 1}', '[1,2,3]', '[1,2,3]', '{1:1,3:2}/5', '1010');
INSERT INTO t (score, e, flag) VALUES (2.5, '[3,2,1]', false), (NULL, '[0,0,1]', NULL);
";

fn check(shard: &Shard, sql: &str, want: &str) {
    assert_eq!(shard.psql(sql).unwrap(), want, "{sql}");
}

#[test]
fn sql_subset_through_psql() {
    let shard = Shard::with_schema("sql-subset", SCHEMA);
    for (sql, want) in [
        ("SELECT * FROM t WHERE id = 1;", "1|a|1.5|10|t|abc|2024-01-02|2024-01-02 03:04:05+00|{\"k\": 1}|[1,2,3]|[1,2,3]|{1:1,3:2}/5|1010\n"),
        ("SELECT id, name FROM t WHERE score BETWEEN 1 AND 2 OR name LIKE 'x%' ORDER BY id DESC LIMIT 2 OFFSET 1;", "2|x\n1|a\n"),
        ("SELECT id FROM t WHERE score IS NULL;", "3\n"),
        ("SELECT id FROM t WHERE id IN (1, 3) AND flag IS NOT NULL;", "1\n"),
        ("SELECT id FROM t WHERE NOT flag;", "2\n"),
        ("UPDATE t SET score = score * 2 WHERE id = 2 RETURNING id, score;", "2|5\n"),
        ("SELECT count(*), sum(score), avg(score), min(name), max(e) FROM t;", "3|6.5|3.25|a|[3,2,1]\n"),
        ("SELECT e <-> '[1,1,1]', e <#> '[1,1,1]', e <=> '[1,1,1]', e <+> '[1,1,1]', b <~> '1111', b <%> '1111' FROM t WHERE id = 1;", "2.23606797749979|-6|0.07417990022744858|3|2|0.5\n"),
        ("SELECT l2_distance(e, '[0,0,0]'), inner_product(e, e), vector_dims(e), l2_normalize(e), binary_quantize(e), subvector(e, 2, 2) FROM t WHERE id = 1;", "3.7416573867739413|14|3|[0.26726124,0.5345225,0.80178374]|111|[2,3]\n"),
        ("SELECT '[1,2,3]'::vector(3), '[1,2,3]'::halfvec(3), binary_quantize('[1,-2,3]'::vector)::bit(3), '[1,2]'::vector + '[3,4]';", "[1,2,3]|[1,2,3]|101|[4,6]\n"),
        ("SELECT flag, count(*), avg(e) FROM t GROUP BY flag ORDER BY count(*), flag;", "f|1|[3,2,1]\nt|1|[1,2,3]\n|1|[0,0,1]\n"),
        ("SELECT sum(e) FROM t;", "[4,4,5]\n"),
        ("INSERT INTO t (id, name) VALUES (1, 'dup') ON CONFLICT (id) DO NOTHING;", ""),
        ("INSERT INTO t (id, name) VALUES (1, 'dup') ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name RETURNING id, name;", "1|dup\n"),
        ("DELETE FROM t WHERE id = 3 RETURNING id, e;", "3|[0,0,1]\n"),
        ("ALTER TABLE t ADD COLUMN extra int DEFAULT 7; SELECT id, extra FROM t ORDER BY 1;", "1|7\n2|7\n"),
        ("INSERT INTO t (name) VALUES ('n') RETURNING id, extra;", "4|7\n"),
        ("INSERT INTO t (id, name) VALUES (DEFAULT, DEFAULT) RETURNING id, name;", "5|x\n"),
        ("SET hnsw.ef_search = 100; SHOW hnsw.ef_search; RESET hnsw.ef_search; SHOW hnsw.ef_search;", "100\n40\n"),
        ("BEGIN; SET LOCAL ivfflat.probes = 5; SHOW ivfflat.probes; COMMIT; SHOW ivfflat.probes;", "5\n1\n"),
        ("SELECT current_setting('hnsw.ef_search'), version() LIKE 'PostgreSQL 16%';", "40|t\n"),
    ] {
        check(&shard, sql, want);
    }
    let lsn = shard.psql("SELECT pg_current_wal_lsn();").unwrap();
    assert!(lsn.trim().starts_with("0/") && lsn.trim() != "0/0", "{lsn}");
    for (sql, want) in [
        ("TRUNCATE t; SELECT count(*) FROM t;", "0\n"),
        ("DROP TABLE t; DROP TABLE IF EXISTS t; DISCARD ALL;", ""),
    ] {
        check(&shard, sql, want);
    }
    shard.stop();
}

#[test]
fn rerank_and_distance_threshold_patterns() {
    let shard = Shard::with_schema(
        "sql-patterns",
        "CREATE TABLE items (id bigserial PRIMARY KEY, embedding vector(3));
             INSERT INTO items (embedding) VALUES ('[1,-2,3]'), ('[1,2,3]'), ('[-1,-2,-3]'), ('[2,-1,3]');
             CREATE INDEX ON items USING ivfflat (embedding vector_cosine_ops) WITH (lists = 2);",
    );
    for (sql, want) in [
        ("SELECT * FROM (SELECT id, embedding FROM items ORDER BY binary_quantize(embedding)::bit(3) <~> binary_quantize('[1,-2,3]'::vector) LIMIT 3) ORDER BY embedding <=> '[1,-2,3]' LIMIT 2;", "1|[1,-2,3]\n4|[2,-1,3]\n"),
        ("WITH nearest_results AS MATERIALIZED (SELECT id, embedding <-> '[1,2,3]' AS distance FROM items ORDER BY distance LIMIT 5) SELECT * FROM nearest_results WHERE distance < 4.5 ORDER BY distance;", "2|0\n4|3.1622776601683795\n1|4\n"),
        ("SET ivfflat.probes = 2; SELECT id FROM items ORDER BY embedding <=> '[1,2,3]' LIMIT 1;", "2\n"),
    ] {
        check(&shard, sql, want);
    }
    shard.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_postgres_sqlstates() {
    let shard = Shard::with_schema(
        "sql-errors",
        "CREATE TABLE items (id bigserial PRIMARY KEY, embedding vector(3), b bit(3));",
    );
    let client = shard.connect().await;
    let cases = [
        ("INSERT INTO items (embedding) VALUES ('[1,2]')", "22000"),
        ("INSERT INTO items (embedding) VALUES ('[1,2,a]')", "22P02"),
        ("INSERT INTO items (id) VALUES (1), (1)", "23505"),
        ("SELECT nope FROM items", "42703"),
        ("SELECT * FROM nope", "42P01"),
        ("CREATE TABLE items (id int)", "42P07"),
        (
            "CREATE INDEX ON items USING hnsw (embedding vector_l2_ops) WITH (m = 1)",
            "22023",
        ),
        (
            "CREATE INDEX ON items USING hnsw (embedding halfvec_l2_ops)",
            "42804",
        ),
        (
            "CREATE INDEX ON items USING ivfflat (embedding vector_l1_ops)",
            "42704",
        ),
        ("CREATE INDEX ON items USING hnsw (b)", "42704"),
        ("SELECT '[1,2,3]'::vector <-> '[1,2]'::vector", "22000"),
        ("SELECT '[1,2,3]'::vector <-> '101'::bit(3)", "42883"),
        ("SELECT 1/0", "22012"),
        (
            "SELECT * FROM items a FULL JOIN items b USING (id)",
            "0A000",
        ),
        ("SAVEPOINT a", "25P01"),
        ("SET hnsw.ef_search = 0", "22023"),
        ("SET nope.x = 1", "42704"),
    ];
    for (sql, code) in cases {
        let e = client.batch_execute(sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), code, "{sql}: {e}");
    }
    client.batch_execute("SELECT 1").await.unwrap();
    shard.stop();
}

async fn balances(c: &tokio_postgres::Client) -> Vec<(i32, i32)> {
    let rows = c
        .query("SELECT id, v FROM acct ORDER BY id", &[])
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

async fn count(c: &tokio_postgres::Client) -> i64 {
    c.query_one("SELECT count(*) FROM acct", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_atomic_and_isolated() {
    let shard = Shard::with_schema("sql-txn", "CREATE TABLE acct (id int PRIMARY KEY, v int);");
    let (a, b) = (shard.connect().await, shard.connect().await);
    a.batch_execute("BEGIN; INSERT INTO acct VALUES (1, 10); INSERT INTO acct VALUES (2, 20);")
        .await
        .unwrap();
    let seen = count(&b).await;
    assert_eq!(seen, 0, "uncommitted rows are invisible");
    let own: i64 = a
        .query_one("SELECT sum(v) FROM acct WHERE id >= $1", &[&1i32])
        .await
        .unwrap()
        .get(0);
    assert_eq!(own, 30, "a transaction reads its own writes");
    a.batch_execute("COMMIT").await.unwrap();
    let seen = count(&b).await;
    assert_eq!(seen, 2);
    a.batch_execute(
        "BEGIN; UPDATE acct SET v = v + 1 WHERE id = 1; DELETE FROM acct WHERE id = 2; ROLLBACK",
    )
    .await
    .unwrap();
    let got = balances(&b).await;
    assert_eq!(got, vec![(1, 10), (2, 20)]);
    let e = a
        .batch_execute("BEGIN; INSERT INTO acct VALUES (3, 30); INSERT INTO acct VALUES (1, 1)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23505");
    let e = a.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02");
    a.batch_execute("COMMIT").await.unwrap();
    let n = count(&b).await;
    assert_eq!(n, 2, "a failed transaction commits nothing");
    a.batch_execute(
        "BEGIN; INSERT INTO acct VALUES (7, 70), (8, 80); UPDATE acct SET v = v + 1 WHERE id >= 7; \
         DELETE FROM acct WHERE id = 8; UPDATE acct SET v = v + 100 WHERE id = 1; COMMIT",
    )
    .await
    .unwrap();
    let got = balances(&b).await;
    assert_eq!(
        got,
        vec![(1, 110), (2, 20), (7, 71)],
        "own rows updated and deleted"
    );
    let stmt = a
        .prepare("UPDATE acct SET v = $1 WHERE id = $2")
        .await
        .unwrap();
    assert_eq!(a.execute(&stmt, &[&99i32, &2i32]).await.unwrap(), 1);
    let v: i32 = b
        .query_one("SELECT v FROM acct WHERE id = $1", &[&2i32])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 99);
    shard.stop();
}

#[test]
fn btree_indexes_serve_equality_and_ranges() {
    let shard = Shard::with_schema(
        "sql-btree",
        "CREATE TABLE items (id bigint PRIMARY KEY, category int, embedding vector(2));
             INSERT INTO items VALUES (1, 1, '[1,1]'), (2, 2, '[2,2]'), (3, 2, '[3,3]'), (4, 3, '[4,4]'), (5, 3, NULL);
             CREATE INDEX ON items (category);",
    );
    let plan = shard
        .psql("EXPLAIN SELECT * FROM items WHERE id = 3;")
        .unwrap();
    assert!(
        plan.contains("Index Scan using items_pkey on items"),
        "{plan}"
    );
    let plan = shard
        .psql("EXPLAIN SELECT id FROM items WHERE category = 2 ORDER BY embedding <-> '[0,0]' LIMIT 1;")
        .unwrap();
    assert!(
        plan.contains("Index Scan using items_category_idx"),
        "{plan}"
    );
    for (sql, want) in [
        ("SELECT id FROM items WHERE id = 3;", "3\n"),
        ("SELECT id FROM items WHERE category = 2 AND id > 2;", "3\n"),
        (
            "SELECT id FROM items WHERE category BETWEEN 2 AND 3 ORDER BY id;",
            "2\n3\n4\n5\n",
        ),
        (
            "SELECT id FROM items WHERE 2 < category ORDER BY id;",
            "4\n5\n",
        ),
        (
            "SELECT id FROM items WHERE category > 2.5 ORDER BY id;",
            "4\n5\n",
        ),
        ("SELECT id FROM items WHERE category = 2.5;", ""),
        (
            "SELECT id FROM items WHERE category = 2 ORDER BY embedding <-> '[0,0]' LIMIT 1;",
            "2\n",
        ),
        (
            "UPDATE items SET category = 9 WHERE id = 4; SELECT id FROM items WHERE category = 9;",
            "4\n",
        ),
        (
            "DELETE FROM items WHERE category = 9; SELECT count(*) FROM items WHERE category >= 3;",
            "1\n",
        ),
    ] {
        check(&shard, sql, want);
    }
    shard.stop();
}

/// The final query the proxy sends to combine partial aggregates: a
/// VALUES list of typed parameters as a derived table with named columns,
/// grouped, aggregated, cast, ordered and limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_derived_table_with_typed_parameters() {
    use tokio_postgres::types::{ToSql, Type};
    let shard = Shard::with_schema("sql-values", "SELECT 1;");
    let client = shard.connect().await;
    let sql = "SELECT c0 AS cat, sum(c1)::int8 AS \"count\", sum(c2)::float8 / sum(c3)::float8 AS m, \
               min(c2), max(c2) FROM (VALUES ($1, $2, $3, $4), ($5, $6, $7, $8), ($9, $10, $11, $12)) \
               AS p(c0, c1, c2, c3) GROUP BY c0 ORDER BY 2 DESC NULLS FIRST, 1 LIMIT 2";
    let types: Vec<Type> = (0..3)
        .flat_map(|_| [Type::INT4, Type::INT8, Type::FLOAT8, Type::INT8])
        .collect();
    let stmt = client.prepare_typed(sql, &types).await.unwrap();
    let cols: Vec<(&str, Type)> = stmt
        .columns()
        .iter()
        .map(|c| (c.name(), c.type_().clone()))
        .collect();
    assert_eq!(
        cols,
        [
            ("cat", Type::INT4),
            ("count", Type::INT8),
            ("m", Type::FLOAT8),
            ("min", Type::FLOAT8),
            ("max", Type::FLOAT8)
        ]
    );
    let (a, b, c) = (
        (1i32, 2i64, 3.0f64, 2i64),
        (2i32, 5i64, 10.0f64, 4i64),
        (1i32, 4i64, 6.0f64, 4i64),
    );
    let params: [&(dyn ToSql + Sync); 12] = [
        &a.0, &a.1, &a.2, &a.3, &b.0, &b.1, &b.2, &b.3, &c.0, &c.1, &c.2, &c.3,
    ];
    let rows = client.query(&stmt, &params).await.unwrap();
    let got: Vec<(i32, i64, f64, f64, f64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(got, [(1, 6, 1.5, 3.0, 6.0), (2, 5, 2.5, 10.0, 10.0)]);

    let offset = client
        .query(
            "SELECT c0 FROM (VALUES ($1::int8), ($2::int8), ($3::int8)) AS p(c0) ORDER BY 1 DESC OFFSET 1",
            &[&7i64, &9i64, &8i64],
        )
        .await
        .unwrap();
    let got: Vec<i64> = offset.iter().map(|r| r.get(0)).collect();
    assert_eq!(got, [8, 7]);

    for (sql, want) in [
        (
            "SELECT count(*), sum(x) FROM (VALUES (1, 'a'), (2, 'b')) AS v(x);",
            "2|3\n",
        ),
        (
            "SELECT y, x + 1 FROM (VALUES (1, 'a'), (2, 'b')) AS v(x, y) ORDER BY 1;",
            "a|2\nb|3\n",
        ),
        (
            "SELECT column1 FROM (VALUES (1), (2.5)) AS v ORDER BY 1;",
            "1\n2.5\n",
        ),
        (
            "SELECT sum(c0)::int8 AS n FROM (VALUES (NULL::int8)) AS p(c0) WHERE false;",
            "\n",
        ),
    ] {
        check(&shard, sql, want);
    }
    let e = client
        .batch_execute("SELECT * FROM (VALUES (1)) AS p(a, b)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42P10", "{e}");
    shard.stop();
}

#[test]
fn timestamp_and_interval_columns_survive_restart_and_kill_9() {
    let shard = Shard::with_schema(
        "sql-datetime-durable",
        "CREATE TABLE jobs (id int PRIMARY KEY, at timestamp, every interval);
         CREATE INDEX ON jobs (at);
         INSERT INTO jobs VALUES (1, '2024-01-15 10:30:00.5', '1 mon -2 days 03:00:00');",
    );
    let dir = shard.dir.clone();
    shard.stop();
    let shard = Shard::start(&dir);
    let want = "1|2024-01-15 10:30:00.5|1 mon -2 days +03:00:00\n";
    check(&shard, "SELECT * FROM jobs;", want);
    check(
        &shard,
        "INSERT INTO jobs VALUES (2, '2023-12-31 23:59:59', '-90 minutes');",
        "",
    );
    shard.kill9();
    let shard = Shard::start(&dir);
    check(
        &shard,
        "SELECT id, at, every FROM jobs WHERE at < '2024-01-01' ORDER BY at;",
        "2|2023-12-31 23:59:59|-01:30:00\n",
    );
    check(&shard, "SELECT * FROM jobs WHERE id = 1;", want);
    shard.stop();
}
