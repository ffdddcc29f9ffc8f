//! The result cache's families: hits, misses, evictions and bytes per
//! level, entries refused and why, Redis errors and latency by command,
//! generation bumps, and whether caching is on.

use std::time::Duration;

use prometheus::{HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts};

use super::{counter, latency, register, Registry};

/// The cache's metric families.
#[derive(Clone)]
pub struct CacheMetrics {
    /// Hits by level (`l1`, `l2`).
    pub hits: IntCounterVec,
    /// Misses by level.
    pub misses: IntCounterVec,
    /// Entries evicted by level and cause (`size`, `expired`).
    pub evictions: IntCounterVec,
    /// Bytes written to L2.
    pub l2_bytes_written: IntCounter,
    /// Statements not looked up, by reason.
    pub bypassed: IntCounterVec,
    /// Redis commands that failed, by command.
    pub redis_errors: IntCounterVec,
    redis_latency: HistogramVec,
    /// Table generation bumps (one per table per write).
    pub bumps: IntCounter,
    /// 1 while results are cached, 0 while caching is suspended (Redis
    /// unreachable).
    pub available: IntGauge,
}

impl CacheMetrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        Ok(CacheMetrics {
            hits: counter(
                registry,
                "pgvshard_cache_hits_total",
                "Result cache hits by level.",
                &["level"],
            )?,
            misses: counter(
                registry,
                "pgvshard_cache_misses_total",
                "Result cache misses by level.",
                &["level"],
            )?,
            evictions: counter(
                registry,
                "pgvshard_cache_evictions_total",
                "Entries evicted from a level, by cause (size, expired).",
                &["level", "cause"],
            )?,
            l2_bytes_written: register(
                registry,
                IntCounter::with_opts(Opts::new(
                    "pgvshard_cache_l2_written_bytes_total",
                    "Bytes of results written to the Redis L2.",
                ))?,
            )?,
            bypassed: counter(
                registry,
                "pgvshard_cache_bypassed_total",
                "Cacheable-looking reads that skipped the cache, by reason.",
                &["reason"],
            )?,
            redis_errors: counter(
                registry,
                "pgvshard_cache_redis_errors_total",
                "Redis commands that failed, by command.",
                &["command"],
            )?,
            redis_latency: latency(
                registry,
                "pgvshard_cache_redis_duration_seconds",
                "Redis command latency, by command.",
                &["command"],
            )?,
            bumps: register(
                registry,
                IntCounter::with_opts(Opts::new(
                    "pgvshard_cache_generation_bumps_total",
                    "Table generation bumps made by writes through this proxy.",
                ))?,
            )?,
            available: register(
                registry,
                IntGauge::with_opts(Opts::new(
                    "pgvshard_cache_available",
                    "1 while results are cached; 0 while caching is suspended because Redis is unreachable.",
                ))?,
            )?,
        })
    }

    /// Records one Redis command's latency and outcome.
    pub fn redis(&self, command: &str, took: Duration, ok: bool) {
        self.redis_latency
            .with_label_values(&[command])
            .observe(took.as_secs_f64());
        if !ok {
            self.redis_errors.with_label_values(&[command]).inc();
        }
    }

    /// The value of a counter with one label.
    pub fn count(counter: &IntCounterVec, label: &str) -> u64 {
        counter.with_label_values(&[label]).get()
    }
}
