//! `pgvshard bench txn`: what atomicity across shards costs.
//!
//! For each shard count it starts that many `pgvshard shard` processes and
//! a proxy in front of them (bench/cluster.rs), loads `--rows` rows through
//! the proxy, and asks every shard directly which keys it holds, so each
//! transaction below touches exactly the shards it names. Then, for each
//! client count, closed loops of `--seconds` through the proxy measure:
//! - a transaction block writing one shard (`BEGIN; UPDATE …; COMMIT`:
//!   the proxy commits it plainly);
//! - a block writing every shard (one UPDATE per shard: PREPARE
//!   TRANSACTION on each, the decision record, COMMIT PREPARED);
//! - one UPDATE whose keys span every shard, outside a block (the same
//!   two-phase commit, without the client's round trips);
//! - multi-row INSERTs of `--batch` new rows, all on one shard and spread
//!   over every shard (rows/s).
//!
//! COMMIT latency is the client's wait for the COMMIT (or for the whole
//! statement outside a block); every shard fsyncs its WAL at commit.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pgvshard::proxy::backend::run_simple;
use pgvshard::proxy::backend::{Backend, ExtendedRequest, RemoteBackend, Request, ShardChannel};
use pgvshard::proxy::slots::SlotMap;
use pgvshard::wire::{Format, PgError};

use super::cluster::{client_runtime, Cluster, ShardLink};
use super::measure::Timing;
use super::proxy_bench::query;

/// Options of `pgvshard bench txn`.
#[derive(Debug, clap::Args)]
pub struct TxnArgs {
    /// Shard counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [2, 4])]
    shards: Vec<usize>,
    /// Client counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8])]
    clients: Vec<usize>,
    /// Seconds of each closed loop.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Rows loaded before the UPDATE loops.
    #[arg(long, default_value_t = 1000)]
    rows: usize,
    /// Rows per multi-row INSERT.
    #[arg(long, default_value_t = 100)]
    batch: usize,
}

/// Dimensions of the table's vectors.
const DIM: usize = 8;
/// First key of the rows the INSERT loops add (above the loaded rows).
const INSERT_KEYS_FROM: u64 = 1 << 32;

/// What one loop iteration runs.
#[derive(Clone, Copy, PartialEq)]
enum Work {
    /// BEGIN; one UPDATE on one shard; COMMIT.
    OneShardBlock,
    /// BEGIN; one UPDATE per shard; COMMIT.
    EveryShardBlock,
    /// One UPDATE … WHERE id IN (a key of each shard).
    SpanningStatement,
    /// One INSERT of `batch` rows on one shard.
    InsertOneShard,
    /// One INSERT of `batch` rows spread over every shard.
    InsertEveryShard,
}

impl Work {
    fn label(self, shards: usize) -> String {
        match self {
            Work::OneShardBlock => "block writing 1 shard (plain commit)".to_string(),
            Work::EveryShardBlock => format!("block writing {shards} shards (2PC)"),
            Work::SpanningStatement => format!("UPDATE spanning {shards} shards (2PC)"),
            Work::InsertOneShard => "INSERT on 1 shard".to_string(),
            Work::InsertEveryShard => format!("INSERT spanning {shards} shards (2PC)"),
        }
    }
}

/// Runs the benchmark and prints its tables.
pub fn run(args: &TxnArgs) -> Result<(), String> {
    let (runtime, exe) = client_runtime()?;
    let (mut commits, mut inserts) = (String::new(), String::new());
    for &n in &args.shards {
        if n < 2 {
            return Err("every shard count must be at least 2 (one shard never needs 2PC)".into());
        }
        let cluster = Cluster::start(&exe, "txn", n, ShardLink::Tcp)?;
        runtime
            .block_on(measure_cluster(&cluster, args, &mut commits, &mut inserts))
            .map_err(|e| format!("{n} shards: {} {}", e.code, e.message))?;
        eprintln!("{n} shards done");
    }
    println!(
        "table (id bigint PRIMARY KEY, n int, embedding vector({DIM})), {} rows loaded; closed loops of {} s through the proxy\n",
        args.rows, args.seconds
    );
    println!("Commit latency (COMMIT, or the whole statement outside a block)\n");
    println!("| shards | transaction | clients | txn/s | commit p50 µs | commit p99 µs | txn p50 µs | txn p99 µs |");
    println!("|---|---|---|---|---|---|---|---|");
    print!("{commits}");
    println!("\nMulti-row INSERTs of {} rows\n", args.batch);
    println!("| shards | statement | clients | statements/s | rows/s | p50 µs | p99 µs |");
    println!("|---|---|---|---|---|---|---|");
    print!("{inserts}");
    Ok(())
}

/// The keys each shard holds, read from the shards themselves.
struct Placement {
    keys: Vec<Vec<u64>>,
    slots: SlotMap,
}

impl Placement {
    /// The key of `shard` that `client` (of `clients`) writes in its
    /// iteration `i`: clients write disjoint keys, so they never wait for
    /// each other's row locks.
    fn key(&self, shard: usize, client: usize, clients: usize, i: usize) -> u64 {
        let keys = &self.keys[shard];
        let per_client = (keys.len() / clients).max(1);
        keys[(client + clients * (i % per_client)) % keys.len()]
    }
}

async fn measure_cluster(
    cluster: &Cluster,
    args: &TxnArgs,
    commits: &mut String,
    inserts: &mut String,
) -> Result<(), PgError> {
    let proxy = RemoteBackend::loopback(cluster.proxy_port, 80);
    load(&proxy, args.rows).await?;
    let placement = Arc::new(placement(cluster).await?);
    let n = cluster.shard_ports.len();
    let mut round = 0;
    for work in [
        Work::OneShardBlock,
        Work::EveryShardBlock,
        Work::SpanningStatement,
        Work::InsertOneShard,
        Work::InsertEveryShard,
    ] {
        for &clients in &args.clients {
            round += 1;
            let run = Run {
                work,
                clients,
                seconds: args.seconds,
                batch: args.batch,
                round,
            };
            let (total, commit) = closed_loop(&proxy, &placement, run).await?;
            let label = work.label(n);
            if matches!(work, Work::InsertOneShard | Work::InsertEveryShard) {
                writeln!(
                    inserts,
                    "| {n} | {label} | {clients} | {:.0} | {:.0} | {:.0} | {:.0} |",
                    total.qps,
                    total.qps * args.batch as f64,
                    total.p50,
                    total.p99
                )
                .ok();
            } else {
                writeln!(
                    commits,
                    "| {n} | {label} | {clients} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
                    total.qps, commit.p50, commit.p99, total.p50, total.p99
                )
                .ok();
            }
        }
    }
    check_one_shard_inserts(cluster, &placement).await
}

/// Creates the table and loads `rows` rows through the proxy.
async fn load(proxy: &Arc<RemoteBackend>, rows: usize) -> Result<(), PgError> {
    let mut chan = proxy.checkout().await?;
    run_simple(
        chan.as_mut(),
        &format!("CREATE TABLE bench_txn (id bigint PRIMARY KEY, n int, embedding vector({DIM}))"),
    )
    .await?;
    for start in (0..rows).step_by(100) {
        let values: Vec<String> = (start..(start + 100).min(rows))
            .map(|id| format!("({id}, 0, '{}')", vector(id as u64)))
            .collect();
        run_simple(
            chan.as_mut(),
            &format!("INSERT INTO bench_txn VALUES {}", values.join(",")),
        )
        .await?;
    }
    Ok(())
}

/// Asks each shard which loaded keys it holds.
async fn placement(cluster: &Cluster) -> Result<Placement, PgError> {
    let mut keys = Vec::new();
    for &port in &cluster.shard_ports {
        let shard = RemoteBackend::loopback(port, 1);
        let mut chan = shard.checkout().await?;
        let ids = query(
            chan.as_mut(),
            &Request::Simple(format!(
                "SELECT id FROM bench_txn WHERE id < {INSERT_KEYS_FROM} ORDER BY id"
            )),
        )
        .await?;
        let ids: Vec<u64> = ids.into_iter().flatten().map(u64::from).collect();
        if ids.is_empty() {
            return Err(PgError::new(
                "22023",
                format!("shard on port {port} holds none of the loaded rows; load more --rows"),
            ));
        }
        keys.push(ids);
    }
    Ok(Placement {
        keys,
        slots: SlotMap::even(cluster.shard_ports.len()),
    })
}

/// Checks that the "1 shard" INSERTs did land on one shard: the bench
/// chose their keys with the proxy's default slot map.
async fn check_one_shard_inserts(cluster: &Cluster, placement: &Placement) -> Result<(), PgError> {
    for (s, &port) in cluster.shard_ports.iter().enumerate().skip(1) {
        let shard = RemoteBackend::loopback(port, 1);
        let mut chan = shard.checkout().await?;
        let tag = run_simple(
            chan.as_mut(),
            &format!("SELECT id FROM bench_txn WHERE id >= {INSERT_KEYS_FROM} AND n = -1"),
        )
        .await?;
        if tag != "SELECT 0" {
            return Err(PgError::new(
                "XX000",
                format!(
                    "shard {s} holds rows of the one-shard INSERTs ({tag}): the slot map is not {} even ranges",
                    placement.slots.shards()
                ),
            ));
        }
    }
    Ok(())
}

/// A deterministic vector for key `id`.
fn vector(id: u64) -> String {
    let parts: Vec<String> = (0..DIM as u64)
        .map(|d| ((id * 31 + d * 7) % 97).to_string())
        .collect();
    format!("[{}]", parts.join(","))
}

/// One closed loop.
#[derive(Clone, Copy)]
struct Run {
    work: Work,
    clients: usize,
    seconds: u64,
    batch: usize,
    /// Distinct for every loop of a cluster (keeps INSERT keys fresh).
    round: u64,
}

/// `run.clients` sessions run `run.work` back to back for `run.seconds`;
/// returns the timing of whole iterations and of their COMMIT.
async fn closed_loop(
    proxy: &Arc<RemoteBackend>,
    placement: &Arc<Placement>,
    run: Run,
) -> Result<(Timing, Timing), PgError> {
    let Run {
        work,
        clients,
        batch,
        ..
    } = run;
    let deadline = Instant::now() + Duration::from_secs(run.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (proxy, placement) = (Arc::clone(proxy), Arc::clone(placement));
        tasks.push(tokio::spawn(async move {
            let mut chan = proxy.checkout().await?;
            let mut inserts = InsertKeys::new(run.round, client, work);
            let (mut total, mut commit) = (Vec::new(), Vec::new());
            let mut i = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                let c = match work {
                    Work::InsertOneShard | Work::InsertEveryShard => {
                        let sql = inserts.statement(&placement, i, batch);
                        run_simple(chan.as_mut(), &sql).await?;
                        t.elapsed()
                    }
                    _ => update(chan.as_mut(), &placement, work, (client, clients), i).await?,
                };
                total.push(t.elapsed().as_secs_f64() * 1e6);
                commit.push(c.as_secs_f64() * 1e6);
                i += 1;
            }
            Ok::<_, PgError>((total, commit))
        }));
    }
    let (mut total, mut commit) = (Vec::new(), Vec::new());
    for task in tasks {
        let (t, c) = task
            .await
            .map_err(|e| PgError::new("58000", e.to_string()))??;
        total.extend(t);
        commit.extend(c);
    }
    let wall = started.elapsed();
    Ok((Timing::from(total, wall), Timing::from(commit, wall)))
}

/// One UPDATE iteration; returns how long its COMMIT (or the statement
/// itself, outside a block) took.
async fn update(
    chan: &mut dyn ShardChannel,
    placement: &Placement,
    work: Work,
    (client, clients): (usize, usize),
    i: usize,
) -> Result<Duration, PgError> {
    let shards = placement.keys.len();
    let key = |s| placement.key(s, client, clients, i);
    let keys: Vec<u64> = match work {
        Work::OneShardBlock => vec![key(i % shards)],
        _ => (0..shards).map(key).collect(),
    };
    if work == Work::SpanningStatement {
        let list: Vec<String> = keys.iter().map(u64::to_string).collect();
        let t = Instant::now();
        run_simple(
            chan,
            &format!(
                "UPDATE bench_txn SET n = n + 1 WHERE id IN ({})",
                list.join(",")
            ),
        )
        .await?;
        return Ok(t.elapsed());
    }
    run_simple(chan, "BEGIN").await?;
    for key in keys {
        execute(chan, "UPDATE bench_txn SET n = n + 1 WHERE id = $1", key).await?;
    }
    let t = Instant::now();
    run_simple(chan, "COMMIT").await?;
    Ok(t.elapsed())
}

/// Runs `sql` with one text parameter (extended protocol), as drivers do.
async fn execute(chan: &mut dyn ShardChannel, sql: &str, param: u64) -> Result<(), PgError> {
    let request = Request::Extended(ExtendedRequest {
        sql: sql.into(),
        param_types: vec![0].into(),
        param_formats: vec![Format::Text].into(),
        values: vec![Some(Bytes::from(param.to_string()))].into(),
        result_formats: vec![0].into(),
    });
    query(chan, &request).await.map(drop)
}

/// Fresh keys for one client's INSERTs: its own range (2^28 keys) in the
/// loop's own range (2^36), above the loaded rows.
struct InsertKeys {
    next: u64,
    one_shard: bool,
}

impl InsertKeys {
    fn new(round: u64, client: usize, work: Work) -> Self {
        InsertKeys {
            next: INSERT_KEYS_FROM + (round << 36) + ((client as u64) << 28),
            one_shard: work == Work::InsertOneShard,
        }
    }

    /// The `batch`-row INSERT of iteration `i`: keys of shard 0 only
    /// (`n = -1` marks them), or consecutive keys, which the hash spreads
    /// over every shard.
    fn statement(&mut self, placement: &Placement, i: usize, batch: usize) -> String {
        let mut values = Vec::with_capacity(batch);
        while values.len() < batch {
            let id = self.next;
            self.next += 1;
            let on_first = placement.slots.shard_of(&id.to_string()) == 0;
            if !self.one_shard || on_first {
                let n = if self.one_shard { -1 } else { i as i64 };
                values.push(format!("({id}, {n}, '{}')", vector(id)));
            }
        }
        format!("INSERT INTO bench_txn VALUES {}", values.join(","))
    }
}
