//! pgvshard command line: `pgvshard bench ann …` for now; the proxy and
//! shard roles arrive with their issues.

mod bench;

use clap::{Parser, Subcommand};

/// PostgreSQL wire-protocol proxy and shard router for vector search.
#[derive(Debug, Parser)]
#[command(name = "pgvshard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Benchmarks that print tables.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// The ANN engine on a texmex dataset: recall, QPS, latency, build time, memory.
    Ann(bench::AnnArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Bench(BenchCommand::Ann(args))) => bench::ann_bench_run(&args),
        None => {
            eprintln!(
                "pgvshard {}: the proxy and shard roles are not built yet; try `pgvshard bench ann --help`",
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
