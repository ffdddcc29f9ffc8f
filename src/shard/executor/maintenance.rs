//! `VACUUM`, `ANALYZE` and `CHECKPOINT` on a shard.
//!
//! A shard has nothing for VACUUM to reclaim: a DELETE or UPDATE frees its
//! row's slot and repairs the ANN graph around it when it commits (what
//! pgvector's vacuum does later), and the planner keeps no statistics for
//! ANALYZE to refresh. Both check what they name as PostgreSQL does and
//! answer with its tag. CHECKPOINT writes a checkpoint.

use super::{storage_error, Outcome, Shard};
use crate::shard::storage::{Tables, Transaction};
use crate::sql::{Maintenance, VacuumTargets};
use crate::wire::{PgError, Session, TransactionStatus};

/// Checks `m` against the session's state: a block (`status`), a standby
/// (`in_recovery`), a read-only session, a role without the privilege.
pub fn check(m: &Maintenance, session: &Session, in_recovery: bool) -> Result<(), PgError> {
    let command = m.command();
    let status = session.transaction_status();
    match m {
        Maintenance::Checkpoint if !session.superuser => Err(PgError::new(
            "42501",
            "permission denied to execute CHECKPOINT command",
        )
        .with_detail(
            "Only roles with privileges of the \"pg_checkpoint\" role may execute this command.",
        )),
        Maintenance::Checkpoint => Ok(()),
        Maintenance::Vacuum(v) if v.vacuum && status != TransactionStatus::Idle => {
            Err(PgError::new(
                "25001",
                format!("{command} cannot run inside a transaction block"),
            ))
        }
        Maintenance::Vacuum(_) if in_recovery => Err(PgError::new(
            "25006",
            format!("cannot execute {command} during recovery"),
        )),
        Maintenance::Vacuum(_) => Ok(()),
    }
}

/// Checks that every table (and column) VACUUM or ANALYZE names exists as
/// `txn` sees the catalog, and answers its tag.
pub fn vacuum(tables: &Tables, txn: &Transaction, v: &VacuumTargets) -> Result<Outcome, PgError> {
    for (table, columns) in &v.tables {
        let def = txn.table_def(tables, table).map_err(storage_error)?;
        if columns.is_empty() {
            continue;
        }
        if !v.analyze {
            return Err(PgError::feature_not_supported(
                "ANALYZE option must be specified when a column list is provided",
            ));
        }
        if let Some(missing) = columns.iter().find(|c| def.column_index(c).is_none()) {
            return Err(PgError::new(
                "42703",
                format!("column \"{missing}\" of relation \"{table}\" does not exist"),
            ));
        }
    }
    Ok(Outcome::tag(if v.vacuum { "VACUUM" } else { "ANALYZE" }))
}

/// Writes a checkpoint now (it writes and fsyncs every changed table:
/// run it on the blocking pool).
pub fn checkpoint(shard: &Shard) -> Result<Outcome, PgError> {
    shard.db.checkpoint().map_err(storage_error)?;
    Ok(Outcome::tag("CHECKPOINT"))
}
