//! `/metrics` scraped over HTTP after a known workload through the proxy
//! (two real PostgreSQL shards): the proxy's and the cache's series are
//! there with plausible values.

mod pg_support;

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
            "pgvshard_shard_request_duration_seconds_count{shard=\"s0\"}"
        ) >= 1.0
    );
    assert!(value(m, "pgvshard_shard_errors_total{shard=\"s0\"}") >= 1.0);
    assert_eq!(
        value(m, "pgvshard_pool_connections{shard=\"s1\",state=\"size\"}"),
        8.0
    );
    assert!(!m.contains("[1,2,3"), "no vectors in labels");
    assert!(scrape(addr, "/nope").await.starts_with("HTTP/1.1 404"));
}
