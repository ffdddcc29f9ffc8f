//! A session's side of read routing: which statements may read on a
//! standby, under which policy, and the replay floors its own writes set
//! (read-your-writes).

use std::collections::{BTreeSet, HashMap};

use super::Topology;
use crate::proxy::config::ReadFrom;
use crate::proxy::session::classified::Classified;
use crate::sql::StatementKind;
use crate::wire::guc::Named;

/// The session setting naming where reads go (libpq's names, plus
/// `default`: as `replication.read_from` says).
pub static TARGET_SESSION_ATTRS: Named = Named::new("pgvshard.target_session_attrs");

/// The leading comment that sends a statement to the primary.
const PRIMARY_HINT: &str = "pgvshard:primary";

/// Which nodes a read may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// A standby within the lag bounds, else the primary.
    PreferStandby,
    /// Only a standby (an error when none qualifies).
    StandbyOnly,
    /// Any node by weight, the primary included.
    Any,
}

/// Where one statement goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Not a read: the primary, not counted as a read.
    Write,
    /// A read the primary must answer, and why.
    Primary(PrimaryRead),
    /// A read that may use other nodes.
    Read(Policy),
}

/// Why a read must go to the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimaryRead {
    /// `SELECT … FOR UPDATE/SHARE` (row locks write WAL).
    Locking,
    /// It calls a function that may write.
    Function,
    /// Its transaction has written.
    Transaction,
    /// The leading `/* pgvshard:primary */` comment.
    Hint,
    /// `pgvshard.target_session_attrs = 'read-write'`.
    SessionAttrs,
    /// `replication.read_from: primary`.
    ReadFrom,
}

impl PrimaryRead {
    /// The `reason` label of `pgvshard_reads_total`.
    pub fn label(self) -> &'static str {
        match self {
            PrimaryRead::Locking => "locking",
            PrimaryRead::Function => "function",
            PrimaryRead::Transaction => "transaction",
            PrimaryRead::Hint => "hint",
            PrimaryRead::SessionAttrs => "session_attrs",
            PrimaryRead::ReadFrom => "read_from",
        }
    }

    /// Whether the read may write (so the session's later reads must
    /// see its position, as after a write).
    pub fn may_write(self) -> bool {
        matches!(
            self,
            PrimaryRead::Locking | PrimaryRead::Function | PrimaryRead::Transaction
        )
    }
}

/// Decides where a statement goes. `attrs`: the session's
/// `pgvshard.target_session_attrs`; `wrote`: its open transaction has
/// written; `read_only`: its open transaction is `READ ONLY`.
pub fn decide(
    classified: &Classified,
    read_from: ReadFrom,
    attrs: &str,
    wrote: bool,
    read_only: bool,
) -> Decision {
    let StatementKind::Select(info) = &classified.kind else {
        return Decision::Write;
    };
    if info.locking {
        return Decision::Primary(PrimaryRead::Locking);
    }
    if classified.facts.writes_through_functions {
        return Decision::Primary(PrimaryRead::Function);
    }
    if wrote && !read_only {
        return Decision::Primary(PrimaryRead::Transaction);
    }
    let comments = &classified.statement.leading_comments;
    if comments.iter().any(|c| c == PRIMARY_HINT) {
        return Decision::Primary(PrimaryRead::Hint);
    }
    match attrs {
        "read-write" => Decision::Primary(PrimaryRead::SessionAttrs),
        "read-only" => Decision::Read(Policy::StandbyOnly),
        "prefer-standby" => Decision::Read(Policy::PreferStandby),
        "any" => Decision::Read(Policy::Any),
        _ if read_only => Decision::Read(Policy::PreferStandby),
        _ => match read_from {
            ReadFrom::Standbys => Decision::Read(Policy::PreferStandby),
            ReadFrom::Any => Decision::Read(Policy::Any),
            ReadFrom::Primary => Decision::Primary(PrimaryRead::ReadFrom),
        },
    }
}

/// The replay positions the session's later reads must see, per shard.
#[derive(Debug, Default)]
pub struct SessionReads {
    floors: HashMap<usize, u64>,
    /// Shards whose primary the open statement or transaction used.
    touched: BTreeSet<usize>,
}

impl SessionReads {
    /// Notes that `shards`' primaries ran something that may write.
    pub fn touched(&mut self, shards: impl IntoIterator<Item = usize>) {
        self.touched.extend(shards);
    }

    /// After the writes noted committed (before they are acknowledged):
    /// reads the primaries' positions into the floors. A position read
    /// after a later write is past every earlier one of the session (its
    /// statements run one after the other), so it replaces the floor.
    pub async fn committed(&mut self, topology: &Topology) {
        for shard in std::mem::take(&mut self.touched) {
            if let Some(lsn) = topology.committed(shard).await {
                self.floors.insert(shard, lsn);
            }
        }
    }

    /// After a rollback: nothing noted was written.
    pub fn rolled_back(&mut self) {
        self.touched.clear();
    }

    /// The floor of `shard`.
    pub fn floor(&self, shard: usize) -> Option<u64> {
        self.floors.get(&shard).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_single;

    fn decided(sql: &str, attrs: &str, wrote: bool) -> Decision {
        let c = Classified::new(parse_single(sql).unwrap());
        decide(&c, ReadFrom::Standbys, attrs, wrote, false)
    }

    #[test]
    fn statements_that_may_write_or_lock_go_to_the_primary() {
        let read = Decision::Read(Policy::PreferStandby);
        assert_eq!(
            decided("SELECT * FROM t WHERE id = 1", "default", false),
            read
        );
        assert_eq!(decided("SELECT inet_server_port()", "default", false), read);
        assert_eq!(
            decided("INSERT INTO t VALUES (1)", "default", false),
            Decision::Write
        );
        assert_eq!(
            decided(
                "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
                "default",
                false
            ),
            Decision::Write
        );
        for (sql, why) in [
            ("SELECT * FROM t FOR UPDATE", PrimaryRead::Locking),
            (
                "SELECT * FROM t WHERE id = 1 FOR SHARE",
                PrimaryRead::Locking,
            ),
            ("SELECT nextval('s')", PrimaryRead::Function),
            ("SELECT setval('s', 5)", PrimaryRead::Function),
            ("SELECT pg_advisory_lock(1)", PrimaryRead::Function),
            ("SELECT purge_old() FROM t", PrimaryRead::Function),
            (
                "/* pgvshard:primary */ SELECT nextval('s')",
                PrimaryRead::Function,
            ),
            ("/* pgvshard:primary */ SELECT * FROM t", PrimaryRead::Hint),
        ] {
            assert_eq!(
                decided(sql, "default", false),
                Decision::Primary(why),
                "{sql}"
            );
        }
        assert_eq!(
            decided("SELECT * FROM t", "default", true),
            Decision::Primary(PrimaryRead::Transaction)
        );
        assert_eq!(
            decided("SELECT * FROM t", "read-write", false),
            Decision::Primary(PrimaryRead::SessionAttrs)
        );
        assert_eq!(
            decided("SELECT * FROM t", "read-only", false),
            Decision::Read(Policy::StandbyOnly)
        );
        assert_eq!(
            decided("SELECT * FROM t", "any", false),
            Decision::Read(Policy::Any)
        );
    }
}
