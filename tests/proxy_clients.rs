//! Other clients and session settings through the proxy over two real
//! shards: psql's text output equals one server's, halfvec results carry
//! the proxy's OIDs (whatever the shards' are), and the session's
//! hnsw./ivfflat. settings reach every shard, each session's its own.

mod pg_support;

use pg_support::{items_inserts, psql, text_rows, Fixture};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_halfvec_and_settings() {
    let fx = Fixture::start("").await;
    let proxy = fx.client().await;
    fx.both(
        &proxy,
        "CREATE TABLE items (id int PRIMARY KEY, cat int, embedding vector(8), bits bit(16))",
    )
    .await;
    for insert in items_inserts(600, 8, 300) {
        fx.both(&proxy, &insert).await;
    }
    let sql = "SELECT id, embedding, embedding <=> '[1,1,1,1,2,2,2,2]' AS d FROM items ORDER BY embedding <=> '[1,1,1,1,2,2,2,2]' LIMIT 5";
    let (port, reference) = (fx.proxy.addr.port(), fx.reference.port);
    let (got, want) = tokio::task::spawn_blocking(move || (psql(port, sql), psql(reference, sql)))
        .await
        .unwrap();
    assert_eq!(got, want);

    // halfvec: a shard's OID differs from the proxy's; clients see ours.
    fx.both(&proxy, "CREATE TABLE h (id int PRIMARY KEY, v halfvec(3))")
        .await;
    fx.both(
        &proxy,
        "INSERT INTO h VALUES (1, '[1,2,3]'), (2, '[0,0,1]'), (3, '[5,5,5]')",
    )
    .await;
    let st = proxy
        .prepare("SELECT id, v FROM h ORDER BY v <-> '[0,0,0]' LIMIT 2")
        .await
        .unwrap();
    assert_eq!(st.columns()[1].type_().oid(), 16386);
    assert_eq!(st.columns()[1].type_().name(), "halfvec");
    let rows = proxy.query(&st, &[]).await.unwrap();
    let v: pgvector::HalfVector = rows[0].get(1);
    assert_eq!(
        v.to_vec().iter().map(|x| x.to_f32()).collect::<Vec<_>>(),
        [0.0, 0.0, 1.0]
    );

    // Settings reach the shards: an HNSW index with ef_search = 1 returns
    // fewer rows than LIMIT with iterative scans off.
    proxy
        .batch_execute("CREATE INDEX ON items USING hnsw (embedding vector_l2_ops) WITH (m = 4, ef_construction = 8)")
        .await
        .unwrap();
    proxy.batch_execute("SET hnsw.ef_search = 1").await.unwrap();
    let q = "SELECT id FROM items ORDER BY embedding <-> '[1,2,3,1,2,3,1,2]' LIMIT 40";
    let few = text_rows(&proxy, q).await.unwrap();
    assert!(
        few.len() < 40,
        "ef_search = 1 should cap each shard's result: {}",
        few.len()
    );
    // Another session on the same pooled shard connections has its own
    // (default) setting, and the first keeps its own, turn after turn.
    let other = fx.client().await;
    for _ in 0..3 {
        assert_eq!(text_rows(&other, q).await.unwrap().len(), 40);
        assert_eq!(text_rows(&proxy, q).await.unwrap().len(), few.len());
    }
    proxy.batch_execute("RESET hnsw.ef_search").await.unwrap();
    let all = text_rows(&proxy, q).await.unwrap();
    assert_eq!(all.len(), 40);

    // set_config inside a query changes the session as SET does, and only
    // that session: the pooled shard connection that ran it does not pass
    // the setting on to the next session, as on PostgreSQL, where each
    // connection has its own settings.
    let set = "SELECT set_config('hnsw.ef_search', '1', false)";
    // (The vector literal loads pgvector into a fresh connection first, so
    // its settings exist there.)
    let shown = "SELECT setting FROM pg_settings WHERE name = 'hnsw.ef_search' AND '[1]'::vector IS NOT NULL";
    let reference = [
        fx.reference.connect().await.unwrap(),
        fx.reference.connect().await.unwrap(),
    ];
    for [setter, next] in [[&proxy, &other], [&reference[0], &reference[1]]] {
        assert_eq!(
            text_rows(setter, set).await.unwrap(),
            [[Some("1".to_string())]]
        );
        for _ in 0..3 {
            assert_eq!(
                text_rows(next, shown).await.unwrap(),
                [[Some("40".to_string())]]
            );
            assert_eq!(
                text_rows(setter, shown).await.unwrap(),
                [[Some("1".to_string())]]
            );
        }
    }
}

/// The proxy remembers what Describe answered per statement text; a
/// schema change made behind its back (directly on the shards) is caught
/// at the next Execute with PostgreSQL's `cached plan must not change
/// result type`, and the statement prepared again sees the new columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_describe_made_stale_behind_the_proxy_is_refused_then_renewed() {
    let fx = Fixture::start("").await;
    let proxy = fx.client().await;
    proxy
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, a int); INSERT INTO t VALUES (1, 10), (2, 20)",
        )
        .await
        .unwrap();
    let sql = "SELECT * FROM t WHERE id = $1";
    let rows = proxy.query(sql, &[&1i32]).await.unwrap();
    assert_eq!(rows[0].len(), 2);
    for s in &fx.shards {
        let c = s.connect().await.unwrap();
        c.batch_execute("ALTER TABLE t ADD COLUMN b text DEFAULT 'x'")
            .await
            .unwrap();
    }
    let e = proxy.query(sql, &[&1i32]).await.unwrap_err();
    let db = e.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "0A000");
    assert_eq!(db.message(), "cached plan must not change result type");
    let rows = proxy.query(sql, &[&2i32]).await.unwrap();
    assert_eq!(rows[0].len(), 3);
    assert_eq!(rows[0].get::<_, i32>(1), 20);
    assert_eq!(rows[0].get::<_, String>(2), "x");
}

/// Shards whose schemas diverged (a column added on one shard only, as a
/// half-applied schema change leaves them) answer with different columns:
/// the proxy refuses to put both under one RowDescription.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_with_different_columns_are_refused_not_mixed() {
    let fx = Fixture::start("").await;
    let proxy = fx.client().await;
    proxy
        .batch_execute("CREATE TABLE d (id int PRIMARY KEY, a int)")
        .await
        .unwrap();
    let values: Vec<String> = (0..40).map(|i| format!("({i}, {i})")).collect();
    proxy
        .batch_execute(&format!("INSERT INTO d VALUES {}", values.join(",")))
        .await
        .unwrap();
    let shard = fx.shards[1].connect().await.unwrap();
    shard
        .batch_execute("ALTER TABLE d ADD COLUMN b text DEFAULT 'x'")
        .await
        .unwrap();
    for sql in ["SELECT * FROM d", "SELECT * FROM d ORDER BY id LIMIT 30"] {
        let e = proxy.simple_query(sql).await.unwrap_err();
        let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e}"));
        assert_eq!(db.code().code(), "42804", "{sql}: {}", db.message());
        assert!(
            db.message().contains("different columns"),
            "{}",
            db.message()
        );
    }
    // The session goes on, and a query both shards answer alike works.
    let rows = proxy.query("SELECT count(*) FROM d", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 40);
}

/// A setting a transaction block brought a pooled shard connection to is
/// undone by the block's ROLLBACK on the shard: the connection goes back
/// to the pool at the settings it really has, so the next session gets its
/// own values (PostgreSQL's two sessions as the control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_block_leaves_no_setting_on_a_pooled_connection() {
    settings_seen_around_a_block(
        "rollback-settings",
        &[
            "BEGIN",
            "INSERT INTO rb VALUES (1)",
            "SET hnsw.ef_search = 7",
        ],
        &["ROLLBACK"],
    )
    .await;
}

/// ROLLBACK TO SAVEPOINT undoes the SETs made after the savepoint, in the
/// session (SHOW) and on the block's pinned shard connection, and a
/// `set_config` call leaves nothing on the connection the next session
/// gets (PostgreSQL's two sessions as the control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_follow_rollback_to_savepoint_and_set_config() {
    settings_seen_around_a_block(
        "savepoint-settings",
        &[
            "BEGIN",
            "INSERT INTO rb VALUES (1)",
            "SET hnsw.ef_search = 12",
            "SAVEPOINT a",
            "SET hnsw.ef_search = 7",
            "ROLLBACK TO SAVEPOINT a",
            "SELECT set_config('hnsw.ef_search', '9', false)",
        ],
        &["COMMIT"],
    )
    .await;
}

/// Runs `block` then `end` in one session while another session has
/// `hnsw.ef_search = 7`, the value as both sessions see it on the shard
/// after each step and a few times after the block, through a one-shard
/// proxy and on PostgreSQL; the two must match.
async fn settings_seen_around_a_block(name: &str, block: &[&str], end: &[&str]) {
    let reference = pg_support::PgServer::start().await;
    let proxy = pg_support::embedded_proxy(&format!("proxy-clients-{name}"), 1).await;
    let port = proxy.addr.port();
    let (a, b) = (
        pg_support::connect_to(port).await.unwrap(),
        pg_support::connect_to(port).await.unwrap(),
    );
    let (ra, rb) = (
        reference.connect().await.unwrap(),
        reference.connect().await.unwrap(),
    );
    let shown = "SELECT setting FROM pg_settings WHERE name = 'hnsw.ef_search' AND '[1]'::vector IS NOT NULL";
    let mut answers = Vec::new();
    for (first, second) in [(&a, &b), (&ra, &rb)] {
        first
            .batch_execute(
                "CREATE EXTENSION IF NOT EXISTS vector; CREATE TABLE rb (id int PRIMARY KEY)",
            )
            .await
            .unwrap();
        second
            .batch_execute("SET hnsw.ef_search = 7")
            .await
            .unwrap();
        // The block's statements run on one pinned shard connection; the
        // second session's setting is brought to it.
        let mut seen = Vec::new();
        for statement in block.iter().chain(end) {
            first.batch_execute(statement).await.unwrap();
            seen.push(text_rows(first, shown).await.unwrap());
            seen.push(text_rows(first, "SHOW hnsw.ef_search").await.unwrap());
        }
        for _ in 0..3 {
            seen.push(text_rows(second, shown).await.unwrap());
            seen.push(text_rows(first, shown).await.unwrap());
        }
        answers.push(seen);
    }
    assert_eq!(answers[0], answers[1]);
}
