//! Table and column names as PostgreSQL resolves them: unquoted identifiers
//! fold to lower case, quoted ones keep their spelling. Routing compares
//! names from client SQL with configured shard keys, so both sides must be
//! folded the same way.

use std::fmt;

use sqlparser::ast::{Expr, Ident, ObjectName};

/// A possibly schema-qualified table name, folded as PostgreSQL folds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    /// The schema, when the statement names one.
    pub schema: Option<String>,
    /// The table's name.
    pub name: String,
}

impl TableName {
    /// The name an `ObjectName` denotes (its last two parts; a catalog part
    /// is ignored, as PostgreSQL only accepts the current database there).
    pub fn from_object_name(name: &ObjectName) -> Option<TableName> {
        let idents: Vec<&Ident> = name.0.iter().filter_map(|p| p.as_ident()).collect();
        if idents.len() != name.0.len() {
            return None;
        }
        match idents.as_slice() {
            [.., schema, table] => Some(TableName {
                schema: Some(fold(schema)),
                name: fold(table),
            }),
            [table] => Some(TableName {
                schema: None,
                name: fold(table),
            }),
            [] => None,
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write!(f, "{}.", quote_ident(schema))?;
        }
        f.write_str(&quote_ident(&self.name))
    }
}

/// An identifier's folded name: lower case unless it was quoted.
pub fn fold(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// `name` quoted when PostgreSQL would need quotes to read it back.
pub fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The folded column name of a plain or qualified column reference
/// (`embedding`, `items.embedding`), ignoring the qualifier.
pub fn column_name(expr: &Expr) -> Option<String> {
    crate::stack::guard(|| match expr {
        Expr::Identifier(ident) => Some(fold(ident)),
        Expr::CompoundIdentifier(parts) => parts.last().map(fold),
        Expr::Nested(inner) => column_name(inner),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_like_postgres() {
        let name = ObjectName::from(vec![Ident::new("Public"), Ident::with_quote('"', "Items")]);
        let t = TableName::from_object_name(&name).unwrap();
        assert_eq!(t.schema.as_deref(), Some("public"));
        assert_eq!(t.name, "Items");
        assert_eq!(t.to_string(), "public.\"Items\"");
        assert_eq!(quote_ident("a_1"), "a_1");
        assert_eq!(quote_ident("1a"), "\"1a\"");
    }
}
