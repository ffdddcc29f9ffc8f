//! The catalog queries psql 15 sends for `\dt` and `\d table`, recognised
//! by their text (psql's `-E` shows them) and answered from storage's
//! table definitions. Other `pg_catalog` queries psql sends on the way
//! (policies, statistics, publications, …) get an empty result, which
//! psql shows as "none". Its "Foreign-key constraints:" query runs as an
//! ordinary query over `pg_constraint`; "Referenced by:" (which asks
//! `pg_partition_ancestors`) is answered here. The proxy's query for a
//! table's columns and primary key ([`shard_key`]) is answered the same
//! way.

use super::expr::like;
use super::pg_catalog::{self, index_definition, primary_key_definition, unique_definition};
use super::select::{Column, Relation};
use crate::shard::storage::{Table, Tables};
use crate::wire::types::oid;
use crate::wire::{PgError, Value};

fn text(s: &str) -> Option<Value> {
    Some(Value::Text(s.to_string()))
}

fn columns(cols: &[(&str, u32)]) -> Vec<Column> {
    cols.iter()
        .map(|(n, t)| Column {
            name: n.to_string(),
            ty: (*t, -1),
        })
        .collect()
}

/// The relation-name pattern of psql's `OPERATOR(pg_catalog.~) '^(…)$'`,
/// as a LIKE pattern.
fn name_pattern(sql: &str) -> Option<String> {
    let start = sql.find("'^(")? + 3;
    let end = start + sql[start..].find(")$'")?;
    Some(sql[start..end].replace(".*", "%").replace('.', "_"))
}

/// The number after `key '` (psql quotes the oids it asks about).
fn quoted_oid(sql: &str, key: &str) -> Option<u32> {
    let start = sql.find(key)? + key.len();
    sql[start..].split('\'').next()?.parse().ok()
}

fn tables_named<'a>(tables: &'a Tables, sql: &str) -> Vec<&'a Table> {
    let pattern = name_pattern(sql);
    let mut out: Vec<&Table> = tables
        .iter()
        .filter(|t| pattern.as_ref().is_none_or(|p| like(&t.def().name, p)))
        .collect();
    out.sort_by(|a, b| a.def().name.cmp(&b.def().name));
    out
}

/// `\dt [pattern]`.
fn list_tables(sql: &str, tables: &Tables, user: &str) -> Relation {
    Relation {
        columns: columns(&[
            ("Schema", oid::NAME),
            ("Name", oid::NAME),
            ("Type", oid::TEXT),
            ("Owner", oid::NAME),
        ]),
        rows: tables_named(tables, sql)
            .into_iter()
            .map(|t| {
                vec![
                    text("public"),
                    text(&t.def().name),
                    text("table"),
                    text(user),
                ]
            })
            .collect(),
    }
}

/// `\d name`, first query: the matching relations' oids.
fn find_relations(sql: &str, tables: &Tables) -> Relation {
    Relation {
        columns: columns(&[
            ("oid", oid::OID),
            ("nspname", oid::NAME),
            ("relname", oid::NAME),
        ]),
        rows: tables_named(tables, sql)
            .into_iter()
            .map(|t| {
                vec![
                    Some(Value::Oid(t.def().oid)),
                    text("public"),
                    text(&t.def().name),
                ]
            })
            .collect(),
    }
}

/// Whether `table` has FOREIGN KEYs or is referenced by one (PostgreSQL
/// gives such a table triggers, and psql then asks for both lists).
fn has_foreign_keys(table: &Table, tables: &Tables) -> bool {
    let name = &table.def().name;
    !table.def().constraints.foreign_keys.is_empty()
        || tables.iter().any(|t| {
            t.def()
                .constraints
                .foreign_keys
                .iter()
                .any(|f| &f.table == name)
        })
}

/// `\d name`: the FOREIGN KEYs referencing `table` ("Referenced by:"),
/// by constraint name.
fn referenced_by(table: &Table, tables: &Tables) -> Relation {
    let mut found: Vec<(String, &str, String)> = tables
        .iter()
        .flat_map(|child| {
            pg_catalog::constraints(child)
                .into_iter()
                .filter(|c| c.foreign.is_some_and(|f| f.table == table.def().name))
                .map(move |c| {
                    let definition = pg_catalog::constraint_definition(child, &c, tables);
                    (c.name, child.def().name.as_str(), definition)
                })
        })
        .collect();
    found.sort();
    let rows = found
        .into_iter()
        .map(|(name, child, definition)| vec![text(&name), text(child), text(&definition)])
        .collect();
    Relation {
        columns: columns(&[
            ("conname", oid::NAME),
            ("ontable", oid::TEXT),
            ("condef", oid::TEXT),
        ]),
        rows,
    }
}

/// `\d name`, second query: the relation's kind and flags.
fn relation_info(table: &Table, tables: &Tables) -> Relation {
    let cols = [
        ("relchecks", oid::INT2),
        ("relkind", oid::CHAR),
        ("relhasindex", oid::BOOL),
        ("relhasrules", oid::BOOL),
        ("relhastriggers", oid::BOOL),
        ("relrowsecurity", oid::BOOL),
        ("relforcerowsecurity", oid::BOOL),
        ("relhasoids", oid::BOOL),
        ("relispartition", oid::BOOL),
        ("?column?", oid::TEXT),
        ("reltablespace", oid::OID),
        ("reloftype", oid::TEXT),
        ("relpersistence", oid::CHAR),
        ("relreplident", oid::CHAR),
        ("amname", oid::NAME),
    ];
    let f = Some(Value::Bool(false));
    let has_index = !pg_catalog::indexes(table).is_empty();
    Relation {
        columns: columns(&cols),
        rows: vec![vec![
            Some(Value::Int2(0)),
            Some(Value::Char(b'r')),
            Some(Value::Bool(has_index)),
            f.clone(),
            Some(Value::Bool(has_foreign_keys(table, tables))),
            f.clone(),
            f.clone(),
            f.clone(),
            f,
            text(""),
            Some(Value::Oid(0)),
            text(""),
            Some(Value::Char(b'p')),
            Some(Value::Char(b'd')),
            text("heap"),
        ]],
    }
}

/// `\d name`: the columns.
fn attributes(table: &Table) -> Relation {
    let cols = [
        ("attname", oid::NAME),
        ("format_type", oid::TEXT),
        ("pg_get_expr", oid::TEXT),
        ("attnotnull", oid::BOOL),
        ("attcollation", oid::NAME),
        ("attidentity", oid::CHAR),
        ("attgenerated", oid::CHAR),
    ];
    let def = table.def();
    Relation {
        columns: columns(&cols),
        rows: def
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                vec![
                    text(&c.name),
                    text(&c.ty.sql_name()),
                    c.shown_default().and_then(text),
                    Some(Value::Bool(c.not_null || def.primary_key.contains(&i))),
                    None,
                    text(if c.is_identity() { "d" } else { "" }),
                    text(""),
                ]
            })
            .collect(),
    }
}

/// `\d name`: the indexes, primary key first.
fn indexes(table: &Table) -> Relation {
    let cols = [
        ("relname", oid::NAME),
        ("indisprimary", oid::BOOL),
        ("indisunique", oid::BOOL),
        ("indisclustered", oid::BOOL),
        ("indisvalid", oid::BOOL),
        ("pg_get_indexdef", oid::TEXT),
        ("pg_get_constraintdef", oid::TEXT),
        ("contype", oid::CHAR),
        ("condeferrable", oid::BOOL),
        ("condeferred", oid::BOOL),
        ("indisreplident", oid::BOOL),
        ("reltablespace", oid::OID),
    ];
    let b = |v: bool| Some(Value::Bool(v));
    let rows = pg_catalog::indexes(table)
        .into_iter()
        .map(|i| {
            let constraint = match (i.primary, i.unique) {
                (true, _) => Some((primary_key_definition(table), b'p')),
                (false, true) => Some((unique_definition(table, &i.columns), b'u')),
                _ => None,
            };
            vec![
                text(&i.name),
                b(i.primary),
                b(i.unique),
                b(false),
                b(true),
                text(&index_definition(table, &i)),
                constraint.as_ref().and_then(|(d, _)| text(d)),
                constraint.as_ref().map(|&(_, kind)| Value::Char(kind)),
                i.unique.then_some(Value::Bool(false)),
                i.unique.then_some(Value::Bool(false)),
                b(false),
                Some(Value::Oid(0)),
            ]
        })
        .collect();
    Relation {
        columns: columns(&cols),
        rows,
    }
}

/// The proxy's `pg_attribute ⟕ pg_index` query for the table named in
/// `attrelid = '…'::regclass`: each column and whether it leads the
/// primary key.
fn shard_key(sql: &str, tables: &Tables) -> Relation {
    let start = sql.find("attrelid = '").map_or(0, |i| i + 12);
    let name = sql[start..].split("'::regclass").next().unwrap_or("");
    let name = name
        .strip_prefix("public.")
        .unwrap_or(name)
        .trim_matches('"');
    let Some(table) = tables.get(name) else {
        return Relation::default();
    };
    let def = table.def();
    Relation {
        columns: columns(&[("attname", oid::TEXT), ("coalesce", oid::BOOL)]),
        rows: def
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let leads = def.primary_key.first() == Some(&i);
                vec![text(&c.name), Some(Value::Bool(leads))]
            })
            .collect(),
    }
}

/// Whether `sql` can be one of the catalog queries [`answer`] knows
/// (checked before taking the tables' lock).
pub fn may_answer(sql: &str) -> bool {
    sql.contains("FROM pg_catalog.")
}

/// Answers one of psql's catalog queries from `tables`, or `None` when
/// `sql` is not one.
pub fn answer(sql: &str, tables: &Tables, user: &str) -> Result<Option<Relation>, PgError> {
    if !may_answer(sql) {
        return Ok(None);
    }
    let by_oid = |key: &str| quoted_oid(sql, key).and_then(|o| tables.by_oid(o));
    let rel = if sql.contains("as \"Owner\"") && sql.contains("c.relkind IN (") {
        list_tables(sql, tables, user)
    } else if sql.starts_with("SELECT c.oid,") && sql.contains("OPERATOR(pg_catalog.~)") {
        find_relations(sql, tables)
    } else if sql.starts_with("SELECT c.relchecks") {
        match by_oid("c.oid = '") {
            Some(t) => relation_info(t, tables),
            None => Relation::default(),
        }
    } else if sql.contains("pg_catalog.pg_partition_ancestors('") && sql.contains("contype = 'f'") {
        match by_oid("pg_partition_ancestors('") {
            Some(t) => referenced_by(t, tables),
            None => Relation::default(),
        }
    } else if sql.contains("i.indisprimary") && sql.contains("::regclass") {
        shard_key(sql, tables)
    } else if sql.contains("FROM pg_catalog.pg_attribute a") {
        match by_oid("a.attrelid = '") {
            Some(t) => attributes(t),
            None => Relation::default(),
        }
    } else if sql.contains("pg_catalog.pg_class c2, pg_catalog.pg_index i") {
        match by_oid("c.oid = '") {
            Some(t) => indexes(t),
            None => Relation::default(),
        }
    } else {
        return Ok(None);
    };
    Ok(Some(rel))
}
