//! Running a query: one input (a table, a subquery, a CTE, or none),
//! WHERE, GROUP BY with aggregates, HAVING, ORDER BY, OFFSET/LIMIT and
//! the select list. KNN queries over a table take the index or exact
//! path of [`super::plan`]; everything else scans.
//!
//! The same code describes a prepared statement: in dry mode no rows are
//! read and parameters are NULL, so only the result columns come out.

use super::aggregate::{find_calls, Accumulators};
use super::coerce::to_described;
use super::distinct_on::distinct_on_order;
use super::expr::{bool_of, eval, Chain, Env, NoRow, Row, Scope};
use super::infer::{infer, output_name, Columns, TypeEnv, TypeOf};
use super::plan::{
    btree_lookup, choose_access, knn_plan, knn_slots, resolve_key, IndexLookup, KnnAccess, KnnPlan,
};
use super::types;
use super::window;
use crate::metrics::{thread_cpu_time, QueryPlan};
use crate::shard::datum::Datum;
use crate::shard::storage::{AnnSearch, IndexMethod, Table, Tables};
use crate::wire::{FieldDescription, PgError, Value};
use ann::IterativeScan;
use sqlparser::ast::{
    Expr, GroupByExpr, JoinConstraint, JoinOperator, LimitClause, ObjectName, OrderByExpr,
    OrderByKind, Query, Select, SelectItem, SetExpr, TableAliasColumnDef, TableFactor, Values,
};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Duration;

/// A result column.
#[derive(Debug, Clone)]
pub struct Column {
    /// Name.
    pub name: String,
    /// Type and typmod.
    pub ty: TypeOf,
}

/// Rows with named, typed columns: a query's result or a CTE's.
#[derive(Debug, Clone, Default)]
pub struct Relation {
    /// The columns.
    pub columns: Vec<Column>,
    /// The rows, one value per column.
    pub rows: Vec<Vec<Datum>>,
}

impl Relation {
    /// The RowDescription of the columns.
    pub fn fields(&self) -> Vec<FieldDescription> {
        self.columns
            .iter()
            .map(|c| types::field(&c.name, c.ty.0, c.ty.1))
            .collect()
    }
}

/// What a query runs against.
#[derive(Clone)]
pub struct Ctx<'a> {
    /// The committed tables.
    pub tables: &'a Tables,
    /// Parameters and session state.
    pub env: Env<'a>,
    /// Parameter types (for result types).
    pub param_types: &'a [u32],
    /// The session's ANN search settings.
    pub ann: &'a AnnSearch,
    /// Set when the statement is canceled or times out.
    pub cancel: &'a AtomicBool,
    /// Describe only: read no rows.
    pub dry: bool,
    /// CTEs in scope.
    pub ctes: HashMap<String, Arc<Relation>>,
    /// The plan the statement used, for its latency metric.
    pub plan: &'a PlanSeen,
    /// Subqueries already described.
    pub subquery_types: Arc<SubqueryTypes>,
}

/// The columns of every subquery described so far in a statement, by the
/// subquery's address in the statement's tree (which stays put while the
/// statement runs; queries built while it runs run with a table of their
/// own, see [`Ctx::for_built_query`]). Describing a subquery plans it
/// dry, including its own subqueries: without this table nested scalar
/// subqueries were described again at every level and every row, and 300
/// of them took a minute.
#[derive(Debug, Default)]
pub struct SubqueryTypes(std::sync::Mutex<HashMap<usize, Vec<Column>>>);

impl SubqueryTypes {
    fn get(&self, q: &Query) -> Option<Vec<Column>> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(q as *const Query as usize)).cloned()
    }

    fn insert(&self, q: &Query, columns: &[Column]) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(q as *const Query as usize, columns.to_vec());
    }
}

/// The most index-like plan a statement's KNN parts used (`ann` over
/// `exact` over `scan`): the `plan` label of its latency. Atomic so that
/// a [`Ctx`] stays `Sync`.
#[derive(Debug, Default)]
pub struct PlanSeen {
    plan: AtomicU8,
    /// The (table, index) of the first ANN index scan.
    ann_index: std::sync::OnceLock<(String, String)>,
    /// CPU time its ANN index searches took, in nanoseconds.
    index_cpu_nanos: AtomicU64,
}

impl PlanSeen {
    fn saw(&self, plan: QueryPlan) {
        self.plan.fetch_max(plan as u8, AtomicOrdering::Relaxed);
    }

    /// The plan recorded so far (`scan` without a KNN part).
    pub fn get(&self) -> QueryPlan {
        let seen = usize::from(self.plan.load(AtomicOrdering::Relaxed));
        QueryPlan::ALL.get(seen).copied().unwrap_or(QueryPlan::Scan)
    }

    /// The (table, index) of the first ANN index scan, if any.
    pub fn ann_index(&self) -> Option<&(String, String)> {
        self.ann_index.get()
    }

    /// CPU time the statement's ANN index searches took.
    pub fn index_cpu(&self) -> Duration {
        Duration::from_nanos(self.index_cpu_nanos.load(AtomicOrdering::Relaxed))
    }

    fn searched(&self, cpu: Duration) {
        let nanos = u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX);
        self.index_cpu_nanos
            .fetch_add(nanos, AtomicOrdering::Relaxed);
    }
}

impl<'a> Ctx<'a> {
    /// The environment expressions of this query are evaluated in: the
    /// context's, with subqueries reaching back to this query.
    pub fn eval_env(&self) -> Env<'_> {
        Env {
            scope: Some(self),
            ..self.env
        }
    }

    /// This context for running a query built while the statement runs
    /// (a part of a UNION or of a recursive CTE), with a [`SubqueryTypes`]
    /// of its own: its subqueries' addresses are not the statement's.
    pub fn for_built_query(&self) -> Ctx<'a> {
        Ctx {
            subquery_types: Default::default(),
            ..self.clone()
        }
    }

    /// 57014 once the statement is canceled.
    pub fn check_cancel(&self) -> Result<(), PgError> {
        if self.cancel.load(AtomicOrdering::Relaxed) {
            Err(PgError::canceled_by_user())
        } else {
            Ok(())
        }
    }
}

impl Scope for Ctx<'_> {
    fn subquery(&self, q: &Query, outer: &dyn Row, dry: bool) -> Result<Relation, PgError> {
        let dry = self.dry || dry;
        if dry {
            if let Some(columns) = self.subquery_types.get(q) {
                return Ok(Relation {
                    columns,
                    rows: Vec::new(),
                });
            }
        }
        let row = Chain {
            row: outer,
            outer: self.env.outer,
        };
        let ctx = Ctx {
            env: Env {
                outer: Some(&row),
                ..self.env
            },
            dry,
            ..self.clone()
        };
        let rel = run_query(q, &ctx)?;
        if dry {
            self.subquery_types.insert(q, &rel.columns);
        }
        Ok(rel)
    }

    fn tables(&self) -> &Tables {
        self.tables
    }
}

/// A query's input.
pub(super) enum Input<'a> {
    Unit,
    Table { table: &'a Table, alias: String },
    Rel { rel: Arc<Relation>, alias: String },
    Joined(Joined),
}

/// The rows of a FROM list with joins, each column under the name of the
/// relation it came from.
pub(super) struct Joined {
    /// Per column: the alias of its relation.
    quals: Vec<String>,
    rel: Relation,
}

impl Joined {
    fn position(&self, q: Option<&str>, name: &str) -> Option<usize> {
        self.rel
            .columns
            .iter()
            .zip(&self.quals)
            .position(|(c, a)| c.name == name && q.is_none_or(|q| q == a))
    }
}

/// One row of an input.
enum RowAt<'a> {
    Unit,
    Nulls(&'a Input<'a>),
    Table(&'a Table, &'a str, u32),
    Rel(&'a Relation, &'a str, &'a [Datum]),
    Joined(&'a Joined, &'a [Datum]),
}

/// Whether qualifier `q` names a FROM item called `alias` (its alias, or
/// the table's name when it has none: an alias hides the name, so that
/// `t.val` inside `(SELECT … FROM t t2 …)` is the outer `t`'s column).
pub(super) fn matches_alias(q: Option<&str>, alias: &str) -> bool {
    q.is_none_or(|q| q == alias)
}

impl Row for RowAt<'_> {
    fn get(&self, q: Option<&str>, name: &str) -> Option<Datum> {
        match self {
            RowAt::Unit => None,
            RowAt::Nulls(input) => input.column_type(q, name).map(|_| None),
            RowAt::Table(t, alias, slot) => {
                if !matches_alias(q, alias) {
                    return None;
                }
                t.def().column_index(name).map(|i| t.value(*slot, i))
            }
            RowAt::Rel(rel, alias, row) => {
                if !matches_alias(q, alias) {
                    return None;
                }
                let i = rel.columns.iter().position(|c| c.name == name)?;
                Some(row[i].clone())
            }
            RowAt::Joined(j, row) => j.position(q, name).map(|i| row[i].clone()),
        }
    }

    fn column_type(&self, q: Option<&str>, name: &str) -> Option<TypeOf> {
        match self {
            RowAt::Unit => None,
            RowAt::Nulls(input) => input.column_type(q, name),
            RowAt::Table(table, alias, _) => table_column_type(table, alias, q, name),
            RowAt::Rel(rel, alias, _) => rel_column_type(rel, alias, q, name),
            RowAt::Joined(j, _) => j.position(q, name).map(|i| j.rel.columns[i].ty),
        }
    }
}

fn table_column_type(table: &Table, alias: &str, q: Option<&str>, name: &str) -> Option<TypeOf> {
    if !matches_alias(q, alias) {
        return None;
    }
    let c = table.def().columns.iter().find(|c| c.name == name)?;
    Some((types::type_oid(c.ty), types::typmod(c.ty)))
}

fn rel_column_type(rel: &Relation, alias: &str, q: Option<&str>, name: &str) -> Option<TypeOf> {
    if !matches_alias(q, alias) {
        return None;
    }
    rel.columns.iter().find(|c| c.name == name).map(|c| c.ty)
}

impl Columns for Input<'_> {
    fn column_type(&self, q: Option<&str>, name: &str) -> Option<TypeOf> {
        match self {
            Input::Unit => None,
            Input::Table { table, alias } => table_column_type(table, alias, q, name),
            Input::Rel { rel, alias } => rel_column_type(rel, alias, q, name),
            Input::Joined(j) => j.position(q, name).map(|i| j.rel.columns[i].ty),
        }
    }
}

impl Input<'_> {
    /// The columns `*` stands for: (relation alias, column name).
    fn names(&self) -> Vec<(String, String)> {
        let under = |alias: &str, names: Vec<&String>| {
            names
                .into_iter()
                .map(|n| (alias.to_string(), n.clone()))
                .collect()
        };
        match self {
            Input::Unit => Vec::new(),
            Input::Table { table, alias } => {
                under(alias, table.def().columns.iter().map(|c| &c.name).collect())
            }
            Input::Rel { rel, alias } => {
                under(alias, rel.columns.iter().map(|c| &c.name).collect())
            }
            Input::Joined(j) => j
                .quals
                .iter()
                .zip(&j.rel.columns)
                .map(|(q, c)| (q.clone(), c.name.clone()))
                .collect(),
        }
    }

    fn handles(&self, dry: bool) -> Vec<u32> {
        match self {
            _ if dry => Vec::new(),
            Input::Unit => vec![0],
            Input::Table { table, .. } => table.live_slots().collect(),
            Input::Rel { rel, .. } => (0..rel.rows.len() as u32).collect(),
            Input::Joined(j) => (0..j.rel.rows.len() as u32).collect(),
        }
    }

    fn row(&self, h: u32) -> RowAt<'_> {
        match self {
            Input::Unit => RowAt::Unit,
            Input::Table { table, alias } => RowAt::Table(table, alias, h),
            Input::Rel { rel, alias } => RowAt::Rel(rel, alias, &rel.rows[h as usize]),
            Input::Joined(j) => RowAt::Joined(j, &j.rel.rows[h as usize]),
        }
    }
}

/// The last part of a (possibly schema-qualified) name, folded.
pub fn object_name(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(crate::sql::fold)
        .unwrap_or_default()
}

/// 42P01 for an unknown table.
pub fn undefined_table(name: &str) -> PgError {
    PgError::new("42P01", format!("relation \"{name}\" does not exist"))
}

pub(super) fn input<'a>(select: &Select, ctx: &Ctx<'a>) -> Result<Input<'a>, PgError> {
    match select.from.as_slice() {
        [] => Ok(Input::Unit),
        [one] if one.joins.is_empty() => factor_input(&one.relation, ctx),
        list => joined(list, ctx).map(Input::Joined),
    }
}

/// One FROM item: a set-returning function, a CTE, a catalog relation, a
/// stored table or a subquery.
fn factor_input<'a>(from: &TableFactor, ctx: &Ctx<'a>) -> Result<Input<'a>, PgError> {
    match from {
        _ if function_factor(from).is_some() => {
            let Some((name, args, with_ordinality, alias)) = function_factor(from) else {
                return Err(PgError::internal("not a function"));
            };
            let (rel, alias) = super::srf::function_relation(
                &object_name(name),
                args,
                with_ordinality,
                alias,
                ctx,
            )?;
            Ok(Input::Rel {
                rel: Arc::new(rel),
                alias,
            })
        }
        TableFactor::UNNEST {
            alias,
            array_exprs,
            with_offset: false,
            with_ordinality,
            ..
        } => {
            let (rel, alias) =
                super::srf::unnest_relation(array_exprs, *with_ordinality, alias.as_ref(), ctx)?;
            Ok(Input::Rel {
                rel: Arc::new(rel),
                alias,
            })
        }
        TableFactor::Table { name, alias, .. } => {
            let (schema, table_name) = schema_and_name(name);
            let alias = alias
                .as_ref()
                .map_or_else(|| table_name.clone(), |a| a.name.value.clone());
            if schema.is_none() {
                if let Some(rel) = ctx.ctes.get(&table_name) {
                    return Ok(Input::Rel {
                        rel: rel.clone(),
                        alias,
                    });
                }
            }
            if let Some(rel) = catalog_relation(schema.as_deref(), &table_name, ctx) {
                return Ok(Input::Rel {
                    rel: Arc::new(rel),
                    alias,
                });
            }
            if schema.as_deref().is_none_or(|s| s == "pg_catalog")
                && super::absent_catalogs::unmodeled(&table_name)
                && ctx.tables.get(&table_name).is_none()
            {
                return Err(PgError::feature_not_supported(format!(
                    "the catalog relation pg_catalog.{table_name} is not available on a pgvshard shard"
                )));
            }
            let public = schema.as_deref().is_none_or(|s| s == "public");
            match ctx.tables.get(&table_name).filter(|_| public) {
                Some(table) if !super::sequences::is_stored_sequence(&table.def().columns) => {
                    Ok(Input::Table { table, alias })
                }
                _ => {
                    let s = super::sequences::named(ctx.tables, &table_name)
                        .filter(|_| public)
                        .ok_or_else(|| undefined_table(&table_name))?;
                    let rel = ctx.env.globals.sequences.relation(ctx.tables, &s);
                    Ok(Input::Rel {
                        rel: Arc::new(rel),
                        alias,
                    })
                }
            }
        }
        TableFactor::Derived {
            subquery, alias, ..
        } => {
            let mut rel = run_query(subquery, ctx)?;
            let alias = match alias {
                Some(a) => {
                    rename_columns(&mut rel, &a.columns, "table", &a.name.value)?;
                    a.name.value.clone()
                }
                None => "subquery".to_string(),
            };
            Ok(Input::Rel {
                rel: Arc::new(rel),
                alias,
            })
        }
        other => Err(PgError::feature_not_supported(format!(
            "FROM {other} is not supported"
        ))),
    }
}

/// The schema (if written) and the folded name of a relation.
fn schema_and_name(name: &ObjectName) -> (Option<String>, String) {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident())
        .map(crate::sql::fold)
        .collect();
    match parts.as_slice() {
        [.., schema, rel] => (Some(schema.clone()), rel.clone()),
        [rel] => (None, rel.clone()),
        [] => (None, String::new()),
    }
}

/// A `pg_catalog` or `information_schema` relation: qualified, or
/// unqualified with a `pg_` name (pg_catalog comes first in the search
/// path, as in PostgreSQL).
fn catalog_relation(schema: Option<&str>, name: &str, ctx: &Ctx) -> Option<Relation> {
    if schema.is_none() && !name.starts_with("pg_") {
        return None;
    }
    if name == "pg_sequences" && schema.is_none_or(|s| s == "pg_catalog") {
        let g = ctx.env.globals;
        return Some(super::sequences::pg_sequences(
            ctx.tables,
            &g.sequences,
            &g.session,
        ));
    }
    super::pg_catalog::relation(schema, name, ctx.tables, &ctx.env.globals.session)
}

/// One FROM item read whole, as a join input.
fn join_input(factor: &TableFactor, ctx: &Ctx) -> Result<Joined, PgError> {
    Ok(match factor_input(factor, ctx)? {
        Input::Table { table, alias } => {
            let columns = table
                .def()
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    ty: (types::type_oid(c.ty), types::typmod(c.ty)),
                })
                .collect::<Vec<_>>();
            let n = columns.len();
            let rows = match ctx.dry {
                true => Vec::new(),
                false => table
                    .live_slots()
                    .map(|s| (0..n).map(|i| table.value(s, i)).collect())
                    .collect(),
            };
            Joined {
                quals: vec![alias; n],
                rel: Relation { columns, rows },
            }
        }
        Input::Rel { rel, alias } => Joined {
            quals: vec![alias; rel.columns.len()],
            rel: Arc::unwrap_or_clone(rel),
        },
        Input::Joined(j) => j,
        Input::Unit => Joined {
            quals: Vec::new(),
            rel: Relation::default(),
        },
    })
}

/// A FROM list with joins, joined left to right (nested loops; a
/// comma is a cross join).
fn joined(list: &[sqlparser::ast::TableWithJoins], ctx: &Ctx) -> Result<Joined, PgError> {
    let comma = JoinOperator::CrossJoin(JoinConstraint::None);
    let mut acc: Option<Joined> = None;
    for item in list {
        if let Some(left) = acc.take_if(|_| is_lateral(&item.relation)) {
            // `FROM a, LATERAL (…) x [JOIN …]`: the subquery sees a's columns
            // (first in FROM, it has nothing to see and runs once).
            let mut cur = join_factor(left, &item.relation, &comma, ctx)?;
            for j in &item.joins {
                cur = join_factor(cur, &j.relation, &j.join_operator, ctx)?;
            }
            acc = Some(cur);
            continue;
        }
        let mut cur = join_input(&item.relation, ctx)?;
        for j in &item.joins {
            cur = join_factor(cur, &j.relation, &j.join_operator, ctx)?;
        }
        acc = Some(match acc {
            None => cur,
            Some(left) => join(left, cur, &comma, ctx)?,
        });
    }
    acc.ok_or_else(|| PgError::internal("empty FROM list"))
}

/// A LATERAL subquery, or a function in FROM (which PostgreSQL runs
/// laterally, with or without the word).
fn is_lateral(factor: &TableFactor) -> bool {
    matches!(factor, TableFactor::Derived { lateral: true, .. })
        || function_factor(factor).is_some()
}

/// A function in FROM (`f(…)` or `LATERAL f(…)`): its name, arguments,
/// WITH ORDINALITY and alias.
type FunctionFactor<'f> = (
    &'f ObjectName,
    &'f [sqlparser::ast::FunctionArg],
    bool,
    Option<&'f sqlparser::ast::TableAlias>,
);

fn function_factor(factor: &TableFactor) -> Option<FunctionFactor<'_>> {
    match factor {
        TableFactor::Table {
            name,
            alias,
            args: Some(args),
            with_ordinality,
            ..
        } => Some((name, &args.args, *with_ordinality, alias.as_ref())),
        TableFactor::Function {
            name,
            args,
            with_ordinality,
            alias,
            ..
        } => Some((name, args, *with_ordinality, alias.as_ref())),
        _ => None,
    }
}

/// `left <op> factor`: a LATERAL subquery runs once per row of `left`;
/// any other factor is read once and joined.
fn join_factor(
    left: Joined,
    factor: &TableFactor,
    op: &JoinOperator,
    ctx: &Ctx,
) -> Result<Joined, PgError> {
    match factor {
        TableFactor::Derived {
            lateral: true,
            subquery,
            alias,
            ..
        } => {
            let named = |mut rel: Relation| -> Result<Relation, PgError> {
                if let Some(a) = alias {
                    rename_columns(&mut rel, &a.columns, "table", &a.name.value)?;
                }
                Ok(rel)
            };
            let name = alias
                .as_ref()
                .map_or_else(|| "subquery".to_string(), |a| a.name.value.clone());
            lateral_join(left, &name, op, ctx, &|row, dry| {
                named(ctx.subquery(subquery, row, dry)?)
            })
        }
        _ if function_factor(factor).is_some() => {
            let Some((name, args, with_ordinality, alias)) = function_factor(factor) else {
                return Err(PgError::internal("not a function"));
            };
            let function = object_name(name);
            let call = |row: &dyn Row, dry: bool| {
                let chain = Chain {
                    row,
                    outer: ctx.env.outer,
                };
                let inner = Ctx {
                    env: Env {
                        outer: Some(&chain),
                        ..ctx.env
                    },
                    dry: ctx.dry || dry,
                    ..ctx.clone()
                };
                super::srf::function_relation(&function, args, with_ordinality, alias, &inner)
            };
            let nulls = vec![None; left.rel.columns.len()];
            let (_, relation) = call(&RowAt::Joined(&left, &nulls), true)?;
            lateral_join(left, &relation, op, ctx, &|row, dry| Ok(call(row, dry)?.0))
        }
        _ => {
            let right = join_input(factor, ctx)?;
            join(left, right, op, ctx)
        }
    }
}

/// Which unmatched rows a join keeps: the left side's (LEFT, FULL), the
/// right side's (RIGHT, FULL).
#[derive(Clone, Copy)]
struct Unmatched {
    left: bool,
    right: bool,
}

/// The unmatched rows `op` keeps, and its constraint.
fn join_kind(op: &JoinOperator) -> Result<(Unmatched, &JoinConstraint), PgError> {
    let keep = |left, right| Unmatched { left, right };
    match op {
        JoinOperator::Join(c) | JoinOperator::Inner(c) | JoinOperator::CrossJoin(c) => {
            Ok((keep(false, false), c))
        }
        JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => Ok((keep(true, false), c)),
        JoinOperator::Right(c) | JoinOperator::RightOuter(c) => Ok((keep(false, true), c)),
        JoinOperator::FullOuter(c) => Ok((keep(true, true), c)),
        _ => Err(PgError::feature_not_supported(
            "this kind of join is not supported",
        )),
    }
}

/// `left [LEFT] JOIN LATERAL item [ON …]`: `item` (a subquery or a
/// function, named `name`) is produced by `run` for each row of `left`,
/// which it sees as an outer row (`run`'s flag: only its columns are needed).
fn lateral_join(
    left: Joined,
    name: &str,
    op: &JoinOperator,
    ctx: &Ctx,
    run: &dyn Fn(&dyn Row, bool) -> Result<Relation, PgError>,
) -> Result<Joined, PgError> {
    let (keep, constraint) = join_kind(op)?;
    if keep.right {
        return Err(PgError::new(
            "42601",
            "the combining JOIN type must be INNER or LEFT for a LATERAL reference",
        ));
    }
    let outer = keep.left;
    let on = match constraint {
        JoinConstraint::On(e) => Some(e),
        JoinConstraint::None => None,
        _ => {
            return Err(PgError::feature_not_supported(
                "USING or NATURAL with a LATERAL subquery is not supported",
            ))
        }
    };
    let nulls = vec![None; left.rel.columns.len()];
    let shape = run(&RowAt::Joined(&left, &nulls), true)?;
    let width = shape.columns.len();
    let mut out = Joined {
        quals: [left.quals.clone(), vec![name.to_string(); width]].concat(),
        rel: Relation {
            columns: [left.rel.columns.clone(), shape.columns].concat(),
            rows: Vec::new(),
        },
    };
    let env = ctx.eval_env();
    for (n, l) in left.rel.rows.iter().enumerate() {
        if n % 256 == 0 {
            ctx.check_cancel()?;
        }
        let right = run(&RowAt::Joined(&left, l), false)?;
        let mut matched = false;
        for r in right.rows {
            let row = [l.as_slice(), r.as_slice()].concat();
            if passes(on, &RowAt::Joined(&out, &row), &env)? {
                matched = true;
                out.rel.rows.push(row);
            }
        }
        if outer && !matched {
            let mut row = l.clone();
            row.extend(std::iter::repeat_n(None, width));
            out.rel.rows.push(row);
        }
    }
    Ok(out)
}

fn join(left: Joined, right: Joined, op: &JoinOperator, ctx: &Ctx) -> Result<Joined, PgError> {
    let (keep, constraint) = join_kind(op)?;
    if keep.right && matches!(constraint, JoinConstraint::Using(_)) {
        // Its merged columns would be COALESCE(left, right).
        return Err(PgError::feature_not_supported(
            "RIGHT or FULL JOIN with USING is not supported (write ON)",
        ));
    }
    let using: Vec<(usize, usize)> = match constraint {
        JoinConstraint::Using(names) => names
            .iter()
            .map(|n| {
                let name = object_name(n);
                match (left.position(None, &name), right.position(None, &name)) {
                    (Some(l), Some(r)) => Ok((l, r)),
                    _ => Err(PgError::new(
                        "42703",
                        format!("column \"{name}\" specified in USING clause does not exist in left table"),
                    )),
                }
            })
            .collect::<Result<_, _>>()?,
        JoinConstraint::Natural => {
            return Err(PgError::feature_not_supported("NATURAL JOIN is not supported"))
        }
        _ => Vec::new(),
    };
    let on = match constraint {
        JoinConstraint::On(e) => Some(e),
        _ => None,
    };
    let (left_width, width) = (left.rel.columns.len(), right.rel.columns.len());
    let mut out = Joined {
        quals: [left.quals, right.quals].concat(),
        rel: Relation {
            columns: [left.rel.columns, right.rel.columns].concat(),
            rows: Vec::new(),
        },
    };
    let env = ctx.eval_env();
    let mut right_matched = vec![false; right.rel.rows.len()];
    for (n, l) in left.rel.rows.into_iter().enumerate() {
        if n % 256 == 0 {
            ctx.check_cancel()?;
        }
        let mut matched = false;
        for (r, r_matched) in right.rel.rows.iter().zip(right_matched.iter_mut()) {
            let mut keys_equal = true;
            for &(a, b) in &using {
                keys_equal &= match (&l[a], &r[b]) {
                    (Some(x), Some(y)) => super::expr::compare(x, y)? == Ordering::Equal,
                    _ => false,
                };
            }
            if !keys_equal {
                continue;
            }
            let row = [l.as_slice(), r.as_slice()].concat();
            if passes(on, &RowAt::Joined(&out, &row), &env)? {
                matched = true;
                *r_matched = true;
                out.rel.rows.push(row);
            }
        }
        if keep.left && !matched {
            let mut row = l;
            row.extend(std::iter::repeat_n(None, width));
            out.rel.rows.push(row);
        }
    }
    if keep.right {
        for (r, _) in right
            .rel
            .rows
            .into_iter()
            .zip(right_matched)
            .filter(|(_, m)| !m)
        {
            let mut row = vec![None; left_width];
            row.extend(r);
            out.rel.rows.push(row);
        }
    }
    Ok(out)
}

/// The value of a LIMIT (`offset`: false) or OFFSET clause; 2201W / 2201X
/// when negative.
fn constant_count(expr: Option<&Expr>, offset: bool, ctx: &Ctx) -> Result<Option<usize>, PgError> {
    let Some(e) = expr else { return Ok(None) };
    match eval(e, &NoRow, &ctx.env)? {
        None => Ok(None),
        Some(v) => {
            let n = super::coerce::as_i64(&super::coerce::cast(
                v,
                crate::wire::types::oid::INT8,
                None,
                false,
            )?)
            .unwrap_or(0);
            if n < 0 {
                let (code, clause) = if offset {
                    ("2201X", "OFFSET")
                } else {
                    ("2201W", "LIMIT")
                };
                return Err(PgError::new(code, format!("{clause} must not be negative")));
            }
            Ok(Some(n as usize))
        }
    }
}

/// LIMIT and OFFSET of a query.
pub fn limit_offset(q: &Query, ctx: &Ctx) -> Result<(Option<usize>, usize), PgError> {
    Ok(match &q.limit_clause {
        None => (None, 0),
        Some(LimitClause::LimitOffset { limit, offset, .. }) => (
            constant_count(limit.as_ref(), false, ctx)?,
            constant_count(offset.as_ref().map(|o| &o.value), true, ctx)?.unwrap_or(0),
        ),
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => (
            constant_count(Some(limit), false, ctx)?,
            constant_count(Some(offset), true, ctx)?.unwrap_or(0),
        ),
    })
}

/// The ORDER BY keys of a query.
pub fn order_keys(q: &Query) -> Result<&[OrderByExpr], PgError> {
    match q.order_by.as_ref().map(|o| &o.kind) {
        None => Ok(&[]),
        Some(OrderByKind::Expressions(keys)) => Ok(keys),
        Some(OrderByKind::All(_)) => Err(PgError::feature_not_supported(
            "ORDER BY ALL is not supported",
        )),
    }
}

/// Most `hnsw.ef_search` at which an unfiltered HNSW search counts as
/// short and runs where the session runs: a few thousand distance
/// computations at most, under 0.4 ms of one core on pypi-minilm-384
/// (ef 320: 0.3 ms). The handoff to the blocking pool and back cost more
/// than it saved: 20–30 µs of CPU per query (the shard's CPU per query
/// outside the engine at ef 200–320 against ef 60), and a thread wake-up
/// on a busy machine; meanwhile the session's worker serves no other task,
/// as a PostgreSQL backend serves one query.
pub const SHORT_KNN_EF_SEARCH: usize = 400;

/// Whether `q` is `SELECT cols FROM t ORDER BY col <op> value LIMIT n`
/// answered by an HNSW index with no filter, no aggregate and
/// `hnsw.ef_search` (which bounds its work) at most
/// [`SHORT_KNN_EF_SEARCH`]: short enough to run where the session runs.
pub fn is_short_knn(q: &Query, ctx: &Ctx) -> bool {
    let hnsw = &ctx.ann.hnsw;
    let (None, SetExpr::Select(s)) = (&q.with, q.body.as_ref()) else {
        return false;
    };
    let plain = s.selection.is_none()
        && s.having.is_none()
        && s.distinct.is_none()
        && matches!(&s.group_by, GroupByExpr::Expressions(g, _) if g.is_empty())
        && s.projection.iter().all(|item| match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                is_column_arithmetic(e)
            }
            _ => true,
        });
    if !plain || hnsw.ef_search > SHORT_KNN_EF_SEARCH || hnsw.iterative_scan != IterativeScan::Off {
        return false;
    }
    let (Ok(order), Ok((Some(limit), offset))) = (order_keys(q), limit_offset(q, ctx)) else {
        return false;
    };
    if limit.saturating_add(offset) > hnsw.ef_search {
        return false;
    }
    let Ok(Input::Table { table, alias }) = input(s, ctx) else {
        return false;
    };
    // A cold index (codes not trained yet) runs its first search on the
    // blocking pool, not on the session's task.
    matches!(
        knn_plan(
            order,
            &s.projection,
            Some(limit),
            offset,
            table,
            &alias,
            None,
            &ctx.env
        ),
        Ok(Some(KnnPlan {
            index: Some((name, IndexMethod::Hnsw { .. })),
            ..
        })) if table.ann_index_is_warm(&name)
    )
}

/// Columns, constants and parameters combined by operators and casts: no
/// function call or subquery whose cost a KNN plan does not bound.
fn is_column_arithmetic(e: &Expr) -> bool {
    crate::stack::guard(|| match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::Value(_) => true,
        Expr::BinaryOp { left, right, .. } => {
            is_column_arithmetic(left) && is_column_arithmetic(right)
        }
        Expr::Cast { expr, .. } | Expr::Nested(expr) | Expr::UnaryOp { expr, .. } => {
            is_column_arithmetic(expr)
        }
        _ => false,
    })
}

/// Runs (or, in dry mode, describes) a query.
pub fn run_query(q: &Query, ctx: &Ctx) -> Result<Relation, PgError> {
    crate::stack::guard(|| {
        let mut ctx = ctx.clone();
        if let Some(with) = &q.with {
            super::cte::run_with(with, &mut ctx)?;
        }
        let order = order_keys(q)?;
        let (limit, offset) = limit_offset(q, &ctx)?;
        match q.body.as_ref() {
            SetExpr::Select(s) => run_select(s, order, limit, offset, &ctx),
            SetExpr::Query(inner) if order.is_empty() && q.limit_clause.is_none() => {
                run_query(inner, &ctx)
            }
            SetExpr::Values(values) => run_values(values, &ctx),
            SetExpr::SetOperation {
                op,
                set_quantifier,
                left,
                right,
            } => super::setop::run_set_operation(
                q,
                op,
                set_quantifier,
                left,
                right,
                order,
                limit,
                offset,
                &ctx,
            ),
            _ => Err(PgError::feature_not_supported(
                "this kind of query is not supported",
            )),
        }
    })
}

/// Names the first columns of `rel` after an alias list (`AS p(c0, c1)`,
/// `WITH w(a, b)`); 42P10 when the list is longer than the columns, as
/// PostgreSQL says for the `what` (table, WITH query) named `name`.
pub(super) fn rename_columns(
    rel: &mut Relation,
    aliases: &[TableAliasColumnDef],
    what: &str,
    name: &str,
) -> Result<(), PgError> {
    if aliases.len() > rel.columns.len() {
        return Err(PgError::new(
            "42P10",
            format!(
                "{what} \"{name}\" has {} columns available but {} columns specified",
                rel.columns.len(),
                aliases.len()
            ),
        ));
    }
    for (c, alias) in rel.columns.iter_mut().zip(aliases) {
        c.name = alias.name.value.clone();
    }
    Ok(())
}

/// A VALUES list: `column1`, `column2`, … typed like the first row's
/// expressions (parameters by their bound types), numeric columns widened
/// to the widest numeric type of any row as PostgreSQL's common type does;
/// every cell is converted to its column's type.
fn run_values(values: &Values, ctx: &Ctx) -> Result<Relation, PgError> {
    let tenv = type_env(ctx);
    let mut columns: Vec<Column> = Vec::new();
    for (i, row) in values.rows.iter().enumerate() {
        if i > 0 && row.len() != columns.len() {
            return Err(PgError::new(
                "42601",
                "VALUES lists must all be the same length",
            ));
        }
        for (j, e) in row.iter().enumerate() {
            let ty = infer(e, &Input::Unit, &tenv)?;
            match columns.get_mut(j) {
                None => columns.push(Column {
                    name: format!("column{}", j + 1),
                    ty,
                }),
                Some(c) => c.ty = common_numeric(c.ty, ty),
            }
        }
    }
    let mut rel = Relation {
        columns,
        rows: Vec::new(),
    };
    if ctx.dry {
        return Ok(rel);
    }
    for row in &values.rows {
        let cells = row
            .iter()
            .zip(&rel.columns)
            .map(|(e, c)| {
                eval(e, &NoRow, &ctx.eval_env())?
                    .map(|v| to_described(v, c.ty.0))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        rel.rows.push(cells);
    }
    Ok(rel)
}

/// The wider of two types when both are numeric (int2 < int4 < int8 <
/// float4 < float8; the shard's numeric is float8), else `first`.
pub(super) fn common_numeric(first: TypeOf, other: TypeOf) -> TypeOf {
    use crate::wire::types::oid;
    let rank = |t: u32| {
        [oid::INT2, oid::INT4, oid::INT8, oid::FLOAT4, oid::FLOAT8]
            .iter()
            .position(|&n| n == t)
    };
    match (rank(first.0), rank(other.0)) {
        (Some(a), Some(b)) if b > a => (other.0, -1),
        _ => first,
    }
}

pub(super) fn type_env<'b>(ctx: &'b Ctx<'_>) -> TypeEnv<'b> {
    TypeEnv {
        params: ctx.param_types,
        scope: Some(ctx),
        outer: ctx.env.outer,
    }
}

/// A select (or RETURNING) list with wildcards expanded to `names`:
/// (output name, expression). The list's own expressions are borrowed, not
/// copied: a copy per nested query made nested subqueries quadratic.
pub fn expand_items<'q>(
    projection: &'q [SelectItem],
    names: &[(String, String)],
) -> Result<Vec<(String, Cow<'q, Expr>)>, PgError> {
    let mut items = Vec::new();
    for item in projection {
        match item {
            SelectItem::UnnamedExpr(e) => items.push((output_name(e), Cow::Borrowed(e))),
            SelectItem::ExprWithAlias { expr, alias } => {
                items.push((alias.value.clone(), Cow::Borrowed(expr)))
            }
            SelectItem::ExprWithAliases { .. } => {
                return Err(PgError::feature_not_supported(
                    "several aliases are not supported",
                ))
            }
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                if names.is_empty() {
                    return Err(PgError::new(
                        "42601",
                        "SELECT * with no tables specified is not valid",
                    ));
                }
                let only = match item {
                    SelectItem::QualifiedWildcard(
                        sqlparser::ast::SelectItemQualifiedWildcardKind::ObjectName(n),
                        _,
                    ) => Some(object_name(n)),
                    _ => None,
                };
                let mut any = false;
                for (q, name) in names {
                    if only.as_ref().is_some_and(|o| o != q) {
                        continue;
                    }
                    any = true;
                    let e = Expr::CompoundIdentifier(vec![
                        sqlparser::ast::Ident::new(q.clone()),
                        sqlparser::ast::Ident::new(name.clone()),
                    ]);
                    items.push((name.clone(), Cow::Owned(e)));
                }
                if let (false, Some(o)) = (any, only) {
                    return Err(PgError::new(
                        "42P01",
                        format!("missing FROM-clause entry for table \"{o}\""),
                    ));
                }
            }
        }
    }
    Ok(items)
}

/// Output values and sort keys of one result row.
struct Produced {
    outputs: Vec<Datum>,
    keys: Vec<Datum>,
}

struct Shape<'q> {
    items: Vec<(String, Cow<'q, Expr>)>,
    order: &'q [OrderByExpr],
    projection: &'q [SelectItem],
}

impl Shape<'_> {
    /// The select list of `row`, without sort keys: for rows that come
    /// already in order.
    fn outputs(&self, row: &dyn Row, env: &Env) -> Result<Produced, PgError> {
        let outputs = self
            .items
            .iter()
            .map(|(_, e)| eval(e, row, env))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Produced {
            outputs,
            keys: Vec::new(),
        })
    }

    fn produce(&self, row: &dyn Row, env: &Env) -> Result<Produced, PgError> {
        let outputs = self.outputs(row, env)?.outputs;
        let keys = self
            .order
            .iter()
            .map(|k| self.key(&k.expr, &outputs, row, env))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Produced { outputs, keys })
    }

    fn key(
        &self,
        key: &Expr,
        outputs: &[Datum],
        row: &dyn Row,
        env: &Env,
    ) -> Result<Datum, PgError> {
        match key {
            Expr::Identifier(i) => {
                if let Some(pos) = self.items.iter().position(|(n, _)| *n == i.value) {
                    return Ok(outputs[pos].clone());
                }
            }
            // `ORDER BY 2` counts the select list with `*` expanded.
            Expr::Value(v) => {
                if let sqlparser::ast::Value::Number(n, _) = &v.value {
                    let at = n.parse::<usize>().ok().and_then(|n| n.checked_sub(1));
                    return match at.and_then(|i| outputs.get(i)) {
                        Some(d) => Ok(d.clone()),
                        None => Err(PgError::new(
                            "42P10",
                            format!("ORDER BY position {n} is not in select list"),
                        )),
                    };
                }
            }
            _ => {}
        }
        eval(resolve_key(key, self.projection), row, env)
    }
}

/// PostgreSQL's refusals of a window function (42P20) or an aggregate
/// (42803) in WHERE (a subquery's own are its own business).
fn misplaced_in_where(selection: Option<&Expr>) -> Result<(), PgError> {
    let any = |windowed: bool| {
        super::aggregate::distinct_calls(
            selection,
            |f: &sqlparser::ast::Function, _: &Expr| {
                let hit = match windowed {
                    true => f.over.is_some(),
                    false => f.over.is_none() && super::expr::is_aggregate(f),
                };
                hit.then(|| Ok(String::new()))
            },
            String::as_str,
        )
        .map(|calls| !calls.is_empty())
    };
    if any(true)? {
        return Err(PgError::new(
            "42P20",
            "window functions are not allowed in WHERE",
        ));
    }
    if any(false)? {
        return Err(PgError::new(
            "42803",
            "aggregate functions are not allowed in WHERE",
        ));
    }
    Ok(())
}

fn passes(filter: Option<&Expr>, row: &dyn Row, env: &Env) -> Result<bool, PgError> {
    match filter {
        None => Ok(true),
        Some(f) => Ok(eval(f, row, env)?.map(bool_of).transpose()? == Some(true)),
    }
}

fn run_select(
    s: &Select,
    order: &[OrderByExpr],
    limit: Option<usize>,
    offset: usize,
    ctx: &Ctx,
) -> Result<Relation, PgError> {
    let input = input(s, ctx)?;
    let items = expand_items(&s.projection, &input.names())?;
    let (distinct, distinct_on) = match &s.distinct {
        None => (false, None),
        Some(sqlparser::ast::Distinct::Distinct) => (true, None),
        Some(sqlparser::ast::Distinct::On(on)) => {
            (false, Some(distinct_on_order(on, order, &items)?))
        }
        Some(other) => {
            return Err(PgError::feature_not_supported(format!(
                "SELECT {other} is not supported"
            )))
        }
    };
    let order = distinct_on.as_ref().map_or(order, |(o, _)| o.as_slice());
    let shape = Shape {
        items,
        order,
        projection: &s.projection,
    };
    let columns = shape
        .items
        .iter()
        .map(|(name, e)| {
            Ok(Column {
                name: name.clone(),
                ty: infer(e, &input, &type_env(ctx))?,
            })
        })
        .collect::<Result<Vec<_>, PgError>>()?;
    let group_by: &[Expr] = match &s.group_by {
        GroupByExpr::Expressions(v, _) => v,
        GroupByExpr::All(_) => {
            return Err(PgError::feature_not_supported(
                "GROUP BY ALL is not supported",
            ))
        }
    };
    let calls = find_calls(
        shape
            .items
            .iter()
            .map(|(_, e)| &**e)
            .chain(s.having.iter())
            .chain(order.iter().map(|k| &k.expr)),
    )?;
    let grouped = !calls.is_empty() || !group_by.is_empty();
    let sets = set_calls(shape.items.iter().map(|(_, e)| &**e));
    let windows = window::calls(
        shape
            .items
            .iter()
            .map(|(_, e)| &**e)
            .chain(order.iter().map(|k| &k.expr)),
    )?;
    if !windows.is_empty() && (grouped || !sets.is_empty()) {
        return Err(PgError::feature_not_supported(
            "window functions with GROUP BY, aggregates or set-returning functions are not supported",
        ));
    }
    misplaced_in_where(s.selection.as_ref())?;
    if !set_calls(s.selection.iter()).is_empty() {
        return Err(PgError::feature_not_supported(
            "set-returning functions are not allowed in WHERE",
        ));
    }
    let eval_env = ctx.eval_env();
    let env = &eval_env;
    let filter = s.selection.as_ref();
    let mut produced = Vec::new();
    let mut index_ordered = false;
    let whole_set = grouped
        || distinct
        || distinct_on.is_some()
        || !sets.is_empty()
        || ctx.dry
        || !window::ranks_in_order(&windows, order);
    let knn = match whole_set {
        false => knn_decision(&input, s, order, limit, offset, ctx)?,
        true => None,
    };
    if let Some(d) = knn {
        let test = |slot: u32| {
            matches!(
                passes(filter, &RowAt::Table(d.table, d.alias, slot), env),
                Ok(true)
            )
        };
        // Like pgvector, rows from an index scan keep the index's order
        // (its distances); the exact path sorts by the ORDER BY expression.
        index_ordered = d.access == KnnAccess::Index;
        let f: Option<ann::Filter> = filter
            .filter(|_| !(index_ordered && d.plan.filter_implied))
            .map(|_| &test as ann::Filter);
        let candidates = d.lookup.as_ref().map(|l| l.slots.as_slice());
        ctx.plan.saw(if index_ordered {
            QueryPlan::Ann
        } else {
            QueryPlan::Exact
        });
        if let (true, Some((index, _))) = (index_ordered, &d.plan.index) {
            if ctx.plan.ann_index().is_none() {
                let _ = ctx
                    .plan
                    .ann_index
                    .set((d.table.def().name.clone(), index.clone()));
            }
        }
        let started = index_ordered.then(thread_cpu_time);
        let slots = knn_slots(&d.plan, d.access, d.table, f, candidates, ctx.ann)?;
        if let Some(started) = started {
            ctx.plan.searched(thread_cpu_time().saturating_sub(started));
        }
        let rows: Vec<RowAt> = slots
            .into_iter()
            .map(|slot| RowAt::Table(d.table, d.alias, slot))
            .collect();
        for_each_windowed(&rows, &windows, env, |row, env| {
            produced.push(if index_ordered {
                shape.outputs(row, env)?
            } else {
                shape.produce(row, env)?
            });
            Ok(())
        })?;
    } else if grouped {
        let clauses = Clauses {
            filter,
            group_by,
            having: s.having.as_ref(),
        };
        produced = grouped_rows(&input, &shape, &clauses, &calls, ctx)?;
    } else if !windows.is_empty() {
        let mut rows = Vec::new();
        for (n, h) in scan_handles(&input, filter, ctx).into_iter().enumerate() {
            if n % 1024 == 0 {
                ctx.check_cancel()?;
            }
            let row = input.row(h);
            if passes(filter, &row, env)? {
                rows.push(row);
            }
        }
        for_each_windowed(&rows, &windows, env, |row, env| {
            produced.push(shape.produce(row, env)?);
            Ok(())
        })?;
    } else {
        for (n, h) in scan_handles(&input, filter, ctx).into_iter().enumerate() {
            if n % 1024 == 0 {
                ctx.check_cancel()?;
            }
            let row = input.row(h);
            if !passes(filter, &row, env)? {
                continue;
            }
            if sets.is_empty() {
                produced.push(shape.produce(&row, env)?);
                continue;
            }
            for values in set_rows(&sets, &row, env, &|| ctx.check_cancel())? {
                let env = Env {
                    aggregates: Some(&values),
                    ..*env
                };
                produced.push(shape.produce(&row, &env)?);
            }
        }
    }
    if !index_ordered {
        sort(&mut produced, order)?;
    }
    if distinct {
        let mut seen = std::collections::HashSet::new();
        produced.retain(|p| seen.insert(group_key(&p.outputs)));
    }
    if let Some((_, keys)) = &distinct_on {
        let group = &order[..*keys];
        let mut kept: Vec<Produced> = Vec::with_capacity(produced.len());
        for p in produced {
            let same = match kept.last() {
                Some(last) => {
                    compare_keys(&last.keys[..*keys], &p.keys[..*keys], group)? == Ordering::Equal
                }
                None => false,
            };
            if !same {
                kept.push(p);
            }
        }
        produced = kept;
    }
    let rows = produced
        .into_iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .map(|p| {
            p.outputs
                .into_iter()
                .zip(&columns)
                .map(|(v, c)| v.map(|v| to_described(v, c.ty.0)).transpose())
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Relation { columns, rows })
}

/// Calls `f` on each of `rows` with an environment holding its values
/// of the window functions `windows` (the plain environment when there
/// are none).
fn for_each_windowed(
    rows: &[RowAt],
    windows: &[window::WindowCall],
    env: &Env,
    mut f: impl FnMut(&RowAt, &Env) -> Result<(), PgError>,
) -> Result<(), PgError> {
    if windows.is_empty() {
        return rows.iter().try_for_each(|row| f(row, env));
    }
    let refs: Vec<&dyn Row> = rows.iter().map(|r| r as &dyn Row).collect();
    let values = window::values(windows, &refs, env)?;
    for (row, values) in rows.iter().zip(&values) {
        let env = Env {
            aggregates: Some(values),
            ..*env
        };
        f(row, &env)?;
    }
    Ok(())
}

/// A KNN query's plan and the access path chosen for it.
pub struct KnnDecision<'a> {
    /// The plan.
    pub plan: KnnPlan,
    /// Index or exact scan.
    pub access: KnnAccess,
    /// The table.
    pub table: &'a Table,
    /// Its name in the query.
    pub alias: &'a str,
    /// Candidate rows from a btree index, for the exact path.
    pub lookup: Option<IndexLookup>,
}

fn knn_decision<'a>(
    input: &'a Input<'a>,
    s: &Select,
    order: &[OrderByExpr],
    limit: Option<usize>,
    offset: usize,
    ctx: &Ctx,
) -> Result<Option<KnnDecision<'a>>, PgError> {
    let Input::Table { table, alias } = input else {
        return Ok(None);
    };
    let filter = s.selection.as_ref();
    let Some(plan) = knn_plan(
        order,
        &s.projection,
        limit,
        offset,
        table,
        alias,
        filter,
        &ctx.env,
    )?
    else {
        return Ok(None);
    };
    let test = |slot: u32| {
        matches!(
            passes(filter, &RowAt::Table(table, alias, slot), &ctx.eval_env()),
            Ok(true)
        )
    };
    let f: Option<ann::Filter> = filter.map(|_| &test as ann::Filter);
    let lookup = btree_lookup(table, alias, filter, &ctx.env);
    let access = choose_access(
        &plan,
        table,
        f,
        lookup.as_ref().map(|l| l.slots.as_slice()),
        ctx.ann,
    );
    if plan.on_expression && access == KnnAccess::Exact {
        // Only the general scan and sort computes the expression.
        return Ok(None);
    }
    Ok(Some(KnnDecision {
        plan,
        access,
        table,
        alias,
        lookup,
    }))
}

/// The rows a scan of `input` visits: a btree lookup's candidates when
/// one serves the filter, else every row.
fn scan_handles(input: &Input, filter: Option<&Expr>, ctx: &Ctx) -> Vec<u32> {
    match input {
        Input::Table { table, alias } if !ctx.dry => {
            match btree_lookup(table, alias, filter, &ctx.env) {
                Some(l) => l.slots,
                None => input.handles(false),
            }
        }
        _ => input.handles(ctx.dry),
    }
}

/// How a query reads its input, as EXPLAIN shows it: the node's title
/// and detail lines (an index condition), before the filter.
pub struct ScanShape {
    /// `Seq Scan on t`, `Index Scan using i on t`, …
    pub title: String,
    /// `Index Cond: …`.
    pub details: Vec<String>,
}

/// How EXPLAIN describes a SELECT: the access path of a KNN query (plan,
/// access), and the scan of its input.
pub fn explain_select(
    s: &Select,
    order: &[OrderByExpr],
    limit: Option<usize>,
    offset: usize,
    ctx: &Ctx,
) -> Result<(Option<(KnnPlan, KnnAccess)>, ScanShape), PgError> {
    let input = input(s, ctx)?;
    let on = |table: &Table, alias: &str| {
        if alias == table.def().name {
            alias.to_string()
        } else {
            format!("{} {alias}", table.def().name)
        }
    };
    let scan = match &input {
        Input::Unit => ScanShape {
            title: "Result".into(),
            details: Vec::new(),
        },
        Input::Table { table, alias } => {
            match btree_lookup(table, alias, s.selection.as_ref(), &ctx.env) {
                Some(l) => ScanShape {
                    title: format!("Index Scan using {} on {}", l.index, on(table, alias)),
                    details: vec![format!("Index Cond: {}", l.cond)],
                },
                None => ScanShape {
                    title: format!("Seq Scan on {}", on(table, alias)),
                    details: Vec::new(),
                },
            }
        }
        Input::Rel { alias, .. } => ScanShape {
            title: format!("Subquery Scan on {alias}"),
            details: Vec::new(),
        },
        Input::Joined(_) => ScanShape {
            title: "Nested Loop".into(),
            details: Vec::new(),
        },
    };
    let d = knn_decision(&input, s, order, limit, offset, ctx)?;
    Ok((d.map(|d| (d.plan, d.access)), scan))
}

/// The set-returning calls (`unnest`, `generate_subscripts`) of a select
/// list, by SQL text (those of its subqueries are theirs).
fn set_calls<'e>(items: impl Iterator<Item = &'e Expr>) -> Vec<(String, sqlparser::ast::Function)> {
    let mut calls: Vec<(String, sqlparser::ast::Function)> = Vec::new();
    for e in items {
        super::aggregate::own_expressions(e, |x| {
            if let Expr::Function(f) = x {
                let name = super::expr::function_name(f);
                if super::arrays::is_set_returning(&name) {
                    let key = x.to_string();
                    if !calls.iter().any(|(k, _)| *k == key) {
                        calls.push((key, f.clone()));
                    }
                }
            }
        });
    }
    calls
}

/// The rows one input row becomes under the select list's set-returning
/// calls, as PostgreSQL runs them: in lockstep, as many rows as the
/// longest set, the shorter ones padded with NULL; each row is the
/// calls' values by SQL text.
fn set_rows(
    calls: &[(String, sqlparser::ast::Function)],
    row: &dyn Row,
    env: &Env,
    cancel: &dyn Fn() -> Result<(), PgError>,
) -> Result<Vec<HashMap<String, Datum>>, PgError> {
    let mut sets = Vec::with_capacity(calls.len());
    for (key, f) in calls {
        let args = super::expr::function_args(f)?
            .into_iter()
            .map(|a| eval(a, row, env))
            .collect::<Result<Vec<_>, _>>()?;
        let name = super::expr::function_name(f);
        sets.push((key, super::arrays::set_values(&name, &args, cancel)?));
    }
    let n = sets.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    Ok((0..n)
        .map(|i| {
            sets.iter()
                .map(|(k, v)| ((*k).clone(), v.get(i).cloned().flatten()))
                .collect()
        })
        .collect())
}

/// The values as one key string (GROUP BY, DISTINCT, UNION).
pub(super) fn group_key(values: &[Datum]) -> String {
    values
        .iter()
        .map(|v| v.as_ref().map_or("\u{0}".to_string(), Value::to_text))
        .collect::<Vec<_>>()
        .join("\u{1}")
}

/// WHERE, GROUP BY and HAVING of a grouped query.
struct Clauses<'q> {
    filter: Option<&'q Expr>,
    group_by: &'q [Expr],
    having: Option<&'q Expr>,
}

fn grouped_rows(
    input: &Input,
    shape: &Shape,
    clauses: &Clauses,
    calls: &[super::aggregate::AggregateCall],
    ctx: &Ctx,
) -> Result<Vec<Produced>, PgError> {
    let eval_env = ctx.eval_env();
    let env = &eval_env;
    let (group_by, having) = (clauses.group_by, clauses.having);
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<(u32, Accumulators)> = Vec::new();
    for (n, h) in scan_handles(input, clauses.filter, ctx)
        .into_iter()
        .enumerate()
    {
        if n % 1024 == 0 {
            ctx.check_cancel()?;
        }
        let row = input.row(h);
        if !passes(clauses.filter, &row, env)? {
            continue;
        }
        let key = group_key(
            &group_by
                .iter()
                .map(|g| eval(resolve_key(g, shape.projection), &row, env))
                .collect::<Result<Vec<_>, _>>()?,
        );
        let g = *index.entry(key).or_insert_with(|| {
            groups.push((h, Accumulators::new(calls)));
            groups.len() - 1
        });
        groups[g].1.add(calls, &row, env)?;
    }
    let mut out = Vec::new();
    let empty = groups.is_empty() && group_by.is_empty();
    if empty {
        let values = Accumulators::new(calls).finish(calls)?;
        let env = Env {
            aggregates: Some(&values),
            ..*env
        };
        let row = RowAt::Nulls(input);
        if passes(having, &row, &env)? {
            out.push(shape.produce(&row, &env)?);
        }
    }
    for (first, acc) in groups {
        let values = acc.finish(calls)?;
        let env = Env {
            aggregates: Some(&values),
            ..*env
        };
        let row = input.row(first);
        if passes(having, &row, &env)? {
            out.push(shape.produce(&row, &env)?);
        }
    }
    Ok(out)
}

/// True for `ORDER BY … DESC`.
pub fn is_desc(key: &OrderByExpr) -> bool {
    matches!(key.options.sort, Some(sqlparser::ast::OrderBySort::Desc))
}

fn sort(rows: &mut [Produced], order: &[OrderByExpr]) -> Result<(), PgError> {
    if order.is_empty() {
        return Ok(());
    }
    let mut error = None;
    rows.sort_by(|a, b| {
        compare_keys(&a.keys, &b.keys, order).unwrap_or_else(|e| {
            error.get_or_insert(e);
            Ordering::Equal
        })
    });
    error.map_or(Ok(()), Err)
}

/// Orders two rows' sort keys by `order` (DESC, NULLS FIRST/LAST).
pub fn compare_keys(a: &[Datum], b: &[Datum], order: &[OrderByExpr]) -> Result<Ordering, PgError> {
    for (i, k) in order.iter().enumerate() {
        let desc = is_desc(k);
        let nulls_first = k.options.nulls_first.unwrap_or(desc);
        let ord = match (&a[i], &b[i]) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => {
                return Ok(if nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                })
            }
            (Some(_), None) => {
                return Ok(if nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                })
            }
            (Some(x), Some(y)) => super::expr::compare(x, y)?,
        };
        let ord = if desc { ord.reverse() } else { ord };
        if ord != Ordering::Equal {
            return Ok(ord);
        }
    }
    Ok(Ordering::Equal)
}
