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
//! - A node whose polled role contradicts its configured one is fenced:
//!   no reads. There is no automatic failover yet, so a primary is only
//!   ever the configured one.
//!
//! Shards without standbys are not polled and cost nothing here.

pub mod control;
pub mod lag;
pub mod metrics;
pub mod node;
pub mod select;
mod session;
mod show;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::join_all;
use tokio::task::JoinHandle;

use self::control::ControlPool;
use self::lag::WalHistory;
pub use self::metrics::ReplicaMetrics;
use self::node::{Health, Node, Role};
use self::select::{least_loaded, Candidate};
pub use self::session::{
    decide, Decision, Policy, PrimaryRead, SessionReads, TARGET_SESSION_ATTRS,
};
pub use self::show::{columns as show_columns, show, SHOW_NAME};
use super::backend::{Dialer, ShardChannel, SharedBackend};
use super::config::{NodeConfig, ReplicationConfig};
use crate::wire::{sqlstate, PgError};

/// One shard: its nodes, the primary first.
pub struct ShardGroup {
    /// The shard's name.
    pub name: String,
    /// Node 0 is the configured primary; then the standbys.
    pub nodes: Vec<Arc<Node>>,
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
    /// Whether the shard has standbys (and so is polled).
    pub fn has_standbys(&self) -> bool {
        self.nodes.len() > 1
    }

    fn primary(&self) -> &Arc<Node> {
        &self.nodes[0]
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
    config: ReplicationConfig,
    metrics: ReplicaMetrics,
    turn: AtomicUsize,
    shared_cache: bool,
}

/// The nodes of one shard as [`Topology::new`] takes them: the node's
/// configuration, its data-path pool and how to dial it.
pub struct NodeParts {
    /// Configuration.
    pub config: NodeConfig,
    /// Its data-path pool (for the primary: the one `Cluster::shards` has).
    pub data: SharedBackend,
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
    /// `shared_cache`: the result cache is shared through Redis.
    pub fn new(
        config: &ReplicationConfig,
        shards: Vec<(String, Vec<NodeParts>)>,
        shared_cache: bool,
        metrics: ReplicaMetrics,
    ) -> Result<Arc<Self>, String> {
        let mut groups = Vec::with_capacity(shards.len());
        for (name, parts) in shards {
            let polled = parts.len() > 1;
            let mut nodes = Vec::with_capacity(parts.len());
            for p in parts {
                let control = polled
                    .then(|| ControlPool::new(&p.config.conn, p.dialer, config.timeout()))
                    .transpose()?;
                nodes.push(Arc::new(Node::new(
                    p.config.conn.name.clone(),
                    format!("{}:{}", p.config.conn.host, p.config.conn.port),
                    p.config.primary,
                    p.config.weight,
                    p.data,
                    control,
                )));
            }
            groups.push(ShardGroup {
                name,
                nodes,
                history: Mutex::new(WalHistory::default()),
                acked: AtomicU64::new(0),
                acked_unknown: Mutex::new(None),
            });
        }
        Ok(Arc::new(Topology {
            shards: groups,
            config: config.clone(),
            metrics,
            turn: AtomicUsize::new(0),
            shared_cache,
        }))
    }

    /// The shard groups, in slot-map order.
    pub fn shards(&self) -> &[ShardGroup] {
        &self.shards
    }

    /// The replication settings.
    pub fn config(&self) -> &ReplicationConfig {
        &self.config
    }

    /// Counts a read sent to the primary for `reason`.
    pub fn primary_read(&self, reason: &'static str) {
        self.metrics.read("primary", reason);
    }

    /// Polls once, then every interval, until the returned [`Poller`]
    /// is dropped. `None` when no shard has standbys.
    pub fn start_polling(self: &Arc<Self>) -> Option<Poller> {
        if !self.shards.iter().any(ShardGroup::has_standbys) {
            return None;
        }
        let me = Arc::clone(self);
        Some(Poller(tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.config.interval());
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
        let probes = join_all(group.nodes.iter().map(|n| async move {
            match &n.control {
                Some(c) => c.probe().await,
                None => Err("no control pool".to_string()),
            }
        }))
        .await;
        let now = Instant::now();
        // Samples are kept long enough to measure lags past the bound.
        let keep = Duration::from_millis(self.config.max_replica_lag_ms.max(1_000) * 4);
        let primary_lsn = match &probes[0] {
            Ok(p) if !p.in_recovery => p.insert_lsn,
            _ => None,
        };
        let mut history = group.history.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lsn) = primary_lsn {
            history.record(now, lsn, keep);
        }
        for (node, probe) in group.nodes.iter().zip(probes) {
            node.update(|s| match probe {
                Err(e) => {
                    s.health = Health::Down;
                    s.problem = Some(e);
                }
                Ok(p) => {
                    s.role = if p.in_recovery {
                        Role::Standby
                    } else {
                        Role::Primary
                    };
                    s.probe = Some(p);
                    s.seen = Some(SystemTime::now());
                    s.problem = None;
                    s.replay_lsn = match (p.in_recovery, p.replay_lsn, s.replay_lsn) {
                        (false, _, _) => None,
                        (true, Some(new), Some(old)) => Some(new.max(old)),
                        (true, new, old) => new.or(old),
                    };
                    s.lag = None;
                    s.health = if node.configured_primary != (s.role == Role::Primary) {
                        s.problem = Some(format!(
                            "configured as a {} but polled as a {}",
                            if node.configured_primary {
                                "primary"
                            } else {
                                "standby"
                            },
                            s.role.label()
                        ));
                        Health::Fenced
                    } else if node.configured_primary {
                        Health::Up
                    } else {
                        let lag = history.lag(s.replay_lsn.unwrap_or(0), now);
                        s.lag = Some(lag);
                        self.standby_health(lag, primary_lsn.is_some())
                    };
                }
            });
        }
    }

    fn standby_health(&self, lag: lag::Lag, primary_known: bool) -> Health {
        let c = &self.config;
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
        let read = group.primary().control.as_ref()?.insert_lsn().await;
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
            return self.on_primary(group, "no_standby").await;
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
                return self.on_primary(group, why).await;
            };
            if i == 0 {
                return self.on_primary(group, reason).await;
            }
            let node = &group.nodes[i];
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

    async fn on_primary(
        &self,
        group: &ShardGroup,
        reason: &'static str,
    ) -> Result<ReadChannel, PgError> {
        self.metrics.read("primary", reason);
        let chan = group.primary().checkout().await?;
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
        for (i, node) in group.nodes.iter().enumerate() {
            if node.weight == 0 || tried.contains(&i) {
                continue;
            }
            let c = Candidate {
                node: i,
                weight: node.weight,
                in_flight: node.in_flight(),
            };
            if i == 0 {
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
        let deadline = Instant::now() + self.config.read_your_writes_wait();
        let mut pause = Duration::from_millis(1);
        loop {
            let asked = join_all(behind.iter().map(|c| async move {
                let node = &group.nodes[c.node];
                let lsn = node.control.as_ref()?.replay_lsn().await.ok()??;
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
