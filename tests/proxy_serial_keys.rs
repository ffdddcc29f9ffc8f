//! Serial keys the proxy generates, with two proxies in front of the same
//! two `pgvshard shard` processes and one real redis-server: concurrent
//! multi-row INSERTs and COPYs through both never repeat a key, a wiped
//! Redis never restarts the counter below keys in use, an unreachable
//! Redis refuses only the rows that need a generated key, and one proxy
//! without Redis counts on from the shards' largest key as before.

mod redis_support;
mod shard_support;

use std::collections::HashSet;

use bytes::Bytes;
use futures_util::{pin_mut, SinkExt};
use redis_support::RedisServer;
use shard_support::{fresh_dir, sqlstate, Shard};

const SCHEMA: &str = "CREATE TABLE t (id bigserial PRIMARY KEY, src int, n int)";

/// Two empty shards for test `name`.
fn shards(name: &str) -> Vec<Shard> {
    (0..2)
        .map(|i| Shard::start(&fresh_dir(&format!("keys-{name}-{i}"))))
        .collect()
}

/// A proxy in front of `shards` with the extra YAML `extra`.
async fn proxy(shards: &[Shard], extra: &str) -> pgvshard::proxy::RunningProxy {
    let mut yaml = String::from("listen: 127.0.0.1:0\nshards:\n");
    for (i, s) in shards.iter().enumerate() {
        yaml.push_str(&format!(
            "  - name: s{i}\n    host: 127.0.0.1\n    port: {}\n    dbname: db\n",
            s.port
        ));
    }
    yaml.push_str(extra);
    let config = pgvshard::proxy::config::ProxyConfig::from_yaml(&yaml).expect("valid config");
    pgvshard::proxy::start(config).await.expect("proxy starts")
}

/// The cache section of a proxy sharing `redis` (with or without caching).
fn with_redis(redis: &RedisServer, caching: bool) -> String {
    format!(
        "cache:\n  enabled: {caching}\n  redis_url: {}\n  key_prefix: k\n",
        redis.url()
    )
}

async fn client(proxy: &pgvshard::proxy::RunningProxy) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(proxy.addr.port())
        .user("postgres")
        .dbname("db")
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect to proxy");
    tokio::spawn(conn);
    client
}

/// Inserts `rows` rows without ids in one statement; the ids RETURNING
/// gives, which must be positive and increasing.
async fn insert(client: &tokio_postgres::Client, src: i32, rows: usize) -> Vec<i64> {
    let values: Vec<String> = (0..rows).map(|n| format!("({src}, {n})")).collect();
    let sql = format!(
        "INSERT INTO t (src, n) VALUES {} RETURNING id",
        values.join(", ")
    );
    let ids: Vec<i64> = client
        .query(&sql, &[])
        .await
        .unwrap_or_else(|e| panic!("insert: {e:?}"))
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids.len(), rows);
    assert!(ids[0] > 0, "{ids:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    ids
}

/// COPYs `rows` rows without ids.
async fn copy(client: &tokio_postgres::Client, src: i32, rows: usize) {
    let data: String = (0..rows).map(|n| format!("{src}\t{n}\n")).collect();
    let sink = client
        .copy_in("COPY t (src, n) FROM STDIN")
        .await
        .expect("COPY starts");
    pin_mut!(sink);
    for chunk in data.as_bytes().chunks(4096) {
        sink.send(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert_eq!(sink.finish().await.expect("COPY ends"), rows as u64);
}

/// Every id in the table, through a proxy.
async fn all_ids(client: &tokio_postgres::Client) -> Vec<i64> {
    client
        .query("SELECT id FROM t", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn assert_distinct(ids: &[i64], expected: usize) {
    assert_eq!(ids.len(), expected);
    let distinct: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), expected, "repeated ids");
    assert!(ids.iter().all(|&id| id > 0));
}

/// Per proxy: three sessions of ten 40-row INSERTs and one 2500-row COPY,
/// all at once.
async fn load_through(proxies: [&pgvshard::proxy::RunningProxy; 2]) -> usize {
    let mut tasks = Vec::new();
    for (p, proxy) in proxies.into_iter().enumerate() {
        for s in 0..3 {
            let c = client(proxy).await;
            let src = (p * 10 + s) as i32;
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    insert(&c, src, 40).await;
                }
            }));
        }
        let c = client(proxy).await;
        tasks.push(tokio::spawn(async move {
            copy(&c, p as i32 * 10 + 9, 2500).await
        }));
    }
    for t in tasks {
        t.await.expect("no session failed");
    }
    2 * (3 * 10 * 40 + 2500)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_proxies_sharing_redis_never_repeat_a_key() {
    let redis = RedisServer::start();
    let shards = shards("two");
    // One proxy caches, the other only shares Redis for its keys.
    let a = proxy(&shards, &with_redis(&redis, true)).await;
    let b = proxy(&shards, &with_redis(&redis, false)).await;
    let ca = client(&a).await;
    ca.batch_execute(SCHEMA).await.unwrap();
    let first = insert(&ca, 100, 3).await;
    assert_eq!(first, vec![1, 2, 3], "an empty table starts at 1");

    let loaded = load_through([&a, &b]).await + 3;
    let ids = all_ids(&client(&b).await).await;
    assert_distinct(&ids, loaded);
    let on_shards: i64 = {
        let mut n = 0;
        for s in &shards {
            let row = s
                .connect()
                .await
                .query_one("SELECT count(*) FROM t", &[])
                .await
                .unwrap();
            n += row.get::<_, i64>(0);
        }
        n
    };
    assert_eq!(on_shards, loaded as i64);

    // TRUNCATE does not restart the shared counter: keys never repeat.
    // A forgot its block and reserves a new one above every key so far;
    // B goes on with the rest of its block, handed out to nobody.
    let largest = ids.iter().copied().max().unwrap();
    ca.batch_execute("TRUNCATE t").await.unwrap();
    let from_a = insert(&ca, 200, 2).await;
    assert!(from_a[0] > largest, "{from_a:?} after {largest}");
    let from_b = insert(&client(&b).await, 200, 2).await;
    assert!(from_b
        .iter()
        .all(|id| !ids.contains(id) && !from_a.contains(id)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_redis_never_restarts_below_the_keys_in_use() {
    let mut redis = RedisServer::start();
    let shards = shards("wiped");
    let a = proxy(&shards, &with_redis(&redis, true)).await;
    let b = proxy(&shards, &with_redis(&redis, false)).await;
    let (ca, cb) = (client(&a).await, client(&b).await);
    ca.batch_execute(SCHEMA).await.unwrap();
    let mut before = insert(&ca, 1, 10).await;
    before.extend(insert(&cb, 2, 10).await);

    redis.restart();
    // Both still hold part of a block. A needs a new one first, while B
    // (no cache, so no Redis traffic) has not noticed the wipe and goes on
    // with its old block: A's must start above it.
    let mut after = insert(&cb, 2, 5).await;
    after.extend(insert(&ca, 1, 5).await);
    after.extend(insert(&ca, 1, 1500).await);
    after.extend(insert(&cb, 2, 5).await);
    for _ in 0..2 {
        after.extend(insert(&ca, 1, 1500).await);
        after.extend(insert(&cb, 2, 1500).await);
    }
    // A third proxy, started after the wipe, reads the shards' largest key.
    let c = proxy(&shards, &with_redis(&redis, false)).await;
    after.extend(insert(&client(&c).await, 3, 5).await);
    let largest_before = before.iter().copied().max().unwrap();
    let fresh = after[10..1510].iter().chain(&after[1515..]);
    assert!(
        fresh.into_iter().all(|&id| id > largest_before),
        "new blocks start above every key reserved before the wipe"
    );
    let ids = all_ids(&ca).await;
    assert_distinct(&ids, before.len() + after.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_refuses_only_rows_that_need_a_generated_key() {
    let mut redis = RedisServer::start();
    let shards = shards("down");
    let a = proxy(&shards, &with_redis(&redis, true)).await;
    let ca = client(&a).await;
    ca.batch_execute(SCHEMA).await.unwrap();
    redis.kill();
    let e = ca
        .batch_execute("INSERT INTO t (src, n) VALUES (1, 1)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "55000");
    let message = e.as_db_error().unwrap().message().to_string();
    assert!(message.contains("Redis"), "{message}");
    ca.batch_execute("INSERT INTO t VALUES (77, 1, 1)")
        .await
        .expect("explicit keys need no Redis");
    assert_eq!(all_ids(&ca).await, vec![77]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_one_proxy_counts_on_from_the_shards() {
    let shards = shards("local");
    let p = proxy(&shards, "").await;
    let c = client(&p).await;
    c.batch_execute(SCHEMA).await.unwrap();
    c.batch_execute("INSERT INTO t VALUES (7, 0, 0), (42, 0, 0)")
        .await
        .unwrap();
    assert_eq!(insert(&c, 1, 3).await, vec![43, 44, 45]);
    copy(&c, 2, 1500).await;
    let copied = all_ids(&c).await;
    assert_distinct(&copied, 2 + 3 + 1500);
    assert_eq!(copied.iter().filter(|&&id| id > 45).count(), 1500);
    let next = insert(&c, 1, 1).await;
    assert!(next[0] > copied.iter().copied().max().unwrap());
    // As before: DDL makes the proxy read the shards' largest key again.
    c.batch_execute("TRUNCATE t").await.unwrap();
    assert_eq!(insert(&c, 1, 2).await, vec![1, 2]);

    // Only integer keys are generated: a text key left out is refused
    // with a clear error rather than filled with "1", "2", …
    c.batch_execute("CREATE TABLE named (name text PRIMARY KEY, n int)")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO named VALUES ('a', 1), ('b', 2)")
        .await
        .unwrap();
    let e = c
        .batch_execute("INSERT INTO named (n) VALUES (3)")
        .await
        .unwrap_err();
    let db = e.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "0A000", "{}", db.message());
    assert!(db.message().contains("only integer"), "{}", db.message());
}

/// Redis emptied while a proxy's connection stays up (FLUSHALL, an
/// eviction): the proxy does not recreate the counter from its own stale
/// floor but reads the shards' largest key first, so it never hands out a
/// key already stored above that floor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_lost_behind_a_live_connection_restarts_above_the_shards() {
    let shards = shards("flushed");
    let redis = RedisServer::start();
    let p = proxy(&shards, &with_redis(&redis, false)).await;
    let c = client(&p).await;
    c.batch_execute(SCHEMA).await.unwrap();
    assert_eq!(insert(&c, 1, 1).await, vec![1]);
    // Inside where the old code restarted a lost counter (this proxy's
    // block end 1,000 + the 1,000,000 loss gap): only the shards know it.
    let stored: i64 = 1_000_000 + 1_001;
    c.batch_execute(&format!("INSERT INTO t VALUES ({stored}, 2, 0)"))
        .await
        .unwrap();
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("FLUSHALL").query(&mut conn).unwrap();
    let ids = insert(&c, 3, 1_000).await;
    assert!(ids[0] > stored, "{} after {stored}", ids[0]);
    assert_distinct(&all_ids(&c).await, 1_002);
}
