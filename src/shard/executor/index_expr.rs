//! Index expressions (`CREATE INDEX … ((metadata_ ->> 'ref_doc_id'))`):
//! the columns one reads, and its text as PostgreSQL's `pg_get_expr`
//! prints it — every operator in parentheses, a string literal with the
//! type it resolved to (`'ref_doc_id'::text`), a cast as
//! `(operand)::type` with the type's SQL name — so that `pg_indexes`
//! and `pg_get_indexdef` read as on PostgreSQL.

use std::ops::ControlFlow;

use sqlparser::ast::{visit_expressions, Expr, Value as SqlValue};

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

/// `e` as `pg_get_expr` prints it.
pub fn deparse(e: &Expr) -> String {
    crate::stack::guard(|| match e {
        Expr::Nested(inner) => deparse(inner),
        Expr::Identifier(i) => fold(i),
        Expr::CompoundIdentifier(parts) => parts.last().map(fold).unwrap_or_default(),
        Expr::Value(v) => match &v.value {
            SqlValue::SingleQuotedString(s) => format!("'{}'::text", s.replace('\'', "''")),
            other => other.to_string(),
        },
        Expr::BinaryOp { left, op, right } => {
            format!("({} {op} {})", deparse(left), deparse(right))
        }
        Expr::Cast {
            expr, data_type, ..
        } => {
            let ty = column_type(data_type)
                .map(|(t, _)| t.sql_name())
                .unwrap_or_else(|_| data_type.to_string().to_lowercase());
            format!("({})::{ty}", deparse(expr))
        }
        Expr::Function(f) => match &f.args {
            sqlparser::ast::FunctionArguments::List(list) => {
                let args: Vec<String> = list
                    .args
                    .iter()
                    .map(|a| match a {
                        sqlparser::ast::FunctionArg::Unnamed(
                            sqlparser::ast::FunctionArgExpr::Expr(x),
                        ) => deparse(x),
                        other => other.to_string(),
                    })
                    .collect();
                format!("{}({})", f.name.to_string().to_lowercase(), args.join(", "))
            }
            _ => e.to_string(),
        },
        other => other.to_string(),
    })
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
    }
}
