//! The rows an INSERT writes when the statement spells them out, so the
//! proxy can route each by its key: the VALUES list of `INSERT … VALUES`,
//! or the one inside
//! `INSERT INTO t (a, b) SELECT p0::T, p1::U FROM (VALUES (…, 0), (…, 1)) AS v(p0, p1, n) ORDER BY n`
//! — SQLAlchemy 2's bulk insert when the server generates keys (its
//! "insertmanyvalues"): each SELECT item is one column of `v` (cast or
//! not), and a counter column orders the rows so that RETURNING comes back
//! in the client's order.
//!
//! The SELECT form is recognised only when its rows are already in that
//! order (the counter is an integer literal that never decreases from one
//! row to the next), so a statement split into per-shard parts that keep
//! the rows' order returns its rows in VALUES order, as the whole would.

use sqlparser::ast::{
    self, Expr, GroupByExpr, Ident, ObjectName, OrderByKind, OrderBySort, SelectItem, SetExpr,
    TableAliasColumnDef, TableFactor, Value, Values,
};

use super::names::fold;

/// Where a row gives the value of one target column of the INSERT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// At this index of every row (a row may be shorter: the column is
    /// then left to its default).
    Row(usize),
    /// The INSERT writes no value there: the column gets its default.
    Absent,
    /// An expression other than a column of the rows.
    Computed,
}

/// The spelled-out rows of an INSERT and how they map to its columns.
pub struct SpelledRows<'a> {
    /// The rows, in the order the INSERT writes them.
    pub rows: Vec<&'a [Expr]>,
    /// For the SELECT form, the row index each SELECT item reads (None
    /// when it is not a plain column); plain VALUES map target i to i.
    items: Option<Vec<Option<usize>>>,
}

impl SpelledRows<'_> {
    /// True for plain `INSERT … VALUES`.
    pub fn is_values(&self) -> bool {
        self.items.is_none()
    }

    /// Where the rows give the INSERT's `target`-th column (its place in
    /// the column list, or in the table's columns without one).
    pub fn place(&self, target: usize) -> Place {
        match &self.items {
            None => Place::Row(target),
            Some(items) => match items.get(target) {
                None => Place::Absent,
                Some(Some(i)) => Place::Row(*i),
                Some(None) => Place::Computed,
            },
        }
    }
}

/// The rows `insert` writes, if it spells them out in one of the two
/// recognised forms.
pub fn spelled_rows(insert: &ast::Insert) -> Option<SpelledRows<'_>> {
    let source = insert.source.as_deref()?;
    if let SetExpr::Values(values) = source.body.as_ref() {
        return Some(SpelledRows {
            rows: values.rows.iter().map(|r| r.as_slice()).collect(),
            items: None,
        });
    }
    let (select, alias, values) = select_from_values(source)?;
    let columns: Vec<String> = alias.columns.iter().map(|c| fold(&c.name)).collect();
    if values.rows.iter().any(|r| r.len() != columns.len()) {
        return None;
    }
    let column_of = |e: &Expr| alias_column(e, &alias.name, &columns);
    if !rows_in_order(source, values, &column_of) {
        return None;
    }
    let items = select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                Some(column_of(uncast(e)))
            }
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(SpelledRows {
        rows: values.rows.iter().map(|r| r.as_slice()).collect(),
        items: Some(items),
    })
}

/// The VALUES list of an INSERT in a recognised form, to keep some of its
/// rows or fill in values.
pub fn spelled_values_mut(insert: &mut ast::Insert) -> Option<&mut Values> {
    spelled_rows(insert)?;
    let body = insert.source.as_deref_mut()?.body.as_mut();
    if let SetExpr::Values(values) = body {
        return Some(values);
    }
    let SetExpr::Select(select) = body else {
        return None;
    };
    let TableFactor::Derived { subquery, .. } = &mut select.from.first_mut()?.relation else {
        return None;
    };
    match subquery.body.as_mut() {
        SetExpr::Values(values) => Some(values),
        _ => None,
    }
}

/// Adds `column` to the INSERT's column list and returns its target
/// place; for the SELECT form also a column of the rows, `DEFAULT` in
/// every row for the caller to replace, and the SELECT item reading it.
pub fn append_target(insert: &mut ast::Insert, column: &str) -> Option<usize> {
    spelled_rows(insert)?;
    let target = insert.columns.len();
    let SetExpr::Select(select) = insert.source.as_deref_mut()?.body.as_mut() else {
        insert
            .columns
            .push(ObjectName::from(vec![Ident::with_quote('"', column)]));
        return Some(target);
    };
    // The SELECT items before the new one must be as many as the columns
    // before it: a shorter list would give the new item another column.
    if select.projection.len() != target {
        return None;
    }
    let TableFactor::Derived {
        alias: Some(alias),
        subquery,
        ..
    } = &mut select.from.first_mut()?.relation
    else {
        return None;
    };
    let SetExpr::Values(values) = subquery.body.as_mut() else {
        return None;
    };
    let taken: Vec<String> = alias.columns.iter().map(|c| fold(&c.name)).collect();
    let name = (0..)
        .map(|n| format!("pgvshard_{column}_{n}"))
        .find(|n| !taken.contains(n))?;
    let ident = Ident::with_quote('"', name);
    alias.columns.push(TableAliasColumnDef {
        name: ident.clone(),
        data_type: None,
    });
    for row in &mut values.rows {
        row.push(Expr::Identifier(Ident::new("DEFAULT")));
    }
    select
        .projection
        .push(SelectItem::UnnamedExpr(Expr::Identifier(ident)));
    insert
        .columns
        .push(ObjectName::from(vec![Ident::with_quote('"', column)]));
    Some(target)
}

/// The SELECT, the alias and the VALUES of `SELECT … FROM (VALUES …) AS
/// v(…)` with nothing else around it (no WHERE, grouping, DISTINCT,
/// LIMIT or WITH).
fn select_from_values(source: &ast::Query) -> Option<(&ast::Select, &ast::TableAlias, &Values)> {
    if source.with.is_some()
        || source.limit_clause.is_some()
        || source.fetch.is_some()
        || !source.locks.is_empty()
    {
        return None;
    }
    let SetExpr::Select(select) = source.body.as_ref() else {
        return None;
    };
    let plain = select.distinct.is_none()
        && select.selection.is_none()
        && select.having.is_none()
        && select.qualify.is_none()
        && select.named_window.is_empty()
        && select.sort_by.is_empty()
        && matches!(&select.group_by, GroupByExpr::Expressions(g, m) if g.is_empty() && m.is_empty());
    let [from] = select.from.as_slice() else {
        return None;
    };
    if !plain || !from.joins.is_empty() {
        return None;
    }
    let TableFactor::Derived {
        lateral: false,
        subquery,
        alias: Some(alias),
        ..
    } = &from.relation
    else {
        return None;
    };
    let SetExpr::Values(values) = subquery.body.as_ref() else {
        return None;
    };
    let bare = subquery.with.is_none()
        && subquery.order_by.is_none()
        && subquery.limit_clause.is_none()
        && subquery.fetch.is_none();
    bare.then_some((select.as_ref(), alias, values))
}

/// The index of the alias column `expr` names (`p0` or `v.p0`).
fn alias_column(expr: &Expr, alias: &Ident, columns: &[String]) -> Option<usize> {
    let name = match expr {
        Expr::Identifier(i) => fold(i),
        Expr::CompoundIdentifier(parts) => match parts.as_slice() {
            [table, column] if fold(table) == fold(alias) => fold(column),
            _ => return None,
        },
        Expr::Nested(inner) => return alias_column(inner, alias, columns),
        _ => return None,
    };
    columns.iter().position(|c| *c == name)
}

/// `expr` without the casts around it (`p0::VARCHAR` → `p0`).
fn uncast(expr: &Expr) -> &Expr {
    let mut e = expr;
    loop {
        match e {
            Expr::Cast { expr, .. } | Expr::Nested(expr) => e = expr,
            _ => return e,
        }
    }
}

/// True when the query has no ORDER BY, or orders ascending by one
/// column of the rows whose values are integer literals that never
/// decrease: its rows then come in VALUES order.
fn rows_in_order(
    source: &ast::Query,
    values: &Values,
    column_of: &dyn Fn(&Expr) -> Option<usize>,
) -> bool {
    let Some(order_by) = &source.order_by else {
        return true;
    };
    let OrderByKind::Expressions(keys) = &order_by.kind else {
        return false;
    };
    let [key] = keys.as_slice() else {
        return false;
    };
    if matches!(
        key.options.sort,
        Some(OrderBySort::Desc | OrderBySort::Using(_))
    ) || key.with_fill.is_some()
    {
        return false;
    }
    let Some(place) = column_of(&key.expr) else {
        return false;
    };
    let counters: Option<Vec<i64>> = values
        .rows
        .iter()
        .map(|r| match r.get(place) {
            Some(Expr::Value(v)) => match &v.value {
                Value::Number(n, _) => n.parse().ok(),
                _ => None,
            },
            _ => None,
        })
        .collect();
    counters.is_some_and(|c| c.windows(2).all(|w| w[0] <= w[1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_single;

    const BULK: &str = "INSERT INTO t (body, embedding) SELECT p0::VARCHAR, p1::VECTOR(3) \
        FROM (VALUES ($1::VARCHAR, $2, 0), ($3::VARCHAR, $4, 1)) AS imp_sen(p0, p1, sen_counter) \
        ORDER BY sen_counter RETURNING t.id, t.id AS id__1";

    fn with_insert<T>(sql: &str, f: impl FnOnce(&mut ast::Insert) -> T) -> T {
        let mut ast = parse_single(sql).unwrap().ast.clone();
        let ast::Statement::Insert(insert) = &mut ast else {
            panic!("not an INSERT: {sql}");
        };
        f(insert)
    }

    #[test]
    fn sqlalchemy_bulk_insert_maps_items_to_row_columns() {
        with_insert(BULK, |insert| {
            let rows = spelled_rows(insert).expect("recognised");
            assert_eq!(rows.rows.len(), 2);
            assert_eq!(rows.place(0), Place::Row(0));
            assert_eq!(rows.place(1), Place::Row(1));
            assert_eq!(rows.place(2), Place::Absent);
        });
        let computed = "INSERT INTO t (a, b) SELECT v.x, x + 1 FROM (VALUES (1)) AS v(x)";
        with_insert(computed, |insert| {
            let rows = spelled_rows(insert).expect("recognised");
            assert_eq!(rows.place(0), Place::Row(0));
            assert_eq!(rows.place(1), Place::Computed);
        });
    }

    #[test]
    fn other_selects_and_reordering_rows_are_not_spelled_out() {
        for sql in [
            "INSERT INTO t SELECT * FROM u",
            "INSERT INTO t (a) SELECT x FROM (VALUES (1), (2)) AS v(x) WHERE x > 1",
            "INSERT INTO t (a) SELECT x FROM (VALUES (1, 1), (2, 0)) AS v(x, n) ORDER BY n",
            "INSERT INTO t (a) SELECT x FROM (VALUES (1, 0), (2, 1)) AS v(x, n) ORDER BY n DESC",
            "INSERT INTO t (a) SELECT x FROM (VALUES (1, $1), (2, 1)) AS v(x, n) ORDER BY n",
            "INSERT INTO t (a) SELECT DISTINCT x FROM (VALUES (1)) AS v(x)",
            "INSERT INTO t (a) SELECT x FROM (VALUES (1)) AS v(x) LIMIT 1",
            "INSERT INTO t (a) SELECT * FROM (VALUES (1)) AS v(x)",
        ] {
            with_insert(sql, |insert| {
                assert!(spelled_rows(insert).is_none(), "{sql}")
            });
        }
    }

    #[test]
    fn an_appended_target_reads_a_new_row_column() {
        with_insert(BULK, |insert| {
            let target = append_target(insert, "id").unwrap();
            assert_eq!(target, 2);
            assert_eq!(spelled_rows(insert).unwrap().place(target), Place::Row(3));
            for row in &mut spelled_values_mut(insert).unwrap().rows {
                row[3] = Expr::value(Value::Number("7".into(), false));
            }
            assert_eq!(
                ast::Statement::Insert(insert.clone()).to_string(),
                "INSERT INTO t (body, embedding, \"id\") SELECT p0::VARCHAR, p1::VECTOR(3), \"pgvshard_id_0\" \
                 FROM (VALUES ($1::VARCHAR, $2, 0, 7), ($3::VARCHAR, $4, 1, 7)) AS imp_sen (p0, p1, sen_counter, \"pgvshard_id_0\") \
                 ORDER BY sen_counter RETURNING t.id, t.id AS id__1"
            );
        });
    }
}
