//! Table generations: a counter per table that every write through the
//! proxy bumps, and that every cache key includes. Without Redis the
//! counters live in this process (one proxy); with Redis they live there,
//! so a write through any proxy changes the keys every proxy computes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::redis::RedisLink;

/// The generation that every DDL and unclassified write bumps; every key
/// includes it, so schema changes (an index built or dropped changes ANN
/// answers) invalidate everything.
pub const SCHEMA: &str = "*";

/// Where the generations are kept.
pub enum GenerationStore {
    /// In this process.
    Local(Mutex<HashMap<String, u64>>),
    /// In Redis, shared by every proxy using it.
    Shared(Arc<RedisLink>),
}

impl GenerationStore {
    /// The text a key is built from for a statement reading `tables`
    /// (which include [`SCHEMA`]); `None` when it cannot be known now
    /// (Redis unreachable), so the statement must not use the cache.
    pub async fn stamp(&self, tables: &[String]) -> Option<String> {
        match self {
            GenerationStore::Local(map) => {
                let map = map.lock().unwrap_or_else(|e| e.into_inner());
                let gens: Vec<String> = tables
                    .iter()
                    .map(|t| map.get(t).copied().unwrap_or(0).to_string())
                    .collect();
                Some(gens.join(":"))
            }
            GenerationStore::Shared(link) => link.stamp(tables).await,
        }
    }

    /// Bumps the generations of `tables`; false if Redis failed (caching
    /// is then suspended until the epoch rotates).
    pub async fn bump(&self, tables: &[String]) -> bool {
        match self {
            GenerationStore::Local(map) => {
                let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
                for t in tables {
                    *map.entry(t.clone()).or_insert(0) += 1;
                }
                true
            }
            GenerationStore::Shared(link) => link.bump(tables).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_bumps_change_the_stamp_of_readers_only() {
        let store = GenerationStore::Local(Mutex::new(HashMap::new()));
        let items = vec![SCHEMA.to_string(), "items".to_string()];
        let other = vec![SCHEMA.to_string(), "other".to_string()];
        let (a, b) = (store.stamp(&items).await, store.stamp(&other).await);
        assert!(store.bump(&["items".to_string()]).await);
        assert_ne!(store.stamp(&items).await, a);
        assert_eq!(store.stamp(&other).await, b);
        store.bump(&[SCHEMA.to_string()]).await;
        assert_ne!(store.stamp(&other).await, b);
    }
}
