//! `pgvshard bench replication`: a primary `pgvshard shard` with a
//! synchronous standby `s1` (`FIRST 1 (s1)`) and an asynchronous one `s2`,
//! all started from this binary on loopback. Prints commit latency per
//! `synchronous_commit`; replication throughput and each standby's replay
//! lag while loading a dataset (the pypi set) with binary COPY, and under
//! multi-row INSERTs of generated vectors; and the time a promotion takes
//! after the primary is killed.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use tokio_postgres::{Client, NoTls};

use super::cluster::{client_runtime, free_port, wait_ready, Cluster};
use super::dataset::Dataset;
use super::measure::{percentile, Timing};

/// Options of `pgvshard bench replication`.
#[derive(Debug, clap::Args)]
pub struct ReplicationArgs {
    /// Single-row commits timed per synchronous_commit level.
    #[arg(long, default_value_t = 500)]
    commits: usize,
    /// Dataset loaded with binary COPY (texmex layout with base.meta.tsv,
    /// see ../shared/datasets/README.md).
    #[arg(long, default_value = "../shared/datasets/pypi-minilm-384-cosine")]
    dataset: PathBuf,
    /// Rows per COPY (one transaction each) of the dataset load.
    #[arg(long, default_value_t = 5000)]
    copy_batch: usize,
    /// Rows of the generated INSERT load.
    #[arg(long, default_value_t = 50_000)]
    rows: usize,
    /// Rows per multi-row INSERT of that load.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Dimensions of the generated vectors.
    #[arg(long, default_value_t = 96)]
    dim: usize,
}

/// Interval between replay-lag samples.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);
/// Bytes per CopyData message of the COPY load.
const COPY_CHUNK: usize = 1 << 20;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn connect(port: u16) -> Result<Client, String> {
    let (client, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname("bench")
        .connect(NoTls)
        .await
        .map_err(err)?;
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

async fn current_lsn(primary: &Client) -> Result<u64, String> {
    Ok(lsn(&text(primary, "SELECT pg_current_wal_lsn()").await?))
}

/// Waits until the standby has replayed up to `target`.
async fn replayed(standby: &Client, target: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(300);
    while lsn(&text(standby, "SELECT pg_last_wal_replay_lsn()").await?) < target {
        if Instant::now() > deadline {
            return Err("the standby did not catch up within 300 s".into());
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

/// The three servers' ports: primary, synchronous standby s1, async s2.
struct Ports {
    primary: u16,
    standbys: [u16; 2],
}

/// Starts the primary and its two standbys; the primary is process 0.
fn start(cluster: &mut Cluster, exe: &std::path::Path) -> Result<Ports, String> {
    let dir = cluster.dir().to_path_buf();
    let ports = Ports {
        primary: free_port()?,
        standbys: [free_port()?, free_port()?],
    };
    let conf = |name: &str, yaml: &str| -> Result<String, String> {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, yaml).map_err(err)?;
        Ok(path.display().to_string())
    };
    let shard = |conf: String, port: u16, data: &str| -> Vec<String> {
        vec![
            "shard".into(),
            "--config".into(),
            conf,
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--data-dir".into(),
            dir.join(data).display().to_string(),
        ]
    };
    let args = shard(
        conf("primary", "synchronous_standby_names: 'FIRST 1 (s1)'\n")?,
        ports.primary,
        "primary",
    );
    cluster.spawn(
        exe,
        "primary",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    wait_ready(ports.primary)?;
    for (name, port) in ["s1", "s2"].into_iter().zip(ports.standbys) {
        let yaml = format!("standby_of:\n  application_name: {name}\n");
        let mut args = shard(conf(name, &yaml)?, port, name);
        args.extend([
            "--standby-of".into(),
            format!("127.0.0.1:{}", ports.primary),
        ]);
        cluster.spawn(
            exe,
            name,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )?;
        wait_ready(port)?;
    }
    Ok(ports)
}

/// Samples one standby's replay lag every [`SAMPLE_EVERY`] until `done`:
/// the time from reading the primary's `pg_current_wal_lsn()` until the
/// standby's `pg_last_wal_replay_lsn()` reaches it, in ms.
async fn sample_lag(
    primary: u16,
    standby: u16,
    done: Arc<AtomicBool>,
) -> Result<tokio::task::JoinHandle<Vec<f64>>, String> {
    let (p, s) = (connect(primary).await?, connect(standby).await?);
    Ok(tokio::spawn(async move {
        let mut lags = Vec::new();
        while !done.load(Ordering::Relaxed) && lags.len() < 100_000 {
            let Ok(at) = current_lsn(&p).await else {
                break;
            };
            let t = Instant::now();
            if replayed(&s, at).await.is_err() {
                break;
            }
            lags.push(t.elapsed().as_secs_f64() * 1e3);
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
        lags.sort_by(f64::total_cmp);
        lags
    }))
}

/// Runs `load` on the primary while both standbys' replay lag is sampled;
/// returns one table row: rows/s and WAL MB/s until the last row is
/// replayed on both standbys, then each standby's lag p50/p99.
async fn replicated_load<F>(
    ports: &Ports,
    what: &str,
    rows: usize,
    load: F,
) -> Result<String, String>
where
    F: std::future::Future<Output = Result<(), String>>,
{
    let p = connect(ports.primary).await?;
    let standbys = [
        connect(ports.standbys[0]).await?,
        connect(ports.standbys[1]).await?,
    ];
    let before = current_lsn(&p).await?;
    let done = Arc::new(AtomicBool::new(false));
    let mut samplers = Vec::new();
    for port in ports.standbys {
        samplers.push(sample_lag(ports.primary, port, done.clone()).await?);
    }
    let started = Instant::now();
    load.await?;
    let end = current_lsn(&p).await?;
    for s in &standbys {
        replayed(s, end).await?;
    }
    let wall = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let mut row = format!(
        "| {what} | {:.0} | {:.1} | {:.1} |",
        rows as f64 / wall,
        (end - before) as f64 / f64::from(1 << 20),
        (end - before) as f64 / f64::from(1 << 20) / wall
    );
    for sampler in samplers {
        let lags = sampler.await.map_err(err)?;
        write!(
            row,
            " {:.1} | {:.1} |",
            percentile(&lags, 0.5),
            percentile(&lags, 0.99)
        )
        .ok();
    }
    row.push('\n');
    Ok(row)
}

/// One binary COPY stream per `batch` base vectors of `data`: header,
/// tuples `(id bigint, <metadata columns> text, embedding vector)` with
/// an empty text sent as NULL, trailer.
fn copy_payloads(data: &Dataset, meta: &[Vec<String>], batch: usize) -> Vec<Bytes> {
    let mut out = Vec::new();
    for (n, rows) in meta.chunks(batch.max(1)).enumerate() {
        let mut buf = BytesMut::new();
        buf.put_slice(&pgvshard::sql::binary_header());
        for (k, texts) in rows.iter().enumerate() {
            let id = n * batch.max(1) + k;
            buf.put_i16(2 + texts.len() as i16);
            buf.put_i32(8);
            buf.put_i64(id as i64);
            for t in texts {
                if t.is_empty() {
                    buf.put_i32(-1);
                } else {
                    buf.put_i32(t.len() as i32);
                    buf.put_slice(t.as_bytes());
                }
            }
            let v = data.base_vector(id);
            buf.put_i32(4 + 4 * v.len() as i32);
            buf.put_i16(v.len() as i16);
            buf.put_i16(0);
            for x in v {
                buf.put_f32(*x);
            }
        }
        buf.put_slice(pgvshard::sql::BINARY_TRAILER);
        out.push(buf.freeze());
    }
    out
}

/// Sends each payload as one `COPY … FROM STDIN (FORMAT binary)`.
async fn copy_all(client: &Client, table: &str, payloads: &[Bytes]) -> Result<(), String> {
    for payload in payloads {
        let sink = client
            .copy_in::<_, Bytes>(&format!("COPY {table} FROM STDIN (FORMAT binary)"))
            .await
            .map_err(err)?;
        let mut sink = std::pin::pin!(sink);
        let mut at = 0;
        while at < payload.len() {
            let end = (at + COPY_CHUNK).min(payload.len());
            sink.send(payload.slice(at..end)).await.map_err(err)?;
            at = end;
        }
        sink.as_mut().finish().await.map_err(err)?;
    }
    Ok(())
}

/// The dataset loaded by binary COPY into a table without an index, then
/// into one with an HNSW index, with `synchronous_commit = on`.
async fn copy_loads(ports: &Ports, args: &ReplicationArgs) -> Result<String, String> {
    let data = Dataset::load(&args.dataset)
        .map_err(|e| format!("{e} (give the pypi set's directory with --dataset)"))?;
    let (columns, meta) = data.metadata()?;
    let payloads = copy_payloads(&data, &meta, args.copy_batch);
    let (op, dim) = match data.metric {
        ann::Metric::L2 => ("vector_l2_ops", data.dim),
        ann::Metric::Cosine => ("vector_cosine_ops", data.dim),
        _ => ("vector_ip_ops", data.dim),
    };
    let p = connect(ports.primary).await?;
    let mut out = format!(
        "\nreplication while loading {} ({} rows x {dim} dims) with binary COPY, {} rows per COPY, \
         synchronous_commit = on; lag sampled every {} ms\n",
        data.name,
        data.len(),
        args.copy_batch,
        SAMPLE_EVERY.as_millis()
    );
    out.push_str("| table | rows/s | WAL MB | WAL MB/s | s1 (sync) replay lag p50 ms | p99 ms | s2 (async) p50 ms | p99 ms |\n");
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    let texts: String = columns.iter().map(|c| format!(", {c} text")).collect();
    for (label, index) in [
        ("no index", None),
        ("HNSW (m=16, ef_construction=64)", Some(op)),
    ] {
        p.batch_execute(&format!(
            "DROP TABLE IF EXISTS pypi; \
             CREATE TABLE pypi (id bigint PRIMARY KEY{texts}, embedding vector({dim}))"
        ))
        .await
        .map_err(err)?;
        if let Some(op) = index {
            p.batch_execute(&format!(
                "CREATE INDEX ON pypi USING hnsw (embedding {op}) WITH (m = 16, ef_construction = 64)"
            ))
            .await
            .map_err(err)?;
        }
        let row =
            replicated_load(ports, label, data.len(), copy_all(&p, "pypi", &payloads)).await?;
        out.push_str(&row);
        eprintln!("COPY load, {label}: done");
    }
    Ok(out)
}

/// Single-row commits per `synchronous_commit` level into `items`.
async fn commit_latency(p: &Client, args: &ReplicationArgs) -> Result<String, String> {
    let mut out = String::new();
    writeln!(
        out,
        "commit latency (single-row INSERT, HNSW index, standbys s1 sync and s2 async on loopback)"
    )
    .ok();
    writeln!(out, "| synchronous_commit | commits/s | p50 ms | p99 ms |").ok();
    writeln!(out, "|---|---|---|---|").ok();
    for (k, level) in ["off", "local", "on", "remote_apply"]
        .into_iter()
        .enumerate()
    {
        p.batch_execute(&format!("SET synchronous_commit = {level}"))
            .await
            .map_err(err)?;
        let started = Instant::now();
        let mut micros = Vec::with_capacity(args.commits);
        for i in 0..args.commits {
            let id = k * args.commits + i + 1;
            let t = Instant::now();
            p.simple_query(&format!(
                "INSERT INTO items VALUES ({id}, {})",
                vector(id, args.dim)
            ))
            .await
            .map_err(err)?;
            micros.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let t = Timing::from(micros, started.elapsed());
        writeln!(
            out,
            "| {level} | {:.0} | {:.2} | {:.2} |",
            t.qps,
            t.p50 / 1e3,
            t.p99 / 1e3
        )
        .ok();
    }
    Ok(out)
}

/// Multi-row INSERTs of generated vectors with `synchronous_commit = local`.
async fn insert_load(ports: &Ports, args: &ReplicationArgs) -> Result<String, String> {
    let p = connect(ports.primary).await?;
    p.batch_execute("SET synchronous_commit = local")
        .await
        .map_err(err)?;
    let first = 4 * args.commits + 1;
    let load = async {
        let mut loaded = 0;
        while loaded < args.rows {
            let n = args.batch.min(args.rows - loaded);
            let values: Vec<String> = (0..n)
                .map(|k| {
                    let i = first + loaded + k;
                    format!("({i}, {})", vector(i, args.dim))
                })
                .collect();
            p.simple_query(&format!("INSERT INTO items VALUES {}", values.join(",")))
                .await
                .map_err(err)?;
            loaded += n;
        }
        Ok(())
    };
    let label = format!(
        "{} generated rows ({} dims, HNSW), INSERTs of {}, synchronous_commit = local",
        args.rows, args.dim, args.batch
    );
    let row = replicated_load(ports, &label, args.rows, load).await?;
    Ok(format!(
        "\nreplication under multi-row INSERTs\n\
         | load | rows/s | WAL MB | WAL MB/s | s1 (sync) replay lag p50 ms | p99 ms | s2 (async) p50 ms | p99 ms |\n\
         |---|---|---|---|---|---|---|---|\n{row}"
    ))
}

/// Runs the benchmark and prints its tables.
pub fn run(args: &ReplicationArgs) -> Result<(), String> {
    let (runtime, exe) = client_runtime()?;
    let mut cluster = Cluster::empty("replication")?;
    let ports = start(&mut cluster, &exe)?;
    let (mut out, s1) = runtime.block_on(async {
        let p = connect(ports.primary).await?;
        p.batch_execute(&format!(
            "SET synchronous_commit = local; \
             CREATE TABLE items (id bigint PRIMARY KEY, embedding vector({})); \
             CREATE INDEX ON items USING hnsw (embedding vector_l2_ops)",
            args.dim
        ))
        .await
        .map_err(err)?;
        let mut out = commit_latency(&p, args).await?;
        eprintln!("commit latency: done");
        out.push_str(&copy_loads(&ports, args).await?);
        out.push_str(&insert_load(&ports, args).await?);
        Ok::<_, String>((out, connect(ports.standbys[0]).await?))
    })?;
    // Promotion: SIGKILL the primary, promote s1, first write.
    cluster.kill(0);
    let started = Instant::now();
    runtime.block_on(async {
        text(&s1, "SELECT pg_promote()").await?;
        s1.simple_query("INSERT INTO items VALUES (-1, NULL)")
            .await
            .map_err(err)
    })?;
    writeln!(
        out,
        "\npromotion of s1 (pg_promote() to the first write committed): {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    )
    .ok();
    print!("{out}");
    Ok(())
}
