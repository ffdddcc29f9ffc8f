//! Reading the WAL back at startup: committed transactions after a given
//! LSN, in order, and the cut of whatever follows the last whole commit.
//!
//! A frame that is partial, fails its checksum or does not decode ends the
//! log: it and everything after it (later frames of the segment, later
//! segments) is removed, with a warning naming the file and LSN. Records
//! after the last commit are an unfinished transaction and are cut the same
//! way. What remains ends exactly at the last commit, and the writer goes
//! on from there.

use super::record::{parse_frame, Frame, WalRecord};
use super::{check_segment_header, writer::sync_dir, Lsn, SEGMENT_HEADER};
use crate::shard::storage::error::{Result, StorageError};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

/// A segment file and the LSN its name claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// LSN of its first frame.
    pub start: Lsn,
    /// The file.
    pub path: PathBuf,
}

/// The segment files in `dir`, by start LSN.
pub fn list_segments(dir: &Path) -> Result<Vec<Segment>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(dir, e))?;
        let name = entry.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".wal")) else {
            continue;
        };
        if let (16, Ok(start)) = (hex.len(), u64::from_str_radix(hex, 16)) {
            out.push(Segment {
                start: Lsn(start),
                path: entry.path(),
            });
        }
    }
    out.sort_by_key(|s| s.start);
    Ok(out)
}

/// What a replay found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// LSN after the last whole commit (where appending resumes).
    pub end: Lsn,
    /// Committed transactions handed to the callback.
    pub transactions: u64,
    /// Where the log was cut, and why, if it was.
    pub cut: Option<(Lsn, String)>,
}

/// Hands every transaction committed after `from` to `apply` (with the LSN
/// after its commit record), then cuts the WAL after the last one.
pub fn replay(
    dir: &Path,
    from: Lsn,
    mut apply: impl FnMut(Lsn, Vec<WalRecord>) -> Result<()>,
) -> Result<ReplayOutcome> {
    let segments = list_segments(dir)?;
    let first = segments.iter().rposition(|s| s.start <= from);
    if first.is_none() && segments.first().is_some_and(|s| s.start > from) {
        return Err(StorageError::new(
            "XX001",
            format!(
                "WAL in \"{}\" starts at {} but replay must start at {from}: segments are missing",
                dir.display(),
                segments[0].start
            ),
        ));
    }
    let mut out = ReplayOutcome {
        end: from,
        ..ReplayOutcome::default()
    };
    let Some(first) = first else {
        return Ok(out);
    };
    let mut pending: Vec<WalRecord> = Vec::new();
    let mut pos = from;
    // Where damage begins, and what it is.
    let mut damage: Option<(Lsn, String)> = None;
    'segments: for (i, seg) in segments.iter().enumerate().skip(first) {
        if seg.start != pos && i > first {
            damage = Some((seg.start, format!("gap before segment (expected {pos})")));
            break;
        }
        let bytes = std::fs::read(&seg.path).map_err(|e| StorageError::io(&seg.path, e))?;
        if let Err(why) = check_segment_header(&bytes, seg.start) {
            damage = Some((seg.start, why.to_string()));
            break;
        }
        let mut offset = SEGMENT_HEADER + (pos.0 - seg.start.0) as usize;
        if offset > bytes.len() {
            damage = Some((pos, "segment ends before the replay start".into()));
            break;
        }
        loop {
            let frame_lsn = Lsn(seg.start.0 + (offset - SEGMENT_HEADER) as u64);
            match parse_frame(&bytes[offset..]) {
                Frame::End => break,
                Frame::Damaged(why) => {
                    damage = Some((frame_lsn, why.to_string()));
                    break 'segments;
                }
                Frame::Whole(body, len) => match WalRecord::decode(body) {
                    Err(e) => {
                        damage = Some((frame_lsn, format!("undecodable record: {e}")));
                        break 'segments;
                    }
                    Ok(rec) => {
                        offset += len;
                        pos = Lsn(seg.start.0 + (offset - SEGMENT_HEADER) as u64);
                        if rec == WalRecord::Commit {
                            apply(pos, std::mem::take(&mut pending)).map_err(|e| {
                                StorageError::new(
                                    e.sqlstate,
                                    format!(
                                        "replaying the transaction ending at {pos} in \"{}\" failed: {}",
                                        seg.path.display(),
                                        e.message
                                    ),
                                )
                            })?;
                            out.end = pos;
                            out.transactions += 1;
                        } else {
                            pending.push(rec);
                        }
                    }
                },
            }
        }
    }
    let cut_reason = match damage {
        Some(d) => Some(d),
        None if !pending.is_empty() => Some((out.end, "transaction without commit".into())),
        None => None,
    };
    if let Some((lsn, why)) = cut_reason {
        cut_after(dir, &segments, out.end, lsn, &why)?;
        out.cut = Some((lsn, why));
    }
    Ok(out)
}

/// Removes everything after `end`: truncates the segment holding it and
/// deletes the later ones.
fn cut_after(dir: &Path, segments: &[Segment], end: Lsn, at: Lsn, why: &str) -> Result<()> {
    let keep = segments.iter().rposition(|s| s.start <= end).unwrap_or(0);
    for (i, seg) in segments.iter().enumerate() {
        if i == keep && seg.start <= end {
            let len = SEGMENT_HEADER as u64 + (end.0 - seg.start.0);
            tracing::warn!(
                file = %seg.path.display(),
                lsn = %at,
                end = %end,
                "WAL damaged or incomplete ({why}); cutting it at the last whole commit"
            );
            let f = OpenOptions::new()
                .write(true)
                .open(&seg.path)
                .map_err(|e| StorageError::io(&seg.path, e))?;
            f.set_len(len)
                .and_then(|_| f.sync_all())
                .map_err(|e| StorageError::io(&seg.path, e))?;
        } else if i > keep || seg.start > end {
            tracing::warn!(
                file = %seg.path.display(),
                lsn = %seg.start,
                "removing WAL segment after the cut"
            );
            std::fs::remove_file(&seg.path).map_err(|e| StorageError::io(&seg.path, e))?;
        }
    }
    sync_dir(dir)
}

/// Removes the segments that lie wholly before `lsn` (those followed by a
/// segment starting at or before it); returns how many went.
pub fn remove_before(dir: &Path, lsn: Lsn) -> Result<usize> {
    let segments = list_segments(dir)?;
    let mut removed = 0;
    for pair in segments.windows(2) {
        if pair[1].start <= lsn {
            std::fs::remove_file(&pair[0].path).map_err(|e| StorageError::io(&pair[0].path, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}
