//! Prometheus metrics: one [`Registry`] value per process role, created by
//! whoever starts the server and handed down to every layer that counts
//! something. There is no process-global registry (prometheus' default
//! one is never used), so tests run many proxies in one process and each
//! scrapes only its own numbers; a process running a proxy and embedded
//! shards passes the same registry to both, and the shard registers its
//! own families next to the proxy's ([`ProxyMetrics`] is one such group).
//!
//! Names are `pgvshard_*` with their unit (`_seconds`, `_bytes`,
//! `_total`); labels take values from small fixed sets (statement class,
//! SQLSTATE class, stage, cache level, query plan, configured shard
//! names) or from the schema (table and index names), never query text
//! or vectors.

mod cache;
mod cpu;
mod endpoint;
mod proxy;
mod sampled;
mod shard;

pub use cache::{CacheMetrics, RedisRemoved, RedisRemovedSource};
pub use cpu::{sampled_cpu_time, thread_cpu_time};
pub use endpoint::{serve, MetricsServer};
pub use prometheus::Registry;
pub use proxy::{NodeMetrics, ProxyMetrics, Stage, StatementClass};
pub use sampled::{Sampled, SampledGauges};
pub use shard::{
    BuildSample, QueryPlan, QueryTimings, RecallHistogram, ReplicationSample, Sampler,
    ShardCollector, ShardSample, StandbySample, StorageTimings, TableSample,
};

/// Latency buckets in seconds, 50 µs to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// Registers a collector; a clash (the same name twice in one registry)
/// is a programming error reported at start.
pub(crate) fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    c: C,
) -> Result<C, prometheus::Error> {
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

/// A histogram family with [`LATENCY_BUCKETS`].
pub(crate) fn latency(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<prometheus::HistogramVec, prometheus::Error> {
    let opts = prometheus::HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    register(registry, prometheus::HistogramVec::new(opts, labels)?)
}

/// A counter family.
pub(crate) fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<prometheus::IntCounterVec, prometheus::Error> {
    register(
        registry,
        prometheus::IntCounterVec::new(prometheus::Opts::new(name, help), labels)?,
    )
}

/// Renders every family of `registry` in the text exposition format.
pub fn render(registry: &Registry) -> String {
    use prometheus::Encoder;
    let mut out = Vec::new();
    let encoder = prometheus::TextEncoder::new();
    if let Err(e) = encoder.encode(&registry.gather(), &mut out) {
        tracing::warn!(error = %e, "encoding metrics failed");
    }
    String::from_utf8_lossy(&out).into_owned()
}
