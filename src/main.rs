//! pgvshard command line: `pgvshard shard …` runs one shard, `pgvshard
//! bench ann …` measures the ANN engine; the proxy role arrives with its
//! issue.

mod bench;

use clap::{Parser, Subcommand};
use pgvshard::shard::server::{self, ShardConfig};
use std::path::PathBuf;

/// PostgreSQL wire-protocol proxy and shard router for vector search.
#[derive(Debug, Parser)]
#[command(name = "pgvshard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one shard: a PostgreSQL-protocol server with pgvector's SQL
    /// over durable storage.
    Shard(ShardArgs),
    /// Benchmarks that print tables.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// Options of `pgvshard shard` (they override the config file's).
#[derive(Debug, clap::Args)]
struct ShardArgs {
    /// Address to listen on, e.g. 127.0.0.1:5433.
    #[arg(long)]
    listen: Option<String>,
    /// Data directory (created if missing).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// YAML configuration file (see config/shard.yaml).
    #[arg(long)]
    config: Option<PathBuf>,
}

fn run_shard(args: &ShardArgs) -> Result<(), String> {
    let mut config = match &args.config {
        Some(path) => ShardConfig::load(path)?,
        None => ShardConfig::default(),
    };
    if let Some(l) = &args.listen {
        config.listen = l.clone();
    }
    if let Some(d) = &args.data_dir {
        config.data_dir = d.clone();
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("pgvshard-shard")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(server::run(config, shutdown_signal()))
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
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Shard(args)) => run_shard(&args),
        Some(Command::Bench(BenchCommand::Ann(args))) => bench::ann_bench_run(&args),
        None => {
            eprintln!(
                "pgvshard {}: the proxy role is not built yet; try `pgvshard shard --help`",
                env!("CARGO_PKG_VERSION")
            );
            Ok(())
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
