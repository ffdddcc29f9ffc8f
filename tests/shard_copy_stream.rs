//! COPY FROM STDIN on a shard while its data is still arriving, with
//! PostgreSQL + pgvector as the control in the same test: other sessions
//! commit meanwhile and do not see the COPY's rows, a COPY that meets a
//! key another session committed after it started fails whole, and after a
//! crash a committed COPY is back whole and one cut off mid-stream is not.

mod pg_support;
mod shard_support;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use pg_support::{connect_to, PgServer};
use shard_support::{eventually, fresh_dir, Shard};
use std::pin::Pin;
use std::time::Duration;
use tokio_postgres::{Client, CopyInSink};

/// A binary COPY stream of `(id, [id, -id])` rows.
fn binary_rows(ids: impl Iterator<Item = i64>) -> Bytes {
    let mut b = BytesMut::new();
    b.put_slice(b"PGCOPY\n\xff\r\n\0");
    b.put_i32(0);
    b.put_i32(0);
    for id in ids {
        b.put_i16(2);
        b.put_i32(8);
        b.put_i64(id);
        b.put_i32(12);
        b.put_i16(2);
        b.put_i16(0);
        b.put_f32(id as f32);
        b.put_f32(-id as f32);
    }
    b.put_i16(-1);
    b.freeze()
}

async fn count(c: &Client) -> i64 {
    c.query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0)
}

/// What `a`'s COPYs and `b`'s statements meanwhile saw, in order.
async fn copies_while_another_session_commits(a: &Client, b: &Client) -> Vec<String> {
    let mut seen = Vec::new();
    a.batch_execute("CREATE TABLE t (id bigint PRIMARY KEY, v vector(2))")
        .await
        .unwrap();
    // A COPY with all its data sent but no CopyDone yet.
    let sink = a
        .copy_in("COPY t (id, v) FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    futures_util::pin_mut!(sink);
    for chunk in binary_rows(0..2000).chunks(4096) {
        sink.send(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    sink.flush().await.unwrap();
    let insert = b.execute("INSERT INTO t VALUES (100000, '[1,1]')", &[]);
    let inserted = tokio::time::timeout(Duration::from_secs(20), insert)
        .await
        .expect("a session's INSERT waited for another session's open COPY")
        .unwrap();
    seen.push(format!("insert meanwhile: {inserted}"));
    seen.push(format!("count meanwhile: {}", count(b).await));
    seen.push(format!("copy: {}", sink.finish().await.unwrap()));
    seen.push(format!("count after: {}", count(b).await));
    // A COPY whose 1,001st row has the key the other session committed.
    let sink = a
        .copy_in("COPY t (id, v) FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    futures_util::pin_mut!(sink);
    let ids = (2000..3000).chain([100000]).chain(3000..4000);
    for chunk in binary_rows(ids).chunks(4096) {
        sink.send(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    let e = sink.finish().await.unwrap_err();
    let e = e.as_db_error().expect("a server error");
    seen.push(format!(
        "clashing copy: {} {} / {:?}",
        e.code().code(),
        e.message(),
        e.detail()
    ));
    seen.push(format!("count after the failed copy: {}", count(b).await));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_streams_while_others_commit_and_fails_whole_like_postgres() {
    let shard = Shard::start(&fresh_dir("copy-stream"));
    let pg = PgServer::start().await;
    let ours =
        copies_while_another_session_commits(&shard.connect().await, &shard.connect().await).await;
    let theirs = copies_while_another_session_commits(
        &connect_to(pg.port).await.unwrap(),
        &connect_to(pg.port).await.unwrap(),
    )
    .await;
    assert_eq!(ours, theirs);
    assert_eq!(
        ours[..4],
        [
            "insert meanwhile: 1",
            "count meanwhile: 1",
            "copy: 2000",
            "count after: 2001"
        ]
    );
    assert_eq!(ours[5], "count after the failed copy: 2001");
    shard.stop();
}

/// The rows of `t` as text, in key order.
async fn rows(c: &Client) -> Vec<String> {
    c.query("SELECT id::text || ' ' || v::text FROM t ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Sends `ids` as binary rows in 64 KB CopyData messages.
async fn send_rows(sink: &mut Pin<Box<CopyInSink<Bytes>>>, ids: std::ops::Range<i64>) {
    for chunk in binary_rows(ids).chunks(64 << 10) {
        sink.send(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    sink.flush().await.unwrap();
}

/// Commits a COPY of 3,000 rows, then sends 2,000 rows of a second COPY
/// without ending it; returns that COPY, still open.
async fn committed_then_unfinished(c: &Client) -> Pin<Box<CopyInSink<Bytes>>> {
    c.batch_execute("CREATE TABLE t (id bigint PRIMARY KEY, v vector(2))")
        .await
        .unwrap();
    let copy = "COPY t (id, v) FROM STDIN (FORMAT binary)";
    let mut sink = Box::pin(c.copy_in(copy).await.unwrap());
    send_rows(&mut sink, 0..3000).await;
    assert_eq!(sink.as_mut().finish().await.unwrap(), 3000);
    let mut sink = Box::pin(c.copy_in(copy).await.unwrap());
    send_rows(&mut sink, 3000..5000).await;
    // Give the server time to take in what was sent.
    tokio::time::sleep(Duration::from_millis(300)).await;
    sink
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_a_committed_copy_is_back_whole_and_an_unfinished_one_is_gone() {
    let dir = fresh_dir("copy-crash");
    let shard = Shard::start(&dir);
    let unfinished = committed_then_unfinished(&shard.connect().await).await;
    shard.kill9();
    drop(unfinished);
    let shard = Shard::start(&dir);
    let ours = rows(&shard.connect().await).await;

    let pg = PgServer::start().await;
    let c = connect_to(pg.port).await.unwrap();
    let backend: i32 = c
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let unfinished = committed_then_unfinished(&c).await;
    // A backend killed with SIGKILL makes PostgreSQL restart and recover.
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &backend.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    drop(unfinished);
    drop(c);
    // Reaped by the postmaster, which then restarts every process and
    // refuses connections until recovery ends.
    let reaped = format!("/proc/{backend}");
    eventually(60, "the killed backend reaped", || async {
        !std::path::Path::new(&reaped).exists()
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let theirs = loop {
        if let Ok(c) = connect_to(pg.port).await {
            let sql = "SELECT id::text || ' ' || v::text FROM t ORDER BY id";
            if let Ok(r) = c.query(sql, &[]).await {
                break r.iter().map(|r| r.get(0)).collect::<Vec<String>>();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "PostgreSQL back after crash recovery within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ours.len(), 3000);
    assert_eq!(ours, theirs);
    shard.stop();
}
