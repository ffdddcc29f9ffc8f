//! The in-doubt resolver: every proxy of a cluster with several shards
//! runs one, at start and then every [`EVERY`]. It finishes the prepared
//! transactions a crashed proxy, a lost connection or a shard that was
//! down left behind, and deletes decision rows no one needs any more.
//!
//! One pass, all through the control plane of each shard's primary:
//! 1. Read every shard's decision rows (before step 2: a row read then
//!    was committed after all its participants prepared, so step 2 sees
//!    every participant that still holds it).
//! 2. Read every shard's prepared transactions whose gid a proxy made.
//! 3. For each one not being committed by this very process: its
//!    coordinator's row decides — `commit` → COMMIT PREPARED, `abort` →
//!    ROLLBACK PREPARED. Without a row, once this resolver has seen it
//!    prepared for [`ABORT_AFTER`], it inserts `(gid, 'abort')` on the
//!    coordinator; if the proxy's commit row got there first the insert
//!    fails with 23505 and the row read again decides. A coordinator that
//!    does not answer decides nothing; a shard that does not answer is
//!    finished at a later pass, once it is back.
//! 4. A `commit` row whose participants all answered and none holds the
//!    gid any more is deleted; an `abort` row likewise, but only after
//!    [`ABORT_KEPT`], so that a proxy stalled for that long before its
//!    commit row still finds the abort there.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::task::JoinHandle;

use super::decision::{delete_sql, insert_sql, now_ms, outcome_sql, Gid, Outcome, TABLE};
use super::show::Entry;
use crate::proxy::cluster::Cluster;
use crate::wire::PgError;

/// How often a pass runs.
pub const EVERY: Duration = Duration::from_secs(1);

/// How long a prepared transaction without a decision may stay before a
/// resolver decides to abort it (counted from when this resolver first
/// saw it, so clocks need not agree).
pub const ABORT_AFTER: Duration = Duration::from_secs(5);

/// How long an abort row is kept (milliseconds).
pub const ABORT_KEPT: i64 = 3_600_000;

/// The running resolver; it stops when this is dropped.
pub struct Resolver(JoinHandle<()>);

impl Drop for Resolver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the resolver of `cluster` (`None` with a single shard, where
/// nothing is ever prepared).
pub fn start(cluster: Arc<Cluster>) -> Option<Resolver> {
    if cluster.shards.len() < 2 {
        return None;
    }
    Some(Resolver(tokio::spawn(async move {
        let mut seen = HashMap::new();
        loop {
            pass(&cluster, &mut seen).await;
            tokio::time::sleep(EVERY).await;
        }
    })))
}

/// A decision row.
struct Row {
    gid: Gid,
    outcome: Outcome,
    participants: Vec<usize>,
    decided_ms: i64,
}

async fn control_rows(
    cluster: &Cluster,
    shard: usize,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, PgError> {
    let control = cluster
        .topology
        .primary_control(shard)
        .ok_or_else(|| PgError::internal("no control plane"))?;
    control.simple(sql).await
}

/// Step 1 for one shard; `None` when it did not answer.
async fn decision_rows(cluster: &Cluster, shard: usize) -> Option<Vec<Row>> {
    let sql = format!("SELECT gid, outcome, participants, decided_ms FROM {TABLE}");
    let rows = match control_rows(cluster, shard, &sql).await {
        Ok(rows) => rows,
        Err(e) if e.code == "42P01" => return Some(Vec::new()),
        Err(_) => return None,
    };
    let row = |r: Vec<Option<String>>| -> Option<Row> {
        let text = |i: usize| r.get(i).cloned().flatten();
        Some(Row {
            gid: Gid::parse(&text(0)?)?,
            outcome: Outcome::parse(&text(1)?)?,
            participants: text(2)?.split(',').filter_map(|p| p.parse().ok()).collect(),
            decided_ms: text(3)?.parse().ok()?,
        })
    };
    Some(rows.into_iter().filter_map(row).collect())
}

/// Step 2 for one shard; `None` when it did not answer.
async fn prepared_gids(cluster: &Cluster, shard: usize) -> Option<Vec<Gid>> {
    let sql = "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()";
    let rows = control_rows(cluster, shard, sql).await.ok()?;
    Some(
        rows.into_iter()
            .filter_map(|r| Gid::parse(r.first()?.as_deref()?))
            .collect(),
    )
}

/// The coordinator's decision for `gid`, if any.
async fn lookup(cluster: &Cluster, gid: &Gid) -> Result<Option<Outcome>, PgError> {
    match control_rows(cluster, gid.coordinator, &outcome_sql(gid)).await {
        Ok(rows) => Ok(rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|o| Outcome::parse(&o))),
        Err(e) if e.code == "42P01" => Ok(None),
        Err(e) => Err(e),
    }
}

/// Records `abort` for `gid` (found prepared on `shard`) unless a commit
/// got there first; the outcome that holds.
async fn decide_abort(cluster: &Cluster, gid: &Gid, shard: usize) -> Result<Outcome, PgError> {
    let decisions = &cluster.two_phase.decisions;
    decisions
        .ensure_table(&cluster.topology, gid.coordinator)
        .await?;
    let sql = insert_sql(gid, Outcome::Abort, &[shard]);
    match control_rows(cluster, gid.coordinator, &sql).await {
        Ok(_) => Ok(Outcome::Abort),
        Err(e) if e.code == "23505" => lookup(cluster, gid)
            .await?
            .ok_or_else(|| PgError::internal("the decision row vanished")),
        Err(e) => Err(e),
    }
}

/// Step 3 for one prepared transaction.
async fn resolve(cluster: &Cluster, shard: usize, gid: &Gid, since: Instant) {
    let outcome = match lookup(cluster, gid).await {
        Ok(Some(o)) => o,
        Ok(None) if since.elapsed() < ABORT_AFTER => return,
        Ok(None) => match decide_abort(cluster, gid, shard).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(%gid, error = %e.message, "cannot record an abort decision");
                return;
            }
        },
        Err(_) => return,
    };
    let word = match outcome {
        Outcome::Commit => "COMMIT PREPARED",
        Outcome::Abort => "ROLLBACK PREPARED",
    };
    let name = cluster.shards[shard].name();
    match control_rows(cluster, shard, &format!("{word} '{gid}'")).await {
        Ok(_) => {
            tracing::info!(shard = %name, %gid, "in-doubt transaction resolved: {word}");
            cluster.two_phase.metrics.outcome(match outcome {
                Outcome::Commit => "resolved_commit",
                Outcome::Abort => "resolved_abort",
            });
        }
        // Finished meanwhile by its proxy or another resolver.
        Err(e) if e.code == "42704" => {}
        Err(e) => {
            tracing::warn!(shard = %name, %gid, error = %e.message, "cannot finish an in-doubt transaction")
        }
    }
}

/// One pass over every shard (see the module documentation).
async fn pass(cluster: &Cluster, seen: &mut HashMap<String, Instant>) {
    let shards = 0..cluster.shards.len();
    let rows = join_all(shards.clone().map(|s| decision_rows(cluster, s))).await;
    let prepared = join_all(shards.map(|s| prepared_gids(cluster, s))).await;
    let now = Instant::now();
    let mut still = HashSet::new();
    let mut work = Vec::new();
    let mut in_doubt = Vec::new();
    for (shard, gids) in prepared.iter().enumerate() {
        for gid in gids.iter().flatten() {
            let key = gid.to_string();
            let since = *seen.entry(key.clone()).or_insert(now);
            still.insert(key);
            if !cluster.two_phase.decisions.in_flight(gid) {
                work.push(resolve(cluster, shard, gid, since));
                in_doubt.push(Entry {
                    gid: gid.to_string(),
                    state: "in_doubt",
                    shards: cluster.shards[shard].name().to_string(),
                });
            }
        }
    }
    seen.retain(|gid, _| still.contains(gid));
    cluster.two_phase.metrics.set_in_doubt(work.len());
    cluster.two_phase.log.set_in_doubt(in_doubt);
    join_all(work).await;
    let held = |gid: &Gid, participants: &[usize]| {
        participants.iter().any(|&p| match prepared.get(p) {
            Some(Some(gids)) => gids.contains(gid),
            _ => true,
        })
    };
    for (coordinator, rows) in rows.iter().enumerate() {
        for row in rows.iter().flatten() {
            let done = match row.outcome {
                Outcome::Commit => !held(&row.gid, &row.participants),
                Outcome::Abort => {
                    now_ms() - row.decided_ms > ABORT_KEPT && !held(&row.gid, &row.participants)
                }
            };
            if done {
                control_rows(cluster, coordinator, &delete_sql(&row.gid))
                    .await
                    .ok();
            }
        }
    }
}
