//! Adding and removing a shard's standbys while serving (a configuration
//! reload), without disturbing the nodes that stay.
//!
//! A standby is matched to a running node by its name and endpoint
//! (address, login, database, TLS): a match keeps its pools, its polled
//! state and the statements running on it (a changed pool size or read
//! weight is applied in place by the reload). A running standby no longer
//! listed is retired: it gets no new reads, polls or promotion, its idle
//! connections close at once and busy ones when their statement ends. A
//! listed standby not running is added and serves reads from the poll
//! that finds it within the lag bounds. A node is never dropped from its
//! shard's list, only retired, so the indices the poller and the current
//! term hold stay valid (a retired node costs a few hundred bytes until
//! the proxy restarts).
//!
//! Two nodes are never touched: the configured primary (its address is a
//! restart-only setting) and whichever node is the shard's primary of the
//! current term — a promoted standby the file no longer lists stays until
//! a restart, with a warning.

use std::sync::Arc;

use super::node::Node;
use super::{NodeParts, ShardGroup, Topology};
use crate::metrics::ProxyMetrics;
use crate::proxy::backend::metered::Meter;
use crate::proxy::backend::{Dialer, RemoteBackend, SharedBackend};
use crate::proxy::config::{NodeConfig, PoolConfig};

/// Builds a node's data-path pool, metered, as the proxy does at start.
#[derive(Clone)]
pub struct NodeBuilder {
    metrics: ProxyMetrics,
}

impl NodeBuilder {
    /// A builder whose pools count into `metrics`.
    pub fn new(metrics: ProxyMetrics) -> Self {
        NodeBuilder { metrics }
    }

    /// The parts of node `config`, whose connections `dialer` opens (no
    /// connection is opened yet).
    pub fn parts(&self, config: NodeConfig, dialer: Dialer) -> NodeParts {
        let meter = Meter::new(&config.conn.name, &self.metrics);
        let pool = RemoteBackend::metered(config.conn.clone(), dialer.clone(), meter);
        let data: SharedBackend = Arc::new(Arc::clone(&pool));
        NodeParts {
            config,
            data,
            pool,
            dialer,
        }
    }
}

/// The standbys of one shard to add and to retire, built but not applied.
pub struct StandbyPlan {
    shard: usize,
    add: Vec<Arc<Node>>,
    retire: Vec<usize>,
}

/// What applying a [`StandbyPlan`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StandbyChanges {
    /// Standbys added, by name.
    pub added: Vec<String>,
    /// Standbys retired, by name.
    pub removed: Vec<String>,
    /// Standbys no longer listed but kept: the shard's primary now.
    pub kept: Vec<String>,
}

impl StandbyChanges {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.kept.is_empty()
    }
}

impl Topology {
    /// What it takes for shard `shard`'s standbys to be `wanted` (its
    /// standby nodes as configured); new nodes are built with `build`.
    /// `None` for a shard the proxy does not have (the shard list needs
    /// a restart). Fails only if a node's control pool cannot be built.
    pub fn plan_standbys(
        &self,
        shard: &str,
        wanted: Vec<NodeConfig>,
        build: impl Fn(NodeConfig) -> NodeParts,
    ) -> Option<Result<StandbyPlan, String>> {
        let index = self.shards.iter().position(|g| g.name == shard)?;
        let nodes = self.shards[index].nodes();
        let live = |i: &usize| *i > 0 && !nodes[*i].retired();
        let retire = (0..nodes.len())
            .filter(live)
            .filter(|i| !wanted.iter().any(|w| nodes[*i].same_endpoint(&w.conn)))
            .collect();
        let add = wanted
            .into_iter()
            .filter(|w| {
                !(0..nodes.len())
                    .filter(live)
                    .any(|i| nodes[i].same_endpoint(&w.conn))
            })
            .map(|w| Node::from_parts(build(w), self.config().timeout()).map(Arc::new))
            .collect::<Result<Vec<_>, _>>();
        Some(add.map(|add| StandbyPlan {
            shard: index,
            add,
            retire,
        }))
    }

    /// Applies a plan from [`Topology::plan_standbys`] (see the module
    /// doc for what stays).
    pub fn apply_standbys(&self, plan: StandbyPlan) -> StandbyChanges {
        let group: &ShardGroup = &self.shards[plan.shard];
        let leader = group.leader().node;
        let mut changes = StandbyChanges::default();
        let mut nodes = group.nodes.write().unwrap_or_else(|e| e.into_inner());
        let mut list = nodes.to_vec();
        for i in plan.retire {
            if i == leader {
                changes.kept.push(list[i].name.clone());
            } else {
                list[i].retire();
                changes.removed.push(list[i].name.clone());
            }
        }
        for node in plan.add {
            let clash = list.iter().any(|n| !n.retired() && n.name == node.name);
            if clash {
                // The kept primary under the same name: a restart decides.
                node.retire();
                continue;
            }
            changes.added.push(node.name.clone());
            list.push(node);
        }
        *nodes = Arc::new(list);
        changes
    }

    /// Applies reloaded pool settings to the running node `name`.
    pub fn resize_pool(&self, name: &str, pool: PoolConfig) {
        for group in &self.shards {
            for node in group.nodes().iter() {
                if !node.retired() && node.name == name {
                    node.pool.resize(pool.clone());
                }
            }
        }
    }
}
