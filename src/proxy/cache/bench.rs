//! `pgvshard bench cache`: a hot-set workload through in-process proxies
//! over the configured shards, once with the cache off, once with L1
//! only, and once with L1 + L2 (when a Redis URL is given). Query
//! vectors are drawn Zipf-like (s = 1) from a fixed set of distinct KNN
//! queries; a fraction of operations are UPDATEs, each of which bumps the
//! table's generation and so invalidates every cached answer of the
//! table. Prints QPS, p50/p99 latency and the L1/L2 hit ratios, and the
//! latency of one client repeating the hottest query (a hit every time
//! once cached).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::backend::{RemoteBackend, SharedBackend};
use super::super::config::{CacheConfig, ProxyConfig};
use super::super::{start, ProxyError};
use crate::proxy::backend::run_simple;
use crate::wire::PgError;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    /// The shards (the file's cache section is replaced per mode).
    pub config: ProxyConfig,
    /// Redis for the L1 + L2 mode; none skips that mode.
    pub redis_url: Option<String>,
    /// Rows loaded into `bench_cache_items`.
    pub rows: usize,
    /// Vector dimensions.
    pub dim: usize,
    /// Distinct KNN queries in the hot set.
    pub distinct: usize,
    /// Operations per mode.
    pub ops: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Fraction of operations that are writes.
    pub write_ratio: f64,
}

impl BenchArgs {
    /// The workload: 1,000 distinct queries, 5% writes.
    pub fn new(config: ProxyConfig, redis_url: Option<String>) -> Self {
        BenchArgs {
            config,
            redis_url,
            rows: 10_000,
            dim: 32,
            distinct: 1_000,
            ops: 20_000,
            clients: 8,
            write_ratio: 0.05,
        }
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn vector(&mut self, dim: usize) -> String {
        let v: Vec<String> = (0..dim).map(|_| format!("{:.3}", self.next())).collect();
        format!("[{}]", v.join(","))
    }
}

fn client(port: u16, clients: usize) -> SharedBackend {
    Arc::new(RemoteBackend::loopback(port, clients))
}

async fn load(args: &BenchArgs) -> Result<(), PgError> {
    let mut config = args.config.clone();
    config.listen = "127.0.0.1:0".to_string();
    config.cache = CacheConfig::default();
    let proxy = start(config).await.map_err(setup_error)?;
    let db = client(proxy.addr.port(), 1);
    let mut chan = db.checkout().await?;
    let dim = args.dim;
    run_simple(chan.as_mut(), "DROP TABLE IF EXISTS bench_cache_items").await?;
    run_simple(
        chan.as_mut(),
        &format!("CREATE TABLE bench_cache_items (id int PRIMARY KEY, embedding vector({dim}))"),
    )
    .await?;
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let ids: Vec<usize> = (0..args.rows).collect();
    for chunk in ids.chunks(500) {
        let values: Vec<String> = chunk
            .iter()
            .map(|id| format!("({id}, '{}')", rng.vector(dim)))
            .collect();
        let sql = format!("INSERT INTO bench_cache_items VALUES {}", values.join(", "));
        run_simple(chan.as_mut(), &sql).await?;
    }
    Ok(())
}

fn setup_error(e: ProxyError) -> PgError {
    PgError::new("58000", e.to_string())
}

/// One mode's figures.
struct Figures {
    qps: f64,
    p50: Duration,
    p99: Duration,
    hit_ratios: String,
    /// p50 and p99 of one client repeating the hottest query.
    repeat: (Duration, Duration),
}

/// Times of one client sending `sql` again and again.
const REPEATS: usize = 5_000;

/// p50 and p99 of `sorted` latencies.
fn percentiles(sorted: &[Duration]) -> (Duration, Duration) {
    let at = |q: f64| {
        sorted
            .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    (at(0.5), at(0.99))
}

/// One client runs `sql` [`REPEATS`] times (after as many untimed).
async fn repeat(db: &SharedBackend, sql: &str) -> Result<(Duration, Duration), PgError> {
    let mut chan = db.checkout().await?;
    let mut latencies = Vec::with_capacity(REPEATS);
    for i in 0..2 * REPEATS {
        let t = Instant::now();
        run_simple(chan.as_mut(), sql).await?;
        if i >= REPEATS {
            latencies.push(t.elapsed());
        }
    }
    latencies.sort();
    Ok(percentiles(&latencies))
}

async fn mode(args: &BenchArgs, cache: CacheConfig) -> Result<Figures, PgError> {
    let mut config = args.config.clone();
    config.listen = "127.0.0.1:0".to_string();
    config.cache = cache;
    let proxy = start(config).await.map_err(setup_error)?;
    let db = client(proxy.addr.port(), args.clients);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let queries: Arc<Vec<String>> = Arc::new(
        (0..args.distinct)
            .map(|_| {
                let v = rng.vector(args.dim);
                format!("SELECT id FROM bench_cache_items ORDER BY embedding <-> '{v}' LIMIT 10")
            })
            .collect(),
    );
    // Zipf (s = 1) over the hot set: the CDF of 1/rank.
    let weights: Vec<f64> = (1..=args.distinct).map(|r| 1.0 / r as f64).collect();
    let total: f64 = weights.iter().sum();
    let cdf: Arc<Vec<f64>> = Arc::new(
        weights
            .iter()
            .scan(0.0, |acc, w| {
                *acc += w / total;
                Some(*acc)
            })
            .collect(),
    );
    let per_client = args.ops / args.clients.max(1);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (db, queries, cdf) = (Arc::clone(&db), Arc::clone(&queries), Arc::clone(&cdf));
        let (dim, rows, write_ratio) = (args.dim, args.rows, args.write_ratio);
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0xdead_beef ^ (c as u64 + 1) << 20);
            let mut chan = db.checkout().await?;
            let mut latencies = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let sql = if rng.next() < write_ratio {
                    let id = (rng.next() * rows as f64) as usize;
                    format!(
                        "UPDATE bench_cache_items SET embedding = '{}' WHERE id = {id}",
                        rng.vector(dim)
                    )
                } else {
                    let u = rng.next();
                    let i = cdf.partition_point(|&p| p < u).min(queries.len() - 1);
                    queries[i].clone()
                };
                let t = Instant::now();
                run_simple(chan.as_mut(), &sql).await?;
                latencies.push(t.elapsed());
            }
            Ok::<_, PgError>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        let part = t
            .await
            .map_err(|e| PgError::new("58000", e.to_string()))??;
        latencies.extend(part);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let (p50, p99) = percentiles(&latencies);
    let repeat = repeat(&db, &queries[0]).await?;
    let mut chan = db.checkout().await?;
    chan.send(&super::super::backend::Request::Simple(
        "SHOW pgvshard.cache".to_string(),
    ))
    .await?;
    let mut ratios = Vec::new();
    loop {
        match chan.recv().await? {
            super::super::backend::BackendMessage::DataRow(row) => {
                let f = super::super::backend::messages::fields(&row)?;
                if let [Some(level), _, _, Some(ratio), ..] = f.as_slice() {
                    ratios.push(format!(
                        "{} {}",
                        String::from_utf8_lossy(level),
                        String::from_utf8_lossy(ratio)
                    ));
                }
            }
            super::super::backend::BackendMessage::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    Ok(Figures {
        qps: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50,
        p99,
        hit_ratios: ratios.join(", "),
        repeat,
    })
}

/// Loads the table, runs every mode and returns the table of figures.
pub async fn run(args: BenchArgs) -> Result<String, PgError> {
    load(&args).await?;
    let l1 = CacheConfig {
        enabled: true,
        ..CacheConfig::default()
    };
    let mut modes = vec![
        ("cache off", CacheConfig::default()),
        ("L1 only", l1.clone()),
    ];
    if let Some(url) = &args.redis_url {
        modes.push((
            "L1 + L2",
            CacheConfig {
                redis_url: Some(url.clone()),
                ..l1
            },
        ));
    }
    let mut table = format!(
        "hot set: {} distinct KNN queries (Zipf s=1), {:.0}% writes, {} ops, {} clients, {} rows x {} dims; last columns: 1 client repeating the hottest query\n\n| mode | QPS | p50 | p99 | hit ratio | repeat p50 | repeat p99 |\n|---|---|---|---|---|---|---|\n",
        args.distinct,
        args.write_ratio * 100.0,
        args.ops,
        args.clients,
        args.rows,
        args.dim
    );
    for (name, cache) in modes {
        let f = mode(&args, cache).await?;
        writeln!(
            table,
            "| {name} | {:.0} | {:?} | {:?} | {} | {:?} | {:?} |",
            f.qps, f.p50, f.p99, f.hit_ratios, f.repeat.0, f.repeat.1
        )
        .ok();
    }
    Ok(table)
}
