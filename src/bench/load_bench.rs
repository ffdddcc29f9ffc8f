//! `pgvshard bench load`: many clients through one proxy at once.
//!
//! Starts the proxy as a child process of this binary on a free loopback
//! port — the embedded default (four in-process shards, the L1 cache on),
//! or `pgvshard proxy --config FILE` — and creates a small table with an
//! HNSW index through it. Then `--clients` sessions connect (tokio-postgres,
//! one TCP connection each, `--connect-concurrency` at a time) and for
//! `--seconds` each one repeats: a query (in turn `SELECT 1`, a point read
//! by key and a KNN query, simple protocol), then an idle pause of a random
//! length up to twice `--idle-ms`. It prints the sessions held, QPS,
//! latency percentiles, errors by SQLSTATE and the proxy's RSS before the
//! clients, with every client idle, and its peak.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ann::rng::Rng;
use tokio::sync::Semaphore;

use super::cluster::{free_port, wait_ready};
use super::measure::percentile;

/// Options of `pgvshard bench load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Concurrent client sessions.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Seconds of the query-and-idle phase.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Mean idle pause between a client's queries, in milliseconds.
    #[arg(long, default_value_t = 100)]
    idle_ms: u64,
    /// Sessions being opened at the same time.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Rows of the table the point reads and KNN queries use.
    #[arg(long, default_value_t = 2000)]
    rows: usize,
    /// Run `pgvshard proxy --config FILE` instead of the embedded default
    /// (its `listen` must be a loopback address with a fixed port).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Dimensions of the table's vectors.
const DIM: usize = 16;

/// The proxy process; killed on drop.
struct ProxyProcess {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl ProxyProcess {
    fn start(args: &LoadArgs) -> Result<ProxyProcess, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let dir = std::env::temp_dir().join(format!("pgvshard-bench-load-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut command = Command::new(exe);
        let port = match &args.config {
            Some(config) => {
                let parsed = pgvshard::proxy::config::ProxyConfig::load(config)
                    .map_err(|e| e.to_string())?;
                command.arg("proxy").arg("--config").arg(config);
                parsed.listen_addr().map_err(|e| e.to_string())?.port()
            }
            None => {
                let port = free_port()?;
                command
                    .args(["--listen", &format!("127.0.0.1:{port}")])
                    .args(["--metrics-listen", &format!("127.0.0.1:{}", free_port()?)])
                    .arg("--data-dir")
                    .arg(dir.join("data"));
                port
            }
        };
        let log = std::fs::File::create(dir.join("proxy.log")).map_err(|e| e.to_string())?;
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start the proxy: {e}"))?;
        let proxy = ProxyProcess { child, port, dir };
        wait_ready(port)?;
        Ok(proxy)
    }

    /// A `VmRSS`/`VmHWM` line of /proc/PID/status, in MiB.
    fn memory_mib(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// The SQLSTATE and message of an error, or what kind of failure it was.
fn error_key(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}", db.code().code(), db.message()),
        None if e.is_closed() => "connection closed".to_string(),
        None => "no SQLSTATE (client or network error)".to_string(),
    }
}

async fn connect(port: u16) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(30))
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(async move {
        conn.await.ok();
    });
    Ok(client)
}

fn vector_text(rng: &mut Rng) -> String {
    let parts: Vec<String> = (0..DIM).map(|_| format!("{:.3}", rng.next_f64())).collect();
    format!("[{}]", parts.join(","))
}

/// Creates `load_items` with `rows` seeded vectors and an HNSW index.
async fn load_table(port: u16, rows: usize) -> Result<(), tokio_postgres::Error> {
    let client = connect(port).await?;
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS load_items; CREATE TABLE load_items (id int PRIMARY KEY, embedding vector({DIM}))"
        ))
        .await?;
    let mut rng = Rng::new(7);
    let ids: Vec<usize> = (0..rows).collect();
    for chunk in ids.chunks(500) {
        let values: Vec<String> = chunk
            .iter()
            .map(|id| format!("({id}, '{}')", vector_text(&mut rng)))
            .collect();
        client
            .batch_execute(&format!(
                "INSERT INTO load_items VALUES {}",
                values.join(",")
            ))
            .await?;
    }
    client
        .batch_execute("CREATE INDEX ON load_items USING hnsw (embedding vector_l2_ops)")
        .await
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    micros: Vec<f64>,
    errors: BTreeMap<String, usize>,
    /// Sessions still open at the end.
    held: usize,
}

/// One client: queries and idles until `deadline`.
async fn client_loop(
    client: tokio_postgres::Client,
    seed: u64,
    rows: usize,
    idle: Duration,
    deadline: Instant,
) -> Tally {
    let mut rng = Rng::new(seed);
    let mut tally = Tally::default();
    let mut turn = rng.below(3);
    // Start at a random point of a pause, so the clients do not march
    // in step.
    tokio::time::sleep(idle.mul_f64(2.0 * rng.next_f64())).await;
    while Instant::now() < deadline {
        let sql = match turn % 3 {
            0 => "SELECT 1".to_string(),
            1 => format!(
                "SELECT id, embedding FROM load_items WHERE id = {}",
                rng.below(rows.max(1) as u64)
            ),
            _ => format!(
                "SELECT id FROM load_items ORDER BY embedding <-> '{}' LIMIT 10",
                vector_text(&mut rng)
            ),
        };
        turn += 1;
        let t = Instant::now();
        match client.simple_query(&sql).await {
            Ok(_) => tally.micros.push(t.elapsed().as_secs_f64() * 1e6),
            Err(e) => {
                *tally.errors.entry(error_key(&e)).or_default() += 1;
                if client.is_closed() {
                    break;
                }
            }
        }
        tokio::time::sleep(idle.mul_f64(2.0 * rng.next_f64())).await;
    }
    tally.held = usize::from(!client.is_closed());
    tally
}

/// Runs the benchmark and prints its tables.
pub fn run(args: &LoadArgs) -> Result<(), String> {
    let proxy = ProxyProcess::start(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(measure(args, &proxy))
}

async fn measure(args: &LoadArgs, proxy: &ProxyProcess) -> Result<(), String> {
    load_table(proxy.port, args.rows)
        .await
        .map_err(|e| format!("loading load_items: {e}"))?;
    let rss_before = proxy.memory_mib("VmRSS");

    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let started = Instant::now();
    let attempts = (0..args.clients).map(|_| {
        let gate = Arc::clone(&gate);
        async move {
            let _permit = gate.acquire().await.ok();
            connect(proxy.port).await
        }
    });
    let mut clients = Vec::new();
    let mut connect_errors: BTreeMap<String, usize> = BTreeMap::new();
    for result in futures_util::future::join_all(attempts).await {
        match result {
            Ok(c) => clients.push(c),
            Err(e) => *connect_errors.entry(error_key(&e)).or_default() += 1,
        }
    }
    let connect_s = started.elapsed().as_secs_f64();
    let held = clients.len();
    // Let the sessions settle, then read the memory of them all idle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = proxy.memory_mib("VmRSS");

    let idle = Duration::from_millis(args.idle_ms);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let t = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(client_loop(c, i as u64 + 1, args.rows, idle, deadline)))
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        let part = task.await.map_err(|e| e.to_string())?;
        tally.micros.extend(part.micros);
        for (k, n) in part.errors {
            *tally.errors.entry(k).or_default() += n;
        }
        tally.held += part.held;
    }
    let wall = t.elapsed().as_secs_f64();
    let rss_peak = proxy.memory_mib("VmHWM");
    tally.micros.sort_by(f64::total_cmp);

    println!(
        "{} clients through the proxy ({}), {} s of queries (SELECT 1, point read, KNN k=10 over {} rows x {DIM} dims in turn) with idle pauses of 0-{} ms\n",
        args.clients,
        args.config.as_ref().map_or("embedded default, 4 in-process shards".to_string(), |c| c.display().to_string()),
        args.seconds,
        args.rows,
        2 * args.idle_ms
    );
    println!("| clients | sessions held | connect s | held at end | queries | QPS | p50 µs | p99 µs | errors | proxy RSS before MiB | RSS all idle MiB | KiB per idle session | RSS peak MiB |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let errors: usize =
        tally.errors.values().sum::<usize>() + connect_errors.values().sum::<usize>();
    println!(
        "| {} | {held} | {connect_s:.2} | {} | {} | {:.0} | {:.0} | {:.0} | {errors} | {rss_before:.1} | {rss_idle:.1} | {:.1} | {rss_peak:.1} |",
        args.clients,
        tally.held,
        tally.micros.len(),
        tally.micros.len() as f64 / wall,
        percentile(&tally.micros, 0.50),
        percentile(&tally.micros, 0.99),
        (rss_idle - rss_before) * 1024.0 / held.max(1) as f64,
    );
    if errors > 0 {
        println!("\n| phase | SQLSTATE / failure | count |\n|---|---|---|");
        for (k, n) in &connect_errors {
            println!("| connect | {k} | {n} |");
        }
        for (k, n) in &tally.errors {
            println!("| query | {k} | {n} |");
        }
    }
    Ok(())
}
