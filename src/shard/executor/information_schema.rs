//! `information_schema`'s views, generated from storage's table
//! definitions like [`super::pg_catalog`]'s relations. Their text columns
//! are `name` (PostgreSQL's `sql_identifier` domain) or `varchar` (its
//! `character_data` and `yes_or_no` domains), as PostgreSQL sends them.

use super::pg_catalog::{self, constraints, i4, sorted_tables, text, Builder, ConstraintInfo};
use super::select::Relation;
use crate::shard::datum::Datum;
use crate::shard::storage::{ForeignKey, OnDelete, OnUpdate, TableDef, Tables};
use crate::wire::types::{self, oid};
use crate::wire::Session;

/// The view `information_schema.name`, or `None` when there is none.
pub fn relation(name: &str, tables: &Tables, session: &Session) -> Option<Relation> {
    let db = session.database.as_str();
    Some(match name {
        "sequences" => sequences(tables, db),
        "schemata" => {
            let mut r = Builder::new(&[
                ("catalog_name", oid::NAME),
                ("schema_name", oid::NAME),
                ("schema_owner", oid::NAME),
            ]);
            for s in ["pg_catalog", "public", "information_schema"] {
                r.row(vec![text(db), text(s), text(&session.user)]);
            }
            r.done()
        }
        "tables" => {
            let mut r = Builder::new(&[
                ("table_catalog", oid::NAME),
                ("table_schema", oid::NAME),
                ("table_name", oid::NAME),
                ("table_type", oid::VARCHAR),
                ("is_insertable_into", oid::VARCHAR),
                ("is_typed", oid::VARCHAR),
            ]);
            for t in sorted_tables(tables) {
                r.row(vec![
                    text(db),
                    text("public"),
                    text(&t.def().name),
                    text("BASE TABLE"),
                    text("YES"),
                    text("NO"),
                ]);
            }
            r.done()
        }
        "columns" => {
            let mut r = Builder::new(&[
                ("table_catalog", oid::NAME),
                ("table_schema", oid::NAME),
                ("table_name", oid::NAME),
                ("column_name", oid::NAME),
                ("ordinal_position", oid::INT4),
                ("column_default", oid::VARCHAR),
                ("is_nullable", oid::VARCHAR),
                ("data_type", oid::VARCHAR),
                ("character_maximum_length", oid::INT4),
                ("udt_schema", oid::NAME),
                ("udt_name", oid::NAME),
                ("is_identity", oid::VARCHAR),
            ]);
            for t in sorted_tables(tables) {
                let def = t.def();
                for (i, c) in def.columns.iter().enumerate() {
                    let type_oid = super::types::type_oid(c.ty);
                    let ty = types::by_oid(type_oid);
                    let user_defined = ty.is_some_and(|t| t.schema == "public");
                    let data_type = if user_defined {
                        "USER-DEFINED".to_string()
                    } else {
                        let full = c.ty.sql_name();
                        full.split('(').next().unwrap_or_default().to_string()
                    };
                    let max_len = match c.ty {
                        crate::shard::storage::ColumnType::Varchar(Some(n)) => i4(n as i32),
                        _ => None,
                    };
                    let nullable = !(c.not_null || def.primary_key.contains(&i));
                    r.row(vec![
                        text(db),
                        text("public"),
                        text(&def.name),
                        text(&c.name),
                        i4(i as i32 + 1),
                        pg_catalog::deparsed_default(c).as_deref().and_then(text),
                        text(if nullable { "YES" } else { "NO" }),
                        text(&data_type),
                        max_len,
                        text(ty.map_or("pg_catalog", |t| t.schema)),
                        text(ty.map_or("", |t| t.name)),
                        text(if c.is_identity() { "YES" } else { "NO" }),
                    ]);
                }
            }
            r.done()
        }
        "table_constraints" => table_constraints(tables, db),
        "key_column_usage" => key_column_usage(tables, db),
        "referential_constraints" => referential_constraints(tables, db),
        "constraint_column_usage" => constraint_column_usage(tables, db),
        "check_constraints" => check_constraints(tables, db),
        _ => return None,
    })
}

/// The name PostgreSQL gives a NOT NULL column's constraint.
fn not_null_name(table: &TableDef, column: usize) -> String {
    format!("{}_{}_not_null", table.name, table.columns[column].name)
}

/// The positions of `table`'s NOT NULL columns (its primary key's
/// included), each of which has a NOT NULL constraint.
fn not_null_columns(table: &TableDef) -> impl Iterator<Item = usize> + '_ {
    (0..table.columns.len()).filter(|i| table.columns[*i].not_null || table.primary_key.contains(i))
}

/// `constraint_catalog`, `constraint_schema`, `constraint_name`.
fn constraint_key(db: &str, name: &str) -> Vec<Datum> {
    vec![text(db), text("public"), text(name)]
}

const CONSTRAINT_KEY: [(&str, u32); 3] = [
    ("constraint_catalog", oid::NAME),
    ("constraint_schema", oid::NAME),
    ("constraint_name", oid::NAME),
];

const TABLE_KEY: [(&str, u32); 3] = [
    ("table_catalog", oid::NAME),
    ("table_schema", oid::NAME),
    ("table_name", oid::NAME),
];

/// `table_constraints`: primary keys, UNIQUE, FOREIGN KEY and (as
/// PostgreSQL 18 shows NOT NULL) CHECK constraints.
fn table_constraints(tables: &Tables, db: &str) -> Relation {
    let mut spec = CONSTRAINT_KEY.to_vec();
    spec.extend(TABLE_KEY);
    spec.extend([
        ("constraint_type", oid::VARCHAR),
        ("is_deferrable", oid::VARCHAR),
        ("initially_deferred", oid::VARCHAR),
        ("enforced", oid::VARCHAR),
        ("nulls_distinct", oid::VARCHAR),
    ]);
    let mut r = Builder::new(&spec);
    for t in sorted_tables(tables) {
        let def = t.def();
        let keys = constraints(t).into_iter().map(|c| {
            let kind = match c.kind {
                b'p' => "PRIMARY KEY",
                b'u' => "UNIQUE",
                _ => "FOREIGN KEY",
            };
            (c.name, kind, (c.kind == b'u').then_some("YES"))
        });
        let not_null =
            not_null_columns(def).map(|i| (not_null_name(def, i), "CHECK", None::<&str>));
        for (name, kind, nulls_distinct) in keys.chain(not_null) {
            let mut row = constraint_key(db, &name);
            row.extend([text(db), text("public"), text(&def.name), text(kind)]);
            row.extend([text("NO"), text("NO"), text("YES")]);
            row.push(nulls_distinct.and_then(text));
            r.row(row);
        }
    }
    r.done()
}

/// `key_column_usage`: each column of a primary key, UNIQUE or FOREIGN
/// KEY constraint; a foreign key's column also names its position in
/// the referenced key.
fn key_column_usage(tables: &Tables, db: &str) -> Relation {
    let mut spec = CONSTRAINT_KEY.to_vec();
    spec.extend(TABLE_KEY);
    spec.extend([
        ("column_name", oid::NAME),
        ("ordinal_position", oid::INT4),
        ("position_in_unique_constraint", oid::INT4),
    ]);
    let mut r = Builder::new(&spec);
    for t in sorted_tables(tables) {
        let def = t.def();
        for c in constraints(t) {
            let key = c
                .foreign
                .and_then(|fk| Some((fk, referenced_key(fk, tables)?)));
            for (i, &column) in c.columns.iter().enumerate() {
                let mut row = constraint_key(db, &c.name);
                row.extend([text(db), text("public"), text(&def.name)]);
                row.push(text(&def.columns[column].name));
                row.push(i4(i as i32 + 1));
                row.push(key.as_ref().and_then(|(fk, key)| {
                    let at = key.columns.iter().position(|&k| k == fk.referenced[i])?;
                    i4(at as i32 + 1)
                }));
                r.row(row);
            }
        }
    }
    r.done()
}

/// The primary key or UNIQUE constraint of the table `fk` references
/// whose columns it names (in any order).
fn referenced_key<'a>(fk: &ForeignKey, tables: &'a Tables) -> Option<ConstraintInfo<'a>> {
    let parent = tables.get(&fk.table)?;
    let mut wanted = fk.referenced.clone();
    wanted.sort_unstable();
    constraints(parent).into_iter().find(|c| {
        let mut columns = c.columns.clone();
        columns.sort_unstable();
        c.kind != b'f' && columns == wanted
    })
}

/// `referential_constraints`: each FOREIGN KEY with the key it
/// references and its actions.
fn referential_constraints(tables: &Tables, db: &str) -> Relation {
    let mut spec = CONSTRAINT_KEY.to_vec();
    spec.extend([
        ("unique_constraint_catalog", oid::NAME),
        ("unique_constraint_schema", oid::NAME),
        ("unique_constraint_name", oid::NAME),
        ("match_option", oid::VARCHAR),
        ("update_rule", oid::VARCHAR),
        ("delete_rule", oid::VARCHAR),
    ]);
    let mut r = Builder::new(&spec);
    for t in sorted_tables(tables) {
        for c in constraints(t) {
            let Some(fk) = c.foreign else { continue };
            let update = match fk.on_update {
                OnUpdate::NoAction => "NO ACTION",
                OnUpdate::Restrict => "RESTRICT",
            };
            let delete = match fk.on_delete {
                OnDelete::NoAction => "NO ACTION",
                OnDelete::Restrict => "RESTRICT",
                OnDelete::Cascade => "CASCADE",
                OnDelete::SetNull => "SET NULL",
            };
            let mut row = constraint_key(db, &c.name);
            row.extend([text(db), text("public")]);
            row.push(referenced_key(fk, tables).and_then(|k| text(&k.name)));
            row.extend([text("NONE"), text(update), text(delete)]);
            r.row(row);
        }
    }
    r.done()
}

/// `constraint_column_usage`: the columns each constraint uses — its
/// own for a key or NOT NULL, the referenced ones for a FOREIGN KEY.
fn constraint_column_usage(tables: &Tables, db: &str) -> Relation {
    let mut spec = TABLE_KEY.to_vec();
    spec.push(("column_name", oid::NAME));
    spec.extend(CONSTRAINT_KEY);
    let mut r = Builder::new(&spec);
    let mut row = |table: &TableDef, column: usize, name: &str| {
        let mut row = vec![text(db), text("public"), text(&table.name)];
        row.push(text(&table.columns[column].name));
        row.extend(constraint_key(db, name));
        r.row(row);
    };
    for t in sorted_tables(tables) {
        let def = t.def();
        for c in constraints(t) {
            match c.foreign.and_then(|fk| Some((fk, tables.get(&fk.table)?))) {
                Some((fk, parent)) => {
                    for &column in &fk.referenced {
                        row(parent.def(), column, &c.name);
                    }
                }
                None if c.foreign.is_none() => {
                    for &column in &c.columns {
                        row(def, column, &c.name);
                    }
                }
                None => {}
            }
        }
        for column in not_null_columns(def) {
            row(def, column, &not_null_name(def, column));
        }
    }
    r.done()
}

/// `check_constraints`: the NOT NULL constraints, as PostgreSQL 18
/// shows them (the shard has no other CHECK constraints).
fn check_constraints(tables: &Tables, db: &str) -> Relation {
    let mut spec = CONSTRAINT_KEY.to_vec();
    spec.push(("check_clause", oid::VARCHAR));
    let mut r = Builder::new(&spec);
    for t in sorted_tables(tables) {
        let def = t.def();
        for column in not_null_columns(def) {
            let mut row = constraint_key(db, &not_null_name(def, column));
            // PostgreSQL shows the name as it is, unquoted.
            row.push(text(&format!("{} IS NOT NULL", def.columns[column].name)));
            r.row(row);
        }
    }
    r.done()
}

/// `information_schema.sequences`: every sequence's options, as text.
fn sequences(tables: &Tables, db: &str) -> Relation {
    let mut r = Builder::new(&[
        ("sequence_catalog", oid::NAME),
        ("sequence_schema", oid::NAME),
        ("sequence_name", oid::NAME),
        ("data_type", oid::VARCHAR),
        ("numeric_precision", oid::INT4),
        ("numeric_precision_radix", oid::INT4),
        ("numeric_scale", oid::INT4),
        ("start_value", oid::VARCHAR),
        ("minimum_value", oid::VARCHAR),
        ("maximum_value", oid::VARCHAR),
        ("increment", oid::VARCHAR),
        ("cycle_option", oid::VARCHAR),
    ]);
    for s in super::sequences::all(tables) {
        let p = s.spec;
        let bits = match p.type_oid() {
            oid::INT2 => 16,
            oid::INT4 => 32,
            _ => 64,
        };
        r.row(vec![
            text(db),
            text("public"),
            text(&s.name),
            text(&p.ty.sql_name()),
            i4(bits),
            i4(2),
            i4(0),
            text(&p.start.to_string()),
            text(&p.min.to_string()),
            text(&p.max.to_string()),
            text(&p.increment.to_string()),
            text(if p.cycle { "YES" } else { "NO" }),
        ]);
    }
    r.done()
}
