//! Transactions on the shards for one statement that writes on several of
//! them outside a transaction block (a multi-row INSERT, an UPDATE or
//! DELETE without the shard key, DDL sent to every shard): BEGIN on each
//! shard before the statement, COMMIT on each only when every shard ran
//! it, so an error on any shard (a duplicate key, a bad value, a shard
//! down) leaves nothing applied anywhere.
//!
//! A channel that leaves with its transaction still open — the statement
//! failed, or this future was dropped because the client went away — is
//! closed, not pooled (see the pools' Drop), and closing a session rolls
//! its transaction back on both kinds of shard.
//!
//! Not yet two-phase: if a shard fails between the first and the last
//! COMMIT, the shards committed so far keep the statement's rows and the
//! client gets an error naming the shard. Issue 11 (PREPARE TRANSACTION,
//! a decision record and an in-doubt resolver) closes that window.

use futures_util::future::join_all;

use super::backend::ShardChannel;
use super::exec::run_simple;
use super::plan::Route;
use super::route::Cluster;
use crate::sql::{DdlAction, DdlInfo, StatementKind};
use crate::wire::PgError;

/// True when `statement` of `kind`, routed as `route` outside a
/// transaction block, must run in a transaction on each of its shards.
pub fn spans_shards(kind: &StatementKind, text: &str, route: &Route) -> bool {
    let transactional = match kind {
        StatementKind::Insert(_)
        | StatementKind::Update(_)
        | StatementKind::Delete(_)
        | StatementKind::ModifyingWith => true,
        // CREATE/DROP INDEX CONCURRENTLY cannot run in a transaction block;
        // a pgvshard shard builds an index of a transaction block at its
        // COMMIT, out of reach of the statement's cancel and progress view.
        StatementKind::Ddl(DdlInfo { action, .. }) => {
            *action != DdlAction::CreateIndex && !contains_word(text, "concurrently")
        }
        _ => false,
    };
    transactional && route.writes && route.shards().len() > 1
}

fn contains_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .any(|w| w.eq_ignore_ascii_case(word))
}

/// BEGIN on every channel, in parallel.
pub async fn begin(chans: &mut [Option<Box<dyn ShardChannel>>]) -> Result<(), PgError> {
    let begins = chans
        .iter_mut()
        .flatten()
        .map(|c| run_simple(c.as_mut(), "BEGIN"));
    join_all(begins)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok(())
}

/// COMMIT on every shard the statement ran on, in parallel. An error names
/// the shards that failed to commit and those that did.
pub async fn commit(
    cluster: &Cluster,
    chans: Vec<(usize, Box<dyn ShardChannel>)>,
) -> Result<(), PgError> {
    let commits = chans.into_iter().map(|(shard, mut chan)| async move {
        let r = run_simple(chan.as_mut(), "COMMIT").await;
        (shard, r)
    });
    let results = join_all(commits).await;
    let name = |s: usize| format!("\"{}\"", cluster.shards[s].name());
    let failed: Vec<(usize, PgError)> = results
        .iter()
        .filter_map(|(s, r)| r.as_ref().err().map(|e| (*s, e.clone())))
        .collect();
    let Some((_, first)) = failed.first() else {
        return Ok(());
    };
    let committed: Vec<String> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(s, _)| name(*s))
        .collect();
    let mut e = first.clone();
    e.message = format!(
        "commit failed on shard {}: {}",
        failed
            .iter()
            .map(|(s, _)| name(*s))
            .collect::<Vec<_>>()
            .join(", "),
        first.message
    );
    if !committed.is_empty() {
        e.detail = Some(format!(
            "The statement was committed on shard {} (no two-phase commit yet).",
            committed.join(", ")
        ));
    }
    Err(e)
}

#[cfg(test)]
mod tests {
    use super::contains_word;

    #[test]
    fn concurrently_is_found_as_a_word() {
        assert!(contains_word(
            "CREATE INDEX CONCURRENTLY i ON t (a)",
            "concurrently"
        ));
        assert!(!contains_word(
            "CREATE INDEX concurrently_named ON t (a)",
            "concurrently"
        ));
    }
}
