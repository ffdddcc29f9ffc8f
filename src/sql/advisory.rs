//! Which advisory lock functions a statement calls. A proxy pools its
//! shard connections per transaction, so it can carry a lock held for the
//! transaction (`pg_advisory_xact_lock`: the transaction keeps its
//! connection) but not one held for the session (`pg_advisory_lock`),
//! which would stay with a pooled connection after the client's session.

use std::ops::ControlFlow;

use sqlparser::ast::{self, Expr};

use super::parse::Statement;

/// The widest hold a statement's advisory lock calls ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AdvisoryHold {
    /// No advisory lock function.
    None,
    /// Only transaction-level ones (`pg_[try_]advisory_xact_lock[_shared]`).
    Transaction,
    /// A session-level one (`pg_advisory_lock`, `pg_advisory_unlock`, …).
    Session,
}

/// The advisory lock functions `statement` calls, by their widest hold.
pub fn advisory_hold(statement: &Statement) -> AdvisoryHold {
    let word = b"advisory";
    let text = statement.text.as_bytes();
    if !text
        .windows(word.len())
        .any(|w| w.eq_ignore_ascii_case(word))
    {
        return AdvisoryHold::None;
    }
    crate::stack::with_tree(statement.depth, || {
        let mut hold = AdvisoryHold::None;
        let _ = ast::visit_expressions(&statement.ast, |e| {
            if let Expr::Function(f) = e {
                if let Some(name) = f.name.0.last().and_then(|p| p.as_ident()) {
                    let name = name.value.to_ascii_lowercase();
                    if name.starts_with("pg_") && name.contains("_advisory_") {
                        hold = hold.max(if name.contains("_xact_") {
                            AdvisoryHold::Transaction
                        } else {
                            AdvisoryHold::Session
                        });
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
        hold
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(sql: &str) -> AdvisoryHold {
        advisory_hold(&crate::sql::parse_single(sql).unwrap())
    }

    #[test]
    fn calls_are_found_by_their_widest_hold() {
        assert_eq!(hold("SELECT 1"), AdvisoryHold::None);
        assert_eq!(
            hold("SELECT pg_advisory_xact_lock(1573678846307946496)"),
            AdvisoryHold::Transaction
        );
        assert_eq!(
            hold("SELECT pg_try_advisory_xact_lock(1), pg_catalog.pg_advisory_unlock(2)"),
            AdvisoryHold::Session
        );
        assert_eq!(
            hold("SELECT CASE WHEN pg_try_advisory_lock(1, 2) THEN 1 END"),
            AdvisoryHold::Session
        );
    }
}
