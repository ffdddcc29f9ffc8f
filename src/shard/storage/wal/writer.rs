//! Appending to the WAL, and group commit.
//!
//! Committers append their transaction's frames under the writer's mutex
//! (a `write` into the OS page cache, in commit order) and then call
//! [`WalWriter::flush`] with their commit's end LSN. The first committer to
//! find no flush running becomes the leader: it notes how far the WAL is
//! written, releases the mutex, fsyncs, and wakes everyone; each follower
//! whose LSN that fsync covered returns without an fsync of its own, the
//! others elect the next leader. N concurrent committers therefore share
//! one fsync. An fsync error makes the writer refuse every later commit
//! (the page cache may have dropped the data; only recovery can tell).
//!
//! Each fsync that moves the durable position publishes it on a watch
//! channel ([`WalWriter::subscribe_flushed`]): WAL senders stream only
//! WAL up to it. With nobody subscribed that costs one uncontended lock.
//!
//! Readers ask [`WalWriter::wait_durable`] before they look at the tables,
//! so a synchronous commit becomes visible only once its WAL is on disk: a
//! lock-free check while the WAL is flushed past the last one, else a wait
//! for the fsync. An asynchronous commit (`synchronous_commit = off`,
//! [`CommitMode::Asynchronous`]) is appended but not waited for: readers
//! see it at once, and the WAL writer's periodic [`WalWriter::flush`] (or
//! the next synchronous commit, whose fsync covers all WAL before it)
//! makes it durable.

use super::{segment_header, segment_path, Lsn, SEGMENT_HEADER};
use crate::shard::storage::error::{Result, StorageError};
use prometheus::Histogram;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// Whether readers must wait for a transaction's WAL to reach the disk
/// before they see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitMode {
    /// They must (every commit but `synchronous_commit = off`).
    Synchronous,
    /// They need not: a crash may take it back (`synchronous_commit = off`).
    Asynchronous,
}

/// The WAL's tail, open for appending.
#[derive(Debug)]
pub struct WalWriter {
    dir: PathBuf,
    segment_bytes: u64,
    state: Mutex<WriterState>,
    flushed: Condvar,
    /// End of the last synchronous transaction appended: readers wait
    /// until the WAL is flushed up to it (written under the mutex).
    awaited: AtomicU64,
    /// The flushed position, read without the mutex by
    /// [`WalWriter::wait_durable`] (written under it).
    flushed_at: AtomicU64,
    /// The durable position, for WAL senders.
    flushed_tx: tokio::sync::watch::Sender<Lsn>,
    fsync_seconds: Histogram,
    #[cfg(test)]
    pub(crate) fsync_hook: FsyncHook,
}

/// Tests' hook run in place of the group-commit fsync's first step: it
/// may block (to hold a commit between append and fsync) or fail.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct FsyncHook(pub Mutex<Option<HookFn>>);

#[cfg(test)]
type HookFn = Box<dyn Fn() -> std::io::Result<()> + Send>;

#[cfg(test)]
impl std::fmt::Debug for FsyncHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FsyncHook")
    }
}

#[derive(Debug)]
struct WriterState {
    file: Arc<File>,
    path: PathBuf,
    segment_start: Lsn,
    written: Lsn,
    flushed: Lsn,
    flushing: bool,
    broken: Option<String>,
    fsyncs: u64,
}

/// One transaction's frames being written ([`WalWriter::begin`]): they
/// join the log at [`Appending::finish`]; dropped unfinished, whatever was
/// written of them is cut off the segment again, so the next transaction
/// follows the last finished one directly.
#[derive(Debug)]
pub struct Appending<'a> {
    writer: &'a WalWriter,
    st: MutexGuard<'a, WriterState>,
    bytes: u64,
    /// Bytes of them the OS was asked to start writing to disk.
    written_back: u64,
    finished: bool,
}

impl Appending<'_> {
    /// Writes the next whole frames of the transaction.
    pub fn write(&mut self, frames: &[u8]) -> Result<()> {
        if let Err(e) = (&*self.st.file).write_all(frames) {
            // Part of the frames may be in the file: only recovery can cut
            // them off, so nothing more may be appended after them.
            self.st.broken = Some(e.to_string());
            return Err(StorageError::io(&self.st.path, e));
        }
        self.bytes += frames.len() as u64;
        Ok(())
    }

    /// Asks the OS to start writing the frames written so far to disk,
    /// without waiting: the fsync at commit then finds most of a large
    /// transaction's WAL on its way already (PostgreSQL's WAL writer
    /// flushes a running COPY's WAL the same way). Only a hint: a failure
    /// leaves it all to that fsync.
    pub fn start_writeback(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let start = SEGMENT_HEADER as u64 + (self.st.written.0 - self.st.segment_start.0);
            let (from, len) = (start + self.written_back, self.bytes - self.written_back);
            if let (Ok(from), Ok(len)) = (i64::try_from(from), i64::try_from(len)) {
                // SAFETY: a plain system call on an open descriptor; it
                // reads no memory of ours.
                unsafe {
                    libc::sync_file_range(
                        self.st.file.as_raw_fd(),
                        from,
                        len,
                        libc::SYNC_FILE_RANGE_WRITE,
                    )
                };
            }
            self.written_back = self.bytes;
        }
    }

    /// Makes the frames written part of the log; the LSN after them.
    pub fn finish(mut self, mode: CommitMode) -> Lsn {
        self.finished = true;
        let st = &mut self.st;
        st.written = Lsn(st.written.0 + self.bytes);
        if mode == CommitMode::Synchronous {
            self.writer.awaited.store(st.written.0, Ordering::Release);
        }
        st.written
    }
}

impl Drop for Appending<'_> {
    fn drop(&mut self) {
        if self.finished || self.bytes == 0 || self.st.broken.is_some() {
            return;
        }
        let st = &mut self.st;
        let end = SEGMENT_HEADER as u64 + (st.written.0 - st.segment_start.0);
        let cut = st
            .file
            .set_len(end)
            .and_then(|()| (&*st.file).seek(SeekFrom::Start(end)).map(|_| ()));
        if let Err(e) = cut {
            st.broken = Some(e.to_string());
        }
    }
}

/// fsyncs the directory so a new or renamed file in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))
}

fn create_segment(dir: &Path, start: Lsn) -> Result<(Arc<File>, PathBuf)> {
    let path = segment_path(dir, start);
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| StorageError::io(&path, e))?;
    f.write_all(&segment_header(start))
        .and_then(|_| f.sync_data())
        .map_err(|e| StorageError::io(&path, e))?;
    sync_dir(dir)?;
    Ok((Arc::new(f), path))
}

impl WalWriter {
    /// Starts a new segment at `start` in `dir`; segments grow to about
    /// `segment_bytes` before the next one begins. Group-commit fsyncs
    /// are timed into `fsync_seconds`.
    pub fn create(
        dir: &Path,
        start: Lsn,
        segment_bytes: u64,
        fsync_seconds: Histogram,
    ) -> Result<WalWriter> {
        let (file, path) = create_segment(dir, start)?;
        Ok(WalWriter {
            dir: dir.to_path_buf(),
            segment_bytes,
            state: Mutex::new(WriterState {
                file,
                path,
                segment_start: start,
                written: start,
                flushed: start,
                flushing: false,
                broken: None,
                fsyncs: 0,
            }),
            flushed: Condvar::new(),
            awaited: AtomicU64::new(start.0),
            flushed_at: AtomicU64::new(start.0),
            flushed_tx: tokio::sync::watch::Sender::new(start),
            fsync_seconds,
            #[cfg(test)]
            fsync_hook: FsyncHook::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, WriterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn broken(why: &str) -> StorageError {
        StorageError::new(
            "58030",
            format!("the WAL is unusable after an I/O error ({why}); restart the shard"),
        )
    }

    /// Appends whole frames (one transaction) and returns the LSN after
    /// them. Not durable until [`WalWriter::flush`] covers that LSN;
    /// `mode` says whether readers wait for that.
    pub fn append(&self, frames: &[u8], mode: CommitMode) -> Result<Lsn> {
        let mut appending = self.begin(frames.len() as u64)?;
        appending.write(frames)?;
        Ok(appending.finish(mode))
    }

    /// Starts appending one transaction's frames piece by piece (about
    /// `expected` bytes: a segment over its size with them starts the
    /// next one first). The writer stays locked until the [`Appending`]
    /// is finished or dropped.
    pub fn begin(&self, expected: u64) -> Result<Appending<'_>> {
        let mut st = self.lock();
        if let Some(why) = &st.broken {
            return Err(Self::broken(why));
        }
        let used = st.written.0 - st.segment_start.0;
        if used > 0 && used + expected > self.segment_bytes {
            // The old segment must be durable before records follow it in
            // the next one (it is already when a flush covered all of it:
            // every synchronous commit's did); then the tail moves on.
            if st.flushed < st.written {
                if let Err(e) = st.file.sync_data() {
                    st.broken = Some(e.to_string());
                    return Err(StorageError::io(&st.path, e));
                }
            }
            let start = st.written;
            let (file, path) = create_segment(&self.dir, start)?;
            st.file = file;
            st.path = path;
            st.segment_start = start;
        }
        Ok(Appending {
            writer: self,
            st,
            bytes: 0,
            written_back: 0,
            finished: false,
        })
    }

    /// Returns once everything up to `upto` is on disk (group commit).
    pub fn flush(&self, upto: Lsn) -> Result<()> {
        let mut st = self.lock();
        loop {
            if let Some(why) = &st.broken {
                return Err(Self::broken(why));
            }
            if st.flushed >= upto {
                return Ok(());
            }
            if st.flushing {
                st = self.flushed.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            st.flushing = true;
            let target = st.written;
            let file = Arc::clone(&st.file);
            drop(st);
            let started = Instant::now();
            let outcome = self.sync(&file);
            self.fsync_seconds.observe(started.elapsed().as_secs_f64());
            st = self.lock();
            st.flushing = false;
            st.fsyncs += 1;
            match outcome {
                Ok(()) => {
                    st.flushed = st.flushed.max(target);
                    let flushed = st.flushed;
                    self.flushed_at.store(flushed.0, Ordering::Release);
                    self.flushed_tx.send_if_modified(|at| {
                        let moved = *at < flushed;
                        *at = flushed.max(*at);
                        moved
                    });
                }
                Err(e) => st.broken = Some(e.to_string()),
            }
            self.flushed.notify_all();
        }
    }

    #[cfg(not(test))]
    fn sync(&self, file: &File) -> std::io::Result<()> {
        file.sync_data()
    }

    #[cfg(test)]
    fn sync(&self, file: &File) -> std::io::Result<()> {
        let hook = self.fsync_hook.0.lock().unwrap_or_else(|e| e.into_inner());
        match hook.as_ref() {
            Some(hook) => hook().and_then(|()| file.sync_data()),
            None => file.sync_data(),
        }
    }

    /// Returns once every synchronous transaction appended so far is on
    /// disk (with all WAL before it); 58030 when the WAL failed to reach
    /// it. Called with the tables read-locked, so no commit appends
    /// meanwhile and "so far" covers every applied one.
    pub fn wait_durable(&self) -> Result<()> {
        let awaited = self.awaited.load(Ordering::Acquire);
        if self.flushed_at.load(Ordering::Acquire) >= awaited {
            return Ok(());
        }
        self.flush(Lsn(awaited))
    }

    /// Flushes everything appended so far (the WAL writer's round).
    pub fn flush_written(&self) -> Result<()> {
        let upto = self.written();
        self.flush(upto)
    }

    /// LSN after the last appended frame.
    pub fn written(&self) -> Lsn {
        self.lock().written
    }

    /// LSN up to which the WAL is known to be on disk.
    pub fn flushed(&self) -> Lsn {
        self.lock().flushed
    }

    /// A receiver of the durable position, updated after each fsync.
    pub fn subscribe_flushed(&self) -> tokio::sync::watch::Receiver<Lsn> {
        self.flushed_tx.subscribe()
    }

    /// Number of fsyncs group commit has issued.
    pub fn fsyncs(&self) -> u64 {
        self.lock().fsyncs
    }

    /// Start LSN of the segment being appended to.
    pub fn segment_start(&self) -> Lsn {
        self.lock().segment_start
    }
}
