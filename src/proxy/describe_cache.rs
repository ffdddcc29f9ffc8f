//! Parameter and result types of statements the proxy has prepared, so a
//! Parse does not cost a round trip to a shard each time (drivers send an
//! unnamed Parse with every extended-protocol query).
//!
//! An answer can go stale when another proxy, or a client directly on a
//! shard, changes the schema. That is caught where it matters: the wire
//! layer refuses rows whose columns differ from what Describe announced
//! (`cached plan must not change result type`, as PostgreSQL says), and
//! the proxy then forgets every answer so the client's next Parse asks
//! a shard again. Schema changes through this proxy forget them at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::wire::FieldDescription;

/// Most statements remembered; the map starts over when it is full.
const CAPACITY: usize = 4096;

/// What Describe answered for one statement.
#[derive(Debug)]
pub struct Described {
    /// Parameter type OIDs (the proxy's).
    pub param_types: Vec<u32>,
    /// Result columns (the proxy's OIDs).
    pub columns: Vec<FieldDescription>,
}

/// Statement text and the client's parameter types → Describe's answer.
type Entries = HashMap<(String, Vec<u32>), Arc<Described>>;

/// The remembered Describe answers of one proxy.
#[derive(Debug, Default)]
pub struct DescribeCache {
    entries: Mutex<Entries>,
}

impl DescribeCache {
    /// The remembered answer for `sql` with the client's `param_types`.
    pub fn get(&self, sql: &str, param_types: &[u32]) -> Option<Arc<Described>> {
        // The key is built only to look up; statements are short.
        let key = (sql.to_string(), param_types.to_vec());
        self.lock().get(&key).cloned()
    }

    /// Remembers an answer.
    pub fn insert(&self, sql: &str, param_types: &[u32], described: Described) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert((sql.to_string(), param_types.to_vec()), Arc::new(described));
    }

    /// Forgets every answer (after a schema change).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_kept_per_parameter_types_until_cleared() {
        let cache = DescribeCache::default();
        let sql = "SELECT id FROM t WHERE id = $1";
        cache.insert(
            sql,
            &[0],
            Described {
                param_types: vec![23],
                columns: vec![FieldDescription::builtin("id", 23)],
            },
        );
        assert_eq!(cache.get(sql, &[0]).unwrap().param_types, vec![23]);
        assert!(cache.get(sql, &[20]).is_none());
        cache.clear();
        assert!(cache.get(sql, &[0]).is_none());
    }
}
