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

use std::fmt::Write as _;
use std::sync::Arc;

use super::memo::TextMemo;
use crate::wire::FieldDescription;

/// Most statements remembered.
const CAPACITY: usize = 4096;

/// What Describe answered for one statement.
#[derive(Debug)]
pub struct Described {
    /// Parameter type OIDs (the proxy's).
    pub param_types: Vec<u32>,
    /// Result columns (the proxy's OIDs).
    pub columns: Vec<FieldDescription>,
}

/// The remembered Describe answers of one proxy, by statement text and
/// the client's parameter types.
#[derive(Debug)]
pub struct DescribeCache(TextMemo<Described>);

impl Default for DescribeCache {
    fn default() -> Self {
        DescribeCache(TextMemo::new(CAPACITY))
    }
}

/// The memo key: the parameter types, then the text.
fn key(sql: &str, param_types: &[u32]) -> String {
    let mut k = String::with_capacity(sql.len() + 8 * param_types.len() + 1);
    for t in param_types {
        write!(k, "{t},").ok();
    }
    k.push('\n');
    k.push_str(sql);
    k
}

impl DescribeCache {
    /// The remembered answer for `sql` with the client's `param_types`.
    pub fn get(&self, sql: &str, param_types: &[u32]) -> Option<Arc<Described>> {
        self.0.get(&key(sql, param_types))
    }

    /// Remembers an answer.
    pub fn insert(&self, sql: &str, param_types: &[u32], described: Described) {
        self.0.insert(&key(sql, param_types), described);
    }

    /// Forgets every answer (after a schema change).
    pub fn clear(&self) {
        self.0.clear();
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
        assert!(cache.get(sql, &[]).is_none());
        cache.clear();
        assert!(cache.get(sql, &[0]).is_none());
    }
}
