//! Constraints a table cannot keep when rows are spread over shards:
//! each shard checks a constraint against its own rows only, so a
//! FOREIGN KEY to a sharded table would miss referenced rows on other
//! shards and a UNIQUE constraint of a sharded table without the shard
//! key would let equal values live on different shards. (A UNIQUE
//! constraint that includes the shard key is kept exactly: equal values
//! share a shard.) A reference table is whole on every shard, so its
//! UNIQUE constraints and FOREIGN KEYs to it hold on each shard alone;
//! a FOREIGN KEY from it to a sharded table does not. A table without a
//! shard key has its rows spread over the shards, so a PRIMARY KEY added
//! to it later would find them on shards other than its values' own.

use sqlparser::ast::{
    AlterTableOperation, ColumnDef, ColumnOption, Expr, ObjectName, Statement as Ast,
    TableConstraint,
};

use super::names::{fold, TableName};
use super::parse::Statement;

/// The constraint of a `CREATE TABLE`, `ALTER TABLE … ADD` or `CREATE
/// UNIQUE INDEX` that sharding would break, named as a feature;
/// `shard_key` is the table's key column, if any (for CREATE TABLE: the
/// configured one, else the primary key's first column is the key);
/// `is_reference` tells the reference tables (kept whole on every shard).
pub fn unshardable_constraint(
    statement: &Statement,
    shard_key: Option<&str>,
    is_reference: &dyn Fn(&TableName) -> bool,
) -> Option<String> {
    let (name, columns, constraints, key) = match &statement.ast {
        Ast::CreateTable(ct) => {
            let column_pk = ct.columns.iter().find_map(|c| {
                c.options
                    .iter()
                    .any(|o| matches!(o.option, ColumnOption::PrimaryKey(_)))
                    .then(|| fold(&c.name))
            });
            let table_pk = ct.constraints.iter().find_map(|c| match c {
                TableConstraint::PrimaryKey(pk) => {
                    pk.columns.first().and_then(|c| match &c.column.expr {
                        Expr::Identifier(i) => Some(fold(i)),
                        _ => None,
                    })
                }
                _ => None,
            });
            let key = shard_key.map(str::to_string).or(column_pk).or(table_pk);
            (
                &ct.name,
                ct.columns.iter().collect(),
                ct.constraints.iter().collect(),
                key,
            )
        }
        Ast::AlterTable(at) => {
            let mut columns: Vec<&ColumnDef> = Vec::new();
            let mut constraints = Vec::new();
            for op in &at.operations {
                match op {
                    AlterTableOperation::AddColumn { column_def, .. } => columns.push(column_def),
                    AlterTableOperation::AddConstraint { constraint, .. } => {
                        constraints.push(constraint)
                    }
                    _ => {}
                }
            }
            (
                &at.name,
                columns,
                constraints,
                shard_key.map(str::to_string),
            )
        }
        Ast::CreateIndex(ci) if ci.unique => {
            let table = TableName::from_object_name(&ci.table_name)?;
            let columns = ci
                .columns
                .iter()
                .map(|c| match &c.column.expr {
                    Expr::Identifier(i) => fold(i),
                    other => other.to_string(),
                })
                .collect();
            return Refusal {
                reference: is_reference(&table),
                table,
                key: shard_key.map(str::to_string),
                is_reference,
            }
            .unique(columns);
        }
        _ => return None,
    };
    let table = TableName::from_object_name(name)?;
    Refusal {
        reference: is_reference(&table),
        table,
        key,
        is_reference,
    }
    .first(&columns, &constraints)
}

/// What decides whether a table's constraints hold across shards.
struct Refusal<'a> {
    table: TableName,
    reference: bool,
    key: Option<String>,
    is_reference: &'a dyn Fn(&TableName) -> bool,
}

impl Refusal<'_> {
    /// The first refused constraint among `columns`' and `constraints`.
    fn first(&self, columns: &[&ColumnDef], constraints: &[&TableConstraint]) -> Option<String> {
        let in_columns = columns.iter().flat_map(|c| {
            c.options.iter().filter_map(|o| match &o.option {
                ColumnOption::ForeignKey(fk) => self.foreign_key(&fk.foreign_table),
                ColumnOption::Unique(_) => self.unique(vec![fold(&c.name)]),
                ColumnOption::PrimaryKey(_) => self.primary_key(),
                _ => None,
            })
        });
        let in_constraints = constraints.iter().filter_map(|c| match c {
            TableConstraint::ForeignKey(fk) => self.foreign_key(&fk.foreign_table),
            TableConstraint::Unique(u) => self.unique(
                u.columns
                    .iter()
                    .filter_map(|c| match &c.column.expr {
                        Expr::Identifier(i) => Some(fold(i)),
                        _ => None,
                    })
                    .collect(),
            ),
            TableConstraint::PrimaryKey(_) => self.primary_key(),
            _ => None,
        });
        in_columns.chain(in_constraints).next()
    }

    fn foreign_key(&self, target: &ObjectName) -> Option<String> {
        let target = TableName::from_object_name(target)?;
        let created = &self.table;
        match (self.reference, (self.is_reference)(&target)) {
            (_, true) => None,
            (true, false) => Some(format!(
                "a FOREIGN KEY from reference table {created} to sharded table {target}"
            )),
            (false, false) => Some(format!(
                "a FOREIGN KEY constraint to sharded table {target}"
            )),
        }
    }

    /// A primary key is the shard key of a table created with it; one
    /// added to a table without a shard key comes after its rows were
    /// spread.
    fn primary_key(&self) -> Option<String> {
        (self.key.is_none() && !self.reference).then(|| {
            format!(
                "a PRIMARY KEY added to table {} (without a shard key, its rows are spread over the shards)",
                self.table
            )
        })
    }

    fn unique(&self, columns: Vec<String>) -> Option<String> {
        let kept = self.reference || self.key.as_ref().is_some_and(|k| columns.contains(k));
        (!kept).then(|| {
            format!(
                "a UNIQUE constraint without the shard key column ({})",
                columns.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(sql: &str, key: Option<&str>) -> Option<String> {
        let reference = |t: &TableName| t.name == "r";
        unshardable_constraint(&crate::sql::parse_single(sql).unwrap(), key, &reference)
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
            Some("a FOREIGN KEY constraint to sharded table p")
        );
        assert_eq!(
            refused("CREATE TABLE e (id text PRIMARY KEY, c uuid REFERENCES r (uuid) ON DELETE CASCADE)", None),
            None
        );
        assert_eq!(
            refused(
                "CREATE TABLE r (uuid uuid PRIMARY KEY, name text UNIQUE, up uuid REFERENCES r)",
                None
            ),
            None
        );
        assert_eq!(
            refused(
                "CREATE TABLE r (uuid uuid PRIMARY KEY, e text REFERENCES e (id))",
                None
            )
            .as_deref(),
            Some("a FOREIGN KEY from reference table r to sharded table e")
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
        assert_eq!(
            refused(
                "ALTER TABLE e ADD FOREIGN KEY (c) REFERENCES p (uuid)",
                Some("id")
            )
            .as_deref(),
            Some("a FOREIGN KEY constraint to sharded table p")
        );
        assert_eq!(
            refused(
                "ALTER TABLE e ADD COLUMN r uuid REFERENCES r, ADD UNIQUE (id, c)",
                Some("id")
            ),
            None
        );
        assert_eq!(
            refused("ALTER TABLE e ADD CONSTRAINT u UNIQUE (c)", Some("id")).as_deref(),
            Some("a UNIQUE constraint without the shard key column (c)")
        );
        assert_eq!(
            refused("ALTER TABLE r ADD COLUMN n text UNIQUE", None),
            None
        );
    }

    #[test]
    fn a_primary_key_added_to_a_spread_table_is_named() {
        assert_eq!(
            refused("ALTER TABLE t ADD PRIMARY KEY (id)", None).as_deref(),
            Some("a PRIMARY KEY added to table t (without a shard key, its rows are spread over the shards)")
        );
        assert!(refused("ALTER TABLE t ADD COLUMN id serial PRIMARY KEY", None).is_some());
        assert_eq!(
            refused("ALTER TABLE t ADD PRIMARY KEY (id)", Some("id")),
            None
        );
        assert_eq!(refused("ALTER TABLE r ADD PRIMARY KEY (id)", None), None);
        assert_eq!(refused("CREATE TABLE t (id int PRIMARY KEY)", None), None);
    }

    #[test]
    fn a_unique_index_without_the_key_is_named() {
        assert_eq!(
            refused("CREATE UNIQUE INDEX ON t (val)", None).as_deref(),
            Some("a UNIQUE constraint without the shard key column (val)")
        );
        assert_eq!(
            refused("CREATE UNIQUE INDEX u ON t (lower(name), id)", Some("id")),
            None
        );
        assert!(refused("CREATE UNIQUE INDEX ON t (lower(name))", Some("id")).is_some());
        assert_eq!(refused("CREATE UNIQUE INDEX ON r (val)", None), None);
        assert_eq!(refused("CREATE INDEX ON t (val)", None), None);
    }
}
