//! The primary's side of a replication connection (PostgreSQL's WAL
//! sender): IDENTIFY_SYSTEM, BASE_BACKUP and START_REPLICATION.
//!
//! Streaming sends durable WAL only: it reads up to the WAL writer's
//! flushed position and wakes when an fsync moves it (nothing is done for
//! standbys on the commit path itself). It reads status updates between
//! sends, sends a keepalive each second it has nothing else to say, and
//! ends when the standby sends CopyDone, goes silent for
//! [`SENDER_TIMEOUT`], or the server stops.

use super::protocol::{pg_now, Command, StreamMessage};
use super::{Replication, WalSender};
use crate::shard::storage::timeline::Timeline;
use crate::shard::storage::{Database, Lsn, StorageError};
use crate::wire::types::oid;
use crate::wire::{FieldDescription, PgError, Responder, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most WAL bytes in one XLogData message (a larger frame goes alone).
const CHUNK: usize = 128 * 1024;
/// Interval of keepalives while there is nothing to send.
const KEEPALIVE: Duration = Duration::from_secs(1);
/// A standby silent this long is disconnected (`wal_sender_timeout`).
pub const SENDER_TIMEOUT: Duration = Duration::from_secs(60);

fn storage(e: StorageError) -> PgError {
    crate::shard::executor::storage_error(e)
}

fn join(e: tokio::task::JoinError) -> PgError {
    PgError::internal(format!("WAL sender task failed: {e}"))
}

/// A replication connection's command handler.
#[derive(Debug)]
pub struct SenderSession {
    db: Arc<Database>,
    replication: Arc<Replication>,
}

impl SenderSession {
    /// A handler for one replication connection.
    pub fn new(db: Arc<Database>, replication: Arc<Replication>) -> Self {
        SenderSession { db, replication }
    }

    /// Runs one replication command.
    pub async fn command(&mut self, sql: &str, out: &mut Responder<'_>) -> Result<(), PgError> {
        match super::protocol::parse_command(sql)? {
            Command::IdentifySystem => {
                out.row_description(&FieldDescription::builtins(&[
                    ("systemid", oid::TEXT),
                    ("timeline", oid::INT4),
                    ("xlogpos", oid::TEXT),
                    ("dbname", oid::TEXT),
                ]));
                let text = |s: String| Some(Value::Text(s));
                out.row(&[
                    text(self.db.system_identifier().to_string()),
                    Some(Value::Int4(self.db.timeline().current as i32)),
                    text(self.db.flushed_lsn().to_string()),
                    None,
                ])
                .await?;
                out.complete("IDENTIFY_SYSTEM");
                Ok(())
            }
            Command::BaseBackup => self.base_backup(out).await,
            Command::TimelineHistory(t) => {
                let ours = self.db.timeline();
                if t != ours.current && ours.end_of(t).is_none() {
                    return Err(PgError::new(
                        "58P01",
                        format!(
                            "could not open file \"{t:08X}.history\": No such file or directory"
                        ),
                    ));
                }
                let history = Timeline {
                    current: t,
                    history: ours
                        .history
                        .into_iter()
                        .take_while(|(id, _)| *id < t)
                        .collect(),
                };
                out.row_description(&FieldDescription::builtins(&[
                    ("filename", oid::TEXT),
                    ("content", oid::TEXT),
                ]));
                out.row(&[
                    Some(Value::Text(format!("{t:08X}.history"))),
                    Some(Value::Text(history.to_text())),
                ])
                .await?;
                out.complete("TIMELINE_HISTORY");
                Ok(())
            }
            Command::StartReplication { start, timeline } => {
                let ours = self.db.timeline();
                if let Some(t) = timeline.filter(|&t| !ours.contains(t, start)) {
                    return Err(PgError::internal(format!(
                        "requested timeline {t} is not in this server's history"
                    )));
                }
                let flushed = self.db.flushed_lsn();
                if start > flushed {
                    return Err(PgError::internal(format!(
                        "requested starting point {start} is ahead of the WAL flush position of this server {flushed}"
                    )));
                }
                let session = out.session();
                let me = Arc::new(WalSender::new(
                    session.pid,
                    session.user.clone(),
                    session.show("application_name").unwrap_or_default(),
                    session.peer,
                ));
                self.replication.add_sender(Arc::clone(&me));
                let result = self.stream(start, &me, out).await;
                self.replication.remove_sender(&me);
                self.replication.recompute_sync();
                result?;
                out.complete("START_REPLICATION");
                Ok(())
            }
        }
    }

    /// BASE_BACKUP: a result set with the start LSN and timeline, then the
    /// checkpoint's files in COPY OUT: per file a CopyData `n` + its path +
    /// NUL, then CopyData `d` + bytes.
    async fn base_backup(&mut self, out: &mut Responder<'_>) -> Result<(), PgError> {
        let db = Arc::clone(&self.db);
        let backup = tokio::task::spawn_blocking(move || db.base_backup())
            .await
            .map_err(join)?
            .map_err(storage)?;
        out.row_description(&FieldDescription::builtins(&[
            ("recptr", oid::TEXT),
            ("tli", oid::INT8),
        ]));
        out.row(&[
            Some(Value::Text(backup.lsn.to_string())),
            Some(Value::Int8(i64::from(self.db.timeline().current))),
        ])
        .await?;
        out.complete("SELECT 1");
        let mut copy = out.copy_out(crate::wire::CopyFormat::Binary, 0);
        for (path, bytes) in &backup.files {
            let mut head = vec![b'n'];
            head.extend_from_slice(path.as_bytes());
            head.push(0);
            copy.send(&head).await?;
            for chunk in bytes.chunks(CHUNK) {
                let mut msg = Vec::with_capacity(chunk.len() + 1);
                msg.push(b'd');
                msg.extend_from_slice(chunk);
                copy.send(&msg).await?;
            }
        }
        copy.finish();
        out.complete("BASE_BACKUP");
        tracing::info!(lsn = %backup.lsn, files = backup.files.len(), "base backup sent");
        Ok(())
    }

    /// Copy-both streaming from `start` until the standby ends it.
    async fn stream(
        &self,
        start: Lsn,
        me: &Arc<WalSender>,
        out: &mut Responder<'_>,
    ) -> Result<(), PgError> {
        let hold = self.db.hold_wal(start);
        // The first read tells a standby too far behind (58P01) before
        // copy-both mode starts.
        let (db, upto) = (Arc::clone(&self.db), self.db.flushed_lsn());
        tokio::task::spawn_blocking(move || db.read_wal(start, upto, 1))
            .await
            .map_err(join)?
            .map_err(storage)?;
        let mut flushed = self.db.subscribe_flushed();
        let mut stopping = self.replication.subscribe_stop();
        let mut copy = out.copy_both().await?;
        let mut sent = start;
        let mut heard = Instant::now();
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        me.sent(sent, sent >= self.db.flushed_lsn());
        tracing::info!(from = %start, standby = %me.application_name, "streaming WAL");
        loop {
            let upto = *flushed.borrow_and_update();
            let behind = sent < upto;
            tokio::select! {
                biased;
                msg = copy.recv() => {
                    let Some(payload) = msg? else {
                        copy.finish();
                        return Ok(());
                    };
                    heard = Instant::now();
                    if let StreamMessage::Status(status) = StreamMessage::decode(payload)? {
                        me.reported(status);
                        hold.advance(status.flush.min(sent));
                        self.replication.recompute_sync();
                        if status.reply {
                            let k = StreamMessage::Keepalive { end: upto, time: pg_now(), reply: false };
                            copy.send(&k.encode()).await?;
                            copy.flush().await?;
                        }
                    }
                }
                _ = stopping.changed() => {
                    if *stopping.borrow() {
                        copy.flush().await?;
                        return Err(PgError::admin_shutdown());
                    }
                }
                () = std::future::ready(()), if behind => {
                    let db = Arc::clone(&self.db);
                    let data = tokio::task::spawn_blocking(move || db.read_wal(sent, upto, CHUNK))
                        .await
                        .map_err(join)?
                        .map_err(storage)?;
                    let len = data.len() as u64;
                    let msg = StreamMessage::XLogData {
                        start: sent,
                        end: upto,
                        time: pg_now(),
                        data: data.into(),
                    };
                    sent = Lsn(sent.0 + len);
                    self.replication.wal_sent_bytes.fetch_add(len, Ordering::Relaxed);
                    copy.send(&msg.encode()).await?;
                    me.sent(sent, sent >= upto);
                    if sent >= upto {
                        copy.flush().await?;
                    }
                }
                changed = flushed.changed() => {
                    if changed.is_err() {
                        return Err(PgError::admin_shutdown());
                    }
                }
                _ = keepalive.tick() => {
                    if heard.elapsed() > SENDER_TIMEOUT {
                        return Err(PgError::connection_lost(
                            "terminating walsender process due to replication timeout",
                        ));
                    }
                    let k = StreamMessage::Keepalive { end: upto, time: pg_now(), reply: false };
                    copy.send(&k.encode()).await?;
                    copy.flush().await?;
                }
            }
        }
    }
}
