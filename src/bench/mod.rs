//! `pgvshard bench …`: benchmark commands that print tables (never tests).

mod ann_bench;
mod cluster;
mod dataset;
mod load_bench;
mod measure;
mod proxy_bench;
mod relay;
mod replication_bench;
mod txn_bench;

pub use ann_bench::{run as ann_bench_run, AnnArgs};
pub use load_bench::{run as load_bench_run, LoadArgs};
pub use proxy_bench::{run as proxy_bench_run, ProxyBenchArgs};
pub use relay::{run as relay_run, RelayArgs};
pub use replication_bench::{run as replication_bench_run, ReplicationArgs};
pub use txn_bench::{run as txn_bench_run, TxnArgs};
