//! Client-facing behaviour of a shard: psql's foreign-key lists against
//! real PostgreSQL + pgvector (the other describe commands:
//! tests/shard_psql.rs), COPY in three formats and out, statement_timeout
//! and CancelRequest stopping index builds, scans and a running SELECT,
//! and index build progress seen from another session while the build
//! runs.

mod pg_support;
mod shard_support;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, TryStreamExt};
use pg_support::PgServer;
use shard_support::{fresh_dir, sqlstate, Shard};
use std::time::{Duration, Instant};

const DIM: usize = 64;

fn vector_text(i: usize) -> String {
    let v: Vec<String> = (0..DIM)
        .map(|d| format!("{}", ((i * 31 + d * 17) % 97) as f32 / 10.0))
        .collect();
    format!("[{}]", v.join(","))
}

/// psql's `\d` of a referencing and a referenced table prints the same
/// "Foreign-key constraints:" and "Referenced by:" lists (RESTRICT shown
/// as RESTRICT) on a shard as on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_lists_foreign_keys_as_postgresql_does() {
    let schema = "CREATE TABLE parent (id int PRIMARY KEY, code text UNIQUE);
        CREATE TABLE child (id int PRIMARY KEY,
            pid int REFERENCES parent ON DELETE RESTRICT ON UPDATE RESTRICT,
            pcode text, CONSTRAINT child_code_fk FOREIGN KEY (pcode) REFERENCES parent (code) ON DELETE CASCADE);
        CREATE TABLE other (pid int REFERENCES parent (id) ON DELETE SET NULL);";
    let shard = Shard::with_schema("clients-fk-describe", schema);
    let pg = PgServer::start().await;
    pg_support::psql(pg.port, schema);
    for table in ["child", "parent", "other"] {
        let ours = shard.psql_with(&[], &format!("\\d {table}")).unwrap();
        let theirs = pg_support::psql(pg.port, &format!("\\d {table}"));
        assert_eq!(ours, theirs, "\\d {table}");
    }
    let parent = shard.psql_with(&[], "\\d parent").unwrap();
    assert!(parent.contains("Referenced by:"), "{parent}");
    assert!(
        parent.contains("ON UPDATE RESTRICT ON DELETE RESTRICT"),
        "{parent}"
    );
    shard.stop();
}

fn binary_copy(rows: &[(i64, Vec<f32>)]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_slice(b"PGCOPY\n\xff\r\n\0");
    b.put_i32(0);
    b.put_i32(0);
    for (id, v) in rows {
        b.put_i16(2);
        b.put_i32(8);
        b.put_i64(*id);
        b.put_i32(4 + 4 * v.len() as i32);
        b.put_i16(v.len() as i16);
        b.put_i16(0);
        for x in v {
            b.put_f32(*x);
        }
    }
    b.put_i16(-1);
    b.freeze()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_three_formats_and_out() {
    let dir = fresh_dir("clients-copy");
    let shard = Shard::start(&dir);
    let client = shard.connect().await;
    client
        .batch_execute("CREATE TABLE items (id bigint PRIMARY KEY, embedding vector(2), note text)")
        .await
        .unwrap();
    let binary = binary_copy(&[(5, vec![5.0, 5.5]), (6, vec![6.0, -6.0])]);
    for (sql, data, want) in [
        (
            "COPY items (id, embedding, note) FROM STDIN",
            Bytes::from_static(b"1\t[1,1]\ta\\tb\n2\t[2,2]\t\\N\n"),
            2,
        ),
        (
            "COPY items FROM STDIN (FORMAT csv)",
            Bytes::from_static(b"3,\"[3,3]\",\"x,\"\"y\"\"\"\n4,\"[4,4]\",\n"),
            2,
        ),
        (
            "COPY items (id, embedding) FROM STDIN (FORMAT binary)",
            binary,
            2,
        ),
    ] {
        let sink = client.copy_in(sql).await.unwrap();
        futures_util::pin_mut!(sink);
        for chunk in data.chunks(5) {
            sink.send(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        assert_eq!(sink.finish().await.unwrap(), want, "{sql}");
    }
    let out: Vec<Bytes> = client
        .copy_out("COPY items TO STDOUT")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let text = String::from_utf8(out.concat()).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "1\t[1,1]\ta\\tb",
            "2\t[2,2]\t\\N",
            "3\t[3,3]\tx,\"y\"",
            "4\t[4,4]\t\\N",
            "5\t[5,5.5]\t\\N",
            "6\t[6,-6]\t\\N"
        ]
    );
    let csv: Vec<Bytes> = client
        .copy_out("COPY (SELECT id, note FROM items WHERE id = 3) TO STDOUT (FORMAT csv)")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(csv.concat(), b"3,\"x,\"\"y\"\"\"\n");
    let bad = client
        .copy_in::<_, Bytes>("COPY items FROM STDIN")
        .await
        .unwrap();
    futures_util::pin_mut!(bad);
    bad.send(Bytes::from_static(b"7\t[1,2,3]\tz\n"))
        .await
        .unwrap();
    let e = bad.finish().await.unwrap_err();
    assert_eq!(sqlstate(&e), "22000");
    let n: i64 = client
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 6, "a failed COPY loads nothing");
    shard.stop();
}

/// A table of `rows` 64-dimensional vectors, loaded with COPY.
async fn big_table(client: &tokio_postgres::Client, rows: usize) {
    client
        .batch_execute(&format!(
            "CREATE TABLE big (id bigint PRIMARY KEY, embedding vector({DIM}))"
        ))
        .await
        .unwrap();
    let sink = client.copy_in("COPY big FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    let mut data = String::new();
    for i in 0..rows {
        data.push_str(&format!("{i}\t{}\n", vector_text(i)));
    }
    sink.send(Bytes::from(data)).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), rows as u64);
}

const BUILD: &str = "CREATE INDEX big_idx ON big USING hnsw (embedding vector_l2_ops) WITH (m = 16, ef_construction = 200)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_and_cancel_stop_builds_and_progress_is_visible() {
    let dir = fresh_dir("clients-cancel");
    let shard = Shard::start(&dir);
    let client = shard.connect().await;
    big_table(&client, 20_000).await;

    let started = Instant::now();
    client
        .batch_execute("SET statement_timeout = '100ms'")
        .await
        .unwrap();
    let e = client.batch_execute(BUILD).await.unwrap_err();
    assert_eq!(sqlstate(&e), "57014");
    assert!(started.elapsed() < Duration::from_secs(5));
    client
        .batch_execute("RESET statement_timeout")
        .await
        .unwrap();

    let watcher = shard.connect().await;
    let token = client.cancel_token();
    let build = tokio::spawn(async move {
        let r = client.batch_execute(BUILD).await;
        (client, r)
    });
    let mut seen = None;
    for _ in 0..500 {
        let rows = watcher
            .query(
                "SELECT index_relname, phase, tuples_done, tuples_total FROM pg_stat_progress_create_index",
                &[],
            )
            .await
            .unwrap();
        if let Some(r) = rows.first() {
            let (done, total): (i64, i64) = (r.get(2), r.get(3));
            if total > 0 {
                seen = Some((r.get::<_, String>(0), done, total));
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (name, done, total) = seen.expect("the build showed progress");
    assert_eq!(name, "big_idx");
    assert!(
        done < total && total == 20_000,
        "{done}/{total}: seen while running"
    );
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let (client, r) = build.await.unwrap();
    assert_eq!(sqlstate(&r.unwrap_err()), "57014");
    let plan: Vec<String> = client
        .query(
            "EXPLAIN SELECT id FROM big ORDER BY embedding <-> '[1]' LIMIT 1",
            &[],
        )
        .await
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default();
    assert!(
        !plan.concat().contains("big_idx"),
        "a canceled build leaves no index"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rows = watcher
            .query(
                "SELECT pid, index_relname, tuples_done FROM pg_stat_progress_create_index",
                &[],
            )
            .await
            .unwrap();
        if rows.is_empty() {
            break;
        }
        let left: Vec<(i32, String, i64)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert!(
            Instant::now() < deadline,
            "canceled builds still running: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client
        .batch_execute("SET statement_timeout = '1ms'")
        .await
        .unwrap();
    let e = client
        .batch_execute(
            "SELECT count(*) FROM big a WHERE l2_distance(embedding, embedding) = 0 AND id % 7 = 3",
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "57014");
    shard.stop();
}

/// statement_timeout stops a SELECT the interpreter runs on the session's
/// own thread (`block_in_place`: the session's task is not polled
/// meanwhile, the runtime's timer fires the cancel), with PostgreSQL's
/// SQLSTATE and message in the simple and the extended protocol, and the
/// session goes on. As in PostgreSQL, each statement of a simple Query
/// holding several is timed on its own, under the setting as it is when
/// the statement starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_stops_a_running_select_as_postgresql_does() {
    let shard = Shard::start(&fresh_dir("clients-timeout-select"));
    let pg = PgServer::start().await;
    for client in [shard.connect().await, pg.connect().await.unwrap()] {
        let started = Instant::now();
        let in_one_query = client
            .batch_execute("SET statement_timeout = '50ms'; SELECT pg_sleep(3)")
            .await;
        client
            .batch_execute("SET statement_timeout = '200ms'")
            .await
            .unwrap();
        client
            .batch_execute("SELECT pg_sleep(0.12); SELECT pg_sleep(0.12)")
            .await
            .expect("each statement is within the timeout");
        client
            .batch_execute("SET statement_timeout = '50ms'")
            .await
            .unwrap();
        let simple = client.batch_execute("SELECT pg_sleep(3)").await;
        let extended = client.query("SELECT pg_sleep($1)", &[&3.0f64]).await;
        for e in [in_one_query, simple, extended.map(drop)] {
            let e = e.expect_err("the timeout stops pg_sleep");
            let db = e.as_db_error().expect("a server error");
            assert_eq!(
                (db.code().code(), db.message()),
                ("57014", "canceling statement due to statement timeout")
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        client.batch_execute("SELECT pg_sleep(0.01)").await.unwrap();
    }
    shard.stop();
}

/// One protocol message: its tag and body.
fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// Parse, Bind (portal `p`, no parameters), Execute or Sync as bytes.
fn extended_message(kind: &str) -> Vec<u8> {
    match kind {
        "parse" => message(b'P', b"s\0SELECT 1\0\0\0"),
        "bind" => message(b'B', b"p\0s\0\0\0\0\0\0\0"),
        "execute" => message(b'E', b"p\0\0\0\0\0"),
        "begin" => message(b'Q', b"BEGIN\0"),
        "commit" => message(b'Q', b"COMMIT\0"),
        _ => message(b'S', b""),
    }
}

/// A raw session as `postgres` on `port`: sends `kinds` (see
/// [`extended_message`]), one ReadyForQuery awaited after each Sync or
/// Query, and returns the tags of the replies with each error's SQLSTATE.
async fn raw_exchange(port: u16, kinds: &[&str]) -> Vec<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut startup = 196_608i32.to_be_bytes().to_vec();
    for part in ["user", "postgres", "database", "postgres", ""] {
        startup.extend_from_slice(part.as_bytes());
        startup.push(0);
    }
    let mut packet = (startup.len() as i32 + 4).to_be_bytes().to_vec();
    packet.extend_from_slice(&startup);
    s.write_all(&packet).await.unwrap();
    let mut replies = Vec::new();
    let mut awaited = 1;
    let mut next = kinds.iter();
    loop {
        let mut head = [0u8; 5];
        s.read_exact(&mut head).await.unwrap();
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize - 4;
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await.unwrap();
        match head[0] {
            b'E' => {
                let code = body.split(|b| *b == 0).find_map(|f| f.strip_prefix(b"C"));
                replies.push(format!("E {}", String::from_utf8_lossy(code.unwrap())));
            }
            b'Z' => {
                awaited -= 1;
                if awaited == 0 {
                    // Send up to and including the next Sync or Query.
                    let mut sent = false;
                    for kind in next.by_ref() {
                        s.write_all(&extended_message(kind)).await.unwrap();
                        if matches!(*kind, "sync" | "begin" | "commit") {
                            awaited = 1;
                            sent = true;
                            break;
                        }
                    }
                    if !sent {
                        return replies;
                    }
                }
            }
            b'1' | b'2' | b'D' | b'C' => replies.push((head[0] as char).to_string()),
            _ => {}
        }
    }
}

/// A portal ends with its transaction, as in PostgreSQL: after a Sync
/// outside a transaction block it is gone (34000), inside one it lives
/// until COMMIT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portals_end_with_their_transaction_as_in_postgresql() {
    let shard = Shard::start(&fresh_dir("clients-portal-lifetime"));
    let pg = PgServer::start().await;
    let cases: [&[&str]; 2] = [
        &["parse", "bind", "sync", "execute", "sync"],
        &[
            "begin", "parse", "bind", "sync", "execute", "sync", "commit", "execute", "sync",
        ],
    ];
    for kinds in cases {
        let ours = raw_exchange(shard.port, kinds).await;
        let theirs = raw_exchange(pg.port, kinds).await;
        assert_eq!(ours, theirs, "{kinds:?}");
        assert_eq!(ours.last().map(String::as_str), Some("E 34000"), "{ours:?}");
    }
    shard.stop();
}

/// A statement_timeout that ends a string of several statements drops the
/// implicit block's transaction advisory lock at once, as PostgreSQL's
/// abort does: another session takes it before this one says anything
/// more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_string_releases_its_transaction_locks_at_once() {
    let shard = Shard::start(&fresh_dir("timed-out-string-locks"));
    let pg = PgServer::start().await;
    let clients = [
        (shard.connect().await, shard.connect().await),
        (pg.connect().await.unwrap(), pg.connect().await.unwrap()),
    ];
    let mut answers = Vec::new();
    for (a, b) in &clients {
        a.batch_execute("SET statement_timeout = '100ms'")
            .await
            .unwrap();
        let e = a
            .batch_execute("SELECT pg_advisory_xact_lock(7); SELECT pg_sleep(2)")
            .await
            .unwrap_err();
        let taken: bool = b
            .query_one("SELECT pg_try_advisory_xact_lock(7)", &[])
            .await
            .unwrap()
            .get(0);
        answers.push((sqlstate(&e), taken));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[1], ("57014".to_string(), true));
}
