//! The statements one shard connection keeps prepared, so a statement the
//! proxy sends again is only bound and executed: the node does not parse,
//! type and describe it again for every Execute.
//!
//! Names are `pgvshard_N`, never reused on a connection. A statement is
//! remembered once the node's ParseComplete arrives (a failed Parse leaves
//! nothing behind). When the schema may have changed ([`super::Backend::forget_statements`]
//! moves the node's epoch), every remembered statement is closed before
//! the connection's next request, as result types may differ now.

use foldhash::HashMap;

/// Longer statements (bulk INSERTs) are sent unnamed: they rarely repeat.
const KEPT_BYTES: usize = 4096;
/// Statements kept per connection; past that new ones are sent unnamed.
const KEPT: usize = 128;

/// How a request names its statement.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StatementUse<'a> {
    /// Parse as this name, then bind it.
    Prepare(&'a str),
    /// Bind this already prepared name.
    Bind(&'a str),
    /// Parse and bind the unnamed statement.
    Unnamed,
}

/// The named statements of one connection.
#[derive(Debug, Default)]
pub(crate) struct ShardStatements {
    /// Text → (parameter types, name) of each statement prepared (names
    /// are made once, not at every request).
    names: HashMap<String, Vec<(Vec<u32>, String)>>,
    kept: usize,
    next: u32,
    /// Sent in the request in flight, kept when its ParseComplete arrives:
    /// text, parameter types, name.
    pending: Option<(String, Vec<u32>, String)>,
    /// Names to close before the next request.
    stale: Vec<String>,
    epoch: u64,
}

impl ShardStatements {
    /// Brings the connection to the node's schema epoch: statements
    /// prepared before it moved are to be closed.
    pub fn at_epoch(&mut self, epoch: u64) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.forget();
        }
    }

    /// Closes every statement before the next request (the node refused
    /// one as changed or unknown: the schema changed behind the proxy).
    pub fn forget(&mut self) {
        self.kept = 0;
        let names = self.names.drain().flat_map(|(_, v)| v).map(|(_, n)| n);
        self.stale.extend(names);
    }

    /// Names whose Close must precede the next request.
    pub fn take_stale(&mut self) -> Vec<String> {
        std::mem::take(&mut self.stale)
    }

    /// How to send `sql` with `param_types`.
    pub fn lookup(&mut self, sql: &str, param_types: &[u32]) -> StatementUse<'_> {
        self.pending = None;
        let known = self.names.get(sql).into_iter().flatten();
        if let Some((_, name)) = known.into_iter().find(|(t, _)| t == param_types) {
            return StatementUse::Bind(name);
        }
        if sql.len() > KEPT_BYTES || self.kept >= KEPT {
            return StatementUse::Unnamed;
        }
        let name = format!("pgvshard_{}", self.next);
        self.next = self.next.wrapping_add(1);
        let (_, _, name) = self
            .pending
            .insert((sql.to_string(), param_types.to_vec(), name));
        StatementUse::Prepare(name)
    }

    /// The node answered the Parse: the statement exists.
    pub fn parse_complete(&mut self) {
        if let Some((sql, types, name)) = self.pending.take() {
            self.names.entry(sql).or_default().push((types, name));
            self.kept += 1;
        }
    }

    /// The request ended (ReadyForQuery): a Parse not answered failed.
    pub fn request_done(&mut self) {
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_bound_again_only_after_its_parse_succeeded() {
        let mut s = ShardStatements::default();
        let first = s.lookup("SELECT $1", &[23]);
        assert_eq!(first, StatementUse::Prepare("pgvshard_0"));
        // The Parse failed: nothing is kept, the next try parses again.
        s.request_done();
        assert_eq!(
            s.lookup("SELECT $1", &[23]),
            StatementUse::Prepare("pgvshard_1")
        );
        s.parse_complete();
        s.request_done();
        assert_eq!(
            s.lookup("SELECT $1", &[23]),
            StatementUse::Bind("pgvshard_1")
        );
        // Other parameter types are another statement.
        assert_eq!(
            s.lookup("SELECT $1", &[25]),
            StatementUse::Prepare("pgvshard_2")
        );
    }

    #[test]
    fn a_new_epoch_closes_every_statement() {
        let mut s = ShardStatements::default();
        s.lookup("SELECT 1", &[]);
        s.parse_complete();
        s.at_epoch(0);
        assert!(s.take_stale().is_empty());
        s.at_epoch(1);
        assert_eq!(s.take_stale(), vec!["pgvshard_0".to_string()]);
        assert_eq!(
            s.lookup("SELECT 1", &[]),
            StatementUse::Prepare("pgvshard_1")
        );
    }

    #[test]
    fn long_statements_and_a_full_connection_go_unnamed() {
        let mut s = ShardStatements::default();
        let long = format!("SELECT '{}'", "x".repeat(KEPT_BYTES));
        assert_eq!(s.lookup(&long, &[]), StatementUse::Unnamed);
        for i in 0..KEPT {
            s.lookup(&format!("SELECT {i}"), &[]);
            s.parse_complete();
        }
        assert_eq!(s.lookup("SELECT 'new'", &[]), StatementUse::Unnamed);
        assert_eq!(s.lookup("SELECT 0", &[]), StatementUse::Bind("pgvshard_0"));
    }
}
