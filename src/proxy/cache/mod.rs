//! The hot-query result cache: an in-process L1 (moka, bounded in bytes,
//! with a TTL) in front of an optional shared L2 in Redis, holding the
//! exact answer bytes of read-only SELECTs ([`answer`]).
//!
//! # Why a cached answer is never older than an acknowledged write
//!
//! Every key includes the *generation* of each table the statement reads
//! (and a schema generation every DDL bumps), read *before* the statement
//! runs ([`key`]). Every write through the proxy bumps the generations of
//! the tables it writes *after* the shards applied it and *before* its
//! acknowledgment leaves the proxy (for transactions: at COMMIT). So:
//! - a read that starts after a write W was acknowledged reads a
//!   generation at least W's bump, which no entry made from data older
//!   than W can carry: an entry's generation was read before its query
//!   ran, and a query that ran before W was applied read its generation
//!   before W's bump (the bump follows the apply);
//! - an entry filled late (its query saw W's data while it still carried
//!   the older generation) is merely never found again, and a reader
//!   holding that older generation started before W was acknowledged,
//!   so it may see either state.
//!
//! With Redis the generations live there ([`generations`]), INCR'd by
//! every proxy and read with one MGET per statement, so the argument
//! holds across proxies; a generation Redis lost (evicted, deleted)
//! restarts at a random value rather than zero, so counting up again
//! never reaches a generation an old entry carries. When Redis fails, the proxy stops caching (it
//! cannot know the generations) and, when Redis answers again, writes a
//! new random epoch that is part of every key: whatever Redis lost or
//! rolled back in between, keys built before cannot be built again
//! ([`redis`]). Limits, stated rather than hidden: writes made directly on
//! the shards (not through a proxy) are seen only when entries expire
//! (`cache.ttl_seconds`); a view's result is keyed by the view's name, not
//! its base tables (list views in `cache.uncached_tables`); and while a
//! network partition cuts one proxy off a Redis the others still reach,
//! that proxy's writes cannot bump the shared generations (it stops
//! caching and rotates the epoch once it reaches Redis again).
//!
//! Concurrent identical misses run once: the first caller runs the query
//! inside moka's `try_get_with`, streaming to its own client while the
//! responder records the bytes; the others wait and replay the entry (or,
//! if the answer was unfit to cache, run the query themselves).

mod admin;
mod answer;
pub mod bench;
mod generations;
mod key;
mod redis;
pub(crate) use redis::rand_u64;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::future::Cache;
use moka::notification::RemovalCause;
use moka::Expiry;
use prometheus::IntCounterVec;

pub use self::redis::RedisLink;
pub use admin::{clear, columns as show_columns, is_cache_clear, show, SHOW_NAME};
pub use generations::SCHEMA;
pub use key::{may_write_through_functions, Bypass, CacheKey};

use self::generations::GenerationStore;
use super::config::CacheConfig;
use crate::metrics::{CacheMetrics, Registry, SampledGauges, StatementClass};
use crate::sql::{Statement, StatementKind};
use crate::wire::guc::Named;
use crate::wire::{PgError, Responder};

/// The session setting that turns the cache on for a session.
static SESSION_CACHE: Named = Named::new("pgvshard.cache");

/// Bytes an L1 entry costs beyond its value (key, bookkeeping).
const ENTRY_OVERHEAD: usize = 96;

/// Runs a statement on the shards when the cache cannot answer.
pub trait Miss: Send {
    /// Answers through `out`; returns the statement's class.
    fn run<'a>(
        &'a mut self,
        out: &'a mut Responder<'_>,
    ) -> Pin<Box<dyn Future<Output = Result<StatementClass, PgError>> + Send + 'a>>;
}

/// Why the query that filled an entry gave no entry.
#[derive(Debug)]
enum Unfilled {
    /// It failed (the error went to the leader's client).
    Failed(PgError),
    /// It answered but the answer cannot be cached (too big, a notice).
    Unfit(StatementClass),
}

/// An L1 entry lives for the TTL in force when it was made (a reload may
/// change it; entries made before keep theirs).
struct Lifetime(Arc<AtomicU64>);

impl Expiry<[u8; 32], Bytes> for Lifetime {
    fn expire_after_create(&self, _k: &[u8; 32], _v: &Bytes, _at: Instant) -> Option<Duration> {
        Some(Duration::from_secs(self.0.load(Ordering::Relaxed)))
    }
}

/// The L1: bounded in bytes, entries expire after `ttl_seconds`;
/// evictions by size or age are counted in `evictions` (`level="l1"`).
fn l1_cache(
    config: &CacheConfig,
    ttl_seconds: Arc<AtomicU64>,
    evictions: IntCounterVec,
) -> Cache<[u8; 32], Bytes> {
    Cache::builder()
        .max_capacity(config.l1_bytes)
        .weigher(|_k: &[u8; 32], v: &Bytes| {
            u32::try_from(v.len() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
        })
        .expire_after(Lifetime(ttl_seconds))
        .eviction_listener(move |_k, _v, cause| {
            let cause = match cause {
                RemovalCause::Size => "size",
                RemovalCause::Expired => "expired",
                _ => return,
            };
            evictions.with_label_values(&["l1", cause]).inc();
        })
        .build()
}

/// The result cache of one proxy.
pub struct QueryCache {
    /// What a reload may change: the TTL, the largest result, the
    /// uncached tables ([`QueryCache::reconfigure`]).
    live: RwLock<LiveSettings>,
    /// The TTL in seconds, shared with L1's expiry.
    ttl_seconds: Arc<AtomicU64>,
    l1: Option<Cache<[u8; 32], Bytes>>,
    redis: Option<Arc<RedisLink>>,
    generations: GenerationStore,
    metrics: CacheMetrics,
}

/// The cache settings a reload applies.
struct LiveSettings {
    max_result_bytes: usize,
    uncached: HashSet<String>,
}

impl LiveSettings {
    fn of(config: &CacheConfig) -> Self {
        LiveSettings {
            max_result_bytes: config.max_result_bytes,
            uncached: config.uncached_tables.iter().cloned().collect(),
        }
    }
}

impl QueryCache {
    /// The cache `config` describes, its metrics in `registry`; `None`
    /// when caching is disabled.
    pub fn new(config: &CacheConfig, registry: &Registry) -> Result<Option<Arc<Self>>, String> {
        if !config.enabled {
            return Ok(None);
        }
        let l2_removed = config
            .redis_url
            .as_deref()
            .map(redis::removed_keys)
            .transpose()?;
        let metrics = CacheMetrics::register(registry, l2_removed).map_err(|e| e.to_string())?;
        let ttl_seconds = Arc::new(AtomicU64::new(config.ttl_seconds));
        let l1 = (config.l1_bytes > 0)
            .then(|| l1_cache(config, Arc::clone(&ttl_seconds), metrics.evictions.clone()));
        let redis = match &config.redis_url {
            Some(url) => Some(Arc::new(RedisLink::new(
                url,
                &config.key_prefix,
                metrics.clone(),
            )?)),
            None => {
                metrics.available.set(1);
                None
            }
        };
        let generations = match &redis {
            Some(link) => GenerationStore::Shared(Arc::clone(link)),
            None => GenerationStore::Local(Mutex::new(HashMap::new())),
        };
        let cache = Arc::new(QueryCache {
            live: RwLock::new(LiveSettings::of(config)),
            ttl_seconds,
            l1,
            redis,
            generations,
            metrics,
        });
        let weak = Arc::downgrade(&cache);
        let sizes = SampledGauges::new(
            "pgvshard_cache_bytes",
            "Bytes of entries held, by level (l1; entries: l1_entries).",
            &["level"],
            move |g| {
                if let Some(l1) = weak.upgrade().as_ref().and_then(|c| c.l1.as_ref()) {
                    g.with_label_values(&["l1"])
                        .set(i64::try_from(l1.weighted_size()).unwrap_or(i64::MAX));
                    g.with_label_values(&["l1_entries"])
                        .set(i64::try_from(l1.entry_count()).unwrap_or(i64::MAX));
                }
            },
        )
        .map_err(|e| e.to_string())?;
        registry
            .register(Box::new(sizes))
            .map_err(|e| e.to_string())?;
        Ok(Some(cache))
    }

    /// Applies reloaded settings: `ttl_seconds` (for entries made from
    /// now on), `max_result_bytes` and `uncached_tables`. The rest
    /// (enabling, L1's size, Redis) is fixed at start.
    pub fn reconfigure(&self, config: &CacheConfig) {
        self.ttl_seconds
            .store(config.ttl_seconds, Ordering::Relaxed);
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = LiveSettings::of(config);
    }

    fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_seconds.load(Ordering::Relaxed))
    }

    /// The link to Redis, when configured (generated keys are reserved
    /// through it too).
    pub fn redis(&self) -> Option<Arc<RedisLink>> {
        self.redis.clone()
    }

    /// The key of a read, or why the cache must not be used for it.
    pub async fn key(
        &self,
        statement: &Statement,
        kind: &StatementKind,
        params: Option<&crate::wire::Params>,
        visible: Option<usize>,
        wrote: bool,
        out: &mut Responder<'_>,
    ) -> Result<CacheKey, Bypass> {
        let session_on = out.session().setting(&SESSION_CACHE) == Some("on");
        let tables = {
            let live = self.live.read().unwrap_or_else(|e| e.into_inner());
            key::cacheable(statement, kind, session_on, wrote, &live.uncached)
        }
        .inspect_err(|b| self.bypass(*b))?;
        if let Some(redis) = &self.redis {
            match redis.ready().await {
                None => return Err(Bypass::Unavailable).inspect_err(|b| self.bypass(*b)),
                Some(true) => self.clear_l1(),
                Some(false) => {}
            }
        }
        let stamp = self
            .generations
            .stamp(&tables)
            .await
            .ok_or(Bypass::Unavailable)
            .inspect_err(|b| self.bypass(*b))?;
        Ok(key::key(statement, params, visible, out, &stamp))
    }

    fn bypass(&self, why: Bypass) {
        if why != Bypass::NotPlain {
            self.metrics
                .bypassed
                .with_label_values(&[why.label()])
                .inc();
        }
    }

    /// Bumps the generations of written tables (or [`SCHEMA`]); call after
    /// the write was applied and before it is acknowledged.
    pub async fn bump(&self, tables: &[String]) {
        if tables.is_empty() {
            return;
        }
        self.metrics.bumps.inc_by(tables.len() as u64);
        self.generations.bump(tables).await;
    }

    /// Answers `key` from L1, else L2, else by running `miss` (once for
    /// concurrent identical misses) and filling both levels.
    pub async fn answer(
        &self,
        key: &CacheKey,
        out: &mut Responder<'_>,
        miss: &mut dyn Miss,
    ) -> Result<StatementClass, PgError> {
        let Some(l1) = &self.l1 else {
            return match self.fill(key, out, miss).await {
                Ok(entry) => Ok(answer_class(&entry)),
                Err(Unfilled::Failed(e)) => Err(e),
                Err(Unfilled::Unfit(class)) => Ok(class),
            };
        };
        let mut led = false;
        let got = l1
            .try_get_with(key.digest, async {
                led = true;
                self.fill(key, out, miss).await
            })
            .await;
        if led {
            self.metrics.misses.with_label_values(&["l1"]).inc();
            return match got {
                Ok(entry) => Ok(answer_class(&entry)),
                Err(e) => match &*e {
                    Unfilled::Failed(e) => Err(e.clone()),
                    Unfilled::Unfit(class) => Ok(*class),
                },
            };
        }
        if let Ok(entry) = got {
            if let Some(class) = answer::replay(&entry, out).await? {
                self.metrics.hits.with_label_values(&["l1"]).inc();
                return Ok(class);
            }
        }
        // The leader's answer could not be cached: run it here.
        self.metrics.misses.with_label_values(&["l1"]).inc();
        miss.run(out).await
    }

    /// L2, else the shards; the entry for L1.
    async fn fill(
        &self,
        key: &CacheKey,
        out: &mut Responder<'_>,
        miss: &mut dyn Miss,
    ) -> Result<Bytes, Unfilled> {
        let hex = key.hex();
        if let Some(redis) = &self.redis {
            if let Some(entry) = redis.get(&hex).await {
                if answer::replay(&entry, out)
                    .await
                    .map_err(Unfilled::Failed)?
                    .is_some()
                {
                    self.metrics.hits.with_label_values(&["l2"]).inc();
                    return Ok(entry);
                }
            }
            self.metrics.misses.with_label_values(&["l2"]).inc();
        }
        let limit = self
            .live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .max_result_bytes;
        out.record(limit);
        let result = miss.run(out).await;
        let recorded = out.take_recording();
        let class = result.map_err(Unfilled::Failed)?;
        let Some(messages) = recorded else {
            self.metrics
                .bypassed
                .with_label_values(&["unfit_answer"])
                .inc();
            return Err(Unfilled::Unfit(class));
        };
        let entry = answer::encode(class, &messages);
        if let Some(redis) = &self.redis {
            let (redis, entry, ttl) = (Arc::clone(redis), entry.clone(), self.ttl());
            tokio::spawn(async move { redis.set(&hex, &entry, ttl).await });
        }
        Ok(entry)
    }

    fn clear_l1(&self) {
        if let Some(l1) = &self.l1 {
            l1.invalidate_all();
        }
    }

    /// Empties L1 and makes every L2 entry unreachable (a schema
    /// generation bump); returns the L1 entries dropped.
    pub async fn clear(&self) -> u64 {
        let n = match &self.l1 {
            Some(l1) => {
                l1.run_pending_tasks().await;
                l1.entry_count()
            }
            None => 0,
        };
        self.clear_l1();
        self.bump(&[SCHEMA.to_string()]).await;
        n
    }
}

fn answer_class(entry: &Bytes) -> StatementClass {
    entry
        .first()
        .and_then(|&i| StatementClass::ALL.get(usize::from(i)).copied())
        .unwrap_or(StatementClass::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn l1_counts_evictions_by_size_and_by_age() {
        let registry = Registry::new();
        let metrics = CacheMetrics::register(&registry, None).unwrap();
        let config = CacheConfig {
            enabled: true,
            l1_bytes: 4 * (1000 + ENTRY_OVERHEAD as u64),
            ttl_seconds: 1,
            ..CacheConfig::default()
        };
        let ttl = Arc::new(AtomicU64::new(config.ttl_seconds));
        let l1 = l1_cache(&config, ttl, metrics.evictions.clone());
        for i in 0..10u8 {
            l1.insert([i; 32], Bytes::from(vec![0; 1000])).await;
            l1.run_pending_tasks().await;
        }
        let evicted = |cause: &str| metrics.evictions.with_label_values(&["l1", cause]).get();
        assert_eq!(l1.entry_count(), 4);
        assert_eq!(evicted("size"), 6);
        assert_eq!(evicted("expired"), 0);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        l1.run_pending_tasks().await;
        assert_eq!(evicted("expired"), 4);
        assert_eq!(l1.entry_count(), 0);
    }
}
