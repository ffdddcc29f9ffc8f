//! Operating a running proxy: the configuration reload ([`reload`]),
//! which settings it applies ([`settings`]), statement statistics
//! ([`stats`]) and the slow-statement log ([`slow_log`], with per-shard
//! times from [`shard_timings`]); [`local`] answers their SQL
//! (`SHOW pgvshard.stats`, `SHOW pgvshard.config`, `SELECT
//! pgvshard.reload()`, `SELECT pgvshard.stats_reset()`) without a shard.

pub mod local;
pub mod metrics;
pub mod reload;
pub mod settings;
pub mod shard_timings;
pub mod slow_log;
pub mod stats;

use std::sync::Arc;

pub use self::reload::{LiveParts, ReloadError, Reloaded, Reloader};
use self::slow_log::{Finished, SlowLog};
use self::stats::StatementStats;

/// The operations state every session of one proxy shares.
pub struct Operations {
    /// The configuration in force and its reload.
    pub reloader: Reloader,
    /// Per-class statement counters.
    pub stats: StatementStats,
    /// The slow-statement log.
    pub slow_log: Arc<SlowLog>,
}

impl Operations {
    /// Counts a statement that ended and logs it if it was slow.
    pub fn finished(&self, statement: &Finished<'_>) {
        let s = statement;
        self.stats
            .record(s.class, s.took, s.rows, s.sqlstate.is_some());
        self.slow_log.finished(s);
    }
}

/// Runs a reload on the blocking pool: it reads the file and derives a
/// SCRAM secret per user (4096 hash iterations each), which must not
/// hold up the async workers serving clients.
pub async fn reload_off_workers(ops: &Arc<Operations>) -> Result<Reloaded, ReloadError> {
    let ops = Arc::clone(ops);
    tokio::task::spawn_blocking(move || ops.reloader.reload())
        .await
        .unwrap_or_else(|e| Err(ReloadError::Interrupted(e.to_string())))
}
