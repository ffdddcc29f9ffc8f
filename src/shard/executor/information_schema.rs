//! `information_schema`'s views, generated from storage's table
//! definitions like [`super::pg_catalog`]'s relations. Their text columns
//! are `name` (PostgreSQL's `sql_identifier` domain) or `varchar` (its
//! `character_data` and `yes_or_no` domains), as PostgreSQL sends them.

use super::pg_catalog::{i4, sorted_tables, text, Builder};
use super::select::Relation;
use crate::shard::storage::Tables;
use crate::wire::types::{self, oid};
use crate::wire::Session;

/// The view `information_schema.name`, or `None` when there is none.
pub fn relation(name: &str, tables: &Tables, session: &Session) -> Option<Relation> {
    let db = session.database.as_str();
    Some(match name {
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
                        c.shown_default().and_then(text),
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
        _ => return None,
    })
}
