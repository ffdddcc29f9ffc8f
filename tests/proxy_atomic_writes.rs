//! A write statement that spans shards is all-or-nothing through the
//! proxy, as one PostgreSQL server is: a duplicate key or a bad value on
//! one shard, or a shard that is down, leaves no row on any shard. Run
//! over `pgvshard shard` processes and over real PostgreSQL shards.

mod pg_support;
mod shard_support;

use pg_support::{connect_to, PgServer, TWO_PHASE};
use shard_support::{answer_line, fresh_dir, sqlstate, Shard};
use tokio_postgres::Client;

async fn proxy_over(ports: &[u16]) -> pgvshard::proxy::RunningProxy {
    let mut yaml = String::from("listen: 127.0.0.1:0\nshards:\n");
    for (i, port) in ports.iter().enumerate() {
        yaml.push_str(&format!(
            "  - name: s{i}\n    port: {port}\n    pool:\n      size: 4\n      connect_timeout_ms: 1000\n"
        ));
    }
    let config = pgvshard::proxy::config::ProxyConfig::from_yaml(&yaml).expect("valid config");
    pgvshard::proxy::start(config).await.expect("proxy starts")
}

/// Ids 1..=20 inserted one by one, then all but 1 and 2 deleted: returns
/// for each shard (by the `shard_ids` reader) its ids, so tests can name
/// an existing row and new keys on either shard.
async fn seed(proxy: &Client) {
    proxy
        .batch_execute("CREATE TABLE at (id bigint PRIMARY KEY, v vector(2))")
        .await
        .unwrap();
    for id in 1..=20 {
        proxy
            .execute(&format!("INSERT INTO at VALUES ({id}, '[1,1]')"), &[])
            .await
            .unwrap();
    }
}

async fn ids(client: &Client) -> Vec<i64> {
    client
        .query("SELECT id FROM at ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The gids prepared on a shard.
async fn prepared(shard: &Client) -> Vec<String> {
    shard
        .query("SELECT gid FROM pg_prepared_xacts", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The three measured statements on shards `a` and `b` (clients straight
/// to each shard); `stop_a` takes shard a down.
async fn spanning_errors_apply_nothing(proxy: &Client, a: &Client, b: &Client) -> Vec<i64> {
    seed(proxy).await;
    let (on_a, on_b) = (ids(a).await, ids(b).await);
    assert!(
        on_a.len() > 2 && on_b.len() > 2,
        "rows spread: {on_a:?} {on_b:?}"
    );
    proxy
        .batch_execute(&format!(
            "DELETE FROM at WHERE id NOT IN ({}, {})",
            on_a[0], on_b[0]
        ))
        .await
        .unwrap();
    let (existing_a, new_a, new_b, new_b2) = (on_a[0], on_a[1], on_b[1], on_b[2]);
    let dup = format!("INSERT INTO at VALUES ({new_b}, '[1,1]'), ({existing_a}, '[1,1]')");
    let e = proxy.batch_execute(&dup).await.unwrap_err();
    assert_eq!(sqlstate(&e), "23505", "{e:?}");
    // SQLAlchemy's bulk insert form, split by shard the same way.
    let dup = format!(
        "INSERT INTO at (id, v) SELECT p0::BIGINT, p1::VECTOR(2) FROM (VALUES ({new_b}, '[1,1]', 0), ({existing_a}, '[1,1]', 1)) AS imp_sen(p0, p1, sen_counter) ORDER BY sen_counter RETURNING at.id"
    );
    let e = proxy.batch_execute(&dup).await.unwrap_err();
    assert_eq!(sqlstate(&e), "23505", "{e:?}");
    let bad = format!("INSERT INTO at VALUES ({new_b}, '[1,1]'), ({new_a}, '[1,2,3]')");
    let e = proxy.batch_execute(&bad).await.unwrap_err();
    assert_eq!(sqlstate(&e), "22000", "{e:?}");
    let upd = format!("UPDATE at SET v = '[5,5]' WHERE 1 / (id - {existing_a}) IS NOT NULL");
    let e = proxy.batch_execute(&upd).await.unwrap_err();
    assert_eq!(sqlstate(&e), "22012", "{e:?}");
    assert_eq!(ids(proxy).await.len(), 2, "nothing applied");
    let v = proxy
        .simple_query(&format!("SELECT v FROM at WHERE id = {}", on_b[0]))
        .await
        .unwrap();
    let v = v.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(
        v.as_deref(),
        Some("[1,1]"),
        "the UPDATE left no row changed"
    );
    // With parameters, as drivers send it: each shard's part names only
    // its rows' parameters.
    let ok = "INSERT INTO at (id, v) SELECT p0::BIGINT, p1::VECTOR(2) FROM (VALUES ($1::BIGINT, $2, 0), ($3::BIGINT, $4, 1)) AS imp_sen(p0, p1, sen_counter) ORDER BY sen_counter RETURNING at.id";
    let returned: Vec<i64> = proxy
        .query(ok, &[&new_b, &"[1,1]", &new_a, &"[2,2]"])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(returned, [new_b, new_a], "RETURNING in the counter's order");
    for shard in [a, b] {
        assert_eq!(
            prepared(shard).await,
            Vec::<String>::new(),
            "no prepared transaction left"
        );
    }
    let decisions = a
        .query_one("SELECT count(*) FROM pgvshard_decisions", &[])
        .await
        .unwrap();
    assert_eq!(decisions.get::<_, i64>(0), 0, "decision rows are deleted");
    let mut expected = vec![existing_a, on_b[0], new_a, new_b];
    expected.sort();
    assert_eq!(ids(proxy).await, expected);
    vec![new_a, new_b2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spanning_writes_are_atomic_on_pgvshard_shards() {
    let (a, b) = (
        Shard::start(&fresh_dir("atomic-a")),
        Shard::start(&fresh_dir("atomic-b")),
    );
    let proxy = proxy_over(&[a.port, b.port]).await;
    let client = connect_to(proxy.addr.port()).await.unwrap();
    let news = spanning_errors_apply_nothing(&client, &a.connect().await, &b.connect().await).await;
    let before = ids(&b.connect().await).await;
    a.kill9();
    let down = format!(
        "INSERT INTO at VALUES ({}, '[3,3]'), ({}, '[3,3]')",
        news[0], news[1]
    );
    assert!(client.batch_execute(&down).await.is_err());
    assert_eq!(
        ids(&b.connect().await).await,
        before,
        "shard b kept nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spanning_writes_are_atomic_on_postgres_shards() {
    let (a, mut b) = tokio::join!(
        PgServer::start_with(TWO_PHASE),
        PgServer::start_with(TWO_PHASE)
    );
    let proxy = proxy_over(&[a.port, b.port]).await;
    let client = connect_to(proxy.addr.port()).await.unwrap();
    let (ca, cb) = (a.connect().await.unwrap(), b.connect().await.unwrap());
    let news = spanning_errors_apply_nothing(&client, &ca, &cb).await;
    let before = ids(&ca).await;
    b.stop();
    let down = format!(
        "INSERT INTO at VALUES ({}, '[3,3]'), ({}, '[3,3]')",
        news[0], news[1]
    );
    assert!(client.batch_execute(&down).await.is_err());
    assert_eq!(ids(&ca).await, before, "shard a kept nothing");
    let shown = pg_support::text_rows(&client, "SHOW pgvshard.transactions")
        .await
        .unwrap();
    assert!(
        shown.iter().any(|r| r[1].as_deref() == Some("committed")
            && r[0]
                .as_deref()
                .is_some_and(|g| g.starts_with("pgvshard_0_"))
            && r[2].as_deref() == Some("s0,s1")),
        "{shown:?}"
    );
    let metrics = pgvshard::metrics::render(&proxy.registry);
    for series in [
        "pgvshard_2pc_total{outcome=\"committed\"}",
        "pgvshard_commit_duration_seconds_count{kind=\"two_phase\"}",
    ] {
        let line = metrics.lines().find(|l| l.starts_with(series));
        assert!(
            line.is_some_and(|l| !l.ends_with(" 0")),
            "{series} counted: {metrics}"
        );
    }
}

/// Savepoints in a transaction through the proxy, as psycopg's nested
/// transactions and Django's atomic use them (before and after the
/// transaction's first write; an error rolled back to a savepoint).
const SAVEPOINTS: &[&str] = &[
    "CREATE TABLE sp (id bigint PRIMARY KEY, v text)",
    "INSERT INTO sp VALUES (1, 'a')",
    "SAVEPOINT a",
    "BEGIN",
    "SAVEPOINT before_write",
    "UPDATE sp SET v = 'b' WHERE id = 1",
    "SAVEPOINT \"_pg3_1\"",
    "INSERT INTO sp VALUES (1, 'dup')",
    "SELECT v FROM sp WHERE id = 1",
    "RELEASE \"_pg3_1\"",
    "ROLLBACK TO \"_pg3_1\"",
    "SELECT v FROM sp WHERE id = 1",
    "RELEASE SAVEPOINT \"_pg3_1\"",
    "ROLLBACK TO \"_pg3_1\"",
    "ROLLBACK TO SAVEPOINT before_write",
    "SELECT v FROM sp WHERE id = 1",
    "UPDATE sp SET v = 'c' WHERE id = 1",
    "SAVEPOINT s2",
    "UPDATE sp SET v = 'd' WHERE id = 1",
    "ROLLBACK TO s2",
    "COMMIT",
    "SELECT v FROM sp WHERE id = 1",
    "BEGIN",
    "SAVEPOINT x",
    "SELECT nosuchcolumn FROM sp",
    "ROLLBACK TO x",
    "UPDATE sp SET v = 'e' WHERE id = 1",
    "COMMIT",
    "SELECT v FROM sp WHERE id = 1",
];

/// Each statement's first column or SQLSTATE.
async fn script(client: &Client, script: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for sql in script {
        let line = answer_line(client, sql).await;
        out.push(format!("{sql} => {line}"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn savepoints_through_the_proxy_match_postgres() {
    let (reference, pa, pb) = tokio::join!(
        PgServer::start(),
        PgServer::start_with(TWO_PHASE),
        PgServer::start_with(TWO_PHASE)
    );
    let expected = script(&reference.connect().await.unwrap(), SAVEPOINTS).await;
    assert!(expected.last().unwrap().ends_with("=> e"), "{expected:#?}");
    let (a, b) = (
        Shard::start(&fresh_dir("savepoint-a")),
        Shard::start(&fresh_dir("savepoint-b")),
    );
    for ports in [[a.port, b.port], [pa.port, pb.port]] {
        let proxy = proxy_over(&ports).await;
        let client = connect_to(proxy.addr.port()).await.unwrap();
        assert_eq!(
            script(&client, SAVEPOINTS).await,
            expected,
            "shards {ports:?}"
        );
        let metrics = pgvshard::metrics::render(&proxy.registry);
        assert!(
            metrics.contains("pgvshard_commit_duration_seconds_count{kind=\"single_shard\"}"),
            "{metrics}"
        );
    }
}

/// With several shards, a PostgreSQL shard that cannot prepare
/// transactions (its default `max_prepared_transactions = 0`) keeps the
/// proxy from starting, with an error naming the shard and the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_refuses_shards_without_prepared_transactions() {
    let (a, b) = tokio::join!(PgServer::start_with(TWO_PHASE), PgServer::start());
    let yaml = format!(
        "listen: 127.0.0.1:0\nshards:\n  - name: s0\n    port: {}\n  - name: s1\n    port: {}\n",
        a.port, b.port
    );
    let config = pgvshard::proxy::config::ProxyConfig::from_yaml(&yaml).expect("valid config");
    let Err(e) = pgvshard::proxy::start(config).await else {
        panic!("the proxy started over a shard without prepared transactions");
    };
    let e = e.to_string();
    assert!(
        e.contains("shard \"s1\"") && e.contains("max_prepared_transactions"),
        "{e}"
    );
}
