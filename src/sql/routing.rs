//! Which shard-key values a statement is restricted to, so that the proxy
//! can send it only to the shards holding them: conjunctive `key = v` and
//! `key IN (…)` in a WHERE, and the key of each row of an INSERT that
//! spells its rows out (see [`super::insert_rows`]).
//!
//! Extraction is conservative: None means "could be any key" (send to all
//! shards); a list is a superset of the keys the statement can touch.

use sqlparser::ast::{self, BinaryOperator, Expr, SetExpr, Value};

use super::insert_rows::{spelled_rows, spelled_values_mut, Place};
use super::knn::placeholder_index;
use super::names::{column_name, fold};
use super::parse::Statement;

/// A shard-key value as written in the statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyValue {
    /// A literal's text (`42`, `abc` for `'abc'`), casts removed.
    Literal(String),
    /// `$n` (1-based): the bound value decides.
    Param(usize),
}

/// The key of one INSERT row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKey {
    /// The row gives the key.
    Value(KeyValue),
    /// The key is omitted or DEFAULT: the proxy generates it.
    Default,
}

/// The columns (in order) and the primary key's first column a `CREATE
/// TABLE` declares: what routing needs of a table before any shard's
/// catalog shows it (inside the transaction that creates it). `None` for
/// any other statement.
pub fn created_table(statement: &Statement) -> Option<(Vec<String>, Option<String>)> {
    let ast::Statement::CreateTable(ct) = &statement.ast else {
        return None;
    };
    let columns: Vec<String> = ct.columns.iter().map(|c| fold(&c.name)).collect();
    let inline = ct.columns.iter().find(|c| {
        c.options
            .iter()
            .any(|o| matches!(o.option, ast::ColumnOption::PrimaryKey(_)))
    });
    let key = match inline {
        Some(c) => Some(fold(&c.name)),
        None => ct.constraints.iter().find_map(|c| match c {
            ast::TableConstraint::PrimaryKey(pk) => match &pk.columns.first()?.column.expr {
                Expr::Identifier(ident) => Some(fold(ident)),
                _ => None,
            },
            _ => None,
        }),
    };
    Some((columns, key))
}

/// Key values a SELECT, UPDATE or DELETE is restricted to by its WHERE.
pub fn where_key_values(statement: &Statement, key: &str) -> Option<Vec<KeyValue>> {
    crate::stack::with_tree(statement.depth, || {
        let selection = match &statement.ast {
            ast::Statement::Query(q) => match q.body.as_ref() {
                SetExpr::Select(s) => s.selection.as_ref(),
                _ => None,
            },
            ast::Statement::Update(u) => u.selection.as_ref(),
            ast::Statement::Delete(d) => d.selection.as_ref(),
            _ => None,
        };
        restricted_keys(selection?, key)
    })
}

/// Key values a boolean expression restricts `key` to.
pub fn restricted_keys(expr: &Expr, key: &str) -> Option<Vec<KeyValue>> {
    crate::stack::guard(|| match expr {
        Expr::Nested(e) => restricted_keys(e, key),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => match (restricted_keys(left, key), restricted_keys(right, key)) {
            (Some(a), Some(b)) => Some(if a.len() <= b.len() { a } else { b }),
            (a, b) => a.or(b),
        },
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Or,
            right,
        } => {
            // Kept in order without repeats, in linear time: a list of
            // `key = …` may be tens of thousands long.
            let mut values = restricted_keys(left, key)?;
            let mut seen: std::collections::HashSet<KeyValue> = values.iter().cloned().collect();
            for v in restricted_keys(right, key)? {
                if seen.insert(v.clone()) {
                    values.push(v);
                }
            }
            Some(values)
        }
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => {
            let (col, value) = if is_key(left, key) {
                (left, right)
            } else {
                (right, left)
            };
            (is_key(col, key))
                .then(|| key_value(value))
                .flatten()
                .map(|v| vec![v])
        }
        Expr::InList {
            expr,
            list,
            negated: false,
        } if is_key(expr, key) => list.iter().map(key_value).collect(),
        _ => None,
    })
}

/// The key of every row of an INSERT that spells its rows out (`INSERT …
/// VALUES`, or SQLAlchemy's `INSERT … SELECT … FROM (VALUES …)`, see
/// [`spelled_rows`]); `table_columns` gives the table's column order for
/// an INSERT without a column list. None when the rows come from elsewhere
/// or a key is an expression.
pub fn insert_key_values(
    statement: &Statement,
    key: &str,
    table_columns: &[String],
) -> Option<Vec<RowKey>> {
    crate::stack::with_tree(statement.depth, || {
        let ast::Statement::Insert(insert) = &statement.ast else {
            return None;
        };
        let spelled = spelled_rows(insert)?;
        let target = if insert.columns.is_empty() {
            table_columns.iter().position(|c| c == key)
        } else {
            insert.columns.iter().position(|c| {
                c.0.last()
                    .and_then(|p| p.as_ident())
                    .is_some_and(|i| fold(i) == key)
            })
        };
        let place = target.map_or(Place::Absent, |t| spelled.place(t));
        spelled
            .rows
            .iter()
            .map(|row| match place {
                Place::Absent => Some(RowKey::Default),
                Place::Computed => None,
                Place::Row(p) => match row.get(p) {
                    None => Some(RowKey::Default),
                    // DEFAULT is a VALUES list's own (not allowed in a
                    // subquery's rows).
                    Some(Expr::Identifier(i))
                        if spelled.is_values()
                            && i.quote_style.is_none()
                            && i.value.eq_ignore_ascii_case("default") =>
                    {
                        Some(RowKey::Default)
                    }
                    Some(e) => key_value(e).map(RowKey::Value),
                },
            })
            .collect()
    })
}

/// The INSERT with only the given rows (0-based, in the given order) of
/// its VALUES, keeping everything else (column list, the SELECT around
/// the rows, ON CONFLICT, RETURNING): the statement for one shard. None
/// when the INSERT does not spell its rows out.
pub fn insert_with_rows(statement: &Statement, rows: &[usize]) -> Option<String> {
    crate::stack::with_tree(statement.depth, || {
        let ast::Statement::Insert(insert) = &statement.ast else {
            return None;
        };
        let mut insert = insert.clone();
        let values = spelled_values_mut(&mut insert)?;
        let kept = rows
            .iter()
            .map(|&i| values.rows.get(i).cloned())
            .collect::<Option<Vec<_>>>()?;
        values.rows = kept;
        Some(ast::Statement::Insert(insert).to_string())
    })
}

fn is_key(expr: &Expr, key: &str) -> bool {
    column_name(expr).is_some_and(|c| c == key)
}

fn key_value(expr: &Expr) -> Option<KeyValue> {
    crate::stack::guard(|| match expr {
        Expr::Nested(e) => key_value(e),
        Expr::Cast { expr, .. } => key_value(expr),
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => Some(KeyValue::Literal(n.clone())),
            Value::SingleQuotedString(s) => Some(KeyValue::Literal(s.clone())),
            Value::Placeholder(p) => placeholder_index(p).map(KeyValue::Param),
            _ => None,
        },
        Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => Some(KeyValue::Literal(format!("-{n}"))),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_tables_name_columns_and_key() {
        let s = |sql: &str| created_table(&crate::sql::parse_single(sql).unwrap());
        assert_eq!(
            s("CREATE TABLE t (Id bigint PRIMARY KEY, v vector(3))"),
            Some((vec!["id".into(), "v".into()], Some("id".into())))
        );
        assert_eq!(
            s("CREATE TABLE t (a int, b text, PRIMARY KEY (b, a))"),
            Some((vec!["a".into(), "b".into()], Some("b".into())))
        );
        assert_eq!(s("CREATE TABLE t (a int)"), Some((vec!["a".into()], None)));
        assert_eq!(s("SELECT 1"), None);
    }
    use crate::sql::parse::parse_single;

    fn keys(sql: &str) -> Option<Vec<KeyValue>> {
        where_key_values(&parse_single(sql).unwrap(), "id")
    }

    fn lit(s: &str) -> KeyValue {
        KeyValue::Literal(s.into())
    }

    #[test]
    fn where_equality_and_in() {
        assert_eq!(keys("SELECT * FROM t WHERE id = 5"), Some(vec![lit("5")]));
        assert_eq!(
            keys("SELECT * FROM t WHERE 5 = t.id AND x > 1"),
            Some(vec![lit("5")])
        );
        assert_eq!(
            keys("UPDATE t SET v = $1 WHERE ID = $2"),
            Some(vec![KeyValue::Param(2)])
        );
        assert_eq!(
            keys("DELETE FROM t WHERE id IN (1, '2', -3) AND (x = 1 OR y = 2)"),
            Some(vec![lit("1"), lit("2"), lit("-3")])
        );
        assert_eq!(
            keys("SELECT * FROM t WHERE (id = 1 OR id = 2) AND id IN (1, 2, 3)"),
            Some(vec![lit("1"), lit("2")])
        );
        assert_eq!(
            keys("SELECT * FROM t WHERE id = '7'::bigint"),
            Some(vec![lit("7")])
        );
    }

    #[test]
    fn not_restrictive() {
        for sql in [
            "SELECT * FROM t",
            "SELECT * FROM t WHERE id > 5",
            "SELECT * FROM t WHERE id = 1 OR x = 2",
            "SELECT * FROM t WHERE id NOT IN (1, 2)",
            "SELECT * FROM t WHERE id = x",
            "SELECT * FROM t WHERE id = 1 + 1",
            "SELECT * FROM t WHERE \"ID\" = 1",
        ] {
            assert_eq!(keys(sql), None, "{sql}");
        }
    }

    #[test]
    fn insert_rows() {
        let stmt = parse_single(
            "INSERT INTO t (embedding, id) VALUES ('[1]', 1), ('[2]', $1), ('[3]', DEFAULT) \
             ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .unwrap();
        assert_eq!(
            insert_key_values(&stmt, "id", &[]),
            Some(vec![
                RowKey::Value(lit("1")),
                RowKey::Value(KeyValue::Param(1)),
                RowKey::Default
            ])
        );
        let columns = ["id".to_string(), "embedding".to_string()];
        let stmt = parse_single("INSERT INTO t VALUES (10, '[1]'), (11, '[2]')").unwrap();
        assert_eq!(
            insert_key_values(&stmt, "id", &columns),
            Some(vec![RowKey::Value(lit("10")), RowKey::Value(lit("11"))])
        );
        let stmt = parse_single("INSERT INTO t (embedding) VALUES ('[1]')").unwrap();
        assert_eq!(
            insert_key_values(&stmt, "id", &columns),
            Some(vec![RowKey::Default])
        );
        let stmt = parse_single("INSERT INTO t SELECT * FROM u").unwrap();
        assert_eq!(insert_key_values(&stmt, "id", &columns), None);
    }

    #[test]
    fn split_insert_rows() {
        let stmt = parse_single(
            "INSERT INTO t (id, embedding) VALUES (1, '[1]'), (2, '[2]'), (3, '[3]') \
             ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding RETURNING id",
        )
        .unwrap();
        let sql = insert_with_rows(&stmt, &[2, 0]).unwrap();
        assert_eq!(
            sql,
            "INSERT INTO t (id, embedding) VALUES (3, '[3]'), (1, '[1]') \
             ON CONFLICT(id) DO UPDATE SET embedding = EXCLUDED.embedding RETURNING id"
        );
        let again = parse_single(&sql).unwrap();
        assert_eq!(
            insert_key_values(&again, "id", &[]),
            Some(vec![RowKey::Value(lit("3")), RowKey::Value(lit("1"))])
        );
        assert_eq!(insert_with_rows(&stmt, &[5]), None);
    }
}
