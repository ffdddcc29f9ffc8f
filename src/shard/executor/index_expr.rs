//! Index expressions (`CREATE INDEX … ((metadata_ ->> 'ref_doc_id'))`):
//! the columns one reads, and its text as PostgreSQL's `pg_get_expr`
//! prints it — every operator in parentheses, a string literal with the
//! type it resolved to (`'ref_doc_id'::text`), a cast as
//! `(operand)::type` with the type's SQL name — so that `pg_indexes`
//! and `pg_get_indexdef` read as on PostgreSQL.

use std::ops::ControlFlow;

use sqlparser::ast::{visit_expressions, BinaryOperator, Expr, Value as SqlValue};

use super::types::column_type;
use crate::shard::storage::TableDef;
use crate::sql::fold;
use crate::wire::PgError;

/// The positions of the columns of `def` that `e` reads, in order of
/// first use; 42703 for a name that is no column.
pub fn columns_read(e: &Expr, def: &TableDef) -> Result<Vec<usize>, PgError> {
    let mut read = Vec::new();
    let flow = visit_expressions(e, |x| {
        let name = match x {
            Expr::Identifier(i) => fold(i),
            Expr::CompoundIdentifier(parts) => parts.last().map(fold).unwrap_or_default(),
            _ => return ControlFlow::Continue(()),
        };
        match def.column_index(&name) {
            Some(c) if !read.contains(&c) => read.push(c),
            Some(_) => {}
            None => return ControlFlow::Break(name),
        }
        ControlFlow::Continue(())
    });
    match flow {
        ControlFlow::Break(name) => Err(PgError::new(
            "42703",
            format!("column \"{name}\" does not exist"),
        )),
        ControlFlow::Continue(()) => Ok(read),
    }
}

/// What PostgreSQL names an index on `e` after (`items_<this>_idx`): the
/// column or function it applies, through casts; `None` for anything else
/// (PostgreSQL then says `expr`).
pub fn name_part(e: &Expr) -> Option<String> {
    crate::stack::guard(|| match e {
        Expr::Nested(inner) | Expr::Cast { expr: inner, .. } => name_part(inner),
        Expr::Identifier(i) => Some(fold(i)),
        Expr::CompoundIdentifier(parts) => parts.last().map(fold),
        Expr::Function(f) => f.name.0.last()?.as_ident().map(fold),
        _ => None,
    })
}

/// `e` as `pg_get_expr` prints it.
pub fn deparse(e: &Expr) -> String {
    print(e, false, Parent::Top)
}

/// `e` as `pg_get_expr(…, true)` prints it (psql's `\d`): parentheses
/// only where precedence needs them, a cast of a column or call without.
pub fn deparse_pretty(e: &Expr) -> String {
    print(e, true, Parent::Top)
}

/// Where an expression stands, which decides its parentheses when pretty.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parent {
    /// The whole expression, or an argument of a call or of AND/OR.
    Top,
    /// The operand of a cast or of an operator.
    Operand,
}

fn print(e: &Expr, pretty: bool, parent: Parent) -> String {
    crate::stack::guard(|| {
        let wrap = |text: String| {
            if !pretty || parent == Parent::Operand {
                format!("({text})")
            } else {
                text
            }
        };
        match e {
            Expr::Nested(inner) => print(inner, pretty, parent),
            Expr::Identifier(i) => fold(i),
            Expr::CompoundIdentifier(parts) => parts.last().map(fold).unwrap_or_default(),
            Expr::Value(v) => match &v.value {
                SqlValue::SingleQuotedString(s) => format!("'{}'::text", s.replace('\'', "''")),
                other => other.to_string(),
            },
            Expr::BinaryOp { left, op, right } => {
                let side = match op {
                    BinaryOperator::And | BinaryOperator::Or => Parent::Top,
                    _ => Parent::Operand,
                };
                wrap(format!(
                    "{} {op} {}",
                    print(left, pretty, side),
                    print(right, pretty, side)
                ))
            }
            Expr::IsNull(x) => wrap(format!("{} IS NULL", print(x, pretty, Parent::Operand))),
            Expr::IsNotNull(x) => {
                wrap(format!("{} IS NOT NULL", print(x, pretty, Parent::Operand)))
            }
            Expr::Cast {
                expr, data_type, ..
            } => {
                let ty = column_type(data_type)
                    .map(|(t, _)| t.sql_name())
                    .unwrap_or_else(|_| data_type.to_string().to_lowercase());
                if let Expr::Value(v) = expr.as_ref() {
                    if let SqlValue::SingleQuotedString(s) = &v.value {
                        // A constant prints with its type, once.
                        return format!("'{}'::{ty}", s.replace('\'', "''"));
                    }
                }
                let operand = print(expr, pretty, Parent::Operand);
                match pretty {
                    true => format!("{operand}::{ty}"),
                    false => format!("({operand})::{ty}"),
                }
            }
            Expr::Function(f) => match &f.args {
                sqlparser::ast::FunctionArguments::List(list) => {
                    let args: Vec<String> = list
                        .args
                        .iter()
                        .map(|a| match a {
                            sqlparser::ast::FunctionArg::Unnamed(
                                sqlparser::ast::FunctionArgExpr::Expr(x),
                            ) => print(x, pretty, Parent::Top),
                            other => other.to_string(),
                        })
                        .collect();
                    format!("{}({})", f.name.to_string().to_lowercase(), args.join(", "))
                }
                _ => e.to_string(),
            },
            other => other.to_string(),
        }
    })
}

/// True when `e` is a function call, which an index's column list shows
/// without parentheses of its own (PostgreSQL's `looks_like_function`).
pub fn looks_like_function(e: &Expr) -> bool {
    match e {
        Expr::Nested(inner) => looks_like_function(inner),
        Expr::Function(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(sql: &str) -> String {
        deparse(&super::super::ddl::parse_expr(sql).unwrap())
    }

    #[test]
    fn prints_as_pg_get_expr() {
        assert_eq!(text("(m->>'a')"), "(m ->> 'a'::text)");
        assert_eq!(
            text("CAST(j ->> 'price' AS FLOAT)"),
            "((j ->> 'price'::text))::double precision"
        );
        assert_eq!(text("lower(m->>'b')"), "lower((m ->> 'b'::text))");
        assert_eq!(text("(id + 1)"), "(id + 1)");
        assert_eq!(text("(m -> 'it''s')"), "(m -> 'it''s'::text)");
        assert_eq!(text("embedding::halfvec(3)"), "(embedding)::halfvec(3)");
        assert_eq!(
            text("binary_quantize(embedding)::bit(3)"),
            "(binary_quantize(embedding))::bit(3)"
        );
        assert_eq!(
            text("category_id = 1 AND id > 5"),
            "((category_id = 1) AND (id > 5))"
        );
    }

    #[test]
    fn prints_as_pretty_pg_get_expr() {
        let pretty = |sql: &str| deparse_pretty(&super::super::ddl::parse_expr(sql).unwrap());
        assert_eq!(pretty("(embedding)::halfvec(3)"), "embedding::halfvec(3)");
        assert_eq!(
            pretty("(subvector(embedding, 1, 3))::vector(3)"),
            "subvector(embedding, 1, 3)::vector(3)"
        );
        assert_eq!(pretty("lower((id)::text)"), "lower(id::text)");
        assert_eq!(
            pretty("((j ->> 'p'::text))::double precision"),
            "(j ->> 'p'::text)::double precision"
        );
        assert_eq!(
            pretty("((category_id = 2) AND (id > 5))"),
            "category_id = 2 AND id > 5"
        );
        assert_eq!(
            pretty("(category_id IS NOT NULL)"),
            "category_id IS NOT NULL"
        );
    }
}
