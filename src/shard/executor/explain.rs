//! EXPLAIN [ANALYZE]: the plan as pgvector users know it from
//! PostgreSQL — `Limit` over an `Index Scan using … Order By: …` when an
//! ANN index serves the query, `Limit` over `Sort` over `Seq Scan`
//! otherwise (without costs, like `EXPLAIN (COSTS OFF)`).

use super::plan::KnnAccess;
use super::select::{
    explain_select, limit_offset, order_keys, run_query, Column, Ctx, Relation, ScanShape,
};
use super::Outcome;
use crate::wire::types::oid;
use crate::wire::{PgError, Value};
use sqlparser::ast::{Expr, GroupByExpr, Query, SetExpr, Statement};
use std::time::Instant;

/// The single result column of EXPLAIN.
pub fn columns() -> Relation {
    Relation {
        columns: vec![Column {
            name: "QUERY PLAN".into(),
            ty: (oid::TEXT, -1),
        }],
        rows: Vec::new(),
    }
}

/// A plan tree node: its title, detail lines and children.
struct Node {
    title: String,
    details: Vec<String>,
    child: Option<Box<Node>>,
}

impl Node {
    fn new(title: impl Into<String>) -> Self {
        Node {
            title: title.into(),
            details: Vec::new(),
            child: None,
        }
    }

    fn over(title: impl Into<String>, child: Node) -> Self {
        Node {
            child: Some(Box::new(child)),
            ..Node::new(title)
        }
    }

    fn detail(mut self, d: impl Into<String>) -> Self {
        self.details.push(d.into());
        self
    }

    fn lines(&self, level: usize, out: &mut Vec<String>) {
        if level == 0 {
            out.push(self.title.clone());
        } else {
            out.push(format!(
                "{}->  {}",
                " ".repeat(6 * (level - 1) + 2),
                self.title
            ));
        }
        let pad = " ".repeat(if level == 0 { 2 } else { 6 * level + 2 });
        for d in &self.details {
            out.push(format!("{pad}{d}"));
        }
        if let Some(c) = &self.child {
            c.lines(level + 1, out);
        }
    }
}

/// Adds the filter's conditions, less the one the index serves
/// (`index_cond`, as its detail line prints it).
fn filtered(node: Node, filter: Option<&Expr>, index_cond: Option<&str>) -> Node {
    let Some(f) = filter else { return node };
    let mut conds = Vec::new();
    super::plan::conjuncts(f, &mut conds);
    let rest: Vec<String> = conds
        .iter()
        .map(|c| format!("({c})"))
        .filter(|c| Some(c.as_str()) != index_cond)
        .collect();
    match rest.as_slice() {
        [] => node,
        [one] => node.detail(format!("Filter: {one}")),
        many => node.detail(format!("Filter: ({})", many.join(" AND "))),
    }
}

/// The condition an index scan serves, from its `Index Cond` line.
fn index_cond(scan: &ScanShape) -> Option<&str> {
    scan.details
        .iter()
        .find_map(|d| d.strip_prefix("Index Cond: "))
}

fn scan_node(scan: &ScanShape) -> Node {
    let mut n = Node::new(scan.title.clone());
    n.details = scan.details.clone();
    n
}

fn query_plan(q: &Query, ctx: &Ctx) -> Result<Node, PgError> {
    let order = order_keys(q)?;
    let (limit, offset) = limit_offset(q, ctx)?;
    let SetExpr::Select(s) = q.body.as_ref() else {
        return Ok(Node::new("Result"));
    };
    let (knn, scan) = explain_select(s, order, limit, offset, ctx)?;
    let filter = s.selection.as_ref();
    let mut node = match knn {
        Some((plan, KnnAccess::Index)) => {
            let name = plan.index.as_ref().map_or("", |(n, _)| n.as_str());
            let table = scan
                .title
                .rsplit_once(" on ")
                .map_or(scan.title.as_str(), |(_, t)| t);
            filtered(
                Node::new(format!("Index Scan using {name} on {table}"))
                    .detail(format!("Order By: {}", plan.order_by())),
                filter.filter(|_| !plan.filter_implied),
                None,
            )
        }
        Some((plan, KnnAccess::Exact)) => Node::over(
            "Sort",
            filtered(scan_node(&scan), filter, index_cond(&scan)),
        )
        .detail(format!("Sort Key: ({})", plan.order_by())),
        None => {
            let mut n = filtered(scan_node(&scan), filter, index_cond(&scan));
            let grouped = matches!(&s.group_by, GroupByExpr::Expressions(g, _) if !g.is_empty());
            let aggregates =
                super::aggregate::find_calls(s.projection.iter().filter_map(|i| match i {
                    sqlparser::ast::SelectItem::UnnamedExpr(e)
                    | sqlparser::ast::SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
                    _ => None,
                }))?;
            if grouped {
                n = Node::over("HashAggregate", n);
            } else if !aggregates.is_empty() {
                n = Node::over("Aggregate", n);
            }
            if !order.is_empty() {
                let keys: Vec<String> = order.iter().map(|k| k.to_string()).collect();
                n = Node::over("Sort", n).detail(format!("Sort Key: {}", keys.join(", ")));
            }
            n
        }
    };
    if limit.is_some() || offset > 0 {
        node = Node::over("Limit", node);
    }
    Ok(node)
}

/// `EXPLAIN [ANALYZE] statement`.
pub fn explain(stmt: &Statement, analyze: bool, ctx: &Ctx) -> Result<Outcome, PgError> {
    let Statement::Explain { statement, .. } = stmt else {
        return Err(PgError::internal("not an EXPLAIN"));
    };
    let Statement::Query(q) = statement.as_ref() else {
        return Err(PgError::feature_not_supported(
            "EXPLAIN is supported for queries only",
        ));
    };
    let mut lines = Vec::new();
    query_plan(q, ctx)?.lines(0, &mut lines);
    if analyze {
        let started = Instant::now();
        let rows = run_query(q, ctx)?.rows.len();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        lines.push(format!("Rows: {rows}"));
        lines.push(format!("Execution Time: {ms:.3} ms"));
    }
    let mut rel = columns();
    rel.rows = lines
        .into_iter()
        .map(|l| vec![Some(Value::Text(l))])
        .collect();
    let mut o = Outcome::select(rel);
    o.tag = "EXPLAIN".into();
    Ok(o)
}
