//! Two-phase commit's metrics: `pgvshard_2pc_total{outcome}` (how each
//! two-phase commit ended: `committed`, `rolled_back`, `unknown` when the
//! coordinator's COMMIT went unanswered, and the resolver's
//! `resolved_commit` / `resolved_abort`), `pgvshard_2pc_in_doubt` (prepared
//! transactions of the proxies' gids the resolver's last pass found and
//! this process is not committing) and `pgvshard_commit_duration_seconds
//! {kind}` (`single_shard` or `two_phase`, from the first COMMIT or
//! PREPARE sent to the client's answer).

use std::time::Duration;

use prometheus::{HistogramVec, IntCounterVec, IntGauge};

use crate::metrics::{counter, latency, register, Registry};

/// The families, registered once per proxy.
#[derive(Clone)]
pub struct TxnMetrics {
    total: IntCounterVec,
    in_doubt: IntGauge,
    commit: HistogramVec,
}

impl TxnMetrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        Ok(TxnMetrics {
            total: counter(
                registry,
                "pgvshard_2pc_total",
                "Two-phase commits by how they ended (committed, rolled_back, unknown; resolved_commit, resolved_abort by the in-doubt resolver).",
                &["outcome"],
            )?,
            in_doubt: register(
                registry,
                IntGauge::new(
                    "pgvshard_2pc_in_doubt",
                    "Prepared transactions the in-doubt resolver's last pass found undecided or not yet finished.",
                )?,
            )?,
            commit: latency(
                registry,
                "pgvshard_commit_duration_seconds",
                "Commit latency of writes by kind (single_shard, two_phase).",
                &["kind"],
            )?,
        })
    }

    /// One two-phase commit ended so.
    pub fn outcome(&self, outcome: &str) {
        self.total.with_label_values(&[outcome]).inc();
    }

    /// The resolver's last count.
    pub fn set_in_doubt(&self, n: usize) {
        self.in_doubt.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// A commit of `kind` took `took`.
    pub fn commit(&self, kind: &str, took: Duration) {
        self.commit
            .with_label_values(&[kind])
            .observe(took.as_secs_f64());
    }
}
