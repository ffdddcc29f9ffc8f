//! Synchronous replication with PostgreSQL's settings: which standbys a
//! commit waits for (`synchronous_standby_names`, standbys named by their
//! `application_name`) and how far (`synchronous_commit`).
//!
//! ```text
//! synchronous_standby_names := [FIRST] n (name, …)   the n highest-priority connected standbys
//!                            | ANY n (name, …)       any n of them (quorum)
//!                            | name, …               FIRST 1 (name, …)
//!                            | ''                    no synchronous standbys
//! name '*' matches every standby; names compare case-insensitively.
//! ```
//!
//! From the standbys' status updates the primary computes, per kind
//! (write, flush, apply), the position every synchronous standby (FIRST)
//! or n of the quorum (ANY) has reached; a committer waits, after its
//! local fsync, until that position passes its commit: `remote_write`
//! waits for write, `on` for flush, `remote_apply` for apply; `local` and
//! `off` do not wait, nor does anyone when no standby is named; `off`
//! does not even wait for the local fsync (an asynchronous commit, see
//! [`crate::shard::storage::database`]). With fewer synchronous standbys connected
//! than named, commits wait, as PostgreSQL's do.

use crate::shard::storage::{CommitMode, Lsn};

/// How a rule picks its standbys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `FIRST n`: by priority (order in the list).
    First,
    /// `ANY n`: a quorum.
    Any,
}

/// A parsed `synchronous_standby_names`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStandbys {
    /// FIRST or ANY.
    pub method: Method,
    /// How many standbys must confirm.
    pub count: usize,
    /// The names, in priority order.
    pub names: Vec<String>,
}

/// `synchronous_commit`: how far a commit waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SyncLevel {
    /// `off`.
    Off,
    /// `local`.
    Local,
    /// `remote_write`.
    RemoteWrite,
    /// `on`.
    On,
    /// `remote_apply`.
    RemoteApply,
}

impl SyncLevel {
    /// The level a session's `synchronous_commit` names (`on` for
    /// anything unknown, as the setting's default).
    pub fn parse(value: &str) -> SyncLevel {
        match value.to_ascii_lowercase().as_str() {
            "off" | "false" | "no" | "0" => SyncLevel::Off,
            "local" => SyncLevel::Local,
            "remote_write" => SyncLevel::RemoteWrite,
            "remote_apply" => SyncLevel::RemoteApply,
            _ => SyncLevel::On,
        }
    }

    /// Whether the local commit waits for its fsync (all but `off`).
    pub fn commit_mode(self) -> CommitMode {
        match self {
            SyncLevel::Off => CommitMode::Asynchronous,
            _ => CommitMode::Synchronous,
        }
    }

    /// Which reported position it waits for: 0 write, 1 flush, 2 apply.
    pub fn position(self) -> Option<usize> {
        match self {
            SyncLevel::Off | SyncLevel::Local => None,
            SyncLevel::RemoteWrite => Some(0),
            SyncLevel::On => Some(1),
            SyncLevel::RemoteApply => Some(2),
        }
    }
}

fn bad(text: &str) -> String {
    format!("synchronous_standby_names: \"{text}\" is not [FIRST|ANY] n (name, …) or name, …")
}

/// Splits a list of names, unquoting double-quoted ones.
fn names(list: &str, text: &str) -> Result<Vec<String>, String> {
    list.split(',')
        .map(|n| {
            let n = n.trim();
            let unquoted = match n.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
                Some(q) => q.to_string(),
                None => n.to_ascii_lowercase(),
            };
            if unquoted.is_empty() {
                Err(bad(text))
            } else {
                Ok(unquoted)
            }
        })
        .collect()
}

impl SyncStandbys {
    /// Parses the setting; `None` when it names no standby.
    pub fn parse(text: &str) -> Result<Option<SyncStandbys>, String> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(None);
        }
        let upper = t.to_ascii_uppercase();
        let (method, rest) = if let Some(r) = upper.strip_prefix("FIRST ") {
            (Method::First, &t[t.len() - r.len()..])
        } else if let Some(r) = upper.strip_prefix("ANY ") {
            (Method::Any, &t[t.len() - r.len()..])
        } else {
            (Method::First, t)
        };
        let rest = rest.trim();
        let Some(open) = rest.find('(') else {
            if method == Method::Any || upper.starts_with("FIRST ") {
                return Err(bad(text));
            }
            return Ok(Some(SyncStandbys {
                method,
                count: 1,
                names: names(rest, text)?,
            }));
        };
        let count: usize = rest[..open].trim().parse().map_err(|_| bad(text))?;
        let list = rest[open + 1..]
            .strip_suffix(')')
            .ok_or_else(|| bad(text))?;
        if count == 0 {
            return Err(format!(
                "synchronous_standby_names: the number of synchronous standbys ({count}) must be greater than zero"
            ));
        }
        Ok(Some(SyncStandbys {
            method,
            count,
            names: names(list, text)?,
        }))
    }

    /// A standby's priority (1 is highest), if the list names it.
    pub fn priority(&self, application_name: &str) -> Option<usize> {
        self.names
            .iter()
            .position(|n| n == "*" || n.eq_ignore_ascii_case(application_name))
            .map(|i| i + 1)
    }

    /// Given each streaming standby's (application name, [write, flush,
    /// apply] positions), the `sync_state` of each and the positions
    /// every commit up to which is confirmed (`None`: not enough
    /// synchronous standbys connected).
    pub fn assess(&self, standbys: &[(&str, [Lsn; 3])]) -> (Vec<&'static str>, Option<[Lsn; 3]>) {
        let mut states = vec!["async"; standbys.len()];
        let mut candidates: Vec<(usize, usize)> = standbys
            .iter()
            .enumerate()
            .filter_map(|(i, (name, _))| self.priority(name).map(|p| (p, i)))
            .collect();
        // Priority first, then connection order (as PostgreSQL breaks ties).
        candidates.sort();
        let chosen: Vec<usize> = match self.method {
            Method::First => {
                for (rank, &(_, i)) in candidates.iter().enumerate() {
                    states[i] = if rank < self.count {
                        "sync"
                    } else {
                        "potential"
                    };
                }
                candidates
                    .iter()
                    .take(self.count)
                    .map(|&(_, i)| i)
                    .collect()
            }
            Method::Any => {
                for &(_, i) in &candidates {
                    states[i] = "quorum";
                }
                candidates.iter().map(|&(_, i)| i).collect()
            }
        };
        if chosen.len() < self.count {
            return (states, None);
        }
        let mut released = [Lsn(0); 3];
        for (k, slot) in released.iter_mut().enumerate() {
            let mut positions: Vec<Lsn> = chosen.iter().map(|&i| standbys[i].1[k]).collect();
            // The count-th highest: reached by at least `count` of them
            // (for FIRST, `chosen` has exactly `count`: their minimum).
            positions.sort_by(|a, b| b.cmp(a));
            *slot = positions[self.count - 1];
        }
        (states, Some(released))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: u64) -> [Lsn; 3] {
        [Lsn(a), Lsn(a), Lsn(a)]
    }

    #[test]
    fn settings_parse_as_postgres_reads_them() {
        let s = SyncStandbys::parse("FIRST 2 (s1, \"S2\", s3)")
            .unwrap()
            .unwrap();
        assert_eq!((s.method, s.count), (Method::First, 2));
        assert_eq!(s.names, ["s1", "S2", "s3"]);
        let s = SyncStandbys::parse("any 1 (a,b)").unwrap().unwrap();
        assert_eq!((s.method, s.count), (Method::Any, 1));
        let s = SyncStandbys::parse("s1, s2").unwrap().unwrap();
        assert_eq!((s.method, s.count, s.names.len()), (Method::First, 1, 2));
        assert_eq!(
            SyncStandbys::parse("*").unwrap().unwrap().priority("x"),
            Some(1)
        );
        assert!(SyncStandbys::parse("").unwrap().is_none());
        assert!(SyncStandbys::parse("FIRST x (a)").is_err());
        assert!(SyncStandbys::parse("ANY 0 (a)").is_err());
        assert_eq!(SyncLevel::parse("remote_apply").position(), Some(2));
        assert_eq!(SyncLevel::parse("local").position(), None);
    }

    #[test]
    fn first_waits_for_the_highest_priority_and_any_for_a_quorum() {
        let first = SyncStandbys::parse("FIRST 1 (s1, s2)").unwrap().unwrap();
        let (states, released) = first.assess(&[("s2", p(5)), ("x", p(9)), ("s1", p(3))]);
        assert_eq!(states, ["potential", "async", "sync"]);
        assert_eq!(released, Some(p(3)));
        let (_, released) = first.assess(&[("x", p(9))]);
        assert_eq!(released, None);
        let any = SyncStandbys::parse("ANY 2 (a, b, c)").unwrap().unwrap();
        let (states, released) = any.assess(&[("a", p(1)), ("b", p(7)), ("c", p(4))]);
        assert_eq!(states, ["quorum"; 3]);
        assert_eq!(released, Some(p(4)));
    }
}
