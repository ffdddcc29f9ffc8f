//! What kind of statement this is and which tables it touches: enough for
//! the proxy to choose a route (standby, primary, every shard) and for the
//! shard executor to dispatch.

use std::ops::ControlFlow;

use sqlparser::ast::{
    self, ContextModifier, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Expr, FromTable,
    ObjectType, Reset, Set, TableFactor, TableObject, Value, Visit, Visitor,
};

use super::maintenance::Maintenance;
use super::names::{fold, TableName};
use super::parse::{Statement, Utility};

/// The class of a statement, for routing and execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementKind {
    /// A query (SELECT, VALUES, WITH … SELECT).
    Select(SelectInfo),
    /// `INSERT INTO table …`.
    Insert(TableName),
    /// `UPDATE table …`.
    Update(TableName),
    /// `DELETE FROM table …`.
    Delete(TableName),
    /// `COPY …`.
    Copy(CopyInfo),
    /// Schema changes.
    Ddl(DdlInfo),
    /// Transaction control.
    Transaction(TransactionControl),
    /// `SET [LOCAL|SESSION] name = value`.
    Set(SetVariable),
    /// `SET TRANSACTION …` (`session`: `SET SESSION CHARACTERISTICS AS
    /// TRANSACTION …`, the session's defaults).
    SetTransaction {
        /// The modes it sets.
        modes: TransactionModes,
        /// Whether it sets the session's defaults.
        session: bool,
    },
    /// `VACUUM`, `ANALYZE`, `CHECKPOINT`.
    Maintenance(Maintenance),
    /// `SHOW name` (`all` for SHOW ALL).
    Show(String),
    /// `RESET name`, or `RESET ALL` (None).
    Reset(Option<String>),
    /// `EXPLAIN [ANALYZE] statement`.
    Explain {
        /// Whether the statement is run (EXPLAIN ANALYZE).
        analyze: bool,
        /// The explained statement's class.
        statement: Box<StatementKind>,
    },
    /// `DISCARD ALL | PLANS | SEQUENCES | TEMP`.
    Discard,
    /// A query with INSERT, UPDATE, DELETE or MERGE inside (`WITH d AS
    /// (DELETE … RETURNING …) SELECT …`): it writes, so it is not a read.
    ModifyingWith,
    /// Anything else sqlparser understands.
    Other,
}

/// What a query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectInfo {
    /// Every table named anywhere in the query (CTE names excluded), in
    /// order of first appearance.
    pub tables: Vec<TableName>,
    /// `FOR UPDATE`/`FOR SHARE`: the query must run on a primary.
    pub locking: bool,
    /// It calls a window function (`rank() OVER (…)`): across shards each
    /// would rank only its own rows.
    pub windowed: bool,
}

/// The direction and shape of a COPY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyInfo {
    /// The table, for `COPY table …` (None for `COPY (query) TO …`).
    pub table: Option<TableName>,
    /// The column list, folded; empty means every column.
    pub columns: Vec<String>,
    /// FROM (load) or TO (unload).
    pub direction: CopyDirection,
    /// Whether the data travels over the connection (STDIN/STDOUT).
    pub stdio: bool,
    /// The data format.
    pub format: CopyFormat,
    /// The format's options (delimiter, NULL string, quoting, header).
    pub options: super::copy_data::CopyOptions,
}

/// COPY FROM or COPY TO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyDirection {
    /// `COPY … FROM`.
    From,
    /// `COPY … TO`.
    To,
}

/// COPY's FORMAT option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    /// Tab-separated text (the default).
    Text,
    /// Comma-separated values.
    Csv,
    /// PostgreSQL's binary COPY format.
    Binary,
}

/// A schema change and the tables it touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DdlInfo {
    /// Which kind of change.
    pub action: DdlAction,
    /// The tables created, altered, dropped or indexed.
    pub tables: Vec<TableName>,
}

/// The schema changes the shards know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DdlAction {
    /// `CREATE EXTENSION`.
    CreateExtension,
    /// `DROP EXTENSION`.
    DropExtension,
    /// `CREATE TABLE`.
    CreateTable,
    /// `CREATE INDEX`.
    CreateIndex,
    /// `DROP TABLE`.
    DropTable,
    /// `DROP INDEX` (the dropped index names are in `tables`).
    DropIndex,
    /// `TRUNCATE`.
    Truncate,
    /// `ALTER TABLE`.
    AlterTable,
    /// Any other CREATE/DROP/ALTER.
    Other,
}

/// Transaction control statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionControl {
    /// `BEGIN` / `START TRANSACTION` and the modes it names.
    Begin {
        /// `START TRANSACTION` (its command tag) rather than `BEGIN`.
        start: bool,
        /// `READ ONLY`, `ISOLATION LEVEL …`.
        modes: TransactionModes,
    },
    /// `COMMIT` / `END` (`chain`: `AND CHAIN` opens a new block with the
    /// same modes).
    Commit {
        /// `AND CHAIN`.
        chain: bool,
    },
    /// `ROLLBACK` / `ABORT` (`chain` as for COMMIT).
    Rollback {
        /// `AND CHAIN`.
        chain: bool,
    },
    /// `SAVEPOINT name`.
    Savepoint(String),
    /// `RELEASE [SAVEPOINT] name`.
    Release(String),
    /// `ROLLBACK TO [SAVEPOINT] name`.
    RollbackTo(String),
    /// `PREPARE TRANSACTION`, `COMMIT PREPARED`, `ROLLBACK PREPARED`.
    TwoPhase(super::TwoPhase),
}

/// The modes `BEGIN` or `SET TRANSACTION` names (the last of each kind
/// wins, as in PostgreSQL); None where it names none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionModes {
    /// `READ ONLY` (true) or `READ WRITE` (false).
    pub read_only: Option<bool>,
    /// `ISOLATION LEVEL …`, as PostgreSQL spells the level
    /// (`repeatable read`).
    pub isolation: Option<String>,
}

impl TransactionModes {
    fn from_ast(modes: &[ast::TransactionMode]) -> Self {
        use ast::{TransactionAccessMode as Access, TransactionIsolationLevel as Level};
        let mut out = Self::default();
        for mode in modes {
            match mode {
                ast::TransactionMode::AccessMode(a) => out.read_only = Some(*a == Access::ReadOnly),
                ast::TransactionMode::IsolationLevel(l) => {
                    let level = match l {
                        Level::ReadUncommitted => "read uncommitted",
                        Level::ReadCommitted => "read committed",
                        Level::RepeatableRead => "repeatable read",
                        Level::Serializable | Level::Snapshot => "serializable",
                    };
                    out.isolation = Some(level.into());
                }
            }
        }
        out
    }
}

/// One `SET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetVariable {
    /// The setting's name, folded (`hnsw.ef_search`, `datestyle`).
    pub name: String,
    /// The new value; None for `DEFAULT`.
    pub value: Option<String>,
    /// `SET LOCAL`: lasts until the end of the transaction.
    pub local: bool,
}

impl StatementKind {
    /// True for statements that read or write (PostgreSQL takes a
    /// snapshot for them): after one, a block's isolation level and
    /// read-write mode can no longer change.
    pub fn takes_snapshot(&self) -> bool {
        !matches!(
            self,
            StatementKind::Transaction(_)
                | StatementKind::Set(_)
                | StatementKind::SetTransaction { .. }
                | StatementKind::Show(_)
                | StatementKind::Reset(_)
                | StatementKind::Discard
                | StatementKind::Maintenance(_)
        )
    }

    /// True for COMMIT, ROLLBACK, ROLLBACK TO and PREPARE TRANSACTION,
    /// the only statements an aborted transaction block accepts (others
    /// get 25P02).
    pub fn ends_transaction(&self) -> bool {
        matches!(
            self,
            StatementKind::Transaction(
                TransactionControl::Commit { .. }
                    | TransactionControl::Rollback { .. }
                    | TransactionControl::RollbackTo(_)
                    | TransactionControl::TwoPhase(super::TwoPhase::Prepare(_))
            )
        )
    }
}

/// True when a query writes: an INSERT, UPDATE, DELETE or MERGE in a WITH
/// (or anywhere inside it), which sqlparser parses as a query.
fn modifies_data(query: &ast::Query) -> bool {
    struct Finder;
    impl ast::Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, q: &ast::Query) -> std::ops::ControlFlow<()> {
            match q.body.as_ref() {
                ast::SetExpr::Insert(_)
                | ast::SetExpr::Update(_)
                | ast::SetExpr::Delete(_)
                | ast::SetExpr::Merge(_) => std::ops::ControlFlow::Break(()),
                _ => std::ops::ControlFlow::Continue(()),
            }
        }
    }
    ast::Visit::visit(query, &mut Finder).is_break()
}

/// Classifies a parsed statement.
pub fn classify(statement: &Statement) -> StatementKind {
    crate::stack::with_tree(statement.depth, || match &statement.utility {
        Some(Utility::TwoPhase(tp)) => {
            StatementKind::Transaction(TransactionControl::TwoPhase(tp.clone()))
        }
        Some(Utility::Maintenance(m)) => StatementKind::Maintenance(m.clone()),
        Some(Utility::AlterSystem(_)) | None => classify_ast(&statement.ast),
    })
}

fn classify_ast(stmt: &ast::Statement) -> StatementKind {
    use ast::Statement as S;
    match stmt {
        S::Query(query) if modifies_data(query) => StatementKind::ModifyingWith,
        S::Query(query) => StatementKind::Select(SelectInfo {
            tables: tables_read(query),
            locking: !query.locks.is_empty(),
            windowed: calls_window_function(query),
        }),
        S::Insert(insert) => match &insert.table {
            TableObject::TableName(name) => table_kind(name, StatementKind::Insert),
            _ => StatementKind::Other,
        },
        S::Update(update) => match &update.table.relation {
            TableFactor::Table { name, .. } => table_kind(name, StatementKind::Update),
            _ => StatementKind::Other,
        },
        S::Delete(delete) => {
            let from = match &delete.from {
                FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
            };
            match from.first().map(|t| &t.relation) {
                Some(TableFactor::Table { name, .. }) => table_kind(name, StatementKind::Delete),
                _ => StatementKind::Other,
            }
        }
        S::Copy {
            source,
            to,
            target,
            options,
            legacy_options,
            ..
        } => {
            let (table, columns) = match source {
                CopySource::Table {
                    table_name,
                    columns,
                } => (
                    TableName::from_object_name(table_name),
                    columns.iter().map(fold).collect(),
                ),
                CopySource::Query(_) => (None, Vec::new()),
            };
            StatementKind::Copy(CopyInfo {
                table,
                columns,
                direction: if *to {
                    CopyDirection::To
                } else {
                    CopyDirection::From
                },
                stdio: matches!(target, CopyTarget::Stdin | CopyTarget::Stdout),
                format: copy_format(options, legacy_options),
                options: super::copy_data::CopyOptions::from_statement(
                    copy_format(options, legacy_options),
                    options,
                    legacy_options,
                ),
            })
        }
        S::CreateExtension(_) => ddl(DdlAction::CreateExtension, []),
        S::DropExtension(_) => ddl(DdlAction::DropExtension, []),
        S::CreateTable(create) => ddl(DdlAction::CreateTable, [&create.name]),
        S::CreateIndex(index) => ddl(DdlAction::CreateIndex, [&index.table_name]),
        S::AlterTable(alter) => ddl(DdlAction::AlterTable, [&alter.name]),
        S::Truncate(truncate) => ddl(
            DdlAction::Truncate,
            truncate.table_names.iter().map(|t| &t.name),
        ),
        S::Drop {
            object_type, names, ..
        } => {
            let action = match object_type {
                ObjectType::Table => DdlAction::DropTable,
                ObjectType::Index => DdlAction::DropIndex,
                _ => DdlAction::Other,
            };
            ddl(action, names)
        }
        S::CreateView(_)
        | S::CreateSchema { .. }
        | S::CreateSequence { .. }
        | S::CreateType { .. }
        | S::CreateFunction(_)
        | S::AlterIndex { .. }
        | S::DropFunction(_) => ddl(DdlAction::Other, []),
        S::StartTransaction { modes, begin, .. } => {
            StatementKind::Transaction(TransactionControl::Begin {
                start: !*begin,
                modes: TransactionModes::from_ast(modes),
            })
        }
        S::Commit { chain, .. } => {
            StatementKind::Transaction(TransactionControl::Commit { chain: *chain })
        }
        S::Rollback {
            savepoint: None,
            chain,
        } => StatementKind::Transaction(TransactionControl::Rollback { chain: *chain }),
        S::Rollback {
            savepoint: Some(name),
            ..
        } => StatementKind::Transaction(TransactionControl::RollbackTo(fold(name))),
        S::Savepoint { name } => {
            StatementKind::Transaction(TransactionControl::Savepoint(fold(name)))
        }
        S::ReleaseSavepoint { name } => {
            StatementKind::Transaction(TransactionControl::Release(fold(name)))
        }
        S::Set(set) => classify_set(set),
        S::ShowVariable { variable } => StatementKind::Show(show_name(variable)),
        S::Reset(reset) => match &reset.reset {
            Reset::ConfigurationParameter(name) => StatementKind::Reset(Some(setting_name(name))),
            Reset::ALL | Reset::SessionAuthorization => StatementKind::Reset(None),
        },
        S::Explain {
            analyze,
            statement,
            options,
            ..
        } => StatementKind::Explain {
            analyze: *analyze || explain_option_analyze(options.as_deref().unwrap_or(&[])),
            statement: Box::new(classify_ast(statement)),
        },
        S::Discard { .. } => StatementKind::Discard,
        _ => StatementKind::Other,
    }
}

/// The parameter a `SHOW` names. PostgreSQL's multi-word spellings name
/// the parameter they show (its grammar maps them the same way);
/// sqlparser keeps only `AUTHORIZATION` of `SHOW SESSION AUTHORIZATION`.
fn show_name(variable: &[ast::Ident]) -> String {
    let words: Vec<String> = variable.iter().map(fold).collect();
    match words.join(" ").as_str() {
        "transaction isolation level" => "transaction_isolation".into(),
        "time zone" => "timezone".into(),
        "authorization" | "session authorization" => "session_authorization".into(),
        _ => words.join("."),
    }
}

fn table_kind(name: &ast::ObjectName, kind: fn(TableName) -> StatementKind) -> StatementKind {
    TableName::from_object_name(name).map_or(StatementKind::Other, kind)
}

fn ddl<'a>(
    action: DdlAction,
    names: impl IntoIterator<Item = &'a ast::ObjectName>,
) -> StatementKind {
    StatementKind::Ddl(DdlInfo {
        action,
        tables: names
            .into_iter()
            .filter_map(TableName::from_object_name)
            .collect(),
    })
}

fn copy_format(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> CopyFormat {
    let named = options.iter().find_map(|o| match o {
        CopyOption::Format(f) => Some(f.value.to_lowercase()),
        _ => None,
    });
    match named.as_deref() {
        Some("binary") => CopyFormat::Binary,
        Some("csv") => CopyFormat::Csv,
        Some(_) => CopyFormat::Text,
        None if legacy.iter().any(|o| matches!(o, CopyLegacyOption::Binary)) => CopyFormat::Binary,
        None if legacy.iter().any(|o| matches!(o, CopyLegacyOption::Csv(_))) => CopyFormat::Csv,
        None => CopyFormat::Text,
    }
}

fn explain_option_analyze(options: &[ast::UtilityOption]) -> bool {
    options.iter().any(|o| {
        o.name.value.eq_ignore_ascii_case("analyze")
            && !matches!(
                o.arg.as_ref().map(setting_value),
                Some(Some(ref v)) if v.eq_ignore_ascii_case("false") || v.eq_ignore_ascii_case("off") || v == "0"
            )
    })
}

fn classify_set(set: &Set) -> StatementKind {
    match set {
        Set::SingleAssignment {
            scope,
            variable,
            values,
            ..
        } => {
            let parts: Vec<Option<String>> = values.iter().map(setting_value).collect();
            let value = if parts.iter().any(Option::is_none) {
                None
            } else {
                Some(parts.into_iter().flatten().collect::<Vec<_>>().join(", "))
            };
            StatementKind::Set(SetVariable {
                name: setting_name(variable),
                value,
                local: matches!(scope, Some(ContextModifier::Local)),
            })
        }
        Set::SetTimeZone { local, value } => StatementKind::Set(SetVariable {
            name: "timezone".into(),
            value: setting_value(value),
            local: *local,
        }),
        Set::SetNames { charset_name, .. } => StatementKind::Set(SetVariable {
            name: "client_encoding".into(),
            value: Some(charset_name.value.clone()),
            local: false,
        }),
        Set::SetTransaction {
            modes,
            snapshot: None,
            session,
        } => StatementKind::SetTransaction {
            modes: TransactionModes::from_ast(modes),
            session: *session,
        },
        _ => StatementKind::Other,
    }
}

/// A dotted setting name, folded (`hnsw.ef_search`).
fn setting_name(name: &ast::ObjectName) -> String {
    name.0
        .iter()
        .map(|p| p.as_ident().map_or_else(|| p.to_string(), fold))
        .collect::<Vec<_>>()
        .join(".")
}

/// A SET value as PostgreSQL stores it: strings unquoted, numbers and
/// words as written; None for DEFAULT.
fn setting_value(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(ident) if ident.quote_style.is_none() => {
            if ident.value.eq_ignore_ascii_case("default") {
                None
            } else {
                Some(ident.value.clone())
            }
        }
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(s.clone()),
            Value::DollarQuotedString(s) => Some(s.value.clone()),
            Value::Boolean(b) => Some(if *b { "on" } else { "off" }.into()),
            other => Some(other.to_string()),
        },
        other => Some(other.to_string()),
    }
}

/// Tables a query reads, CTE names (of any WITH, nested ones in
/// subqueries too) and set-returning functions in FROM
/// (`generate_series(1, 3)`, `unnest(…)`) excluded.
/// Whether `query` calls a window function anywhere.
fn calls_window_function(query: &ast::Query) -> bool {
    let found = ast::visit_expressions(query, |e| match e {
        ast::Expr::Function(f) if f.over.is_some() => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    });
    found.is_break()
}

pub(crate) fn tables_read(query: &ast::Query) -> Vec<TableName> {
    tables_in(query)
}

/// Every table named in `node` (CTE names excluded), in order of first
/// appearance.
pub(crate) fn tables_in<V: Visit>(node: &V) -> Vec<TableName> {
    let mut reader = TablesRead {
        ctes: Vec::new(),
        tables: Vec::new(),
    };
    let _ = node.visit(&mut reader);
    reader.tables
}

struct TablesRead {
    ctes: Vec<String>,
    tables: Vec<TableName>,
}

impl Visitor for TablesRead {
    type Break = ();

    /// A query's WITH names are known before its FROM items are visited.
    fn pre_visit_query(&mut self, query: &ast::Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            self.ctes
                .extend(with.cte_tables.iter().map(|c| fold(&c.alias.name)));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name, args: None, ..
        } = factor
        {
            if let Some(t) = TableName::from_object_name(name) {
                let is_cte = t.schema.is_none() && self.ctes.contains(&t.name);
                if !is_cte && !self.tables.contains(&t) {
                    self.tables.push(t);
                }
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse::parse_single;

    #[test]
    fn only_commit_and_rollback_end_an_aborted_transaction() {
        let ends = |sql: &str| classify(&parse_single(sql).unwrap()).ends_transaction();
        assert!(ends("COMMIT") && ends("ROLLBACK") && ends("END") && ends("ABORT"));
        assert!(ends("ROLLBACK TO SAVEPOINT a") && ends("PREPARE TRANSACTION 'g'"));
        assert!(!ends("BEGIN") && !ends("SELECT 1") && !ends("SAVEPOINT a"));
        assert!(!ends("RELEASE a") && !ends("COMMIT PREPARED 'g'"));
    }

    #[test]
    fn two_phase_commands_are_recognised() {
        use crate::sql::TwoPhase;
        let tp = |sql: &str| match kind(sql) {
            StatementKind::Transaction(TransactionControl::TwoPhase(t)) => Some(t),
            _ => None,
        };
        assert_eq!(
            tp("PREPARE TRANSACTION 'a b'"),
            Some(TwoPhase::Prepare("a b".into()))
        );
        assert_eq!(
            tp("commit  prepared 'x';"),
            Some(TwoPhase::CommitPrepared("x".into()))
        );
        assert_eq!(
            tp("ROLLBACK PREPARED 'it''s'"),
            Some(TwoPhase::RollbackPrepared("it's".into()))
        );
        assert!(parse_single("PREPARE TRANSACTION x").is_err());
        assert_eq!(tp("PREPARE p AS SELECT 1"), None);
    }

    fn kind(sql: &str) -> StatementKind {
        classify(&parse_single(sql).unwrap())
    }

    fn table(name: &str) -> TableName {
        TableName {
            schema: None,
            name: name.into(),
        }
    }

    fn ddl_of(sql: &str) -> (DdlAction, Vec<TableName>) {
        match kind(sql) {
            StatementKind::Ddl(d) => (d.action, d.tables),
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn pgvector_ddl() {
        assert_eq!(
            ddl_of("CREATE EXTENSION IF NOT EXISTS vector").0,
            DdlAction::CreateExtension
        );
        assert_eq!(
            ddl_of(
                "CREATE TABLE IF NOT EXISTS items (id bigserial PRIMARY KEY, embedding vector(3) NOT NULL, \
                 h halfvec(3), s sparsevec(5), b bit(8), created timestamptz DEFAULT now(), meta jsonb)"
            ),
            (DdlAction::CreateTable, vec![table("items")])
        );
        assert_eq!(
            ddl_of(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS items_idx ON items USING hnsw \
                 (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
            ),
            (DdlAction::CreateIndex, vec![table("items")])
        );
        assert_eq!(
            ddl_of(
                "CREATE INDEX ON Items USING ivfflat (embedding vector_l2_ops) WITH (lists = 100)"
            ),
            (DdlAction::CreateIndex, vec![table("items")])
        );
        assert_eq!(ddl_of("DROP TABLE items, other").1.len(), 2);
        assert_eq!(ddl_of("DROP INDEX items_idx").0, DdlAction::DropIndex);
        assert_eq!(ddl_of("TRUNCATE items").0, DdlAction::Truncate);
        assert_eq!(
            ddl_of("ALTER TABLE items ADD COLUMN v vector(2)"),
            (DdlAction::AlterTable, vec![table("items")])
        );
    }

    #[test]
    fn writes_name_their_table() {
        assert_eq!(
            kind(
                "INSERT INTO items (id, embedding) VALUES (1, '[1,2,3]'), (2, $1) \
                 ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding RETURNING id"
            ),
            StatementKind::Insert(table("items"))
        );
        assert_eq!(
            kind("INSERT INTO items VALUES (1) ON CONFLICT (id) DO NOTHING"),
            StatementKind::Insert(table("items"))
        );
        assert_eq!(
            kind("UPDATE items SET embedding = $1 WHERE id = $2"),
            StatementKind::Update(table("items"))
        );
        assert_eq!(
            kind("DELETE FROM public.items WHERE id = 1"),
            StatementKind::Delete(TableName {
                schema: Some("public".into()),
                name: "items".into()
            })
        );
    }

    #[test]
    fn copy_formats() {
        let StatementKind::Copy(c) =
            kind("COPY items (id, embedding) FROM STDIN WITH (FORMAT binary)")
        else {
            panic!()
        };
        assert_eq!(c.table, Some(table("items")));
        assert_eq!(c.columns, vec!["id", "embedding"]);
        assert_eq!(
            (c.direction, c.stdio, c.format),
            (CopyDirection::From, true, CopyFormat::Binary)
        );
        let StatementKind::Copy(c) = kind("COPY items TO STDOUT WITH (FORMAT csv)") else {
            panic!()
        };
        assert_eq!(
            (c.direction, c.format),
            (CopyDirection::To, CopyFormat::Csv)
        );
        let StatementKind::Copy(c) = kind("COPY items FROM STDIN") else {
            panic!()
        };
        assert_eq!(c.format, CopyFormat::Text);
    }

    #[test]
    fn settings() {
        assert_eq!(
            kind("SET LOCAL hnsw.ef_search = 100"),
            StatementKind::Set(SetVariable {
                name: "hnsw.ef_search".into(),
                value: Some("100".into()),
                local: true
            })
        );
        assert_eq!(
            kind("SET ivfflat.iterative_scan TO 'relaxed_order'"),
            StatementKind::Set(SetVariable {
                name: "ivfflat.iterative_scan".into(),
                value: Some("relaxed_order".into()),
                local: false
            })
        );
        assert_eq!(
            kind("SET DateStyle = ISO, MDY"),
            StatementKind::Set(SetVariable {
                name: "datestyle".into(),
                value: Some("ISO, MDY".into()),
                local: false
            })
        );
        assert_eq!(
            kind("SET statement_timeout TO DEFAULT"),
            StatementKind::Set(SetVariable {
                name: "statement_timeout".into(),
                value: None,
                local: false
            })
        );
        assert_eq!(
            kind("SHOW hnsw.ef_search"),
            StatementKind::Show("hnsw.ef_search".into())
        );
        assert_eq!(kind("SHOW ALL"), StatementKind::Show("all".into()));
        for (sql, name) in [
            ("SHOW TRANSACTION ISOLATION LEVEL", "transaction_isolation"),
            ("show time zone", "timezone"),
            ("SHOW SESSION AUTHORIZATION", "session_authorization"),
        ] {
            assert_eq!(kind(sql), StatementKind::Show(name.into()), "{sql}");
        }
        assert_eq!(
            kind("RESET hnsw.ef_search"),
            StatementKind::Reset(Some("hnsw.ef_search".into()))
        );
        assert_eq!(kind("RESET ALL"), StatementKind::Reset(None));
        assert_eq!(kind("DISCARD ALL"), StatementKind::Discard);
    }

    #[test]
    fn transactions() {
        use TransactionControl::*;
        let modes = |read_only, isolation: Option<&str>| TransactionModes {
            read_only,
            isolation: isolation.map(str::to_string),
        };
        for (sql, want) in [
            (
                "BEGIN",
                Begin {
                    start: false,
                    modes: modes(None, None),
                },
            ),
            (
                "START TRANSACTION READ ONLY, ISOLATION LEVEL REPEATABLE READ, READ WRITE",
                Begin {
                    start: true,
                    modes: modes(Some(false), Some("repeatable read")),
                },
            ),
            ("COMMIT", Commit { chain: false }),
            ("END", Commit { chain: false }),
            ("COMMIT AND CHAIN", Commit { chain: true }),
            ("ROLLBACK AND NO CHAIN", Rollback { chain: false }),
            ("ABORT AND CHAIN", Rollback { chain: true }),
            ("ROLLBACK", Rollback { chain: false }),
            ("SAVEPOINT a", Savepoint("a".into())),
            ("RELEASE SAVEPOINT a", Release("a".into())),
            ("ROLLBACK TO SAVEPOINT a", RollbackTo("a".into())),
        ] {
            assert_eq!(kind(sql), StatementKind::Transaction(want), "{sql}");
        }
        assert_eq!(
            kind("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
            StatementKind::SetTransaction {
                modes: modes(None, Some("serializable")),
                session: true,
            }
        );
    }

    #[test]
    fn queries_and_explain() {
        let StatementKind::Select(s) = kind(
            "WITH near AS MATERIALIZED (SELECT id, embedding <-> '[1,2,3]' AS d FROM items) \
             SELECT * FROM near WHERE d < 1 ORDER BY d",
        ) else {
            panic!()
        };
        assert_eq!(s.tables, vec![table("items")]);
        assert!(!s.locking);
        let StatementKind::Select(s) = kind(
            "SELECT * FROM items JOIN generate_series(1, 3) g ON g = items.id, unnest(ARRAY[1]) u",
        ) else {
            panic!()
        };
        assert_eq!(s.tables, vec![table("items")]);
        let StatementKind::Select(s) = kind("SELECT * FROM items WHERE id = 1 FOR UPDATE") else {
            panic!()
        };
        assert!(s.locking);
        let StatementKind::Explain { analyze, statement } =
            kind("EXPLAIN ANALYZE SELECT * FROM items ORDER BY embedding <-> '[1,2,3]' LIMIT 5")
        else {
            panic!()
        };
        assert!(analyze);
        assert!(matches!(*statement, StatementKind::Select(_)));
        let StatementKind::Explain { analyze, .. } = kind("EXPLAIN (ANALYZE, BUFFERS) SELECT 1")
        else {
            panic!()
        };
        assert!(analyze);
        let StatementKind::Explain { analyze, .. } = kind("EXPLAIN SELECT 1") else {
            panic!()
        };
        assert!(!analyze);
    }
}
