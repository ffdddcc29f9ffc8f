//! Reference tables through a `pgvshard proxy` process of two shards —
//! `pgvshard shard` processes, and PostgreSQL servers — configured with
//! `reference_tables`, each answer compared with one PostgreSQL server
//! that ran the same statements (the control): writes (multi-row INSERT,
//! ON CONFLICT, UPDATE, DELETE, RETURNING rows once) land on every shard;
//! reads answer once; a sharded table's FOREIGN KEY to a reference table
//! and the reference table's UNIQUE constraint are checked on each shard;
//! a KNN join of the two runs on every shard and is merged by distance,
//! as do queries with subqueries over reference tables;
//! ON DELETE CASCADE from the reference table runs on each shard; a write
//! that fails on one shard leaves nothing on any; concurrent writers
//! neither deadlock nor make the copies differ; and what would give wrong
//! answers is refused with 0A000, naming it.

mod pg_support;
mod shard_support;

use pg_support::{connect_to, text_rows, PgServer, TWO_PHASE};
use shard_support::{fresh_dir, proxy_over, ProxyProcess, Shard};
use tokio_postgres::Client;

const CONFIG: &str = "reference_tables: [coll, public.tags]\n";

const SCHEMA: &str = "CREATE TABLE coll (uuid uuid PRIMARY KEY, name text NOT NULL UNIQUE, meta jsonb);
CREATE TABLE tags (tag text PRIMARY KEY, coll uuid REFERENCES coll (uuid) ON DELETE SET NULL);
CREATE TABLE emb (id text PRIMARY KEY, cid uuid REFERENCES coll (uuid) ON DELETE CASCADE, v vector(2), doc text)";

/// What `sql` answers: its rows as text, or its SQLSTATE.
async fn reply(client: &Client, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    text_rows(client, sql)
        .await
        .map_err(|e| shard_support::sqlstate(&e))
}

fn uuid(n: u32) -> String {
    format!("'00000000-0000-4000-8000-{n:012}'")
}

/// Rows of embeddings 1..=n in collections 1 and 2, as VALUES.
fn embeddings(n: u32) -> String {
    (1..=n)
        .map(|i| {
            let v = format!("[{}, {}]", i % 7, (i * 3) % 5);
            format!("('e{i}', {}, '{v}', 'doc {i}')", uuid(1 + i % 2))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The proxy, its shards' ports and the control.
struct Setup {
    proxy: ProxyProcess,
    shards: Vec<u16>,
    control: PgServer,
}

impl Setup {
    /// Runs `sql` through the proxy and on the control; both must answer
    /// alike.
    async fn same(&self, sql: &str) {
        let proxy = connect_to(self.proxy.port).await.expect("proxy");
        let control = connect_to(self.control.port).await.expect("control");
        let want = reply(&control, sql).await;
        assert_eq!(reply(&proxy, sql).await, want, "{sql}");
    }

    /// What each shard answers to `sql`, directly.
    async fn on_shards(&self, sql: &str) -> Vec<Result<Vec<Vec<Option<String>>>, String>> {
        let mut out = Vec::new();
        for port in &self.shards {
            let shard = connect_to(*port).await.expect("shard");
            out.push(reply(&shard, sql).await);
        }
        out
    }

    /// Every shard holds what the control holds for `sql` (a reference
    /// table's copy).
    async fn every_shard_has(&self, sql: &str) {
        let control = connect_to(self.control.port).await.expect("control");
        let want = reply(&control, sql).await;
        for (i, got) in self.on_shards(sql).await.into_iter().enumerate() {
            assert_eq!(got, want, "shard {i}: {sql}");
        }
    }
}

async fn over_pgvshard_shards(name: &str) -> (Setup, Vec<Shard>) {
    let shards: Vec<Shard> = (0..2)
        .map(|i| Shard::start(&fresh_dir(&format!("{name}-s{i}"))))
        .collect();
    let ports: Vec<u16> = shards.iter().map(|s| s.port).collect();
    let setup = Setup {
        proxy: proxy_over(name, &ports, CONFIG),
        shards: ports,
        control: PgServer::start().await,
    };
    (setup, shards)
}

async fn over_postgres_shards(name: &str) -> (Setup, Vec<PgServer>) {
    let (a, b, control) = tokio::join!(
        PgServer::start_with(TWO_PHASE),
        PgServer::start_with(TWO_PHASE),
        PgServer::start()
    );
    let ports = vec![a.port, b.port];
    let setup = Setup {
        proxy: proxy_over(name, &ports, CONFIG),
        shards: ports,
        control,
    };
    (setup, vec![a, b])
}

/// Writes, reads, constraints, the KNN join and the cascade, compared
/// with the control statement by statement.
async fn writes_reads_and_joins(s: &Setup) {
    for sql in SCHEMA.split(";\n") {
        s.same(sql).await;
    }
    let statements = [
        format!(
            "INSERT INTO coll VALUES ({}, 'one', '{{\"n\": 1}}'), ({}, 'two', NULL), ({}, 'three', '{{}}') RETURNING name, meta",
            uuid(1),
            uuid(2),
            uuid(3)
        ),
        format!(
            "INSERT INTO coll VALUES ({}, 'two', '{{\"n\": 2}}') ON CONFLICT (name) DO UPDATE SET meta = excluded.meta RETURNING uuid, name, meta",
            uuid(9)
        ),
        format!("INSERT INTO coll VALUES ({}, 'one', NULL)", uuid(4)),
        format!(
            "INSERT INTO coll VALUES ({}, 'three', NULL) ON CONFLICT DO NOTHING RETURNING name",
            uuid(5)
        ),
        "UPDATE coll SET meta = '{\"n\": 3}' WHERE name = 'three' RETURNING name, meta".into(),
        "SELECT name, meta FROM coll ORDER BY name".into(),
        "SELECT count(*) FROM coll".into(),
        format!(
            "INSERT INTO tags VALUES ('a', {}), ('b', {}), ('c', NULL)",
            uuid(1),
            uuid(3)
        ),
        "SELECT t.tag, c.name FROM tags t LEFT JOIN coll c ON c.uuid = t.coll ORDER BY t.tag".into(),
        format!("INSERT INTO emb VALUES {}", embeddings(40)),
        format!("INSERT INTO emb VALUES ('bad', {}, '[1,1]', 'x')", uuid(7)),
        "SELECT count(*) FROM emb".into(),
        "SELECT e.id, e.v <=> '[1, 0.5]' AS d, c.name FROM emb e JOIN coll c ON e.cid = c.uuid WHERE c.name = 'one' ORDER BY d, e.id LIMIT 5".into(),
        "SELECT e.id, c.name, c.meta FROM emb e JOIN coll c ON e.cid = c.uuid ORDER BY e.v <-> '[3, 3]', e.id LIMIT 4 OFFSET 2".into(),
        "SELECT c.name, count(*) FROM emb e, coll c WHERE e.cid = c.uuid GROUP BY c.name ORDER BY c.name".into(),
        "SELECT e.id FROM emb e LEFT JOIN coll c ON e.cid = c.uuid WHERE c.name IS NULL OR c.name = 'two' ORDER BY e.id".into(),
        "SELECT id FROM emb WHERE cid IN (SELECT uuid FROM coll WHERE name = 'two') ORDER BY id LIMIT 6".into(),
        "SELECT count(*) FROM emb e WHERE EXISTS (SELECT 1 FROM coll c WHERE c.uuid = e.cid AND c.meta IS NOT NULL)".into(),
        "SELECT id, (SELECT name FROM coll c WHERE c.uuid = e.cid) FROM emb e WHERE v <-> '[1,1]' < 1.5 ORDER BY id".into(),
        "DELETE FROM coll WHERE name = 'one' RETURNING name".into(),
        "SELECT count(*), min(id) FROM emb".into(),
        "SELECT tag, coll FROM tags ORDER BY tag".into(),
        format!(
            "BEGIN; INSERT INTO coll VALUES ({}, 'four', NULL); SELECT name FROM coll ORDER BY name; INSERT INTO emb VALUES ('f1', {}, '[1,1]', 'f'); ROLLBACK",
            uuid(6),
            uuid(6)
        ),
        format!(
            "BEGIN; INSERT INTO coll VALUES ({}, 'five', NULL); UPDATE coll SET name = 'deux' WHERE name = 'two'; COMMIT",
            uuid(8)
        ),
        "SELECT uuid, name, meta FROM coll ORDER BY name".into(),
    ];
    for sql in &statements {
        s.same(sql).await;
    }
    // One copy of the table, not one per shard.
    let copied = |port: u16| async move {
        let client = connect_to(port).await.expect("connect");
        let stream = client.copy_out("COPY coll TO STDOUT").await.expect("COPY");
        let chunks: Vec<_> = futures_util::StreamExt::collect(stream).await;
        let bytes: Vec<u8> = chunks
            .into_iter()
            .flat_map(|c| c.expect("data").to_vec())
            .collect();
        let mut lines: Vec<String> = String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    assert_eq!(copied(s.proxy.port).await, copied(s.control.port).await);
    s.every_shard_has("SELECT uuid, name, meta FROM coll ORDER BY name")
        .await;
    s.every_shard_has("SELECT tag, coll FROM tags ORDER BY tag")
        .await;
    // The sharded table's rows are split: every shard holds some, and
    // together they are the control's.
    let counts: Vec<i64> = s
        .on_shards("SELECT count(*) FROM emb")
        .await
        .into_iter()
        .map(|r| r.expect("count")[0][0].as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
    assert_eq!(counts.iter().sum::<i64>(), 20, "{counts:?}");
}

/// A write to a reference table that fails on the second shard (whose
/// copy was changed behind the proxy's back) leaves nothing on the first,
/// which ran it first; a write whose row counts differ between the
/// copies fails the same way.
async fn failed_writes_leave_nothing(s: &Setup) {
    for sql in SCHEMA.split(";\n") {
        s.same(sql).await;
    }
    let second = connect_to(s.shards[1]).await.expect("shard 1");
    second
        .batch_execute(&format!(
            "INSERT INTO coll VALUES ({}, 'clash', NULL)",
            uuid(1)
        ))
        .await
        .expect("a row on shard 1 only");
    let proxy = connect_to(s.proxy.port).await.expect("proxy");
    let insert = format!(
        "INSERT INTO coll VALUES ({}, 'fresh', NULL), ({}, 'clash', NULL)",
        uuid(2),
        uuid(3)
    );
    assert_eq!(reply(&proxy, &insert).await, Err("23505".into()));
    let block = format!(
        "BEGIN; INSERT INTO coll VALUES ({}, 'clash', NULL)",
        uuid(4)
    );
    assert_eq!(reply(&proxy, &block).await, Err("23505".into()));
    proxy.batch_execute("ROLLBACK").await.expect("ROLLBACK");
    let update = "UPDATE coll SET meta = '{\"changed\": true}'";
    let e = proxy.simple_query(update).await.expect_err(update);
    let e = e.as_db_error().expect("a database error");
    assert_eq!(e.code().code(), "XX000");
    assert!(
        e.message()
            .starts_with("the copies of a reference table differ: shard \"s0\" answered UPDATE 0, shard \"s1\" UPDATE 1"),
        "{}",
        e.message()
    );
    let rows = s
        .on_shards("SELECT name, meta FROM coll ORDER BY name")
        .await;
    assert_eq!(rows[0], Ok(vec![]), "shard 0 keeps nothing");
    assert_eq!(
        rows[1],
        Ok(vec![vec![Some("clash".into()), None]]),
        "shard 1 keeps only its own row"
    );
    for port in &s.shards {
        let shard = connect_to(*port).await.expect("shard");
        let prepared = reply(&shard, "SELECT count(*) FROM pg_prepared_xacts").await;
        assert_eq!(prepared, Ok(vec![vec![Some("0".into())]]), "port {port}");
    }
}

/// `ALTER TABLE … ADD` of a FOREIGN KEY to a reference table and of a
/// UNIQUE constraint on one pass the proxy and hold on each shard (a
/// `pgvshard shard` has no ALTER TABLE … ADD CONSTRAINT yet).
async fn constraints_added_later(s: &Setup) {
    for sql in [
        "ALTER TABLE emb ADD COLUMN tag text REFERENCES tags (tag) ON DELETE SET NULL",
        "ALTER TABLE coll ADD COLUMN n int DEFAULT 7, ADD CONSTRAINT coll_n UNIQUE (n, name)",
        "INSERT INTO emb VALUES ('t1', NULL, '[1,1]', 'x', 'nosuch')",
        "INSERT INTO emb VALUES ('t1', NULL, '[1,1]', 'x', 'b'), ('t2', NULL, '[2,1]', 'y', 'b'), ('t3', NULL, '[3,1]', 'z', 'c')",
        "DELETE FROM tags WHERE tag = 'b'",
        "SELECT id, tag FROM emb WHERE id LIKE 't%' ORDER BY id",
        "SELECT name, n FROM coll ORDER BY name",
    ] {
        s.same(sql).await;
    }
}

/// Clients writing the same reference rows at once through the proxy
/// neither deadlock (each statement takes the first shard's row locks
/// before the others') nor leave the copies different. A pgvshard shard
/// may refuse a conflicting transaction with 40001 (first committer
/// wins); PostgreSQL shards make it wait.
async fn concurrent_writes_keep_the_copies_equal(s: &Setup, conflicts_may_fail: bool) {
    let proxy = connect_to(s.proxy.port).await.expect("proxy");
    proxy
        .batch_execute(&format!(
            "INSERT INTO coll VALUES ({}, 'hot', NULL)",
            uuid(500)
        ))
        .await
        .expect("the hot row");
    let writers = (0..4u32).map(|w| {
        let port = s.proxy.port;
        tokio::spawn(async move {
            let client = connect_to(port).await.expect("proxy");
            let mut failed = Vec::new();
            for i in 0..12u32 {
                let statements = [
                    format!("UPDATE coll SET meta = '{{\"w\": {w}, \"i\": {i}}}' WHERE name = 'hot'"),
                    format!("INSERT INTO coll VALUES ({}, 'w{w}-{i}', NULL)", uuid(600 + w * 100 + i)),
                    format!("BEGIN; UPDATE coll SET name = name WHERE name = 'hot'; INSERT INTO tags VALUES ('w{w}-{i}', {}); COMMIT", uuid(500)),
                ];
                for sql in statements {
                    if let Err(e) = client.batch_execute(&sql).await {
                        failed.push(shard_support::sqlstate(&e));
                        client.batch_execute("ROLLBACK").await.ok();
                    }
                }
            }
            failed
        })
    });
    let all = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        futures_util::future::join_all(writers),
    )
    .await
    .expect("concurrent writers to a reference table finish (no deadlock)");
    for failed in all {
        let failed = failed.expect("writer");
        let allowed = |code: &String| conflicts_may_fail && code == "40001";
        assert!(failed.iter().all(allowed), "{failed:?}");
    }
    for sql in [
        "SELECT uuid, name, meta FROM coll ORDER BY name",
        "SELECT tag, coll FROM tags ORDER BY tag",
    ] {
        let copies = s.on_shards(sql).await;
        assert!(copies[0].as_ref().is_ok_and(|rows| rows.len() > 1), "{sql}");
        assert_eq!(copies[0], copies[1], "{sql}");
    }
}

/// What a reference table cannot do right across shards is refused,
/// naming it.
async fn refusals(s: &Setup) {
    for sql in SCHEMA.split(";\n") {
        s.same(sql).await;
    }
    let proxy = connect_to(s.proxy.port).await.expect("proxy");
    for (sql, message) in [
        (
            "CREATE TABLE other (id int PRIMARY KEY, e text REFERENCES emb (id))",
            "a FOREIGN KEY constraint to sharded table emb is not supported across shards",
        ),
        (
            "CREATE TABLE other (id int PRIMARY KEY, name text UNIQUE)",
            "a UNIQUE constraint without the shard key column (name) is not supported across shards",
        ),
        (
            "CREATE TABLE tags (tag text PRIMARY KEY, e text REFERENCES emb (id))",
            "a FOREIGN KEY from reference table tags to sharded table emb is not supported across shards",
        ),
        (
            "CREATE TABLE public.tags (id bigserial PRIMARY KEY)",
            "a serial column (id) in reference table public.tags is not supported: each shard would compute its own value",
        ),
        (
            "ALTER TABLE emb ADD COLUMN tag text REFERENCES emb (id)",
            "a FOREIGN KEY constraint to sharded table emb is not supported across shards",
        ),
        (
            "ALTER TABLE emb ADD CONSTRAINT emb_doc UNIQUE (doc)",
            "a UNIQUE constraint without the shard key column (doc) is not supported across shards",
        ),
        (
            "ALTER TABLE coll ALTER COLUMN meta SET DEFAULT to_jsonb(clock_timestamp())",
            "a column default calling clock_timestamp() (meta) in reference table coll is not supported: each shard would compute its own value",
        ),
        (
            "SELECT c.name, count(e.id) FROM coll c LEFT JOIN emb e ON e.cid = c.uuid GROUP BY c.name",
            "a LEFT JOIN that keeps reference table rows unmatched by sharded table emb is not supported across shards",
        ),
        (
            "SELECT name FROM coll WHERE uuid IN (SELECT cid FROM emb)",
            "a subquery in an expression, or a subquery or WITH query with LIMIT, DISTINCT, GROUP BY, aggregates or window functions, is not supported across shards (each shard would compute it over its own rows only)",
        ),
        (
            "WITH e AS (SELECT cid FROM emb) SELECT c.name FROM coll c JOIN e ON e.cid = c.uuid",
            "a query whose FROM reads reference tables only, with sharded table emb in a subquery or WITH query, is not supported across shards",
        ),
        (
            "DELETE FROM coll WHERE uuid NOT IN (SELECT cid FROM emb)",
            "a write to reference table coll that reads sharded table emb is not supported across shards",
        ),
        (
            "UPDATE coll SET meta = to_jsonb(now())",
            "now() in a write to reference table coll is not supported across shards",
        ),
        (
            "COPY coll FROM STDIN",
            "COPY FROM into reference table coll is not supported through the proxy",
        ),
    ] {
        let e = proxy.simple_query(sql).await.expect_err(sql);
        let e = e.as_db_error().expect("a database error");
        assert_eq!((e.code().code(), e.message()), ("0A000", message), "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_tables_over_pgvshard_shards() {
    let (setup, _shards) = over_pgvshard_shards("reference-ours").await;
    writes_reads_and_joins(&setup).await;
    concurrent_writes_keep_the_copies_equal(&setup, true).await;
    let (setup, _shards) = over_pgvshard_shards("reference-ours-failed").await;
    failed_writes_leave_nothing(&setup).await;
    refusals(&setup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_tables_over_postgres_shards() {
    let (setup, _shards) = over_postgres_shards("reference-pg").await;
    writes_reads_and_joins(&setup).await;
    constraints_added_later(&setup).await;
    concurrent_writes_keep_the_copies_equal(&setup, false).await;
    let (setup, _shards) = over_postgres_shards("reference-pg-failed").await;
    failed_writes_leave_nothing(&setup).await;
    refusals(&setup).await;
}
