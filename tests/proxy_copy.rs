//! COPY through the proxy over two real PostgreSQL + pgvector shards,
//! compared with one server holding every row: text, CSV (psql's `\copy`,
//! with a proxy-generated serial key) and binary (tokio-postgres'
//! BinaryCopyInWriter with the pgvector crate) loads; COPY TO in text and
//! binary; a malformed row applies nothing on any shard; COPY inside a
//! transaction stays on one shard. avg(vector)/avg(halfvec) across shards
//! is checked on the loaded rows.

mod pg_support;
mod python_support;

use bytes::Bytes;
use futures_util::{pin_mut, SinkExt, StreamExt, TryStreamExt};
use pg_support::{embedded_proxy, psql, text_rows, Fixture, Rng};
use pgvector::Vector;
use tokio_postgres::binary_copy::{BinaryCopyInWriter, BinaryCopyOutStream};
use tokio_postgres::types::{ToSql, Type};

const SCHEMA: &str =
    "CREATE TABLE docs (id bigserial PRIMARY KEY, cat int, embedding vector(4), note text)";

fn vector(rng: &mut Rng) -> Vec<f32> {
    (0..4)
        .map(|_| (rng.next_f32() * 100.0).round() / 10.0)
        .collect()
}

fn vector_text(v: &[f32]) -> String {
    let parts: Vec<String> = v.iter().map(f32::to_string).collect();
    format!("[{}]", parts.join(","))
}

/// Sends `data` as COPY data in small chunks (records cross chunk ends).
async fn copy_in(
    client: &tokio_postgres::Client,
    sql: &str,
    data: &str,
) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in(sql).await?;
    pin_mut!(sink);
    for chunk in data.as_bytes().chunks(777) {
        sink.send(Bytes::copy_from_slice(chunk)).await?;
    }
    sink.finish().await
}

async fn copy_out(client: &tokio_postgres::Client, sql: &str) -> Vec<u8> {
    let stream = client.copy_out(sql).await.unwrap();
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    chunks.concat()
}

fn floats(v: &Option<String>) -> Vec<f32> {
    let t = v
        .as_deref()
        .unwrap_or("[]")
        .trim_matches(|c| c == '[' || c == ']');
    t.split(',').map(|x| x.parse().unwrap()).collect()
}

fn sorted_lines(data: &[u8]) -> Vec<String> {
    let mut lines: Vec<String> = String::from_utf8_lossy(data)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

fn code(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no code: {e}"))
}

/// Text rows with ids `ids` (notes with escapes and NULLs).
fn text_data(ids: std::ops::Range<i64>, rng: &mut Rng) -> String {
    ids.map(|id| {
        let note = match id % 3 {
            0 => "\\N".to_string(),
            1 => format!("a\\tb {id}"),
            _ => format!("note {id}"),
        };
        format!("{id}\t{}\t{}\t{note}\n", id % 5, vector_text(&vector(rng)))
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_csv_and_binary_copy_load_like_one_server_and_copy_out() {
    let fx = Fixture::start("").await;
    let proxy = fx.client().await;
    let reference = fx.reference.connect().await.unwrap();
    fx.both(&proxy, SCHEMA).await;
    let mut rng = Rng(0x5eed_c0de_1234_5678);

    // Text with explicit keys, through tokio-postgres' copy_in.
    let text = text_data(1..301, &mut rng);
    let sql = "COPY docs (id, cat, embedding, note) FROM STDIN";
    assert_eq!(copy_in(&proxy, sql, &text).await.unwrap(), 300);
    assert_eq!(copy_in(&reference, sql, &text).await.unwrap(), 300);

    // CSV with a header and no key column, through psql's \copy: the proxy
    // generates 301.. in row order; the reference gets those keys written.
    let (mut csv, mut csv_with_ids) = (String::from("cat,embedding,note\n"), String::new());
    for id in 301..501 {
        let (cat, v) = (id % 5, vector_text(&vector(&mut rng)));
        let note = if id % 4 == 0 {
            String::new()
        } else {
            format!("\"line, {id}\"")
        };
        csv.push_str(&format!("{cat},\"{v}\",{note}\n"));
        csv_with_ids.push_str(&format!("{id},{cat},\"{v}\",{note}\n"));
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("proxy-copy");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("docs.csv");
    std::fs::write(&file, &csv).unwrap();
    let command = format!(
        "\\copy docs (cat, embedding, note) FROM '{}' WITH (FORMAT csv, HEADER)",
        file.display()
    );
    let port = fx.proxy.addr.port();
    let printed = tokio::task::spawn_blocking(move || psql(port, &command))
        .await
        .unwrap();
    assert_eq!(printed.trim(), "COPY 200");
    let sql = "COPY docs (id, cat, embedding, note) FROM STDIN WITH (FORMAT csv)";
    copy_in(&reference, sql, &csv_with_ids).await.unwrap();

    // Binary with the pgvector crate.
    let vector_type = proxy
        .prepare("SELECT embedding FROM docs")
        .await
        .unwrap()
        .columns()[0]
        .type_()
        .clone();
    let types = [Type::INT8, Type::INT4, vector_type.clone(), Type::TEXT];
    let rows: Vec<(i64, i32, Vector, String)> = (501..601)
        .map(|id| {
            let v = Vector::from(vector(&mut rng));
            (id, (id % 5) as i32, v, format!("bin {id}"))
        })
        .collect();
    for client in [&proxy, &reference] {
        let sink = client
            .copy_in("COPY docs (id, cat, embedding, note) FROM STDIN (FORMAT binary)")
            .await
            .unwrap();
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        for (id, cat, v, note) in &rows {
            let row: [&(dyn ToSql + Sync); 4] = [id, cat, v, note];
            writer.as_mut().write(&row).await.unwrap();
        }
        assert_eq!(writer.finish().await.unwrap(), 100);
    }

    let counts = fx.shard_counts("docs").await;
    assert_eq!(counts.iter().sum::<i64>(), 600);
    assert!(counts.iter().all(|&c| c > 100), "{counts:?}");
    for sql in [
        "SELECT id, cat, embedding, note FROM docs ORDER BY id",
        "SELECT id, embedding <-> '[5,5,5,5]' AS d FROM docs ORDER BY embedding <-> '[5,5,5,5]' LIMIT 10",
        "SELECT cat, count(*), count(note) FROM docs GROUP BY cat ORDER BY cat",
    ] {
        let want = text_rows(&reference, sql).await.unwrap();
        assert_eq!(text_rows(&proxy, sql).await.unwrap(), want, "{sql}");
    }

    // avg(vector) and avg(halfvec) across shards: within a float4 ulp or
    // two of one server's (halfvec: of a half-precision ulp); NULL with no rows.
    let sql = "SELECT cat, avg(embedding), avg(embedding::halfvec(4)) FROM docs GROUP BY cat ORDER BY cat";
    let (got, want) = (
        text_rows(&proxy, sql).await.unwrap(),
        text_rows(&reference, sql).await.unwrap(),
    );
    assert_eq!(got.len(), 5);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g[0], w[0]);
        for (column, tolerance) in [(1, 2.0 * f32::EPSILON), (2, 2.0 / 1024.0)] {
            let (a, b) = (floats(&g[column]), floats(&w[column]));
            assert_eq!(a.len(), 4);
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= tolerance * y.abs(), "{g:?} vs {w:?}");
            }
        }
    }
    let none = text_rows(&proxy, "SELECT avg(embedding) FROM docs WHERE id < 0")
        .await
        .unwrap();
    assert_eq!(none, vec![vec![None]]);

    // COPY TO: each shard's lines once, in text and CSV with one header.
    for sql in [
        "COPY docs TO STDOUT",
        "COPY docs (id, note) TO STDOUT WITH (FORMAT csv, HEADER)",
        "COPY (SELECT id, embedding FROM docs WHERE cat = 2) TO STDOUT",
    ] {
        let (got, want) = (copy_out(&proxy, sql).await, copy_out(&reference, sql).await);
        assert_eq!(sorted_lines(&got), sorted_lines(&want), "{sql}");
    }
    let csv = copy_out(&proxy, "COPY docs (id) TO STDOUT (FORMAT csv, HEADER)").await;
    assert_eq!(String::from_utf8_lossy(&csv).lines().next(), Some("id"));
    // Binary COPY TO: one header, one trailer, every row.
    let stream = proxy
        .copy_out("COPY docs (id, embedding) TO STDOUT (FORMAT binary)")
        .await
        .unwrap();
    let rows = BinaryCopyOutStream::new(stream, &[Type::INT8, vector_type]);
    pin_mut!(rows);
    let mut ids = Vec::new();
    while let Some(row) = rows.next().await {
        let row = row.unwrap();
        let v: Vector = row.get(1);
        assert_eq!(v.as_slice().len(), 4);
        ids.push(row.get::<i64>(0));
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..601).collect::<Vec<i64>>());
    // A query that needs a merge is refused, naming why.
    let e = proxy
        .copy_out("COPY (SELECT id FROM docs ORDER BY id LIMIT 3) TO STDOUT")
        .await
        .err()
        .unwrap();
    assert_eq!(code(&e), "0A000");
    std::fs::remove_dir_all(&dir).ok();
}

/// Text COPY lines as CSV (vectors quoted, NULL empty).
fn as_csv(text: &str) -> String {
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let note = if f[3] == "\\N" { "" } else { f[3] };
            format!("{},{},\"{}\",{note}\n", f[0], f[1], f[2])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_row_applies_nothing_on_any_shard() {
    let fx = Fixture::start("").await;
    let proxy = fx.client().await;
    fx.both(&proxy, SCHEMA).await;
    let mut rng = Rng(42);
    let good = text_data(1..201, &mut rng);
    let sql = "COPY docs (id, cat, embedding, note) FROM STDIN";
    copy_in(&proxy, sql, &good).await.unwrap();
    let before = fx.shard_counts("docs").await;
    let more = text_data(201..401, &mut rng);
    for (bad_line, format, sqlstate) in [
        ("401\t1\t[1,2\tx\n", "text", "22P02"),
        ("x401\t1\t[1,2,3,4]\tx\n", "text", "22P02"),
        ("401\t1\t[1,2,3,4]\tx\textra\n", "text", "22P04"),
        ("\\N\t1\t[1,2,3,4]\tx\n", "text", "23502"),
        ("401,1,\"[1,2,3,4],x\n", "csv", "22P04"),
    ] {
        let data = match format {
            "csv" => as_csv(&more) + bad_line,
            _ => more.clone() + bad_line,
        };
        let sql = format!("COPY docs (id, cat, embedding, note) FROM STDIN (FORMAT {format})");
        let e = copy_in(&proxy, &sql, &data).await.unwrap_err();
        assert_eq!(code(&e), sqlstate, "{bad_line}: {e:?}");
        assert_eq!(fx.shard_counts("docs").await, before, "{bad_line}");
    }
    // The session and the pools still work.
    assert_eq!(copy_in(&proxy, sql, &more).await.unwrap(), 200);
    assert_eq!(fx.shard_counts("docs").await.iter().sum::<i64>(), 400);
    // An unknown column is refused before any data is read (last: after
    // this error tokio-postgres' next copy_in fails, on PostgreSQL too).
    let e = proxy
        .copy_in::<_, Bytes>("COPY docs (id, nope) FROM STDIN")
        .await
        .err()
        .unwrap();
    assert_eq!(code(&e), "42703");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_a_transaction_writes_any_shard_like_one_server() {
    let fx = Fixture::start("").await;
    let proxy = fx.client().await;
    fx.both(&proxy, SCHEMA).await;
    let slots = pgvshard::proxy::slots::SlotMap::even(2);
    let on = |shard: usize| -> Vec<i64> {
        (1..)
            .filter(|id: &i64| slots.shard_of(&id.to_string()) == shard)
            .take(20)
            .collect()
    };
    let lines = |ids: &[i64]| -> String {
        ids.iter()
            .map(|id| format!("{id}\t1\t[1,1,1,1]\tt\n"))
            .collect()
    };
    let sql = "COPY docs (id, cat, embedding, note) FROM STDIN";
    let (zero, one) = (on(0), on(1));
    proxy.batch_execute("BEGIN").await.unwrap();
    assert_eq!(copy_in(&proxy, sql, &lines(&zero)).await.unwrap(), 20);
    proxy.batch_execute("COMMIT").await.unwrap();
    assert_eq!(fx.shard_counts("docs").await, vec![20, 0]);

    // Rows for both shards in one transaction: the transaction sees them
    // all; ROLLBACK leaves nothing, COMMIT commits on both shards.
    let mixed: Vec<i64> = (10_001..10_041).collect();
    assert!(mixed.iter().any(|id| slots.shard_of(&id.to_string()) == 1));
    let count = "SELECT count(*) FROM docs";
    let reference = fx.reference.connect().await.unwrap();
    copy_in(&reference, sql, &lines(&zero)).await.unwrap();
    for end in ["ROLLBACK", "COMMIT"] {
        for client in [&proxy, &reference] {
            client.batch_execute("BEGIN").await.unwrap();
            assert_eq!(copy_in(client, sql, &lines(&mixed)).await.unwrap(), 40);
            let seen = text_rows(client, count).await.unwrap();
            assert_eq!(seen, vec![vec![Some("60".to_string())]], "{end}");
            client.batch_execute(end).await.unwrap();
        }
        assert_eq!(
            text_rows(&proxy, count).await.unwrap(),
            text_rows(&reference, count).await.unwrap(),
            "after {end}"
        );
    }
    assert_eq!(fx.shard_counts("docs").await.iter().sum::<i64>(), 60);
    // After a write on shard 0, a COPY for shard 1 joins the transaction.
    proxy.batch_execute("BEGIN").await.unwrap();
    let first_on_zero = (100_000..)
        .find(|id: &i64| slots.shard_of(&id.to_string()) == 0)
        .unwrap();
    proxy
        .batch_execute(&format!(
            "INSERT INTO docs (id, cat) VALUES ({first_on_zero}, 2)"
        ))
        .await
        .unwrap();
    assert_eq!(copy_in(&proxy, sql, &lines(&one)).await.unwrap(), 20);
    proxy.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(fx.shard_counts("docs").await.iter().sum::<i64>(), 60);

    // COPY TO would read other connections than the transaction's: refused
    // after a write; and COPY (statement) takes a SELECT only.
    proxy.batch_execute("BEGIN").await.unwrap();
    proxy
        .batch_execute(&format!(
            "INSERT INTO docs (id, cat) VALUES ({first_on_zero}, 2)"
        ))
        .await
        .unwrap();
    let Err(e) = proxy.copy_out("COPY docs TO STDOUT").await else {
        panic!("COPY TO after a write in the transaction was not refused");
    };
    assert_eq!(code(&e), "0A000", "{e:?}");
    proxy.batch_execute("ROLLBACK").await.unwrap();
    let Err(e) = proxy
        .copy_out("COPY (DELETE FROM docs WHERE cat = 1 RETURNING id) TO STDOUT")
        .await
    else {
        panic!("COPY (DELETE …) TO STDOUT was not refused");
    };
    assert_eq!(code(&e), "0A000", "{e:?}");
    assert_eq!(fx.shard_counts("docs").await.iter().sum::<i64>(), 60);
}

/// psycopg's `cursor.copy` (text and binary write_row, COPY TO in both
/// formats) through a proxy over four in-process shards: runs
/// tests/proxy_copy_psycopg.py (scripts/test.sh installs psycopg and
/// pgvector when missing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg_copy_through_embedded_shards() {
    let proxy = embedded_proxy("proxy-copy-psycopg", 4).await;
    let port = proxy.addr.port();
    tokio::task::spawn_blocking(move || {
        python_support::run_script("proxy_copy_psycopg.py", port, "copy ok\n")
    })
    .await
    .unwrap();
    proxy.shutdown().await.unwrap();
}
