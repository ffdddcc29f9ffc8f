//! Constraints a sharded table cannot keep when its rows are spread over
//! shards: each shard checks a constraint against its own rows only, so a
//! FOREIGN KEY would miss referenced rows on other shards and a UNIQUE
//! constraint without the shard key would let equal values live on
//! different shards. (A UNIQUE constraint that includes the shard key is
//! kept exactly: equal values share a shard.)

use sqlparser::ast::{ColumnOption, Expr, Statement as Ast, TableConstraint};

use super::names::fold;
use super::parse::Statement;

/// The constraint of a `CREATE TABLE` that sharding would break, named
/// as a feature; `shard_key` is the configured key column, if any (else
/// the primary key's first column is the key).
pub fn unshardable_constraint(statement: &Statement, shard_key: Option<&str>) -> Option<String> {
    let Ast::CreateTable(ct) = &statement.ast else {
        return None;
    };
    let column_pk = ct.columns.iter().find_map(|c| {
        c.options
            .iter()
            .any(|o| matches!(o.option, ColumnOption::PrimaryKey(_)))
            .then(|| fold(&c.name))
    });
    let table_pk = ct.constraints.iter().find_map(|c| match c {
        TableConstraint::PrimaryKey(pk) => pk.columns.first().and_then(|c| match &c.column.expr {
            Expr::Identifier(i) => Some(fold(i)),
            _ => None,
        }),
        _ => None,
    });
    let key = shard_key.map(str::to_string).or(column_pk).or(table_pk);
    let unique_without_key = |columns: Vec<String>| {
        (key.is_none() || !columns.iter().any(|c| Some(c) == key.as_ref())).then(|| {
            format!(
                "a UNIQUE constraint without the shard key column ({})",
                columns.join(", ")
            )
        })
    };
    for c in &ct.columns {
        for o in &c.options {
            match &o.option {
                ColumnOption::ForeignKey(_) => return Some("a FOREIGN KEY constraint".into()),
                ColumnOption::Unique(_) => {
                    if let Some(refused) = unique_without_key(vec![fold(&c.name)]) {
                        return Some(refused);
                    }
                }
                _ => {}
            }
        }
    }
    for c in &ct.constraints {
        match c {
            TableConstraint::ForeignKey(_) => return Some("a FOREIGN KEY constraint".into()),
            TableConstraint::Unique(u) => {
                let columns = u
                    .columns
                    .iter()
                    .filter_map(|c| match &c.column.expr {
                        Expr::Identifier(i) => Some(fold(i)),
                        _ => None,
                    })
                    .collect();
                if let Some(refused) = unique_without_key(columns) {
                    return Some(refused);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(sql: &str, key: Option<&str>) -> Option<String> {
        unshardable_constraint(&crate::sql::parse_single(sql).unwrap(), key)
    }

    #[test]
    fn foreign_keys_and_unique_constraints_without_the_key_are_named() {
        assert_eq!(
            refused(
                "CREATE TABLE c (uuid uuid PRIMARY KEY, name text UNIQUE)",
                None
            )
            .as_deref(),
            Some("a UNIQUE constraint without the shard key column (name)")
        );
        assert_eq!(
            refused("CREATE TABLE e (id text, c uuid, PRIMARY KEY (id), FOREIGN KEY (c) REFERENCES p (uuid))", None).as_deref(),
            Some("a FOREIGN KEY constraint")
        );
        assert_eq!(
            refused(
                "CREATE TABLE t (id int PRIMARY KEY, a int, UNIQUE (a, id))",
                None
            ),
            None
        );
        assert_eq!(
            refused(
                "CREATE TABLE t (id int PRIMARY KEY, a int UNIQUE)",
                Some("a")
            ),
            None
        );
        assert_eq!(
            refused("CREATE TABLE t (id int PRIMARY KEY, a int)", None),
            None
        );
    }
}
