//! Transactions on the shards: the only code of the proxy that sends
//! BEGIN, COMMIT and PREPARE TRANSACTION for them.
//!
//! A write statement that spans shards outside a transaction block (a
//! multi-row INSERT, an UPDATE or DELETE without the shard key, DDL sent to
//! every shard) runs in a transaction on each of its shards: BEGIN before
//! the statement, then, only when every shard ran it, a commit that is
//! atomic across them ([`commit`]): one shard commits plainly; several
//! commit with two-phase commit ([`two_phase`]): PREPARE TRANSACTION on
//! all but one, the decision recorded durably in the last one's own
//! transaction ([`decision`]), COMMIT PREPARED on the others. Whatever a
//! crash or a lost shard leaves prepared, the [`resolver`] of any proxy
//! finishes as the decision says (no decision: rolled back).
//!
//! Inside a client's transaction block the same happens per shard as the
//! block first writes there ([`Block`]), and at the block's COMMIT.
//!
//! A channel that leaves with its transaction still open — the statement
//! failed, or this future was dropped because the client went away — is
//! closed, not pooled (see the pools' Drop), and closing a session rolls
//! its transaction back on both kinds of shard. So an error means nothing
//! was applied anywhere, as on one PostgreSQL server.

mod block;
mod decision;
mod failpoint;
mod metrics;
mod resolver;
mod show;
mod two_phase;

use futures_util::future::join_all;

pub use self::block::Block;
pub use self::decision::check_shards;
pub use self::metrics::TxnMetrics;
pub use self::resolver::{start as start_resolver, Resolver};
pub use self::show::{columns as show_columns, show, SHOW_NAME};
pub use self::two_phase::TwoPhase;

use super::backend::run_simple;
use super::backend::ShardChannel;
use super::cluster::Cluster;
use super::plan::Route;
use crate::sql::{DdlAction, DdlInfo, StatementKind};
use crate::wire::PgError;

/// True when `statement` of `kind`, routed as `route` outside a
/// transaction block, must run in a transaction on each of its shards.
pub fn spans_shards(kind: &StatementKind, text: &str, route: &Route<'_>) -> bool {
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

/// BEGIN on one channel.
pub async fn begin_one(chan: &mut dyn ShardChannel) -> Result<(), PgError> {
    run_simple(chan, "BEGIN").await.map(drop)
}

/// BEGIN on every channel, in parallel.
pub async fn begin(chans: &mut [Option<Box<dyn ShardChannel>>]) -> Result<(), PgError> {
    let begins = chans.iter_mut().flatten().map(|c| begin_one(c.as_mut()));
    join_all(begins)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok(())
}

/// Commits the open transactions of `chans` (by shard) atomically: a plain
/// COMMIT for one shard, two-phase commit for several. An error means
/// nothing was committed anywhere, except 08006 naming the shard whose
/// commit went unanswered: then the in-doubt resolver finishes the
/// transaction as its decision record says.
pub async fn commit(
    cluster: &Cluster,
    mut chans: Vec<(usize, Box<dyn ShardChannel>)>,
) -> Result<(), PgError> {
    let started = std::time::Instant::now();
    let (kind, result) = match chans.as_mut_slice() {
        [] => return Ok(()),
        [(_, one)] => ("single_shard", commit_one(one.as_mut()).await),
        _ => ("two_phase", two_phase::commit(cluster, chans).await),
    };
    cluster.two_phase.metrics.commit(kind, started.elapsed());
    result
}

/// A plain COMMIT: an aborted transaction answers `ROLLBACK`, which is an
/// error here (the client's statement did not take effect).
async fn commit_one(chan: &mut dyn ShardChannel) -> Result<(), PgError> {
    match run_simple(chan, "COMMIT").await?.as_str() {
        "COMMIT" => Ok(()),
        tag => Err(PgError::new(
            "40000",
            format!("the shard answered {tag} to COMMIT: the transaction was rolled back"),
        )),
    }
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
