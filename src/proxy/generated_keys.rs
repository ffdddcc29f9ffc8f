//! Shard keys the proxy generates for INSERT and COPY rows that leave a
//! serial key to its default. Each shard's own sequence only knows its own
//! rows, so two shards would hand out the same value; instead the proxy
//! assigns the values before routing, and the rows then carry literal
//! keys, route by slot like any other, and RETURNING shows the values.
//!
//! # Without Redis: one proxy
//! Per table, one in-memory counter that starts after the largest key any
//! shard holds (read on first use and again after DDL on the table, so
//! after TRUNCATE keys start again at 1) and grows by one per row. Several
//! proxies in front of the same shards would hand out the same keys: such
//! a deployment needs `cache.redis_url`.
//!
//! # With Redis (`cache.redis_url`): any number of proxies
//! Each table has a counter in Redis (`{key_prefix}:serial:{table}`, see
//! [`RedisLink::reserve_keys`]). A proxy reserves a block of
//! [`BLOCK`] keys (or the statement's row count, if larger) with one
//! atomic script that first raises the counter to the *floor* — the
//! largest key this proxy knows to be used or reserved — and then
//! INCRBYs it; the proxy hands the block out from memory and reserves the
//! next one when it runs out. Blocks never overlap, so neither do keys.
//! The counter only grows: after TRUNCATE or DROP/CREATE, keys continue
//! where they were (like a sequence without RESTART IDENTITY).
//!
//! Redis losing its data must not restart the counter below keys still
//! on the shards, nor inside a block another proxy still holds:
//! - a proxy reads the shards' largest key into its floor on first use,
//!   after DDL on the table, and whenever its Redis link has failed since
//!   its block was reserved (a restart breaks every connection);
//! - the script never creates a missing counter from a floor it was not
//!   given fresh: the proxy then reads the shards' largest key (even
//!   when its own link never failed, e.g. after FLUSHALL) and asks again;
//! - when the counter is missing but that fresh floor is positive, Redis
//!   lost it: it starts [`LOSS_GAP`] above the floor, beyond the blocks
//!   other proxies may still hand out before they notice.
//!
//! Known limit: a Redis restored from an *older* snapshot keeps an old
//! counter, which is raised to the shards' largest key but not past blocks
//! other proxies hold until their link notices the restart; the shard's
//! primary key then rejects a repeated key (23505), it is never stored
//! twice. Values above 2^53 compare inexactly in the Lua script.
//!
//! When Redis does not answer and a statement needs a new block, the
//! statement fails (55000, naming Redis) rather than risk a key another
//! proxy hands out; rows with explicit keys still go through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlparser::ast::{self, Expr, Ident, ObjectName};

use super::backend::messages::fields;
use super::backend::{BackendMessage, Request, SharedBackend};
use super::cache::{QueryCache, RedisLink};
use super::config::CacheConfig;
use crate::metrics::{CacheMetrics, Registry};
use crate::sql::{self, TableName};
use crate::wire::PgError;

/// Keys reserved in Redis at a time (more when one statement needs more).
pub const BLOCK: i64 = 1000;

/// How far above the shards' largest key a counter Redis lost restarts.
pub const LOSS_GAP: i64 = 1_000_000;

/// The keys of one table this proxy may hand out: `next..=last`.
#[derive(Debug, Clone, Copy)]
struct Block {
    next: i64,
    last: i64,
    /// The Redis link's failure count when the block was reserved.
    failures: u64,
}

/// The generated keys of every table, from Redis blocks or (without
/// Redis) one in-memory counter per table.
pub struct KeySequences {
    redis: Option<Arc<RedisLink>>,
    blocks: Mutex<HashMap<String, Block>>,
    /// Serialises reservations, so concurrent statements of this proxy
    /// share one block instead of each reserving (and wasting) one.
    reserving: tokio::sync::Mutex<()>,
}

/// The Redis link generated keys use: the cache's, or (cache disabled but
/// `cache.redis_url` set) one of their own; `None` without Redis.
pub fn key_link(
    config: &CacheConfig,
    cache: Option<&QueryCache>,
    registry: &Registry,
) -> Result<Option<Arc<RedisLink>>, String> {
    if let Some(cache) = cache {
        return Ok(cache.redis());
    }
    let Some(url) = &config.redis_url else {
        return Ok(None);
    };
    let metrics = CacheMetrics::register(registry, None).map_err(|e| e.to_string())?;
    Ok(Some(Arc::new(RedisLink::new(
        url,
        &config.key_prefix,
        metrics,
    )?)))
}

impl KeySequences {
    /// Key sequences reserving through `redis`, or in memory without it.
    pub fn new(redis: Option<Arc<RedisLink>>) -> Self {
        KeySequences {
            redis,
            blocks: Mutex::new(HashMap::new()),
            reserving: tokio::sync::Mutex::new(()),
        }
    }

    /// Forgets `table`'s block (after DDL: it may have been dropped or
    /// truncated); the next key reads the shards' largest again.
    pub fn forget(&self, table: &TableName) {
        self.lock().remove(&table.to_string());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Block>> {
        self.blocks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The link's failure count (0 without Redis).
    fn failures(&self) -> u64 {
        self.redis.as_ref().map_or(0, |r| r.failures())
    }

    /// Hands out `n` keys from `table`'s block when it holds them and is
    /// still valid; the first is returned.
    fn hand_out(&self, table: &str, n: i64) -> Option<i64> {
        let failures = self.failures();
        let mut blocks = self.lock();
        let block = blocks.get_mut(table)?;
        if block.failures != failures
            || block
                .next
                .checked_add(n - 1)
                .is_none_or(|end| end > block.last)
        {
            return None;
        }
        let first = block.next;
        block.next = block.next.saturating_add(n);
        Some(first)
    }

    /// `n` consecutive fresh values of `table`'s key `key`; the first is
    /// returned.
    pub async fn take(
        &self,
        shards: &[SharedBackend],
        table: &TableName,
        key: &str,
        n: usize,
    ) -> Result<i64, PgError> {
        let name = table.to_string();
        let n = i64::try_from(n).unwrap_or(i64::MAX).max(1);
        if let Some(first) = self.hand_out(&name, n) {
            return Ok(first);
        }
        let _reserving = self.reserving.lock().await;
        if let Some(first) = self.hand_out(&name, n) {
            return Ok(first);
        }
        let failures = self.failures();
        let old = self.lock().get(&name).copied();
        let mut floor = old.map_or(0, |b| b.last);
        let mut read_shards = old.is_none_or(|b| b.failures != failures);
        if read_shards {
            floor = floor.max(shards_largest(shards, &name, key).await?);
        }
        let block = match &self.redis {
            None => Block {
                next: floor.saturating_add(1),
                last: i64::MAX,
                failures,
            },
            Some(redis) => {
                let size = n.max(BLOCK);
                let last = loop {
                    // A counter is seeded only from the shards' largest key
                    // read just now (a lost counter restarts above it).
                    let seed = read_shards.then(|| {
                        if floor > 0 {
                            floor.saturating_add(LOSS_GAP)
                        } else {
                            0
                        }
                    });
                    let reserved = redis
                        .reserve_keys(&name, floor, seed, size)
                        .await
                        .ok_or_else(|| redis_unavailable(table, key))?;
                    match reserved {
                        Some(last) => break last,
                        None if !read_shards => {
                            floor = floor.max(shards_largest(shards, &name, key).await?);
                            read_shards = true;
                        }
                        None => return Err(redis_unavailable(table, key)),
                    }
                };
                Block {
                    next: last.saturating_sub(size - 1),
                    last,
                    failures,
                }
            }
        };
        let first = block.next;
        self.lock().insert(
            name,
            Block {
                next: first.saturating_add(n),
                ..block
            },
        );
        Ok(first)
    }
}

fn redis_unavailable(table: &TableName, key: &str) -> PgError {
    PgError::new(
        "55000",
        format!(
            "cannot generate a value for key \"{key}\" of table {table}: Redis (cache.redis_url) does not answer, and proxies reserve generated keys there so that no two hand out the same one; give the key explicitly or retry when Redis is back"
        ),
    )
}

/// The largest value of `key` on any shard.
async fn shards_largest(shards: &[SharedBackend], table: &str, key: &str) -> Result<i64, PgError> {
    let mut largest = 0;
    for shard in shards {
        largest = largest.max(largest_key(shard, table, key).await?);
    }
    Ok(largest)
}

/// The largest value of `key` on one shard (0 for an empty table); an
/// error when the key is not an integer (the proxy generates only those).
async fn largest_key(shard: &SharedBackend, table: &str, key: &str) -> Result<i64, PgError> {
    let mut chan = shard.checkout().await?;
    let column = ast::Ident::with_quote('"', key).to_string();
    chan.send(&Request::Simple(format!(
        "SELECT max({column}) FROM {table}"
    )))
    .await?;
    let mut largest = Some(0);
    let mut error = None;
    loop {
        match chan.recv().await? {
            BackendMessage::DataRow(row) => {
                if let Some(Some(v)) = fields(&row)?.first() {
                    largest = std::str::from_utf8(v).ok().and_then(|t| t.parse().ok());
                }
            }
            BackendMessage::Error(e) => error = Some(e),
            BackendMessage::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    let not_integer = || {
        PgError::feature_not_supported(format!(
            "the proxy generates only integer (serial) keys, and key \"{key}\" of table {table} is not one"
        ))
        .with_hint("Give the key in every row (for a uuid key, make the UUIDs in the client).")
    };
    match (error, largest) {
        // max() does not exist for the key's type (uuid, for one).
        (Some(e), _) if e.code == "42883" => Err(not_integer()),
        (Some(e), _) => Err(e),
        (None, Some(n)) => Ok(n),
        (None, None) => Err(not_integer()),
    }
}

fn is_default(expr: &Expr) -> bool {
    matches!(expr, Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
}

/// The INSERT with `first`, `first + 1`, … as the keys of the rows that
/// had none (their key column DEFAULT or left out), in row order; `None`
/// when the statement's shape does not allow it (rows not spelled out,
/// see [`sql::spelled_rows`], or shorter than the key's place).
pub fn fill_keys(
    statement: &sql::Statement,
    key: &str,
    table_columns: &[String],
    first: i64,
) -> Option<sql::Statement> {
    crate::stack::with_tree(statement.depth, || {
        let ast::Statement::Insert(insert) = &statement.ast else {
            return None;
        };
        let mut insert = insert.clone();
        let named = |c: &ObjectName| {
            c.0.last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| sql::fold(i) == key)
        };
        let target = if insert.columns.is_empty() {
            table_columns.iter().position(|c| c == key)?
        } else if let Some(p) = insert.columns.iter().position(named) {
            p
        } else {
            sql::append_target(&mut insert, key)?
        };
        let sql::Place::Row(position) = sql::spelled_rows(&insert)?.place(target) else {
            return None;
        };
        let values = sql::spelled_values_mut(&mut insert)?;
        let mut next = first;
        for row in &mut values.rows {
            if row.len() == position {
                row.push(Expr::Identifier(Ident::new("DEFAULT")));
            }
            let slot = row.get_mut(position)?;
            if is_default(slot) {
                *slot = Expr::value(ast::Value::Number(next.to_string(), false));
                next += 1;
            }
        }
        sql::parse_single(&ast::Statement::Insert(insert).to_string()).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(text: &str, cols: &[&str]) -> String {
        let s = sql::parse_single(text).unwrap();
        let cols: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
        fill_keys(&s, "id", &cols, 7).unwrap().text.clone()
    }

    #[test]
    fn missing_and_default_keys_get_consecutive_values() {
        assert_eq!(
            fill(
                "INSERT INTO t (c) VALUES (1), (2) RETURNING id",
                &["id", "c"]
            ),
            "INSERT INTO t (c, \"id\") VALUES (1, 7), (2, 8) RETURNING id"
        );
        assert_eq!(
            fill(
                "INSERT INTO t VALUES (DEFAULT, 1), (3, 2), (default, 5)",
                &["id", "c"]
            ),
            "INSERT INTO t VALUES (7, 1), (3, 2), (8, 5)"
        );
    }

    #[test]
    fn sqlalchemy_bulk_inserts_get_keys_in_counter_order() {
        assert_eq!(
            fill(
                "INSERT INTO t (c) SELECT p0::INTEGER FROM (VALUES (1, 0), (2, 1)) AS s(p0, n) ORDER BY n RETURNING t.id",
                &["id", "c"]
            ),
            "INSERT INTO t (c, \"id\") SELECT p0::INTEGER, \"pgvshard_id_0\" FROM (VALUES (1, 0, 7), (2, 1, 8)) AS s (p0, n, \"pgvshard_id_0\") ORDER BY n RETURNING t.id"
        );
    }
}
