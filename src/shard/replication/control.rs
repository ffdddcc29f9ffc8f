//! Recovery control, as PostgreSQL's SQL functions expose it:
//! `pg_promote()`, `pg_wal_replay_pause()` / `pg_wal_replay_resume()` /
//! `pg_is_wal_replay_paused()` / `pg_get_wal_replay_pause_state()` (55000
//! on a primary), `ALTER SYSTEM SET primary_conninfo |
//! recovery_min_apply_delay` and `pg_reload_conf()` (a standby re-pointed
//! at another primary reconnects there at once, as PostgreSQL's WAL
//! receiver does since version 13), and pgvshard's
//! `pgvshard_rejoin_as_standby()`: an old primary becomes a standby of
//! `primary_conninfo` — `standby.signal` is written and the server
//! restarts in its process, discarding WAL the new primary's history does
//! not have (a fresh base copy), as PostgreSQL's `touch standby.signal;
//! pg_ctl restart` with a rewind would. All but `pg_is_wal_replay_paused()`
//! and `pg_get_wal_replay_pause_state()` are for superusers: the executor
//! refuses others with 42501 first, as PostgreSQL's privilege check does.

use super::recovery_conf::{self, AutoConf};
use super::Replication;
use crate::shard::storage::Database;
use crate::wire::PgError;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the recovery control functions reach: the database and its
/// replication state.
#[derive(Debug, Clone)]
pub struct RecoveryControl {
    /// The shard's database.
    pub db: Arc<Database>,
    /// Its replication state.
    pub replication: Arc<Replication>,
}

fn not_in_recovery() -> PgError {
    PgError::new("55000", "recovery is not in progress")
        .with_hint("Recovery control functions can only be executed during recovery.")
}

impl RecoveryControl {
    fn in_recovery(&self) -> Result<(), PgError> {
        if self.db.in_recovery() {
            Ok(())
        } else {
            Err(not_in_recovery())
        }
    }

    /// `pg_promote(wait, wait_seconds)`: asks the WAL receiver to end
    /// recovery; with `wait`, true once the server accepts writes, false
    /// (as PostgreSQL, which also warns) when that took longer than
    /// `wait_seconds`. 55000 on a primary.
    pub fn promote(&self, wait: bool, wait_seconds: u64) -> Result<bool, PgError> {
        self.in_recovery()?;
        self.replication.request_promotion();
        if !wait {
            return Ok(true);
        }
        let deadline = Instant::now() + Duration::from_secs(wait_seconds);
        while self.db.in_recovery() {
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(true)
    }

    /// `pg_wal_replay_pause()` (`true`) / `pg_wal_replay_resume()`: the
    /// WAL receiver keeps what arrives and applies nothing while paused.
    pub fn set_paused(&self, paused: bool) -> Result<(), PgError> {
        self.in_recovery()?;
        self.replication.paused.send_replace(paused);
        Ok(())
    }

    /// `pg_is_wal_replay_paused()`.
    pub fn paused(&self) -> Result<bool, PgError> {
        self.in_recovery()?;
        Ok(*self.replication.paused.borrow())
    }

    /// `pg_get_wal_replay_pause_state()`: `paused` or `not paused` (a
    /// pause takes effect between transactions at once, so `pause
    /// requested` is never seen).
    pub fn pause_state(&self) -> Result<&'static str, PgError> {
        Ok(if self.paused()? {
            "paused"
        } else {
            "not paused"
        })
    }

    /// `ALTER SYSTEM SET name = value` (`None`: RESET), in effect after
    /// `pg_reload_conf()`.
    pub fn alter_system(&self, name: &str, value: Option<&str>) -> Result<(), PgError> {
        AutoConf::alter(self.db.data_dir(), name, value)
    }

    /// `pg_reload_conf()`: applies `postgresql.auto.conf` to the WAL
    /// receiver (its primary, its apply delay). A file that cannot be
    /// read is reported in the log and changes nothing, as PostgreSQL's
    /// reload does.
    pub fn reload(&self) -> bool {
        match AutoConf::load(self.db.data_dir()) {
            Ok(conf) => self.replication.apply_conf(&conf),
            Err(e) => tracing::error!(error = %e, "configuration file not reloaded"),
        }
        true
    }

    /// `pgvshard_rejoin_as_standby()`: this primary stops accepting
    /// writes at once, writes `standby.signal`, and restarts as a standby
    /// of `primary_conninfo` (sessions end with 57P01).
    pub fn rejoin_as_standby(&self) -> Result<bool, PgError> {
        if self.db.in_recovery() {
            return Err(PgError::new("55000", "recovery is already in progress")
                .with_hint("This server is already a standby."));
        }
        let data = self.db.data_dir();
        let conf = AutoConf::load(data).map_err(PgError::internal)?;
        if conf
            .get("primary_conninfo")
            .is_none_or(|c| c.trim().is_empty())
        {
            return Err(PgError::new("55000", "primary_conninfo is not set")
                .with_hint("Set it with ALTER SYSTEM SET primary_conninfo = '…' first."));
        }
        recovery_conf::set_standby_signal(data, true)
            .and_then(|()| recovery_conf::set_promoted(data, None))
            .map_err(|e| {
                PgError::internal(format!(
                    "could not write {}: {e}",
                    recovery_conf::STANDBY_SIGNAL
                ))
            })?;
        self.db.set_in_recovery(true);
        tracing::warn!("rejoining as a standby of primary_conninfo: restarting");
        self.replication.rejoin.send_replace(true);
        Ok(true)
    }
}
