//! Routing through the proxy over two real PostgreSQL + pgvector shards:
//! INSERT split by slot with RETURNING in the client's order, key-routed
//! statements that need only the owning shard, aggregates equal to one
//! server's, transactions pinned to one shard, broadcast DDL with partial
//! failure, and a shard that is down.

mod pg_support;

use std::time::{Duration, Instant};

use pg_support::{items_inserts, text_rows, Fixture};

const SCHEMA: &str =
    "CREATE TABLE items (id int PRIMARY KEY, cat int, embedding vector(8), bits bit(16))";

async fn loaded(rows: usize) -> (Fixture, tokio_postgres::Client) {
    let fx = Fixture::start("").await;
    let client = fx.client().await;
    fx.both(&client, SCHEMA).await;
    for insert in items_inserts(rows, 8, 200) {
        fx.both(&client, &insert).await;
    }
    (fx, client)
}

/// The shard (0 or 1) that holds `id`.
async fn owner(fx: &Fixture, id: i32) -> usize {
    for (i, s) in fx.shards.iter().enumerate() {
        let c = s.connect().await.unwrap();
        let n: i64 = c
            .query_one("SELECT count(*) FROM items WHERE id = $1", &[&id])
            .await
            .unwrap()
            .get(0);
        if n == 1 {
            return i;
        }
    }
    panic!("id {id} is on no shard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_splits_by_slot_and_returns_rows_in_client_order() {
    let (fx, proxy) = loaded(0).await;
    let rows = proxy
        .simple_query(
            "INSERT INTO items (id, cat) VALUES (10, 1), (11, 1), (12, 1), (13, 1), (14, 1), (15, 1) RETURNING id, cat",
        )
        .await
        .unwrap();
    let ids: Vec<String> = rows
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["10", "11", "12", "13", "14", "15"]);
    let tag = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::CommandComplete(n) => Some(*n),
        _ => None,
    });
    assert_eq!(tag, Some(6));
    let counts = fx.shard_counts("items").await;
    assert_eq!(counts.iter().sum::<i64>(), 6);
    assert!(
        counts.iter().all(|&c| c > 0),
        "both shards got rows: {counts:?}"
    );
    // Prepared INSERT with a binary key parameter lands where the literal would.
    let st = proxy
        .prepare("INSERT INTO items (id, cat) VALUES ($1, $2)")
        .await
        .unwrap();
    proxy.execute(&st, &[&20i32, &2i32]).await.unwrap();
    let lit_owner = owner(&fx, 20).await;
    proxy
        .batch_execute("DELETE FROM items WHERE id = 20")
        .await
        .unwrap();
    proxy
        .batch_execute("INSERT INTO items (id, cat) VALUES (20, 2)")
        .await
        .unwrap();
    assert_eq!(owner(&fx, 20).await, lit_owner);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_routed_statements_need_only_the_owning_shard() {
    let (mut fx, proxy) = loaded(200).await;
    let id = 77;
    let home = owner(&fx, id).await;
    // SHOW pgvshard.shards counts each shard's rows (PostgreSQL's
    // statistics trail the writes by a moment).
    let counts: Vec<Option<String>> = fx
        .shard_counts("items")
        .await
        .iter()
        .map(|n| Some(n.to_string()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shown = text_rows(&proxy, "SHOW pgvshard.shards").await.unwrap();
        let rows: Vec<Option<String>> = shown.iter().map(|r| r[4].clone()).collect();
        if rows == counts {
            break;
        }
        assert!(Instant::now() < deadline, "{rows:?} vs {counts:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let plan = text_rows(
        &proxy,
        &format!("EXPLAIN SELECT * FROM items WHERE id = {id}"),
    )
    .await
    .unwrap();
    assert_eq!(
        plan[0][0].as_deref(),
        Some(format!("pgvshard route: single shard (key) on s{home}").as_str())
    );
    // With the other shard down, statements on this key still work.
    fx.shards[1 - home].stop();
    let row = proxy
        .query_one("SELECT cat FROM items WHERE id = $1", &[&id])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 77 % 8);
    let n = proxy
        .execute("UPDATE items SET cat = 100 WHERE id = $1", &[&id])
        .await
        .unwrap();
    assert_eq!(n, 1);
    let n = proxy
        .execute(&format!("DELETE FROM items WHERE id IN ({id})"), &[])
        .await
        .unwrap();
    assert_eq!(n, 1);
    // A statement that needs every shard fails fast, naming the shard.
    let started = Instant::now();
    let e = proxy
        .simple_query("SELECT count(*) FROM items")
        .await
        .unwrap_err();
    let db = e.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "08006");
    assert!(
        db.message().contains(&format!("s{}", 1 - home)),
        "{}",
        db.message()
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // The session survives, and partial results can be asked for.
    proxy
        .batch_execute("SET pgvshard.allow_partial_results = on")
        .await
        .unwrap();
    let rows = text_rows(&proxy, "SELECT count(*) FROM items")
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let shards = text_rows(&proxy, "SHOW pgvshard.shards").await.unwrap();
    assert_eq!(shards.len(), 2);
    assert!(
        shards[1 - home][2].as_deref().unwrap().starts_with("down"),
        "{shards:?}"
    );
    assert_eq!(shards[home][2].as_deref(), Some("up"));
    assert_eq!(shards[1 - home][4], None, "no row count from a down shard");
    assert!(shards[home][4].is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_and_sorted_scans_equal_one_server() {
    let (fx, proxy) = loaded(1000).await;
    let reference = fx.reference.connect().await.unwrap();
    for sql in [
        "SELECT count(*) FROM items",
        "SELECT count(*), sum(id), avg(id), min(id), max(id) FROM items",
        "SELECT cat, count(*), sum(id), avg(id), min(id), max(id) FROM items GROUP BY cat ORDER BY cat",
        "SELECT cat, count(*) AS n FROM items WHERE id > 100 GROUP BY cat ORDER BY n DESC, cat LIMIT 3",
        "SELECT avg(cat) FROM items WHERE id < 0",
        "SELECT id, cat FROM items ORDER BY cat DESC, id LIMIT 15 OFFSET 3",
        "SELECT id FROM items WHERE cat = 2 ORDER BY id",
    ] {
        let want = text_rows(&reference, sql).await.unwrap();
        let got = text_rows(&proxy, sql).await.unwrap();
        assert_eq!(got, want, "{sql}");
    }
    let e = proxy
        .simple_query("SELECT string_agg(id::text, ',') FROM items")
        .await
        .unwrap_err();
    assert_eq!(e.as_db_error().unwrap().code().code(), "0A000");
    // Each shard would rank only its own rows; on one shard (by key) the
    // ranks are the whole table's.
    let window = "SELECT id, rank() OVER (ORDER BY cat, id) FROM items ORDER BY cat, id LIMIT 5";
    let e = proxy.simple_query(window).await.unwrap_err();
    assert_eq!(e.as_db_error().unwrap().code().code(), "0A000", "{e}");
    let by_key = "SELECT id, row_number() OVER (ORDER BY id) FROM items WHERE id = 7";
    let want = text_rows(&reference, by_key).await.unwrap();
    assert_eq!(text_rows(&proxy, by_key).await.unwrap(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_write_on_several_shards() {
    let (fx, proxy) = loaded(0).await;
    // Two keys on different shards.
    proxy
        .batch_execute("INSERT INTO items (id, cat) VALUES (1, 0), (2, 0), (3, 0), (4, 0)")
        .await
        .unwrap();
    let mut by_shard = [Vec::new(), Vec::new()];
    for id in 1..=4 {
        by_shard[owner(&fx, id).await].push(id);
    }
    let (a, b) = (by_shard[0][0], by_shard[1][0]);
    proxy.batch_execute("DELETE FROM items").await.unwrap();
    // One shard: works and commits.
    proxy
        .batch_execute(&format!(
            "BEGIN; INSERT INTO items (id, cat) VALUES ({a}, 1); UPDATE items SET cat = 2 WHERE id = {a}; COMMIT"
        ))
        .await
        .unwrap();
    let rows = text_rows(&proxy, &format!("SELECT cat FROM items WHERE id = {a}"))
        .await
        .unwrap();
    assert_eq!(rows, vec![vec![Some("2".to_string())]]);
    // A second shard joins the transaction; it reads its writes on both,
    // and ROLLBACK leaves nothing on either.
    proxy.batch_execute("BEGIN").await.unwrap();
    proxy
        .batch_execute(&format!(
            "INSERT INTO items (id, cat) VALUES ({}, 1)",
            by_shard[0][1]
        ))
        .await
        .unwrap();
    proxy
        .batch_execute(&format!("INSERT INTO items (id, cat) VALUES ({b}, 1)"))
        .await
        .unwrap();
    let seen = text_rows(&proxy, "SELECT count(*) FROM items")
        .await
        .unwrap();
    assert_eq!(seen, vec![vec![Some("3".to_string())]]);
    proxy.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(fx.shard_counts("items").await.iter().sum::<i64>(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_broadcast_names_each_shard_state_and_converges() {
    let fx = Fixture::start("").await;
    let proxy = fx.client().await;
    let s1 = fx.shards[1].connect().await.unwrap();
    s1.batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    let e = proxy
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap_err();
    let db = e.as_db_error().unwrap();
    assert_eq!(db.code().code(), "42P07");
    assert!(db.message().contains("s1"), "{}", db.message());
    let detail = db.detail().unwrap();
    assert!(
        detail.contains("s0: applied") && detail.contains("s1: failed"),
        "{detail}"
    );
    proxy
        .batch_execute("CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY)")
        .await
        .unwrap();
    proxy.batch_execute("CREATE INDEX ON t (id)").await.unwrap();
    let pools = text_rows(&proxy, "SHOW pgvshard.pools").await.unwrap();
    assert_eq!(pools.len(), 2);
}

/// Rows of a query as text, through the extended protocol (the client
/// prepares, binds and executes it each time).
async fn extended_rows(
    client: &tokio_postgres::Client,
    sql: &str,
    id: i32,
) -> Vec<Vec<Option<String>>> {
    let rows = client
        .query(sql, &[&id])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| {
                    let ty = r.columns()[i].type_();
                    if *ty == tokio_postgres::types::Type::INT4 {
                        r.get::<_, Option<i32>>(i).map(|v| v.to_string())
                    } else {
                        r.get::<_, Option<String>>(i)
                    }
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_kept_prepared_on_shards_follow_schema_changes() {
    // The proxy keeps each statement prepared on its shard connections;
    // after DDL through the proxy the same text must see the new columns
    // and types, as the reference server does (a statement prepared on
    // PostgreSQL before the change would fail with 0A000).
    let fx = Fixture::start("").await;
    let proxy = fx.client().await;
    let reference = fx.reference.connect().await.unwrap();
    fx.both(&proxy, "CREATE TABLE t (id int PRIMARY KEY, v int)")
        .await;
    fx.both(&proxy, "INSERT INTO t VALUES (1, 10), (2, 20), (3, 30)")
        .await;
    let sql = "SELECT * FROM t WHERE id = $1";
    let changes = [
        "ALTER TABLE t ADD COLUMN w int DEFAULT 7",
        "ALTER TABLE t ALTER COLUMN v TYPE text",
        "ALTER TABLE t DROP COLUMN w",
    ];
    for change in std::iter::once(None).chain(changes.map(Some)) {
        if let Some(change) = change {
            fx.both(&proxy, change).await;
        }
        // Enough executions for every pooled connection used to keep it.
        for id in [1, 2, 3, 1, 2, 3, 1, 2, 3] {
            assert_eq!(
                extended_rows(&proxy, sql, id).await,
                extended_rows(&reference, sql, id).await,
                "after {change:?}, id {id}"
            );
        }
    }
}
