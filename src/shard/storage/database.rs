//! [`Database`]: a shard's tables, opened from a data directory, changed
//! only by committing transactions.
//!
//! Concurrency: one `RwLock` over all tables. Readers (statements) hold it
//! shared for as long as they read. A commit holds it exclusively while it
//! checks its write set, applies it in memory and appends its WAL records —
//! so WAL order is apply order and a reader sees either none or all of a
//! transaction — then releases it and waits for the fsync (group commit).
//! A single lock (rather than one per table) keeps multi-table transactions
//! and DDL atomic without lock ordering.
//!
//! Durability before visibility: [`Database::read`] waits, with the read
//! lock held, until the WAL is on disk up to the last applied synchronous
//! commit. A reader therefore never sees a synchronous commit a crash could
//! take back (it waits for that commit's fsync, usually already under way),
//! and after a failed fsync it gets the WAL's 58030 instead of data that may
//! be lost. CREATE INDEX builds under the
//! read lock before its commit (reads go on; a commit waiting for the
//! write lock meanwhile holds new readers back, as std's RwLock prefers
//! writers), and checkpoints hold the read lock while they write.
//!
//! Asynchronous commits (`synchronous_commit = off`, as PostgreSQL's): the
//! commit returns once applied and appended, without an fsync; readers see
//! it at once; the WAL writer thread flushes the WAL every
//! `wal_writer_delay` (200 ms by default). A crash of the machine may
//! therefore take back the asynchronous commits of about the last
//! `3 × wal_writer_delay`, and nothing else, because the WAL is one
//! ordered stream and what survives a crash is a prefix of it:
//! - a synchronous commit (or PREPARE / COMMIT PREPARED, which always
//!   flush) fsyncs all WAL before it, so an asynchronous commit it may
//!   have read is durable first: nothing durable depends on a lost commit;
//! - recovery replays the surviving prefix and cuts a torn tail, so the
//!   tables are those of a point in commit order, never a mix;
//! - checkpoints flush the WAL up to their LSN before their manifest;
//! - WAL senders stream only flushed WAL, so a standby never holds a
//!   commit its primary may lose (the primary could not follow it then);
//!   asynchronous commits reach standbys after the next flush.
//!
//! What is lost is what readers may have seen: a client that read an
//! asynchronous commit and acted outside the database may find it gone
//! after a crash, as with PostgreSQL's. The server process dying alone
//! loses nothing: appended WAL is in the kernel's page cache.

use super::checkpoint;
use super::error::{Result, StorageError};
use super::identity;
use super::prepared::{Footprint, PrepareRecord, MAX_GID_BYTES};
use super::recovery::{recover, RecoveryReport};
use super::table::TableIndex;
use super::tables::{Tables, Undo};
use super::timeline::{Timeline, TIMELINE};
use super::txn::{Change, Transaction};
use super::wal::reader::remove_before;
use super::wal::record::WalRecord;
use super::wal::stream::read_frames;
use super::wal::writer::{CommitMode, WalWriter};
use super::wal::Lsn;
use crate::metrics::StorageTimings;
use ann::BuildProgress;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a write ends: what [`Database::write`] logs after checking it.
enum Ending {
    /// A plain commit of these changes.
    Commit(Vec<Change>),
    /// `PREPARE TRANSACTION`.
    Prepare(PrepareRecord),
    /// `COMMIT PREPARED 'gid'`.
    CommitPrepared(String),
    /// `ROLLBACK PREPARED 'gid'`.
    RollbackPrepared(String),
}

/// Records applied to the tables under the write lock, their undo, and
/// their WAL frames.
struct Logged<'a> {
    tables: &'a mut Tables,
    progress: &'a BuildProgress,
    undo: Vec<Undo>,
    frames: Vec<u8>,
}

impl Logged<'_> {
    fn apply(&mut self, rec: WalRecord, prebuilt: Option<TableIndex>) -> Result<()> {
        self.undo
            .push(self.tables.apply(&rec, self.progress, prebuilt)?);
        rec.encode(&mut self.frames);
        Ok(())
    }

    /// Undoes everything applied so far (newest first) and forgets its frames.
    fn take_back(&mut self) {
        for u in self.undo.drain(..).rev() {
            self.tables.undo(u);
        }
        self.frames.clear();
    }
}

/// Records from which a commit is applied and logged by two threads
/// ([`Database::commit_bulk`]), and how many go to the logger at a time.
const BULK_RECORDS: usize = 1024;
const BULK_BATCH: usize = 256;
/// Bytes the bulk logger encodes before each write.
const BULK_WRITE: usize = 1 << 20;

/// What [`Database::commit_bulk`] hands its logger.
enum Logging {
    /// The next records, applied.
    Records(Vec<WalRecord>),
    /// All were applied: log the commit.
    Commit,
}

/// The logger of [`Database::commit_bulk`]: encodes and writes the `total`
/// records it receives as one transaction, starting each piece's writeback
/// to disk as it goes (so the commit's fsync waits for the last piece, not
/// for the whole load); its end LSN once told to commit. When the channel
/// closes first, what it wrote is cut off again.
fn log_bulk(
    wal: &WalWriter,
    received: std::sync::mpsc::Receiver<Logging>,
    total: usize,
    mode: CommitMode,
) -> Result<Lsn> {
    let mut appending = None;
    let mut encoded = 0;
    let mut frames = Vec::with_capacity(BULK_WRITE + (64 << 10));
    for logging in received {
        let commit = match logging {
            Logging::Records(records) => {
                for rec in &records {
                    rec.encode(&mut frames);
                }
                encoded += records.len();
                false
            }
            Logging::Commit => {
                WalRecord::Commit.encode(&mut frames);
                true
            }
        };
        if frames.len() >= BULK_WRITE || commit {
            let out = match &mut appending {
                Some(out) => out,
                // The first piece's records stand for the rest when the
                // writer decides whether they start a new segment.
                None => {
                    let expected = frames.len() * total / encoded.max(1);
                    appending.insert(wal.begin(expected as u64)?)
                }
            };
            out.write(&frames)?;
            frames.clear();
            if !commit {
                out.start_writeback();
            }
        }
        if commit {
            // The commit record was just written, so `appending` is set.
            return appending
                .map(|out| out.finish(mode))
                .ok_or_else(|| StorageError::new("XX000", "the commit was not logged"));
        }
    }
    Err(StorageError::new("XX000", "the commit was abandoned"))
}

/// Makes room in each table for the rows `changes` insert, once, instead
/// of growing its stores and key map row by row.
fn reserve_inserts(tables: &mut Tables, changes: &[Change]) {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for c in changes {
        if let Change::Insert { table, .. } = c {
            match counts.iter_mut().find(|(t, _)| *t == table.as_str()) {
                Some((_, n)) => *n += 1,
                None => counts.push((table.as_str(), 1)),
            }
        }
    }
    for (table, n) in counts {
        tables.reserve_rows(table, n);
    }
}

/// When WAL segments roll over and checkpoints happen.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// Size a WAL segment grows to before the next one starts.
    pub wal_segment_bytes: u64,
    /// WAL written since the last checkpoint that triggers the next one.
    pub checkpoint_wal_bytes: u64,
    /// Longest time between checkpoints while there are writes (`None`:
    /// only by size and at shutdown).
    pub checkpoint_interval: Option<Duration>,
    /// Most transactions prepared at once (`max_prepared_transactions`;
    /// 0 disables PREPARE TRANSACTION).
    pub max_prepared_transactions: usize,
    /// WAL kept before the last checkpoint for standbys that are not
    /// connected (`wal_keep_size`); connected ones hold what they need.
    pub wal_keep_bytes: u64,
    /// How often the WAL writer flushes asynchronous commits
    /// (`wal_writer_delay`).
    pub wal_writer_delay: Duration,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            wal_segment_bytes: 16 << 20,
            checkpoint_wal_bytes: 256 << 20,
            checkpoint_interval: Some(Duration::from_secs(300)),
            max_prepared_transactions: 100,
            wal_keep_bytes: 0,
            wal_writer_delay: Duration::from_millis(200),
        }
    }
}

#[derive(Debug)]
struct Shared {
    data: PathBuf,
    wal_dir: PathBuf,
    options: StorageOptions,
    tables: RwLock<Tables>,
    wal: WalWriter,
    /// Serialises checkpoints; holds the LSN of the last one.
    checkpoint: Mutex<Lsn>,
    last_checkpoint: AtomicU64,
    stop: Mutex<bool>,
    wake: Condvar,
    /// Counts decided prepared transactions; writers waiting for one wait
    /// for it to move.
    decisions: Mutex<u64>,
    decision: Condvar,
    recovery: RecoveryReport,
    timings: StorageTimings,
    system_id: u64,
    /// A standby's: only replication changes the tables.
    in_recovery: std::sync::atomic::AtomicBool,
    timeline: Mutex<Timeline>,
    /// Held by replay and by promotion, which ends it.
    replay: Mutex<()>,
    /// The oldest WAL each WAL sender still needs, by hold id.
    holds: Mutex<std::collections::BTreeMap<u64, Lsn>>,
    next_hold: AtomicU64,
}

/// Keeps the WAL from a position on disk for a WAL sender (checkpoints
/// remove only WAL before every hold); released when dropped.
#[derive(Debug)]
pub struct WalHold {
    shared: Arc<Shared>,
    id: u64,
}

impl WalHold {
    /// The sender needs WAL only from `lsn` on now.
    pub fn advance(&self, lsn: Lsn) {
        if let Some(at) = self.shared.holds_lock().get_mut(&self.id) {
            *at = lsn;
        }
    }
}

impl Drop for WalHold {
    fn drop(&mut self) {
        self.shared.holds_lock().remove(&self.id);
    }
}

/// A consistent copy of a data directory for a new standby: the files of
/// a checkpoint (paths relative to the data directory, the manifest last)
/// and the LSN streaming goes on from.
#[derive(Debug, Clone)]
pub struct BaseBackup {
    /// The checkpoint's LSN: WAL from here on completes the copy.
    pub lsn: Lsn,
    /// (relative path, contents), in the order to write them.
    pub files: Vec<(String, Vec<u8>)>,
}

/// One transaction received from a primary: its WAL frames as the
/// primary wrote them and the records they hold (the last a commit).
#[derive(Debug, Clone, Default)]
pub struct ReplicatedTxn {
    /// The frames, byte for byte.
    pub frames: Vec<u8>,
    /// The decoded records, the commit record excluded.
    pub records: Vec<WalRecord>,
}

/// A shard's durable tables.
#[derive(Debug)]
pub struct Database {
    shared: Arc<Shared>,
    /// The checkpointer and the WAL writer threads.
    workers: Vec<JoinHandle<()>>,
}

impl Database {
    /// Opens (creating if needed) the data directory `dir`: loads the last
    /// checkpoint, replays the WAL after it, and starts the checkpointer.
    pub fn open(dir: impl AsRef<Path>, options: StorageOptions) -> Result<Database> {
        let data = dir.as_ref().to_path_buf();
        let wal_dir = data.join("wal");
        std::fs::create_dir_all(&wal_dir).map_err(|e| StorageError::io(&wal_dir, e))?;
        let system_id = identity::load_or_create(&data)?;
        let timeline = Timeline::load(&data)?;
        let (tables, recovery) = recover(&data, &wal_dir)?;
        let timings = StorageTimings::new();
        let wal = WalWriter::create(
            &wal_dir,
            recovery.end_lsn,
            options.wal_segment_bytes,
            timings.wal_fsync.clone(),
        )?;
        let shared = Arc::new(Shared {
            data,
            wal_dir,
            tables: RwLock::new(tables),
            wal,
            checkpoint: Mutex::new(recovery.checkpoint_lsn),
            last_checkpoint: AtomicU64::new(recovery.checkpoint_lsn.0),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            decisions: Mutex::new(0),
            decision: Condvar::new(),
            recovery,
            options,
            timings,
            system_id,
            in_recovery: std::sync::atomic::AtomicBool::new(false),
            timeline: Mutex::new(timeline),
            replay: Mutex::new(()),
            holds: Mutex::new(std::collections::BTreeMap::new()),
            next_hold: AtomicU64::new(0),
        });
        let mut db = Database {
            shared,
            workers: Vec::new(),
        };
        db.spawn_worker("checkpointer", Shared::run_checkpointer)?;
        db.spawn_worker("walwriter", Shared::run_wal_writer)?;
        Ok(db)
    }

    /// Starts a background thread running `work` until the database stops.
    fn spawn_worker(&mut self, name: &str, work: fn(&Shared)) -> Result<()> {
        let shared = Arc::clone(&self.shared);
        let handle = std::thread::Builder::new()
            .name(format!("pgvshard-{name}"))
            .spawn(move || work(&shared))
            .map_err(|e| StorageError::new("58000", format!("could not start the {name}: {e}")))?;
        self.workers.push(handle);
        Ok(())
    }

    /// Shared access to the committed tables, once every commit applied
    /// to them is durable (see the module doc); hold it for one statement.
    pub fn read(&self) -> Result<RwLockReadGuard<'_, Tables>> {
        let tables = self.read_applied();
        self.shared.wal.wait_durable()?;
        Ok(tables)
    }

    /// Shared access to the tables as applied, durable or not: for what
    /// no client sees as data (metrics, an index build checked again at
    /// its commit).
    pub fn read_applied(&self) -> RwLockReadGuard<'_, Tables> {
        self.shared.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits `txn`: checks and applies its changes in memory (all or
    /// none), appends them and a commit record to the WAL, and returns the
    /// commit's end LSN once the WAL is fsynced up to it.
    pub fn commit(&self, txn: Transaction) -> Result<Lsn> {
        self.commit_with_progress(txn, &BuildProgress::new(), CommitMode::Synchronous)
    }

    /// [`Database::commit`], reporting index builds through `progress`
    /// (which also cancels them: the commit then fails with 57014); an
    /// asynchronous commit returns without waiting for the fsync (see the
    /// module doc).
    pub fn commit_with_progress(
        &self,
        txn: Transaction,
        progress: &BuildProgress,
        mode: CommitMode,
    ) -> Result<Lsn> {
        if txn.is_empty() {
            return Ok(self.current_lsn());
        }
        let prebuilt = self.prebuild_index(&txn, progress)?;
        self.write(Ending::Commit(txn.into_changes()), prebuilt, progress, mode)
    }

    /// `PREPARE TRANSACTION`: checks `record`'s changes as a commit would,
    /// then logs them and keeps them aside (invisible, their rows and keys
    /// reserved) until [`Database::finish_prepared`].
    pub fn prepare(&self, record: PrepareRecord, progress: &BuildProgress) -> Result<Lsn> {
        if record.gid.len() > MAX_GID_BYTES {
            return Err(StorageError::gid_too_long(&record.gid));
        }
        self.write(
            Ending::Prepare(record),
            None,
            progress,
            CommitMode::Synchronous,
        )
    }

    /// `COMMIT PREPARED` (`commit`) or `ROLLBACK PREPARED` of `gid`.
    pub fn finish_prepared(&self, gid: &str, commit: bool) -> Result<Lsn> {
        let gid = gid.to_string();
        let ending = if commit {
            Ending::CommitPrepared(gid)
        } else {
            Ending::RollbackPrepared(gid)
        };
        self.write(ending, None, &BuildProgress::new(), CommitMode::Synchronous)
    }

    /// `max_prepared_transactions`.
    pub fn max_prepared_transactions(&self) -> usize {
        self.shared.options.max_prepared_transactions
    }

    /// True on a standby (`pg_is_in_recovery()`): commits are refused
    /// with 25006, only [`Database::apply_replicated`] changes the tables.
    pub fn in_recovery(&self) -> bool {
        self.shared.in_recovery.load(Ordering::Acquire)
    }

    /// Makes this database a standby's (`true`) or a primary's.
    pub fn set_in_recovery(&self, on: bool) {
        self.shared.in_recovery.store(on, Ordering::Release);
    }

    /// Checks, applies and logs one transaction (see [`Ending`]), waiting
    /// first for any prepared transaction whose reservations it overlaps;
    /// returns once its WAL is flushed unless `mode` is asynchronous.
    fn write(
        &self,
        mut ending: Ending,
        mut prebuilt: Option<(u64, TableIndex)>,
        progress: &BuildProgress,
        mode: CommitMode,
    ) -> Result<Lsn> {
        if self.in_recovery() {
            return Err(StorageError::new(
                "25006",
                "cannot execute a write in a read-only transaction",
            ));
        }
        let end = loop {
            let decided = self.shared.decisions();
            let mut tables = self
                .shared
                .tables
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let (changes, except) = match &ending {
                // Checked here by reference, taken once nothing blocks it.
                Ending::Commit(changes) => (Cow::Borrowed(changes.as_slice()), None),
                Ending::Prepare(rec) => {
                    let max = self.shared.options.max_prepared_transactions;
                    if tables.prepared().count() >= max {
                        return Err(StorageError::prepared_limit(max));
                    }
                    if tables.prepared_txn(&rec.gid).is_some() {
                        return Err(StorageError::gid_in_use(&rec.gid));
                    }
                    (Cow::Borrowed(rec.changes.as_slice()), None)
                }
                Ending::CommitPrepared(gid) => {
                    let p = tables
                        .prepared_txn(gid)
                        .ok_or_else(|| StorageError::unknown_gid(gid))?;
                    (Cow::Owned(p.changes_to_commit(&tables)), Some(gid.as_str()))
                }
                Ending::RollbackPrepared(gid) => {
                    tables
                        .prepared_txn(gid)
                        .ok_or_else(|| StorageError::unknown_gid(gid))?;
                    (Cow::Owned(Vec::new()), Some(gid.as_str()))
                }
            };
            if !changes.is_empty()
                && tables.prepared().next().is_some()
                && tables
                    .blocking_prepared(&Footprint::of(&changes, &tables), except)
                    .is_some()
            {
                drop(tables);
                self.shared.wait_for_decision(decided, progress)?;
                continue;
            }
            let changes = match changes {
                Cow::Owned(changes) => changes,
                Cow::Borrowed(_) => match &mut ending {
                    Ending::Commit(owned) => std::mem::take(owned),
                    Ending::Prepare(rec) => rec.changes.clone(),
                    _ => Vec::new(),
                },
            };
            if matches!(ending, Ending::Commit(_)) && changes.len() >= BULK_RECORDS {
                match self.commit_bulk(&mut tables, changes, prebuilt.take(), progress, mode) {
                    Ok(end) => break end,
                    Err(e) => return Err(e),
                }
            }
            let mut log = Logged {
                tables: &mut tables,
                progress,
                undo: Vec::new(),
                frames: Vec::new(),
            };
            let mut result = match &ending {
                Ending::CommitPrepared(gid) | Ending::RollbackPrepared(gid) => {
                    log.apply(WalRecord::Finish { gid: gid.clone() }, None)
                }
                _ => Ok(()),
            };
            let mut touched = std::collections::HashSet::new();
            for change in changes {
                if result.is_err() {
                    break;
                }
                let pre = prebuilt
                    .take()
                    .filter(|(generation, _)| *generation == log.tables.generation())
                    .map(|(_, data)| data);
                result = change
                    .plan(log.tables, &mut touched)
                    .and_then(|rec| log.apply(rec, pre));
            }
            if result.is_ok() && progress.is_canceled() {
                result = Err(StorageError::canceled());
            }
            if let (Ok(()), Ending::Prepare(rec)) = (&result, &ending) {
                // The changes were applied to check them; the prepared
                // transaction keeps them aside instead.
                log.take_back();
                result = log.apply(WalRecord::Prepare(Box::new(rec.clone())), None);
            }
            let appended = result.and_then(|()| {
                WalRecord::Commit.encode(&mut log.frames);
                self.shared.wal.append(&log.frames, mode)
            });
            match appended {
                Ok(end) => break end,
                Err(e) => {
                    log.take_back();
                    return Err(e);
                }
            }
        };
        if !matches!(ending, Ending::Commit(_)) {
            self.shared.decided();
        }
        if mode == CommitMode::Synchronous {
            self.shared.wal.flush(end)?;
        }
        self.shared.wake_checkpointer_at(end);
        Ok(end)
    }

    /// [`Database::write`]'s checks, apply and log of a large commit, with
    /// the log written by a second thread: it encodes the records applied
    /// so far and writes them to the WAL while the next ones are applied,
    /// so a bulk load's commit takes about the longer of the two instead
    /// of their sum. A record that fails to apply, or a failed write,
    /// undoes what was applied and cuts what was written.
    fn commit_bulk(
        &self,
        tables: &mut Tables,
        changes: Vec<Change>,
        mut prebuilt: Option<(u64, TableIndex)>,
        progress: &BuildProgress,
        mode: CommitMode,
    ) -> Result<Lsn> {
        reserve_inserts(tables, &changes);
        let wal = &self.shared.wal;
        let (records, received) = std::sync::mpsc::sync_channel::<Logging>(4);
        std::thread::scope(|scope| {
            let total = changes.len();
            let logger = scope.spawn(move || log_bulk(wal, received, total, mode));
            let mut undo = Vec::with_capacity(changes.len());
            let mut batch = Vec::with_capacity(BULK_BATCH);
            let mut touched = std::collections::HashSet::new();
            let mut applied = Ok(());
            for change in changes {
                let pre = prebuilt
                    .take()
                    .filter(|(generation, _)| *generation == tables.generation())
                    .map(|(_, data)| data);
                let rec = change.plan(tables, &mut touched);
                match rec.and_then(|rec| Ok((tables.apply(&rec, progress, pre)?, rec))) {
                    Ok((u, rec)) => {
                        undo.push(u);
                        batch.push(rec);
                    }
                    Err(e) => {
                        applied = Err(e);
                        break;
                    }
                }
                if batch.len() == BULK_BATCH
                    && records
                        .send(Logging::Records(std::mem::take(&mut batch)))
                        .is_err()
                {
                    break; // the logger failed: its error answers
                }
            }
            if applied.is_ok() && progress.is_canceled() {
                applied = Err(StorageError::canceled());
            }
            if applied.is_ok() {
                // A failed send means the logger failed: its error answers.
                let _ = records
                    .send(Logging::Records(batch))
                    .and_then(|()| records.send(Logging::Commit));
            }
            drop(records);
            let logged = logger
                .join()
                .unwrap_or_else(|_| Err(StorageError::new("XX000", "the WAL logger panicked")));
            match applied.and(logged) {
                Ok(end) => Ok(end),
                Err(e) => {
                    for u in undo.into_iter().rev() {
                        tables.undo(u);
                    }
                    Err(e)
                }
            }
        })
    }

    /// A standby's replay of transactions streamed from its primary: each
    /// is applied through [`Tables::apply`] (as recovery does: index
    /// changes included) and its frames appended to this WAL unchanged, so
    /// LSNs match the primary's; returns the LSN after the last one once
    /// it is durable. A transaction that does not apply is undone and
    /// ends the batch with its error (the ones before it stay).
    pub fn apply_replicated(&self, txns: Vec<ReplicatedTxn>) -> Result<Lsn> {
        let _replay = self.shared.replay.lock().unwrap_or_else(|e| e.into_inner());
        if !self.in_recovery() {
            return Err(StorageError::new("55000", "recovery is not in progress"));
        }
        let mut end = self.shared.wal.written();
        let mut failed = None;
        {
            let mut tables = self
                .shared
                .tables
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let progress = BuildProgress::new();
            for txn in txns {
                let mut undo = Vec::with_capacity(txn.records.len());
                let applied = txn.records.iter().try_for_each(|rec| {
                    undo.push(tables.apply(rec, &progress, None)?);
                    Ok(())
                });
                match applied
                    .and_then(|()| self.shared.wal.append(&txn.frames, CommitMode::Synchronous))
                {
                    Ok(e) => end = e,
                    Err(e) => {
                        for u in undo.into_iter().rev() {
                            tables.undo(u);
                        }
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        self.shared.wal.flush(end)?;
        self.shared.wake_checkpointer_at(end);
        failed.map_or(Ok(end), Err)
    }

    /// Takes a checkpoint now and returns its files and LSN for a base
    /// backup. Checkpoints wait meanwhile, so none of the files goes away
    /// before it is read.
    pub fn base_backup(&self) -> Result<BaseBackup> {
        let mut last = self
            .shared
            .checkpoint
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let lsn = self.shared.checkpoint_holding(&mut last)?;
        let data = &self.shared.data;
        let read = |rel: &str| {
            let path = data.join(rel);
            std::fs::read(&path).map_err(|e| StorageError::io(&path, e))
        };
        let mut files = vec![
            (identity::IDENTITY.to_string(), read(identity::IDENTITY)?),
            (TIMELINE.to_string(), self.timeline().to_text().into_bytes()),
        ];
        if data.join(checkpoint::MANIFEST).exists() {
            let dir = checkpoint::checkpoint_dir(data, lsn);
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let entries = std::fs::read_dir(&dir).map_err(|e| StorageError::io(&dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| StorageError::io(&dir, e))?;
                let rel = format!("{name}/{}", entry.file_name().to_string_lossy());
                let bytes = read(&rel)?;
                files.push((rel, bytes));
            }
            files.push((
                checkpoint::MANIFEST.to_string(),
                read(checkpoint::MANIFEST)?,
            ));
        }
        Ok(BaseBackup { lsn, files })
    }

    /// Raw WAL frames from `from` up to the durable position (at most
    /// about `max` bytes, whole frames only), for a WAL sender.
    pub fn read_wal(&self, from: Lsn, upto: Lsn, max: usize) -> Result<Vec<u8>> {
        read_frames(
            &self.shared.wal_dir,
            from,
            upto.min(self.flushed_lsn()),
            max,
        )
    }

    /// The durable WAL position as it moves (see [`WalWriter::subscribe_flushed`]).
    pub fn subscribe_flushed(&self) -> tokio::sync::watch::Receiver<Lsn> {
        self.shared.wal.subscribe_flushed()
    }

    /// The directory the WAL is written to (`<data directory>/wal`).
    pub fn wal_dir(&self) -> &Path {
        &self.shared.wal_dir
    }

    /// Keeps WAL from `from` on disk until the hold is dropped.
    pub fn hold_wal(&self, from: Lsn) -> WalHold {
        let id = self.shared.next_hold.fetch_add(1, Ordering::Relaxed);
        self.shared.holds_lock().insert(id, from);
        WalHold {
            shared: Arc::clone(&self.shared),
            id,
        }
    }

    /// The LSN of the last checkpoint (`pg_control_checkpoint()`).
    pub fn last_checkpoint_lsn(&self) -> Lsn {
        Lsn(self.shared.last_checkpoint.load(Ordering::Relaxed))
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.shared.data
    }

    /// The current timeline and its history.
    pub fn timeline(&self) -> Timeline {
        self.shared
            .timeline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Promotes a standby: a new timeline forked at the end of its WAL is
    /// made durable, then commits are accepted (replay is refused from
    /// then on). Returns the new timeline. 55000 on a primary.
    pub fn promote(&self) -> Result<u32> {
        let _replay = self.shared.replay.lock().unwrap_or_else(|e| e.into_inner());
        if !self.in_recovery() {
            return Err(StorageError::new("55000", "recovery is not in progress"));
        }
        let mut timeline = self
            .shared
            .timeline
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let next = timeline.fork(self.shared.wal.written());
        next.save(&self.shared.data)?;
        *timeline = next;
        self.set_in_recovery(false);
        Ok(timeline.current)
    }

    /// A standby following its primary onto a newer timeline whose
    /// history contains this one's WAL.
    pub fn adopt_timeline(&self, newer: Timeline) -> Result<()> {
        newer.save(&self.shared.data)?;
        *self
            .shared
            .timeline
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = newer;
        Ok(())
    }

    /// The data directory's system identifier (see [`identity`]).
    pub fn system_identifier(&self) -> u64 {
        self.shared.system_id
    }

    /// A transaction that only creates an index builds it under the read
    /// lock first, so that reads go on during the build; the commit then
    /// attaches it if no other commit changed the tables meanwhile (else
    /// it builds again under the write lock).
    fn prebuild_index(
        &self,
        txn: &Transaction,
        progress: &BuildProgress,
    ) -> Result<Option<(u64, TableIndex)>> {
        let [Change::CreateIndex { table, index }] = txn.changes() else {
            return Ok(None);
        };
        let tables = self.read_applied();
        let Some(t) = tables.get(table) else {
            return Ok(None);
        };
        Ok(Some((tables.generation(), t.build_index(index, progress)?)))
    }

    /// The WAL position after the last commit (what `pg_current_wal_lsn()`
    /// reports).
    pub fn current_lsn(&self) -> Lsn {
        self.shared.wal.written()
    }

    /// The WAL position known to be on disk.
    pub fn flushed_lsn(&self) -> Lsn {
        self.shared.wal.flushed()
    }

    /// fsyncs issued by group commit since open.
    pub fn wal_fsyncs(&self) -> u64 {
        self.shared.wal.fsyncs()
    }

    /// WAL bytes appended since open.
    pub fn wal_written_since_open(&self) -> u64 {
        self.current_lsn()
            .0
            .saturating_sub(self.shared.recovery.end_lsn.0)
    }

    /// The storage's latency histograms (WAL fsync, checkpoint).
    pub fn timings(&self) -> &StorageTimings {
        &self.shared.timings
    }

    /// What startup recovery did.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.shared.recovery
    }

    /// Writes a checkpoint now (if anything was committed since the last
    /// one) and returns its LSN.
    pub fn checkpoint(&self) -> Result<Lsn> {
        self.shared.checkpoint()
    }

    /// Clean shutdown: stops the background threads and writes a final
    /// checkpoint.
    pub fn close(mut self) -> Result<()> {
        self.stop_workers();
        self.shared.checkpoint().map(drop)
    }

    /// Stops the checkpointer and the WAL writer (which flushes once more).
    fn stop_workers(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_all();
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        self.stop_workers();
    }
}

impl Shared {
    fn holds_lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<u64, Lsn>> {
        self.holds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The decision count now (read before looking at the prepared set).
    fn decisions(&self) -> u64 {
        *self.decisions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A prepared transaction was decided (or one was added): wake waiters.
    fn decided(&self) {
        *self.decisions.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.decision.notify_all();
    }

    /// Waits until a decision after `seen`, or fails with 57014 when the
    /// statement is canceled (checked every 50 ms).
    fn wait_for_decision(&self, seen: u64, progress: &BuildProgress) -> Result<()> {
        let mut count = self.decisions.lock().unwrap_or_else(|e| e.into_inner());
        while *count == seen {
            if progress.is_canceled() {
                return Err(StorageError::canceled());
            }
            count = self
                .decision
                .wait_timeout(count, Duration::from_millis(50))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        Ok(())
    }

    /// Wakes the checkpointer when enough WAL has accumulated up to `end`.
    fn wake_checkpointer_at(&self, end: Lsn) {
        let since = end.0 - self.last_checkpoint.load(Ordering::Relaxed);
        if since >= self.options.checkpoint_wal_bytes {
            self.wake.notify_all();
        }
    }

    /// The WAL writer: every `wal_writer_delay` it flushes what
    /// asynchronous commits appended (a synchronous commit's own flush
    /// usually got there first), and once more when the database stops.
    fn run_wal_writer(&self) {
        let mut failed = false;
        let mut stop = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            drop(stop);
            match self.wal.flush_written() {
                Ok(()) => failed = false,
                Err(e) if !failed => {
                    failed = true;
                    tracing::error!(error = %e, "WAL writer flush failed");
                }
                Err(_) => {}
            }
            stop = self.stop.lock().unwrap_or_else(|e| e.into_inner());
            if *stop {
                break;
            }
            stop = self
                .wake
                .wait_timeout(stop, self.options.wal_writer_delay)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    fn checkpoint(&self) -> Result<Lsn> {
        let mut last = self.checkpoint.lock().unwrap_or_else(|e| e.into_inner());
        self.checkpoint_holding(&mut last)
    }

    /// A checkpoint, with the checkpoint mutex (`last`) held.
    fn checkpoint_holding(&self, last: &mut Lsn) -> Result<Lsn> {
        let started = Instant::now();
        let (lsn, manifest) = {
            let tables = self.tables.read().unwrap_or_else(|e| e.into_inner());
            let lsn = self.wal.written();
            if lsn == *last {
                return Ok(lsn);
            }
            (lsn, checkpoint::write_files(&self.data, &tables, lsn)?)
        };
        self.wal.flush(lsn)?;
        checkpoint::install_manifest(&self.data, &manifest, lsn)?;
        *last = lsn;
        self.last_checkpoint.store(lsn.0, Ordering::Relaxed);
        let keep = Lsn(lsn.0.saturating_sub(self.options.wal_keep_bytes));
        let held = self.holds_lock().values().min().copied();
        let removed = remove_before(&self.wal_dir, held.map_or(keep, |h| h.min(keep)))?;
        self.timings
            .checkpoint
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(
            lsn = %lsn,
            wal_segments_removed = removed,
            ms = started.elapsed().as_millis() as u64,
            "checkpoint written"
        );
        Ok(lsn)
    }

    fn run_checkpointer(&self) {
        let mut last_time = Instant::now();
        let mut stop = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        while !*stop {
            let wait = self
                .options
                .checkpoint_interval
                .map_or(Duration::from_secs(1), |i| i.min(Duration::from_secs(1)));
            stop = self
                .wake
                .wait_timeout(stop, wait)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
            if *stop {
                break;
            }
            let since = self.wal.written().0 - self.last_checkpoint.load(Ordering::Relaxed);
            let due_by_time = self
                .options
                .checkpoint_interval
                .is_some_and(|i| last_time.elapsed() >= i);
            if since >= self.options.checkpoint_wal_bytes || (since > 0 && due_by_time) {
                drop(stop);
                if let Err(e) = self.checkpoint() {
                    tracing::error!(error = %e, "checkpoint failed");
                }
                last_time = Instant::now();
                stop = self.stop.lock().unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::storage::{ColumnDef, ColumnType};
    use crate::wire::Value;
    use std::sync::mpsc;

    fn open(name: &str) -> (Arc<Database>, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("pgvshard-durable-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = Database::open(&dir, StorageOptions::default()).unwrap();
        let mut t = Transaction::new();
        let id = ColumnDef {
            name: "id".into(),
            ty: ColumnType::Int8,
            not_null: true,
            default: None,
        };
        t.create_table(
            &db.read().unwrap(),
            "t",
            vec![id],
            vec![0],
            Default::default(),
        )
        .unwrap();
        db.commit(t).unwrap();
        (Arc::new(db), dir)
    }

    fn insert(db: &Database, id: i64) -> Transaction {
        let mut t = Transaction::new();
        t.insert(&db.read().unwrap(), "t", vec![Some(Value::Int8(id))])
            .unwrap();
        t
    }

    fn rows(db: &Database) -> Result<usize> {
        Ok(db.read()?.get("t").map_or(0, |t| t.len()))
    }

    /// Makes the next fsyncs wait for a message on the returned sender
    /// (`Ok` or an error to fail with); says on `entered` when one waits.
    fn hold_fsyncs(db: &Database) -> (mpsc::Sender<bool>, mpsc::Receiver<()>) {
        let (release, released) = mpsc::channel::<bool>();
        let (entered_tx, entered) = mpsc::channel();
        let released = Mutex::new(released);
        *db.shared.wal.fsync_hook.0.lock().unwrap() = Some(Box::new(move || {
            let _ = entered_tx.send(());
            match released.lock().unwrap().recv() {
                Ok(true) | Err(_) => Ok(()),
                Ok(false) => Err(std::io::Error::other("injected fsync failure")),
            }
        }));
        (release, entered)
    }

    /// Commits a row with `id` on a thread of its own.
    fn commit_in_background(db: &Arc<Database>, id: i64) -> std::thread::JoinHandle<Result<Lsn>> {
        let db = Arc::clone(db);
        std::thread::spawn(move || db.commit(insert(&db, id)))
    }

    #[test]
    fn a_commit_is_visible_only_once_its_wal_is_on_disk() {
        let (db, dir) = open("visible");
        let (release, entered) = hold_fsyncs(&db);
        let writer = commit_in_background(&db, 1);
        entered.recv().unwrap();
        // Applied in memory and appended, not fsynced: a reader waits.
        assert_eq!(db.read_applied().get("t").unwrap().len(), 1);
        let (seen_tx, seen) = mpsc::channel();
        let reader = {
            let db = Arc::clone(&db);
            std::thread::spawn(move || seen_tx.send(rows(&db)).unwrap())
        };
        assert!(seen.recv_timeout(Duration::from_millis(300)).is_err());
        release.send(true).unwrap();
        assert_eq!(seen.recv().unwrap(), Ok(1));
        writer.join().unwrap().unwrap();
        reader.join().unwrap();
        drop(db);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_asynchronous_commit_is_visible_at_once_and_the_wal_writer_flushes_it() {
        let (db, dir) = open("async");
        let (release, entered) = hold_fsyncs(&db);
        let end = db
            .commit_with_progress(
                insert(&db, 1),
                &BuildProgress::new(),
                CommitMode::Asynchronous,
            )
            .unwrap();
        // Returned without its fsync, and readers do not wait for it.
        assert_eq!(rows(&db), Ok(1));
        assert!(db.flushed_lsn() < end);
        // The WAL writer's next round fsyncs it.
        entered.recv_timeout(Duration::from_secs(2)).unwrap();
        release.send(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while db.flushed_lsn() < end {
            assert!(Instant::now() < deadline, "the WAL writer flushes");
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(db);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn after_a_failed_fsync_readers_and_writers_get_58030() {
        let (db, dir) = open("failed");
        let (release, entered) = hold_fsyncs(&db);
        let writer = commit_in_background(&db, 1);
        entered.recv().unwrap();
        release.send(false).unwrap();
        assert_eq!(writer.join().unwrap().unwrap_err().sqlstate, "58030");
        assert_eq!(rows(&db).unwrap_err().sqlstate, "58030");
        let mut t = Transaction::new();
        t.insert(&db.read_applied(), "t", vec![Some(Value::Int8(2))])
            .unwrap();
        assert_eq!(db.commit(t).unwrap_err().sqlstate, "58030");
        drop(db);
        let _ = std::fs::remove_dir_all(dir);
    }
}
