//! Two-phase commit across shards survives the proxy's crash and a
//! shard's: `pgvshard proxy` processes built with failpoints
//! (`FAILPOINTS=txn::after_decision=return` makes the process SIGKILL
//! itself at that step), over a real PostgreSQL shard and a `pgvshard
//! shard` process. After the crash another proxy process's in-doubt
//! resolver finishes what was prepared: committed when the decision row
//! was written, rolled back when it was not. The rows are compared with
//! a PostgreSQL server that ran the same statement.

mod pg_support;
mod shard_support;

use pg_support::{connect_to, text_rows, PgServer, TWO_PHASE};
use shard_support::{eventually, fresh_dir, ProxyProcess, Shard};
use tokio_postgres::Client;

/// Starts a proxy over `shards` (port and database of s0, s1, …) with
/// `failpoints` (the FAILPOINTS variable; empty for none), waits until it
/// listens.
fn start_proxy(name: &str, shards: &[(u16, &str)], failpoints: &str) -> ProxyProcess {
    let dir = fresh_dir(name);
    let mut yaml = String::from("listen: 127.0.0.1:0\nshards:\n");
    for (i, (port, db)) in shards.iter().enumerate() {
        yaml.push_str(&format!(
            "  - name: s{i}\n    port: {port}\n    dbname: {db}\n    pool:\n      size: 4\n      connect_timeout_ms: 1000\n"
        ));
    }
    let config = dir.join("proxy.yaml");
    std::fs::write(&config, yaml).unwrap();
    ProxyProcess::start(&config, &[("FAILPOINTS", failpoints), ("RUST_LOG", "info")])
}

/// Waits for the proxy to end (it killed itself at a failpoint).
fn wait_killed(proxy: &mut ProxyProcess) {
    let status = proxy.wait();
    assert!(!status.success(), "the proxy exited normally");
    let log = proxy.log_text();
    assert!(log.contains("killing the process at a failpoint"), "{log}");
}

const SCHEMA: &str = "CREATE TABLE t (id bigint PRIMARY KEY, v vector(2))";

/// One INSERT of ids 1..=20, which hash to both shards.
fn insert() -> String {
    let rows: Vec<String> = (1..=20).map(|i| format!("({i}, '[{i},1]')")).collect();
    format!("INSERT INTO t VALUES {}", rows.join(", "))
}

/// The gids prepared on a shard.
async fn prepared(shard: &Client) -> Vec<String> {
    text_rows(shard, "SELECT gid FROM pg_prepared_xacts")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect()
}

/// Rows of `t` through a client, as text (an error as its text).
async fn rows(client: &Client) -> String {
    match text_rows(client, "SELECT id, v FROM t ORDER BY id").await {
        Ok(rows) => format!("{rows:?}"),
        Err(e) => format!("error {e}"),
    }
}

async fn shard_client(shard: &Shard) -> Client {
    shard.connect().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_killed_after_the_decision_commits_exactly_once_after_restart() {
    let (pg, reference) = tokio::join!(PgServer::start_with(TWO_PHASE), PgServer::start());
    let ours = Shard::start(&fresh_dir("2pc-after-decision"));
    let ports = [(pg.port, "postgres"), (ours.port, "db")];
    let (coordinator, participant) = (pg.connect().await.unwrap(), shard_client(&ours).await);
    for c in [
        &coordinator,
        &participant,
        &reference.connect().await.unwrap(),
    ] {
        c.batch_execute(SCHEMA).await.unwrap();
    }
    reference
        .connect()
        .await
        .unwrap()
        .batch_execute(&insert())
        .await
        .unwrap();

    let mut crashing = start_proxy(
        "2pc-after-decision-p1",
        &ports,
        "txn::after_decision=return",
    );
    let client = connect_to(crashing.port).await.unwrap();
    assert!(client.batch_execute(&insert()).await.is_err());
    wait_killed(&mut crashing);
    assert_eq!(prepared(&participant).await.len(), 1, "prepared on s1");
    let decided = text_rows(&coordinator, "SELECT outcome FROM pgvshard_decisions")
        .await
        .unwrap();
    assert_eq!(decided, vec![vec![Some("commit".to_string())]]);

    let restarted = start_proxy("2pc-after-decision-p2", &ports, "");
    let client = connect_to(restarted.port).await.unwrap();
    let expected = rows(&reference.connect().await.unwrap()).await;
    eventually(15, "the rows appear", || async {
        rows(&client).await == expected
    })
    .await;
    eventually(
        15,
        "nothing stays prepared, the decision row goes",
        || async {
            prepared(&participant).await.is_empty()
                && text_rows(&coordinator, "SELECT gid FROM pgvshard_decisions")
                    .await
                    .unwrap()
                    .is_empty()
        },
    )
    .await;
    assert_eq!(rows(&client).await, expected, "exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_killed_before_the_decision_leaves_nothing() {
    let pg = PgServer::start_with(TWO_PHASE).await;
    let ours = Shard::start(&fresh_dir("2pc-before-decision"));
    // Our shard coordinates, PostgreSQL is prepared.
    let ports = [(ours.port, "db"), (pg.port, "postgres")];
    let participant = pg.connect().await.unwrap();
    for c in [&shard_client(&ours).await, &participant] {
        c.batch_execute(SCHEMA).await.unwrap();
    }
    let mut crashing = start_proxy(
        "2pc-before-decision-p1",
        &ports,
        "txn::before_decision=return",
    );
    let client = connect_to(crashing.port).await.unwrap();
    assert!(client.batch_execute(&insert()).await.is_err());
    wait_killed(&mut crashing);
    assert_eq!(prepared(&participant).await.len(), 1, "prepared on s1");

    let restarted = start_proxy("2pc-before-decision-p2", &ports, "");
    eventually(15, "the prepared transaction is rolled back", || async {
        prepared(&participant).await.is_empty()
    })
    .await;
    let client = connect_to(restarted.port).await.unwrap();
    assert_eq!(rows(&client).await, "[]", "nothing appears");
    // The keys are free again: the same statement now commits.
    client.batch_execute(&insert()).await.unwrap();
    let count = text_rows(&client, "SELECT count(*) FROM t").await.unwrap();
    assert_eq!(count, vec![vec![Some("20".to_string())]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_down_during_commit_prepared_commits_when_back() {
    let (coord, mut part, reference) = tokio::join!(
        PgServer::start_with(TWO_PHASE),
        PgServer::start_with(TWO_PHASE),
        PgServer::start()
    );
    let ports = [(coord.port, "postgres"), (part.port, "postgres")];
    let coordinator = coord.connect().await.unwrap();
    for c in [
        &coordinator,
        &part.connect().await.unwrap(),
        &reference.connect().await.unwrap(),
    ] {
        c.batch_execute(SCHEMA).await.unwrap();
    }
    reference
        .connect()
        .await
        .unwrap()
        .batch_execute(&insert())
        .await
        .unwrap();
    // The proxy holds on after writing the decision, long enough for the
    // participant to be killed before its COMMIT PREPARED.
    let proxy = start_proxy("2pc-shard-down", &ports, "txn::after_decision=sleep(3000)");
    let client = connect_to(proxy.port).await.unwrap();
    let insert = tokio::spawn(async move { client.batch_execute(&insert()).await });
    eventually(15, "the decision is recorded", || async {
        text_rows(&coordinator, "SELECT gid FROM pgvshard_decisions")
            .await
            .is_ok_and(|r| !r.is_empty())
    })
    .await;
    part.kill9();
    insert
        .await
        .unwrap()
        .expect("the client is told it committed");
    part.start_again().await;
    let client = connect_to(proxy.port).await.unwrap();
    let expected = rows(&reference.connect().await.unwrap()).await;
    eventually(15, "the participant's rows appear", || async {
        rows(&client).await == expected
    })
    .await;
    let participant = part.connect().await.unwrap();
    eventually(15, "nothing stays prepared", || async {
        prepared(&participant).await.is_empty()
    })
    .await;
}
