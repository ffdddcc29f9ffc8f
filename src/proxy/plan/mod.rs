//! Choosing a route for one statement: which shards it runs on, what each
//! runs, and how the proxy combines their replies. Planning is separate
//! from running so that EXPLAIN can show the route it would take.

mod ddl;
mod reference;
mod scalar_subquery;
mod spread;
mod with_values;

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::cluster::Cluster;
use super::generated_keys::fill_keys;
use crate::sql::{
    self, aggregate_plan, distinct_plan, has_shard_dependent_subquery, insert_key_values,
    insert_with_rows, knn_query, rewrite_distinct_on_for_shard, rewrite_knn_for_shard,
    rewrite_sorted_for_shard, where_key_values, AggregatePlan, Bound, DdlInfo, OutputColumn,
    RowKey, SortKey, StatementKind, TableName,
};
use crate::wire::{Params, PgError};

/// How the shards' replies become the client's answer.
#[derive(Debug, Clone)]
pub enum Combine {
    /// Rows one shard after the other; tags added up.
    Concat,
    /// K-way merge of sorted streams, then OFFSET/LIMIT.
    Merge {
        /// Merge keys.
        keys: Vec<SortKey>,
        /// Trailing hidden columns to drop.
        hidden: usize,
        /// DISTINCT ON: how many leading keys make a group whose first
        /// row alone is kept (0: every row).
        groups: usize,
        /// The client's OFFSET.
        offset: Option<Bound>,
        /// The client's LIMIT.
        limit: Option<Bound>,
    },
    /// The two-stage rerank: merge by the inner distance (first hidden
    /// column) to the inner window, re-sort by the outer distance (second
    /// hidden column), then the outer window.
    Rerank {
        /// The inner query's OFFSET and LIMIT.
        inner: (Option<Bound>, Bound),
        /// The outer query's OFFSET and LIMIT.
        outer: (Option<Bound>, Bound),
    },
    /// Partial aggregates combined by a final query.
    Aggregate(Box<AggregatePlan>),
    /// INSERT rows split by slot; RETURNING rows put back in client order.
    Insert {
        /// Original row indexes each shard received, in order.
        rows: Vec<Vec<usize>>,
    },
    /// DDL on every shard; a partial failure names each shard's state.
    Broadcast,
    /// A write to a reference table: the first shard runs it before the
    /// others (so that concurrent writes of a row queue on the first
    /// shard's row lock in one order everywhere); its reply is the
    /// answer, and every other shard's tag must equal it.
    Replicated,
}

/// A statement's route, borrowing the statement's text where a shard runs
/// it as it is.
#[derive(Debug, Clone)]
pub struct Route<'s> {
    /// Which kind of route, for EXPLAIN.
    pub label: &'static str,
    /// The shards and the SQL each runs (same order as `Combine::Insert`'s rows).
    pub parts: Vec<(usize, Cow<'s, str>)>,
    /// How replies combine.
    pub combine: Combine,
    /// Whether the statement writes (transactions may write on one shard).
    pub writes: bool,
    /// Any one shard may answer it (it reads no sharded table): when the
    /// chosen one cannot be reached, another is tried.
    pub anywhere: bool,
}

impl<'s> Route<'s> {
    fn on(
        label: &'static str,
        shards: BTreeSet<usize>,
        sql: impl Into<Cow<'s, str>>,
        combine: Combine,
        writes: bool,
    ) -> Self {
        let sql = sql.into();
        Route {
            label,
            parts: shards.into_iter().map(|s| (s, sql.clone())).collect(),
            combine,
            writes,
            anywhere: false,
        }
    }

    /// The same route on `shard` (for a route that may run anywhere).
    pub fn moved_to(&mut self, shard: usize) {
        for part in &mut self.parts {
            part.0 = shard;
        }
    }

    /// The shards the route touches.
    pub fn shards(&self) -> BTreeSet<usize> {
        self.parts.iter().map(|(s, _)| *s).collect()
    }
}

/// Whether [`evaluate_first`] may find something in `statement`: both of
/// its forms need a SELECT inside another one, which most statements lack.
pub fn may_evaluate_first(statement: &sql::Statement) -> bool {
    let selects = statement
        .text
        .as_bytes()
        .windows(6)
        .filter(|w| w.eq_ignore_ascii_case(b"select"));
    selects.count() >= 2
}

/// The statement with what must see every shard's rows at once evaluated
/// first through the proxy: WITH queries merged across shards
/// (`with_values`), then uncorrelated scalar subqueries
/// (`scalar_subquery`); `None` when it has neither.
pub async fn evaluate_first(
    cluster: &Cluster,
    statement: &sql::Statement,
) -> Result<Option<sql::Statement>, PgError> {
    let with = with_values::inline(cluster, statement).await?;
    let current = with.as_ref().unwrap_or(statement);
    Ok(scalar_subquery::inline(cluster, current).await?.or(with))
}

/// `ast` (a rewrite of `statement`) as a statement of its own, after the
/// original's leading comments (routing hints).
fn reparsed(
    statement: &sql::Statement,
    ast: &sqlparser::ast::Statement,
) -> Result<sql::Statement, PgError> {
    let comments: String = statement
        .leading_comments
        .iter()
        .map(|c| format!("/* {c} */ "))
        .collect();
    sql::parse_single(&format!("{comments}{ast}")).map_err(PgError::from)
}

/// A table of the system catalogs (`pg_catalog`, `information_schema`,
/// `pg_*`).
pub fn is_catalog(t: &TableName) -> bool {
    matches!(
        t.schema.as_deref(),
        Some("pg_catalog" | "information_schema")
    ) || t.name.starts_with("pg_")
}

/// Statistics views each shard answers for its own part (index builds in
/// progress, rows per table): read on every shard and combined like a
/// sharded table, so `pg_stat_progress_create_index` shows every shard's
/// build through the proxy.
fn is_per_shard_view(t: &TableName) -> bool {
    matches!(t.schema.as_deref(), None | Some("pg_catalog"))
        && matches!(
            t.name.as_str(),
            "pg_stat_progress_create_index" | "pg_stat_user_tables"
        )
}

/// Plans a statement that runs on shards (local statements are handled
/// before planning); `advisory` is its [`sql::advisory_hold`].
pub async fn plan<'s>(
    cluster: &Cluster,
    statement: &'s sql::Statement,
    kind: &StatementKind,
    advisory: sql::AdvisoryHold,
    params: Option<&Params>,
) -> Result<Route<'s>, PgError> {
    let text = statement.text.as_str();
    match kind {
        StatementKind::Select(info) => {
            if let Some(route) = advisory_lock_route(cluster, statement, info, advisory)? {
                return Ok(route);
            }
            if let [view] = info.tables.as_slice() {
                if is_per_shard_view(view) {
                    return select_route(statement, info, cluster.all());
                }
            }
            let sharded: Vec<&TableName> = info
                .tables
                .iter()
                .filter(|t| !is_catalog(t) && !cluster.is_reference(t))
                .collect();
            if sharded.is_empty() && info.locking && !info.tables.iter().all(is_catalog) {
                // Reference rows are locked where writes to them start:
                // on the first shard.
                return Ok(Route::on(
                    "reference tables (first shard)",
                    BTreeSet::from([0]),
                    text,
                    Combine::Concat,
                    true,
                ));
            }
            if sharded.is_empty() {
                let first = cluster.serving_order()[0];
                return Ok(Route {
                    anywhere: true,
                    ..Route::on(
                        "any shard",
                        BTreeSet::from([first]),
                        text,
                        Combine::Concat,
                        false,
                    )
                });
            }
            if let Some(op) = set_operation(statement) {
                return Err(PgError::feature_not_supported(format!(
                    "{op} over sharded tables is not supported through the proxy"
                ))
                .with_hint("Run each SELECT on its own and combine their rows in the client."));
            }
            let ([table], false) = (sharded.as_slice(), info.tables.iter().any(is_catalog)) else {
                return Err(PgError::feature_not_supported(
                    "a query over several sharded tables (join or subquery) is not supported across shards",
                )
                .with_hint("A sharded table may be joined with reference tables (reference_tables in the proxy configuration): they are whole on every shard."));
            };
            let joined = info.tables.len() > 1;
            if cluster.shards.len() > 1 {
                refuse_shard_dependent_subqueries(cluster, statement)?;
                if let Some(problem) = joined
                    .then(|| sql::reference_join_problem(statement, table))
                    .flatten()
                {
                    return Err(PgError::feature_not_supported(format!(
                        "{problem} is not supported across shards"
                    ))
                    .with_hint(
                        "Each shard would return the reference rows it keeps: once per shard.",
                    ));
                }
            }
            // A WHERE on a joined table's column of the key's name says
            // nothing about the shard.
            let shards = match joined {
                true => cluster.all(),
                false => key_shards(cluster, statement, table, params).await?,
            };
            if shards.len() == 1 {
                return Ok(Route::on(
                    "single shard (key)",
                    shards,
                    text,
                    Combine::Concat,
                    info.locking,
                ));
            }
            select_route(statement, info, shards)
        }
        StatementKind::Insert(table)
        | StatementKind::Update(table)
        | StatementKind::Delete(table)
            if cluster.is_reference(table) =>
        {
            reference::write_route(cluster, statement, table)
        }
        StatementKind::Insert(table) => insert_route(cluster, statement, table, params).await,
        StatementKind::Update(table) | StatementKind::Delete(table) => {
            let shards = match sql::tables_named(statement).len() > 1 {
                true => cluster.all(),
                false => key_shards(cluster, statement, table, params).await?,
            };
            Ok(Route::on("scatter", shards, text, Combine::Concat, true))
        }
        StatementKind::Ddl(DdlInfo { tables, action }) => {
            ddl::route(cluster, statement, tables, *action).await
        }
        StatementKind::ModifyingWith => Err(PgError::feature_not_supported(
            "a data-modifying statement in WITH is not supported through the proxy",
        )
        .with_hint("Run the INSERT, UPDATE or DELETE on its own (RETURNING gives its rows).")),
        // COPY streams through its own path (super::copy), never a route.
        StatementKind::Copy(_) => Err(PgError::feature_not_supported(
            "COPY cannot be planned as a query (EXPLAIN or a prepared COPY with parameters)",
        )),
        _ => Ok(Route::on(
            "broadcast",
            cluster.all(),
            text,
            Combine::Broadcast,
            true,
        )),
    }
}

/// Advisory locks through the proxy: every session's transaction-level
/// locks are taken on one fixed shard (the first), whose connection the
/// transaction then keeps (the route counts as a write, so a block pins
/// it) until its end releases them. Session-level locks are refused:
/// shard connections are pooled per transaction, so the lock would stay
/// with a pooled connection.
fn advisory_lock_route<'s>(
    cluster: &Cluster,
    statement: &'s sql::Statement,
    info: &sql::SelectInfo,
    advisory: sql::AdvisoryHold,
) -> Result<Option<Route<'s>>, PgError> {
    match advisory {
        sql::AdvisoryHold::None => Ok(None),
        sql::AdvisoryHold::Session => Err(PgError::feature_not_supported(
            "session-level advisory locks (pg_advisory_lock, pg_advisory_unlock, …) are not supported through the proxy",
        )
        .with_hint("Shard connections are pooled per transaction: take pg_advisory_xact_lock inside a transaction instead.")),
        sql::AdvisoryHold::Transaction if !info.tables.iter().all(is_catalog) => {
            Err(PgError::feature_not_supported(
                "an advisory lock in a query over sharded tables is not supported through the proxy",
            )
            .with_hint("Take the lock in a statement of its own."))
        }
        sql::AdvisoryHold::Transaction => {
            let first = cluster.all().into_iter().next().unwrap_or_default();
            Ok(Some(Route::on(
                "advisory lock shard",
                BTreeSet::from([first]),
                statement.text.as_str(),
                Combine::Concat,
                true,
            )))
        }
    }
}

/// The set operation a query is (`UNION`, `INTERSECT ALL`, …), if it is
/// one: each shard would combine only its own rows.
fn set_operation(statement: &sql::Statement) -> Option<String> {
    let sqlparser::ast::Statement::Query(query) = &statement.ast else {
        return None;
    };
    match query.body.as_ref() {
        sqlparser::ast::SetExpr::SetOperation {
            op, set_quantifier, ..
        } => Some(match set_quantifier {
            sqlparser::ast::SetQuantifier::All => format!("{op} ALL"),
            _ => op.to_string(),
        }),
        _ => None,
    }
}

/// The shards a WHERE's key restriction allows (all without one).
async fn key_shards(
    cluster: &Cluster,
    statement: &sql::Statement,
    table: &TableName,
    params: Option<&Params>,
) -> Result<BTreeSet<usize>, PgError> {
    let info = cluster.table(table).await?;
    let restricted = info
        .key
        .as_deref()
        .and_then(|key| where_key_values(statement, key))
        .and_then(|values| cluster.shards_of(&values, params));
    Ok(match restricted {
        Some(s) if !s.is_empty() => s,
        _ => cluster.all(),
    })
}

/// Refuses a query whose nested queries would see only the rows of the
/// shard running them (the rerank's inner query is merged properly and
/// exempt; one over reference tables only sees the same rows on every
/// shard).
fn refuse_shard_dependent_subqueries(
    cluster: &Cluster,
    statement: &sql::Statement,
) -> Result<(), PgError> {
    crate::stack::with_tree(statement.depth, || {
        let sqlparser::ast::Statement::Query(query) = &statement.ast else {
            return Ok(());
        };
        let inner = knn_query(statement)
            .filter(|k| k.rerank.is_some())
            .and_then(|_| derived_subquery(query));
        // Catalog rows (OIDs above all) differ between shards.
        let sharded = |t: &TableName| !cluster.is_reference(t);
        if has_shard_dependent_subquery(query, inner, &sharded) {
            return Err(PgError::feature_not_supported(
                "a subquery in an expression, or a subquery or WITH query with LIMIT, DISTINCT, GROUP BY, aggregates or window functions, is not supported across shards (each shard would compute it over its own rows only)",
            ));
        }
        Ok(())
    })
}

fn select_route<'s>(
    statement: &'s sql::Statement,
    info: &sql::SelectInfo,
    shards: BTreeSet<usize>,
) -> Result<Route<'s>, PgError> {
    crate::stack::with_tree(statement.depth, || {
        if shards.len() > 1 && info.windowed {
            return Err(PgError::feature_not_supported(
                "window functions across shards are not supported (each shard would rank only its own rows)",
            ));
        }
        let sql_err = PgError::from;
        let knn = knn_query(statement);
        if let Some(knn) = knn {
            let shard_sql = rewrite_knn_for_shard(statement, &knn);
            if let Some(rerank) = &knn.rerank {
                let combine = Combine::Rerank {
                    inner: (knn.offset.clone(), knn.limit.clone()),
                    outer: (rerank.offset.clone(), rerank.limit.clone()),
                };
                return Ok(Route::on("rerank merge", shards, shard_sql, combine, false));
            }
            let (column, hidden) = match knn.projected_distance {
                Some(i) => (OutputColumn::Item(i), 0),
                None => (OutputColumn::Hidden(0), 1),
            };
            let keys = vec![SortKey {
                column,
                descending: false,
                nulls_first: false,
            }];
            let combine = Combine::Merge {
                keys,
                hidden,
                groups: 0,
                offset: knn.offset.clone(),
                limit: Some(knn.limit.clone()),
            };
            return Ok(Route::on("KNN merge", shards, shard_sql, combine, false));
        }
        if let Some((sorted, groups)) = rewrite_distinct_on_for_shard(statement).map_err(sql_err)? {
            let combine = Combine::Merge {
                keys: sorted.sort_keys,
                hidden: sorted.hidden_columns,
                groups,
                offset: sorted.offset,
                limit: sorted.limit,
            };
            return Ok(Route::on(
                "distinct on merge",
                shards,
                sorted.sql,
                combine,
                false,
            ));
        }
        let combined = match aggregate_plan(statement).map_err(sql_err)? {
            Some(agg) => Some(("aggregate", agg)),
            None => distinct_plan(statement)
                .map_err(sql_err)?
                .map(|d| ("distinct", d)),
        };
        if let Some((label, plan)) = combined {
            let sql = plan.shard_sql.clone();
            let combine = Combine::Aggregate(Box::new(plan));
            return Ok(Route::on(label, shards, sql, combine, false));
        }
        if let Some(sorted) = rewrite_sorted_for_shard(statement) {
            let combine = Combine::Merge {
                keys: sorted.sort_keys,
                hidden: sorted.hidden_columns,
                groups: 0,
                offset: sorted.offset,
                limit: sorted.limit,
            };
            return Ok(Route::on(
                "sorted merge",
                shards,
                sorted.sql,
                combine,
                false,
            ));
        }
        if let Some(clause) = negative_limit(statement) {
            let code = if clause == "LIMIT" { "2201W" } else { "2201X" };
            return Err(PgError::new(code, format!("{clause} must not be negative")));
        }
        if has_limit_or_distinct(statement) {
            return Err(PgError::feature_not_supported(
                "LIMIT, OFFSET or DISTINCT without ORDER BY across shards is not supported",
            ));
        }
        Ok(Route::on(
            "scatter",
            shards,
            statement.text.as_str(),
            Combine::Concat,
            false,
        ))
    })
}

/// The subquery a rerank query reads from (`SELECT * FROM (…) ORDER BY …`).
fn derived_subquery(query: &sqlparser::ast::Query) -> Option<&sqlparser::ast::Query> {
    let sqlparser::ast::SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    match &select.from.first()?.relation {
        sqlparser::ast::TableFactor::Derived { subquery, .. } => Some(subquery),
        _ => None,
    }
}

/// The clause of a query whose LIMIT or OFFSET is a negative constant.
fn negative_limit(statement: &sql::Statement) -> Option<&'static str> {
    crate::stack::with_tree(statement.depth, || match &statement.ast {
        sqlparser::ast::Statement::Query(q) => sql::negative_bound(q),
        _ => None,
    })
}

fn has_limit_or_distinct(statement: &sql::Statement) -> bool {
    crate::stack::with_tree(statement.depth, || {
        let sqlparser::ast::Statement::Query(q) = &statement.ast else {
            return false;
        };
        let distinct =
            matches!(q.body.as_ref(), sqlparser::ast::SetExpr::Select(s) if s.distinct.is_some());
        q.limit_clause.is_some()
            || distinct
            || !matches!(q.body.as_ref(), sqlparser::ast::SetExpr::Select(_))
    })
}

async fn insert_route<'s>(
    cluster: &Cluster,
    statement: &'s sql::Statement,
    table: &TableName,
    params: Option<&Params>,
) -> Result<Route<'s>, PgError> {
    let info = cluster.table(table).await?;
    let Some(key) = info.key.as_deref() else {
        return spread::insert_route(cluster, statement, table);
    };
    let unsupported = || {
        PgError::feature_not_supported(format!(
            "INSERT into sharded table {table} needs its rows spelled out, each with a literal or parameter for its shard key \"{key}\" (or DEFAULT): INSERT … VALUES, or INSERT … SELECT <columns> FROM (VALUES …) AS v(…) [ORDER BY a counter column] (INSERT … SELECT from tables is not supported across shards)"
        ))
    };
    let mut keys = insert_key_values(statement, key, &info.columns).ok_or_else(unsupported)?;
    let generated = keys.iter().filter(|k| matches!(k, RowKey::Default)).count();
    let written = statement;
    let filled;
    let statement = if generated > 0 {
        let first = cluster
            .keys
            .take(&cluster.shards, table, key, generated)
            .await?;
        filled = fill_keys(statement, key, &info.columns, first).ok_or_else(unsupported)?;
        keys = insert_key_values(&filled, key, &info.columns).ok_or_else(unsupported)?;
        &filled
    } else {
        statement
    };
    let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); cluster.shards.len()];
    for (i, k) in keys.iter().enumerate() {
        let shard = match k {
            RowKey::Value(v) => cluster.shard_of(v, params),
            RowKey::Default => None,
        };
        let Some(shard) = shard else {
            return Err(PgError::feature_not_supported(format!(
                "row {} of the INSERT into {table} has no usable value for its shard key \"{key}\"",
                i + 1
            )));
        };
        by_shard[shard].push(i);
    }
    let used: Vec<(usize, Vec<usize>)> = by_shard
        .into_iter()
        .enumerate()
        .filter(|(_, rows)| !rows.is_empty())
        .collect();
    if let [(shard, _)] = used.as_slice() {
        let sql = match generated {
            0 => Cow::Borrowed(written.text.as_str()),
            _ => Cow::Owned(statement.text.clone()),
        };
        return Ok(Route::on(
            "single shard (key)",
            BTreeSet::from([*shard]),
            sql,
            Combine::Concat,
            true,
        ));
    }
    let mut parts = Vec::new();
    let mut rows = Vec::new();
    for (shard, r) in used {
        let sql = insert_with_rows(statement, &r).ok_or_else(|| {
            PgError::feature_not_supported("this INSERT cannot be split by shard")
        })?;
        parts.push((shard, Cow::Owned(sql)));
        rows.push(r);
    }
    Ok(Route {
        label: "insert split by slot",
        parts,
        combine: Combine::Insert { rows },
        writes: true,
        anywhere: false,
    })
}
