//! [`Database`]: a shard's tables, opened from a data directory, changed
//! only by committing transactions.
//!
//! Concurrency: one `RwLock` over all tables. Readers (statements) hold it
//! shared for as long as they read. A commit holds it exclusively while it
//! checks its write set, applies it in memory and appends its WAL records —
//! so WAL order is apply order and a reader sees either none or all of a
//! transaction — then releases it and waits for the fsync (group commit).
//! A concurrent reader can therefore see a transaction up to one fsync
//! before its `commit` returns; if the process dies in that window the
//! transaction is gone after restart, though nobody was told it committed.
//! A single lock (rather than one per table) keeps multi-table transactions
//! and DDL atomic without lock ordering. CREATE INDEX builds under the
//! read lock before its commit (reads go on; a commit waiting for the
//! write lock meanwhile holds new readers back, as std's RwLock prefers
//! writers), and checkpoints hold the read lock while they write.

use super::catalog::IndexDef;
use super::checkpoint;
use super::error::{Result, StorageError};
use super::recovery::{recover, RecoveryReport};
use super::table::IndexData;
use super::tables::Tables;
use super::txn::{Change, Transaction};
use super::wal::reader::remove_before;
use super::wal::record::WalRecord;
use super::wal::writer::WalWriter;
use super::wal::Lsn;
use crate::metrics::StorageTimings;
use ann::BuildProgress;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            wal_segment_bytes: 16 << 20,
            checkpoint_wal_bytes: 256 << 20,
            checkpoint_interval: Some(Duration::from_secs(300)),
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
    recovery: RecoveryReport,
    timings: StorageTimings,
}

/// A shard's durable tables.
#[derive(Debug)]
pub struct Database {
    shared: Arc<Shared>,
    checkpointer: Option<JoinHandle<()>>,
}

impl Database {
    /// Opens (creating if needed) the data directory `dir`: loads the last
    /// checkpoint, replays the WAL after it, and starts the checkpointer.
    pub fn open(dir: impl AsRef<Path>, options: StorageOptions) -> Result<Database> {
        let data = dir.as_ref().to_path_buf();
        let wal_dir = data.join("wal");
        std::fs::create_dir_all(&wal_dir).map_err(|e| StorageError::io(&wal_dir, e))?;
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
            recovery,
            options,
            timings,
        });
        let worker = Arc::clone(&shared);
        let checkpointer = std::thread::Builder::new()
            .name("pgvshard-checkpointer".into())
            .spawn(move || worker.run_checkpointer())
            .map_err(|e| {
                StorageError::new("58000", format!("could not start the checkpointer: {e}"))
            })?;
        Ok(Database {
            shared,
            checkpointer: Some(checkpointer),
        })
    }

    /// Shared access to the committed tables; hold it for one statement.
    pub fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.shared.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits `txn`: checks and applies its changes in memory (all or
    /// none), appends them and a commit record to the WAL, and returns the
    /// commit's end LSN once the WAL is fsynced up to it.
    pub fn commit(&self, txn: Transaction) -> Result<Lsn> {
        self.commit_with_progress(txn, &BuildProgress::new())
    }

    /// [`Database::commit`], reporting index builds through `progress`
    /// (which also cancels them: the commit then fails with 57014).
    pub fn commit_with_progress(&self, txn: Transaction, progress: &BuildProgress) -> Result<Lsn> {
        if txn.is_empty() {
            return Ok(self.current_lsn());
        }
        let mut prebuilt = self.prebuild_index(&txn, progress)?;
        let end = {
            let mut tables = self
                .shared
                .tables
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let mut undo = Vec::new();
            let mut frames = Vec::new();
            let mut failed = None;
            for change in txn.into_changes() {
                let pre = prebuilt
                    .take()
                    .filter(|(generation, _)| *generation == tables.generation())
                    .map(|(_, data)| data);
                match change.plan(&tables).and_then(|rec| {
                    let u = tables.apply(&rec, progress, pre)?;
                    rec.encode(&mut frames);
                    Ok(u)
                }) {
                    Ok(u) => undo.push(u),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            if failed.is_none() && progress.is_canceled() {
                failed = Some(StorageError::new(
                    "57014",
                    "canceling statement due to user request",
                ));
            }
            let appended = match failed {
                Some(e) => Err(e),
                None => {
                    WalRecord::Commit.encode(&mut frames);
                    self.shared.wal.append(&frames)
                }
            };
            match appended {
                Ok(end) => end,
                Err(e) => {
                    for u in undo.into_iter().rev() {
                        tables.undo(u);
                    }
                    return Err(e);
                }
            }
        };
        self.shared.wal.flush(end)?;
        let since = end.0 - self.shared.last_checkpoint.load(Ordering::Relaxed);
        if since >= self.shared.options.checkpoint_wal_bytes {
            self.shared.wake.notify_all();
        }
        Ok(end)
    }

    /// A transaction that only creates an index builds it under the read
    /// lock first, so that reads go on during the build; the commit then
    /// attaches it if no other commit changed the tables meanwhile (else
    /// it builds again under the write lock).
    fn prebuild_index(
        &self,
        txn: &Transaction,
        progress: &BuildProgress,
    ) -> Result<Option<(u64, IndexData)>> {
        let [Change::CreateIndex {
            table,
            name,
            column,
            method,
        }] = txn.changes()
        else {
            return Ok(None);
        };
        let tables = self.read();
        let Some(t) = tables.get(table) else {
            return Ok(None);
        };
        let def = IndexDef {
            oid: 0,
            name: name.clone(),
            column: *column,
            method: *method,
        };
        Ok(Some((tables.generation(), t.build_index(&def, progress)?)))
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

    /// Clean shutdown: stops the checkpointer and writes a final checkpoint.
    pub fn close(mut self) -> Result<()> {
        self.stop_checkpointer();
        self.shared.checkpoint().map(drop)
    }

    fn stop_checkpointer(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_all();
        if let Some(handle) = self.checkpointer.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        self.stop_checkpointer();
    }
}

impl Shared {
    fn checkpoint(&self) -> Result<Lsn> {
        let mut last = self.checkpoint.lock().unwrap_or_else(|e| e.into_inner());
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
        let removed = remove_before(&self.wal_dir, lsn)?;
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
