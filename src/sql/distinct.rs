//! SELECT DISTINCT across shards, and the guard against subqueries whose
//! result needs every shard's rows at once.
//!
//! DISTINCT is combined as a GROUP BY on every output column: each shard
//! runs the query grouped by its select expressions (the same rows as its
//! DISTINCT, and `pgvshard shard` groups but has no DISTINCT) without
//! ORDER BY, LIMIT and OFFSET, and
//! the aggregate combine groups the shards' rows on one shard, so values
//! are compared by PostgreSQL's equality (numeric scale, -0 and +0, NaN)
//! exactly as one server would, then sorts and limits.
//!
//! A subquery or WITH query with LIMIT, DISTINCT, grouping, aggregates,
//! window functions or set operations computes a different result over
//! one shard's rows than over all rows; so does a subquery inside an
//! expression (`= (SELECT …)`, `IN (SELECT …)`, `EXISTS`), which would see
//! only the rows of the shard running it. Running them on each shard
//! would be a plausible wrong answer, so the proxy refuses them.

use std::ops::ControlFlow;

use sqlparser::ast::{
    self, Distinct, Expr, GroupByExpr, Query, SelectItem, SetExpr, Visit, Visitor,
};

use super::aggregate::{contains_aggregate, order_keys, AggregatePlan, CombinedColumn};
use super::classify::tables_in;
use super::error::{Result, SqlError};
use super::knn::{is_constant, limit_offset_parts};
use super::names::TableName;
use super::parse::Statement;

/// The combination plan for `SELECT DISTINCT` without aggregates or GROUP
/// BY (which [`super::aggregate_plan`] handles first); None when the
/// statement is not DISTINCT. 0A000 for `DISTINCT ON`, `DISTINCT *` and
/// what else cannot be combined.
pub fn distinct_plan(statement: &Statement) -> Result<Option<AggregatePlan>> {
    crate::stack::with_tree(statement.depth, || {
        let ast::Statement::Query(query) = &statement.ast else {
            return Ok(None);
        };
        let SetExpr::Select(select) = query.body.as_ref() else {
            return Ok(None);
        };
        match &select.distinct {
            None | Some(Distinct::All) => return Ok(None),
            Some(Distinct::On(_)) => {
                return Err(SqlError::unsupported("SELECT DISTINCT ON across shards"))
            }
            Some(Distinct::Distinct) => {}
        }
        let plain = select.projection.iter().all(|item| {
            matches!(
                item,
                SelectItem::UnnamedExpr(_) | SelectItem::ExprWithAlias { .. }
            )
        });
        if !plain {
            return Err(SqlError::unsupported("SELECT DISTINCT * across shards"));
        }
        if query.fetch.is_some() {
            return Err(SqlError::unsupported("FETCH with DISTINCT across shards"));
        }
        let order = order_keys(query, select)?;
        let (limit, offset) = limit_offset_parts(query).ok_or_else(|| {
            SqlError::unsupported("LIMIT or OFFSET expressions with DISTINCT across shards")
        })?;
        let exprs: Vec<Expr> = select
            .projection
            .iter()
            .filter_map(|item| match item {
                // A constant groups nothing (and an integer would name a position).
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }
                    if !is_constant(e) =>
                {
                    Some(e.clone())
                }
                _ => None,
            })
            .collect();
        let mut shard = (**query).clone();
        shard.order_by = None;
        shard.limit_clause = None;
        if let SetExpr::Select(s) = shard.body.as_mut() {
            s.distinct = None;
            s.group_by = GroupByExpr::Expressions(exprs, Vec::new());
        }
        let n = select.projection.len();
        Ok(Some(AggregatePlan {
            shard_sql: shard.to_string(),
            group_columns: (0..n).collect(),
            outputs: (0..n).map(CombinedColumn::Group).collect(),
            order,
            limit,
            offset,
        }))
    })
}

/// Whether a query nested in `query` (not `query` itself, nor `exempt`)
/// has a result that depends on rows of other shards: one that needs all
/// rows at once, or any subquery inside an expression — unless every
/// table it names is whole on each shard (`sharded` tells which are not:
/// a reference table's or the catalog's rows are the same everywhere).
pub fn has_shard_dependent_subquery(
    query: &Query,
    exempt: Option<&Query>,
    sharded: &dyn Fn(&TableName) -> bool,
) -> bool {
    struct Finder<'a> {
        skip: [Option<&'a Query>; 2],
        sharded: &'a dyn Fn(&TableName) -> bool,
    }
    impl Finder<'_> {
        fn whole_on_each_shard(&self, q: &Query) -> bool {
            !tables_in(q).iter().any(|t| (self.sharded)(t))
        }
    }
    impl Visitor for Finder<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            let skipped = self.skip.iter().flatten().any(|s| std::ptr::eq(*s, q));
            if !skipped && needs_all_rows(q) && !self.whole_on_each_shard(q) {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Subquery(q)
                | Expr::InSubquery { subquery: q, .. }
                | Expr::Exists { subquery: q, .. }
                    if !self.whole_on_each_shard(q) =>
                {
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            }
        }
    }
    let mut finder = Finder {
        skip: [Some(query), exempt],
        sharded,
    };
    query.visit(&mut finder).is_break()
}

fn needs_all_rows(q: &Query) -> bool {
    let SetExpr::Select(select) = q.body.as_ref() else {
        return true;
    };
    let grouped =
        !matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    let mut computed = false;
    let _ = ast::visit_expressions(&select.projection, |e: &Expr| {
        computed |= contains_aggregate(e) || matches!(e, Expr::Function(f) if f.over.is_some());
        ControlFlow::<()>::Continue(())
    });
    q.limit_clause.is_some()
        || q.fetch.is_some()
        || select.distinct.is_some()
        || grouped
        || select.having.is_some()
        || computed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse::parse_single;

    fn plan(sql: &str) -> Result<Option<AggregatePlan>> {
        distinct_plan(&parse_single(sql).unwrap())
    }

    #[test]
    fn distinct_groups_by_every_output() {
        let p =
            plan("SELECT DISTINCT cat, tag AS t FROM items WHERE id > 3 ORDER BY t DESC LIMIT 4")
                .unwrap()
                .unwrap();
        assert_eq!(
            p.shard_sql,
            "SELECT cat, tag AS t FROM items WHERE id > 3 GROUP BY cat, tag"
        );
        assert_eq!(p.group_columns, vec![0, 1]);
        assert_eq!(
            p.outputs,
            vec![CombinedColumn::Group(0), CombinedColumn::Group(1)]
        );
        assert_eq!(p.order.len(), 1);
        assert_eq!(p.order[0].output, 1);
        assert!(p.order[0].descending);
        assert_eq!(plan("SELECT cat FROM items").unwrap(), None);
        let p = plan("SELECT DISTINCT 2, cat FROM items").unwrap().unwrap();
        assert_eq!(p.shard_sql, "SELECT 2, cat FROM items GROUP BY cat");
    }

    #[test]
    fn refused_distinct_shapes() {
        for (sql, needle) in [
            ("SELECT DISTINCT ON (cat) cat, id FROM items", "DISTINCT ON"),
            ("SELECT DISTINCT * FROM items", "DISTINCT *"),
            ("SELECT DISTINCT cat FROM items ORDER BY id", "ORDER BY"),
        ] {
            let e = plan(sql).unwrap_err();
            assert_eq!(e.sqlstate, "0A000", "{sql}");
            assert!(e.message.contains(needle), "{sql}: {}", e.message);
        }
    }

    #[test]
    fn subqueries_that_need_every_row() {
        let whole = |sql: &str| {
            let s = parse_single(sql).unwrap();
            let ast::Statement::Query(q) = &s.ast else {
                panic!("{sql}")
            };
            has_shard_dependent_subquery(q, None, &|_| true)
        };
        for sql in [
            "SELECT * FROM (SELECT * FROM t ORDER BY id LIMIT 3) s",
            "SELECT * FROM t WHERE x > (SELECT avg(x) FROM t)",
            "WITH c AS MATERIALIZED (SELECT * FROM t LIMIT 2) SELECT * FROM c",
            "SELECT * FROM (SELECT DISTINCT a FROM t) s",
            "SELECT * FROM (SELECT a, row_number() OVER () FROM t) s",
            "SELECT * FROM t WHERE id IN (SELECT id FROM t WHERE a = 1)",
            "SELECT id FROM t ORDER BY v <-> (SELECT v FROM t WHERE id = 42) LIMIT 5",
            "SELECT * FROM t WHERE EXISTS (SELECT 1 FROM t u WHERE u.a = t.a)",
        ] {
            assert!(whole(sql), "{sql}");
        }
        for sql in [
            "SELECT * FROM t ORDER BY id LIMIT 3",
            "SELECT * FROM (SELECT id, a FROM t WHERE a > 1) s",
            "SELECT * FROM t WHERE id IN (1, 2, 3)",
        ] {
            assert!(!whole(sql), "{sql}");
        }
    }

    #[test]
    fn subqueries_over_reference_tables_are_the_same_on_each_shard() {
        let dependent = |sql: &str| {
            let s = parse_single(sql).unwrap();
            let ast::Statement::Query(q) = &s.ast else {
                panic!("{sql}")
            };
            has_shard_dependent_subquery(q, None, &|t: &TableName| t.name != "r")
        };
        for sql in [
            "SELECT * FROM t WHERE cid IN (SELECT uuid FROM r WHERE name = 'x')",
            "SELECT * FROM t WHERE EXISTS (SELECT 1 FROM r WHERE r.uuid = t.cid)",
            "SELECT * FROM t WHERE n > (SELECT count(*) FROM r)",
            "SELECT * FROM t WHERE n > (SELECT 1)",
        ] {
            assert!(!dependent(sql), "{sql}");
        }
        for sql in [
            "SELECT * FROM t WHERE cid IN (SELECT uuid FROM r JOIN t u ON u.cid = r.uuid)",
            "WITH c AS (SELECT * FROM t) SELECT * FROM t WHERE id IN (SELECT id FROM c)",
            "SELECT * FROM t WHERE n > (SELECT count(*) FROM t)",
        ] {
            assert!(dependent(sql), "{sql}");
        }
    }
}
