//! Two-phase commit of one transaction open on several shards.
//!
//! 1. The participant with the lowest shard index is the coordinator; the
//!    decision table is made sure to exist there.
//! 2. PREPARE TRANSACTION 'gid' on every other participant, in parallel.
//!    Any failure: ROLLBACK on the coordinator, ROLLBACK PREPARED where it
//!    succeeded, and the shard's error is the client's (nothing applied).
//! 3. On the coordinator, in its own still-open transaction: INSERT the
//!    `(gid, 'commit')` row, then COMMIT. That commit is the decision. A
//!    definite failure (the resolver decided abort first: 23505; a
//!    conflict found at COMMIT) rolls the prepared ones back; no answer
//!    (08006) leaves them to the resolver, which reads the row.
//! 4. COMMIT PREPARED on every prepared participant, in parallel. One that
//!    fails (a shard down) keeps its prepared transaction until the
//!    resolver commits it; the client is answered with success, because
//!    the decision is durable.
//! 5. When all committed, the decision row is deleted.

use futures_util::future::join_all;

use super::decision::{delete_sql, insert_sql, Decisions, Gid, Outcome, TABLE};
use super::failpoint;
use super::metrics::TxnMetrics;
use super::show::{Entry, TxnLog};
use crate::proxy::backend::run_simple;
use crate::proxy::backend::ShardChannel;
use crate::proxy::cluster::Cluster;
use crate::wire::{sqlstate, PgError};

/// The proxy's two-phase commit state, shared by its sessions.
pub struct TwoPhase {
    pub(super) decisions: Decisions,
    pub(super) metrics: TxnMetrics,
    pub(super) log: TxnLog,
}

impl TwoPhase {
    /// For a cluster of `shards` shards, counted in `metrics`.
    pub fn new(shards: usize, metrics: TxnMetrics) -> Self {
        TwoPhase {
            decisions: Decisions::new(shards),
            metrics,
            log: TxnLog::default(),
        }
    }
}

/// Counts how a two-phase commit ended and keeps it for the SHOW view.
fn ended(cluster: &Cluster, gid: &Gid, participants: &[usize], how: &'static str) {
    let state = &cluster.two_phase;
    state.metrics.outcome(how);
    let shards: Vec<&str> = participants
        .iter()
        .map(|&s| cluster.shards[s].name())
        .collect();
    state.log.record(Entry {
        gid: gid.to_string(),
        state: how,
        shards: shards.join(","),
    });
}

/// True for an error after which the statement's outcome on the shard is
/// unknown (the connection broke), as opposed to a definite refusal.
fn outcome_unknown(e: &PgError) -> bool {
    e.code.starts_with("08")
}

/// Runs `sql` on every channel in parallel; each channel's result.
async fn on_each(
    chans: &mut [(usize, Box<dyn ShardChannel>)],
    sql: &str,
) -> Vec<Result<String, PgError>> {
    join_all(
        chans
            .iter_mut()
            .map(|(_, chan)| run_simple(chan.as_mut(), sql)),
    )
    .await
}

/// See the module documentation. `chans` holds at least two participants.
pub async fn commit(
    cluster: &Cluster,
    mut chans: Vec<(usize, Box<dyn ShardChannel>)>,
) -> Result<(), PgError> {
    let state = &cluster.two_phase;
    chans.sort_by_key(|(shard, _)| *shard);
    let participants: Vec<usize> = chans.iter().map(|(s, _)| *s).collect();
    let (coordinator, mut coord) = chans.remove(0);
    state
        .decisions
        .ensure_table(&cluster.topology, coordinator)
        .await?;
    let in_flight = state.decisions.begin(coordinator);
    let gid = &in_flight.gid;
    let prepared = on_each(&mut chans, &format!("PREPARE TRANSACTION '{gid}'")).await;
    if let Some(e) = prepared.iter().find_map(|r| r.as_ref().err()) {
        let e = e.clone();
        run_simple(coord.as_mut(), "ROLLBACK").await.ok();
        let mut done: Vec<(usize, Box<dyn ShardChannel>)> = chans
            .into_iter()
            .zip(&prepared)
            .filter(|(_, r)| r.is_ok())
            .map(|(c, _)| c)
            .collect();
        on_each(&mut done, &format!("ROLLBACK PREPARED '{gid}'")).await;
        ended(cluster, gid, &participants, "rolled_back");
        return Err(e);
    }
    failpoint::point("txn::before_decision");
    if let Err(e) = decide(cluster, gid, &participants, coord.as_mut(), &mut chans).await {
        let unknown = e.code == sqlstate::CONNECTION_FAILURE;
        let how = if unknown { "unknown" } else { "rolled_back" };
        ended(cluster, gid, &participants, how);
        return Err(e);
    }
    ended(cluster, gid, &participants, "committed");
    failpoint::point("txn::after_decision");
    let committed = on_each(&mut chans, &format!("COMMIT PREPARED '{gid}'")).await;
    let mut all = true;
    for ((shard, _), r) in chans.iter().zip(&committed) {
        if let Err(e) = r {
            all = false;
            tracing::warn!(shard = %cluster.shards[*shard].name(), %gid, error = %e.message,
                "COMMIT PREPARED failed; the in-doubt resolver will commit it");
        }
    }
    if all {
        if let Err(e) = run_simple(coord.as_mut(), &delete_sql(gid)).await {
            tracing::warn!(%gid, error = %e.message, "cannot delete a decision row");
        }
    }
    Ok(())
}

/// Step 3: records the commit decision in the coordinator's transaction.
/// On a definite failure the prepared participants are rolled back and
/// the coordinator's error returned.
async fn decide(
    cluster: &Cluster,
    gid: &Gid,
    participants: &[usize],
    coord: &mut dyn ShardChannel,
    prepared: &mut [(usize, Box<dyn ShardChannel>)],
) -> Result<(), PgError> {
    let sql = format!("{}; COMMIT", insert_sql(gid, Outcome::Commit, participants));
    let e = match run_simple(coord, &sql).await {
        Ok(tag) if tag == "COMMIT" => return Ok(()),
        Ok(tag) => PgError::new(
            "40000",
            format!(
                "the coordinator shard answered {tag} to COMMIT: the transaction was rolled back"
            ),
        ),
        Err(e) => e,
    };
    let name = cluster.shards[gid.coordinator].name();
    if outcome_unknown(&e) {
        return Err(PgError::new(
            sqlstate::CONNECTION_FAILURE,
            format!(
                "connection to shard \"{name}\" lost while committing: the transaction's outcome is not known yet"
            ),
        )
        .with_detail(format!(
            "Two-phase commit {gid}: the decision is in pgvshard_decisions on shard \"{name}\"; the in-doubt resolver of any proxy finishes it on every shard. ({})",
            e.message
        )));
    }
    if e.code == "42P01" {
        cluster.two_phase.decisions.forget_table(gid.coordinator);
    }
    run_simple(coord, "ROLLBACK").await.ok();
    on_each(prepared, &format!("ROLLBACK PREPARED '{gid}'")).await;
    if e.code == "23505" && e.message.contains(TABLE) {
        return Err(PgError::new(
            "40001",
            format!(
                "could not commit: the in-doubt resolver rolled two-phase commit {gid} back first"
            ),
        )
        .with_hint("The commit took longer than the resolver waits for; retry the transaction."));
    }
    Err(e)
}
