//! `/metrics` scraped over HTTP after a known workload through the proxy
//! (two real PostgreSQL shards): the proxy's and the cache's series are
//! there with plausible values. The embedded setup (in-process shards, a
//! real redis-server as L2) shows its shards' series, labelled by shard,
//! and the L2 entries Redis expired.

mod pg_support;
mod redis_support;

use pg_support::{items_inserts, text_rows, Fixture};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn scrape(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// The value of the first sample line starting with `series`.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_reports_the_workload() {
    let fx = Fixture::start("cache:\n  enabled: true\nmetrics:\n  listen: 127.0.0.1:0\n").await;
    let addr = fx.proxy.metrics_addr.expect("metrics endpoint");
    let client = fx.client().await;
    client
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, cat int, embedding vector(8), bits bit(16))",
        )
        .await
        .unwrap();
    for insert in items_inserts(200, 8, 100) {
        client.batch_execute(&insert).await.unwrap();
    }
    let knn = "SELECT id FROM items ORDER BY embedding <-> '[1,2,3,1,2,3,1,2]' LIMIT 5";
    for _ in 0..4 {
        text_rows(&client, knn).await.unwrap();
    }
    text_rows(&client, "SELECT cat FROM items WHERE id = 7")
        .await
        .unwrap();
    assert!(client
        .batch_execute("SELECT nope FROM items")
        .await
        .is_err());

    // The L1's size is eventually consistent; SHOW runs its pending upkeep.
    text_rows(&client, "SHOW pgvshard.cache").await.unwrap();
    let reply = scrape(addr, "/metrics").await;
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    let m = reply.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(value(m, "pgvshard_client_connections "), 1.0);
    assert_eq!(
        value(m, "pgvshard_statements_total{class=\"knn\",outcome=\"ok\"}"),
        4.0
    );
    assert_eq!(
        value(
            m,
            "pgvshard_statements_total{class=\"write\",outcome=\"ok\"}"
        ),
        2.0
    );
    assert_eq!(
        value(m, "pgvshard_statements_total{class=\"ddl\",outcome=\"ok\"}"),
        1.0
    );
    assert_eq!(
        value(
            m,
            "pgvshard_statements_total{class=\"point\",outcome=\"ok\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            m,
            "pgvshard_statements_total{class=\"scatter\",outcome=\"error_42\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            m,
            "pgvshard_statement_duration_seconds_count{class=\"knn\"}"
        ),
        4.0
    );
    assert_eq!(value(m, "pgvshard_cache_hits_total{level=\"l1\"}"), 3.0);
    assert!(value(m, "pgvshard_cache_misses_total{level=\"l1\"}") >= 1.0);
    assert_eq!(value(m, "pgvshard_cache_generation_bumps_total"), 3.0);
    assert!(value(m, "pgvshard_cache_bytes{level=\"l1\"}") > 0.0);
    for stage in ["parse", "plan", "backend", "merge"] {
        let n = value(
            m,
            &format!("pgvshard_stage_duration_seconds_count{{stage=\"{stage}\"}}"),
        );
        assert!(n >= 1.0, "{stage}");
    }
    assert!(value(m, "pgvshard_fanout_shards_count") >= 4.0);
    assert!(
        value(
            m,
            "pgvshard_node_request_duration_seconds_count{shard=\"s0\"}"
        ) >= 1.0
    );
    assert!(value(m, "pgvshard_node_errors_total{shard=\"s0\"}") >= 1.0);
    assert_eq!(
        value(
            m,
            "pgvshard_pool_connections{node=\"s1\",shard=\"s1\",state=\"size\"}"
        ),
        8.0
    );
    assert!(!m.contains("[1,2,3"), "no vectors in labels");
    assert!(scrape(addr, "/nope").await.starts_with("HTTP/1.1 404"));
}

/// The sum over every sample of `name` whose series contains each of `labels`.
fn sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            series.split('{').next() == Some(name) && labels.iter().all(|w| series.contains(w))
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_shards_and_redis_evictions_on_the_proxys_metrics() {
    let redis = redis_support::RedisServer::start();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("metrics-embedded");
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = pgvshard::proxy::config::ProxyConfig::embedded();
    config.listen = "127.0.0.1:0".into();
    config.data_dir = Some(dir);
    config.metrics.listen = Some("127.0.0.1:0".into());
    config.cache.ttl_seconds = 1;
    config.cache.redis_url = Some(redis.url());
    config.metrics.recall_sample_rate = 1.0;
    let proxy = pgvshard::proxy::start(config).await.unwrap();
    let addr = proxy.metrics_addr.expect("metrics endpoint");
    let body = |reply: String| reply.split("\r\n\r\n").nth(1).unwrap().to_string();
    let first = body(scrape(addr, "/metrics").await);
    assert_eq!(
        value(
            &first,
            "pgvshard_cache_evictions_total{cause=\"expired\",level=\"l2\"}"
        ),
        0.0
    );

    let (client, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(proxy.addr.port())
        .user("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute("CREATE TABLE items (id int PRIMARY KEY, embedding vector(3))")
        .await
        .unwrap();
    let rows: Vec<String> = (0..100)
        .map(|i| format!("({i}, '[{},{},{}]')", i % 7, i % 5, i % 3))
        .collect();
    client
        .batch_execute(&format!("INSERT INTO items VALUES {}", rows.join(", ")))
        .await
        .unwrap();
    client
        .batch_execute("CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)")
        .await
        .unwrap();
    let knn = "SELECT id FROM items ORDER BY embedding <-> '[1,2,3]' LIMIT 5";
    text_rows(&client, knn).await.unwrap();

    // The KNN answer went to L2 with a one-second TTL; Redis expires it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let m = loop {
        let m = body(scrape(addr, "/metrics").await);
        let expired = value(
            &m,
            "pgvshard_cache_evictions_total{cause=\"expired\",level=\"l2\"}",
        );
        if expired >= 1.0 || std::time::Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(
        value(
            &m,
            "pgvshard_cache_evictions_total{cause=\"expired\",level=\"l2\"}"
        ) >= 1.0,
        "{m}"
    );
    assert_eq!(sum(&m, "pgvshard_shard_rows", &["table=\"items\""]), 100.0);
    assert_eq!(
        sum(
            &m,
            "pgvshard_shard_index_entries",
            &["index=\"items_hnsw\""]
        ),
        100.0
    );
    for shard in ["shard0", "shard1", "shard2", "shard3"] {
        let label = format!("shard=\"{shard}\"");
        assert!(sum(&m, "pgvshard_shard_rows", &[&label]) > 0.0, "{shard}");
        assert_eq!(
            sum(
                &m,
                "pgvshard_shard_query_duration_seconds_count",
                &[&label, "plan=\"ann\""]
            ),
            1.0,
            "{shard}: the KNN query fanned out to every shard"
        );
        assert!(sum(&m, "pgvshard_shard_wal_written_bytes_total", &[&label]) > 0.0);
    }
    // Every shard's recall monitor sampled its ANN read (rate 1): exact
    // on 25 rows, so recall 1; in SHOW pgvshard.recall and on /metrics.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let recall = loop {
        let r = text_rows(&client, "SHOW pgvshard.recall").await.unwrap();
        if r.len() == 4 || std::time::Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let shards: Vec<_> = recall.iter().map(|r| r[0].clone()).collect();
    let expected = ["shard0", "shard1", "shard2", "shard3"].map(|s| Some(s.to_string()));
    assert_eq!(shards, expected, "{recall:?}");
    for r in &recall {
        let fields: Vec<_> = r[1..5].iter().map(|v| v.as_deref()).collect();
        assert_eq!(
            fields,
            [Some("items"), Some("items_hnsw"), Some("1"), Some("1")],
            "{r:?}"
        );
    }
    let m = body(scrape(addr, "/metrics").await);
    assert_eq!(
        sum(&m, "pgvshard_recall_at_k_count", &["index=\"items_hnsw\""]),
        4.0
    );
    proxy.shutdown().await.unwrap();
}
