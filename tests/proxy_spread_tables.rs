//! Tables without a shard key (no primary key, no configured key, not a
//! reference table: pgvector's own `CREATE TABLE t (val vector(3))`)
//! through the proxy — over four in-process shards and over two
//! `pgvshard shard` processes — each answer compared with one PostgreSQL
//! server that ran the same statements (the control): INSERTs take turns
//! over the shards, COPY FROM STDIN spreads its records, reads, KNN,
//! aggregates, UPDATE and DELETE see every row; what one shard cannot
//! get right is refused with 0A000.

mod pg_support;
mod shard_support;

use bytes::Bytes;
use futures_util::{pin_mut, SinkExt};
use pg_support::{connect_to, embedded_proxy, row_counts, text_rows, PgServer};
use shard_support::{fresh_dir, proxy_over, sqlstate, Shard};
use tokio_postgres::Client;

/// What `sql` answers: its rows as text (sorted when it has no ORDER BY:
/// neither PostgreSQL nor the proxy promises an order then), or its
/// SQLSTATE.
async fn reply(client: &Client, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    let mut rows = text_rows(client, sql).await.map_err(|e| sqlstate(&e))?;
    if !sql.contains("ORDER BY") {
        rows.sort();
    }
    Ok(rows)
}

/// `data` loaded with `COPY … FROM STDIN` in small chunks; the row count.
async fn copy_in(client: &Client, sql: &str, data: &str) -> Result<u64, String> {
    let sink = client.copy_in(sql).await.map_err(|e| sqlstate(&e))?;
    pin_mut!(sink);
    for chunk in data.as_bytes().chunks(50) {
        sink.send(Bytes::copy_from_slice(chunk))
            .await
            .map_err(|e| sqlstate(&e))?;
    }
    sink.finish().await.map_err(|e| sqlstate(&e))
}

/// The statements compared with the control, in order.
fn statements() -> Vec<String> {
    let mut out: Vec<String> = vec![
        "CREATE TABLE t (val vector(3))".into(),
        "INSERT INTO t (val) VALUES ('[0,0,0]'), ('[1,2,3]'), ('[1,1,1]'), (NULL)".into(),
    ];
    out.extend((1..=8).map(|i| format!("INSERT INTO t VALUES ('[{i},{},5]')", 9 - i)));
    out.extend([
        "INSERT INTO t VALUES ('[7,7,7]'), ('[8,8,9]') RETURNING val".into(),
        "INSERT INTO t SELECT ARRAY[i, i, i]::vector FROM generate_series(10, 12) i".into(),
        "SELECT * FROM t".into(),
        "SELECT val FROM t ORDER BY val <-> '[3.3,2.9,3.1]' LIMIT 4".into(),
        "SELECT val FROM t ORDER BY val <=> '[1,2,4]' LIMIT 3".into(),
        "SELECT count(*), count(val), avg(val), sum(val) FROM t".into(),
        "SELECT val FROM t WHERE val IS NULL".into(),
        "UPDATE t SET val = '[2,2,2]' WHERE val = '[1,1,1]' RETURNING val".into(),
        "DELETE FROM t WHERE val IS NULL OR val = '[0,0,0]'".into(),
        "SELECT * FROM t".into(),
        "CREATE INDEX ON t USING hnsw (val vector_l2_ops)".into(),
        "SELECT val FROM t ORDER BY val <-> '[5.2,4.9,5.1]' LIMIT 3".into(),
        "CREATE TABLE t2 (val vector(3), note text)".into(),
    ]);
    out
}

/// Runs the statements, COPY and reads through the proxy on `proxy_port`
/// and on the control; every answer must be the control's.
async fn scenario(proxy_port: u16, control: &PgServer) {
    let proxy = connect_to(proxy_port).await.expect("proxy");
    let pg = connect_to(control.port).await.expect("control");
    for sql in statements() {
        let want = reply(&pg, &sql).await;
        assert!(want.is_ok(), "control: {sql}: {want:?}");
        assert_eq!(reply(&proxy, &sql).await, want, "{sql}");
    }
    let data: String = (0..40)
        .map(|i| format!("[{i},{},1]\trow {i}\n", i % 7))
        .collect();
    let sql = "COPY t2 (val, note) FROM STDIN";
    assert_eq!(copy_in(&proxy, sql, &data).await, Ok(40));
    assert_eq!(copy_in(&pg, sql, &data).await, Ok(40));
    for sql in [
        "SELECT * FROM t2",
        "SELECT note FROM t2 ORDER BY val <-> '[20.3,2.6,1.1]' LIMIT 5",
        "SELECT count(*) FROM t2 WHERE note LIKE 'row 1%'",
    ] {
        assert_eq!(reply(&proxy, sql).await, reply(&pg, sql).await, "{sql}");
    }
    // A bad record applies nothing anywhere.
    let bad = "[1,1,1]\tok\n[1,1]\tshort\n";
    assert_eq!(copy_in(&proxy, sql, bad).await, Err("22000".into()));
    assert_eq!(copy_in(&pg, sql, bad).await, Err("22000".into()));
    let count = "SELECT count(*) FROM t2";
    assert_eq!(reply(&proxy, count).await, reply(&pg, count).await);
}

/// What one shard could not get right is refused, naming it.
async fn refusals(proxy_port: u16) {
    let proxy = connect_to(proxy_port).await.expect("proxy");
    for sql in [
        "CREATE TABLE u (val vector(3) UNIQUE)",
        "ALTER TABLE t ADD COLUMN id serial PRIMARY KEY",
        "CREATE UNIQUE INDEX ON t (val)",
        "INSERT INTO t SELECT val FROM t2",
    ] {
        assert_eq!(reply(&proxy, sql).await, Err("0A000".into()), "{sql}");
    }
    let e = proxy
        .batch_execute("INSERT INTO t SELECT val FROM t2")
        .await
        .unwrap_err();
    let message = e.as_db_error().map(|d| d.message().to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("table without a shard key") && m.contains("t2")),
        "{message:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_tables_over_pgvshard_shard_processes() {
    let shards: Vec<Shard> = (0..2)
        .map(|i| Shard::start(&fresh_dir(&format!("spread-s{i}"))))
        .collect();
    let ports: Vec<u16> = shards.iter().map(|s| s.port).collect();
    let proxy = proxy_over("spread-proxy", &ports, "");
    let control = PgServer::start().await;
    scenario(proxy.port, &control).await;
    // Every shard took a part of each table.
    for (table, total) in [("t", 15), ("t2", 40)] {
        let c = row_counts(&ports, table).await;
        assert!(c.iter().all(|&n| n > 0), "{table}: {c:?}");
        assert_eq!(c.iter().sum::<i64>(), total, "{table}: {c:?}");
    }
    refusals(proxy.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_tables_over_embedded_shards() {
    let proxy = embedded_proxy("proxy-spread-embedded", 4).await;
    let control = PgServer::start().await;
    scenario(proxy.addr.port(), &control).await;
    refusals(proxy.addr.port()).await;
    proxy.shutdown().await.expect("shutdown");
}
