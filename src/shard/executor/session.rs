//! One client session: statement dispatch, the open transaction, and the
//! bridge from async protocol handling to blocking work.

use super::advisory_locks::Scope as LockScope;
use super::expr::{Env, Globals, StandbyPositions};
use super::prepared_knn::PreparedKnn;
use super::select::{is_short_knn, run_query, Column, Ctx, PlanSeen, Relation};
use super::{
    catalog, copy, ddl, dml, explain, maintenance, overlay, replication_views, storage_error,
    warning, BuildEntry, Outcome, Shard,
};
use crate::metrics::QueryPlan;
use crate::shard::datum::Datum;
use crate::shard::replication::control::RecoveryControl;
use crate::shard::replication::sender::SenderSession;
use crate::shard::replication::sync::SyncLevel;
use crate::shard::storage::{AnnSearch, Change, PrepareRecord, Transaction};
use crate::sql::{
    self, classify, ParamHint, StatementKind, TransactionControl, TransactionModes, TwoPhase,
};
use crate::wire::types::oid;
use crate::wire::{
    CancelSignal, FieldDescription, HandlerFactory, Params, PgError, Prepared, QueryHandler,
    Responder, Session, TransactionStatus,
};
use ann::{BuildProgress, HnswSearch, IterativeScan, IvfSearch};
use sqlparser::ast::Statement as Ast;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

mod planned;

/// Makes a [`ShardSession`] per connection.
pub struct ShardFactory {
    shard: Arc<Shard>,
}

impl ShardFactory {
    /// A factory over `shard`.
    pub fn new(shard: Arc<Shard>) -> Self {
        ShardFactory { shard }
    }
}

impl HandlerFactory for ShardFactory {
    type Handler = ShardSession;

    fn connect(&self, session: &Session) -> Result<ShardSession, PgError> {
        let sender = match session.replication {
            false => None,
            true if self.shard.replication.may_replicate(&session.user) => Some(
                SenderSession::new(self.shard.db.clone(), self.shard.replication.clone()),
            ),
            true => {
                return Err(PgError::new(
                    "42501",
                    "must be superuser or replication role to start walsender",
                ))
            }
        };
        Ok(ShardSession {
            pid: session.pid,
            shard: self.shard.clone(),
            txn: None,
            savepoints: Vec::new(),
            sender,
            ann: None,
            planned: HashMap::new(),
            last_parse: None,
            block_started: 0,
            query_received: None,
            sequence_values: Arc::default(),
        })
    }
}

/// A prepared statement: parsed, classified and typed once at Parse.
#[derive(Debug)]
pub struct PreparedStatement {
    /// Unique in the process: the key of the session's plans for it.
    id: u64,
    stmt: Option<(Arc<sql::Statement>, StatementKind)>,
    param_types: Vec<u32>,
}

/// Ids of prepared statements.
static NEXT_STATEMENT_ID: AtomicU64 = AtomicU64::new(1);

impl PreparedStatement {
    fn new(stmt: Option<(Arc<sql::Statement>, StatementKind)>, param_types: Vec<u32>) -> Self {
        PreparedStatement {
            id: NEXT_STATEMENT_ID.fetch_add(1, Ordering::Relaxed),
            stmt,
            param_types,
        }
    }
}

/// What a session planned for one of its prepared statements.
enum Planned {
    /// A KNN statement, planned once.
    Knn(Arc<PreparedKnn>),
    /// Not one [`PreparedKnn`] answers, under the schema of this epoch.
    Interpreted { epoch: u64 },
}

/// A Parse's result and what it depended on.
struct LastParse {
    sql: String,
    given: Vec<u32>,
    /// [`Tables::schema_epoch`](crate::shard::storage::Tables::schema_epoch) then.
    schema_epoch: u64,
    /// [`Session::settings_version`] then.
    settings: u64,
    prepared: Prepared<Arc<PreparedStatement>>,
}

/// Plans a session keeps; past this many it forgets them all (statements
/// closed long ago among them) and plans again.
const PLANS_KEPT: usize = 256;

/// One session's executor.
pub struct ShardSession {
    /// The session's process id (holder of its advisory locks).
    pid: i32,
    shard: Arc<Shard>,
    /// The open transaction block's write set.
    txn: Option<Transaction>,
    /// The block's savepoints, oldest first: each name with the write set
    /// as it was when the savepoint was set.
    savepoints: Vec<(String, Transaction)>,
    /// A replication connection's commands (it runs no SQL).
    sender: Option<SenderSession>,
    /// The ANN settings as of a [`Session::settings_version`]: read from
    /// the settings again only when they may have changed.
    ann: Option<(u64, AnnSearch)>,
    /// Plans of the session's prepared statements, by statement id.
    planned: HashMap<u64, Planned>,
    /// The last statement Parse prepared, answered again for the same
    /// text and types (drivers send their unnamed statements anew each
    /// time) while the schema and the session's settings stay the same.
    last_parse: Option<LastParse>,
    /// When the open transaction block began (`now()` inside it).
    block_started: i64,
    /// When the simple Query being run arrived: every statement of it
    /// starts then (`statement_timestamp()`), as in PostgreSQL.
    query_received: Option<i64>,
    /// The session's last sequence values (`currval`, `lastval`).
    sequence_values: Arc<Mutex<super::sequences::SessionValues>>,
}

impl Drop for ShardSession {
    /// A session's advisory locks end with it.
    fn drop(&mut self) {
        self.shard.advisory_locks.release_all(self.pid, None);
    }
}

fn parse_error(e: sql::SqlError) -> PgError {
    PgError::from(e)
}

/// Whether this thread runs a multi-threaded runtime's tasks, where
/// `block_in_place` can lend it to a blocking call (it panics on a
/// current-thread runtime).
fn can_block_in_place() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

fn join_error(e: tokio::task::JoinError) -> PgError {
    PgError::internal(format!("statement task failed: {e}"))
}

/// The session's ANN settings.
fn ann_settings(s: &Session) -> Result<AnnSearch, PgError> {
    let iterative = |name: &str| -> Result<IterativeScan, PgError> {
        Ok(IterativeScan::parse(&s.show(name)?)?)
    };
    Ok(AnnSearch {
        hnsw: HnswSearch::new(
            s.int("hnsw.ef_search")? as usize,
            iterative("hnsw.iterative_scan")?,
            s.int("hnsw.max_scan_tuples")? as usize,
            s.show("hnsw.scan_mem_multiplier")?.parse().unwrap_or(1.0),
        )?,
        ivfflat: IvfSearch::new(
            s.int("ivfflat.probes")? as usize,
            iterative("ivfflat.iterative_scan")?,
            s.int("ivfflat.max_probes")? as usize,
        )?,
        exact: s.show("enable_indexscan")? == "off",
    })
}

/// Everything a statement needs on the blocking pool.
struct Job {
    shard: Arc<Shard>,
    stmt: Arc<sql::Statement>,
    params: Vec<Datum>,
    param_types: Vec<u32>,
    globals: Globals,
    ann: AnnSearch,
    cancel: Arc<CancelSignal>,
    /// The open transaction's changes, which its own reads see.
    own_writes: Vec<Change>,
    /// The plan its reads used.
    plan: PlanSeen,
    /// Whether the text can name a `pg_…` relation (see
    /// [`may_name_catalog`]); without it no catalog view is looked for.
    names_catalog: bool,
}

/// Whether `text` can name a `pg_…` relation: spelled so in some case, or
/// hidden in a `U&"…"` escape. One scan per statement instead of one per
/// catalog view (a prepared KNN query's text names none).
fn may_name_catalog(text: &str) -> bool {
    let spelled = |s: &[u8]| {
        text.as_bytes()
            .windows(s.len())
            .any(|w| w.eq_ignore_ascii_case(s))
    };
    spelled(b"pg_") || spelled(b"u&")
}

impl Job {
    fn with_ctx<T>(
        &self,
        dry: bool,
        f: impl FnOnce(&Ctx) -> Result<T, PgError>,
    ) -> Result<T, PgError> {
        let tables = self.shard.db.read().map_err(storage_error)?;
        let mut ctes = std::collections::HashMap::new();
        let mentions = |view: &str| {
            self.names_catalog
                && self
                    .stmt
                    .text
                    .as_bytes()
                    .windows(view.len())
                    .any(|w| w.eq_ignore_ascii_case(view.as_bytes()))
        };
        if mentions(catalog::PROGRESS_VIEW) {
            let view = catalog::progress_view(&self.shard, &tables, &self.globals.session.database);
            ctes.insert(catalog::PROGRESS_VIEW.to_string(), Arc::new(view));
        }
        if mentions(catalog::PREPARED_XACTS_VIEW) {
            let view = catalog::prepared_xacts_view(&tables);
            ctes.insert(catalog::PREPARED_XACTS_VIEW.to_string(), Arc::new(view));
        }
        if mentions(replication_views::REPLICATION_VIEW) {
            let view = replication_views::replication_view(&self.shard.replication);
            ctes.insert(
                replication_views::REPLICATION_VIEW.to_string(),
                Arc::new(view),
            );
        }
        if mentions(replication_views::WAL_RECEIVER_VIEW) {
            let view = replication_views::wal_receiver_view(
                &self.shard.replication,
                self.shard.db.timeline().current,
            );
            ctes.insert(
                replication_views::WAL_RECEIVER_VIEW.to_string(),
                Arc::new(view),
            );
        }
        if mentions(catalog::TABLE_STATS_VIEW) {
            let view = catalog::table_stats_view(&tables);
            ctes.insert(catalog::TABLE_STATS_VIEW.to_string(), Arc::new(view));
        }
        for (name, rel) in overlay::relations(&tables, &self.own_writes) {
            ctes.insert(name, Arc::new(rel));
        }
        let ctx = Ctx {
            tables: &tables,
            env: Env {
                params: &self.params,
                globals: &self.globals,
                aggregates: None,
                scope: None,
                outer: None,
            },
            param_types: &self.param_types,
            ann: &self.ann,
            cancel: self.cancel.flag(),
            dry,
            ctes,
            plan: &self.plan,
            subquery_types: Default::default(),
        };
        f(&ctx)
    }
}

impl Job {
    /// Whether the statement is a KNN query short enough to run on the
    /// session's task (see [`is_short_knn`]) rather than the blocking pool.
    fn is_short_knn(&self) -> bool {
        let Ast::Query(q) = &self.stmt.ast else {
            return false;
        };
        self.own_writes.is_empty()
            && self
                .with_ctx(false, |ctx| Ok(is_short_knn(q, ctx)))
                .unwrap_or(false)
    }
}

/// Commits `txn`, then waits for the synchronous standbys. `progress`
/// is linked to the statement's cancel flag (`cancel`), so an index build
/// or a wait inside the commit stops at its next check when the statement
/// is canceled; a cancel request during the wait for the standbys ends
/// it with the WARNING returned (the commit stands, as PostgreSQL's).
fn commit(
    shard: &Shard,
    txn: Transaction,
    cancel: &CancelSignal,
    progress: &BuildProgress,
    level: SyncLevel,
) -> Result<Option<PgError>, PgError> {
    let lsn = shard
        .db
        .commit_with_progress(txn, progress, level.commit_mode())
        .map_err(storage_error)?;
    shard.replication.wait_synchronous(lsn, level, cancel)
}

/// `outcome` with the warning a commit may have left.
fn noting(outcome: Outcome, warning: Option<PgError>) -> Outcome {
    match warning {
        Some(w) => outcome.with_notice(w),
        None => outcome,
    }
}

/// The session's `synchronous_commit`.
fn sync_level(session: &Session) -> SyncLevel {
    SyncLevel::parse(&session.show("synchronous_commit").unwrap_or_default())
}

impl ShardSession {
    fn globals(&self, session: &Session) -> Globals {
        let db = &self.shard.db;
        let statement_start = self
            .query_received
            .unwrap_or_else(crate::wire::datetime::now);
        Globals {
            statement_start,
            transaction_start: match session.transaction_status() {
                TransactionStatus::Idle => statement_start,
                _ => self.block_started,
            },
            session: session.clone(),
            db: Arc::clone(&self.shard.db),
            set_configs: Arc::default(),
            standby: db.in_recovery().then(|| {
                let r = self.shard.replication.receiver();
                StandbyPositions {
                    receive_lsn: r.flushed_lsn.max(db.flushed_lsn()).to_string(),
                    replay_lsn: db.flushed_lsn().to_string(),
                    replay_time: r.replay_time,
                }
            }),
            recovery: Some(self.recovery()),
            advisory_locks: Arc::clone(&self.shard.advisory_locks),
            sequences: Arc::clone(&self.shard.sequences),
            sequence_values: Arc::clone(&self.sequence_values),
            cancel: Arc::default(),
        }
    }

    fn recovery(&self) -> RecoveryControl {
        RecoveryControl {
            db: Arc::clone(&self.shard.db),
            replication: Arc::clone(&self.shard.replication),
        }
    }

    /// Runs one statement; when it leaves no transaction open (it ended
    /// one, or ran outside a block), the transaction's advisory locks end.
    async fn run(
        &mut self,
        stmt: &Arc<sql::Statement>,
        kind: StatementKind,
        params: Vec<Datum>,
        param_types: Vec<u32>,
        out: &mut Responder<'_>,
    ) -> Result<(), PgError> {
        let result = self
            .run_statement(stmt, kind, params, param_types, out)
            .await;
        if out.session().transaction_status() == TransactionStatus::Idle {
            self.release_transaction_locks();
        }
        result
    }

    async fn run_statement(
        &mut self,
        stmt: &Arc<sql::Statement>,
        kind: StatementKind,
        params: Vec<Datum>,
        param_types: Vec<u32>,
        out: &mut Responder<'_>,
    ) -> Result<(), PgError> {
        let status = out.session().transaction_status();
        if status == TransactionStatus::Failed && !kind.ends_transaction() {
            return Err(PgError::in_failed_transaction());
        }
        if let Some(alter) = stmt.alter_system() {
            if !out.session().superuser {
                return Err(PgError::new(
                    "42501",
                    format!("permission denied to set parameter \"{}\"", alter.name),
                ));
            }
            // Allowed on a standby, as PostgreSQL's.
            if status != TransactionStatus::Idle {
                return Err(PgError::new(
                    "25001",
                    "ALTER SYSTEM cannot run inside a transaction block",
                ));
            }
            self.recovery()
                .alter_system(&alter.name, alter.value.as_deref())?;
            return send(Outcome::tag("ALTER SYSTEM"), out).await;
        }
        if kind.takes_snapshot() {
            out.session().note_query();
        }
        if let StatementKind::Maintenance(m) = &kind {
            maintenance::check(m, out.session(), self.shard.db.in_recovery())?;
            let outcome = match m {
                sql::Maintenance::Checkpoint => {
                    let shard = self.shard.clone();
                    tokio::task::spawn_blocking(move || maintenance::checkpoint(&shard))
                        .await
                        .map_err(join_error)??
                }
                sql::Maintenance::Vacuum(v) => {
                    let tables = self.shard.db.read().map_err(storage_error)?;
                    let fresh = Transaction::new();
                    maintenance::vacuum(&tables, self.txn.as_ref().unwrap_or(&fresh), v)?
                }
            };
            return send(outcome, out).await;
        }
        if matches!(&stmt.ast, Ast::CreateIndex(ci) if ci.concurrently)
            && status != TransactionStatus::Idle
        {
            return Err(PgError::new(
                "25001",
                "CREATE INDEX CONCURRENTLY cannot run inside a transaction block",
            ));
        }
        if let Some(command) = writing_command(&stmt.ast, &kind) {
            let in_recovery = self.shard.db.in_recovery();
            // Two-phase commands are refused only on a standby, as
            // PostgreSQL's PreventCommandDuringRecovery does.
            let refusal = match kind {
                StatementKind::Transaction(_) if in_recovery => "during recovery",
                StatementKind::Transaction(_) => "",
                _ if in_recovery => "in a read-only transaction",
                _ if out.session().read_only_transaction() => "in a read-only transaction",
                _ => "",
            };
            if !refusal.is_empty() {
                return Err(PgError::new(
                    "25006",
                    format!("cannot execute {command} {refusal}"),
                ));
            }
        }
        let outcome = match kind {
            StatementKind::SetTransaction { modes, session } => {
                let warning = out.session().set_transaction(&modes, session)?;
                noting(Outcome::tag("SET"), warning)
            }
            StatementKind::Set(sv) => {
                let session = out.session();
                let mut o = Outcome::tag("SET");
                match &sv.value {
                    None => session.reset(&sv.name)?,
                    Some(v) => {
                        if let Some(w) = session.set(&sv.name, v, sv.local)? {
                            o = o.with_notice(w);
                        }
                    }
                }
                o
            }
            StatementKind::Show(name) if name == "max_prepared_transactions" => {
                let max = self.shard.db.max_prepared_transactions().to_string();
                Outcome::select(Relation {
                    columns: vec![Column {
                        name,
                        ty: (oid::TEXT, -1),
                    }],
                    rows: vec![vec![Some(crate::wire::Value::Text(max))]],
                })
            }
            StatementKind::Show(name) if name == "synchronous_standby_names" => {
                let names = self
                    .shard
                    .replication
                    .synchronous_standby_names()
                    .to_string();
                Outcome::select(Relation {
                    columns: vec![Column {
                        name,
                        ty: (oid::TEXT, -1),
                    }],
                    rows: vec![vec![Some(crate::wire::Value::Text(names))]],
                })
            }
            StatementKind::Show(name) if name == RECALL_VIEW => {
                Outcome::select(recall_view(&self.shard))
            }
            StatementKind::Show(name) => show(out.session(), &name)?,
            StatementKind::Reset(name) => {
                match name {
                    None => out.session().reset_all(),
                    Some(n) => out.session().reset(&n)?,
                }
                Outcome::tag("RESET")
            }
            StatementKind::Discard => {
                if status != TransactionStatus::Idle {
                    return Err(PgError::new(
                        "25001",
                        "DISCARD ALL cannot run inside a transaction block",
                    ));
                }
                out.session().reset_all();
                self.shard.advisory_locks.release_all(self.pid, None);
                Outcome::tag("DISCARD ALL")
            }
            StatementKind::Transaction(tc) => self.transaction(tc, out).await?,
            StatementKind::Copy(info) => {
                let job = self.job(stmt, params, param_types, out)?;
                return copy::run(self, job_parts(job), info, out).await;
            }
            _ => {
                let job = self.job(stmt, params, param_types, out)?;
                let set_configs = Arc::clone(&job.globals.set_configs);
                let outcome = self.statement(job, kind, status).await?;
                let made =
                    std::mem::take(&mut *set_configs.lock().unwrap_or_else(|e| e.into_inner()));
                for set in made {
                    out.session().set(&set.name, &set.value, set.local)?;
                }
                self.log_sequences().await?;
                outcome
            }
        };
        send(outcome, out).await
    }

    /// Writes the sequence values the statement took ahead before its
    /// answer is sent, as PostgreSQL's nextval makes its commit flush them.
    async fn log_sequences(&self) -> Result<(), PgError> {
        if !self.shard.sequences.pending() {
            return Ok(());
        }
        let shard = Arc::clone(&self.shard);
        tokio::task::spawn_blocking(move || shard.sequences.log_pending(&shard.db))
            .await
            .map_err(join_error)?
    }

    /// The session's ANN settings, kept while its settings stay put.
    fn ann_settings(&mut self, session: &Session) -> Result<AnnSearch, PgError> {
        let version = session.settings_version();
        match self.ann {
            Some((v, ann)) if v == version => Ok(ann),
            _ => {
                let ann = ann_settings(session)?;
                self.ann = Some((version, ann));
                Ok(ann)
            }
        }
    }

    fn job(
        &mut self,
        stmt: &Arc<sql::Statement>,
        params: Vec<Datum>,
        param_types: Vec<u32>,
        out: &mut Responder<'_>,
    ) -> Result<Job, PgError> {
        let cancel = out.cancel_signal().clone();
        let session = out.session();
        let ann = self.ann_settings(session)?;
        Ok(Job {
            shard: self.shard.clone(),
            names_catalog: may_name_catalog(&stmt.text),
            stmt: Arc::clone(stmt),
            params,
            param_types,
            ann,
            globals: Globals {
                cancel: Arc::clone(&cancel),
                ..self.globals(session)
            },
            cancel,
            own_writes: Vec::new(),
            plan: PlanSeen::default(),
        })
    }

    async fn transaction(
        &mut self,
        tc: TransactionControl,
        out: &mut Responder<'_>,
    ) -> Result<Outcome, PgError> {
        let status = out.session().transaction_status();
        // An implicit block takes no savepoints; BEGIN makes it explicit
        // (the statements before stay in it); COMMIT, ROLLBACK and
        // PREPARE TRANSACTION end it with PostgreSQL's warning that no
        // transaction was in progress.
        let implicit = out.session().implicit();
        let begin = matches!(tc, TransactionControl::Begin { .. });
        let no_block = || warning("25P01", "there is no transaction in progress");
        if !begin && status != TransactionStatus::Idle && !implicit {
            if let Some(o) = self.savepoint(&tc, out)? {
                return Ok(o);
            }
        }
        if let TransactionControl::Commit { chain: true }
        | TransactionControl::Rollback { chain: true } = tc
        {
            if status == TransactionStatus::Idle || implicit {
                let what = match tc {
                    TransactionControl::Commit { .. } => "COMMIT",
                    _ => "ROLLBACK",
                };
                return Err(PgError::new(
                    "25P01",
                    format!("{what} AND CHAIN can only be used in transaction blocks"),
                ));
            }
        }
        let outcome = match tc {
            TransactionControl::Begin { start, modes } => {
                let tag = if start { "START TRANSACTION" } else { "BEGIN" };
                let outcome = if implicit {
                    out.session().make_explicit();
                    Outcome::tag(tag)
                } else if status != TransactionStatus::Idle {
                    Outcome::tag(tag).with_notice(warning(
                        "25001",
                        "there is already a transaction in progress",
                    ))
                } else {
                    self.begin_block(out.session(), false);
                    Outcome::tag(tag)
                };
                out.session().set_transaction_modes(&modes)?;
                outcome
            }
            TransactionControl::Commit { chain } => {
                let modes = chain.then(|| out.session().transaction_modes());
                let outcome = match status {
                    TransactionStatus::Idle => Outcome::tag("COMMIT").with_notice(no_block()),
                    TransactionStatus::Failed => {
                        self.roll_back_block(out.session());
                        Outcome::tag("ROLLBACK")
                    }
                    TransactionStatus::InTransaction => {
                        let warning = self.commit_block(out).await?;
                        noting(Outcome::tag("COMMIT"), warning)
                    }
                };
                self.chain(modes, out.session())?;
                outcome
            }
            TransactionControl::Rollback { chain } => {
                let modes = chain.then(|| out.session().transaction_modes());
                self.roll_back_block(out.session());
                self.chain(modes, out.session())?;
                let o = Outcome::tag("ROLLBACK");
                if status == TransactionStatus::Idle {
                    o.with_notice(no_block())
                } else {
                    o
                }
            }
            TransactionControl::Savepoint(_)
            | TransactionControl::Release(_)
            | TransactionControl::RollbackTo(_) => {
                let what = match tc {
                    TransactionControl::Savepoint(_) => "SAVEPOINT",
                    TransactionControl::Release(_) => "RELEASE SAVEPOINT",
                    _ => "ROLLBACK TO SAVEPOINT",
                };
                return Err(PgError::new(
                    "25P01",
                    format!("{what} can only be used in transaction blocks"),
                ));
            }
            TransactionControl::TwoPhase(tp) => self.two_phase(tp, status, out).await?,
        };
        Ok(if implicit && !begin {
            outcome.with_notice(no_block())
        } else {
            outcome
        })
    }

    /// The statements of a simple Query, run in turn; several outside a
    /// block run in one implicit block (PostgreSQL's): all of them take
    /// effect or none.
    async fn run_query(&mut self, sql_text: &str, out: &mut Responder<'_>) -> Result<(), PgError> {
        let statements = sql::parse(sql_text).map_err(parse_error)?;
        // As PostgreSQL's lexer: every statement's notices before any runs.
        for notice in statements.iter().flat_map(crate::wire::truncation_notices) {
            out.notice(&notice);
        }
        if statements.is_empty() {
            out.empty_query();
            return Ok(());
        }
        let several = statements.len() > 1;
        for (i, stmt) in statements.into_iter().map(Arc::new).enumerate() {
            if i > 0 {
                out.restart_statement_timeout();
            }
            if several && out.session().transaction_status() == TransactionStatus::Idle {
                self.begin_block(out.session(), true);
            }
            let kind = classify(&stmt);
            if let Err(e) = self.run(&stmt, kind, Vec::new(), Vec::new(), out).await {
                if out.session().implicit() {
                    self.roll_back_block(out.session());
                }
                return Err(e);
            }
        }
        if out.session().implicit() {
            if let Some(warning) = self.commit_block(out).await? {
                out.notice(&warning);
            }
        }
        Ok(())
    }

    /// Opens a transaction block (`implicit`: a simple Query's, see
    /// [`Session::begin_implicit`]).
    fn begin_block(&mut self, session: &mut Session, implicit: bool) {
        if implicit {
            session.begin_implicit();
        } else {
            session.begin();
        }
        self.txn = Some(Transaction::new());
        self.block_started = self
            .query_received
            .unwrap_or_else(crate::wire::datetime::now);
    }

    /// `AND CHAIN`: a new block with the ended one's `modes` (None: no
    /// chain).
    fn chain(
        &mut self,
        modes: Option<TransactionModes>,
        session: &mut Session,
    ) -> Result<(), PgError> {
        if let Some(modes) = modes {
            self.begin_block(session, false);
            session.set_transaction_modes(&modes)?;
        }
        Ok(())
    }

    /// Commits the open block (its session [shielded](CancelSignal::shield)
    /// from then on), returning the warning the commit may have left.
    async fn commit_block(&mut self, out: &mut Responder<'_>) -> Result<Option<PgError>, PgError> {
        let txn = self.end_block().unwrap_or_default();
        out.session().commit();
        // An empty block logs nothing, so no standby has anything to confirm.
        let committed = if txn.is_empty() {
            Ok(None)
        } else {
            let level = sync_level(out.session());
            let shard = self.shard.clone();
            let cancel = out.cancel_signal().clone();
            cancel.shield();
            tokio::task::spawn_blocking(move || {
                let progress = BuildProgress::linked_to(cancel.shared_flag());
                commit(&shard, txn, &cancel, &progress, level)
            })
            .await
            .map_err(join_error)
            .and_then(|r| r)
        };
        self.release_transaction_locks();
        committed
    }

    /// Rolls the open block back (nothing when none is open).
    fn roll_back_block(&mut self, session: &mut Session) {
        self.end_block();
        if session.transaction_status() != TransactionStatus::Idle {
            session.rollback();
        }
        self.release_transaction_locks();
    }

    /// Ends the transaction block, returning its write set.
    fn end_block(&mut self) -> Option<Transaction> {
        self.savepoints.clear();
        self.txn.take()
    }

    /// The advisory locks taken for the transaction end with it.
    fn release_transaction_locks(&self) {
        self.shard
            .advisory_locks
            .release_all(self.pid, Some(LockScope::Transaction));
    }

    /// SAVEPOINT, RELEASE and ROLLBACK TO inside a block (`None` for the
    /// other commands). A savepoint is a copy of the write set.
    fn savepoint(
        &mut self,
        tc: &TransactionControl,
        out: &mut Responder<'_>,
    ) -> Result<Option<Outcome>, PgError> {
        let find = |savepoints: &[(String, Transaction)], name: &str| {
            savepoints
                .iter()
                .rposition(|(n, _)| n == name)
                .ok_or_else(|| {
                    PgError::new("3B001", format!("savepoint \"{name}\" does not exist"))
                })
        };
        Ok(Some(match tc {
            TransactionControl::Savepoint(name) => {
                let txn = self.txn.clone().unwrap_or_default();
                self.savepoints.push((name.clone(), txn));
                out.session().savepoint();
                Outcome::tag("SAVEPOINT")
            }
            TransactionControl::Release(name) => {
                let at = find(&self.savepoints, name)?;
                self.savepoints.truncate(at);
                out.session().release_savepoint(at);
                Outcome::tag("RELEASE")
            }
            TransactionControl::RollbackTo(name) => {
                let at = find(&self.savepoints, name)?;
                self.savepoints.truncate(at + 1);
                self.txn = self.savepoints.last().map(|(_, t)| t.clone());
                out.session().rollback_to_savepoint(at);
                Outcome::tag("ROLLBACK")
            }
            _ => return Ok(None),
        }))
    }

    /// PREPARE TRANSACTION, COMMIT PREPARED, ROLLBACK PREPARED.
    async fn two_phase(
        &mut self,
        tp: TwoPhase,
        status: TransactionStatus,
        out: &mut Responder<'_>,
    ) -> Result<Outcome, PgError> {
        let shard = self.shard.clone();
        let cancel = out.cancel_signal().clone();
        cancel.shield();
        let (tag, finish) = match tp {
            TwoPhase::Prepare(gid) => {
                let txn = self.end_block();
                match status {
                    TransactionStatus::Idle => {
                        return Ok(Outcome::tag("ROLLBACK")
                            .with_notice(warning("25P01", "there is no transaction in progress")))
                    }
                    TransactionStatus::Failed => {
                        out.session().rollback();
                        return Ok(Outcome::tag("ROLLBACK"));
                    }
                    TransactionStatus::InTransaction => out.session().commit(),
                }
                let session = out.session();
                let record = PrepareRecord {
                    gid,
                    owner: session.user.clone(),
                    database: session.database.clone(),
                    prepared_at: crate::wire::datetime::now(),
                    changes: txn.unwrap_or_default().into_changes(),
                };
                let progress = BuildProgress::linked_to(cancel.shared_flag());
                let level = sync_level(session);
                let warning = tokio::task::spawn_blocking(move || {
                    let lsn = shard.db.prepare(record, &progress).map_err(storage_error)?;
                    shard.replication.wait_synchronous(lsn, level, &cancel)
                })
                .await
                .map_err(join_error)??;
                return Ok(noting(Outcome::tag("PREPARE TRANSACTION"), warning));
            }
            TwoPhase::CommitPrepared(gid) => (("COMMIT PREPARED", "COMMIT"), (gid, true)),
            TwoPhase::RollbackPrepared(gid) => (("ROLLBACK PREPARED", "ROLLBACK"), (gid, false)),
        };
        if status != TransactionStatus::Idle {
            return Err(PgError::new(
                "25001",
                format!("{} cannot run inside a transaction block", tag.0),
            ));
        }
        let (gid, commit) = finish;
        let level = sync_level(out.session());
        let warning = tokio::task::spawn_blocking(move || {
            let lsn = shard
                .db
                .finish_prepared(&gid, commit)
                .map_err(storage_error)?;
            shard.replication.wait_synchronous(lsn, level, &cancel)
        })
        .await
        .map_err(join_error)??;
        Ok(noting(Outcome::tag(tag.0), warning))
    }

    /// Runs a statement the interpreter handles.
    async fn statement(
        &mut self,
        job: Job,
        kind: StatementKind,
        status: TransactionStatus,
    ) -> Result<Outcome, PgError> {
        match kind {
            StatementKind::Select(_) => {
                let mut job = job;
                if status == TransactionStatus::InTransaction {
                    job.own_writes = self
                        .txn
                        .as_ref()
                        .map_or_else(Vec::new, |t| t.changes().to_vec());
                }
                if job.is_short_knn() {
                    return read(&job);
                }
                if can_block_in_place() {
                    // On this thread, its other tasks moved to another: a
                    // point query skips the hand-off to the blocking pool
                    // and back (two thread wake-ups). Cancel requests and
                    // statement_timeout (fired by the runtime's timer)
                    // still reach the read through `job.cancel`.
                    return tokio::task::block_in_place(|| read(&job));
                }
                tokio::task::spawn_blocking(move || read(&job))
                    .await
                    .map_err(join_error)?
            }
            StatementKind::Explain { analyze, .. } => tokio::task::spawn_blocking(move || {
                crate::stack::with_tree(job.stmt.depth, || {
                    job.with_ctx(false, |ctx| explain::explain(&job.stmt.ast, analyze, ctx))
                })
            })
            .await
            .map_err(join_error)?,
            StatementKind::Insert(_)
            | StatementKind::Update(_)
            | StatementKind::Delete(_)
            | StatementKind::Ddl(_) => {
                let in_block = status == TransactionStatus::InTransaction;
                let txn = if in_block {
                    self.txn.take().unwrap_or_default()
                } else {
                    Transaction::new()
                };
                job.cancel.shield();
                let (outcome, txn) =
                    tokio::task::spawn_blocking(move || write(&job, txn, in_block))
                        .await
                        .map_err(join_error)?;
                if in_block {
                    self.txn = txn;
                }
                outcome
            }
            _ => Err(PgError::feature_not_supported(format!(
                "statement is not supported: {}",
                job.stmt.text.trim()
            ))),
        }
    }
}

/// The parts of a job COPY needs.
pub struct CopyJob {
    /// The shard.
    pub shard: Arc<Shard>,
    /// The statement.
    pub stmt: Arc<sql::Statement>,
    /// Session state for default expressions.
    pub globals: Globals,
    /// Cancel flag.
    pub cancel: Arc<CancelSignal>,
}

fn job_parts(job: Job) -> CopyJob {
    CopyJob {
        shard: job.shard,
        stmt: job.stmt,
        globals: job.globals,
        cancel: job.cancel,
    }
}

impl ShardSession {
    /// Writes rows that arrive over time (COPY FROM STDIN) into the open
    /// block's write set, or a fresh transaction committed at once outside
    /// a block: `load` fills the write set on a blocking thread (taking
    /// the table lock itself, batch by batch) while `feed` runs here, and
    /// only then is the statement shielded and committed. A cancel before
    /// that drops both and leaves nothing; so does an error of either
    /// (`load`'s is reported first).
    pub(super) async fn write_streamed(
        &mut self,
        in_block: bool,
        shard: Arc<Shard>,
        cancel: Arc<CancelSignal>,
        level: SyncLevel,
        load: impl FnOnce(&mut Transaction) -> Result<Outcome, PgError> + Send + 'static,
        feed: impl std::future::Future<Output = Result<(), PgError>>,
    ) -> Result<Outcome, PgError> {
        let txn = if in_block {
            self.txn.take().unwrap_or_default()
        } else {
            Transaction::new()
        };
        let loaded = tokio::task::spawn_blocking(move || {
            let mut txn = txn;
            let r = load(&mut txn);
            (r, txn)
        });
        let (fed, loaded) = tokio::join!(feed, loaded);
        let (r, txn) = loaded.map_err(join_error)?;
        let r = r.and_then(|o| fed.map(|()| o));
        cancel.shield();
        let (outcome, txn) = tokio::task::spawn_blocking(move || {
            finish_write(
                &shard,
                r,
                txn,
                in_block,
                &cancel,
                &BuildProgress::linked_to(cancel.shared_flag()),
                level,
            )
        })
        .await
        .map_err(join_error)?;
        if in_block {
            self.txn = txn;
        }
        outcome
    }
}

/// Ends a write statement (its session [shielded](CancelSignal::shield)
/// it): canceled before this point it fails with 57014 and leaves nothing
/// behind; outside a transaction block it commits.
fn finish_write(
    shard: &Shard,
    r: Result<Outcome, PgError>,
    txn: Transaction,
    in_block: bool,
    cancel: &CancelSignal,
    progress: &BuildProgress,
    level: SyncLevel,
) -> (Result<Outcome, PgError>, Option<Transaction>) {
    match r.and_then(|o| cancel.error().map_or(Ok(o), Err)) {
        Ok(o) if !in_block => (
            commit(shard, txn, cancel, progress, level).map(|w| noting(o, w)),
            None,
        ),
        r => (r, Some(txn)),
    }
}

fn read(job: &Job) -> Result<Outcome, PgError> {
    crate::stack::with_tree(job.stmt.depth, || {
        let Ast::Query(q) = &job.stmt.ast else {
            return Err(PgError::internal("not a query"));
        };
        let started = Instant::now();
        let result = job
            .with_ctx(false, |ctx| run_query(q, ctx))
            .map(Outcome::select);
        job.shard.queries.observe(job.plan.get(), started.elapsed());
        job.shard.queries.add_ann_search_cpu(job.plan.index_cpu());
        if let Ok(Outcome {
            rows: Some(rel), ..
        }) = &result
        {
            sample_recall(job, &rel.rows);
        }
        result
    })
}

/// `SHOW pgvshard.recall`: the recall monitor's figures per table and
/// index.
const RECALL_VIEW: &str = "pgvshard.recall";

fn recall_view(shard: &Shard) -> Relation {
    let column = |name: &str, ty| Column {
        name: name.into(),
        ty: (ty, -1),
    };
    let columns = vec![
        column("table", oid::TEXT),
        column("index", oid::TEXT),
        column("samples", oid::INT8),
        column("recall", oid::FLOAT8),
        column("min_recall", oid::FLOAT8),
        column("last_recall", oid::FLOAT8),
    ];
    let rows = shard
        .recall
        .report()
        .into_iter()
        .map(|((table, index), r)| {
            vec![
                Some(crate::wire::Value::Text(table)),
                Some(crate::wire::Value::Text(index)),
                Some(crate::wire::Value::Int8(r.samples as i64)),
                Some(crate::wire::Value::Float8(r.sum / r.samples.max(1) as f64)),
                Some(crate::wire::Value::Float8(r.min)),
                Some(crate::wire::Value::Float8(r.last)),
            ]
        })
        .collect();
    Relation { columns, rows }
}

/// For the recall monitor: when the read used an ANN index outside a
/// transaction block and is drawn, runs it again as an exact scan on the
/// monitor's thread and records the recall of `rows`.
fn sample_recall(job: &Job, rows: &[Vec<Datum>]) {
    if job.plan.get() != QueryPlan::Ann || !job.own_writes.is_empty() {
        return;
    }
    let Some((table, index)) = job.plan.ann_index().cloned() else {
        return;
    };
    let Some(ticket) = job.shard.recall.draw() else {
        return;
    };
    sample_exactly(ticket, job, (table, index), rows.to_vec());
}

/// Runs `job` again as an exact scan on the recall monitor's thread and
/// records the recall of `rows`, what its ANN search of `(table, index)`
/// found.
fn sample_exactly(
    ticket: crate::shard::recall::SampleTicket,
    job: &Job,
    (table, index): (String, String),
    rows: Vec<Vec<Datum>>,
) {
    let exact = Job {
        shard: job.shard.clone(),
        stmt: Arc::clone(&job.stmt),
        params: job.params.clone(),
        param_types: job.param_types.clone(),
        globals: job.globals.clone(),
        ann: AnnSearch {
            exact: true,
            ..job.ann
        },
        cancel: Arc::new(CancelSignal::default()),
        own_writes: Vec::new(),
        plan: PlanSeen::default(),
        names_catalog: job.names_catalog,
    };
    ticket.run(table, index, rows, move || {
        let Ast::Query(q) = &exact.stmt.ast else {
            return None;
        };
        let run = || exact.with_ctx(false, |ctx| run_query(q, ctx));
        crate::stack::with_tree(exact.stmt.depth, run)
            .map_err(|e| tracing::debug!(error = %e, "recall sample failed"))
            .ok()
            .map(|rel| rel.rows)
    });
}

fn write(
    job: &Job,
    mut txn: Transaction,
    in_block: bool,
) -> (Result<Outcome, PgError>, Option<Transaction>) {
    crate::stack::with_tree(job.stmt.depth, || {
        let progress = Arc::new(BuildProgress::linked_to(job.cancel.shared_flag()));
        let mut building = None;
        let r = job.with_ctx(false, |ctx| {
            let tables = ctx.tables;
            match &job.stmt.ast {
                Ast::Insert(ins) => dml::insert(tables, &mut txn, ins, ctx, &job.shard.sequences),
                Ast::Update(up) => dml::update(tables, &mut txn, up, ctx),
                Ast::Delete(del) => dml::delete(tables, &mut txn, del, ctx),
                Ast::CreateTable(ct) => ddl::create_table(tables, &mut txn, ct),
                Ast::CreateIndex(ci) => {
                    let (o, name) = ddl::create_index(tables, &mut txn, ci, ctx)?;
                    building = Some(BuildEntry {
                        pid: job.globals.session.pid,
                        table: super::select::object_name(&ci.table_name),
                        index: name,
                        progress: progress.clone(),
                    });
                    Ok(o)
                }
                Ast::CreateExtension(ce) => ddl::create_extension(&ce.name.value),
                Ast::CreateSequence {
                    temporary,
                    if_not_exists,
                    name,
                    data_type,
                    sequence_options,
                    owned_by,
                } => super::sequence_ddl::create(
                    tables,
                    &mut txn,
                    name,
                    *if_not_exists,
                    *temporary,
                    data_type.as_ref(),
                    sequence_options,
                    owned_by.as_ref(),
                    &ctx.env,
                ),
                Ast::Drop {
                    object_type,
                    if_exists,
                    names,
                    ..
                } => ddl::drop(tables, &mut txn, *object_type, *if_exists, names),
                Ast::Truncate(t) => {
                    let names: Vec<_> = t.table_names.iter().map(|n| n.name.clone()).collect();
                    ddl::truncate(tables, &mut txn, &names)
                }
                Ast::AlterTable(at) => ddl::alter_table(tables, &mut txn, at, &ctx.env),
                other => Err(PgError::feature_not_supported(format!(
                    "statement is not supported: {}",
                    sqlparser_kind(other)
                ))),
            }
        });
        if let Some(entry) = &building {
            job.shard
                .builds
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(entry.clone());
        }
        let level = sync_level(&job.globals.session);
        let result = finish_write(&job.shard, r, txn, in_block, &job.cancel, &progress, level);
        if building.is_some() {
            job.shard
                .builds
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|b| !Arc::ptr_eq(&b.progress, &progress));
        }
        result
    })
}

/// The command name PostgreSQL's read-only refusal names, for a
/// statement that writes (`None` for one that does not).
fn writing_command(ast: &Ast, kind: &StatementKind) -> Option<String> {
    use sqlparser::ast::ObjectType;
    Some(match (kind, ast) {
        (StatementKind::Insert(_), _) => "INSERT".into(),
        (StatementKind::Update(_), _) => "UPDATE".into(),
        (StatementKind::Delete(_), _) => "DELETE".into(),
        (StatementKind::Copy(info), _) => match info.direction {
            sql::CopyDirection::From => "COPY FROM".into(),
            sql::CopyDirection::To => return None,
        },
        (StatementKind::Transaction(TransactionControl::TwoPhase(tp)), _) => match tp {
            TwoPhase::Prepare(_) => "PREPARE TRANSACTION".into(),
            TwoPhase::CommitPrepared(_) => "COMMIT PREPARED".into(),
            TwoPhase::RollbackPrepared(_) => "ROLLBACK PREPARED".into(),
        },
        (StatementKind::ModifyingWith, _) => "a data-modifying WITH".into(),
        (StatementKind::Ddl(_), Ast::CreateTable(_)) => "CREATE TABLE".into(),
        (StatementKind::Ddl(_), Ast::CreateIndex(_)) => "CREATE INDEX".into(),
        (StatementKind::Ddl(_), Ast::CreateExtension(_)) => "CREATE EXTENSION".into(),
        (StatementKind::Ddl(_), Ast::AlterTable(_)) => "ALTER TABLE".into(),
        (StatementKind::Ddl(_), Ast::Truncate(_)) => "TRUNCATE TABLE".into(),
        (StatementKind::Ddl(_), Ast::Drop { object_type, .. }) => match object_type {
            ObjectType::Index => "DROP INDEX".into(),
            ObjectType::Table => "DROP TABLE".into(),
            other => format!("DROP {other}"),
        },
        (StatementKind::Ddl(_), other) => sqlparser_kind(other).to_uppercase(),
        _ => return None,
    })
}

fn sqlparser_kind(stmt: &Ast) -> String {
    stmt.to_string()
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn show(session: &Session, name: &str) -> Result<Outcome, PgError> {
    let text = |n: &str| Column {
        name: n.to_string(),
        ty: (oid::TEXT, -1),
    };
    let rel = if name.eq_ignore_ascii_case("all") {
        Relation {
            columns: vec![text("name"), text("setting"), text("description")],
            rows: session
                .show_all()
                .into_iter()
                .map(|(n, v, d)| {
                    vec![
                        Some(crate::wire::Value::Text(n.to_string())),
                        Some(crate::wire::Value::Text(v)),
                        Some(crate::wire::Value::Text(d.to_string())),
                    ]
                })
                .collect(),
        }
    } else {
        Relation {
            columns: vec![text(Session::show_column(name)?)],
            rows: vec![vec![Some(crate::wire::Value::Text(session.show(name)?))]],
        }
    };
    let mut o = Outcome::select(rel);
    o.tag = "SHOW".into();
    Ok(o)
}

async fn send(outcome: Outcome, out: &mut Responder<'_>) -> Result<(), PgError> {
    for n in &outcome.notices {
        out.notice(n);
    }
    if let Some(rel) = &outcome.rows {
        out.row_description(&rel.fields());
        for row in &rel.rows {
            out.row(row).await?;
        }
    }
    out.complete(&outcome.tag);
    Ok(())
}

/// Parameter types from the client's (where given) and the statement's
/// context.
fn param_types(
    stmt: &sql::Statement,
    given: &[u32],
    tables: &crate::shard::storage::Tables,
    session: &Session,
) -> Result<Vec<u32>, PgError> {
    crate::stack::with_tree(stmt.depth, || {
        let params = sql::params(stmt).map_err(parse_error)?;
        let table = match classify(stmt) {
            StatementKind::Insert(t) | StatementKind::Update(t) | StatementKind::Delete(t) => {
                Some(t.name)
            }
            StatementKind::Select(info) => info.tables.first().map(|t| t.name.clone()),
            _ => None,
        };
        let def = table
            .as_ref()
            .and_then(|t| tables.get(t))
            .map(|t| t.def().clone());
        let catalog = match (&def, &table) {
            (None, Some(t)) => super::pg_catalog::relation(None, t, tables, session),
            _ => None,
        };
        let column_type = |name: &str| match (&def, &catalog) {
            (Some(d), _) => d
                .columns
                .iter()
                .find(|c| c.name == name)
                .map(|c| super::types::type_oid(c.ty)),
            (None, Some(rel)) => rel.columns.iter().find(|c| c.name == name).map(|c| c.ty.0),
            (None, None) => None,
        };
        let n = params.count.max(given.len());
        Ok((0..n)
            .map(|i| {
                if let Some(&t) = given.get(i).filter(|&&t| t != 0) {
                    return t;
                }
                match params.hints.get(&(i + 1)) {
                    // `$1::regclass` takes a name as text (regclassin), not an OID.
                    Some(ParamHint::Cast(ty)) if is_reg_type(ty) => oid::TEXT,
                    Some(ParamHint::Cast(ty)) => ddl::parse_type(ty).unwrap_or(oid::TEXT),
                    Some(ParamHint::Column(c) | ParamHint::DistanceOperand(c)) => {
                        column_type(c).unwrap_or(oid::TEXT)
                    }
                    Some(ParamHint::ColumnPosition(p)) => def
                        .as_ref()
                        .and_then(|d| d.columns.get(*p))
                        .map_or(oid::TEXT, |c| super::types::type_oid(c.ty)),
                    Some(ParamHint::LimitOrOffset) => oid::INT8,
                    Some(ParamHint::Argument { call, position }) => {
                        let cols = ColumnTypes(&column_type);
                        let env = super::infer::TypeEnv::params(given);
                        super::signatures::parameter_type(call, *position, &cols, &env)
                            .unwrap_or(oid::TEXT)
                    }
                    None => oid::TEXT,
                }
            })
            .collect())
    })
}

/// The statement's table's columns, by name, as [`super::infer::Columns`].
struct ColumnTypes<'a>(&'a (dyn Fn(&str) -> Option<u32> + Sync));

impl super::infer::Columns for ColumnTypes<'_> {
    fn column_type(&self, _qualifier: Option<&str>, name: &str) -> Option<super::infer::TypeOf> {
        (self.0)(name).map(|t| (t, -1))
    }
}

/// `regclass` / `regtype`, with or without `pg_catalog.`.
fn is_reg_type(ty: &str) -> bool {
    let t = ty.trim().to_ascii_lowercase();
    matches!(
        t.strip_prefix("pg_catalog.").unwrap_or(&t),
        "regclass" | "regtype"
    )
}

fn describe(job: &Job) -> Result<Vec<FieldDescription>, PgError> {
    crate::stack::with_tree(job.stmt.depth, || {
        let kind = classify(&job.stmt);
        let rel = match (&job.stmt.ast, kind) {
            (_, StatementKind::Show(name)) if name == RECALL_VIEW => recall_view(&job.shard),
            (_, StatementKind::Show(name)) => {
                let session = &job.globals.session;
                show(session, &name)?.rows.unwrap_or_default()
            }
            (_, StatementKind::Explain { .. }) => explain::columns(),
            (Ast::Query(q), _) => job.with_ctx(true, |ctx| run_query(q, ctx))?,
            (Ast::Insert(ins), StatementKind::Insert(t)) => {
                let tables = job.shard.db.read().map_err(storage_error)?;
                dml::returning_columns(&tables, &t.name, ins.returning.as_ref(), &job.param_types)?
            }
            (Ast::Update(up), StatementKind::Update(t)) => {
                let tables = job.shard.db.read().map_err(storage_error)?;
                dml::returning_columns(&tables, &t.name, up.returning.as_ref(), &job.param_types)?
            }
            (Ast::Delete(del), StatementKind::Delete(t)) => {
                let tables = job.shard.db.read().map_err(storage_error)?;
                dml::returning_columns(&tables, &t.name, del.returning.as_ref(), &job.param_types)?
            }
            _ => Relation::default(),
        };
        Ok(rel.fields())
    })
}

/// The one statement of a Parse (`None` for an empty query), its
/// notices deferred to the answer. Shared at once: a statement is several
/// KiB, and a local one would be kept in the Parse's future.
fn single_statement(
    sql_text: &str,
    session: &mut Session,
) -> Result<Option<Arc<sql::Statement>>, PgError> {
    let mut stmts = sql::parse(sql_text).map_err(parse_error)?;
    for notice in stmts.iter().flat_map(crate::wire::truncation_notices) {
        session.defer_notice(notice);
    }
    match stmts.len() {
        0 | 1 => Ok(stmts.pop().map(Arc::new)),
        _ => Err(PgError::new(
            "42601",
            "cannot insert multiple commands into a prepared statement",
        )),
    }
}

impl QueryHandler for ShardSession {
    type Statement = Arc<PreparedStatement>;

    async fn simple_query(
        &mut self,
        sql_text: &str,
        out: &mut Responder<'_>,
    ) -> Result<(), PgError> {
        if let Some(sender) = &mut self.sender {
            return sender.command(sql_text, out).await;
        }
        self.query_received = Some(crate::wire::datetime::now());
        let ran = self.run_query(sql_text, out).await;
        self.query_received = None;
        ran
    }

    async fn prepare(
        &mut self,
        sql_text: &str,
        given: &[u32],
        session: &mut Session,
    ) -> Result<Prepared<Self::Statement>, PgError> {
        if self.sender.is_some() {
            return Err(PgError::protocol_violation(
                "extended query protocol not supported in a replication connection",
            ));
        }
        let schema_epoch = self.shard.db.read().map_err(storage_error)?.schema_epoch();
        let settings = session.settings_version();
        if let Some(last) = self.last_parse.as_ref().filter(|l| {
            (
                l.sql.as_str(),
                l.given.as_slice(),
                l.schema_epoch,
                l.settings,
            ) == (sql_text, given, schema_epoch, settings)
        }) {
            return Ok(last.prepared.clone());
        }
        let Some(stmt) = single_statement(sql_text, session)? else {
            return Ok(Prepared {
                statement: Arc::new(PreparedStatement::new(None, Vec::new())),
                param_types: Vec::new(),
                columns: Vec::new(),
            });
        };
        // Parsing it again would notice its truncated names again.
        let quiet = stmt.truncated.is_empty();
        let job = Job {
            shard: self.shard.clone(),
            params: Vec::new(),
            param_types: {
                let tables = self.shard.db.read().map_err(storage_error)?;
                param_types(&stmt, given, &tables, session)?
            },
            globals: self.globals(session),
            ann: ann_settings(session)?,
            cancel: Arc::new(CancelSignal::default()),
            own_writes: self
                .txn
                .as_ref()
                .map_or_else(Vec::new, |t| t.changes().to_vec()),
            names_catalog: may_name_catalog(&stmt.text),
            stmt,
            plan: PlanSeen::default(),
        };
        let job = Job {
            params: vec![None; job.param_types.len()],
            ..job
        };
        let (columns, job) = tokio::task::spawn_blocking(move || (describe(&job), job))
            .await
            .map_err(join_error)?;
        let columns = columns?;
        let kind = classify(&job.stmt);
        let prepared = Prepared {
            param_types: job.param_types.clone(),
            columns,
            statement: Arc::new(PreparedStatement::new(
                Some((job.stmt, kind)),
                job.param_types,
            )),
        };
        self.last_parse = quiet.then(|| LastParse {
            sql: sql_text.to_string(),
            given: given.to_vec(),
            schema_epoch,
            settings,
            prepared: prepared.clone(),
        });
        Ok(prepared)
    }

    /// The write set and transaction locks of an implicit block whose
    /// statement a cancel or statement_timeout dropped midway (the session
    /// rolled the block back) go at once, as PostgreSQL's abort.
    fn statement_failed(&mut self, session: &mut Session) {
        if self.txn.is_some() && session.transaction_status() == TransactionStatus::Idle {
            self.roll_back_block(session);
        }
    }

    async fn execute(
        &mut self,
        prepared: &Prepared<Self::Statement>,
        params: &Params,
        out: &mut Responder<'_>,
    ) -> Result<(), PgError> {
        let p = &prepared.statement;
        let Some((stmt, kind)) = &p.stmt else {
            out.empty_query();
            return Ok(());
        };
        let values = (0..params.len())
            .map(|i| params.decode(i, None))
            .collect::<Result<Vec<_>, _>>()?;
        if self.execute_planned(p, stmt, kind, &values, out).await? {
            return Ok(());
        }
        self.run(stmt, kind.clone(), values, p.param_types.clone(), out)
            .await
    }
}
