//! A parsed statement with what the statement path asks of it, worked out
//! once per text: the parse memo keeps [`Classified`] values, so a
//! statement a client sends again and again is not scanned again at each
//! execution (its kind, the look at its text for session functions and
//! `set_config`, the walk of its tree for functions that may write).
//!
//! A statement rewritten before it runs (session values bound, WITH
//! values inlined) is classified afresh: its facts are its own.

use crate::proxy::cache;
use crate::proxy::ops::local::{self, Local};
use crate::proxy::plan;
use crate::sql::{self, classify, SetConfigCall, StatementKind};

/// A parsed statement, its kind and its [`Facts`].
#[derive(Debug)]
pub struct Classified {
    /// The statement.
    pub statement: sql::Statement,
    /// Its kind.
    pub kind: StatementKind,
    /// What the statement path asks of it.
    pub facts: Facts,
}

/// What the statement path asks of a statement, each a scan of its text
/// or a walk of its tree.
#[derive(Debug)]
pub struct Facts {
    /// It may call a session function (`current_user`, …) whose value
    /// the proxy binds before sending it on ([`sql::bind_session_values`]).
    pub session_values: bool,
    /// An operations statement the proxy answers itself.
    pub local: Option<Local>,
    /// `SELECT pgvshard.cache_clear()`.
    pub cache_clear: bool,
    /// Its `set_config` calls with literal arguments: the client's
    /// session takes them once the shard accepted the statement.
    pub set_configs: Vec<SetConfigCall>,
    /// It may call `set_config` (with any arguments): the shard
    /// connections that ran it must be reset before another session uses
    /// them, as their settings are no longer what the proxy recorded.
    pub calls_set_config: bool,
    /// It has two SELECTs: WITH queries or scalar subqueries may have to
    /// be evaluated first ([`plan::may_evaluate_first`]).
    pub evaluate_first: bool,
    /// It calls a function that may write, so it reads from a primary
    /// and counts as a write for the cache
    /// ([`cache::may_write_through_functions`]).
    pub writes_through_functions: bool,
    /// The advisory locks it takes ([`sql::advisory_hold`]), for the
    /// planner.
    pub advisory: sql::AdvisoryHold,
}

impl Classified {
    /// Classifies `statement`.
    pub fn new(statement: sql::Statement) -> Self {
        let kind = classify(&statement);
        let facts = Facts {
            session_values: sql::may_use_session_values(&statement),
            local: local::which(&statement, &kind),
            cache_clear: matches!(kind, StatementKind::Select(_))
                && cache::is_cache_clear(&statement),
            set_configs: sql::set_config_calls(&statement),
            calls_set_config: sql::may_call_set_config(&statement),
            evaluate_first: plan::may_evaluate_first(&statement),
            writes_through_functions: cache::may_write_through_functions(&statement),
            advisory: sql::advisory_hold(&statement),
        };
        Classified {
            statement,
            kind,
            facts,
        }
    }
}
