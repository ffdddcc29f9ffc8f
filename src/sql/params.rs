//! Parameters (`$n`) of a statement and what their context says about
//! their types. The SQL layer does not know column types, so a hint names
//! the column (or the cast) and the executor resolves it against its
//! catalog when answering ParameterDescription.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use sqlparser::ast::{
    self, AssignmentTarget, Expr, LimitClause, Query, SetExpr, Value, Visit, Visitor,
};

use super::error::{Result, SqlError};
use super::knn::{distance_operator, placeholder_index};
use super::names::{column_name, fold};
use super::parse::Statement;

/// What a parameter's context says about its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamHint {
    /// `$n::type`: the cast's type as written (`vector(3)`, `BIGINT`).
    Cast(String),
    /// An operand of a distance operator whose other side reads `column`.
    DistanceOperand(String),
    /// Compared with, assigned to or inserted into `column`.
    Column(String),
    /// Inserted at this position of a table without a column list.
    ColumnPosition(usize),
    /// LIMIT or OFFSET: bigint.
    LimitOrOffset,
    /// Argument `position` of a function call: the function's signature
    /// gives the type.
    Argument {
        /// The call, for its name and its other arguments' types.
        call: Box<ast::Function>,
        /// Where the parameter sits among the call's arguments.
        position: usize,
    },
}

/// The parameters of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params {
    /// The highest n of any `$n` (0 when there are none).
    pub count: usize,
    /// A hint per parameter number, where the context gives one.
    pub hints: BTreeMap<usize, ParamHint>,
}

/// Finds every `$n` and a type hint for each. `$0` (or a number too large)
/// is PostgreSQL's 42P02 `there is no parameter $0`.
pub fn params(statement: &Statement) -> Result<Params> {
    crate::stack::with_tree(statement.depth, || {
        let mut finder = ParamFinder::default();
        if let ControlFlow::Break(e) = statement.ast.visit(&mut finder) {
            return Err(e);
        }
        if let ast::Statement::Insert(insert) = &statement.ast {
            if let Some(SetExpr::Values(values)) = insert.source.as_ref().map(|s| s.body.as_ref()) {
                for row in &values.rows {
                    for (i, value) in row.iter().enumerate() {
                        let hint = match insert.columns.get(i) {
                            Some(c) => match c.0.last().and_then(|p| p.as_ident()) {
                                Some(ident) => ParamHint::Column(fold(ident)),
                                None => continue,
                            },
                            None if insert.columns.is_empty() => ParamHint::ColumnPosition(i),
                            None => continue,
                        };
                        finder.hint(value, hint);
                    }
                }
            }
        }
        if let ast::Statement::Update(update) = &statement.ast {
            for assignment in &update.assignments {
                if let AssignmentTarget::ColumnName(name) = &assignment.target {
                    if let Some(ident) = name.0.last().and_then(|p| p.as_ident()) {
                        finder.hint(&assignment.value, ParamHint::Column(fold(ident)));
                    }
                }
            }
        }
        Ok(Params {
            count: finder.count,
            hints: finder.hints,
        })
    })
}

#[derive(Default)]
struct ParamFinder {
    count: usize,
    hints: BTreeMap<usize, ParamHint>,
}

impl ParamFinder {
    /// Records `hint` when `expr` is a bare parameter; a cast's hint wins
    /// over any other, any hint over a function argument's (the executor
    /// may not know the function), otherwise the first hint found stays.
    fn hint(&mut self, expr: &Expr, hint: ParamHint) {
        let Some(n) = param_of(expr) else {
            return;
        };
        let strength = |h: &ParamHint| match h {
            ParamHint::Cast(_) => 2,
            ParamHint::Argument { .. } => 0,
            _ => 1,
        };
        let entry = self.hints.entry(n);
        match entry {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(hint);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                if strength(&hint) > strength(o.get()) {
                    o.insert(hint);
                }
            }
        }
    }

    fn hint_comparison(&mut self, left: &Expr, right: &Expr, distance: bool) {
        for (col, other) in [(left, right), (right, left)] {
            if let Some(column) = column_under(col) {
                let hint = if distance {
                    ParamHint::DistanceOperand(column)
                } else {
                    ParamHint::Column(column)
                };
                self.hint(other, hint);
            }
        }
    }
}

fn param_of(expr: &Expr) -> Option<usize> {
    crate::stack::guard(|| match expr {
        Expr::Nested(e) => param_of(e),
        Expr::Value(v) => match &v.value {
            Value::Placeholder(p) => placeholder_index(p),
            _ => None,
        },
        _ => None,
    })
}

/// The column an operand reads, through casts and function calls such as
/// `binary_quantize(embedding)::bit(3)`.
fn column_under(expr: &Expr) -> Option<String> {
    crate::stack::guard(|| match expr {
        Expr::Cast { expr, .. } | Expr::Nested(expr) => column_under(expr),
        Expr::Function(f) => match &f.args {
            ast::FunctionArguments::List(list) => match list.args.as_slice() {
                [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))] => column_under(e),
                _ => None,
            },
            _ => None,
        },
        other => column_name(other),
    })
}

impl Visitor for ParamFinder {
    type Break = SqlError;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<SqlError> {
        if let Some(LimitClause::LimitOffset { limit, offset, .. }) = &query.limit_clause {
            for e in limit.iter().chain(offset.as_ref().map(|o| &o.value)) {
                self.hint(e, ParamHint::LimitOrOffset);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<SqlError> {
        match expr {
            Expr::Value(v) => {
                if let Value::Placeholder(p) = &v.value {
                    match placeholder_index(p).filter(|n| *n <= u16::MAX as usize) {
                        Some(n) => self.count = self.count.max(n),
                        None => return ControlFlow::Break(SqlError::undefined_parameter(p)),
                    }
                }
            }
            Expr::Cast {
                expr, data_type, ..
            } => self.hint(expr, ParamHint::Cast(data_type.to_string())),
            Expr::BinaryOp { left, op, right } => {
                let distance = distance_operator(op).is_some();
                let comparison = matches!(
                    op,
                    ast::BinaryOperator::Eq
                        | ast::BinaryOperator::NotEq
                        | ast::BinaryOperator::Lt
                        | ast::BinaryOperator::LtEq
                        | ast::BinaryOperator::Gt
                        | ast::BinaryOperator::GtEq
                );
                if distance || comparison {
                    self.hint_comparison(left, right, distance);
                }
            }
            Expr::Function(f) => {
                if let ast::FunctionArguments::List(list) = &f.args {
                    for (position, arg) in list.args.iter().enumerate() {
                        if let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = arg {
                            if param_of(e).is_some() {
                                let call = Box::new(f.clone());
                                self.hint(e, ParamHint::Argument { call, position });
                            }
                        }
                    }
                }
            }
            Expr::InList { expr, list, .. } => {
                if let Some(column) = column_under(expr) {
                    for item in list {
                        self.hint(item, ParamHint::Column(column.clone()));
                    }
                }
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                if let Some(column) = column_under(expr) {
                    self.hint(low, ParamHint::Column(column.clone()));
                    self.hint(high, ParamHint::Column(column));
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse::parse_single;

    fn of(sql: &str) -> Params {
        params(&parse_single(sql).unwrap()).unwrap()
    }

    #[test]
    fn built_in_function_arguments() {
        let argument = |h: &ParamHint| match h {
            ParamHint::Argument { call, position } => Some((call.name.to_string(), *position)),
            _ => None,
        };
        let p = of("SELECT pg_promote(true, $1)");
        assert_eq!(argument(&p.hints[&1]), Some(("pg_promote".into(), 1)));
        let p = of("SELECT pg_catalog.set_config($1, $2, $3)");
        assert_eq!(
            argument(&p.hints[&3]),
            Some(("pg_catalog.set_config".into(), 2))
        );
        // A cast still wins.
        let p = of("SELECT pg_promote($1::bool, $2::bigint), lower($3)");
        assert_eq!(p.hints[&2], ParamHint::Cast("BIGINT".into()));
        assert_eq!(argument(&p.hints[&3]), Some(("lower".into(), 0)));
        // The column compared with says more than a function's argument.
        let p = of("SELECT coalesce($1, 0) FROM t WHERE id = $1");
        assert_eq!(p.hints[&1], ParamHint::Column("id".into()));
    }

    #[test]
    fn knn_parameters() {
        let p = of(
            "SELECT id, embedding <=> $1 AS d FROM items WHERE category = $3 \
                    ORDER BY embedding <=> $1 LIMIT $2",
        );
        assert_eq!(p.count, 3);
        assert_eq!(p.hints[&1], ParamHint::DistanceOperand("embedding".into()));
        assert_eq!(p.hints[&2], ParamHint::LimitOrOffset);
        assert_eq!(p.hints[&3], ParamHint::Column("category".into()));
        let p = of("SELECT id FROM items ORDER BY $1::vector(3) <-> embedding LIMIT 5");
        assert_eq!(p.hints[&1], ParamHint::Cast("vector(3)".into()));
        let p = of("SELECT id FROM t ORDER BY binary_quantize(e)::bit(3) <~> $1 LIMIT 5");
        assert_eq!(p.hints[&1], ParamHint::DistanceOperand("e".into()));
    }

    #[test]
    fn write_parameters() {
        let p = of("INSERT INTO items (id, embedding) VALUES ($1, $2), ($3, $4) RETURNING id");
        assert_eq!(p.count, 4);
        assert_eq!(p.hints[&4], ParamHint::Column("embedding".into()));
        let p = of("INSERT INTO items VALUES ($1, $2)");
        assert_eq!(p.hints[&2], ParamHint::ColumnPosition(1));
        let p = of("UPDATE items SET embedding = $1 WHERE id IN ($2, $3) AND x BETWEEN $4 AND $5");
        assert_eq!(p.hints[&1], ParamHint::Column("embedding".into()));
        assert_eq!(p.hints[&3], ParamHint::Column("id".into()));
        assert_eq!(p.hints[&5], ParamHint::Column("x".into()));
        assert_eq!(of("SELECT 1").count, 0);
    }

    #[test]
    fn parameter_zero_is_an_error() {
        let e = params(&parse_single("SELECT $0").unwrap()).unwrap_err();
        assert_eq!(
            (e.sqlstate, e.message.as_str()),
            ("42P02", "there is no parameter $0")
        );
    }
}
