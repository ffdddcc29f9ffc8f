//! Issue 10, defect 1: a deeply nested statement must not kill a process.
//! Each hostile shape runs once per target (an in-process shard, the proxy
//! with embedded shards) at PostgreSQL's largest accepted size with default
//! settings, and once beyond our limit; AND/OR lists, which PostgreSQL
//! accepts at any length, run at 10,000 terms (the proxy's release build
//! aborted near 9,700, a debug build's shard near 1,200). Real PostgreSQL
//! runs the same statements as the control: what it accepts we must accept
//! with the same answer, and where we refuse, it refuses too.

mod fuzz_support;
mod pg_support;

use fuzz_support::Target;
use pg_support::{connect_to, text_rows, PgServer};
use tokio_postgres::Client;

/// PostgreSQL 18's hint with "stack depth limit exceeded".
const HINT: &str = "Increase the configuration parameter \"max_stack_depth\" (currently 2048kB), after ensuring the platform's stack depth limit is adequate.";

const SETUP: &str = "CREATE TABLE t (id int PRIMARY KEY, v vector(3)); \
    INSERT INTO t VALUES (1, '[1,2,3]'), (2, '[4,5,6]')";

fn joined(n: usize, item: impl Fn(usize) -> String, sep: &str) -> String {
    (0..n).map(item).collect::<Vec<_>>().join(sep)
}

/// Shapes PostgreSQL accepts, at (near) the largest size it accepts
/// (measured with PostgreSQL 18.3, max_stack_depth = 2MB).
fn accepted() -> Vec<(&'static str, String)> {
    let nested = |n: usize, open: &str, inner: &str, close: &str| {
        format!("SELECT {}{inner}{}", open.repeat(n), close.repeat(n))
    };
    vec![
        (
            "+ chain",
            format!("SELECT {}", joined(4800, |_| "1".into(), "+")),
        ),
        (
            "|| chain",
            format!("SELECT {}", joined(4800, |_| "'a'".into(), "||")),
        ),
        (
            "vector + chain",
            format!(
                "SELECT {}",
                joined(4800, |_| "'[1,2,3]'::vector".into(), "+")
            ),
        ),
        (
            "OR chain in a KNN query",
            format!(
                "SELECT id FROM t WHERE {} ORDER BY v <-> '[1,1,1]' LIMIT 5",
                joined(10_000, |i| format!("id = {i}"), " OR ")
            ),
        ),
        (
            "+ chain in an aggregate's WHERE",
            format!(
                "SELECT count(*) FROM t WHERE id < {}",
                joined(4800, |_| "1".into(), "+")
            ),
        ),
        (
            "vector + chain in an UPDATE",
            format!(
                "UPDATE t SET v = v + {} WHERE id = 1",
                joined(4800, |_| "'[0,0,0]'".into(), " + ")
            ),
        ),
        (
            "AND chain",
            format!(
                "SELECT id FROM t WHERE {} ORDER BY id",
                joined(10_000, |i| format!("id <> {}", i + 10), " AND ")
            ),
        ),
        ("parentheses", nested(9980, "(", "1", ")")),
        ("NOT", nested(9980, "NOT ", "true", "")),
        ("unary minus", nested(9980, "- ", "1", "")),
        ("casts", format!("SELECT 1{}", "::int".repeat(16_000))),
        // Each level was described again at every enclosing level (and
        // copied): 300 took a minute on a shard; now 2,500 take seconds.
        ("scalar subqueries", nested(2500, "(SELECT ", "1", ")")),
        (
            "FROM subqueries",
            format!(
                "SELECT * FROM {}t{} ORDER BY id",
                "(SELECT * FROM ".repeat(1600),
                ") s".repeat(1600)
            ),
        ),
    ]
}

/// Shapes deeper than we accept: PostgreSQL refuses them too.
fn refused() -> Vec<(&'static str, String)> {
    vec![
        (
            "+ chain",
            format!("SELECT {}", joined(30_000, |_| "1".into(), "+")),
        ),
        (
            "parentheses",
            format!("SELECT {}1{}", "(".repeat(25_000), ")".repeat(25_000)),
        ),
        (
            "scalar subqueries",
            format!("SELECT {}1{}", "(SELECT ".repeat(5000), ")".repeat(5000)),
        ),
    ]
}

/// Runs every shape on `ours` and on PostgreSQL and compares.
async fn check(ours: &Client, pg: &Client, target: &str) {
    for (shape, sql) in accepted() {
        let expected = text_rows(pg, &sql)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL refuses {shape}: {e:?}"));
        let got = text_rows(ours, &sql)
            .await
            .unwrap_or_else(|e| panic!("{target} refuses {shape}: {e:?}"));
        assert_eq!(got, expected, "{target}: {shape}");
    }
    for (shape, sql) in refused() {
        let pg_err = text_rows(pg, &sql).await.expect_err("PostgreSQL refuses");
        let err = text_rows(ours, &sql)
            .await
            .expect_err("too deep")
            .as_db_error()
            .cloned()
            .unwrap_or_else(|| panic!("{target}: {shape}: no ErrorResponse"));
        assert_eq!(err.code().code(), "54001", "{target}: {shape}");
        assert_eq!(err.message(), "stack depth limit exceeded");
        assert_eq!(err.hint(), Some(HINT));
        if shape == "+ chain" {
            assert_eq!(pg_err.as_db_error().map(|e| e.hint()), Some(Some(HINT)));
        }
    }
    let one = text_rows(ours, "SELECT 1").await.expect("still serving");
    assert_eq!(one, [[Some("1".to_string())]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_survives_deep_statements_as_postgres_does() {
    let pg = PgServer::start().await;
    let target = Target::shard().await;
    let (pg, ours) = (
        pg.connect().await.expect("PostgreSQL"),
        connect_to(target.port).await.expect("shard"),
    );
    pg.batch_execute(SETUP).await.expect("setup on PostgreSQL");
    ours.batch_execute(SETUP).await.expect("setup on the shard");
    check(&ours, &pg, "shard").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_survives_deep_statements_as_postgres_does() {
    let pg = PgServer::start().await;
    let target = Target::proxy().await;
    let (pg, ours) = (
        pg.connect().await.expect("PostgreSQL"),
        connect_to(target.port).await.expect("proxy"),
    );
    pg.batch_execute(SETUP).await.expect("setup on PostgreSQL");
    ours.batch_execute(SETUP)
        .await
        .expect("setup through the proxy");
    check(&ours, &pg, "proxy").await;
}
