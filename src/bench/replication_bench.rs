//! `pgvshard bench replication`: a primary `pgvshard shard` and one
//! synchronous standby (`FIRST 1 (s1)`) started from this binary on
//! loopback. Prints commit latency per `synchronous_commit`, replication
//! throughput and replay lag under a multi-row INSERT load, and the time a
//! promotion takes after the primary is killed.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

use super::cluster::{client_runtime, free_port, wait_ready, Cluster};
use super::measure::{percentile, Timing};

/// Options of `pgvshard bench replication`.
#[derive(Debug, clap::Args)]
pub struct ReplicationArgs {
    /// Single-row commits timed per synchronous_commit level.
    #[arg(long, default_value_t = 500)]
    commits: usize,
    /// Rows of the throughput load.
    #[arg(long, default_value_t = 50_000)]
    rows: usize,
    /// Rows per multi-row INSERT of that load.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Dimensions of the vectors.
    #[arg(long, default_value_t = 96)]
    dim: usize,
}

async fn connect(port: u16) -> Result<Client, String> {
    let (client, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname("bench")
        .connect(NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(client)
}

async fn text(client: &Client, sql: &str) -> Result<String, String> {
    let rows = client
        .simple_query(sql)
        .await
        .map_err(|e| format!("{sql}: {e}"))?;
    Ok(rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_default())
}

fn lsn(text: &str) -> u64 {
    text.split_once('/')
        .and_then(|(hi, lo)| {
            Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
        })
        .unwrap_or(0)
}

/// Waits until the standby has replayed up to `target`.
async fn replayed(standby: &Client, target: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while lsn(&text(standby, "SELECT pg_last_wal_replay_lsn()").await?) < target {
        if Instant::now() > deadline {
            return Err("the standby did not catch up within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

fn vector(i: usize, dim: usize) -> String {
    let parts: Vec<String> = (0..dim)
        .map(|d| format!("{:.4}", ((i * 31 + d * 17) % 1000) as f32 / 1000.0))
        .collect();
    format!("'[{}]'", parts.join(","))
}

/// Runs the benchmark and prints its tables.
pub fn run(args: &ReplicationArgs) -> Result<(), String> {
    let (runtime, exe) = client_runtime()?;
    let mut cluster = Cluster::empty("replication")?;
    let (pport, sport) = (free_port()?, free_port()?);
    let dir = cluster.dir().to_path_buf();
    let pconf = dir.join("primary.yaml");
    std::fs::write(&pconf, "synchronous_standby_names: 'FIRST 1 (s1)'\n")
        .map_err(|e| e.to_string())?;
    let sconf = dir.join("standby.yaml");
    std::fs::write(&sconf, "standby_of:\n  application_name: s1\n").map_err(|e| e.to_string())?;
    let shard = |conf: &std::path::Path, port: u16, data: &str| -> Vec<String> {
        vec![
            "shard".into(),
            "--config".into(),
            conf.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--data-dir".into(),
            dir.join(data).display().to_string(),
        ]
    };
    let primary_args = shard(&pconf, pport, "primary");
    let refs: Vec<&str> = primary_args.iter().map(String::as_str).collect();
    cluster.spawn(&exe, "primary", &refs)?;
    wait_ready(pport)?;
    let mut standby_args = shard(&sconf, sport, "standby");
    standby_args.extend(["--standby-of".into(), format!("127.0.0.1:{pport}")]);
    let refs: Vec<&str> = standby_args.iter().map(String::as_str).collect();
    cluster.spawn(&exe, "standby", &refs)?;
    wait_ready(sport)?;
    let out = runtime.block_on(async {
        let p = connect(pport).await?;
        let s = connect(sport).await?;
        let dim = args.dim;
        p.batch_execute(&format!(
            "SET synchronous_commit = local; \
             CREATE TABLE items (id bigint PRIMARY KEY, embedding vector({dim})); \
             CREATE INDEX ON items USING hnsw (embedding vector_l2_ops)"
        ))
        .await
        .map_err(|e| e.to_string())?;
        let mut out = String::new();
        writeln!(
            out,
            "commit latency (single-row INSERT, HNSW index, 1 synchronous standby on loopback)"
        )
        .ok();
        writeln!(out, "synchronous_commit | commits/s | p50 ms | p99 ms").ok();
        let mut id = 0usize;
        for level in ["off", "local", "on", "remote_apply"] {
            p.batch_execute(&format!("SET synchronous_commit = {level}"))
                .await
                .map_err(|e| e.to_string())?;
            let started = Instant::now();
            let mut micros = Vec::with_capacity(args.commits);
            for _ in 0..args.commits {
                id += 1;
                let t = Instant::now();
                p.simple_query(&format!(
                    "INSERT INTO items VALUES ({id}, {})",
                    vector(id, dim)
                ))
                .await
                .map_err(|e| e.to_string())?;
                micros.push(t.elapsed().as_secs_f64() * 1e6);
            }
            let t = Timing::from(micros, started.elapsed());
            writeln!(
                out,
                "{level} | {:.0} | {:.2} | {:.2}",
                t.qps,
                t.p50 / 1e3,
                t.p99 / 1e3
            )
            .ok();
        }

        // Throughput: multi-row INSERTs with `local`, lag sampled meanwhile.
        p.batch_execute("SET synchronous_commit = local")
            .await
            .map_err(|e| e.to_string())?;
        let wal_before = lsn(&text(&p, "SELECT pg_current_wal_lsn()").await?);
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let (p2, s2) = (connect(pport).await?, connect(sport).await?);
            let done = done.clone();
            tokio::spawn(async move {
                let mut lags = Vec::new();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok(at) = text(&p2, "SELECT pg_current_wal_lsn()").await else {
                        break;
                    };
                    let t = Instant::now();
                    if replayed(&s2, lsn(&at)).await.is_err() {
                        break;
                    }
                    lags.push(t.elapsed().as_secs_f64() * 1e3);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if lags.len() > 100_000 {
                        break;
                    }
                }
                lags
            })
        };
        let started = Instant::now();
        let mut loaded = 0;
        while loaded < args.rows {
            let n = args.batch.min(args.rows - loaded);
            let values: Vec<String> = (0..n)
                .map(|k| {
                    let i = id + 1 + loaded + k;
                    format!("({i}, {})", vector(i, dim))
                })
                .collect();
            p.simple_query(&format!("INSERT INTO items VALUES {}", values.join(",")))
                .await
                .map_err(|e| e.to_string())?;
            loaded += n;
        }
        let end = lsn(&text(&p, "SELECT pg_current_wal_lsn()").await?);
        replayed(&s, end).await?;
        let wall = started.elapsed();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut lags = sampler.await.unwrap_or_default();
        lags.sort_by(f64::total_cmp);
        let mb = (end - wal_before) as f64 / (1 << 20) as f64;
        writeln!(out).ok();
        writeln!(
            out,
            "replication of {} rows ({dim} dims, INSERTs of {}) until replayed on the standby",
            args.rows, args.batch
        )
        .ok();
        writeln!(
            out,
            "rows/s | WAL MB/s | replay lag p50 ms | replay lag p99 ms"
        )
        .ok();
        writeln!(
            out,
            "{:.0} | {:.1} | {:.1} | {:.1}",
            args.rows as f64 / wall.as_secs_f64(),
            mb / wall.as_secs_f64(),
            percentile(&lags, 0.5),
            percentile(&lags, 0.99)
        )
        .ok();
        Ok::<_, String>((out, s))
    })?;
    let (mut out, s) = out;
    // Promotion: SIGKILL the primary, promote the standby, first write.
    cluster.kill(0);
    let started = Instant::now();
    runtime.block_on(async {
        text(&s, "SELECT pg_promote()").await?;
        s.simple_query("INSERT INTO items VALUES (-1, NULL)")
            .await
            .map_err(|e| e.to_string())
    })?;
    writeln!(out).ok();
    writeln!(
        out,
        "promotion (pg_promote() to the first write committed): {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    )
    .ok();
    print!("{out}");
    Ok(())
}
