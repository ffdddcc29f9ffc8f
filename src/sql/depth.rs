//! How deeply a statement nests, measured once after parsing, and the
//! reshaping that keeps long AND/OR lists shallow.
//!
//! sqlparser builds `a AND b AND c …` as a left-deep tree, one level per
//! term, so `id = 0 OR id = 1 OR …` with 100,000 terms would be 100,000
//! levels deep. AND and OR are associative (also with NULLs), so such a
//! chain is rebuilt as a balanced tree of the same terms in the same order:
//! evaluated left to right with the same short cuts, printed as the same
//! flat list, and only about log2(terms) deep. PostgreSQL, too, keeps such a
//! list flat and accepts it at any length.
//!
//! Every other kind of nesting counts: each expression, table factor and
//! set operation is one level, each query [`QUERY_LEVELS`] (copying or
//! dropping a query takes several times the stack an expression does).
//! Beyond [`MAX_DEPTH`] the statement is refused with
//! 54001 "stack depth limit exceeded"; PostgreSQL refuses every shape a
//! little earlier (with default settings: 9,984 nested parentheses, `NOT`
//! or unary minus; 4,832 terms of `+` or `||`; 2,512 nested scalar
//! subqueries; 1,664 nested FROM subqueries; 9,280 queries in a UNION;
//! 16,256 casts in a row).

use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, Query, SetExpr, Statement, TableFactor, VisitMut, VisitorMut,
};

use super::error::{Result, SqlError};
use crate::stack;

/// The deepest statement accepted, in levels (see the module doc).
pub const MAX_DEPTH: usize = 20_000;

/// Levels a query counts for: in a debug build the derived `Clone` of a
/// nested scalar subquery takes 34 KiB of stack per query, against
/// 4.3 KiB for an expression.
const QUERY_LEVELS: usize = 4;

/// A chain of one operator longer than this is rebalanced (a balanced
/// tree's left spine is never this long).
const LONG_CHAIN: usize = 64;

/// Rebalances `statement`'s AND/OR chains and returns its depth, or 54001
/// when it is deeper than [`MAX_DEPTH`]. `tokens` (the statement's
/// significant tokens) bounds its depth before it is measured.
pub fn measure(statement: &mut Statement, tokens: usize) -> Result<usize> {
    let mut depth = Depth::default();
    let within = stack::with_tree(tokens.min(MAX_DEPTH + 1), || {
        statement.visit(&mut depth).is_continue()
    });
    if within {
        Ok(depth.max)
    } else {
        Err(SqlError::too_complex())
    }
}

/// Drops a statement [`measure`] refused, however deep, without deep
/// recursion: every expression is detached from its parent and dropped
/// on its own, so what is left of each nests no deeper than the parser
/// allows (queries in queries).
pub fn drop_deep(mut statement: Statement) {
    let mut pending = Vec::new();
    stack::with_tree(MAX_DEPTH, || {
        let _ = statement.visit(&mut Detach {
            root: false,
            pending: &mut pending,
        });
        drop(statement);
        while let Some(mut expr) = pending.pop() {
            let _ = expr.visit(&mut Detach {
                root: true,
                pending: &mut pending,
            });
        }
    });
}

/// Moves every expression it meets (but a root one) to `pending`.
struct Detach<'a> {
    root: bool,
    pending: &'a mut Vec<Expr>,
}

impl VisitorMut for Detach<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if std::mem::take(&mut self.root) {
            return ControlFlow::Continue(());
        }
        let null = Expr::value(sqlparser::ast::Value::Null);
        self.pending.push(std::mem::replace(expr, null));
        ControlFlow::Continue(())
    }
}

#[derive(Default)]
struct Depth {
    current: usize,
    max: usize,
    /// Levels each open query added (itself and its chain of set
    /// operations).
    queries: Vec<usize>,
}

/// How long the left-deep chain of `UNION`/`INTERSECT`/`EXCEPT` at `body`
/// is (sqlparser builds it in a loop, one level per operation).
fn set_operations(body: &SetExpr) -> usize {
    let mut n = 0;
    let mut node = body;
    while let SetExpr::SetOperation { left, .. } = node {
        n += 1;
        node = left;
    }
    n
}

impl Depth {
    fn enter(&mut self) -> ControlFlow<()> {
        self.enter_by(1)
    }

    fn enter_by(&mut self, levels: usize) -> ControlFlow<()> {
        self.current += levels;
        self.max = self.max.max(self.current);
        if self.current > MAX_DEPTH {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn leave(&mut self) -> ControlFlow<()> {
        self.leave_by(1)
    }

    fn leave_by(&mut self, levels: usize) -> ControlFlow<()> {
        self.current -= levels;
        ControlFlow::Continue(())
    }
}

impl VisitorMut for Depth {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        let levels = QUERY_LEVELS + set_operations(&query.body);
        self.queries.push(levels);
        self.enter_by(levels)
    }

    fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        let levels = self.queries.pop().unwrap_or(QUERY_LEVELS);
        self.leave_by(levels)
    }

    fn pre_visit_table_factor(&mut self, _: &mut TableFactor) -> ControlFlow<()> {
        self.enter()
    }

    fn post_visit_table_factor(&mut self, _: &mut TableFactor) -> ControlFlow<()> {
        self.leave()
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        balance(expr);
        self.enter()
    }

    fn post_visit_expr(&mut self, _: &mut Expr) -> ControlFlow<()> {
        self.leave()
    }
}

/// The operator of a chain that may be rebalanced.
fn chain_operator(expr: &Expr) -> Option<BinaryOperator> {
    match expr {
        Expr::BinaryOp {
            op: op @ (BinaryOperator::And | BinaryOperator::Or),
            ..
        } => Some(op.clone()),
        _ => None,
    }
}

/// Rebuilds a long left-deep AND (or OR) chain at `expr` as a balanced
/// tree of the same terms in the same order; leaves anything else alone.
fn balance(expr: &mut Expr) {
    let Some(op) = chain_operator(expr) else {
        return;
    };
    let mut spine = 0;
    let mut node = &*expr;
    while let Expr::BinaryOp { left, op: o, .. } = node {
        if *o != op {
            break;
        }
        spine += 1;
        if spine > LONG_CHAIN {
            break;
        }
        node = left;
    }
    if spine <= LONG_CHAIN {
        return;
    }
    // Take the chain apart without recursion: right operands from the
    // top down, then the leftmost term.
    let mut terms = Vec::new();
    let mut rest = std::mem::replace(expr, Expr::value(sqlparser::ast::Value::Null));
    loop {
        match rest {
            Expr::BinaryOp { left, op: o, right } if o == op => {
                terms.push(*right);
                rest = *left;
            }
            other => {
                terms.push(other);
                break;
            }
        }
    }
    terms.reverse();
    if let Some(tree) = balanced(terms, &op) {
        *expr = tree;
    }
}

/// A balanced tree of `op` over `terms`, in order (`None` for no terms).
fn balanced(terms: Vec<Expr>, op: &BinaryOperator) -> Option<Expr> {
    let mut level = terms;
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        let mut items = level.into_iter();
        while let Some(left) = items.next() {
            next.push(match items.next() {
                Some(right) => Expr::BinaryOp {
                    left: Box::new(left),
                    op: op.clone(),
                    right: Box::new(right),
                },
                None => left,
            });
        }
        level = next;
    }
    level.pop()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_single;

    fn depth(sql: &str) -> Result<usize> {
        parse_single(sql).map(|s| s.depth)
    }

    #[test]
    fn long_or_chains_become_shallow_and_print_the_same() {
        let terms: Vec<String> = (0..1000).map(|i| format!("id = {i}")).collect();
        let sql = format!("SELECT * FROM t WHERE {}", terms.join(" OR "));
        let s = parse_single(&sql).unwrap();
        assert!(s.depth < 40, "depth {}", s.depth);
        assert_eq!(s.ast.to_string(), sql);
    }

    #[test]
    fn mixed_chains_keep_their_grouping() {
        let and = vec!["a AND b"; 100].join(" OR ");
        let s = parse_single(&format!("SELECT {and}")).unwrap();
        let again = parse_single(&s.ast.to_string()).unwrap();
        assert_eq!(s.ast, again.ast);
        assert!(s.depth < 40);
    }

    #[test]
    fn nesting_counts_and_is_bounded() {
        assert!(depth("SELECT 1").unwrap() < 10);
        let parens = |n| format!("SELECT {}1{}", "(".repeat(n), ")".repeat(n));
        assert!(depth(&parens(100)).unwrap() > 100);
        let plus = |n| format!("SELECT 1{}", "+1".repeat(n));
        assert!(depth(&plus(MAX_DEPTH - 10)).is_ok());
        assert_eq!(depth(&plus(MAX_DEPTH)).unwrap_err().sqlstate, "54001");
        let union = |n| vec!["SELECT 1"; n].join(" UNION ALL ");
        assert!(depth(&union(100)).unwrap() > 100);
    }

    #[test]
    fn refused_trees_of_any_depth_are_dropped_on_a_small_stack() {
        let sql = format!("SELECT abs(1{}) FROM t", "+1".repeat(200_000));
        let refused = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || parse_single(&sql).unwrap_err().sqlstate)
            .unwrap();
        assert_eq!(refused.join().unwrap(), "54001");
    }
}
