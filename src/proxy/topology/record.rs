//! The cluster's one decision per shard, kept in Redis when proxies share
//! one: which node is the shard's primary in which term, and who may
//! decide the next term.
//!
//! - `<prefix>:topology:<shard>` holds `<term> <node>`. It is only ever
//!   raised (a Lua compare-and-set), so every proxy that reads it follows
//!   the highest term.
//! - `<prefix>:failover:<shard>` is the coordinator's lease (`SET NX PX`
//!   with the proxy's id): one proxy at a time promotes a standby of the
//!   shard; the lease lapses by itself if that proxy dies.

use std::sync::Arc;
use std::time::Duration;

use crate::proxy::cache::RedisLink;

/// Raises the record to (term, node) if its term is lower; answers the
/// record as it stands afterwards.
const RAISE: &str = "local cur = redis.call('GET', KEYS[1]) \
    if cur then local t = tonumber(string.match(cur, '^(%d+)')) \
      if t and t >= tonumber(ARGV[1]) then return cur end end \
    local v = ARGV[1] .. ' ' .. ARGV[2] redis.call('SET', KEYS[1], v) return v";

/// Deletes the lease only if this proxy still holds it.
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('DEL', KEYS[1]) else return 0 end";

/// A shard's primary as recorded: (term, node name).
pub type Term = (u64, String);

/// The shared record of every shard's term.
pub struct TermRecord {
    redis: Arc<RedisLink>,
    /// This proxy's id in leases.
    me: String,
}

impl TermRecord {
    /// A record in `redis`.
    pub fn new(redis: Arc<RedisLink>) -> Self {
        let me = format!(
            "{}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        TermRecord { redis, me }
    }

    fn key(&self, what: &str, shard: &str) -> String {
        format!("{}:{what}:{shard}", self.redis.prefix())
    }

    /// The recorded term of `shard` (`None`: none yet, or Redis failed).
    pub async fn read(&self, shard: &str) -> Option<Term> {
        let cmd = redis::cmd("GET")
            .arg(self.key("topology", shard))
            .to_owned();
        let v: Option<String> = self.redis.run("topology_get", &cmd).await?;
        parse(&v?)
    }

    /// Records `term` unless a higher one is there; the record after.
    pub async fn raise(&self, shard: &str, term: &Term) -> Option<Term> {
        let cmd = redis::cmd("EVAL")
            .arg(RAISE)
            .arg(1)
            .arg(self.key("topology", shard))
            .arg(term.0)
            .arg(&term.1)
            .to_owned();
        let v: String = self.redis.run("topology_raise", &cmd).await?;
        parse(&v)
    }

    /// Takes the coordinator's lease of `shard` for `ttl`; false when
    /// another proxy holds it or Redis cannot be reached (then no proxy
    /// can record a decision, so none is made).
    pub async fn lease(&self, shard: &str, ttl: Duration) -> bool {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let cmd = redis::cmd("SET")
            .arg(self.key("failover", shard))
            .arg(&self.me)
            .arg("NX")
            .arg("PX")
            .arg(ms)
            .to_owned();
        let v: Option<Option<String>> = self.redis.run("failover_lease", &cmd).await;
        matches!(v, Some(Some(_)))
    }

    /// Gives the lease back (if still held).
    pub async fn release(&self, shard: &str) {
        let cmd = redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(self.key("failover", shard))
            .arg(&self.me)
            .to_owned();
        let _: Option<i64> = self.redis.run("failover_release", &cmd).await;
    }
}

fn parse(v: &str) -> Option<Term> {
    let (term, node) = v.split_once(' ')?;
    Some((term.parse().ok()?, node.to_string()))
}
