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

use std::sync::Arc;

use super::memo::TextMemo;
use crate::wire::FieldDescription;

/// Most statement texts remembered.
const CAPACITY: usize = 4096;

/// What Describe answered for one statement.
#[derive(Debug)]
pub struct Described {
    /// Parameter type OIDs (the proxy's).
    pub param_types: Vec<u32>,
    /// Result columns (the proxy's OIDs).
    pub columns: Vec<FieldDescription>,
}

/// The answers for one text, by the client's parameter types (nearly
/// always one).
type Answers = Vec<(Vec<u32>, Arc<Described>)>;

/// The remembered Describe answers of one proxy, by statement text and
/// the client's parameter types.
#[derive(Debug)]
pub struct DescribeCache(TextMemo<Answers>);

impl Default for DescribeCache {
    fn default() -> Self {
        DescribeCache(TextMemo::new(CAPACITY))
    }
}

impl DescribeCache {
    /// The remembered answer for `sql` with the client's `param_types`.
    pub fn get(&self, sql: &str, param_types: &[u32]) -> Option<Arc<Described>> {
        let answers = self.0.get(sql)?;
        let (_, described) = answers.iter().find(|(t, _)| t == param_types)?;
        Some(Arc::clone(described))
    }

    /// Remembers an answer (beside those for other parameter types).
    pub fn insert(&self, sql: &str, param_types: &[u32], described: Described) {
        let mut answers = self.0.get(sql).map_or_else(Vec::new, |a| a.to_vec());
        answers.retain(|(t, _)| t != param_types);
        answers.push((param_types.to_vec(), Arc::new(described)));
        self.0.insert(sql, answers);
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
        let int8 = || Described {
            param_types: vec![20],
            columns: vec![FieldDescription::builtin("id", 23)],
        };
        cache.insert(sql, &[20], int8());
        assert_eq!(cache.get(sql, &[20]).unwrap().param_types, vec![20]);
        assert_eq!(cache.get(sql, &[0]).unwrap().param_types, vec![23]);
        cache.clear();
        assert!(cache.get(sql, &[0]).is_none());
    }
}
