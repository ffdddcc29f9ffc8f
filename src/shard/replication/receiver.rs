//! The standby's side: the base copy that fills an empty data directory,
//! and the WAL receiver that streams from the primary and replays.
//!
//! A data directory without `wal/` has no usable copy yet (never
//! started, or a base copy cut short): its leftovers are removed and a
//! new copy is taken (BASE_BACKUP) while the primary keeps serving
//! writes; `wal/` is created last, so a copy is whole once it exists.
//!
//! The receiver connects, checks the primary's system identifier against
//! its own, and streams from the end of its WAL. Frames collect until a
//! commit completes a transaction; each XLogData's whole transactions are
//! applied in one batch (one write lock, one fsync) and the new position
//! reported at once. Any error ends the stream; the receiver reconnects
//! after [`RETRY`] until the server stops.

use super::protocol::{parse_lsn, pg_now, StandbyStatus, StreamMessage};
use super::recovery_conf::{self, PROMOTED};
use super::upstream::{refused, StandbyOf, Upstream};
use super::Replication;
use crate::shard::storage::checkpoint::MANIFEST;
use crate::shard::storage::identity::IDENTITY;
use crate::shard::storage::timeline::{Timeline, TIMELINE};
use crate::shard::storage::wal::record::{parse_frame, Frame, WalRecord};
use crate::shard::storage::{Database, Lsn, ReplicatedTxn};
use crate::wire::backend_messages::BackendMessage;
use crate::wire::PgError;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Wait before reconnecting after the stream ended.
const RETRY: Duration = Duration::from_millis(500);
/// Interval of status updates when nothing else prompts one.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// Makes `data` hold a copy of the primary's, taking a base copy when it
/// has none yet.
pub async fn prepare_data_dir(data: &Path, to: &StandbyOf) -> Result<(), String> {
    if data.join("wal").is_dir() {
        return Ok(());
    }
    let fail = |e: &dyn std::fmt::Display| format!("base copy into {}: {e}", data.display());
    std::fs::create_dir_all(data).map_err(|e| fail(&e))?;
    remove_leftovers(data).map_err(|e| fail(&e))?;
    tracing::info!(primary = %format!("{}:{}", to.host, to.port), "taking a base copy");
    let lsn = base_copy(data, to).await.map_err(|e| fail(&e))?;
    std::fs::create_dir_all(data.join("wal"))
        .and_then(|()| std::fs::File::open(data)?.sync_all())
        .map_err(|e| fail(&e))?;
    tracing::info!(%lsn, "base copy complete");
    Ok(())
}

/// Removes what a base copy cut short left behind.
fn remove_leftovers(data: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(data)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("ckpt-") {
            std::fs::remove_dir_all(entry.path())?;
        } else if [MANIFEST, IDENTITY, TIMELINE, PROMOTED]
            .iter()
            .any(|n| name.starts_with(n))
        {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// A path a base copy may write: `IDENTITY`, `MANIFEST` or a file of a
/// checkpoint directory.
fn backup_path_ok(path: &str) -> bool {
    match path.split_once('/') {
        None => [IDENTITY, MANIFEST, TIMELINE].contains(&path),
        Some((dir, file)) => {
            dir.starts_with("ckpt-")
                && !file.is_empty()
                && !file.contains('/')
                && !file.starts_with('.')
                && !dir.contains("..")
        }
    }
}

/// Runs BASE_BACKUP and writes the files it sends; returns its LSN.
async fn base_copy(data: &Path, to: &StandbyOf) -> Result<Lsn, PgError> {
    let mut up = Upstream::connect(to).await?;
    up.send_query("BASE_BACKUP").await?;
    let mut lsn = None;
    let mut file: Option<(String, Vec<u8>)> = None;
    let mut error = None;
    loop {
        match up.read().await? {
            BackendMessage::DataRow(row) => {
                lsn = super::upstream::text_fields(&row)?
                    .first()
                    .cloned()
                    .flatten()
                    .and_then(|t| parse_lsn(&t));
            }
            BackendMessage::CopyData(chunk) => match chunk.first() {
                Some(b'n') => {
                    if let Some((path, bytes)) = file.take() {
                        write_backup_file(data, &path, &bytes)?;
                    }
                    let name = String::from_utf8_lossy(&chunk[1..])
                        .trim_end_matches('\0')
                        .to_string();
                    if !backup_path_ok(&name) {
                        return Err(PgError::protocol_violation(format!(
                            "{} sent a base copy file with a bad name: {name:?}",
                            up.name()
                        )));
                    }
                    file = Some((name, Vec::new()));
                }
                Some(b'd') => match &mut file {
                    Some((_, bytes)) => bytes.extend_from_slice(&chunk[1..]),
                    None => {
                        return Err(PgError::protocol_violation("base copy data before a file"))
                    }
                },
                _ => return Err(PgError::protocol_violation("unknown base copy message")),
            },
            BackendMessage::Error(e) => error = Some(refused(&up.name(), e)),
            BackendMessage::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    if let Some(e) = error {
        return Err(e);
    }
    if let Some((path, bytes)) = file.take() {
        write_backup_file(data, &path, &bytes)?;
    }
    lsn.ok_or_else(|| PgError::protocol_violation("BASE_BACKUP sent no start position"))
}

/// Writes one file of a base copy (synced; renamed into place).
fn write_backup_file(data: &Path, rel: &str, bytes: &[u8]) -> Result<(), PgError> {
    let path = data.join(rel);
    let io = |e: std::io::Error| PgError::internal(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

/// Name of the file whose appearance in the data directory promotes a
/// standby (`pgvshard shard promote --data-dir DIR` writes it).
pub const PROMOTE_FILE: &str = "promote";

/// What ended the receiver's wait between streams.
enum Next {
    Retry,
    Promote,
    Stop,
}

/// Waits `RETRY`, or less when promotion is asked or the server stops.
async fn pause(replication: &Replication, data: &Path) -> Next {
    let mut stop = replication.subscribe_stop();
    let mut promote = replication.subscribe_promote();
    let mut check = tokio::time::interval(Duration::from_millis(100));
    let sleep = tokio::time::sleep(RETRY);
    tokio::pin!(sleep);
    loop {
        if *stop.borrow_and_update() {
            return Next::Stop;
        }
        if *promote.borrow_and_update() || data.join(PROMOTE_FILE).exists() {
            return Next::Promote;
        }
        tokio::select! {
            () = &mut sleep => return Next::Retry,
            _ = stop.changed() => {}
            _ = promote.changed() => {}
            _ = check.tick() => {}
        }
    }
}

/// Starts the WAL receiver of the standby whose data directory is
/// `data`, streaming from the primary `replication` names (it reconnects
/// when a reload names another); it runs until the server stops or the
/// standby is promoted.
pub fn spawn(
    db: Arc<Database>,
    replication: Arc<Replication>,
    data: std::path::PathBuf,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let upstream = replication.upstream();
        replication.update_receiver(|r| {
            r.replayed_lsn = db.current_lsn();
            r.flushed_lsn = db.flushed_lsn();
        });
        loop {
            let Some(to) = upstream.borrow().clone() else {
                tracing::error!("a standby without a primary to stream from");
                break;
            };
            replication.update_receiver(|r| {
                r.status = "starting";
                r.sender_host = to.host.clone();
                r.sender_port = to.port;
                r.conninfo = to.conninfo();
            });
            // The stream runs while `pause` is not yet waiting: streaming
            // ends as soon as promotion is asked or the server stops.
            let next = tokio::select! {
                r = stream(&db, &replication, &to) => {
                    replication.update_receiver(|r| r.status = "waiting");
                    match r {
                        // Re-pointed: connect to the new primary at once.
                        Ok(Ended::Repointed) => Next::Retry,
                        Ok(Ended::ByPrimary) => pause(&replication, &data).await,
                        Err(e) => {
                            report(&e);
                            pause(&replication, &data).await
                        }
                    }
                }
                n = wait_for_promotion_or_stop(&replication, &data) => n,
            };
            match next {
                Next::Retry => continue,
                Next::Stop => break,
                Next::Promote => {
                    promote(&db, &replication, &data).await;
                    return;
                }
            }
        }
        replication.update_receiver(|r| r.status = "stopping");
    })
}

/// Resolves once promotion is asked or the server stops (never `Retry`).
async fn wait_for_promotion_or_stop(replication: &Replication, data: &Path) -> Next {
    loop {
        match pause(replication, data).await {
            Next::Retry => continue,
            other => return other,
        }
    }
}

/// Logs why a stream ended, saying clearly what a standby too far behind
/// must do.
fn report(e: &PgError) {
    if e.code == "58P01" {
        tracing::error!(
            error = %e.message,
            "this standby is too far behind its primary: the WAL it needs was removed there; \
             start it on an empty data directory to take a fresh base copy \
             (or raise wal_keep_mb on the primary)"
        );
    } else {
        tracing::warn!(error = %e.message, "WAL receiver: stream from the primary ended");
    }
}

/// Ends recovery: a new timeline, then writes are accepted. The data
/// directory records the promotion first ([`recovery_conf::PROMOTED`]),
/// so that no restart makes this server follow its old primary again.
async fn promote(db: &Arc<Database>, replication: &Replication, data: &Path) {
    let _ = std::fs::remove_file(data.join(PROMOTE_FILE));
    let next = db.timeline().current + 1;
    if let Err(e) = recovery_conf::set_promoted(data, Some(next)) {
        tracing::error!(error = %e, "promotion failed: cannot record it in the data directory");
        return;
    }
    let db2 = Arc::clone(db);
    match tokio::task::spawn_blocking(move || db2.promote()).await {
        Ok(Ok(timeline)) => {
            tracing::info!(timeline, lsn = %db.current_lsn(), "promoted: this server is now a primary");
            // As PostgreSQL: a restart keeps it a primary.
            if let Err(e) = recovery_conf::set_standby_signal(data, false) {
                tracing::error!(error = %e, "cannot remove standby.signal");
            }
            replication.update_receiver(|r| r.status = "");
        }
        Ok(Err(e)) => tracing::error!(error = %e, "promotion failed"),
        Err(e) => tracing::error!(error = %e, "promotion failed"),
    }
}

/// How this server's WAL relates to its primary's.
enum Lineage {
    /// Same timeline.
    Same,
    /// The primary was promoted after this server's WAL ends: follow it
    /// onto its timeline.
    Follow(Timeline),
    /// This server has WAL the primary's history does not (why).
    Diverged(String),
    /// The primary is on an older timeline than this server (an old
    /// primary come back, say): never followed, never copied.
    Older(String),
}

/// Checks the primary's system identifier and timeline against ours.
async fn lineage(up: &mut Upstream, db: &Database) -> Result<Lineage, PgError> {
    let rows = up.query("IDENTIFY_SYSTEM").await?;
    let field = |i: usize| rows.first().and_then(|r| r.get(i).cloned().flatten());
    let theirs: Option<u64> = field(0).and_then(|t| t.parse().ok());
    let ours = db.system_identifier();
    if theirs != Some(ours) {
        return Err(PgError::new(
            "XX000",
            "database system identifier differs between the primary and standby",
        )
        .with_detail(format!(
            "The primary's identifier is {}, the standby's identifier is {ours}.",
            theirs.map_or_else(|| "unknown".into(), |t| t.to_string())
        )));
    }
    let their_tli: u32 = field(1)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| PgError::protocol_violation("IDENTIFY_SYSTEM sent no timeline"))?;
    let ours = db.timeline();
    let end = db.current_lsn();
    if their_tli == ours.current {
        return Ok(Lineage::Same);
    }
    if their_tli < ours.current {
        return Ok(Lineage::Older(format!(
            "{} is on timeline {their_tli}, older than this server's timeline {}: \
             not following it (an old primary?); point primary_conninfo at the current primary",
            up.name(),
            ours.current
        )));
    }
    let rows = up.query(&format!("TIMELINE_HISTORY {their_tli}")).await?;
    let history = rows
        .first()
        .and_then(|r| r.get(1).cloned().flatten())
        .and_then(|t| Timeline::parse(&t))
        .ok_or_else(|| PgError::protocol_violation("TIMELINE_HISTORY sent no history"))?;
    Ok(if history.contains(ours.current, end) {
        Lineage::Follow(history)
    } else {
        Lineage::Diverged(format!(
            "this server's WAL on timeline {} goes to {end}, past {} where the primary's timeline {their_tli} forked from it",
            ours.current,
            history.end_of(ours.current).map_or_else(|| "the start".into(), |l| l.to_string())
        ))
    })
}

/// At start: whether this data directory's WAL diverged from the
/// primary's (why), following a promotion it can follow. An unreachable
/// primary, or one on an older timeline (which the WAL receiver then
/// refuses to follow), decides nothing (`None`).
pub async fn diverged(db: &Database, to: &StandbyOf) -> Result<Option<String>, String> {
    let mut up = match Upstream::connect(to).await {
        Ok(up) => up,
        Err(e) => {
            tracing::warn!(error = %e.message, "cannot reach the primary to check the timeline");
            return Ok(None);
        }
    };
    match lineage(&mut up, db).await.map_err(|e| e.message)? {
        Lineage::Same => Ok(None),
        Lineage::Follow(t) => {
            tracing::info!(
                timeline = t.current,
                "following the primary onto its timeline"
            );
            db.adopt_timeline(t).map_err(|e| e.to_string())?;
            Ok(None)
        }
        Lineage::Diverged(why) => Ok(Some(why)),
        Lineage::Older(why) => {
            tracing::error!(reason = %why, "keeping this data directory as it is");
            Ok(None)
        }
    }
}

/// Removes a standby's copy so that a fresh base copy replaces it.
pub fn discard_copy(data: &Path) -> std::io::Result<()> {
    remove_leftovers(data)?;
    match std::fs::remove_dir_all(data.join("wal")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whole transactions out of a chunk of frames; an unfinished one stays
/// in `pending`.
fn split_transactions(
    pending: &mut ReplicatedTxn,
    data: &[u8],
) -> Result<Vec<ReplicatedTxn>, PgError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let Frame::Whole(body, n) = parse_frame(&data[at..]) else {
            return Err(PgError::protocol_violation(
                "the primary sent a damaged or partial WAL frame",
            ));
        };
        let rec = WalRecord::decode(body).map_err(|e| {
            PgError::protocol_violation(format!("the primary sent an undecodable WAL record: {e}"))
        })?;
        pending.frames.extend_from_slice(&data[at..at + n]);
        at += n;
        if rec == WalRecord::Commit {
            out.push(std::mem::take(pending));
        } else {
            pending.records.push(rec);
        }
    }
    Ok(out)
}

/// How a stream ended without an error.
enum Ended {
    /// The primary ended it.
    ByPrimary,
    /// A reload named another primary.
    Repointed,
}

/// Most bytes of received transactions held unapplied (replay paused or
/// delayed) before the receiver stops reading from the primary.
const MAX_HELD: usize = 64 << 20;

/// Transactions received and not yet applied, each with the primary's
/// send time (µs since 2000) of the XLogData that completed it.
#[derive(Default)]
struct Held {
    txns: std::collections::VecDeque<(ReplicatedTxn, i64)>,
    bytes: usize,
}

impl Held {
    fn push(&mut self, txn: ReplicatedTxn, time: i64) {
        self.bytes += txn.frames.len();
        self.txns.push_back((txn, time));
    }

    /// How long until the oldest may be applied (`None`: nothing held, or
    /// replay paused): `recovery_min_apply_delay` after it was sent.
    fn wait(&self, paused: bool, delay: Duration) -> Option<Duration> {
        let (_, sent) = self.txns.front().filter(|_| !paused)?;
        let due = sent.saturating_add(i64::try_from(delay.as_micros()).unwrap_or(i64::MAX));
        Some(Duration::from_micros(
            u64::try_from(due.saturating_sub(pg_now())).unwrap_or(0),
        ))
    }

    /// The transactions due now, oldest first.
    fn take_due(&mut self, paused: bool, delay: Duration) -> Vec<(ReplicatedTxn, i64)> {
        let mut out = Vec::new();
        while self.wait(paused, delay) == Some(Duration::ZERO) {
            if let Some((txn, time)) = self.txns.pop_front() {
                self.bytes -= txn.frames.len();
                out.push((txn, time));
            }
        }
        out
    }
}

/// One connection's stream, until it fails, the primary ends it or a
/// reload points the standby elsewhere. Whole transactions are applied
/// as they arrive, unless replay is paused (`pg_wal_replay_pause()`) or
/// delayed (`recovery_min_apply_delay`): they are held until then, and
/// reported to the primary as received only once applied.
async fn stream(
    db: &Arc<Database>,
    replication: &Replication,
    to: &StandbyOf,
) -> Result<Ended, PgError> {
    let mut repointed = replication.upstream();
    repointed.mark_unchanged();
    let mut up = Upstream::connect(to).await?;
    match lineage(&mut up, db).await? {
        Lineage::Same => {}
        Lineage::Follow(t) => {
            tracing::info!(timeline = t.current, "following the primary onto its timeline");
            db.adopt_timeline(t)
                .map_err(crate::shard::executor::storage_error)?;
        }
        Lineage::Diverged(why) => {
            return Err(PgError::new(
                "XX000",
                format!("this standby diverged from its primary ({why}); restart it to take a fresh base copy"),
            ))
        }
        Lineage::Older(why) => return Err(PgError::new("XX000", why)),
    }
    let start = db.current_lsn();
    let timeline = db.timeline().current;
    up.send_query(&format!(
        "START_REPLICATION PHYSICAL {start} TIMELINE {timeline}"
    ))
    .await?;
    loop {
        match up.read().await? {
            BackendMessage::CopyBoth => break,
            BackendMessage::Error(e) => return Err(refused(&up.name(), e)),
            _ => {}
        }
    }
    tracing::info!(from = %start, primary = %up.name(), "streaming from the primary");
    replication.update_receiver(|r| {
        r.status = "streaming";
        r.receive_start_lsn = start;
    });
    let mut pending = ReplicatedTxn::default();
    let mut held = Held::default();
    let mut paused = replication.paused.subscribe();
    let mut delay = replication.apply_delay.subscribe();
    let mut expected = start;
    let mut replayed = start;
    let mut timer = tokio::time::interval(STATUS_INTERVAL);
    loop {
        let (is_paused, apply_delay) = (*paused.borrow_and_update(), *delay.borrow_and_update());
        let wait = held.wait(is_paused, apply_delay);
        tokio::select! {
            m = up.read(), if held.bytes < MAX_HELD => {
                let payload = match m? {
                    BackendMessage::CopyData(p) => p,
                    BackendMessage::Error(e) => return Err(refused(&up.name(), e)),
                    BackendMessage::Ack(b'c') => return Ok(Ended::ByPrimary),
                    _ => continue,
                };
                let now = pg_now();
                match StreamMessage::decode(payload)? {
                    StreamMessage::XLogData {
                        start,
                        end,
                        time,
                        data,
                    } => {
                        if start != expected {
                            return Err(PgError::protocol_violation(format!(
                                "the primary sent WAL at {start}, expected {expected}"
                            )));
                        }
                        expected = Lsn(start.0 + data.len() as u64);
                        replication.update_receiver(|r| {
                            r.last_msg_send_time = Some(time);
                            r.last_msg_receipt_time = Some(now);
                            r.latest_end_lsn = end;
                            r.latest_end_time = Some(time);
                        });
                        for txn in split_transactions(&mut pending, &data)? {
                            held.push(txn, time);
                        }
                    }
                    StreamMessage::Keepalive { end, time, reply } => {
                        replication.update_receiver(|r| {
                            r.last_msg_send_time = Some(time);
                            r.last_msg_receipt_time = Some(now);
                            r.latest_end_lsn = end;
                            r.latest_end_time = Some(time);
                        });
                        if reply {
                            send_status(&mut up, replayed).await?;
                        }
                    }
                    StreamMessage::Status(_) | StreamMessage::Feedback => {}
                }
            }
            _ = timer.tick() => send_status(&mut up, replayed).await?,
            () = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => {}
            _ = paused.changed() => {}
            _ = delay.changed() => {}
            _ = repointed.changed() => return Ok(Ended::Repointed),
        }
        let due = held.take_due(*paused.borrow(), *delay.borrow());
        let Some(&(_, time)) = due.last() else {
            continue;
        };
        let txns = due.into_iter().map(|(t, _)| t).collect();
        let db2 = Arc::clone(db);
        let end = tokio::task::spawn_blocking(move || db2.apply_replicated(txns))
            .await
            .map_err(|e| PgError::internal(format!("replay task failed: {e}")))?
            .map_err(crate::shard::executor::storage_error)?;
        replication
            .wal_replayed_bytes
            .fetch_add(end.0 - replayed.0, Ordering::Relaxed);
        replayed = end;
        replication.update_receiver(|r| {
            r.flushed_lsn = end;
            r.replayed_lsn = end;
            r.replay_time = Some(time);
        });
        send_status(&mut up, replayed).await?;
    }
}

/// A status update: written, flushed and applied up to `at`.
async fn send_status(up: &mut Upstream, at: Lsn) -> Result<(), PgError> {
    let status = StreamMessage::Status(StandbyStatus {
        write: at,
        flush: at,
        apply: at,
        time: pg_now(),
        reply: false,
    });
    up.copy_data(&status.encode());
    up.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_copy_paths_stay_inside_the_data_directory() {
        assert!(backup_path_ok("MANIFEST"));
        assert!(backup_path_ok("ckpt-0000000000000010/t16384.rows"));
        assert!(!backup_path_ok("../etc/passwd"));
        assert!(!backup_path_ok("ckpt-1/../../x"));
        assert!(!backup_path_ok("ckpt-1/.."));
        assert!(!backup_path_ok("wal/0000.wal"));
    }

    #[test]
    fn transactions_split_at_commits_across_chunks() {
        let mut bytes = Vec::new();
        WalRecord::Truncate { table: 1 }.encode(&mut bytes);
        let first = bytes.len();
        WalRecord::Commit.encode(&mut bytes);
        WalRecord::Truncate { table: 2 }.encode(&mut bytes);
        let mut pending = ReplicatedTxn::default();
        let txns = split_transactions(&mut pending, &bytes[..first]).unwrap();
        assert!(txns.is_empty());
        let txns = split_transactions(&mut pending, &bytes[first..]).unwrap();
        assert_eq!(txns.len(), 1);
        assert_eq!(txns[0].records, vec![WalRecord::Truncate { table: 1 }]);
        assert_eq!(pending.records, vec![WalRecord::Truncate { table: 2 }]);
        assert!(split_transactions(&mut pending, &bytes[..3]).is_err());
    }
}
