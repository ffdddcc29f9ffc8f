//! The operations statements a session answers itself:
//! `SHOW pgvshard.stats`, `SHOW pgvshard.config`, `SELECT
//! pgvshard.reload()` and `SELECT pgvshard.stats_reset()`.
//!
//! `SHOW pgvshard.config` lists every setting in force (passwords
//! masked) as `pg_settings` does: its `context` (`reload` when a reload
//! applies it, else `restart`) and `pending_restart` (the file holds
//! another value that waits for a restart).

use std::sync::Arc;

use super::settings::{is_reloadable, is_secret, settings, MASK};
use super::stats::{reset_columns, timestamp, RESET_FUNCTION};
use super::Operations;
use crate::sql::{Statement, StatementKind};
use crate::wire::{oid, FieldDescription, PgError, Responder, Value};

/// The name `SHOW` answers with the configuration.
pub const CONFIG_SHOW: &str = "pgvshard.config";
/// The function that reloads the configuration file.
pub const RELOAD_FUNCTION: &str = "pgvshard.reload";

/// An operations statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// `SHOW pgvshard.stats`.
    Stats,
    /// `SHOW pgvshard.config`.
    Config,
    /// `SELECT pgvshard.reload()`.
    Reload,
    /// `SELECT pgvshard.stats_reset()`.
    StatsReset,
}

/// True when `statement` is exactly `SELECT <function>()`.
fn is_call(statement: &Statement, function: &str) -> bool {
    crate::stack::with_tree(statement.depth, || {
        statement
            .ast
            .to_string()
            .eq_ignore_ascii_case(&format!("SELECT {function}()"))
    })
}

/// The operations statement `statement` is, if any.
pub fn which(statement: &Statement, kind: &StatementKind) -> Option<Local> {
    match kind {
        StatementKind::Show(name) if name == super::stats::SHOW_NAME => Some(Local::Stats),
        StatementKind::Show(name) if name == CONFIG_SHOW => Some(Local::Config),
        // A cheap look at the text before printing the tree.
        StatementKind::Select(_)
            if statement.text.len() < 64
                && statement.text.to_ascii_lowercase().contains("pgvshard.") =>
        {
            if is_call(statement, RELOAD_FUNCTION) {
                Some(Local::Reload)
            } else if is_call(statement, RESET_FUNCTION) {
                Some(Local::StatsReset)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The result columns of an operations statement (for Describe).
pub fn columns(local: Local) -> Vec<FieldDescription> {
    match local {
        Local::Stats => super::stats::columns(),
        Local::Config => FieldDescription::builtins(&[
            ("name", oid::TEXT),
            ("setting", oid::TEXT),
            ("context", oid::TEXT),
            ("pending_restart", oid::BOOL),
        ]),
        Local::Reload => FieldDescription::builtins(&[("reload", oid::BOOL)]),
        Local::StatsReset => reset_columns(),
    }
}

/// Answers an operations statement.
pub async fn answer(
    ops: &Arc<Operations>,
    local: Local,
    out: &mut Responder<'_>,
) -> Result<(), PgError> {
    match local {
        Local::Stats => ops.stats.show(out).await,
        Local::Config => show_config(ops, out).await,
        Local::Reload => {
            let reloaded = super::reload_off_workers(ops)
                .await
                .map_err(|e| PgError::from(&e))?;
            for name in &reloaded.pending_restart {
                out.notice(&PgError::warning(
                    "55P02",
                    format!("setting \"{name}\" cannot be changed without restarting the proxy; the running value is kept"),
                ));
            }
            out.row_description(&columns(local));
            out.row(&[Some(Value::Bool(true))]).await?;
            out.complete("SELECT 1");
            Ok(())
        }
        Local::StatsReset => {
            let at = ops.stats.reset();
            out.row_description(&columns(local));
            out.row(&[Some(timestamp(at))]).await?;
            out.complete("SELECT 1");
            Ok(())
        }
    }
}

async fn show_config(ops: &Operations, out: &mut Responder<'_>) -> Result<(), PgError> {
    let (config, pending) = ops.reloader.running();
    let rows = settings(&config);
    out.row_description(&columns(Local::Config));
    for (name, setting) in &rows {
        let shown = match setting {
            Some(_) if is_secret(name) => Some(MASK.to_string()),
            other => other.clone(),
        };
        let context = if is_reloadable(name) {
            "reload"
        } else {
            "restart"
        };
        out.row(&[
            Some(Value::Text(name.clone())),
            shown.map(Value::Text),
            Some(Value::Text(context.to_string())),
            Some(Value::Bool(pending.contains(name))),
        ])
        .await?;
    }
    out.complete(&format!("SHOW {}", rows.len()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(sql: &str) -> Option<Local> {
        let s = crate::sql::parse_single(sql).unwrap();
        which(&s, &crate::sql::classify(&s))
    }

    #[test]
    fn recognises_its_statements() {
        assert_eq!(kind_of("SHOW pgvshard.stats"), Some(Local::Stats));
        assert_eq!(kind_of("show PGVSHARD.CONFIG"), Some(Local::Config));
        assert_eq!(kind_of("select pgvshard.reload()"), Some(Local::Reload));
        assert_eq!(
            kind_of("SELECT pgvshard.stats_reset()"),
            Some(Local::StatsReset)
        );
        assert_eq!(kind_of("SELECT pgvshard.reload(), 1"), None);
        assert_eq!(kind_of("SELECT 1"), None);
    }
}
