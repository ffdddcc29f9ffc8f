//! Shard groups — a primary and its standbys — and where reads may go.
//!
//! Every node of a shard that has standbys is polled on the control plane
//! ([`control`]: tokio-postgres through a small deadpool-postgres pool per
//! node, apart from the pools client statements use) every
//! `replication.health_check_interval_ms`: its role (`pg_is_in_recovery()`),
//! the primary's WAL insert position and each standby's receive and replay
//! positions. From those, [`lag`] gives each standby's lag in bytes and in
//! time, and [`node::Health`] whether it may serve reads (within both
//! `max_replica_lag_*` bounds, answering, in the role the configuration
//! gives it).
//!
//! Invariants:
//! - Writes, and reads that must see the primary (locking, functions that
//!   may write, a transaction after its first write, a session or comment
//!   asking for it), never reach a standby: they use the primary's pool
//!   (`Cluster::shards`), which this module does not hand out for them.
//! - A read after the session's own write on a shard goes only to a node
//!   whose replay position has reached the primary's insert position read
//!   just after that write committed ([`SessionReads`]), waiting at most
//!   `read_your_writes_wait_ms`, else to the primary.
//! - The result cache never keeps an answer older than a write this proxy
//!   acknowledged: a standby's answer may fill it only if the standby had
//!   replayed every such write when chosen ([`ReadChannel::cacheable`]);
//!   with Redis (several proxies, whose writes this one cannot see) a
//!   standby's answer never fills it.
//! - Each shard has one primary per term (the configured one in term 1).
//!   Writes go only to it ([`writer::ShardWriter`]). A primary whose polls
//!   fail for `failover_after_ms` is replaced by the standby
//!   [`failover::successor`] picks, promoted with `pg_promote()`, in the
//!   next term; the other standbys are pointed at it. Writes meanwhile
//!   wait up to `failover_wait_ms` for the new term.
//! - One decision for the cluster: with Redis, the proxy holding the
//!   shard's lease decides and records the term ([`record`]); every proxy
//!   follows the highest recorded term. A node polled as a primary on a
//!   later timeline than the current primary's (a promotion done
//!   elsewhere) is followed too. Without Redis a proxy decides alone.
//! - Fencing: a node polled as a primary that is not the primary of the
//!   current term (an old primary come back) gets nothing, reads
//!   included, and shows as `fenced`.
//!
//! Shards without standbys are not polled and cost nothing here.

pub mod control;
pub mod failover;
pub mod lag;
pub mod membership;
pub mod metrics;
pub mod node;
pub mod record;
pub mod select;
mod session;
mod show;
pub mod writer;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::join_all;
use tokio::task::JoinHandle;

use self::control::{ControlPool, Probe};
use self::failover::Contender;
use self::lag::WalHistory;
pub use self::metrics::ReplicaMetrics;
use self::node::{Health, Node, Role};
use self::record::{Term, TermRecord};
use self::select::{least_loaded, Candidate};
pub use self::session::{
    decide, Decision, Policy, PrimaryRead, SessionReads, TARGET_SESSION_ATTRS,
};
pub use self::show::{columns as show_columns, show, SHOW_NAME};
use super::backend::RemoteBackend;
use super::backend::{Dialer, ShardChannel, SharedBackend};
use super::config::{NodeConfig, ReplicationConfig, ShardKind};
use crate::wire::{sqlstate, PgError};

/// Which node is a shard's primary, since which term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leader {
    /// The term: 1 for the configured primary, one more per failover.
    pub term: u64,
    /// Its index in the shard's nodes.
    pub node: usize,
    /// Its timeline, once polled.
    pub timeline: Option<u32>,
}

/// One shard: its nodes, the primary first.
pub struct ShardGroup {
    /// The shard's name.
    pub name: String,
    /// Node 0 is the configured primary; then the standbys, in the order
    /// they were configured or added by reloads ([`membership`]). Only
    /// ever appended to, so an index stays valid: a node a reload removes
    /// is retired in place.
    nodes: RwLock<Arc<Vec<Arc<Node>>>>,
    leader: Mutex<Leader>,
    /// The current term, for writes waiting for a failover.
    terms: tokio::sync::watch::Sender<u64>,
    /// Since when the primary's polls have failed.
    down_since: Mutex<Option<Instant>>,
    /// The standbys the primary last listed as synchronous (while
    /// `synchronous_standby_names` was set).
    synchronous: Mutex<Vec<String>>,
    history: Mutex<WalHistory>,
    /// The highest primary insert position read after a write this proxy
    /// acknowledged.
    acked: AtomicU64,
    /// When a write's position last could not be read: until a position
    /// read that started later succeeds, no standby is known to have
    /// every acknowledged write.
    acked_unknown: Mutex<Option<Instant>>,
}

impl ShardGroup {
    /// Every node, retired ones included (see [`Node::retired`]).
    pub fn nodes(&self) -> Arc<Vec<Arc<Node>>> {
        Arc::clone(&self.nodes.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether the shard has standbys (and so is polled).
    pub fn has_standbys(&self) -> bool {
        self.nodes().iter().filter(|n| !n.retired()).count() > 1
    }

    /// The primary of the current term.
    pub fn leader(&self) -> Leader {
        *self.leader.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn primary(&self) -> Arc<Node> {
        Arc::clone(&self.nodes()[self.leader().node])
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The control pool of a shard's primary, held while in use (a reload
/// may retire the node meanwhile; its pool then fails the call).
pub struct PrimaryControl(Arc<Node>);

impl std::ops::Deref for PrimaryControl {
    type Target = ControlPool;

    fn deref(&self) -> &ControlPool {
        &self.0.control
    }
}

/// A read's channel and whether its answer may fill the result cache.
pub struct ReadChannel {
    /// The channel.
    pub chan: Box<dyn ShardChannel>,
    /// False when it comes from a standby that may miss a write this proxy
    /// acknowledged.
    pub cacheable: bool,
}

/// Every shard group, the read policy, and the poller's shared state.
pub struct Topology {
    shards: Vec<ShardGroup>,
    /// Replaced by a configuration reload ([`Topology::reconfigure`]).
    config: RwLock<ReplicationConfig>,
    metrics: ReplicaMetrics,
    turn: AtomicUsize,
    shared_cache: bool,
    record: Option<TermRecord>,
}

/// The nodes of one shard as [`Topology::new`] takes them: the node's
/// configuration, its data-path pool and how to dial it.
pub struct NodeParts {
    /// Configuration.
    pub config: NodeConfig,
    /// Its data-path pool (for the primary: the one `Cluster::shards` has).
    pub data: SharedBackend,
    /// The same pool unmetered, for resizing and closing it.
    pub pool: Arc<RemoteBackend>,
    /// How connections reach it.
    pub dialer: Dialer,
}

/// The poller; it stops when this is dropped.
pub struct Poller(JoinHandle<()>);

impl Drop for Poller {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Topology {
    /// Groups for `shards` (each: its nodes, the primary first).
    /// `shared_cache`: the result cache is shared through Redis;
    /// `record`: where proxies sharing Redis agree on terms.
    pub fn new(
        config: &ReplicationConfig,
        shards: Vec<(String, Vec<NodeParts>)>,
        shared_cache: bool,
        record: Option<TermRecord>,
        metrics: ReplicaMetrics,
    ) -> Result<Arc<Self>, String> {
        let mut groups = Vec::with_capacity(shards.len());
        for (name, parts) in shards {
            let nodes = parts
                .into_iter()
                .map(|p| Node::from_parts(p, config.timeout()).map(Arc::new))
                .collect::<Result<Vec<_>, _>>()?;
            groups.push(ShardGroup {
                name,
                nodes: RwLock::new(Arc::new(nodes)),
                history: Mutex::new(WalHistory::default()),
                acked: AtomicU64::new(0),
                acked_unknown: Mutex::new(None),
                leader: Mutex::new(Leader {
                    term: 1,
                    node: 0,
                    timeline: None,
                }),
                terms: tokio::sync::watch::Sender::new(1),
                down_since: Mutex::new(None),
                synchronous: Mutex::new(Vec::new()),
            });
        }
        Ok(Arc::new(Topology {
            shards: groups,
            config: RwLock::new(config.clone()),
            metrics,
            turn: AtomicUsize::new(0),
            shared_cache,
            record,
        }))
    }

    /// The control plane of `shard`'s primary of the current term.
    pub fn primary_control(&self, shard: usize) -> Option<PrimaryControl> {
        Some(PrimaryControl(self.shards.get(shard)?.primary()))
    }

    /// The shard groups, in slot-map order.
    pub fn shards(&self) -> &[ShardGroup] {
        &self.shards
    }

    /// The replication settings in force.
    pub fn config(&self) -> ReplicationConfig {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies reloaded settings: the read policy, lag bounds, waits and
    /// failover timings from `config` (the poll interval and timeout are
    /// fixed at start), and each node's read weight from `weight_of`
    /// (by node name; `None` keeps the weight).
    pub fn reconfigure(&self, config: &ReplicationConfig, weight_of: impl Fn(&str) -> Option<u32>) {
        let mut current = self.config.write().unwrap_or_else(|e| e.into_inner());
        *current = ReplicationConfig {
            health_check_interval_ms: current.health_check_interval_ms,
            health_check_timeout_ms: current.health_check_timeout_ms,
            ..config.clone()
        };
        for node in self.shards.iter().flat_map(|g| g.nodes().to_vec()) {
            if node.retired() {
                continue;
            }
            if let Some(w) = weight_of(&node.name) {
                node.set_weight(w);
            }
        }
    }

    /// Counts a read sent to the primary for `reason`.
    pub fn primary_read(&self, reason: &'static str) {
        self.metrics.read(metrics::PRIMARY, reason);
    }

    /// Polls once, then every interval, until the returned [`Poller`]
    /// is dropped. `None` when every shard is embedded (no standbys, and
    /// none can be added); a remote shard without standbys costs a timer
    /// tick until a reload gives it one.
    pub fn start_polling(self: &Arc<Self>) -> Option<Poller> {
        let remote = |g: &ShardGroup| g.nodes()[0].conn.kind == ShardKind::Postgres;
        if !self.shards.iter().any(remote) {
            return None;
        }
        let me = Arc::clone(self);
        Some(Poller(tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.config().interval());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                me.poll_once().await;
            }
        })))
    }

    /// Probes every node of every shard with standbys, in parallel.
    pub async fn poll_once(&self) {
        let groups = self.shards.iter().filter(|g| g.has_standbys());
        join_all(groups.map(|g| self.poll_group(g))).await;
    }

    async fn poll_group(&self, group: &ShardGroup) {
        if let Some(record) = &self.record {
            if let Some(term) = record.read(&group.name).await {
                self.follow(group, &term);
            }
        }
        let nodes = group.nodes();
        let probes = join_all(nodes.iter().map(|n| async move {
            if n.retired() {
                return Err("removed from the configuration".to_string());
            }
            n.control.probe().await
        }))
        .await;
        let now = Instant::now();
        self.follow_promotion(group, &probes).await;
        let leader = group.leader();
        // Samples are kept long enough to measure lags past the bound.
        let keep = Duration::from_millis(self.config().max_replica_lag_ms.max(1_000) * 4);
        let primary = match &probes[leader.node] {
            Ok(p) if !p.in_recovery => Some(p),
            _ => None,
        };
        if let Some(p) = primary {
            lock(&group.leader).timeline = p.timeline;
            let mut sync = lock(&group.synchronous);
            if !p.sync_on {
                sync.clear();
            } else if !p.sync_standbys.is_empty() {
                sync.clone_from(&p.sync_standbys);
            }
        }
        let primary_lsn = primary.and_then(|p| p.insert_lsn);
        {
            let mut history = lock(&group.history);
            if let Some(lsn) = primary_lsn {
                history.record(now, lsn, keep);
            }
            for (i, (node, probe)) in nodes.iter().zip(&probes).enumerate() {
                node.update(|s| match probe {
                    Err(e) => {
                        s.health = Health::Down;
                        s.problem = Some(e.clone());
                    }
                    Ok(p) => {
                        s.role = if p.in_recovery {
                            Role::Standby
                        } else {
                            Role::Primary
                        };
                        s.probe = Some(p.clone());
                        s.seen = Some(SystemTime::now());
                        s.problem = None;
                        s.replay_lsn = match (p.in_recovery, p.replay_lsn, s.replay_lsn) {
                            (false, _, _) => None,
                            (true, Some(new), Some(old)) => Some(new.max(old)),
                            (true, new, old) => new.or(old),
                        };
                        s.lag = None;
                        let is_leader = i == leader.node;
                        s.health = match (s.role, is_leader) {
                            (Role::Primary, true) => Health::Up,
                            (Role::Primary, false) => {
                                s.problem = Some(format!(
                                    "a primary that is not the shard's primary of term {} (timeline {}): fenced",
                                    leader.term,
                                    p.timeline.map_or("?".to_string(), |t| t.to_string())
                                ));
                                Health::Fenced
                            }
                            (_, true) => {
                                s.problem = Some(format!(
                                    "the shard's primary of term {} is in recovery",
                                    leader.term
                                ));
                                Health::Fenced
                            }
                            (_, false) => {
                                let lag = history.lag(s.replay_lsn.unwrap_or(0), now);
                                s.lag = Some(lag);
                                self.standby_health(lag, primary_lsn.is_some())
                            }
                        };
                    }
                });
            }
        }
        self.rejoin_old_primaries(group, &probes).await;
        let lost = {
            let mut since = lock(&group.down_since);
            if probes[leader.node].is_ok() {
                *since = None;
                false
            } else {
                let first = *since.get_or_insert(now);
                self.config()
                    .failover_after()
                    .is_some_and(|after| now.saturating_duration_since(first) >= after)
            }
        };
        if lost {
            self.fail_over(group, &probes, leader).await;
            // Another attempt, if this one made none, after another wait.
            *lock(&group.down_since) = None;
        }
    }

    /// Makes each old primary polled back — a primary on an older
    /// timeline than the current primary's — a standby of the current
    /// primary: a `pgvshard shard` rejoins by itself
    /// (`pgvshard_rejoin_as_standby()`); a real PostgreSQL server stays
    /// fenced and is reported, for an operator (pg_rewind or a new base
    /// backup, then standby.signal).
    async fn rejoin_old_primaries(&self, group: &ShardGroup, probes: &[Result<Probe, String>]) {
        let leader = group.leader();
        let current = match &probes[leader.node] {
            Ok(p) if !p.in_recovery => p.timeline,
            _ => None,
        };
        let Some(current) = current else { return };
        let nodes = group.nodes();
        for (i, (node, probe)) in nodes.iter().zip(probes).enumerate() {
            let old =
                matches!(probe, Ok(p) if !p.in_recovery && p.timeline.is_some_and(|t| t < current));
            if i == leader.node || !old || node.needs_manual_rejoin() || node.retired() {
                continue;
            }
            let conninfo = format!(
                "{} application_name={}",
                nodes[leader.node].conninfo, node.name
            );
            match node.control.rejoin(&conninfo).await {
                Ok(()) => {
                    self.metrics.failover(&group.name, "rejoined");
                    tracing::warn!(shard = %group.name, node = %node.name, primary = %nodes[leader.node].name, "the old primary rejoins as a standby");
                }
                Err(e) if e.code == sqlstate::UNDEFINED_FUNCTION => {
                    node.set_needs_manual_rejoin();
                    tracing::error!(shard = %group.name, node = %node.name, "an old primary is back and fenced: make it a standby of the new primary by hand (pg_rewind or a new base backup, then standby.signal)");
                }
                Err(e) => {
                    tracing::warn!(shard = %group.name, node = %node.name, error = %e.message, "the old primary could not rejoin as a standby")
                }
            }
        }
    }

    /// Installs `leader` as the shard's primary (a new term): writes
    /// waiting for it go on, the previous primary is fenced.
    fn install(&self, group: &ShardGroup, leader: Leader, outcome: &str) {
        let old = {
            let mut cur = lock(&group.leader);
            if leader.term <= cur.term {
                return;
            }
            std::mem::replace(&mut *cur, leader)
        };
        if old.node != leader.node {
            group.nodes()[old.node].update(|s| {
                s.health = Health::Fenced;
                s.problem = Some(format!("replaced as the primary in term {}", leader.term));
            });
        }
        *lock(&group.down_since) = None;
        group.terms.send_replace(leader.term);
        self.metrics.failover(&group.name, outcome);
        tracing::warn!(
            shard = %group.name,
            term = leader.term,
            primary = %group.nodes()[leader.node].name,
            outcome,
            "new primary"
        );
    }

    /// Follows a term recorded in Redis, if it is newer than ours.
    fn follow(&self, group: &ShardGroup, term: &Term) {
        if term.0 <= group.leader().term {
            return;
        }
        match group
            .nodes()
            .iter()
            .position(|n| n.name == term.1 && !n.retired())
        {
            Some(node) => self.install(
                group,
                Leader {
                    term: term.0,
                    node,
                    timeline: None,
                },
                "followed",
            ),
            None => {
                tracing::error!(shard = %group.name, term = term.0, node = %term.1, "the recorded primary is not a configured node")
            }
        }
    }

    /// Follows a node polled as a primary on a later timeline than the
    /// current primary's: promoted elsewhere (by another proxy or by
    /// hand), so the current one is an old primary.
    async fn follow_promotion(&self, group: &ShardGroup, probes: &[Result<Probe, String>]) {
        let leader = group.leader();
        let current = match &probes[leader.node] {
            Ok(p) if !p.in_recovery => p.timeline,
            _ => leader.timeline,
        };
        let newer = probes.iter().enumerate().find_map(|(i, p)| match p {
            Ok(p) if i != leader.node && !p.in_recovery && p.timeline > current => {
                Some((i, p.timeline))
            }
            _ => None,
        });
        let Some((node, timeline)) = newer else {
            return;
        };
        let mut next = Leader {
            term: leader.term + 1,
            node,
            timeline,
        };
        if let Some(record) = &self.record {
            let term = (next.term, group.nodes()[node].name.clone());
            if let Some(recorded) = record.raise(&group.name, &term).await {
                if recorded != term {
                    return self.follow(group, &recorded);
                }
                next.term = recorded.0;
            }
        }
        self.install(group, next, "followed");
    }

    /// Replaces the lost primary `old` with the standby
    /// [`failover::successor`] picks: promotes it, records the new term,
    /// points the other standbys at it.
    async fn fail_over(&self, group: &ShardGroup, probes: &[Result<Probe, String>], old: Leader) {
        if let Some(record) = &self.record {
            if !record
                .lease(&group.name, self.config().failover_lease())
                .await
            {
                return;
            }
            // The previous holder may have decided just before.
            if let Some(term) = record.read(&group.name).await {
                if term.0 > old.term {
                    self.follow(group, &term);
                    record.release(&group.name).await;
                    return;
                }
            }
        }
        let outcome = self.promote_successor(group, probes, old).await;
        if let Err((outcome, why)) = outcome {
            self.metrics.failover(&group.name, outcome);
            tracing::error!(shard = %group.name, term = old.term, why = %why, "the primary is unreachable and no standby was promoted");
        }
        if let Some(record) = &self.record {
            record.release(&group.name).await;
        }
    }

    async fn promote_successor(
        &self,
        group: &ShardGroup,
        probes: &[Result<Probe, String>],
        old: Leader,
    ) -> Result<(), (&'static str, String)> {
        let nodes = group.nodes();
        let contenders: Vec<Contender> = nodes
            .iter()
            .zip(probes)
            .enumerate()
            .filter(|(i, (n, _))| *i != old.node && n.state().health != Health::Fenced)
            .filter_map(|(i, (n, p))| match p {
                Ok(p) if p.in_recovery => Some(Contender {
                    node: i,
                    name: n.name.clone(),
                    lsn: p.receive_lsn.max(p.replay_lsn).unwrap_or(0),
                }),
                _ => None,
            })
            .collect();
        let synchronous = lock(&group.synchronous).clone();
        let chosen = failover::successor(&contenders, &synchronous)
            .map_err(|r| ("refused", r.to_string()))?;
        let node = &nodes[chosen];
        let control = &node.control;
        control
            .promote(self.config().failover_wait())
            .await
            .map_err(|e| ("failed", format!("pg_promote on {}: {e}", node.name)))?;
        let timeline = control.probe().await.ok().and_then(|p| p.timeline);
        let mut term = (old.term + 1, node.name.clone());
        if let Some(record) = &self.record {
            match record.raise(&group.name, &term).await {
                Some(recorded) if recorded != term => {
                    // Cannot happen while we hold the lease; follow the record.
                    self.follow(group, &recorded);
                    return Ok(());
                }
                Some(_) => {}
                None => {
                    tracing::error!(shard = %group.name, "promoted, but the term could not be recorded in Redis")
                }
            }
            term.0 = old.term + 1;
        }
        self.install(
            group,
            Leader {
                term: term.0,
                node: chosen,
                timeline,
            },
            "promoted",
        );
        for (i, other) in nodes.iter().enumerate() {
            if i == chosen || i == old.node || other.retired() {
                continue;
            }
            let c = &other.control;
            let conninfo = format!("{} application_name={}", node.conninfo, other.name);
            if let Err(e) = c.follow(&conninfo).await {
                tracing::warn!(shard = %group.name, standby = %other.name, error = %e.message, "could not point the standby at the new primary");
            }
        }
        Ok(())
    }

    /// A data-path channel to the shard's primary of the current term.
    /// While that primary cannot be reached and a failover may replace
    /// it, waits up to `failover_wait_ms` for the next term, then fails
    /// with 08006 naming the shard.
    pub async fn primary_channel(&self, shard: usize) -> Result<Box<dyn ShardChannel>, PgError> {
        let group = &self.shards[shard];
        let wait = self.config().failover_wait();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let mut terms = group.terms.subscribe();
            let node = group.primary();
            let e = match node.checkout().await {
                Ok(chan) => return Ok(chan),
                Err(e) => e,
            };
            let may_fail_over = group.has_standbys() && self.config().failover_after().is_some();
            if e.code != sqlstate::CONNECTION_FAILURE || !may_fail_over {
                return Err(e);
            }
            if let Ok(Ok(())) = tokio::time::timeout_at(deadline, terms.changed()).await {
                continue;
            }
            return Err(PgError::new(
                sqlstate::CONNECTION_FAILURE,
                format!(
                    "shard \"{}\": its primary is unreachable and no standby replaced it within {} ms",
                    group.name,
                    wait.as_millis()
                ),
            )
            .with_detail(e.message));
        }
    }

    fn standby_health(&self, lag: lag::Lag, primary_known: bool) -> Health {
        let c = &self.config();
        let over_bytes = c.max_replica_lag_bytes > 0 && lag.bytes > c.max_replica_lag_bytes;
        let over_time =
            c.max_replica_lag_ms > 0 && lag.time > Duration::from_millis(c.max_replica_lag_ms);
        if over_bytes || over_time {
            Health::Banned
        } else if !primary_known && c.max_replica_lag_ms > 0 {
            // Without the primary's position the lag cannot be known; the
            // time bound still holds from the last known positions.
            Health::Lagging
        } else if lag.bytes > 0 {
            Health::Lagging
        } else {
            Health::Up
        }
    }

    /// After a write committed on `shard` and before it is acknowledged:
    /// the primary's insert position now (a floor every later read of the
    /// session must see), raising the proxy's floor for cache fills.
    /// `None` for a shard without standbys or when the primary cannot
    /// tell (reads of the session then go to the primary).
    /// When the position cannot be read, `u64::MAX`: no standby
    /// qualifies until a later write's position is read.
    pub async fn committed(&self, shard: usize) -> Option<u64> {
        let group = self.shards.get(shard).filter(|g| g.has_standbys())?;
        let asked = Instant::now();
        let read = group.primary().control.insert_lsn().await;
        let mut unknown = group
            .acked_unknown
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match read {
            Ok(lsn) => {
                group.acked.fetch_max(lsn, Ordering::Relaxed);
                // A position read that began after the failure is past the
                // commit whose position was lost.
                if unknown.is_some_and(|since| since < asked) {
                    *unknown = None;
                }
                Some(lsn)
            }
            Err(e) => {
                tracing::warn!(shard = %group.name, error = %e, "cannot read the primary's WAL position after a write");
                // The latest failure: a read that began before it may
                // miss its commit.
                *unknown = Some(Instant::now());
                Some(u64::MAX)
            }
        }
    }

    /// The position a standby must have replayed for its answers to fill
    /// the cache.
    fn acked(&self, group: &ShardGroup) -> u64 {
        let unknown = group
            .acked_unknown
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match *unknown {
            Some(_) => u64::MAX,
            None => group.acked.load(Ordering::Relaxed),
        }
    }

    /// A channel for a read on `shard` under `policy`, on a node that has
    /// replayed `floor` (the session's last write there) when given.
    pub async fn read(
        &self,
        shard: usize,
        policy: Policy,
        floor: Option<u64>,
    ) -> Result<ReadChannel, PgError> {
        let group = &self.shards[shard];
        if !group.has_standbys() && policy != Policy::StandbyOnly {
            return self.on_primary(shard, metrics::NO_STANDBY).await;
        }
        let mut tried = Vec::new();
        loop {
            let (ready, behind) = self.candidates(group, policy, floor, &tried);
            let turn = self.turn.fetch_add(1, Ordering::Relaxed);
            let (chosen, reason) = match least_loaded(&ready, turn) {
                Some(c) => (Some(c.node), "balanced"),
                None if !behind.is_empty() => (
                    self.wait_for_replay(group, &behind, floor).await,
                    "caught_up",
                ),
                None => (None, "unavailable"),
            };
            let Some(i) = chosen else {
                let why = if behind.is_empty() {
                    "unavailable"
                } else {
                    "read_your_writes"
                };
                if policy == Policy::StandbyOnly {
                    return Err(no_standby(&group.name, why));
                }
                return self.on_primary(shard, why).await;
            };
            if i == group.leader().node {
                return self.on_primary(shard, reason).await;
            }
            let node = Arc::clone(&group.nodes()[i]);
            let replayed = node.state().replay_lsn.unwrap_or(0);
            match node.checkout().await {
                Ok(chan) => {
                    self.metrics.read("standby", reason);
                    let cacheable = !self.shared_cache && replayed >= self.acked(group);
                    return Ok(ReadChannel { chan, cacheable });
                }
                Err(e) if e.code == sqlstate::CONNECTION_FAILURE => {
                    node.update(|s| {
                        s.health = Health::Down;
                        s.problem = Some(e.message.clone());
                    });
                    tried.push(i);
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn on_primary(&self, shard: usize, reason: &'static str) -> Result<ReadChannel, PgError> {
        self.metrics.read(metrics::PRIMARY, reason);
        let chan = self.primary_channel(shard).await?;
        Ok(ReadChannel {
            chan,
            cacheable: true,
        })
    }

    /// Nodes allowed by `policy` and their state: those that have replayed
    /// `floor`, and those that have not yet.
    fn candidates(
        &self,
        group: &ShardGroup,
        policy: Policy,
        floor: Option<u64>,
        tried: &[usize],
    ) -> (Vec<Candidate>, Vec<Candidate>) {
        let mut ready = Vec::new();
        let mut behind = Vec::new();
        let leader = group.leader().node;
        for (i, node) in group.nodes().iter().enumerate() {
            if node.weight() == 0 || node.retired() || tried.contains(&i) {
                continue;
            }
            let c = Candidate {
                node: i,
                weight: node.weight(),
                in_flight: node.in_flight(),
            };
            if i == leader {
                if policy == Policy::Any {
                    ready.push(c);
                }
                continue;
            }
            let s = node.state();
            if !matches!(s.health, Health::Up | Health::Lagging) {
                continue;
            }
            match floor {
                Some(f) if s.replay_lsn.unwrap_or(0) < f => behind.push(c),
                _ => ready.push(c),
            }
        }
        (ready, behind)
    }

    /// Asks the standbys `behind` for their replay position until one has
    /// replayed `floor` or `read_your_writes_wait_ms` passed.
    async fn wait_for_replay(
        &self,
        group: &ShardGroup,
        behind: &[Candidate],
        floor: Option<u64>,
    ) -> Option<usize> {
        let floor = floor?;
        let deadline = Instant::now() + self.config().read_your_writes_wait();
        let mut pause = Duration::from_millis(1);
        let nodes = group.nodes();
        let nodes = &nodes;
        loop {
            let asked = join_all(behind.iter().map(|c| async move {
                let node = &nodes[c.node];
                let lsn = node.control.replay_lsn().await.ok()??;
                node.update(|s| s.replay_lsn = Some(s.replay_lsn.unwrap_or(0).max(lsn)));
                Some((*c, lsn))
            }))
            .await;
            let caught_up: Vec<Candidate> = asked
                .into_iter()
                .flatten()
                .filter(|(_, lsn)| *lsn >= floor)
                .map(|(c, _)| c)
                .collect();
            if let Some(c) = least_loaded(&caught_up, 0) {
                return Some(c.node);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

fn no_standby(shard: &str, why: &str) -> PgError {
    let detail = match why {
        "read_your_writes" => "none has replayed this session's last write yet",
        _ => "none is up within the lag bounds",
    };
    PgError::new(
        sqlstate::CONNECTION_FAILURE,
        format!("no standby of shard \"{shard}\" can serve this read: {detail}"),
    )
    .with_hint(
        "SET pgvshard.target_session_attrs = 'prefer-standby' lets such reads use the primary.",
    )
}
