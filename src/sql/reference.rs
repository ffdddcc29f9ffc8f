//! What a reference table (kept whole on every shard) cannot do, found
//! in the SQL alone.
//!
//! Every shard runs the same statements on its copy of a reference table,
//! so the copies stay equal only when each statement gives every shard
//! the same result: a value a shard computes for itself (a serial or
//! identity number, `now()`, `random()`, `gen_random_uuid()`) or a read of
//! a sharded table (each shard holds other rows of it) would make them
//! drift apart. And a query over a sharded table and reference tables is
//! run on every shard and the results combined, which is right only when
//! each result row stems from one row of the sharded table: a reference
//! row that an outer join keeps without a sharded row, or a FROM that
//! reads no sharded table at all (it only appears in a subquery), would
//! come back once per shard.

use std::ops::ControlFlow;

use sqlparser::ast::{
    self, AlterColumnOperation, AlterTableOperation, ColumnDef, ColumnOption, DataType, Expr,
    JoinOperator, SetExpr, TableFactor, TableWithJoins, Visit,
};

use super::classify::tables_in;
use super::names::{fold, TableName};
use super::parse::Statement;

/// Functions whose value differs from shard to shard (each shard's own
/// clock, random source, sequence or transaction).
const PER_SHARD_FUNCTIONS: &[&str] = &[
    "now",
    "current_timestamp",
    "current_time",
    "localtimestamp",
    "localtime",
    "clock_timestamp",
    "statement_timestamp",
    "transaction_timestamp",
    "timeofday",
    "random",
    "random_normal",
    "gen_random_uuid",
    "uuidv4",
    "uuidv7",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "nextval",
    "setval",
    "currval",
    "lastval",
    "txid_current",
    "pg_current_xact_id",
    "pg_backend_pid",
    "inet_server_addr",
    "inet_server_port",
];

/// Every table `statement` names (CTE names excluded), the written one
/// included when it is a FROM item (UPDATE, DELETE).
pub fn tables_named(statement: &Statement) -> Vec<TableName> {
    crate::stack::with_tree(statement.depth, || tables_in(&statement.ast))
}

/// The first function `statement` calls whose value each shard computes
/// for itself (`now`, `random`, `nextval`, …), by name.
pub fn per_shard_function(statement: &Statement) -> Option<String> {
    crate::stack::with_tree(statement.depth, || per_shard_call(&statement.ast))
}

fn per_shard_call<V: Visit>(node: &V) -> Option<String> {
    let mut found = None;
    let _ = ast::visit_expressions(node, |e| {
        if let Expr::Function(f) = e {
            let name = f.name.0.last().and_then(|p| p.as_ident()).map(fold);
            if let Some(name) = name.filter(|n| PER_SHARD_FUNCTIONS.contains(&n.as_str())) {
                found = Some(name);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    found
}

/// A column that `CREATE TABLE` or `ALTER TABLE` gives a value each shard
/// would compute for itself — serial, identity, or a default calling such
/// a function — named as a feature.
pub fn per_shard_default(statement: &Statement) -> Option<String> {
    crate::stack::with_tree(statement.depth, || match &statement.ast {
        ast::Statement::CreateTable(ct) => ct.columns.iter().find_map(column_per_shard_value),
        ast::Statement::AlterTable(at) => at.operations.iter().find_map(|op| match op {
            AlterTableOperation::AddColumn { column_def, .. } => column_per_shard_value(column_def),
            AlterTableOperation::AlterColumn {
                column_name,
                op: AlterColumnOperation::SetDefault { value },
            } => per_shard_call(value)
                .map(|f| format!("a column default calling {f}() ({})", fold(column_name))),
            _ => None,
        }),
        _ => None,
    })
}

fn column_per_shard_value(c: &ColumnDef) -> Option<String> {
    let column = fold(&c.name);
    if let DataType::Custom(name, mods) = &c.data_type {
        let ty = name.0.last().and_then(|p| p.as_ident()).map(fold);
        let serial = ty.as_deref().is_some_and(|t| {
            matches!(
                t,
                "serial" | "serial2" | "serial4" | "serial8" | "smallserial" | "bigserial"
            )
        });
        if serial && mods.is_empty() {
            return Some(format!("a serial column ({column})"));
        }
    }
    c.options.iter().find_map(|o| match &o.option {
        ColumnOption::Generated {
            generation_expr: None,
            ..
        } => Some(format!("an identity column ({column})")),
        ColumnOption::Default(e) => {
            per_shard_call(e).map(|f| format!("a column default calling {f}() ({column})"))
        }
        _ => None,
    })
}

/// Why a query over the sharded table `sharded` and reference tables
/// cannot run on every shard with its results combined, or `None` when
/// it can: `sharded` must be read by the outermost FROM, and no outer
/// join may keep reference rows that match no row of it.
pub fn reference_join_problem(statement: &Statement, sharded: &TableName) -> Option<String> {
    crate::stack::with_tree(statement.depth, || {
        let ast::Statement::Query(query) = &statement.ast else {
            return None;
        };
        let SetExpr::Select(select) = query.body.as_ref() else {
            return None;
        };
        let mut anchored = false;
        for item in &select.from {
            if let Some(problem) = outer_join_problem(item, sharded) {
                return Some(problem);
            }
            anchored |= tables_in(item).contains(sharded);
        }
        (!anchored).then(|| {
            format!(
                "a query whose FROM reads reference tables only, with sharded table {sharded} in a subquery or WITH query,"
            )
        })
    })
}

/// An outer join in `item` (or nested in it) whose preserved side holds
/// reference rows only while `sharded` is on its other side.
fn outer_join_problem(item: &TableWithJoins, sharded: &TableName) -> Option<String> {
    crate::stack::guard(|| {
        let factors = std::iter::once(&item.relation).chain(item.joins.iter().map(|j| &j.relation));
        for factor in factors {
            if let TableFactor::NestedJoin {
                table_with_joins, ..
            } = factor
            {
                if let Some(problem) = outer_join_problem(table_with_joins, sharded) {
                    return Some(problem);
                }
            }
        }
        let holds = |f: &TableFactor| tables_in(f).contains(sharded);
        let mut left = holds(&item.relation);
        for join in &item.joins {
            let right = holds(&join.relation);
            let (kind, keeps_reference_rows) = match &join.join_operator {
                JoinOperator::Join(_) | JoinOperator::Inner(_) | JoinOperator::CrossJoin(_) => {
                    ("", false)
                }
                JoinOperator::Left(_) | JoinOperator::LeftOuter(_) => ("LEFT", right && !left),
                JoinOperator::Right(_) | JoinOperator::RightOuter(_) => ("RIGHT", left && !right),
                JoinOperator::FullOuter(_) => ("FULL", left || right),
                _ => ("this", left || right),
            };
            if keeps_reference_rows {
                return Some(format!(
                    "a {kind} JOIN that keeps reference table rows unmatched by sharded table {sharded}"
                ));
            }
            left |= right;
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_single;

    fn t(name: &str) -> TableName {
        TableName {
            schema: None,
            name: name.into(),
        }
    }

    fn join(sql: &str) -> Option<String> {
        reference_join_problem(&parse_single(sql).unwrap(), &t("e"))
    }

    #[test]
    fn joins_keep_each_sharded_row_once() {
        assert_eq!(join("SELECT * FROM e JOIN c ON e.cid = c.id WHERE c.name = 'x' ORDER BY e.v <=> '[1,2]' LIMIT 3"), None);
        assert_eq!(join("SELECT * FROM c, e WHERE e.cid = c.id"), None);
        assert_eq!(join("SELECT * FROM e LEFT JOIN c ON e.cid = c.id"), None);
        assert_eq!(join("SELECT * FROM c RIGHT JOIN e ON e.cid = c.id"), None);
        assert_eq!(
            join("SELECT * FROM c LEFT JOIN d ON c.x = d.x JOIN e ON e.cid = c.id"),
            None
        );
        assert_eq!(
            join("SELECT c.name, count(e.id) FROM c LEFT JOIN e ON e.cid = c.id GROUP BY c.name")
                .as_deref(),
            Some("a LEFT JOIN that keeps reference table rows unmatched by sharded table e")
        );
        assert!(join("SELECT * FROM e RIGHT JOIN c ON e.cid = c.id").is_some());
        assert!(join("SELECT * FROM e FULL JOIN c ON e.cid = c.id").is_some());
        assert!(
            join("SELECT * FROM d JOIN (c LEFT JOIN e ON e.cid = c.id) ON d.x = c.x").is_some()
        );
        assert!(join("SELECT * FROM c WHERE id IN (SELECT cid FROM e)").is_some());
        assert!(
            join("WITH x AS (SELECT * FROM e) SELECT * FROM c JOIN x ON x.cid = c.id").is_some()
        );
    }

    #[test]
    fn values_each_shard_computes_are_named() {
        let s = |sql: &str| parse_single(sql).unwrap();
        assert_eq!(
            per_shard_function(&s("UPDATE c SET at = now() WHERE id = 1")).as_deref(),
            Some("now")
        );
        assert_eq!(
            per_shard_function(&s("INSERT INTO c VALUES (1, lower('A'))")),
            None
        );
        assert_eq!(
            per_shard_default(&s("CREATE TABLE c (id bigserial PRIMARY KEY)")).as_deref(),
            Some("a serial column (id)")
        );
        assert_eq!(
            per_shard_default(&s(
                "CREATE TABLE c (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY)"
            ))
            .as_deref(),
            Some("an identity column (id)")
        );
        assert_eq!(
            per_shard_default(&s("CREATE TABLE c (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), at timestamptz DEFAULT now())")).as_deref(),
            Some("a column default calling gen_random_uuid() (id)")
        );
        assert_eq!(
            per_shard_default(&s(
                "CREATE TABLE c (id uuid PRIMARY KEY, n int DEFAULT 0, name text NOT NULL UNIQUE)"
            )),
            None
        );
        assert_eq!(
            per_shard_default(&s("ALTER TABLE c ADD COLUMN n serial")).as_deref(),
            Some("a serial column (n)")
        );
        assert_eq!(
            per_shard_default(&s("ALTER TABLE c ALTER COLUMN at SET DEFAULT now()")).as_deref(),
            Some("a column default calling now() (at)")
        );
        assert_eq!(
            per_shard_default(&s(
                "ALTER TABLE c ADD COLUMN n int DEFAULT 1, ALTER COLUMN m SET DEFAULT 2"
            )),
            None
        );
    }
}
