//! Streaming replication between `pgvshard shard` processes, as
//! PostgreSQL's physical streaming replication works, with pgvshard's own
//! WAL as the payload ([`protocol`]).
//!
//! ```text
//!  standby                                         primary
//!  receiver ──startup replication=true, login──▶   wire layer → ShardSession (WAL sender mode)
//!           ──BASE_BACKUP (empty data dir)──────▶   Database::base_backup: checkpoint files + LSN
//!           ──IDENTIFY_SYSTEM──────────────────▶   system identifier, timeline, flushed LSN
//!           ──START_REPLICATION X/X TIMELINE 1─▶   sender: copy-both
//!           ◀─XLogData (durable WAL only)───────    read_wal(sent, flushed) as it moves
//!           ◀─keepalive every second────────────
//!           ──status (write/flush/apply)───────▶   pg_stat_replication
//!  Database::apply_replicated: Tables::apply + the same frames appended
//! ```
//!
//! Invariants: a primary sends only WAL it has fsynced, in whole frames;
//! a standby appends and applies whole transactions only (its WAL is a
//! byte-for-byte prefix of the primary's, so LSNs agree), and its reads
//! see a transaction once its WAL is durable there. A standby refuses
//! writes (25006) while it is in recovery.

pub mod control;
pub mod protocol;
pub mod receiver;
pub mod recovery_conf;
pub mod sender;
pub mod sync;
pub mod upstream;

use crate::shard::storage::Lsn;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::wire::cancel::CancelSignal;
use crate::wire::PgError;
use protocol::StandbyStatus;
use recovery_conf::AutoConf;
use sync::{SyncLevel, SyncStandbys};
use upstream::StandbyOf;

/// What a client is told when a commit stops waiting for its standbys.
const NOT_REPLICATED: &str =
    "The transaction has already committed locally, but might not have been replicated to the standby.";

/// A shard's replication state (its role is the database's
/// [`Database::in_recovery`](crate::shard::storage::Database::in_recovery)): its WAL senders (primary side,
/// `pg_stat_replication`) and its WAL receiver (standby side,
/// `pg_stat_wal_receiver`).
#[derive(Debug)]
pub struct Replication {
    /// Users allowed to open replication connections.
    replication_users: Vec<String>,
    senders: Mutex<Vec<Arc<WalSender>>>,
    /// `synchronous_standby_names` as configured, and parsed.
    sync_names: String,
    sync: Option<SyncStandbys>,
    /// The (write, flush, apply) positions synchronous standbys have
    /// confirmed; committers wait on `confirmed` for them to pass.
    released: Mutex<[Lsn; 3]>,
    confirmed: Condvar,
    receiver: Mutex<ReceiverStatus>,
    stopping: tokio::sync::watch::Sender<bool>,
    /// Set by `pg_promote()`: the receiver ends recovery.
    promote: tokio::sync::watch::Sender<bool>,
    /// `pg_wal_replay_pause()`: the receiver applies nothing.
    paused: tokio::sync::watch::Sender<bool>,
    /// `recovery_min_apply_delay`.
    apply_delay: tokio::sync::watch::Sender<Duration>,
    /// The configuration file's `standby_of:` (what `primary_conninfo`
    /// amends).
    standby_base: Option<StandbyOf>,
    /// The primary the receiver streams from; a change (a reload of
    /// `primary_conninfo`) makes it reconnect there.
    upstream: tokio::sync::watch::Sender<Option<StandbyOf>>,
    /// Set by `pgvshard_rejoin_as_standby()`: the server restarts.
    rejoin: tokio::sync::watch::Sender<bool>,
    /// WAL bytes sent to standbys since start.
    pub wal_sent_bytes: AtomicU64,
    /// WAL bytes replayed from a primary since start.
    pub wal_replayed_bytes: AtomicU64,
}

impl Default for Replication {
    fn default() -> Self {
        Replication::new(vec!["postgres".to_string()])
    }
}

impl Replication {
    /// A shard's state: `replication_users` may open replication
    /// connections; no synchronous standbys.
    pub fn new(replication_users: Vec<String>) -> Self {
        Replication {
            replication_users,
            senders: Mutex::new(Vec::new()),
            sync: None,
            sync_names: String::new(),
            released: Mutex::new([Lsn(0); 3]),
            confirmed: Condvar::new(),
            receiver: Mutex::new(ReceiverStatus::default()),
            stopping: tokio::sync::watch::Sender::new(false),
            promote: tokio::sync::watch::Sender::new(false),
            paused: tokio::sync::watch::Sender::new(false),
            apply_delay: tokio::sync::watch::Sender::new(Duration::ZERO),
            standby_base: None,
            upstream: tokio::sync::watch::Sender::new(None),
            rejoin: tokio::sync::watch::Sender::new(false),
            wal_sent_bytes: AtomicU64::new(0),
            wal_replayed_bytes: AtomicU64::new(0),
        }
    }

    /// Commits wait for the standbys `names` (`synchronous_standby_names`)
    /// names; an error names the setting.
    pub fn with_synchronous_standby_names(self, names: &str) -> Result<Self, String> {
        Ok(Replication {
            sync: SyncStandbys::parse(names)?,
            sync_names: names.to_string(),
            ..self
        })
    }

    /// A standby's recovery settings: `standby_of` from the configuration
    /// file, amended by `conf` (`postgresql.auto.conf`).
    pub fn with_recovery(self, standby_of: Option<StandbyOf>, conf: &AutoConf) -> Self {
        let r = Replication {
            standby_base: standby_of,
            ..self
        };
        r.apply_conf(conf);
        r
    }

    /// Applies `postgresql.auto.conf`: the apply delay, and the primary
    /// to stream from (a standby's receiver reconnects when it changed).
    pub fn apply_conf(&self, conf: &AutoConf) {
        self.apply_delay.send_if_modified(|d| {
            let new = conf.apply_delay();
            std::mem::replace(d, new) != new
        });
        let Some(base) = &self.standby_base else {
            return;
        };
        match conf.primary(base) {
            Ok(to) => {
                self.upstream.send_if_modified(|cur| {
                    let changed = cur.as_ref() != Some(&to);
                    *cur = Some(to);
                    changed
                });
            }
            Err(e) => tracing::error!(error = %e, "primary_conninfo not applied"),
        }
    }

    /// The primary the WAL receiver streams from now.
    pub fn upstream(&self) -> tokio::sync::watch::Receiver<Option<StandbyOf>> {
        self.upstream.subscribe()
    }

    /// Resolves once `pgvshard_rejoin_as_standby()` asks for a restart.
    pub async fn rejoin_requested(&self) {
        let mut rx = self.rejoin.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    /// May `user` open a replication connection?
    pub fn may_replicate(&self, user: &str) -> bool {
        self.replication_users.iter().any(|u| u == user)
    }

    /// Tells WAL senders and the receiver that the server is stopping.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// A receiver of the stop signal.
    pub fn subscribe_stop(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Asks the WAL receiver to end recovery (`pg_promote()`).
    pub fn request_promotion(&self) {
        self.promote.send_replace(true);
    }

    /// A receiver of promotion requests.
    pub fn subscribe_promote(&self) -> tokio::sync::watch::Receiver<bool> {
        self.promote.subscribe()
    }

    /// The WAL senders now (`pg_stat_replication`).
    pub fn senders(&self) -> Vec<Arc<WalSender>> {
        self.senders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn add_sender(&self, s: Arc<WalSender>) {
        self.senders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(s);
    }

    fn remove_sender(&self, s: &Arc<WalSender>) {
        self.senders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|x| !Arc::ptr_eq(x, s));
    }

    /// `synchronous_standby_names` as configured.
    pub fn synchronous_standby_names(&self) -> &str {
        &self.sync_names
    }

    /// Each sender's `(sync_priority, sync_state)`, in [`Replication::senders`]
    /// order, and the positions the synchronous standbys have confirmed.
    fn assess(&self, senders: &[Arc<WalSender>]) -> (Vec<(i32, &'static str)>, Option<[Lsn; 3]>) {
        let Some(rule) = &self.sync else {
            return (vec![(0, "async"); senders.len()], None);
        };
        let progress: Vec<SenderProgress> = senders.iter().map(|s| s.progress()).collect();
        let streaming: Vec<(usize, (&str, [Lsn; 3]))> = senders
            .iter()
            .zip(&progress)
            .enumerate()
            .filter(|(_, (_, p))| p.state == "streaming")
            .map(|(i, (s, p))| {
                let st = p.status;
                (
                    i,
                    (s.application_name.as_str(), [st.write, st.flush, st.apply]),
                )
            })
            .collect();
        let pairs: Vec<(&str, [Lsn; 3])> = streaming.iter().map(|(_, p)| *p).collect();
        let (states, released) = rule.assess(&pairs);
        let mut out: Vec<(i32, &'static str)> = senders
            .iter()
            .map(|s| {
                (
                    rule.priority(&s.application_name).map_or(0, |p| p as i32),
                    "async",
                )
            })
            .collect();
        for ((i, _), state) in streaming.iter().zip(states) {
            out[*i].1 = state;
        }
        (out, released)
    }

    /// Each sender's `(sync_priority, sync_state)` for `pg_stat_replication`.
    pub fn sync_states(&self, senders: &[Arc<WalSender>]) -> Vec<(i32, &'static str)> {
        self.assess(senders).0
    }

    /// Recomputes the confirmed positions after a status update or a
    /// standby's arrival or departure, and wakes waiting committers.
    fn recompute_sync(&self) {
        if self.sync.is_none() {
            return;
        }
        let (_, released) = self.assess(&self.senders());
        if let Some(r) = released {
            let mut held = self.released.lock().unwrap_or_else(|e| e.into_inner());
            for (h, n) in held.iter_mut().zip(r) {
                *h = (*h).max(n);
            }
            self.confirmed.notify_all();
        }
    }

    /// Blocks until the synchronous standbys confirm the commit ending at
    /// `lsn` as far as `level` asks (at once when no standby is named or
    /// the level does not wait). A cancel request ends the wait with
    /// PostgreSQL's WARNING for the client (the commit stays committed
    /// locally; `statement_timeout` does not end it, as in PostgreSQL);
    /// the server stopping ends it with FATAL 57P01.
    pub fn wait_synchronous(
        &self,
        lsn: Lsn,
        level: SyncLevel,
        cancel: &CancelSignal,
    ) -> Result<Option<PgError>, PgError> {
        let (Some(_), Some(k)) = (&self.sync, level.position()) else {
            return Ok(None);
        };
        let stopping = self.stopping.subscribe();
        let mut held = self.released.lock().unwrap_or_else(|e| e.into_inner());
        while held[k] < lsn {
            if *stopping.borrow() {
                return Err(PgError::admin_shutdown().with_detail(NOT_REPLICATED));
            }
            if cancel.canceled_by_user() {
                return Ok(Some(
                    PgError::new(
                        "01000",
                        "canceling wait for synchronous replication due to user request",
                    )
                    .with_severity(crate::wire::Severity::Warning)
                    .with_detail(NOT_REPLICATED),
                ));
            }
            held = self
                .confirmed
                .wait_timeout(held, Duration::from_millis(50))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        Ok(None)
    }

    /// The WAL receiver's state now (`pg_stat_wal_receiver`, the
    /// `pg_last_*` functions).
    pub fn receiver(&self) -> ReceiverStatus {
        self.receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn update_receiver(&self, f: impl FnOnce(&mut ReceiverStatus)) {
        f(&mut self.receiver.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// A standby's WAL receiver, as `pg_stat_wal_receiver` shows it.
#[derive(Debug, Clone, Default)]
pub struct ReceiverStatus {
    /// `streaming`, `starting`, `waiting` (for the primary), or empty
    /// before the receiver starts.
    pub status: &'static str,
    /// Where the current stream started.
    pub receive_start_lsn: Lsn,
    /// Received, written and flushed (`pg_last_wal_receive_lsn()`).
    pub flushed_lsn: Lsn,
    /// Applied (`pg_last_wal_replay_lsn()`).
    pub replayed_lsn: Lsn,
    /// The primary's send time of the last replayed transaction
    /// (`pg_last_xact_replay_timestamp()`; our commit records carry no
    /// time, the XLogData that brought the commit does).
    pub replay_time: Option<i64>,
    /// Send time of the last message from the primary.
    pub last_msg_send_time: Option<i64>,
    /// When it arrived.
    pub last_msg_receipt_time: Option<i64>,
    /// The primary's WAL end as last reported.
    pub latest_end_lsn: Lsn,
    /// When it was reported.
    pub latest_end_time: Option<i64>,
    /// The primary's host.
    pub sender_host: String,
    /// The primary's port.
    pub sender_port: u16,
    /// The connection's parameters, password left out.
    pub conninfo: String,
}

/// One WAL sender (a standby streaming from this server).
#[derive(Debug)]
pub struct WalSender {
    /// The session's pid.
    pub pid: i32,
    /// The user it logged in as.
    pub user: String,
    /// The standby's `application_name`.
    pub application_name: String,
    /// The standby's address.
    pub client_addr: Option<SocketAddr>,
    /// When the session started (µs since 2000).
    pub backend_start: i64,
    progress: Mutex<SenderProgress>,
}

/// What a WAL sender has sent and its standby has reported.
#[derive(Debug, Clone, Default)]
pub struct SenderProgress {
    /// `catchup` while behind, then `streaming`.
    pub state: &'static str,
    /// Sent up to.
    pub sent: Lsn,
    /// The standby's last status update.
    pub status: StandbyStatus,
    /// Write, flush and replay lag (from sending WAL to the standby
    /// reporting it written, flushed, applied).
    pub lags: [Option<Duration>; 3],
    /// When the last status update arrived (µs since 2000).
    pub reply_time: Option<i64>,
    /// (end LSN, when sent) of sends not yet applied by the standby.
    in_flight: std::collections::VecDeque<(Lsn, Instant)>,
}

impl WalSender {
    /// A sender's entry, before streaming.
    pub fn new(
        pid: i32,
        user: String,
        application_name: String,
        client_addr: Option<SocketAddr>,
    ) -> Self {
        WalSender {
            pid,
            user,
            application_name,
            client_addr,
            backend_start: protocol::pg_now(),
            progress: Mutex::new(SenderProgress {
                state: "startup",
                ..SenderProgress::default()
            }),
        }
    }

    /// Its progress now.
    pub fn progress(&self) -> SenderProgress {
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut SenderProgress)) {
        f(&mut self.progress.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// WAL up to `end` was sent; `caught_up` when that is all there is.
    fn sent(&self, end: Lsn, caught_up: bool) {
        self.update(|p| {
            p.sent = end;
            if caught_up || p.state == "streaming" {
                p.state = "streaming";
            } else {
                p.state = "catchup";
            }
            p.in_flight.push_back((end, Instant::now()));
            // A standby that never reports keeps a bounded history.
            if p.in_flight.len() > 4096 {
                p.in_flight.pop_front();
            }
        });
    }

    /// Records a standby status update and the lags it shows.
    fn reported(&self, status: StandbyStatus) {
        self.update(|p| {
            let now = Instant::now();
            for (lag, at) in p
                .lags
                .iter_mut()
                .zip([status.write, status.flush, status.apply])
            {
                if let Some((_, sent)) = p.in_flight.iter().rev().find(|(end, _)| *end <= at) {
                    *lag = Some(now - *sent);
                }
            }
            while p
                .in_flight
                .front()
                .is_some_and(|(end, _)| *end <= status.apply)
            {
                p.in_flight.pop_front();
            }
            p.status = status;
            p.reply_time = Some(protocol::pg_now());
        });
    }
}
