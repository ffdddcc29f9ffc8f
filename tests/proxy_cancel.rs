//! Canceling a statement through the proxy stops it on the shards too: a
//! client's CancelRequest and the proxy's own `statement_timeout` answer
//! 57014 at once, and every shard that was running the statement gets a
//! CancelRequest of its own (a real PostgreSQL keeps running a query after
//! its client's socket closes, so closing the connection is not enough).
//! Checked on two real PostgreSQL + pgvector shards through
//! pg_stat_activity, and on the embedded binary's in-process shards
//! through pg_stat_progress_create_index; afterwards the session and the
//! pooled connections keep working.

mod embedded_support;
mod pg_support;

use std::time::{Duration, Instant};

use embedded_support::{load_vectors, EmbeddedProxy};
use pg_support::{Fixture, PgServer};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

const SLEEPY: &str = "SELECT id FROM items WHERE pg_sleep(30) IS NOT NULL";

/// Backends of `shard` (other than the asking one) running pg_sleep now.
async fn sleeping(shard: &PgServer) -> Vec<i32> {
    let c = shard.connect().await.expect("shard");
    c.query(
        "SELECT pid FROM pg_stat_activity WHERE state = 'active' \
         AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()",
        &[],
    )
    .await
    .expect("pg_stat_activity")
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Waits (at most 10 s) until every shard runs the sleep; their pids.
async fn all_sleeping(fx: &Fixture) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut pids = Vec::new();
        for s in &fx.shards {
            pids.extend(sleeping(s).await.first().copied());
        }
        if pids.len() == fx.shards.len() {
            return pids;
        }
        assert!(
            Instant::now() < deadline,
            "the sleep reached shards {pids:?} only"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (at most 3 s) until no shard runs the sleep any more.
async fn none_sleeping(fx: &Fixture) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut left = Vec::new();
        for s in &fx.shards {
            left.extend(sleeping(s).await);
        }
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "shard backends {left:?} still run pg_sleep after the cancel"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_canceled(result: Result<impl std::fmt::Debug, tokio_postgres::Error>, message: &str) {
    let e = result.expect_err("the statement was canceled");
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {e:?}"));
    assert_eq!(db.code(), &SqlState::QUERY_CANCELED, "{db:?}");
    assert_eq!(db.message(), message);
}

/// Runs `statement`, which statement_timeout must stop within `limit`;
/// returns how long it ran.
async fn assert_times_out_within<T: std::fmt::Debug>(
    limit: Duration,
    statement: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Duration {
    let t = Instant::now();
    let result = statement.await;
    let took = t.elapsed();
    assert!(took < limit, "{took:?}");
    assert_canceled(result, "canceling statement due to statement timeout");
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_statement_timeout_stop_the_query_on_every_real_shard() {
    let fx = Fixture::start("").await;
    let proxy = fx.client().await;
    proxy
        .batch_execute("CREATE TABLE items (id int PRIMARY KEY, embedding vector(3))")
        .await
        .unwrap();
    let values: Vec<String> = (0..20).map(|i| format!("({i}, '[{i},1,1]')")).collect();
    proxy
        .batch_execute(&format!("INSERT INTO items VALUES {}", values.join(", ")))
        .await
        .unwrap();
    assert!(fx.shard_counts("items").await.iter().all(|&n| n > 0));

    // A client's CancelRequest.
    let token = proxy.cancel_token();
    let (result, (canceled_at, pids)) = tokio::join!(proxy.simple_query(SLEEPY), async {
        let pids = all_sleeping(&fx).await;
        token.cancel_query(NoTls).await.expect("cancel request");
        (Instant::now(), pids)
    });
    assert!(canceled_at.elapsed() < Duration::from_secs(1));
    assert_canceled(result, "canceling statement due to user request");
    none_sleeping(&fx).await;
    // The shard connections were drained and pooled again, not closed.
    for (shard, pid) in fx.shards.iter().zip(&pids) {
        let c = shard.connect().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let state: Option<String> = c
                .query_opt("SELECT state FROM pg_stat_activity WHERE pid = $1", &[pid])
                .await
                .unwrap()
                .and_then(|r| r.get(0));
            if state.as_deref() == Some("idle") {
                break;
            }
            assert!(Instant::now() < deadline, "backend {pid} is {state:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // The proxy's statement_timeout, on the extended protocol.
    proxy
        .batch_execute("SET statement_timeout = '200ms'")
        .await
        .unwrap();
    let sleepy = proxy.query(
        "SELECT id FROM items WHERE pg_sleep($1) IS NOT NULL",
        &[&30f64],
    );
    let took = assert_times_out_within(Duration::from_secs(1), sleepy).await;
    assert!(took >= Duration::from_millis(150), "{took:?}");
    none_sleeping(&fx).await;

    // The session goes on.
    proxy
        .batch_execute("RESET statement_timeout")
        .await
        .unwrap();
    let n: i64 = proxy
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 20);

    // A simple Query of several statements times each on its own, as
    // PostgreSQL does: the SET at its start applies to the sleep after it
    // (about ten rows of 0.2 s per shard without it).
    let several =
        "SET statement_timeout = '200ms'; SELECT id FROM items WHERE pg_sleep(0.2) IS NOT NULL";
    let postgres = fx.shards[0].connect().await.unwrap();
    for client in [&postgres, &proxy] {
        assert_times_out_within(Duration::from_secs(1), client.simple_query(several)).await;
        client
            .batch_execute("RESET statement_timeout")
            .await
            .unwrap();
    }
    none_sleeping(&fx).await;
}

/// Index builds running on the in-process shards (every shard's rows).
async fn builds(client: &tokio_postgres::Client) -> usize {
    client
        .query("SELECT phase FROM pg_stat_progress_create_index", &[])
        .await
        .expect("progress view")
        .len()
}

/// Waits until at least `want` builds run (none, for `want` 0).
async fn wait_builds(client: &tokio_postgres::Client, want: usize, within: Duration) {
    let deadline = Instant::now() + within;
    let reached = |n: usize| if want == 0 { n == 0 } else { n >= want };
    while !reached(builds(client).await) {
        assert!(
            Instant::now() < deadline,
            "pg_stat_progress_create_index did not reach {want} rows"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const SLOW_BUILD: &str =
    "CREATE INDEX slow ON t USING hnsw (embedding vector_l2_ops) WITH (m = 64, ef_construction = 1000)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceled_index_build_stops_on_the_in_process_shards() {
    let proxy = EmbeddedProxy::start("cancel-build");
    let client = proxy.connect().await;
    let watcher = proxy.connect().await;
    load_vectors(&client, "t", 6000, 64).await;

    // A client's CancelRequest while the build runs.
    let token = client.cancel_token();
    let (result, canceled_at) = tokio::join!(client.batch_execute(SLOW_BUILD), async {
        // Every shard builds its part, and the view shows each of them.
        wait_builds(&watcher, 4, Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(NoTls).await.expect("cancel request");
        Instant::now()
    });
    assert!(canceled_at.elapsed() < Duration::from_secs(1));
    assert_canceled(result, "canceling statement due to user request");
    wait_builds(&watcher, 0, Duration::from_secs(1)).await;

    // statement_timeout on the same build.
    client
        .batch_execute("SET statement_timeout = '500ms'")
        .await
        .unwrap();
    assert_times_out_within(
        Duration::from_millis(1500),
        client.batch_execute(SLOW_BUILD),
    )
    .await;
    wait_builds(&watcher, 0, Duration::from_secs(1)).await;

    // Nothing was built, and the session goes on.
    client
        .batch_execute("RESET statement_timeout")
        .await
        .unwrap();
    let v: String = client
        .query_one("SELECT embedding::text FROM t WHERE id = 7", &[])
        .await
        .unwrap()
        .get(0);
    let rows = client
        .query(
            &format!("SELECT id FROM t ORDER BY embedding <-> '{v}' LIMIT 3"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].get::<_, i32>(0), 7);
    client
        .batch_execute(
            "CREATE INDEX slow ON t USING hnsw (embedding vector_l2_ops) WITH (m = 4, ef_construction = 8)",
        )
        .await
        .expect("the name is free: the canceled builds left no index");
}
