//! One node of a shard — its data-path pool, its control-plane pool, and
//! what the last poll said about it — and the [`NodeState`] that decides
//! whether it may serve reads.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::control::{ControlPool, Probe};
use super::lag::Lag;
use super::NodeParts;
use crate::proxy::backend::{RemoteBackend, ShardChannel, SharedBackend};
use crate::proxy::config::ShardConfig;
use crate::wire::PgError;

/// What a node is, as polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not polled yet, or unreachable since start.
    Unknown,
    /// Not in recovery: accepts writes.
    Primary,
    /// In recovery: a read-only copy.
    Standby,
}

impl Role {
    /// The label (`primary`, `standby`, `unknown`).
    pub fn label(self) -> &'static str {
        match self {
            Role::Unknown => "unknown",
            Role::Primary => "primary",
            Role::Standby => "standby",
        }
    }
}

/// Whether a node may serve reads, as `SHOW pgvshard.replicas` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Answering; a standby with nothing left to replay.
    Up,
    /// A standby behind its primary but within the lag bounds: serves reads.
    Lagging,
    /// A standby beyond a lag bound: serves no reads until it catches up.
    Banned,
    /// The last poll (or a data-path connect) failed.
    Down,
    /// A primary that is not the shard's primary of the current term (an
    /// old primary come back, possibly diverged), or the current primary
    /// found in recovery: it gets nothing.
    Fenced,
}

impl Health {
    /// The label.
    pub fn label(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Lagging => "lagging",
            Health::Banned => "banned",
            Health::Down => "down",
            Health::Fenced => "fenced",
        }
    }
}

/// The last poll's view of a node.
#[derive(Debug, Clone)]
pub struct NodeState {
    /// Role.
    pub role: Role,
    /// Read eligibility.
    pub health: Health,
    /// Why it is down or fenced.
    pub problem: Option<String>,
    /// The last probe's answer.
    pub probe: Option<Probe>,
    /// Lag behind the primary (standbys).
    pub lag: Option<Lag>,
    /// Highest replay position known (polled, or probed for a
    /// read-your-writes wait).
    pub replay_lsn: Option<u64>,
    /// When the last probe answered.
    pub seen: Option<SystemTime>,
}

impl Default for NodeState {
    fn default() -> Self {
        NodeState {
            role: Role::Unknown,
            health: Health::Down,
            problem: Some("not polled yet".to_string()),
            probe: None,
            lag: None,
            replay_lsn: None,
            seen: None,
        }
    }
}

/// One node.
pub struct Node {
    /// Its name (the shard's for the primary).
    pub name: String,
    /// `host:port`.
    pub addr: String,
    /// How a standby reaches it as its primary (`host=… port=… user=…`),
    /// for `primary_conninfo`.
    pub conninfo: String,
    /// Its connection settings as configured when it was added.
    pub conn: ShardConfig,
    /// Share of reads (a reload may change it).
    weight: AtomicU32,
    /// The pool client statements use (metered).
    pub data: SharedBackend,
    /// The same pool, for resizing and closing it.
    pub pool: Arc<RemoteBackend>,
    /// The pool the proxy's own questions use (opened lazily: shards
    /// with standbys are polled on it, and two-phase commit asks every
    /// primary about in-doubt transactions).
    pub control: ControlPool,
    state: Mutex<NodeState>,
    /// An old primary that cannot rejoin by itself (a real PostgreSQL
    /// server): left fenced for an operator.
    manual_rejoin: AtomicBool,
    /// Removed from the configuration by a reload: no reads, polls or
    /// promotion; its pools are closed.
    retired: AtomicBool,
}

impl Node {
    /// A node over its pools; control-plane calls give up after
    /// `timeout`.
    pub fn from_parts(p: NodeParts, timeout: Duration) -> Result<Self, String> {
        let c = p.config.conn;
        let control = ControlPool::new(&c, p.dialer, timeout)?;
        let mut conninfo = format!("host={} port={} user={}", c.host, c.port, c.user);
        if let Some(pw) = &c.password {
            conninfo.push_str(&format!(
                " password='{}'",
                pw.replace('\\', "\\\\").replace('\'', "\\'")
            ));
        }
        Ok(Node {
            name: c.name.clone(),
            addr: format!("{}:{}", c.host, c.port),
            conninfo,
            weight: AtomicU32::new(p.config.weight),
            conn: c,
            data: p.data,
            pool: p.pool,
            control,
            state: Mutex::new(NodeState::default()),
            retired: AtomicBool::new(false),
            manual_rejoin: AtomicBool::new(false),
        })
    }

    /// Whether a reload removed it.
    pub fn retired(&self) -> bool {
        self.retired.load(Ordering::Relaxed)
    }

    /// Takes it out of service for good: closes its pools.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
        self.pool.close();
        self.control.close();
    }

    /// Whether it reaches the same server as `conn` as the same user
    /// (pool and weight aside, which a reload changes in place).
    pub fn same_endpoint(&self, conn: &ShardConfig) -> bool {
        let c = &self.conn;
        c.name == conn.name
            && c.kind == conn.kind
            && c.host == conn.host
            && c.port == conn.port
            && c.user == conn.user
            && c.password == conn.password
            && c.dbname == conn.dbname
            && c.sslmode == conn.sslmode
            && c.sslrootcert == conn.sslrootcert
    }

    /// Whether an attempt to make it rejoin as a standby found it cannot.
    pub fn needs_manual_rejoin(&self) -> bool {
        self.manual_rejoin.load(Ordering::Relaxed)
    }

    /// Records that it cannot rejoin by itself.
    pub fn set_needs_manual_rejoin(&self) {
        self.manual_rejoin.store(true, Ordering::Relaxed);
    }

    /// Its share of reads now.
    pub fn weight(&self) -> u32 {
        self.weight.load(Ordering::Relaxed)
    }

    /// Sets its share of reads (a configuration reload).
    pub fn set_weight(&self, weight: u32) {
        self.weight.store(weight, Ordering::Relaxed);
    }

    /// A copy of its state.
    pub fn state(&self) -> NodeState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes its state.
    pub fn update(&self, f: impl FnOnce(&mut NodeState)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Data-path channels checked out now (and connections being
    /// recovered after a reply was abandoned: they are busy too).
    pub fn in_flight(&self) -> usize {
        self.pool.in_use()
    }

    /// A data-path channel, counted in [`Node::in_flight`] until dropped.
    pub async fn checkout(&self) -> Result<Box<dyn ShardChannel>, PgError> {
        self.data.checkout().await
    }
}
