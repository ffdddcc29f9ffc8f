//! The `pg_type` rows drivers look up for OIDs they do not know.
//! tokio-postgres sends one fixed query (with a fallback without
//! `pg_range`) the first time it meets an OID such as `vector`'s; the
//! executor recognises it with [`is_typeinfo_query`] and answers with
//! [`typeinfo_columns`] and [`typeinfo_row`].

use super::backend::FieldDescription;
use super::types::{self, oid};
use super::value::Value;

/// True for tokio-postgres' type-lookup queries (`… FROM pg_catalog.pg_type
/// t … WHERE t.oid = $1`).
pub fn is_typeinfo_query(sql: &str) -> bool {
    // Every Parse asks: other texts are turned away by how they start,
    // without a scan of the whole text or a copy.
    let rest = sql.trim_start().strip_prefix("SELECT").map(str::trim_start);
    if !rest.is_some_and(|r| r.starts_with("t.typname,")) {
        return false;
    }
    let squashed: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    squashed.starts_with("SELECT t.typname, t.typtype, t.typelem,")
        && squashed.contains("FROM pg_catalog.pg_type t")
        && squashed.ends_with("WHERE t.oid = $1")
}

/// Parameter types of the type-lookup query.
pub const TYPEINFO_PARAMS: [u32; 1] = [oid::OID];

/// Result columns of the type-lookup query: typname, typtype, typelem,
/// rngsubtype, typbasetype, nspname, typrelid.
pub fn typeinfo_columns() -> Vec<FieldDescription> {
    FieldDescription::builtins(&[
        ("typname", oid::NAME),
        ("typtype", oid::CHAR),
        ("typelem", oid::OID),
        ("rngsubtype", oid::OID),
        ("typbasetype", oid::OID),
        ("nspname", oid::NAME),
        ("typrelid", oid::OID),
    ])
}

/// The row for `type_oid`, or `None` (no rows) when the type is unknown.
pub fn typeinfo_row(type_oid: u32) -> Option<Vec<Option<Value>>> {
    let t = types::by_oid(type_oid)?;
    Some(vec![
        Some(Value::Text(t.name.to_string())),
        Some(Value::Char(t.kind)),
        Some(Value::Oid(t.elem)),
        None,
        Some(Value::Oid(0)),
        Some(Value::Text(t.schema.to_string())),
        Some(Value::Oid(0)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_both_tokio_postgres_queries() {
        let q = "SELECT t.typname, t.typtype, t.typelem, r.rngsubtype, t.typbasetype, n.nspname, t.typrelid\nFROM pg_catalog.pg_type t\nLEFT OUTER JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid\nINNER JOIN pg_catalog.pg_namespace n ON t.typnamespace = n.oid\nWHERE t.oid = $1\n";
        assert!(is_typeinfo_query(q));
        let fallback = q.replace("r.rngsubtype", "NULL::OID");
        assert!(is_typeinfo_query(&fallback));
        assert!(!is_typeinfo_query("SELECT 1"));
    }

    #[test]
    fn vector_row() {
        let row = typeinfo_row(oid::VECTOR).unwrap();
        assert_eq!(row[0], Some(Value::Text("vector".into())));
        assert_eq!(row[1], Some(Value::Char(b'b')));
        assert_eq!(row.len(), typeinfo_columns().len());
        assert!(typeinfo_row(1).is_none());
    }
}
