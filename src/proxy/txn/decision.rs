//! Where a two-phase commit's decision lives: a row of the table
//! `pgvshard_decisions` on the transaction's coordinator shard, the
//! participant that is not prepared. The proxy writes `(gid, 'commit')` in
//! that participant's own transaction and commits it with a plain COMMIT:
//! that commit *is* the decision, atomically with the coordinator's share
//! of the writes. No row means no commit (presumed abort): the resolver
//! rolls a prepared transaction back only after inserting `(gid,
//! 'abort')` itself, and the primary key lets one of the two inserts win,
//! so the proxy and a resolver can never decide differently.
//!
//! The row lives on a shard, not in the proxy or Redis, because it must
//! outlive any proxy and be readable by every proxy of the cluster; and on
//! the coordinator, because only there can it commit in the same local
//! transaction as writes (no extra participant, no extra fsync).
//!
//! The table is created on a shard the first time that shard coordinates
//! (CREATE TABLE IF NOT EXISTS through the control plane, so a proxy that
//! never writes across shards leaves the shards' catalogs as they were).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;

use crate::proxy::topology::Topology;
use crate::wire::PgError;

/// The decision table.
pub const TABLE: &str = "pgvshard_decisions";

/// Every gid the proxy prepares starts with this.
pub const GID_PREFIX: &str = "pgvshard_";

const CREATE: &str = "CREATE TABLE IF NOT EXISTS pgvshard_decisions (\
     gid text PRIMARY KEY, outcome text NOT NULL, participants text NOT NULL, \
     decided_ms bigint NOT NULL)";

/// A two-phase commit's global transaction id:
/// `pgvshard_<coordinator shard>_<proxy instance>_<sequence>`. The
/// coordinator's index (in slot-map order, the same in every proxy of the
/// cluster) tells a resolver where the decision is; the instance tells a
/// proxy which transactions are its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Gid {
    /// The shard holding the decision row.
    pub coordinator: usize,
    /// The proxy process that prepared it.
    pub instance: String,
    /// Its number in that process.
    pub sequence: u64,
}

impl Gid {
    /// Reads a gid a proxy wrote; `None` for any other.
    pub fn parse(text: &str) -> Option<Gid> {
        let rest = text.strip_prefix(GID_PREFIX)?;
        let mut parts = rest.split('_');
        let gid = Gid {
            coordinator: parts.next()?.parse().ok()?,
            instance: parts.next()?.to_string(),
            sequence: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(gid)
    }
}

impl std::fmt::Display for Gid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{GID_PREFIX}{}_{}_{}",
            self.coordinator, self.instance, self.sequence
        )
    }
}

/// The outcome a decision row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Commit every prepared participant.
    Commit,
    /// Roll them back.
    Abort,
}

impl Outcome {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Commit => "commit",
            Outcome::Abort => "abort",
        }
    }

    /// From the stored text.
    pub fn parse(text: &str) -> Option<Outcome> {
        match text {
            "commit" => Some(Outcome::Commit),
            "abort" => Some(Outcome::Abort),
            _ => None,
        }
    }
}

/// Milliseconds since the Unix epoch, by this proxy's clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The INSERT recording `outcome` for `gid` over `participants`.
pub fn insert_sql(gid: &Gid, outcome: Outcome, participants: &[usize]) -> String {
    let list: Vec<String> = participants.iter().map(usize::to_string).collect();
    format!(
        "INSERT INTO {TABLE} (gid, outcome, participants, decided_ms) VALUES ('{gid}', '{}', '{}', {})",
        outcome.as_str(),
        list.join(","),
        now_ms()
    )
}

/// The SELECT of `gid`'s outcome.
pub fn outcome_sql(gid: &Gid) -> String {
    format!("SELECT outcome FROM {TABLE} WHERE gid = '{gid}'")
}

/// The DELETE of `gid`'s row, once no participant holds it prepared.
pub fn delete_sql(gid: &Gid) -> String {
    format!("DELETE FROM {TABLE} WHERE gid = '{gid}'")
}

/// Gids and their per-proxy bookkeeping: this process's instance, the
/// next sequence number, and on which shards the table is known to exist.
pub struct Decisions {
    instance: String,
    next: AtomicU64,
    created: Vec<AtomicBool>,
    /// Sequences of this process's gids between their first PREPARE and
    /// the end of their commit: the resolver leaves them alone.
    in_flight: Mutex<HashSet<u64>>,
}

/// A gid in flight; dropping it (the commit ended, or its session went
/// away) hands the gid over to the resolver.
pub struct InFlight<'a> {
    decisions: &'a Decisions,
    /// The gid.
    pub gid: Gid,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        lock(&self.decisions.in_flight).remove(&self.gid.sequence);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Decisions {
    /// For a cluster of `shards` shards, with a fresh random instance.
    pub fn new(shards: usize) -> Self {
        Decisions {
            instance: format!("{:08x}", crate::proxy::cache::rand_u64() as u32),
            next: AtomicU64::new(1),
            created: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            in_flight: Mutex::default(),
        }
    }

    /// True when this process is committing `gid` right now.
    pub fn in_flight(&self, gid: &Gid) -> bool {
        gid.instance == self.instance && lock(&self.in_flight).contains(&gid.sequence)
    }

    /// A new gid whose decision lives on `coordinator`, in flight until
    /// the returned guard drops.
    pub fn begin(&self, coordinator: usize) -> InFlight<'_> {
        let gid = Gid {
            coordinator,
            instance: self.instance.clone(),
            sequence: self.next.fetch_add(1, Ordering::Relaxed),
        };
        lock(&self.in_flight).insert(gid.sequence);
        InFlight {
            decisions: self,
            gid,
        }
    }

    /// Creates the decision table on `shard` unless this proxy already
    /// did (or found it).
    pub async fn ensure_table(&self, topology: &Topology, shard: usize) -> Result<(), PgError> {
        let Some(done) = self.created.get(shard) else {
            return Err(PgError::internal(format!("no shard {shard}")));
        };
        if done.load(Ordering::Acquire) {
            return Ok(());
        }
        let name = &topology.shards()[shard].name;
        let control = topology
            .primary_control(shard)
            .ok_or_else(|| PgError::internal(format!("shard \"{name}\" has no control plane")))?;
        match control.simple(CREATE).await {
            Ok(_) => {}
            // Another proxy created it at the same moment.
            Err(e) if e.code == "42P07" || e.code == "23505" => {}
            Err(mut e) => {
                e.message = format!(
                    "cannot create the two-phase commit decision table on shard \"{name}\": {}",
                    e.message
                );
                return Err(e);
            }
        }
        done.store(true, Ordering::Release);
        Ok(())
    }

    /// Forgets that the table exists on `shard` (it was dropped).
    pub fn forget_table(&self, shard: usize) {
        if let Some(done) = self.created.get(shard) {
            done.store(false, Ordering::Release);
        }
    }
}

/// At proxy start, with several shards: every shard that answers must
/// allow prepared transactions (`max_prepared_transactions` > 0; real
/// PostgreSQL's default is 0), or writes that span shards could never
/// commit. A shard that does not answer now is checked by its first
/// PREPARE TRANSACTION, whose error names the setting.
pub async fn check_shards(topology: &Topology) -> Result<(), String> {
    if topology.shards().len() < 2 {
        return Ok(());
    }
    let asks = (0..topology.shards().len()).map(|i| async move {
        let control = topology.primary_control(i)?;
        Some((i, control.simple("SHOW max_prepared_transactions").await))
    });
    for (i, answer) in join_all(asks).await.into_iter().flatten() {
        let name = &topology.shards()[i].name;
        match answer {
            Ok(rows) => {
                let value = rows.first().and_then(|r| r.first().cloned().flatten());
                if value.as_deref() == Some("0") {
                    return Err(format!(
                        "shard \"{name}\" has max_prepared_transactions = 0: writes that span shards commit with two-phase commit (PREPARE TRANSACTION); set max_prepared_transactions above 0 (for example to max_connections) on every shard and restart it"
                    ));
                }
            }
            Err(e) => {
                tracing::warn!(shard = %name, error = %e.message, "cannot check max_prepared_transactions at start");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gids_round_trip() {
        let gid = Gid {
            coordinator: 3,
            instance: "0a1b2c3d".into(),
            sequence: 42,
        };
        assert_eq!(gid.to_string(), "pgvshard_3_0a1b2c3d_42");
        assert_eq!(Gid::parse(&gid.to_string()), Some(gid));
        assert_eq!(Gid::parse("pgvshard_x_a_1"), None);
        assert_eq!(Gid::parse("pgvshard_1_a_1_2"), None);
        assert_eq!(Gid::parse("other"), None);
    }

    #[test]
    fn a_gid_is_in_flight_until_its_guard_drops() {
        let d = Decisions::new(2);
        let guard = d.begin(1);
        let gid = guard.gid.clone();
        assert!(d.in_flight(&gid));
        let other = Gid {
            instance: "ffffffff".into(),
            ..gid.clone()
        };
        assert!(!d.in_flight(&other));
        drop(guard);
        assert!(!d.in_flight(&gid));
    }
}
