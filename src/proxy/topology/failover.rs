//! Which standby replaces a lost primary.
//!
//! All standbys stream the same WAL of one timeline, so the one that has
//! received the most of it holds everything any other one holds. With
//! synchronous replication on, every acknowledged commit was flushed by
//! the standbys the primary last listed as `sync`/`quorum` before it was
//! acknowledged; if every one of them can still be reached, the most
//! advanced reachable standby has every acknowledged commit. If one of
//! them cannot (or their names match no configured node), a commit may
//! exist only there, and no standby is promoted.

/// A standby that could be promoted, as the last poll saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contender {
    /// Its index in the shard's nodes.
    pub node: usize,
    /// Its name (matched against the primary's `application_name`s).
    pub name: String,
    /// WAL received and flushed (`pg_last_wal_receive_lsn()`), or replayed
    /// when larger.
    pub lsn: u64,
}

/// Why no standby may be promoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No standby answers in recovery.
    NoStandby,
    /// A synchronous standby cannot be reached (it may alone hold an
    /// acknowledged commit).
    SynchronousMissing(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NoStandby => write!(f, "no standby answers"),
            Refusal::SynchronousMissing(name) => write!(
                f,
                "synchronous standby \"{name}\" is not reachable as a configured node (its application_name must be its node name): it may alone hold acknowledged commits"
            ),
        }
    }
}

/// The successor among `contenders`: the most advanced, a synchronous one
/// (named in `synchronous`) first among equals. `synchronous`: the
/// standbys the primary last listed as synchronous while
/// `synchronous_standby_names` was set (empty: asynchronous replication).
pub fn successor(contenders: &[Contender], synchronous: &[String]) -> Result<usize, Refusal> {
    if let Some(missing) = synchronous
        .iter()
        .find(|s| !contenders.iter().any(|c| &c.name == *s))
    {
        return Err(Refusal::SynchronousMissing(missing.clone()));
    }
    contenders
        .iter()
        .max_by_key(|c| {
            (
                c.lsn,
                synchronous.contains(&c.name),
                std::cmp::Reverse(c.node),
            )
        })
        .map(|c| c.node)
        .ok_or(Refusal::NoStandby)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(node: usize, name: &str, lsn: u64) -> Contender {
        Contender {
            node,
            name: name.to_string(),
            lsn,
        }
    }

    #[test]
    fn the_most_advanced_wins_and_a_missing_synchronous_standby_blocks() {
        let two = [c(1, "a", 100), c(2, "b", 200)];
        assert_eq!(successor(&two, &[]), Ok(2));
        // Synchronous first among equals.
        let tied = [c(1, "a", 200), c(2, "b", 200)];
        assert_eq!(successor(&tied, &["b".to_string()]), Ok(2));
        assert_eq!(successor(&tied, &[]), Ok(1));
        // An asynchronous standby further ahead than the synchronous one
        // holds every acknowledged commit too.
        assert_eq!(successor(&two, &["a".to_string()]), Ok(2));
        // The synchronous standby is gone: the other may miss commits.
        assert_eq!(
            successor(&[c(1, "a", 100)], &["b".to_string()]),
            Err(Refusal::SynchronousMissing("b".to_string()))
        );
        assert_eq!(successor(&[], &[]), Err(Refusal::NoStandby));
    }
}
