//! `SHOW pgvshard.cache` (per level: hits, misses, hit ratio, entries,
//! bytes, state) and `SELECT pgvshard.cache_clear()`.

use super::QueryCache;
use crate::metrics::CacheMetrics;
use crate::sql::Statement;
use crate::wire::{oid, FieldDescription, PgError, Responder, Value};

/// The name `SHOW` answers from the cache.
pub const SHOW_NAME: &str = "pgvshard.cache";

/// The columns of `SHOW pgvshard.cache`.
pub fn columns() -> Vec<FieldDescription> {
    FieldDescription::builtins(&[
        ("level", oid::TEXT),
        ("hits", oid::INT8),
        ("misses", oid::INT8),
        ("hit_ratio", oid::TEXT),
        ("entries", oid::INT8),
        ("bytes", oid::INT8),
        ("state", oid::TEXT),
    ])
}

/// True for `SELECT pgvshard.cache_clear()`.
pub fn is_cache_clear(statement: &Statement) -> bool {
    // Every statement is checked: look at the text before printing the tree.
    let name = b"cache_clear";
    if !statement
        .text
        .as_bytes()
        .windows(name.len())
        .any(|w| w.eq_ignore_ascii_case(name))
    {
        return false;
    }
    crate::stack::with_tree(statement.depth, || {
        statement
            .ast
            .to_string()
            .eq_ignore_ascii_case("SELECT pgvshard.cache_clear()")
    })
}

fn int(n: u64) -> Option<Value> {
    Some(Value::Int8(i64::try_from(n).unwrap_or(i64::MAX)))
}

/// Answers `SHOW pgvshard.cache` (no cache: one `off` row).
pub async fn show(cache: Option<&QueryCache>, out: &mut Responder<'_>) -> Result<(), PgError> {
    out.row_description(&columns());
    let Some(cache) = cache else {
        let row = [
            Some(Value::Text("l1".into())),
            int(0),
            int(0),
            Some(Value::Text("0.000".into())),
            int(0),
            int(0),
            Some(Value::Text("off".into())),
        ];
        out.row(&row).await?;
        out.complete("SHOW 1");
        return Ok(());
    };
    let m = &cache.metrics;
    if let Some(l1) = &cache.l1 {
        l1.run_pending_tasks().await;
    }
    let mut rows = 0;
    for level in ["l1", "l2"] {
        let (entries, bytes, state) = match level {
            "l1" => match &cache.l1 {
                Some(l1) => (l1.entry_count(), l1.weighted_size(), "on"),
                None => (0, 0, "off"),
            },
            _ => match &cache.redis {
                Some(r) if r.is_suspect() => (0, 0, "suspended: Redis unreachable"),
                Some(_) => (0, m.l2_bytes_written.get(), "on"),
                None => (0, 0, "off"),
            },
        };
        let hits = CacheMetrics::count(&m.hits, level);
        let misses = CacheMetrics::count(&m.misses, level);
        let ratio = if hits + misses == 0 {
            0.0
        } else {
            hits as f64 / (hits + misses) as f64
        };
        let row = [
            Some(Value::Text(level.to_string())),
            int(hits),
            int(misses),
            Some(Value::Text(format!("{ratio:.3}"))),
            int(entries),
            int(bytes),
            Some(Value::Text(state.to_string())),
        ];
        out.row(&row).await?;
        rows += 1;
    }
    out.complete(&format!("SHOW {rows}"));
    Ok(())
}

/// Answers `SELECT pgvshard.cache_clear()`: the number of L1 entries dropped.
pub async fn clear(cache: Option<&QueryCache>, out: &mut Responder<'_>) -> Result<(), PgError> {
    let n = match cache {
        Some(c) => c.clear().await,
        None => 0,
    };
    out.row_description(&[FieldDescription::builtin("cache_clear", oid::INT8)]);
    out.row(&[int(n)]).await?;
    out.complete("SELECT 1");
    Ok(())
}
