//! The proxy's side of a client session: a [`QueryHandler`] over the wire
//! layer. Session statements (transaction control, SET/SHOW/RESET) are
//! answered here; everything else is planned ([`super::plan`]) and run on
//! the shards ([`super::execute`]).
//!
//! A transaction block is a [`txn::Block`]: BEGIN is sent to a shard just
//! before the block's first write there, later statements on that shard
//! use the same connection, and COMMIT commits every shard written at
//! once (two-phase across several).
//!
//! Reads go through the result cache ([`super::cache`]) when it is on;
//! every write bumps its tables' generations before this module returns
//! (so before the acknowledgment is flushed), or at COMMIT inside a
//! transaction. Each statement is counted by class and outcome.
//!
//! Beside it: [`classified`] (what the path asks of a parsed text, once),
//! [`memo`] and [`describe_cache`] (parses and Describe answers kept per
//! text), [`admin`] (the proxy's own `SHOW pgvshard.*` views).

mod admin;
pub(crate) mod classified;
mod describe_cache;
mod memo;

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use self::classified::Classified;
use self::describe_cache::{DescribeCache, Described};
use self::memo::TextMemo;
use super::backend::{Request, ShardChannel};
use super::cache::{self, QueryCache, SCHEMA};
use super::cluster::Cluster;
use super::execute::shard_stream::ShardStream;
use super::ops::{self, shard_timings, slow_log, Operations};
use super::topology::{self, SessionReads};
use super::{copy, execute, explain, plan, txn};
use crate::metrics::{ProxyMetrics, Stage, StatementClass};
use crate::sql::{self, CopyDirection, StatementKind, TransactionControl};
use crate::wire::catalog::{is_typeinfo_query, typeinfo_columns, typeinfo_row, TYPEINFO_PARAMS};
use crate::wire::{
    FieldDescription, HandlerFactory, Params, PgError, Prepared, QueryHandler, Responder, Session,
    TransactionStatus,
};

/// Makes a [`ProxySession`] per client.
pub struct ProxyFactory {
    cluster: Arc<Cluster>,
    cache: Option<Arc<QueryCache>>,
    metrics: ProxyMetrics,
    ops: Arc<Operations>,
    describes: Arc<DescribeCache>,
    parses: Arc<Parses>,
}

/// Parsed statements by their text.
type Parses = TextMemo<Vec<Classified>>;

/// Statements remembered parsed (see [`ProxySession::parse`]).
const PARSES_KEPT: usize = 512;
/// Longer texts (bulk INSERTs) are parsed each time and not kept.
const PARSE_KEPT_BYTES: usize = 32 * 1024;

impl ProxyFactory {
    /// A factory over a cluster, its cache (if on), its metrics and its
    /// operations state.
    pub fn new(
        cluster: Arc<Cluster>,
        cache: Option<Arc<QueryCache>>,
        metrics: ProxyMetrics,
        ops: Arc<Operations>,
    ) -> Self {
        ProxyFactory {
            cluster,
            cache,
            metrics,
            ops,
            describes: Arc::default(),
            parses: Arc::new(TextMemo::new(PARSES_KEPT)),
        }
    }
}

impl HandlerFactory for ProxyFactory {
    type Handler = ProxySession;

    fn connect(&self, _session: &Session) -> Result<ProxySession, PgError> {
        self.metrics.connections.inc();
        self.metrics.connections_opened.inc();
        Ok(ProxySession {
            cluster: Arc::clone(&self.cluster),
            cache: self.cache.clone(),
            metrics: self.metrics.clone(),
            ops: Arc::clone(&self.ops),
            describes: Arc::clone(&self.describes),
            parses: Arc::clone(&self.parses),
            block: txn::Block::default(),
            written: BTreeSet::new(),
            reads: SessionReads::default(),
        })
    }
}

/// A prepared statement as the proxy keeps it.
#[derive(Debug)]
pub enum ProxyStatement {
    /// tokio-postgres' type lookup, answered from the wire registry so
    /// clients see the proxy's OIDs whatever their shards use.
    TypeInfo,
    /// A statement to plan at each Execute (the only one of its parse).
    Sql(Arc<Vec<Classified>>),
}

/// One client session.
pub struct ProxySession {
    cluster: Arc<Cluster>,
    /// The open transaction block's shards.
    block: txn::Block,
    cache: Option<Arc<QueryCache>>,
    metrics: ProxyMetrics,
    ops: Arc<Operations>,
    describes: Arc<DescribeCache>,
    parses: Arc<Parses>,
    /// Tables the open transaction wrote: their generations are bumped at
    /// COMMIT.
    written: BTreeSet<String>,
    /// Read routing: the floors this session's writes set.
    reads: SessionReads,
}

impl Drop for ProxySession {
    fn drop(&mut self) {
        self.metrics.connections.dec();
    }
}

/// The generations a write must bump (none for reads).
fn written_tables(kind: &StatementKind) -> Vec<String> {
    match kind {
        StatementKind::Insert(t) | StatementKind::Update(t) | StatementKind::Delete(t) => {
            vec![t.name.clone()]
        }
        StatementKind::Copy(c) if c.direction == CopyDirection::From => match &c.table {
            Some(t) => vec![t.name.clone()],
            None => vec![SCHEMA.to_string()],
        },
        StatementKind::Ddl(_) | StatementKind::ModifyingWith | StatementKind::Other => {
            vec![SCHEMA.to_string()]
        }
        StatementKind::Explain {
            analyze: true,
            statement,
        } if !matches!(**statement, StatementKind::Select(_)) => vec![SCHEMA.to_string()],
        _ => Vec::new(),
    }
}

/// 25006 for a write in a read-only transaction (`BEGIN READ ONLY`, `SET
/// TRANSACTION READ ONLY`, `default_transaction_read_only`), as
/// PostgreSQL answers.
fn refuse_in_read_only(statement: &sql::Statement, session: &Session) -> Result<(), PgError> {
    if !session.read_only_transaction() {
        return Ok(());
    }
    let command = statement
        .text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    Err(PgError::new(
        "25006",
        format!("cannot execute {command} in a read-only transaction"),
    ))
}

/// The metric class of a statement before planning.
fn class_of(kind: &StatementKind) -> StatementClass {
    match kind {
        StatementKind::Insert(_)
        | StatementKind::Update(_)
        | StatementKind::Delete(_)
        | StatementKind::Copy(_) => StatementClass::Write,
        StatementKind::Ddl(_) => StatementClass::Ddl,
        StatementKind::Select(_) => StatementClass::Scatter,
        _ => StatementClass::Other,
    }
}

/// A statement the cache could not answer, run on the shards.
struct ShardRun<'s> {
    session: &'s mut ProxySession,
    classified: &'s Classified,
    params: Option<&'s Params>,
    visible: Option<usize>,
}

impl cache::Miss for ShardRun<'_> {
    fn run<'a>(
        &'a mut self,
        out: &'a mut Responder<'_>,
    ) -> Pin<Box<dyn Future<Output = Result<StatementClass, PgError>> + Send + 'a>> {
        Box::pin(
            self.session
                .on_shards(self.classified, self.params, self.visible, out),
        )
    }
}

/// The client's session, as the session functions a statement calls see it.
impl sql::SessionValues for Session {
    fn user(&self) -> &str {
        &self.user
    }

    fn database(&self) -> &str {
        &self.database
    }

    fn setting(&self, name: &str) -> Option<String> {
        self.show(name).ok()
    }
}

fn text_column(name: &str) -> FieldDescription {
    FieldDescription::builtin(name, crate::wire::oid::TEXT)
}

/// `SHOW ALL`'s columns.
fn show_all_columns() -> Vec<FieldDescription> {
    ["name", "setting", "description"].map(text_column).to_vec()
}

impl ProxySession {
    async fn statement(
        &mut self,
        classified: &Classified,
        params: Option<&Params>,
        visible: Option<usize>,
        out: &mut Responder<'_>,
    ) -> Result<(), PgError> {
        let start = Instant::now();
        // Shard transactions outside a block: those of an implicit block
        // whose failing statement was dropped midway (a cancel or a
        // statement_timeout ends it at once). The session rolled the
        // block back; its shards' part is closed here.
        if self.block.wrote() && out.session().transaction_status() == TransactionStatus::Idle {
            self.end_block(false, out).await.ok();
        }
        // Boxed: a statement is several KiB, and this future keeps it
        // across every await.
        let bound = match classified.facts.session_values {
            true => sql::bind_session_values(&classified.statement, out.session())
                .map_err(PgError::from)?
                .map(|b| Box::new(Classified::new(b))),
            false => None,
        };
        let classified = bound.as_deref().unwrap_or(classified);
        let (statement, kind) = (&classified.statement, &classified.kind);
        let mut class = class_of(kind);
        out.take_tag();
        let timed = self.ops.slow_log.enabled();
        let run = self.statement_inner(classified, &mut class, params, visible, out);
        let (result, shard_times) = if timed {
            // Boxed: `collect` would keep the statement's future twice.
            shard_timings::collect(Box::pin(run)).await
        } else {
            (run.await, Vec::new())
        };
        let mut written = written_tables(kind);
        // A user function called by a read may write (catalog reads,
        // psql's \d, call only read-only ones).
        let user_tables = |i: &sql::SelectInfo| {
            i.tables.is_empty() || i.tables.iter().any(|t| !plan::is_catalog(t))
        };
        if matches!(kind, StatementKind::Select(i) if user_tables(i))
            && self.cache.is_some()
            && classified.facts.writes_through_functions
        {
            written.push(SCHEMA.to_string());
        }
        if written.iter().any(|t| t == SCHEMA) {
            self.describes.clear();
            for s in &self.cluster.shards {
                s.forget_statements();
            }
        }
        if out.session().transaction_status() == TransactionStatus::Idle {
            self.reads.committed(&self.cluster.topology).await;
        }
        if !written.is_empty() {
            if out.session().transaction_status() == TransactionStatus::Idle {
                if let Some(cache) = &self.cache {
                    cache.bump(&written).await;
                }
            } else {
                self.written.extend(written);
            }
        }
        let code = result.as_ref().err().map(|e| e.code.as_ref());
        let took = start.elapsed();
        self.metrics.statement(class, code, took);
        let rows = out.take_tag().map_or(0, |t| ops::stats::tag_rows(&t));
        let session = out.session();
        self.ops.finished(&slow_log::Finished {
            class,
            took,
            rows,
            sqlstate: code,
            text: &statement.text,
            shards: &shard_times,
            session: (&session.user, &session.database, session.pid),
        });
        result
    }

    async fn statement_inner(
        &mut self,
        classified: &Classified,
        class: &mut StatementClass,
        params: Option<&Params>,
        visible: Option<usize>,
        out: &mut Responder<'_>,
    ) -> Result<(), PgError> {
        let (statement, kind) = (&classified.statement, &classified.kind);
        let status = out.session().transaction_status();
        if status == TransactionStatus::Failed
            && !matches!(
                kind,
                StatementKind::Transaction(
                    TransactionControl::Commit { .. }
                        | TransactionControl::Rollback { .. }
                        | TransactionControl::RollbackTo(_)
                )
            )
        {
            return Err(PgError::in_failed_transaction());
        }
        if kind.takes_snapshot() {
            out.session().note_query();
        }
        if let Some(local) = classified.facts.local {
            *class = StatementClass::Other;
            return ops::local::answer(&self.ops, local, out).await;
        }
        match kind {
            StatementKind::Transaction(tc) => self.transaction(tc, out).await,
            StatementKind::SetTransaction { modes, session } => {
                if let Some(w) = out.session().set_transaction(modes, *session)? {
                    out.notice(&w);
                }
                out.complete("SET");
                Ok(())
            }
            StatementKind::Set(v) => {
                let warning = match &v.value {
                    Some(value) => out.session().set(&v.name, value, v.local)?,
                    None => {
                        out.session().reset(&v.name)?;
                        None
                    }
                };
                if let Some(w) = warning {
                    out.notice(&w);
                }
                out.complete("SET");
                Ok(())
            }
            StatementKind::Show(name) if name == cache::SHOW_NAME => {
                cache::show(self.cache.as_deref(), out).await
            }
            StatementKind::Show(name) if name == topology::SHOW_NAME => {
                topology::show(&self.cluster.topology, out).await
            }
            StatementKind::Show(name) if name == txn::SHOW_NAME => {
                txn::show(&self.cluster, out).await
            }
            StatementKind::Select(_) if classified.facts.cache_clear => {
                cache::clear(self.cache.as_deref(), out).await
            }
            StatementKind::Show(name) => {
                if admin::is_admin(name) {
                    return admin::show(&self.cluster, name, out).await;
                }
                if name == "all" {
                    out.row_description(&show_all_columns());
                    for (name, setting, description) in out.session().show_all() {
                        let text = |s: &str| Some(crate::wire::Value::Text(s.to_string()));
                        out.row(&[text(name), text(&setting), text(description)])
                            .await?;
                    }
                } else {
                    let value = out.session().show(name)?;
                    out.row_description(&[text_column(Session::show_column(name)?)]);
                    out.row(&[Some(crate::wire::Value::Text(value))]).await?;
                }
                out.complete("SHOW");
                Ok(())
            }
            StatementKind::Reset(name) => {
                match name {
                    Some(n) => out.session().reset(n)?,
                    None => out.session().reset_all(),
                }
                out.complete("RESET");
                Ok(())
            }
            StatementKind::Discard => {
                if out.session().transaction_status() != TransactionStatus::Idle {
                    return Err(PgError::new(
                        "25001",
                        "DISCARD ALL cannot run inside a transaction block",
                    ));
                }
                out.session().reset_all();
                out.complete("DISCARD ALL");
                Ok(())
            }
            StatementKind::Copy(info) => {
                if info.direction == CopyDirection::From {
                    refuse_in_read_only(statement, out.session())?;
                    self.reads.touched(self.cluster.all());
                }
                // Boxed, as EXPLAIN below: rare statements with large
                // futures do not grow every statement's.
                Box::pin(copy::copy(
                    &self.cluster,
                    statement,
                    info,
                    &mut self.block,
                    out,
                ))
                .await
            }
            StatementKind::Explain {
                statement: inner,
                analyze,
            } => {
                if *analyze {
                    self.reads.touched(self.cluster.all());
                }
                Box::pin(explain::explain(
                    &self.cluster,
                    statement,
                    inner,
                    *analyze,
                    params,
                    out,
                ))
                .await
            }
            kind => {
                let set_configs = &classified.facts.set_configs;
                let wrote = self.block.wrote() || !self.written.is_empty();
                let cache = self.cache.clone();
                let key = match &cache {
                    Some(c) => c
                        .key(statement, kind, params, visible, wrote, out)
                        .await
                        .ok(),
                    None => None,
                };
                *class = match (cache, key) {
                    (Some(cache), Some(key)) => {
                        let mut miss = ShardRun {
                            session: self,
                            classified,
                            params,
                            visible,
                        };
                        cache.answer(&key, out, &mut miss).await?
                    }
                    _ => self.on_shards(classified, params, visible, out).await?,
                };
                // The shard accepted each call: the client's session takes
                // it (a SET LOCAL outside a transaction block changes
                // nothing, and set_config does not warn about it).
                for c in set_configs {
                    out.session().set(&c.name, &c.value, c.local).ok();
                }
                Ok(())
            }
        }
    }

    /// Plans and runs a statement on the shards; returns its class.
    async fn on_shards(
        &mut self,
        classified: &Classified,
        params: Option<&Params>,
        visible: Option<usize>,
        out: &mut Responder<'_>,
    ) -> Result<StatementClass, PgError> {
        let t = Instant::now();
        // Values read now would miss this transaction's own writes. Boxed:
        // a rare path whose future would otherwise enlarge every
        // statement's (and its stack frame, which deep statements need).
        let inlined = match !self.block.wrote() && classified.facts.evaluate_first {
            true => Box::pin(plan::evaluate_first(&self.cluster, &classified.statement))
                .await?
                .map(|s| Box::new(Classified::new(s))),
            false => None,
        };
        let classified = inlined.as_deref().unwrap_or(classified);
        let (statement, kind) = (&classified.statement, &classified.kind);
        let advisory = classified.facts.advisory;
        let mut route = plan::plan(&self.cluster, statement, kind, advisory, params).await?;
        let planned = Instant::now();
        self.metrics.stage(Stage::Plan, planned - t);
        self.metrics.fanout(route.parts.len());
        let class = match (kind, route.parts.len()) {
            (StatementKind::Select(_), _) if route.label == "KNN merge" => StatementClass::Knn,
            (StatementKind::Select(_), 1) => StatementClass::Point,
            _ => class_of(kind),
        };
        let wrote = self.block.wrote() || !self.written.is_empty();
        let session = out.session();
        let attrs = session
            .setting(&topology::TARGET_SESSION_ATTRS)
            .unwrap_or_default();
        // Only a block's READ ONLY prefers standbys, not the session's default.
        let read_only = session.transaction_status() != TransactionStatus::Idle
            && session.read_only_transaction();
        let read_from = self.cluster.topology.config().read_from;
        let decision = topology::decide(classified, read_from, attrs, wrote, read_only);
        let read = match decision {
            topology::Decision::Read(policy) => Some(policy),
            // VACUUM, ANALYZE and CHECKPOINT run in read-only transactions.
            topology::Decision::Write if matches!(kind, StatementKind::Maintenance(_)) => None,
            topology::Decision::Write => {
                refuse_in_read_only(statement, out.session())?;
                self.reads.touched(route.shards());
                None
            }
            topology::Decision::Primary(why) => {
                for _ in &route.parts {
                    self.cluster.topology.primary_read(why.label());
                }
                if why.may_write() {
                    self.reads.touched(route.shards());
                }
                None
            }
        };
        let (mut chans, cacheable) = self.channels_anywhere(&mut route, read, out).await?;
        if !cacheable {
            out.spoil_recording();
        }
        let spanning = out.session().transaction_status() == TransactionStatus::Idle
            && txn::spans_shards(kind, &statement.text, &route);
        if spanning {
            txn::begin(&mut chans).await?;
        }
        let opened = Instant::now();
        self.metrics.stage(Stage::Backend, opened - planned);
        let (result, mut back) = execute::run(
            &self.cluster,
            statement,
            &route,
            chans,
            params,
            visible,
            out,
        )
        .await;
        if classified.facts.calls_set_config {
            for (_, chan) in &mut back {
                chan.settings().mark_unknown();
            }
        }
        let mut pooled = Vec::with_capacity(back.len());
        for (shard, chan) in back {
            if self.block.holds(shard) {
                self.block.put_back(shard, chan);
            } else {
                pooled.push((shard, chan));
            }
        }
        result?;
        self.metrics.stage(Stage::Merge, opened.elapsed());
        if spanning {
            txn::commit(&self.cluster, pooled).await?;
        }
        if let StatementKind::Ddl(sql::DdlInfo { action, tables }) = kind {
            if out.session().transaction_status() == TransactionStatus::InTransaction {
                self.block
                    .learn_tables(&self.cluster, statement, *action, tables)
                    .await?;
            }
        }
        if let StatementKind::Ddl(sql::DdlInfo {
            action: sql::DdlAction::CreateExtension | sql::DdlAction::DropExtension,
            ..
        }) = kind
        {
            for s in &self.cluster.shards {
                s.invalidate_types();
            }
        }
        Ok(class)
    }

    /// Channels for every shard of the route, in route order: the pinned
    /// one for the transaction's shard, pooled ones for the rest.
    /// [`Self::channels`]; a route any shard may answer moves on to the
    /// next shard while the chosen one cannot be reached.
    async fn channels_anywhere(
        &mut self,
        route: &mut plan::Route<'_>,
        read: Option<topology::Policy>,
        out: &mut Responder<'_>,
    ) -> Result<(Vec<Option<Box<dyn ShardChannel>>>, bool), PgError> {
        let mut others: Option<std::vec::IntoIter<usize>> = None;
        loop {
            match self.channels(route, read, out).await {
                Err(e) if route.anywhere && e.code == crate::wire::sqlstate::CONNECTION_FAILURE => {
                    let tried = route.shards();
                    let others =
                        others.get_or_insert_with(|| self.cluster.serving_order().into_iter());
                    match others.find(|s| !tried.contains(s)) {
                        Some(next) => route.moved_to(next),
                        None => return Err(e),
                    }
                }
                answer => return answer,
            }
        }
    }

    async fn channels(
        &mut self,
        route: &plan::Route<'_>,
        read: Option<topology::Policy>,
        out: &mut Responder<'_>,
    ) -> Result<(Vec<Option<Box<dyn ShardChannel>>>, bool), PgError> {
        let in_transaction = out.session().transaction_status() == TransactionStatus::InTransaction;
        if in_transaction && route.writes {
            for shard in route.shards() {
                self.block.join(&self.cluster, shard).await?;
            }
        }
        execute::open(
            &self.cluster,
            route,
            &mut self.block,
            read.map(|p| (p, &self.reads)),
            out,
        )
        .await
    }

    /// SAVEPOINT, RELEASE and ROLLBACK TO, on every shard the block wrote.
    async fn savepoint(
        &mut self,
        tc: &TransactionControl,
        out: &mut Responder<'_>,
    ) -> Result<(), PgError> {
        if out.session().transaction_status() == TransactionStatus::Idle || out.session().implicit()
        {
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
        let (tag, at) = self.block.savepoint(tc).await?;
        let session = out.session();
        match tc {
            TransactionControl::Savepoint(_) => session.savepoint(),
            TransactionControl::Release(_) => session.release_savepoint(at),
            _ => session.rollback_to_savepoint(at),
        }
        out.complete(tag);
        Ok(())
    }

    async fn transaction(
        &mut self,
        tc: &TransactionControl,
        out: &mut Responder<'_>,
    ) -> Result<(), PgError> {
        let status = out.session().transaction_status();
        let implicit = out.session().implicit();
        let (word, chain) = match tc {
            TransactionControl::Begin { start, modes } => {
                if implicit {
                    // The statements before it stay in the block.
                    out.session().make_explicit();
                } else if status != TransactionStatus::Idle {
                    out.notice(&PgError::warning(
                        "25001",
                        "there is already a transaction in progress",
                    ));
                }
                out.session().begin();
                out.session().set_transaction_modes(modes)?;
                out.complete(if *start { "START TRANSACTION" } else { "BEGIN" });
                return Ok(());
            }
            TransactionControl::Commit { chain } => ("COMMIT", *chain),
            TransactionControl::Rollback { chain } => ("ROLLBACK", *chain),
            TransactionControl::Savepoint(_)
            | TransactionControl::Release(_)
            | TransactionControl::RollbackTo(_) => return self.savepoint(tc, out).await,
            TransactionControl::TwoPhase(_) => {
                return Err(PgError::feature_not_supported(
                    "PREPARE TRANSACTION, COMMIT PREPARED and ROLLBACK PREPARED are not supported through the proxy",
                ))
            }
        };
        let idle = status == TransactionStatus::Idle;
        if chain && (idle || implicit) {
            return Err(PgError::new(
                "25P01",
                format!("{word} AND CHAIN can only be used in transaction blocks"),
            ));
        }
        // A failed block is rolled back whatever the client said.
        let commit = word == "COMMIT" && status != TransactionStatus::Failed;
        if idle || implicit {
            out.notice(&PgError::warning(
                "25P01",
                "there is no transaction in progress",
            ));
        }
        let modes = chain.then(|| out.session().transaction_modes());
        self.end_block(commit, out).await?;
        if let Some(modes) = modes {
            out.session().begin();
            out.session().set_transaction_modes(&modes)?;
        }
        out.complete(if commit { "COMMIT" } else { "ROLLBACK" });
        Ok(())
    }

    /// Ends the open block: commits it (`commit`) or rolls it back on the
    /// shards and in the session, and settles what the session kept for
    /// it (read floors, tables whose cached answers it changed).
    async fn end_block(&mut self, commit: bool, out: &mut Responder<'_>) -> Result<(), PgError> {
        if commit {
            out.session().commit();
        } else {
            out.session().rollback();
        }
        let ended = self.block.end(&self.cluster, commit).await;
        if commit {
            self.reads.committed(&self.cluster.topology).await;
        } else {
            self.reads.rolled_back();
        }
        let written: Vec<String> = std::mem::take(&mut self.written).into_iter().collect();
        // Even after a COMMIT whose outcome is unknown.
        if let (true, Some(cache)) = (commit, &self.cache) {
            cache.bump(&written).await;
        }
        ended
    }

    /// The statements of `sql`, remembered from an earlier parse of the
    /// same text when there was one (clients repeat their statements).
    fn parse(&self, sql: &str) -> Result<Arc<Vec<Classified>>, PgError> {
        if let Some(parsed) = self.parses.get(sql) {
            return Ok(parsed);
        }
        let t = Instant::now();
        let statements: Vec<Classified> = sql::parse(sql)
            .map_err(PgError::from)?
            .into_iter()
            .map(Classified::new)
            .collect();
        self.metrics.stage(Stage::Parse, t.elapsed());
        if sql.len() > PARSE_KEPT_BYTES {
            return Ok(Arc::new(statements));
        }
        Ok(self.parses.insert(sql, statements))
    }

    /// Parameter and result types of `sql`, remembered or asked of the
    /// first shard.
    async fn describe(
        &mut self,
        sql: &str,
        param_types: &[u32],
    ) -> Result<(Vec<u32>, Vec<FieldDescription>), PgError> {
        if let Some(d) = self.describes.get(sql, param_types) {
            return Ok((d.param_types.clone(), d.columns.clone()));
        }
        let shard = &self.cluster.shards[0];
        let oids = shard.oids();
        // Inside a block that wrote there, its tables are seen only by its
        // own connection (a table created in the block).
        let mut chan = match self.block.take(0) {
            Some(chan) => chan,
            None => shard.checkout().await?,
        };
        let request = Request::Describe {
            sql: sql.to_string(),
            param_types: param_types.iter().map(|&t| oids.to_shard(t)).collect(),
        };
        let sent = chan.send(&request).await;
        let mut stream = ShardStream::new(0, chan, shard.oids());
        let finished = match sent {
            Ok(()) => stream.finish().await,
            Err(e) => Err(e),
        };
        if self.block.holds(0) && stream.is_done() {
            self.block.put_back(0, stream.chan);
        }
        finished?;
        let described = Described {
            param_types: stream.param_types,
            columns: stream.columns.unwrap_or_default(),
        };
        let answer = (described.param_types.clone(), described.columns.clone());
        self.describes.insert(sql, param_types, described);
        Ok(answer)
    }
}

impl QueryHandler for ProxySession {
    type Statement = ProxyStatement;

    async fn simple_query(&mut self, sql: &str, out: &mut Responder<'_>) -> Result<(), PgError> {
        let statements = self.parse(sql)?;
        // As PostgreSQL's lexer: every statement's notices before any runs
        // (the shards' own are not forwarded).
        for notice in statements
            .iter()
            .flat_map(|c| crate::wire::truncation_notices(&c.statement))
        {
            out.notice(&notice);
        }
        if statements.is_empty() {
            out.empty_query();
            return Ok(());
        }
        // Several statements outside a block run in one implicit block
        // (PostgreSQL's): all of them take effect or none.
        let several = statements.len() > 1;
        for (i, s) in statements.iter().enumerate() {
            // PostgreSQL times each statement of the string on its own.
            if i > 0 {
                out.restart_statement_timeout();
            }
            if several && out.session().transaction_status() == TransactionStatus::Idle {
                out.session().begin_implicit();
            }
            if let Err(e) = self.statement(s, None, None, out).await {
                self.block.after_error();
                if out.session().implicit() {
                    // Closing what is left rolls it back; its own error
                    // would only hide this one.
                    self.end_block(false, out).await.ok();
                }
                return Err(e);
            }
        }
        if out.session().implicit() {
            self.end_block(true, out).await?;
        }
        Ok(())
    }

    async fn prepare(
        &mut self,
        sql: &str,
        param_types: &[u32],
        session: &mut Session,
    ) -> Result<Prepared<ProxyStatement>, PgError> {
        if is_typeinfo_query(sql) {
            return Ok(Prepared {
                statement: ProxyStatement::TypeInfo,
                param_types: TYPEINFO_PARAMS.to_vec(),
                columns: typeinfo_columns(),
            });
        }
        let parsed = self.parse(sql)?;
        for notice in parsed
            .iter()
            .flat_map(|c| crate::wire::truncation_notices(&c.statement))
        {
            session.defer_notice(notice);
        }
        let [Classified { kind, facts, .. }] = parsed.as_slice() else {
            // parse_single words the error for none or several.
            return Err(sql::parse_single(sql).err().map_or_else(
                || PgError::protocol_violation("expected one statement"),
                PgError::from,
            ));
        };
        let operations = facts.local;
        let local = match kind {
            _ if operations.is_some() => operations.map(ops::local::columns),
            StatementKind::Show(name) if name == cache::SHOW_NAME => Some(cache::show_columns()),
            StatementKind::Select(_) if facts.cache_clear => Some(vec![FieldDescription::builtin(
                "cache_clear",
                crate::wire::oid::INT8,
            )]),
            StatementKind::Show(name) if admin::is_admin(name) => Some(admin::columns(name)),
            StatementKind::Show(name) if name == topology::SHOW_NAME => {
                Some(topology::show_columns())
            }
            StatementKind::Show(name) if name == txn::SHOW_NAME => Some(txn::show_columns()),
            StatementKind::Show(name) if name == "all" => Some(show_all_columns()),
            StatementKind::Show(name) => Some(vec![text_column(Session::show_column(name)?)]),
            StatementKind::Transaction(_)
            | StatementKind::Set(_)
            | StatementKind::Reset(_)
            | StatementKind::Discard => Some(Vec::new()),
            StatementKind::Explain { .. } => Some(vec![text_column("QUERY PLAN")]),
            StatementKind::Copy(_) => Some(Vec::new()),
            _ => None,
        };
        let (param_types, columns) = match local {
            Some(columns) => (param_types.to_vec(), columns),
            None => self.describe(sql, param_types).await?,
        };
        Ok(Prepared {
            statement: ProxyStatement::Sql(Arc::clone(&parsed)),
            param_types,
            columns,
        })
    }

    async fn execute(
        &mut self,
        statement: &Prepared<ProxyStatement>,
        params: &Params,
        out: &mut Responder<'_>,
    ) -> Result<(), PgError> {
        match &statement.statement {
            ProxyStatement::TypeInfo => {
                let type_oid = match params.decode(0, None)? {
                    Some(crate::wire::Value::Oid(o)) => o,
                    _ => 0,
                };
                let mut n = 0;
                if let Some(row) = typeinfo_row(type_oid) {
                    out.row(&row).await?;
                    n = 1;
                }
                out.complete(&format!("SELECT {n}"));
                Ok(())
            }
            ProxyStatement::Sql(parsed) => {
                let Some(s) = parsed.first() else {
                    return Err(PgError::protocol_violation("expected one statement"));
                };
                let result = self
                    .statement(s, Some(params), Some(statement.columns.len()), out)
                    .await;
                if let Err(e) = &result {
                    // A remembered Describe no longer matches the shards:
                    // the wire layer caught changed columns, or a shard
                    // refused the Bind's per-column formats (08P01).
                    if e.message == PgError::result_type_changed().message
                        || e.code == crate::wire::sqlstate::PROTOCOL_VIOLATION
                    {
                        self.describes.clear();
                    }
                    self.block.after_error();
                }
                result
            }
        }
    }
}
