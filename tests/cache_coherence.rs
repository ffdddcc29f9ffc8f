//! The result cache over real PostgreSQL + pgvector shards and a real
//! redis-server: hits return the bytes a miss returns, a write through
//! one proxy is seen by another proxy's next read, a Redis crash costs
//! caching but no correct answer, and reads that must not be cached are
//! not.

mod pg_support;
mod redis_support;

use std::time::Duration;

use pg_support::{connect_to, items_inserts, text_rows, Fixture};
use redis_support::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SCHEMA: &str =
    "CREATE TABLE items (id int PRIMARY KEY, cat int, embedding vector(8), bits bit(16))";
const KNN: &str = "SELECT id, embedding <-> '[1,2,3,1,2,3,1,2]' AS d FROM items ORDER BY embedding <-> '[1,2,3,1,2,3,1,2]' LIMIT 5";

fn cache_yaml(redis: Option<&RedisServer>) -> String {
    let mut y = String::from("cache:\n  enabled: true\n  ttl_seconds: 60\n");
    if let Some(r) = redis {
        y.push_str(&format!("  redis_url: {}\n  key_prefix: t\n", r.url()));
    }
    y
}

async fn loaded(extra: &str) -> (Fixture, tokio_postgres::Client) {
    let fx = Fixture::start(extra).await;
    let client = fx.client().await;
    client.batch_execute(SCHEMA).await.unwrap();
    for insert in items_inserts(300, 8, 100) {
        client.batch_execute(&insert).await.unwrap();
    }
    (fx, client)
}

/// (hits, misses) of a level from `SHOW pgvshard.cache`.
async fn counts(client: &tokio_postgres::Client, level: &str) -> (i64, i64) {
    let rows = text_rows(client, "SHOW pgvshard.cache").await.unwrap();
    let row = rows
        .iter()
        .find(|r| r[0].as_deref() == Some(level))
        .expect("level row");
    let n = |i: usize| row[i].as_deref().unwrap().parse().unwrap();
    (n(1), n(2))
}

/// The raw bytes of a simple query's reply, up to ReadyForQuery.
async fn raw_reply(port: u16, sql: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut body = Vec::new();
    body.extend_from_slice(&196608i32.to_be_bytes());
    for p in ["user", "postgres", "database", "postgres"] {
        body.extend_from_slice(p.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut startup = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    startup.extend_from_slice(&body);
    s.write_all(&startup).await.unwrap();
    read_until_ready(&mut s).await;
    let mut q = vec![b'Q'];
    q.extend_from_slice(&((sql.len() + 5) as i32).to_be_bytes());
    q.extend_from_slice(sql.as_bytes());
    q.push(0);
    s.write_all(&q).await.unwrap();
    read_until_ready(&mut s).await
}

async fn read_until_ready(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let tag = s.read_u8().await.unwrap();
        let len = s.read_i32().await.unwrap() as usize;
        let mut body = vec![0; len - 4];
        s.read_exact(&mut body).await.unwrap();
        if tag == b'Z' {
            return out;
        }
        out.push(tag);
        out.extend_from_slice(&(len as i32).to_be_bytes());
        out.extend_from_slice(&body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_return_exactly_the_bytes_of_a_miss() {
    let (fx, client) = loaded(&cache_yaml(None)).await;
    let port = fx.proxy.addr.port();
    let miss = raw_reply(port, KNN).await;
    let hit = raw_reply(port, KNN).await;
    assert_eq!(counts(&client, "l1").await, (1, 1));
    assert_eq!(hit, miss);
    assert!(miss.starts_with(b"T"), "RowDescription first");

    // Extended protocol, binary results: a hit equals a miss and the
    // uncached answer.
    let v = pgvector::Vector::from(vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0]);
    let sql =
        "SELECT id, embedding, embedding <=> $1 AS d FROM items ORDER BY embedding <=> $1 LIMIT $2";
    let rows = |rows: Vec<tokio_postgres::Row>| -> Vec<(i32, Vec<f32>, f64)> {
        rows.iter()
            .map(|r| (r.get(0), r.get::<_, pgvector::Vector>(1).to_vec(), r.get(2)))
            .collect()
    };
    let first = rows(client.query(sql, &[&v, &7i64]).await.unwrap());
    let second = rows(client.query(sql, &[&v, &7i64]).await.unwrap());
    assert_eq!(first, second);
    assert_eq!(counts(&client, "l1").await, (2, 2));
    client
        .batch_execute("SET pgvshard.cache = off")
        .await
        .unwrap();
    let uncached = rows(client.query(sql, &[&v, &7i64]).await.unwrap());
    assert_eq!(uncached, first);
    assert_eq!(counts(&client, "l1").await, (2, 2), "cache off bypasses it");
    assert_eq!(first.len(), 7);

    // Another client's write changes the next answer.
    client
        .batch_execute("SET pgvshard.cache = on")
        .await
        .unwrap();
    let before = text_rows(&client, KNN).await.unwrap();
    let other = fx.client().await;
    other
        .batch_execute(
            "INSERT INTO items VALUES (9001, 1, '[1,2,3,1,2,3,1,2]', B'0000000000000000')",
        )
        .await
        .unwrap();
    let after = text_rows(&client, KNN).await.unwrap();
    assert_ne!(after, before);
    assert_eq!(after[0][0].as_deref(), Some("9001"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_that_wrote_and_volatile_reads_are_not_cached() {
    let (_fx, client) = loaded(&cache_yaml(None)).await;
    client.batch_execute("BEGIN").await.unwrap();
    text_rows(&client, KNN).await.unwrap();
    client
        .batch_execute(
            "INSERT INTO items VALUES (9002, 1, '[1,2,3,1,2,3,1,2]', B'0000000000000000')",
        )
        .await
        .unwrap();
    let inside = text_rows(&client, KNN).await.unwrap();
    let again = text_rows(&client, KNN).await.unwrap();
    assert_eq!(inside[0][0].as_deref(), Some("9002"), "sees its own write");
    assert_eq!(inside, again);
    client.batch_execute("COMMIT").await.unwrap();
    let (hits, _) = counts(&client, "l1").await;
    assert_eq!(
        hits, 0,
        "nothing answered from the cache inside the transaction"
    );
    let after = text_rows(&client, KNN).await.unwrap();
    assert_eq!(after, inside, "the commit bumped the generation");
    text_rows(&client, "SELECT id, now() FROM items WHERE id = 1")
        .await
        .unwrap();
    text_rows(&client, "SELECT id, now() FROM items WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(counts(&client, "l1").await.0, 0);
    let cleared = text_rows(&client, "SELECT pgvshard.cache_clear()")
        .await
        .unwrap();
    // The read before the write and the one after COMMIT.
    assert_eq!(cleared[0][0].as_deref(), Some("2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_one_proxy_reaches_the_other_proxys_cache() {
    let redis = RedisServer::start();
    let (fx, a) = loaded(&cache_yaml(Some(&redis))).await;
    let mut yaml = String::from("listen: 127.0.0.1:0\nshards:\n");
    for (i, s) in fx.shards.iter().enumerate() {
        yaml.push_str(&format!("  - name: s{i}\n    port: {}\n", s.port));
    }
    yaml.push_str(&cache_yaml(Some(&redis)));
    let config = pgvshard::proxy::config::ProxyConfig::from_yaml(&yaml).unwrap();
    let proxy_b = pgvshard::proxy::start(config).await.unwrap();
    let b = connect_to(proxy_b.addr.port()).await.unwrap();
    // Each proxy starts a new Redis epoch at its first read: let both do so.
    for c in [&a, &b] {
        text_rows(c, "SELECT id FROM items WHERE id = 1")
            .await
            .unwrap();
    }

    let first = text_rows(&a, KNN).await.unwrap();
    assert_eq!(text_rows(&a, KNN).await.unwrap(), first);
    assert_eq!(counts(&a, "l1").await.0, 1, "A caches the KNN answer");
    // B finds it in the shared L2.
    assert_eq!(text_rows(&b, KNN).await.unwrap(), first);
    assert_eq!(counts(&b, "l2").await.0, 1);

    b.batch_execute("INSERT INTO items VALUES (9003, 1, '[1,2,3,1,2,3,1,2]', B'0000000000000000')")
        .await
        .unwrap();
    let after = text_rows(&a, KNN).await.unwrap();
    assert_eq!(
        after[0][0].as_deref(),
        Some("9003"),
        "A sees B's write at once"
    );
    b.batch_execute("DELETE FROM items WHERE id = 9003")
        .await
        .unwrap();
    assert_eq!(text_rows(&a, KNN).await.unwrap(), first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_crash_stops_caching_without_wrong_answers() {
    let mut redis = RedisServer::start();
    let (_fx, client) = loaded(&cache_yaml(Some(&redis))).await;
    let first = text_rows(&client, KNN).await.unwrap();
    text_rows(&client, KNN).await.unwrap();
    assert_eq!(counts(&client, "l1").await.0, 1);

    redis.kill();
    // Every answer stays correct and no client sees an error.
    assert_eq!(text_rows(&client, KNN).await.unwrap(), first);
    client
        .batch_execute(
            "INSERT INTO items VALUES (9004, 1, '[1,2,3,1,2,3,1,2]', B'0000000000000000')",
        )
        .await
        .unwrap();
    let changed = text_rows(&client, KNN).await.unwrap();
    assert_eq!(changed[0][0].as_deref(), Some("9004"));
    assert_eq!(text_rows(&client, KNN).await.unwrap(), changed);
    let (hits_down, _) = counts(&client, "l1").await;
    assert_eq!(hits_down, 1, "no hits while Redis is away");
    let state = text_rows(&client, "SHOW pgvshard.cache").await.unwrap();
    assert!(
        state[1][6].as_deref().unwrap().starts_with("suspended"),
        "{state:?}"
    );

    redis.restart();
    let mut resumed = false;
    for _ in 0..50 {
        assert_eq!(text_rows(&client, KNN).await.unwrap(), changed);
        if counts(&client, "l1").await.0 > hits_down {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(resumed, "caching resumes when Redis is back");
}

/// A generation Redis lost (evicted, or deleted by hand) starts again from
/// a random value, not from zero: counting up from zero would reach the
/// generation an old entry was cached under and serve it after a write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_generation_never_brings_back_an_old_answer() {
    let redis = RedisServer::start();
    let (_fx, client) = loaded(&cache_yaml(Some(&redis))).await;
    text_rows(&client, KNN).await.unwrap();
    client
        .batch_execute(
            "INSERT INTO items VALUES (9004, 1, '[1,2,3,1,2,3,1,2]', B'0000000000000000')",
        )
        .await
        .unwrap();
    let with_row = text_rows(&client, KNN).await.unwrap();
    assert_eq!(with_row[0][0].as_deref(), Some("9004"));
    assert_eq!(text_rows(&client, KNN).await.unwrap(), with_row, "cached");

    let connect = || {
        redis::Client::open(redis.url())
            .unwrap()
            .get_connection()
            .unwrap()
    };
    let (mut reader, mut admin) = (connect(), connect());
    let mut generation = || -> Option<String> {
        redis::cmd("GET")
            .arg("t:gen:items")
            .query(&mut reader)
            .unwrap()
    };
    let cached_under = generation().expect("the table's generation is in Redis");
    let _: i64 = redis::cmd("DEL")
        .arg("t:gen:items")
        .query(&mut admin)
        .unwrap();
    client
        .batch_execute("DELETE FROM items WHERE id = 9004")
        .await
        .unwrap();
    // Writes that change nothing, until the generation would come back
    // to the one the old answer was cached under.
    for _ in 0..50 {
        if generation().as_deref() == Some(cached_under.as_str()) {
            break;
        }
        client
            .batch_execute("UPDATE items SET cat = cat WHERE id = -1")
            .await
            .unwrap();
    }
    let after = text_rows(&client, KNN).await.unwrap();
    assert_ne!(
        after[0][0].as_deref(),
        Some("9004"),
        "the deleted row is gone"
    );
}

/// A read that calls a user function may write through it: it bumps the
/// schema generation, so no cached answer from before it is served after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_calling_a_user_function_invalidates_like_a_write() {
    let (_fx, client) = loaded(&cache_yaml(None)).await;
    client
        .batch_execute(
            "INSERT INTO items VALUES (9005, 1, '[1,2,3,1,2,3,1,2]', B'0000000000000000')",
        )
        .await
        .unwrap();
    client
        .batch_execute(
            "CREATE FUNCTION purge(target int) RETURNS int LANGUAGE sql \
             AS 'DELETE FROM items WHERE id = target RETURNING 1'",
        )
        .await
        .unwrap();
    let with_row = text_rows(&client, KNN).await.unwrap();
    assert_eq!(with_row[0][0].as_deref(), Some("9005"));
    assert_eq!(text_rows(&client, KNN).await.unwrap(), with_row, "cached");
    // Routed by key to the row's shard, where the function deletes it.
    let purged = text_rows(&client, "SELECT purge(9005) FROM items WHERE id = 9005")
        .await
        .unwrap();
    assert_eq!(purged.len(), 1);
    let after = text_rows(&client, KNN).await.unwrap();
    assert_ne!(
        after[0][0].as_deref(),
        Some("9005"),
        "the purged row is gone"
    );
}
