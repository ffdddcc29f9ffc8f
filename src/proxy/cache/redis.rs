//! The proxy's link to Redis: table generations (INCR/MGET), the L2
//! entries (GET/SET EX), and the epoch that makes every entry made before
//! a Redis outage unreachable after it.
//!
//! Any failed command marks the link *suspect*: caching stops until a
//! later statement rotates the epoch (a fresh random value under
//! `{prefix}:epoch`), which is part of every key. A failure means the
//! connection broke, so Redis may have restarted and lost or rolled back
//! generations (a restart from an old snapshot gives counters that were
//! already used); a new epoch makes every key built from the old counters
//! unreachable, in every proxy's L1 and in L2. The connection manager
//! reconnects by itself but the first command after a restart fails
//! without retry, so rotation is tried twice before giving up for that
//! statement.
//!
//! The link also reserves blocks of generated serial keys for
//! [`crate::proxy`]'s key sequences ([`RedisLink::reserve_keys`]), so that
//! several proxies never hand out the same key.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue};

use crate::metrics::{CacheMetrics, RedisRemoved, RedisRemovedSource};

/// How long one Redis command may take before it counts as a failure.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

/// A connection to the Redis holding generations and L2 entries.
pub struct RedisLink {
    conn: ConnectionManager,
    prefix: String,
    /// Failures seen so far, and how many of them an epoch rotation
    /// made after them has covered: the link is suspect while
    /// `healed < failures` (counters, not a flag, so a failure racing
    /// with a rotation is never forgotten).
    failures: AtomicU64,
    healed: AtomicU64,
    metrics: CacheMetrics,
}

impl RedisLink {
    /// A lazily connecting link to `url`; keys start with `prefix`.
    pub fn new(url: &str, prefix: &str, metrics: CacheMetrics) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn =
            ConnectionManager::new_lazy_with_config(client, config).map_err(|e| e.to_string())?;
        metrics.available.set(0);
        Ok(RedisLink {
            conn,
            prefix: prefix.to_string(),
            // A new link has not rotated the epoch yet: it might be
            // talking to a Redis restored from an old snapshot.
            failures: AtomicU64::new(1),
            healed: AtomicU64::new(0),
            metrics,
        })
    }

    /// The key of table `table`'s generation.
    pub fn generation_key(&self, table: &str) -> String {
        format!("{}:gen:{table}", self.prefix)
    }

    /// The key of an L2 entry.
    pub fn entry_key(&self, id: &str) -> String {
        format!("{}:r:{id}", self.prefix)
    }

    /// The key of table `table`'s counter of generated serial keys.
    pub fn serial_key(&self, table: &str) -> String {
        format!("{}:serial:{table}", self.prefix)
    }

    fn epoch_key(&self) -> String {
        format!("{}:epoch", self.prefix)
    }

    /// The prefix of every key of this cluster.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Runs one command, timed in the metrics under `name`; `None` when
    /// Redis failed (logged, and caching is suspended until it answers).
    pub(crate) async fn run<T: FromRedisValue>(&self, name: &'static str, cmd: &Cmd) -> Option<T> {
        let start = Instant::now();
        let mut conn = self.conn.clone();
        let result = cmd.query_async::<T>(&mut conn).await;
        self.metrics.redis(name, start.elapsed(), result.is_ok());
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                if !self.is_suspect() {
                    tracing::warn!(error = %e, command = name, "Redis failed: result caching suspended until it answers again");
                }
                self.fail();
                None
            }
        }
    }

    /// True when the link is usable for caching, rotating the epoch first
    /// after a failure; `Some(true)` when it just rotated (old L1 entries
    /// are unreachable and can be dropped).
    pub async fn ready(&self) -> Option<bool> {
        let failures = self.failures.load(Ordering::SeqCst);
        if self.healed.load(Ordering::SeqCst) >= failures {
            return Some(false);
        }
        let epoch = format!("{:016x}", rand_u64());
        let mut set = redis::cmd("SET");
        set.arg(self.epoch_key()).arg(&epoch);
        for _ in 0..2 {
            if self.run::<()>("set", &set).await.is_some() {
                self.healed.fetch_max(failures, Ordering::SeqCst);
                self.metrics.available.set(i64::from(!self.is_suspect()));
                tracing::info!("Redis answers again: result caching resumed with a new epoch");
                return Some(true);
            }
        }
        None
    }

    /// The epoch and the generations of `tables` (one MGET), as the text a
    /// cache key is built from; `None` when Redis failed.
    ///
    /// A generation that is missing (never written, or evicted or lost
    /// by Redis) is first set to a random value ([`fresh_generation`]):
    /// counting up again from zero could repeat a value some cached entry
    /// was made under before the loss.
    pub async fn stamp(&self, tables: &[String]) -> Option<String> {
        for _ in 0..2 {
            let mut mget = redis::cmd("MGET");
            mget.arg(self.epoch_key());
            for t in tables {
                mget.arg(self.generation_key(t));
            }
            let values: Vec<Option<String>> = self.run("mget", &mget).await?;
            let Some(Some(epoch)) = values.first() else {
                // Someone flushed Redis: start a new epoch, cache from the next statement.
                self.fail();
                return None;
            };
            let missing: Vec<&String> = tables
                .iter()
                .zip(&values[1..])
                .filter(|(_, v)| v.is_none())
                .map(|(t, _)| t)
                .collect();
            if missing.is_empty() {
                let mut stamp = epoch.clone();
                for v in values[1..].iter().flatten() {
                    stamp.push(':');
                    stamp.push_str(v);
                }
                return Some(stamp);
            }
            let mut seed = redis::pipe();
            for t in missing {
                seed.cmd("SET")
                    .arg(self.generation_key(t))
                    .arg(fresh_generation())
                    .arg("NX")
                    .ignore();
            }
            let start = Instant::now();
            let mut conn = self.conn.clone();
            let result = seed.query_async::<()>(&mut conn).await;
            self.metrics.redis("seed", start.elapsed(), result.is_ok());
            if result.is_err() {
                self.fail();
                return None;
            }
        }
        None
    }

    /// Bumps the generations of `tables` in one script (a missing one is
    /// first set to a random value, as in [`RedisLink::stamp`]), once more
    /// if the first attempt fails (the connection manager's first command
    /// after a reconnect); if both fail, it rotates the epoch (when Redis
    /// answers that), and the link stays suspect until it has.
    pub async fn bump(&self, tables: &[String]) -> bool {
        const BUMP: &str = "for i, k in ipairs(KEYS) do \
            if redis.call('EXISTS', k) == 0 then redis.call('SET', k, ARGV[i]) end \
            redis.call('INCR', k) end \
            return 0";
        let mut eval = redis::cmd("EVAL");
        eval.arg(BUMP).arg(tables.len());
        for t in tables {
            eval.arg(self.generation_key(t));
        }
        for _ in tables {
            eval.arg(fresh_generation());
        }
        for _ in 0..2 {
            if self.run::<i64>("incr", &eval).await.is_some() {
                return true;
            }
        }
        // The write is applied but other proxies may not see its bump:
        // a new epoch makes every entry they hold unreachable instead
        // (if Redis answers that; otherwise this is the partition case the
        // module documentation states).
        self.ready().await;
        false
    }

    /// Reserves `n` keys of `table` atomically and returns the last one:
    /// the counter is first raised to `floor`, then INCRBY `n`. A missing
    /// counter (new, or lost by Redis) is set to `seed` only when `seed` is
    /// given (the caller read the shards' largest key just now); without
    /// one the answer is `Some(None)`, and the caller reads the shards and
    /// asks again. Tried twice (the connection manager's first command
    /// after a reconnect fails); `None` when Redis failed.
    pub async fn reserve_keys(
        &self,
        table: &str,
        floor: i64,
        seed: Option<i64>,
        n: i64,
    ) -> Option<Option<i64>> {
        const RESERVE: &str = "local cur = redis.call('GET', KEYS[1]) \
            if not cur then \
              if ARGV[2] == '' then return false end \
              redis.call('SET', KEYS[1], ARGV[2]) \
            elseif tonumber(cur) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end \
            return redis.call('INCRBY', KEYS[1], ARGV[3])";
        let mut eval = redis::cmd("EVAL");
        eval.arg(RESERVE)
            .arg(1)
            .arg(self.serial_key(table))
            .arg(floor)
            .arg(seed.map_or(String::new(), |s| s.to_string()))
            .arg(n);
        for _ in 0..2 {
            if let Some(last) = self.run("reserve_keys", &eval).await {
                return Some(last);
            }
        }
        None
    }

    /// How many Redis failures this link has seen: a change means Redis
    /// may have restarted and lost or rolled back what it held.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    /// An L2 entry.
    pub async fn get(&self, id: &str) -> Option<Bytes> {
        let mut get = redis::cmd("GET");
        get.arg(self.entry_key(id));
        let value: Option<Vec<u8>> = self.run("get", &get).await?;
        value.map(Bytes::from)
    }

    /// Stores an L2 entry for `ttl`.
    pub async fn set(&self, id: &str, value: &[u8], ttl: Duration) {
        let mut set = redis::cmd("SET");
        set.arg(self.entry_key(id))
            .arg(value)
            .arg("EX")
            .arg(ttl.as_secs().max(1));
        if self.run::<()>("set", &set).await.is_some() {
            self.metrics.l2_bytes_written.inc_by(value.len() as u64);
        }
    }

    fn fail(&self) {
        self.failures.fetch_add(1, Ordering::SeqCst);
        self.metrics.available.set(0);
    }

    /// Whether caching is suspended.
    pub fn is_suspect(&self) -> bool {
        self.healed.load(Ordering::SeqCst) < self.failures.load(Ordering::SeqCst)
    }
}

/// A random starting generation: below 2^62, so INCR never overflows.
fn fresh_generation() -> u64 {
    rand_u64() >> 2
}

/// Reads the keys the Redis at `url` removed by itself (`INFO stats`),
/// for the L2 eviction counts at scrape time. Scrapes render on the
/// blocking pool, so it asks on a short-lived blocking connection,
/// bounded by [`COMMAND_TIMEOUT`]; no answer gives `None`.
pub fn removed_keys(url: &str) -> Result<RedisRemovedSource, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    Ok(Box::new(move || {
        let mut conn = client.get_connection_with_timeout(COMMAND_TIMEOUT).ok()?;
        conn.set_read_timeout(Some(COMMAND_TIMEOUT)).ok()?;
        conn.set_write_timeout(Some(COMMAND_TIMEOUT)).ok()?;
        let info: redis::InfoDict = redis::cmd("INFO").arg("stats").query(&mut conn).ok()?;
        Some(RedisRemoved {
            evicted: info.get("evicted_keys")?,
            expired: info.get("expired_keys")?,
        })
    }))
}

/// A random number (from the OS; the clock and pid if it has none).
pub(crate) fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return nanos as u64 ^ u64::from(std::process::id());
    }
    u64::from_le_bytes(b)
}
