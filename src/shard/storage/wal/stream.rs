//! Reading WAL for shipping: the raw frames between two LSNs, as a WAL
//! sender sends them to a standby (which appends the same bytes to its
//! own WAL, so both logs have the same LSNs).
//!
//! Only whole frames are returned: a chunk ends at a frame boundary, so a
//! standby never holds half a record. Callers ask only up to the durable
//! position, so the bytes read were fsynced and are never cut again.

use super::reader::list_segments;
use super::record::{parse_frame, Frame, FRAME_HEADER};
use super::{Lsn, SEGMENT_HEADER};
use crate::shard::storage::error::{Result, StorageError};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// 58P01 when WAL at `lsn` is no longer on disk (a checkpoint removed it).
pub fn wal_removed(lsn: Lsn) -> StorageError {
    StorageError::new(
        "58P01",
        format!("requested WAL at {lsn} has already been removed"),
    )
}

/// The whole frames starting at `from`, up to `upto` (exclusive) and about
/// `max` bytes (always at least one frame when `from < upto`). Empty when
/// there is nothing to read.
pub fn read_frames(dir: &Path, from: Lsn, upto: Lsn, max: usize) -> Result<Vec<u8>> {
    if from >= upto {
        return Ok(Vec::new());
    }
    let segments = list_segments(dir)?;
    let Some(seg) = segments.iter().rev().find(|s| s.start <= from) else {
        return Err(wal_removed(from));
    };
    let mut file = File::open(&seg.path).map_err(|e| StorageError::io(&seg.path, e))?;
    let offset = SEGMENT_HEADER as u64 + (from.0 - seg.start.0);
    let len = file
        .metadata()
        .map_err(|e| StorageError::io(&seg.path, e))?
        .len();
    // Bytes of this segment before `upto` (later ones are in the next).
    let available = len.saturating_sub(offset).min(upto.0 - from.0) as usize;
    if available == 0 {
        return Err(StorageError::new(
            "XX001",
            format!(
                "WAL segment \"{}\" ends before {from}, which was flushed",
                seg.path.display()
            ),
        ));
    }
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| StorageError::io(&seg.path, e))?;
    let mut header = [0u8; FRAME_HEADER];
    file.read_exact(&mut header)
        .map_err(|e| StorageError::io(&seg.path, e))?;
    let first =
        FRAME_HEADER + u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let want = available.min(max.max(first));
    let mut buf = header.to_vec();
    buf.resize(want.max(FRAME_HEADER), 0);
    file.read_exact(&mut buf[FRAME_HEADER..])
        .map_err(|e| StorageError::io(&seg.path, e))?;
    let mut end = 0;
    loop {
        match parse_frame(&buf[end..]) {
            Frame::Whole(_, n) => end += n,
            Frame::End => break,
            Frame::Damaged(_) if end > 0 => break,
            Frame::Damaged(why) => {
                return Err(StorageError::new(
                    "XX001",
                    format!(
                        "WAL at {from} in \"{}\" is damaged: {why}",
                        seg.path.display()
                    ),
                ))
            }
        }
    }
    buf.truncate(end);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::storage::wal::record::WalRecord;
    use crate::shard::storage::wal::writer::{CommitMode, WalWriter};

    #[test]
    fn chunks_end_at_frame_boundaries_across_segments() {
        let dir = std::env::temp_dir().join(format!("pgvshard-walstream-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let hist =
            prometheus::Histogram::with_opts(prometheus::HistogramOpts::new("t", "t")).unwrap();
        let w = WalWriter::create(&dir, Lsn(0), 64, hist).unwrap();
        let mut frames = Vec::new();
        for i in 0..6 {
            let mut f = Vec::new();
            WalRecord::Truncate { table: i }.encode(&mut f);
            WalRecord::Commit.encode(&mut f);
            w.append(&f, CommitMode::Synchronous).unwrap();
            frames.extend_from_slice(&f);
        }
        let end = w.written();
        w.flush(end).unwrap();
        let mut at = Lsn(0);
        let mut got = Vec::new();
        while at < end {
            let chunk = read_frames(&dir, at, end, 20).unwrap();
            assert!(!chunk.is_empty());
            at = Lsn(at.0 + chunk.len() as u64);
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, frames);
        assert!(read_frames(&dir, end, end, 20).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
