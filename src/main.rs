//! pgvshard command line. With no arguments it runs the embedded default
//! (config/embedded.yaml: the proxy with four in-process shards);
//! `pgvshard proxy --config FILE` runs the proxy from a file, `pgvshard
//! shard …` runs one shard, `pgvshard bench …` measures.

mod bench;

use clap::{Parser, Subcommand};
use pgvshard::proxy::cache::bench::{self as cache_bench, BenchArgs};
use pgvshard::proxy::config::{ConfigError, LogFormat, ProxyConfig};
use pgvshard::proxy::RunningProxy;
use pgvshard::shard::server::{self, ShardConfig};
use std::path::PathBuf;

/// Large blocks on transparent huge pages (see [`pgvshard::huge_pages`]).
#[global_allocator]
static ALLOCATOR: pgvshard::huge_pages::HugePageAlloc = pgvshard::huge_pages::HugePageAlloc;

/// PostgreSQL wire-protocol proxy and shard router for vector search.
#[derive(Debug, Parser)]
#[command(
    name = "pgvshard",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Options of the embedded default (no subcommand).
    #[command(flatten)]
    embedded: EmbeddedArgs,
}

/// Overrides of the embedded default's addresses and data directory.
#[derive(Debug, clap::Args)]
struct EmbeddedArgs {
    /// Address the proxy listens on (default 127.0.0.1:6432).
    #[arg(long)]
    listen: Option<String>,
    /// Data directory of the slot map and the four shards (default ./pgvshard-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address of the /metrics endpoint (default 127.0.0.1:9632).
    #[arg(long)]
    metrics_listen: Option<String>,
    /// Log lines as text or as one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the proxy from a YAML file (see config/).
    Proxy(ProxyArgs),
    /// Runs one shard: a PostgreSQL-protocol server with pgvector's SQL
    /// over durable storage.
    Shard(ShardArgs),
    /// Benchmarks that print tables.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// What `pgvshard shard` does besides running a shard.
#[derive(Debug, Subcommand)]
enum ShardAction {
    /// Promotes the running standby on DIR to a primary (a new timeline),
    /// as `SELECT pg_promote()` does, and waits for it.
    Promote {
        /// The standby's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Longest wait for the promotion.
        #[arg(long, default_value_t = 60)]
        wait_seconds: u64,
    },
}

/// Asks the standby running on `dir` to promote (the file it polls for)
/// and waits until it has.
fn promote(dir: &std::path::Path, wait_seconds: u64) -> Result<(), String> {
    use pgvshard::shard::replication::receiver::PROMOTE_FILE;
    if !dir.join("wal").is_dir() {
        return Err(format!("{} is not a shard's data directory", dir.display()));
    }
    let signal = dir.join(PROMOTE_FILE);
    std::fs::write(&signal, b"").map_err(|e| format!("{}: {e}", signal.display()))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait_seconds);
    while signal.exists() {
        if std::time::Instant::now() >= deadline {
            let _ = std::fs::remove_file(&signal);
            return Err(format!(
                "the standby on {} did not promote within {wait_seconds} s (is it running as a standby?)",
                dir.display()
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    println!("server promoted");
    Ok(())
}

/// Options of `pgvshard proxy`.
#[derive(Debug, clap::Args)]
struct ProxyArgs {
    /// YAML configuration file (config/*.yaml are documented samples).
    #[arg(long)]
    config: PathBuf,
}

/// Options of `pgvshard shard` (they override the config file's).
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct ShardArgs {
    #[command(subcommand)]
    action: Option<ShardAction>,
    /// Address to listen on, e.g. 127.0.0.1:5433.
    #[arg(long)]
    listen: Option<String>,
    /// Also listen on a Unix-domain socket `.s.PGSQL.<port>` in this
    /// directory (PostgreSQL's unix_socket_directories; `psql -h DIR`).
    #[arg(long)]
    unix_socket_dir: Option<PathBuf>,
    /// Data directory (created if missing).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// YAML configuration file (see config/shard.yaml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address of the /metrics endpoint, e.g. 127.0.0.1:9633 (none by default).
    #[arg(long)]
    metrics_listen: Option<String>,
    /// Run as a hot standby of the primary at HOST:PORT (user and
    /// password from the config file's `standby_of:`).
    #[arg(long)]
    standby_of: Option<String>,
    /// Log lines as text or as one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn runtime(name: &str) -> Result<tokio::runtime::Runtime, String> {
    runtime_with(name, tokio::runtime::Builder::new_multi_thread())
}

fn runtime_with(
    name: &str,
    mut builder: tokio::runtime::Builder,
) -> Result<tokio::runtime::Runtime, String> {
    builder
        .enable_all()
        .thread_name(name)
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// The embedded default with the command line's overrides.
fn embedded_config(args: &EmbeddedArgs) -> Result<ProxyConfig, ConfigError> {
    let mut config = ProxyConfig::embedded();
    if let Some(l) = &args.listen {
        config.listen = l.clone();
    }
    if let Some(d) = &args.data_dir {
        config.data_dir = Some(d.clone());
    }
    if let Some(m) = &args.metrics_listen {
        config.metrics.listen = Some(m.clone());
    }
    config.validate()?;
    Ok(config)
}

fn announce(proxy: &RunningProxy, data_dir: &std::path::Path) {
    let addr = proxy.addr;
    println!(
        "pgvshard {}: proxy on {addr} with in-process shards (data in {})",
        env!("CARGO_PKG_VERSION"),
        data_dir.display()
    );
    if let Some(m) = proxy.metrics_addr {
        println!("metrics: http://{m}/metrics");
    }
    println!("development default: trust authentication for any user, loopback clients only");
    // A wildcard address is where the proxy listens, not one to connect
    // to; and with trust auth only loopback clients get in anyway.
    let host = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => "::1".to_string(),
        ip => ip.to_string(),
    };
    println!("connect: psql -h {host} -p {} -U postgres", addr.port());
    println!("Ctrl-C stops it (sessions drain, shards checkpoint); restarting keeps the data");
}

fn run_embedded(args: &EmbeddedArgs) -> Result<(), String> {
    let config = embedded_config(args).map_err(|e| e.to_string())?;
    let data_dir = config.data_dir.clone().unwrap_or_default();
    pgvshard::logs::init(args.log_format);
    runtime("pgvshard")?
        .block_on(pgvshard::proxy::serve_until(
            config,
            |p| announce(p, &data_dir),
            shutdown_signal(),
        ))
        .map_err(|e| e.to_string())
}

fn run_proxy(args: &ProxyArgs) -> Result<(), String> {
    // The file is read again (and checked) when the proxy starts.
    let config = ProxyConfig::load(&args.config).ok();
    pgvshard::logs::init(config.as_ref().map_or(LogFormat::Text, |c| c.log_format));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(c) = &config {
        builder.worker_threads(c.worker_threads());
    }
    runtime_with("pgvshard-proxy", builder)?
        .block_on(pgvshard::proxy::run(&args.config, shutdown_signal()))
        .map_err(|e| e.to_string())
}

fn run_cache_bench(args: &CacheBenchArgs) -> Result<(), String> {
    let config = ProxyConfig::load(&args.config).map_err(|e| e.to_string())?;
    let table = runtime("pgvshard-bench")?
        .block_on(cache_bench::run(BenchArgs {
            write_ratio: args.write_ratio,
            ops: args.ops,
            clients: args.clients,
            ..BenchArgs::new(config, args.redis.clone())
        }))
        .map_err(|e| e.to_string())?;
    print!("{table}");
    Ok(())
}

fn run_shard(args: &ShardArgs) -> Result<(), String> {
    if let Some(ShardAction::Promote {
        data_dir,
        wait_seconds,
    }) = &args.action
    {
        return promote(data_dir, *wait_seconds);
    }
    let mut config = match &args.config {
        Some(path) => ShardConfig::load(path)?,
        None => ShardConfig::default(),
    };
    if let Some(l) = &args.listen {
        config.listen = l.clone();
    }
    if let Some(d) = &args.unix_socket_dir {
        config.unix_socket_dir = Some(d.clone());
    }
    if let Some(d) = &args.data_dir {
        config.data_dir = d.clone();
    }
    if let Some(m) = &args.metrics_listen {
        config.metrics_listen = Some(m.clone());
    }
    if let Some(addr) = &args.standby_of {
        config
            .standby_of
            .get_or_insert_with(Default::default)
            .set_address(addr)?;
    }
    pgvshard::logs::init(args.log_format);
    runtime("pgvshard-shard")?.block_on(async {
        let _hangups = pgvshard::signals::on_hangup(|| async {
            tracing::info!("received SIGHUP: a shard has no configuration to reload; ignored");
        });
        server::run(config, shutdown_signal()).await
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested");
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// The ANN engine on a texmex dataset: recall, QPS, latency, build time, memory.
    Ann(bench::AnnArgs),
    /// The result cache on a hot-set workload: off, L1, L1 + L2.
    Cache(CacheBenchArgs),
    /// The proxy in front of 1, 2, 4 shard processes: overhead against one
    /// shard directly, fan-out recall and QPS.
    Proxy(bench::ProxyBenchArgs),
    /// A byte relay to a shard (what `bench proxy --relay-floor` starts):
    /// the floor of a proxy hop.
    Relay(bench::RelayArgs),
    /// Many concurrent clients connecting, querying and idling through
    /// the proxy: sessions held, QPS, latency, errors by SQLSTATE, RSS.
    Load(bench::LoadArgs),
    /// Atomic writes across shards: commit latency of one-shard blocks
    /// against two-phase commit over 2 and 4 shards, spanning INSERTs.
    Txn(bench::TxnArgs),
    /// A primary shard, a synchronous and an asynchronous standby: commit
    /// latency per synchronous_commit, replication throughput and replay
    /// lag under a binary COPY of a dataset and under INSERTs, promotion
    /// time.
    Replication(bench::ReplicationArgs),
}

/// Options of `pgvshard bench cache`.
#[derive(Debug, clap::Args)]
struct CacheBenchArgs {
    /// The proxy configuration naming the shards.
    #[arg(long)]
    config: PathBuf,
    /// Redis for the L1 + L2 mode (e.g. redis://127.0.0.1:6379/0).
    #[arg(long)]
    redis: Option<String>,
    /// Fraction of operations that are UPDATEs.
    #[arg(long, default_value_t = 0.05)]
    write_ratio: f64,
    /// Operations per mode.
    #[arg(long, default_value_t = 20_000)]
    ops: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
}

fn main() {
    // Failpoints named in FAILPOINTS (builds with the `failpoints`
    // feature, which only tests turn on).
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Shard(args)) => run_shard(&args),
        Some(Command::Proxy(args)) => run_proxy(&args),
        Some(Command::Bench(BenchCommand::Ann(args))) => bench::ann_bench_run(&args),
        Some(Command::Bench(BenchCommand::Cache(args))) => run_cache_bench(&args),
        Some(Command::Bench(BenchCommand::Proxy(args))) => bench::proxy_bench_run(&args),
        Some(Command::Bench(BenchCommand::Relay(args))) => bench::relay_run(&args),
        Some(Command::Bench(BenchCommand::Load(args))) => bench::load_bench_run(&args),
        Some(Command::Bench(BenchCommand::Txn(args))) => bench::txn_bench_run(&args),
        Some(Command::Bench(BenchCommand::Replication(args))) => {
            bench::replication_bench_run(&args)
        }
        None => run_embedded(&cli.embedded),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
