//! A session's state the protocol layer owns: who is connected, the
//! transaction status reported in ReadyForQuery, and the settings with
//! PostgreSQL's SET / SET LOCAL / RESET / SHOW semantics:
//!
//! - `SET` changes the session value; if the surrounding transaction rolls
//!   back, the value it had at BEGIN comes back.
//! - `SET LOCAL` lasts until the end of the transaction (outside one it
//!   only warns, 25P01, as PostgreSQL does).
//! - `RESET` returns to the value the client gave at startup, else the
//!   default.
//! - `ROLLBACK TO SAVEPOINT` restores the values (SET and SET LOCAL) the
//!   session had when the savepoint was made; `RELEASE` keeps them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use foldhash::HashMap;

use super::backend::TransactionStatus;
use super::error::PgError;
use super::guc::{self, Guc};
use super::sqlstate;
use crate::sql::TransactionModes;

static DEFAULT_ISOLATION: guc::Named = guc::Named::new("default_transaction_isolation");
static DEFAULT_READ_ONLY: guc::Named = guc::Named::new("default_transaction_read_only");
static READ_ONLY: guc::Named = guc::Named::new("transaction_read_only");
static ISOLATION: guc::Named = guc::Named::new("transaction_isolation");

/// Settings by name (only those that differ from the reset value). Read
/// several times per statement, so hashed with foldhash (the names are the
/// registry's own).
type Values = HashMap<&'static str, String>;

/// One connected client's session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user name from the startup packet.
    pub user: String,
    /// The database name from the startup packet (defaults to the user).
    pub database: String,
    /// Process id reported in BackendKeyData.
    pub pid: i32,
    /// The minor version of protocol 3 the session speaks (0 to 2).
    pub protocol_minor: u16,
    /// A physical replication connection (startup option
    /// `replication=true`): it speaks replication commands, not SQL.
    pub replication: bool,
    /// The user is a superuser ([`WireConfig::superusers`](super::WireConfig::superusers)).
    pub superuser: bool,
    /// The client's address (none for in-process pipes).
    pub peer: Option<std::net::SocketAddr>,
    /// The server address the client reached (`inet_server_port()`;
    /// none for in-process pipes).
    pub server_addr: Option<std::net::SocketAddr>,
    status: TransactionStatus,
    /// Values the client gave at startup: what RESET returns to.
    startup: Values,
    /// Session-level values that differ from the reset value.
    values: Values,
    /// SET LOCAL values of the open transaction.
    local: Values,
    /// Session-level values at BEGIN, restored by ROLLBACK.
    at_begin: Option<Values>,
    /// The open block is the implicit one of a simple Query holding
    /// several statements (see [`Session::begin_implicit`]).
    implicit: bool,
    /// A statement of the open block has read or written (PostgreSQL's
    /// first snapshot): its isolation level and read-write mode are fixed.
    queried: bool,
    /// Session-level and SET LOCAL values at each open savepoint, oldest
    /// first, restored by ROLLBACK TO SAVEPOINT.
    at_savepoints: Vec<(Values, Values)>,
    /// Reported parameters whose value the client has not been sent yet.
    changed: Vec<&'static str>,
    /// Notices raised while preparing a statement, sent before the answer
    /// to its Parse.
    deferred: Vec<PgError>,
    /// Renewed whenever a setting may have changed (see
    /// [`Session::settings_version`]).
    version: u64,
    /// `statement_timeout` as a duration, worked out when a setting
    /// changes rather than at every statement.
    statement_timeout: Option<Duration>,
}

/// The last settings version handed out: versions are unique in the
/// process, so a version names one state of one session's settings and
/// anything brought to that state (a pooled shard connection) can be
/// recognized by whichever session holds it. A counter, not state: it
/// does not tie one server's sessions to another's.
static VERSIONS: AtomicU64 = AtomicU64::new(0);

/// A settings version no session had before.
fn new_version() -> u64 {
    VERSIONS.fetch_add(1, Ordering::Relaxed) + 1
}

impl Session {
    /// A new session for `user` on `database`.
    pub fn new(user: impl Into<String>, database: impl Into<String>, pid: i32) -> Self {
        Session {
            user: user.into(),
            database: database.into(),
            pid,
            protocol_minor: 0,
            replication: false,
            superuser: true,
            peer: None,
            server_addr: None,
            status: TransactionStatus::Idle,
            startup: Values::default(),
            values: Values::default(),
            local: Values::default(),
            at_begin: None,
            implicit: false,
            queried: false,
            at_savepoints: Vec::new(),
            changed: Vec::new(),
            deferred: Vec::new(),
            version: new_version(),
            statement_timeout: None,
        }
    }

    /// Applies a startup-packet option. Unknown or invalid options are
    /// ignored (drivers send options such as `client_encoding=auto`),
    /// read-only ones too.
    pub fn apply_startup_option(&mut self, name: &str, value: &str) {
        self.version = new_version();
        if let Some(g) = guc::find(name).filter(|g| !g.read_only) {
            if let Ok(v) = g.canonical(value) {
                self.startup.insert(g.name, v);
            }
        }
        self.derive();
    }

    /// Works out again what is derived from the settings (after a change).
    fn derive(&mut self) {
        static STATEMENT_TIMEOUT: guc::Named = guc::Named::new("statement_timeout");
        let ms = guc::millis_of(self.setting(&STATEMENT_TIMEOUT).unwrap_or_default());
        self.statement_timeout = (ms > 0).then(|| Duration::from_millis(ms as u64));
    }

    fn known(name: &str) -> Result<&'static Guc, PgError> {
        guc::find(name).ok_or_else(|| PgError::unrecognized_parameter(name))
    }

    fn reset_value(&self, g: &'static Guc) -> &str {
        self.startup.get(g.name).map_or(g.default, String::as_str)
    }

    /// The current value of parameter `name` as `SHOW` prints it.
    pub fn show(&self, name: &str) -> Result<String, PgError> {
        Ok(self.value_of(Self::known(name)?).to_string())
    }

    /// The name a `SHOW` of `name` titles its column with: the
    /// parameter's own spelling (`SHOW datestyle` → `DateStyle`).
    pub fn show_column(name: &str) -> Result<&'static str, PgError> {
        Self::known(name).map(|g| g.name)
    }

    /// The current value of a parameter named in code (as
    /// [`Session::show`], without the search by name or a copy).
    pub fn setting(&self, named: &guc::Named) -> Option<&str> {
        named.guc().map(|g| self.value_of(g))
    }

    /// The current value of a registry parameter (as [`Session::show`],
    /// without the look-up by name or a copy).
    pub fn value(&self, g: &'static Guc) -> &str {
        self.value_of(g)
    }

    fn value_of(&self, g: &'static Guc) -> &str {
        match g.name {
            "session_authorization" => return &self.user,
            // The block's own (BEGIN's or SET TRANSACTION's modes), else
            // the session's default.
            "transaction_isolation" | "transaction_read_only" => {
                if let Some(v) = self.local.get(g.name) {
                    return v;
                }
                let default = match g.name {
                    "transaction_isolation" => &DEFAULT_ISOLATION,
                    _ => &DEFAULT_READ_ONLY,
                };
                return default.guc().map_or(g.default, |d| self.value_of(d));
            }
            _ => {}
        }
        self.local
            .get(g.name)
            .or_else(|| self.values.get(g.name))
            .map_or_else(|| self.reset_value(g), String::as_str)
    }

    /// `SHOW ALL`: (name, setting, description) for every parameter.
    pub fn show_all(&self) -> Vec<(&'static str, String, &'static str)> {
        guc::GUCS
            .iter()
            .map(|g| (g.name, self.value_of(g).to_string(), g.description))
            .collect()
    }

    /// `SET [LOCAL] name = value`. Returns a warning to send as a notice
    /// when PostgreSQL would warn (SET LOCAL outside a transaction).
    pub fn set(
        &mut self,
        name: &str,
        value: &str,
        local: bool,
    ) -> Result<Option<PgError>, PgError> {
        self.version = new_version();
        let g = Self::known(name)?;
        if g.read_only {
            return Err(PgError::new(
                sqlstate::CANT_CHANGE_RUNTIME_PARAM,
                format!("parameter \"{}\" cannot be changed", g.name),
            ));
        }
        let v = g.canonical(value)?;
        if local && self.status == TransactionStatus::Idle {
            return Ok(Some(PgError::warning(
                sqlstate::NO_ACTIVE_SQL_TRANSACTION,
                "SET LOCAL can only be used in transaction blocks",
            )));
        }
        let before = self.value_of(g).to_string();
        if local {
            self.local.insert(g.name, v);
        } else {
            self.local.remove(g.name);
            self.values.insert(g.name, v);
        }
        self.derive();
        self.note_change(g, &before);
        Ok(None)
    }

    /// `RESET name` (`SET name TO DEFAULT`).
    pub fn reset(&mut self, name: &str) -> Result<(), PgError> {
        self.version = new_version();
        let g = Self::known(name)?;
        if g.read_only {
            return Err(PgError::new(
                sqlstate::CANT_CHANGE_RUNTIME_PARAM,
                format!("parameter \"{}\" cannot be changed", g.name),
            ));
        }
        let before = self.value_of(g).to_string();
        self.local.remove(g.name);
        self.values.remove(g.name);
        self.derive();
        self.note_change(g, &before);
        Ok(())
    }

    /// `RESET ALL` (also part of `DISCARD ALL`).
    pub fn reset_all(&mut self) {
        self.version = new_version();
        let before = self.snapshot_reported();
        self.local.clear();
        self.values.clear();
        self.derive();
        self.note_changes_since(before);
    }

    fn snapshot_reported(&self) -> Vec<(&'static Guc, String)> {
        guc::GUCS
            .iter()
            .filter(|g| g.report)
            .map(|g| (g, self.value_of(g).to_string()))
            .collect()
    }

    fn note_changes_since(&mut self, before: Vec<(&'static Guc, String)>) {
        for (g, v) in before {
            self.note_change(g, &v);
        }
    }

    fn note_change(&mut self, g: &'static Guc, before: &str) {
        if g.report && self.value_of(g) != before && !self.changed.contains(&g.name) {
            self.changed.push(g.name);
        }
    }

    /// Keeps a notice to send before the answer to the current Parse.
    pub fn defer_notice(&mut self, notice: PgError) {
        self.deferred.push(notice);
    }

    /// The notices deferred so far, taken.
    pub fn take_deferred_notices(&mut self) -> Vec<PgError> {
        std::mem::take(&mut self.deferred)
    }

    /// Reported parameters that changed since the last call, with their new
    /// values: the server sends each as ParameterStatus.
    pub fn take_reports(&mut self) -> Vec<(&'static str, String)> {
        let names = std::mem::take(&mut self.changed);
        names
            .into_iter()
            .filter_map(|n| guc::find(n).map(|g| (g.name, self.value_of(g).to_string())))
            .collect()
    }

    /// The current value of a known integer parameter (0 if unparsable,
    /// which the registry prevents).
    pub fn int(&self, name: &str) -> Result<i64, PgError> {
        Ok(self.show(name)?.parse().unwrap_or(0))
    }

    /// `statement_timeout`, `None` when 0 (disabled).
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.statement_timeout
    }

    /// A number that changes whenever a setting may have changed, unique
    /// in the process: what is derived from settings can be kept until it
    /// moves.
    pub fn settings_version(&self) -> u64 {
        self.version
    }

    /// The status ReadyForQuery reports.
    pub fn transaction_status(&self) -> TransactionStatus {
        self.status
    }

    /// BEGIN: opens a transaction block (a no-op inside one; the executor
    /// warns as PostgreSQL does).
    pub fn begin(&mut self) {
        if self.status == TransactionStatus::Idle {
            self.status = TransactionStatus::InTransaction;
            self.at_begin = Some(self.values.clone());
        }
    }

    /// Opens the implicit block of a simple Query holding several
    /// statements, as PostgreSQL runs them: the handler commits it when
    /// the string ends; a statement that fails rolls it back.
    pub fn begin_implicit(&mut self) {
        self.begin();
        self.implicit = true;
    }

    /// True while the open block is an implicit one.
    pub fn implicit(&self) -> bool {
        self.implicit
    }

    /// BEGIN inside an implicit block: the block (with the statements
    /// before it) becomes an explicit one.
    pub fn make_explicit(&mut self) {
        self.implicit = false;
    }

    /// A statement failed inside a transaction block: the block is aborted
    /// until ROLLBACK; an implicit one is rolled back at once (its handler
    /// learns it from [`Session::implicit`] when the failed statement's
    /// future was dropped before it could).
    pub fn fail(&mut self) {
        if self.implicit {
            self.rollback();
        } else if self.status == TransactionStatus::InTransaction {
            self.status = TransactionStatus::Failed;
        }
    }

    /// The modes of BEGIN or SET TRANSACTION for the open block (they
    /// end with it; no-op outside one). Each shard runs read committed
    /// whatever level is named: the level is only shown.
    pub fn set_transaction_modes(&mut self, modes: &TransactionModes) -> Result<(), PgError> {
        if self.status == TransactionStatus::Idle {
            return Ok(());
        }
        if self.queried {
            let current = self.setting(&ISOLATION);
            if modes.isolation.is_some() && modes.isolation.as_deref() != current {
                return Err(PgError::new(
                    sqlstate::ACTIVE_SQL_TRANSACTION,
                    "SET TRANSACTION ISOLATION LEVEL must be called before any query",
                ));
            }
            if modes.read_only == Some(false) && self.read_only_transaction() {
                return Err(PgError::new(
                    sqlstate::ACTIVE_SQL_TRANSACTION,
                    "transaction read-write mode must be set before any query",
                ));
            }
        }
        self.version = new_version();
        if let Some(read_only) = modes.read_only {
            let v = if read_only { "on" } else { "off" };
            self.local.insert("transaction_read_only", v.into());
        }
        if let Some(level) = &modes.isolation {
            self.local.insert("transaction_isolation", level.clone());
        }
        Ok(())
    }

    /// The open block's statement reads or writes (see
    /// [`StatementKind::takes_snapshot`](crate::sql::StatementKind::takes_snapshot)).
    pub fn note_query(&mut self) {
        self.queried = self.status != TransactionStatus::Idle;
    }

    /// `SET TRANSACTION …` for the open block, or (`defaults`) `SET
    /// SESSION CHARACTERISTICS AS TRANSACTION …`: the session's defaults.
    /// Returns PostgreSQL's warning for SET TRANSACTION outside a block.
    pub fn set_transaction(
        &mut self,
        modes: &TransactionModes,
        defaults: bool,
    ) -> Result<Option<PgError>, PgError> {
        if !defaults {
            if self.status == TransactionStatus::Idle {
                return Ok(Some(PgError::warning(
                    sqlstate::NO_ACTIVE_SQL_TRANSACTION,
                    "SET TRANSACTION can only be used in transaction blocks",
                )));
            }
            self.set_transaction_modes(modes)?;
            return Ok(None);
        }
        if let Some(read_only) = modes.read_only {
            let v = if read_only { "on" } else { "off" };
            self.set("default_transaction_read_only", v, false)?;
        }
        if let Some(level) = &modes.isolation {
            self.set("default_transaction_isolation", level, false)?;
        }
        Ok(None)
    }

    /// The open block's modes (for `AND CHAIN`).
    pub fn transaction_modes(&self) -> TransactionModes {
        TransactionModes {
            read_only: Some(self.read_only_transaction()),
            isolation: self.local.get("transaction_isolation").cloned(),
        }
    }

    /// True when the open transaction (or, outside one, the next) may
    /// not write.
    pub fn read_only_transaction(&self) -> bool {
        self.setting(&READ_ONLY) == Some("on")
    }

    /// SAVEPOINT: remembers the values to restore when the block rolls
    /// back to it.
    pub fn savepoint(&mut self) {
        self.at_savepoints
            .push((self.values.clone(), self.local.clone()));
    }

    /// RELEASE SAVEPOINT of the block's `depth`-th savepoint (0 = oldest):
    /// it and the later ones end, their values stay.
    pub fn release_savepoint(&mut self, depth: usize) {
        self.at_savepoints.truncate(depth);
    }

    /// ROLLBACK TO SAVEPOINT, the block's `depth`-th (0 = oldest): the
    /// values it saw come back, the later savepoints end, and an aborted
    /// block is usable again.
    pub fn rollback_to_savepoint(&mut self, depth: usize) {
        if self.status == TransactionStatus::Failed {
            self.status = TransactionStatus::InTransaction;
        }
        self.at_savepoints.truncate(depth + 1);
        if let Some((values, local)) = self.at_savepoints.last().cloned() {
            self.version = new_version();
            let before = self.snapshot_reported();
            self.values = values;
            self.local = local;
            self.derive();
            self.note_changes_since(before);
        }
    }

    /// COMMIT: SET LOCAL values end, SET values stay. Committing a failed
    /// block is a rollback, as in PostgreSQL.
    pub fn commit(&mut self) {
        if self.status == TransactionStatus::Failed {
            return self.rollback();
        }
        self.end_transaction(None);
    }

    /// ROLLBACK: SET LOCAL values end and SET values made in the block are
    /// undone.
    pub fn rollback(&mut self) {
        let restore = self.at_begin.take();
        self.end_transaction(restore);
    }

    fn end_transaction(&mut self, restore: Option<Values>) {
        self.version = new_version();
        let before = self.snapshot_reported();
        self.local.clear();
        if let Some(values) = restore {
            self.values = values;
        }
        self.at_begin = None;
        self.implicit = false;
        self.queried = false;
        self.at_savepoints.clear();
        self.status = TransactionStatus::Idle;
        self.derive();
        self.note_changes_since(before);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_version_moves_with_every_change() {
        let mut s = Session::new("u", "d", 1);
        let mut last = s.settings_version();
        let mut moved = |s: &Session| {
            let moved = s.settings_version() != last;
            last = s.settings_version();
            moved
        };
        s.begin();
        assert!(!moved(&s));
        s.set("hnsw.ef_search", "100", true).unwrap();
        assert!(moved(&s));
        s.rollback();
        assert!(moved(&s));
        assert_eq!(s.show("hnsw.ef_search").unwrap(), "40");
        s.set("hnsw.ef_search", "60", false).unwrap();
        assert!(moved(&s));
        s.reset("hnsw.ef_search").unwrap();
        assert!(moved(&s));
        s.reset_all();
        assert!(moved(&s));
        assert!(s.show("hnsw.ef_search").is_ok());
        assert!(!moved(&s));
    }

    #[test]
    fn set_local_is_rolled_back_at_transaction_end() {
        let mut s = Session::new("u", "d", 1);
        s.begin();
        s.set("hnsw.ef_search", "100", true).unwrap();
        assert_eq!(s.show("hnsw.ef_search").unwrap(), "100");
        s.commit();
        assert_eq!(s.show("hnsw.ef_search").unwrap(), "40");
        let warn = s.set("hnsw.ef_search", "50", true).unwrap().unwrap();
        assert_eq!(warn.code, "25P01");
        assert_eq!(s.show("hnsw.ef_search").unwrap(), "40");
    }

    #[test]
    fn rollback_undoes_set_and_commit_keeps_it() {
        let mut s = Session::new("u", "d", 1);
        s.begin();
        s.set("ivfflat.probes", "7", false).unwrap();
        s.fail();
        assert_eq!(s.transaction_status(), TransactionStatus::Failed);
        s.rollback();
        assert_eq!(s.show("ivfflat.probes").unwrap(), "1");
        s.begin();
        s.set("ivfflat.probes", "7", false).unwrap();
        s.commit();
        assert_eq!(s.show("ivfflat.probes").unwrap(), "7");
        s.reset("ivfflat.probes").unwrap();
        assert_eq!(s.int("ivfflat.probes").unwrap(), 1);
    }

    #[test]
    fn rollback_to_savepoint_restores_its_values_and_release_keeps_them() {
        let mut s = Session::new("u", "d", 1);
        s.begin();
        s.set("hnsw.ef_search", "11", false).unwrap();
        s.savepoint();
        s.set("hnsw.ef_search", "22", false).unwrap();
        s.set("ivfflat.probes", "3", true).unwrap();
        s.savepoint();
        s.set("hnsw.ef_search", "33", false).unwrap();
        s.release_savepoint(1);
        assert_eq!(s.show("hnsw.ef_search").unwrap(), "33");
        let before = s.settings_version();
        s.fail();
        s.rollback_to_savepoint(0);
        assert_ne!(s.settings_version(), before);
        assert_eq!(s.transaction_status(), TransactionStatus::InTransaction);
        assert_eq!(s.show("hnsw.ef_search").unwrap(), "11");
        assert_eq!(s.show("ivfflat.probes").unwrap(), "1");
        s.commit();
        assert_eq!(s.show("hnsw.ef_search").unwrap(), "11");
    }

    #[test]
    fn startup_values_are_reset_targets_and_reports_follow_changes() {
        let mut s = Session::new("u", "d", 1);
        s.apply_startup_option("application_name", "psql");
        s.apply_startup_option("client_encoding", "auto");
        assert_eq!(s.show("client_encoding").unwrap(), "UTF8");
        s.set("application_name", "x", false).unwrap();
        s.set("hnsw.ef_search", "10", false).unwrap();
        assert_eq!(
            s.take_reports(),
            vec![("application_name", "x".to_string())]
        );
        s.reset_all();
        assert_eq!(s.show("application_name").unwrap(), "psql");
        assert_eq!(
            s.take_reports(),
            vec![("application_name", "psql".to_string())]
        );
        assert!(s.take_reports().is_empty());
    }

    #[test]
    fn errors_name_the_parameter() {
        let mut s = Session::new("u", "d", 1);
        let e = s.set("nope.x", "1", false).unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.message.as_str()),
            ("42704", "unrecognized configuration parameter \"nope.x\"")
        );
        assert_eq!(s.show("nope").unwrap_err().code, "42704");
        assert_eq!(
            s.set("server_version", "1", false).unwrap_err().code,
            "55P02"
        );
        s.set("statement_timeout", "50ms", false).unwrap();
        assert_eq!(s.statement_timeout(), Some(Duration::from_millis(50)));
        s.begin();
        s.set("statement_timeout", "2s", true).unwrap();
        assert_eq!(s.statement_timeout(), Some(Duration::from_secs(2)));
        s.rollback();
        assert_eq!(s.statement_timeout(), Some(Duration::from_millis(50)));
        s.reset("statement_timeout").unwrap();
        assert_eq!(s.statement_timeout(), None);
        assert_eq!(s.show_all().len(), guc::GUCS.len());
    }
}
