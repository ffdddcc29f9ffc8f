//! The result cache's families: hits, misses, evictions and bytes per
//! level, entries refused and why, Redis errors and latency by command,
//! generation bumps, and whether caching is on.
//!
//! Evictions: L1's are counted by moka's eviction listener (`size` when
//! the byte bound pushed an entry out, `expired` when its TTL ran out;
//! moka notices both in its housekeeping, which runs on cache activity).
//! Redis removes L2 entries by itself, so `level="l2"` adds up what its
//! `INFO stats` reports at each scrape: `size` from `evicted_keys`
//! (maxmemory evictions), `expired` from `expired_keys` (TTLs). Those are
//! server-wide numbers of that Redis: every proxy sharing it reports the
//! same removals (do not sum them across proxies), and keys of anything
//! else stored in that Redis count too.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts};

use super::{counter, latency, register, Registry, Sampled};

/// Keys Redis removed by itself since it started, as `INFO stats` says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedisRemoved {
    /// `evicted_keys`: removed to stay under maxmemory.
    pub evicted: u64,
    /// `expired_keys`: removed when their TTL ran out.
    pub expired: u64,
}

/// Reads Redis' removal counts at scrape time (`None`: no answer).
pub type RedisRemovedSource = Box<dyn Fn() -> Option<RedisRemoved> + Send + Sync>;

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
    /// Registers the families in `registry`; with an L2, its evictions
    /// are read from `l2_removed` at each scrape.
    pub fn register(
        registry: &Registry,
        l2_removed: Option<RedisRemovedSource>,
    ) -> Result<Self, prometheus::Error> {
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
            evictions: evictions(registry, l2_removed)?,
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

/// The evictions family, brought up to date with Redis' counts (when
/// there is an L2) at each scrape.
fn evictions(
    registry: &Registry,
    l2_removed: Option<RedisRemovedSource>,
) -> Result<IntCounterVec, prometheus::Error> {
    let family = IntCounterVec::new(
        Opts::new(
            "pgvshard_cache_evictions_total",
            "Entries removed from a level by the level itself, by cause (size, expired); l2: as Redis reports them, server-wide.",
        ),
        &["level", "cause"],
    )?;
    let last = Arc::new(Mutex::new(None));
    let sampled = Sampled::wrap(family.clone(), move |family: &IntCounterVec| {
        if let Some(now) = l2_removed.as_ref().and_then(|read| read()) {
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            add_removed(family, last.as_ref(), now);
            *last = Some(now);
        }
    });
    registry.register(Box::new(sampled))?;
    Ok(family)
}

/// Adds what Redis removed since `last` to the L2 counters; counts that
/// went down mean Redis restarted (or reset its statistics) and counts
/// from zero again.
fn add_removed(family: &IntCounterVec, last: Option<&RedisRemoved>, now: RedisRemoved) {
    let last = last.copied().unwrap_or_default();
    for (cause, before, after) in [
        ("size", last.evicted, now.evicted),
        ("expired", last.expired, now.expired),
    ] {
        let added = after.checked_sub(before).unwrap_or(after);
        family.with_label_values(&["l2", cause]).inc_by(added);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l2_evictions_add_up_across_redis_restarts() {
        let registry = Registry::new();
        let counts = Arc::new(Mutex::new(vec![
            RedisRemoved {
                evicted: 2,
                expired: 5,
            },
            RedisRemoved {
                evicted: 3,
                expired: 9,
            },
            // Redis restarted.
            RedisRemoved {
                evicted: 1,
                expired: 0,
            },
        ]));
        let source = Arc::clone(&counts);
        let read: RedisRemovedSource = Box::new(move || {
            let mut c = source.lock().unwrap();
            (!c.is_empty()).then(|| c.remove(0))
        });
        let m = CacheMetrics::register(&registry, Some(read)).unwrap();
        let l2 = |cause: &str| m.evictions.with_label_values(&["l2", cause]).get();
        registry.gather();
        assert_eq!((l2("size"), l2("expired")), (2, 5));
        registry.gather();
        assert_eq!((l2("size"), l2("expired")), (3, 9));
        registry.gather();
        assert_eq!((l2("size"), l2("expired")), (4, 9));
        // Redis not answering changes nothing.
        registry.gather();
        assert_eq!((l2("size"), l2("expired")), (4, 9));
    }
}
