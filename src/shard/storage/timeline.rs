//! Timelines: each promotion of a standby starts a new one, so WAL written
//! after a fork is told apart from the WAL another server wrote after the
//! same LSN. The history says where each earlier timeline ended (the LSN
//! the next one began at), as PostgreSQL's `.history` files do.
//!
//! ```text
//! <data dir>/TIMELINE := current timeline id, newline,
//!                        then per earlier timeline: id, space, end LSN (X/X), newline
//! ```
//!
//! No file means timeline 1 with no history. The file is replaced
//! atomically (temporary file, fsync, rename, directory fsync) before a
//! promoted server accepts its first write.

use super::error::{Result, StorageError};
use super::wal::writer::sync_dir;
use super::wal::Lsn;
use std::path::Path;

/// Name of the timeline file in the data directory.
pub const TIMELINE: &str = "TIMELINE";

/// A server's timeline and the ones before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// The current timeline's id.
    pub current: u32,
    /// Earlier timelines, oldest first: (id, the LSN where it ended).
    pub history: Vec<(u32, Lsn)>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            current: 1,
            history: Vec::new(),
        }
    }
}

fn parse_lsn(text: &str) -> Option<Lsn> {
    let (hi, lo) = text.split_once('/')?;
    Some(Lsn(
        (u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?
    ))
}

impl Timeline {
    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n", self.current);
        for (id, end) in &self.history {
            out.push_str(&format!("{id} {end}\n"));
        }
        out
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Option<Timeline> {
        let mut lines = text.lines();
        let current = lines.next()?.trim().parse().ok()?;
        let history = lines
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (id, end) = l.trim().split_once(' ')?;
                Some((id.parse().ok()?, parse_lsn(end)?))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Timeline { current, history })
    }

    /// Reads the timeline of `data` (timeline 1 without a file).
    pub fn load(data: &Path) -> Result<Timeline> {
        let path = data.join(TIMELINE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Timeline::parse(&text)
                .ok_or_else(|| StorageError::corrupted(&path, "not a timeline history")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Timeline::default()),
            Err(e) => Err(StorageError::io(&path, e)),
        }
    }

    /// Writes it durably into `data`.
    pub fn save(&self, data: &Path) -> Result<()> {
        let path = data.join(TIMELINE);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, self.to_text())
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| StorageError::io(&path, e))?;
        sync_dir(data)
    }

    /// The next timeline, forked from this one at `end`.
    pub fn fork(&self, end: Lsn) -> Timeline {
        let mut history = self.history.clone();
        history.push((self.current, end));
        Timeline {
            current: self.current + 1,
            history,
        }
    }

    /// Where timeline `id` ended according to this history (`None`: it is
    /// the current one, or unknown).
    pub fn end_of(&self, id: u32) -> Option<Lsn> {
        self.history.iter().find(|(t, _)| *t == id).map(|(_, e)| *e)
    }

    /// Whether WAL up to `end` on timeline `id` is a prefix of this
    /// history's WAL: `id` is the current timeline, or an earlier one
    /// that ended at or after `end`.
    pub fn contains(&self, id: u32, end: Lsn) -> bool {
        id == self.current || self.end_of(id).is_some_and(|e| end <= e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histories_round_trip_and_tell_forks_apart() {
        let t = Timeline::default()
            .fork(Lsn(0x3A8))
            .fork(Lsn(0x1_0000_0010));
        assert_eq!(t.current, 3);
        assert_eq!(Timeline::parse(&t.to_text()), Some(t.clone()));
        assert!(t.contains(1, Lsn(0x3A8)));
        assert!(!t.contains(1, Lsn(0x3A9)));
        assert!(t.contains(3, Lsn(u64::MAX)));
        assert!(!t.contains(4, Lsn(0)));
        assert_eq!(Timeline::parse("x"), None);
    }
}
