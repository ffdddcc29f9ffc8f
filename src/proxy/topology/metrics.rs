//! The topology's families: reads by target and reason (counted as they
//! are routed), each node's role, lag and ban (sampled at scrape from the
//! last poll), and each node's data-path pool (sampled at scrape).

use std::sync::{Arc, OnceLock, Weak};

use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGaugeVec, Opts};

use super::node::{Health, NodeState, Role};
use super::Topology;
use crate::metrics::{Registry, Sampled, SampledGauges};

/// The `target` label of a read on the primary.
pub const PRIMARY: &str = "primary";
/// The `reason` label of a read on a shard without standbys.
pub const NO_STANDBY: &str = "no_standby";

/// Counters the read path increments.
#[derive(Clone)]
pub struct ReplicaMetrics {
    reads: IntCounterVec,
    /// `reads` of the primary of a shard without standbys: every read of
    /// such a shard, so its series is looked up once, at its first read
    /// (not before: an unused series is not shown).
    without_standby: Arc<OnceLock<IntCounter>>,
    failovers: IntCounterVec,
}

impl ReplicaMetrics {
    /// Registers `pgvshard_reads_total{target,reason}`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        Ok(ReplicaMetrics {
            reads: crate::metrics::counter(
                registry,
                "pgvshard_reads_total",
                "Reads sent to a shard by target (standby, primary) and reason (balanced, caught_up: after a read-your-writes wait; for the primary also hint, locking, function, transaction, session_attrs, read_from, no_standby, unavailable, read_your_writes).",
                &["target", "reason"],
            )?,
            without_standby: Arc::default(),
            failovers: crate::metrics::counter(
                registry,
                "pgvshard_failovers_total",
                "Changes of a shard's primary by outcome: promoted (this proxy promoted a standby), followed (another proxy's or an outside promotion was followed), refused (no standby was safe to promote), failed (the promotion failed), rejoined (an old pgvshard shard primary was made a standby of the new one).",
                &["shard", "outcome"],
            )?,
        })
    }

    /// Counts one failover attempt or change of primary.
    pub fn failover(&self, shard: &str, outcome: &str) {
        self.failovers.with_label_values(&[shard, outcome]).inc();
    }

    /// Counts one read.
    pub fn read(&self, target: &str, reason: &str) {
        let series = || self.reads.with_label_values(&[target, reason]);
        match (target, reason) {
            (PRIMARY, NO_STANDBY) => self.without_standby.get_or_init(series).inc(),
            _ => series().inc(),
        }
    }
}

/// A gauge's value for one node, if it has one.
type NodeValue = fn(&NodeState) -> Option<i64>;

/// Registers the per-node gauges of `topology`: pools of every node,
/// roles and lag of the nodes of polled shards.
pub fn register_gauges(
    registry: &Registry,
    topology: &Arc<Topology>,
) -> Result<(), prometheus::Error> {
    let labels = ["shard", "node"];
    let each = |t: &Weak<Topology>, f: &mut dyn FnMut(&str, &str, &NodeState)| {
        if let Some(t) = t.upgrade() {
            for g in t.shards().iter().filter(|g| g.has_standbys()) {
                for n in g.nodes().iter().filter(|n| !n.retired()) {
                    f(&g.name, &n.name, &n.state());
                }
            }
        }
    };
    let ints: [(&str, &str, NodeValue); 3] = [
        (
            "pgvshard_node_role",
            "Role of each node as polled: 1 primary, 0 standby, -1 unknown.",
            |s| {
                Some(match s.role {
                    Role::Primary => 1,
                    Role::Standby => 0,
                    Role::Unknown => -1,
                })
            },
        ),
        (
            "pgvshard_replica_lag_bytes",
            "WAL bytes the primary has that the standby has not replayed.",
            |s| s.lag.map(|l| i64::try_from(l.bytes).unwrap_or(i64::MAX)),
        ),
        (
            "pgvshard_replica_banned",
            "1 while the standby is beyond a lag bound (serves no reads).",
            |s| s.lag.map(|_| i64::from(s.health == Health::Banned)),
        ),
    ];
    for (name, help, value) in ints {
        let t = Arc::downgrade(topology);
        let family = IntGaugeVec::new(Opts::new(name, help), &labels)?;
        registry.register(Box::new(Sampled::wrap(family, move |g: &IntGaugeVec| {
            g.reset();
            each(&t, &mut |shard, node, s| {
                if let Some(v) = value(s) {
                    g.with_label_values(&[shard, node]).set(v);
                }
            });
        })))?;
    }
    let t = Arc::downgrade(topology);
    registry.register(Box::new(SampledGauges::new(
        "pgvshard_pool_connections",
        "Connections of each shard node's pool by state (size, active, idle, waiting: checkouts waiting).",
        &["shard", "node", "state"],
        move |g| {
            g.reset();
            let Some(t) = t.upgrade() else { return };
            for group in t.shards() {
                for n in group.nodes().iter().filter(|n| !n.retired()) {
                    let st = n.data.status();
                    for (state, count) in [
                        ("size", st.size),
                        ("active", st.active),
                        ("idle", st.idle),
                        ("waiting", st.waiting),
                    ] {
                        g.with_label_values(&[&group.name, &n.name, state])
                            .set(i64::try_from(count).unwrap_or(i64::MAX));
                    }
                }
            }
        },
    )?))?;
    let t = Arc::downgrade(topology);
    let seconds = GaugeVec::new(
        Opts::new(
            "pgvshard_replica_lag_seconds",
            "Age of the oldest WAL the standby has not replayed, as the proxy's polls saw it.",
        ),
        &labels,
    )?;
    registry.register(Box::new(Sampled::wrap(seconds, move |g: &GaugeVec| {
        g.reset();
        each(&t, &mut |shard, node, s| {
            if let Some(l) = s.lag {
                g.with_label_values(&[shard, node])
                    .set(l.time.as_secs_f64());
            }
        });
    })))?;
    Ok(())
}
