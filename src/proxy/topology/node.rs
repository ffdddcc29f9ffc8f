//! One node of a shard — its data-path pool, its control-plane pool, and
//! what the last poll said about it — and the [`NodeState`] that decides
//! whether it may serve reads.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::control::{ControlPool, Probe};
use super::lag::Lag;
use crate::proxy::backend::{BackendMessage, BoxFuture, Request, ShardChannel, SharedBackend};
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
    /// Share of reads (a reload may change it).
    weight: AtomicU32,
    /// The pool client statements use.
    pub data: SharedBackend,
    /// The pool the proxy's own questions use; `None` for a shard
    /// without standbys (nothing to poll).
    pub control: Option<ControlPool>,
    state: Mutex<NodeState>,
    in_flight: Arc<AtomicUsize>,
    /// An old primary that cannot rejoin by itself (a real PostgreSQL
    /// server): left fenced for an operator.
    manual_rejoin: AtomicBool,
}

impl Node {
    /// A node over its pools.
    pub fn new(
        name: String,
        addr: String,
        conninfo: String,
        weight: u32,
        data: SharedBackend,
        control: Option<ControlPool>,
    ) -> Self {
        Node {
            name,
            addr,
            conninfo,
            weight: AtomicU32::new(weight),
            data,
            control,
            state: Mutex::new(NodeState::default()),
            in_flight: Arc::default(),
            manual_rejoin: AtomicBool::new(false),
        }
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

    /// Data-path channels checked out now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// A data-path channel, counted in [`Node::in_flight`] until dropped.
    pub async fn checkout(&self) -> Result<Box<dyn ShardChannel>, PgError> {
        let inner = self.data.checkout().await?;
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Ok(Box::new(Counted {
            inner,
            in_flight: Arc::clone(&self.in_flight),
        }))
    }
}

/// A channel that counts itself out of its node's in-flight requests.
struct Counted {
    inner: Box<dyn ShardChannel>,
    in_flight: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ShardChannel for Counted {
    fn send<'a>(&'a mut self, request: &'a Request) -> BoxFuture<'a, Result<(), PgError>> {
        self.inner.send(request)
    }

    fn recv(&mut self) -> BoxFuture<'_, Result<BackendMessage, PgError>> {
        self.inner.recv()
    }

    fn settings(&mut self) -> &mut std::collections::BTreeMap<String, String> {
        self.inner.settings()
    }
}
