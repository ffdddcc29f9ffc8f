//! Shard keys the proxy generates for INSERT rows that leave a serial key
//! to its default. Each shard's own sequence only knows its own rows, so
//! two shards would hand out the same value; instead the proxy assigns
//! the values before routing: per table, one counter that starts after
//! the largest key any shard holds (read on first use and again after DDL
//! on the table) and grows by one per row. The rows then carry literal
//! keys, route by slot like any other, and RETURNING shows the values.
//!
//! The counter lives in this proxy: with several proxies in front of the
//! same shards, give rows explicit keys (or UUIDs) instead.

use std::collections::HashMap;
use std::sync::Mutex;

use sqlparser::ast::{self, Expr, Ident, ObjectName, SetExpr};

use super::backend::messages::fields;
use super::backend::{BackendMessage, Request, SharedBackend};
use crate::sql::{self, TableName};
use crate::wire::PgError;

/// The next key per table.
#[derive(Default)]
pub struct KeySequences {
    next: Mutex<HashMap<String, i64>>,
}

impl KeySequences {
    /// Forgets `table`'s counter (after DDL: it may have been dropped or
    /// truncated).
    pub fn forget(&self, table: &TableName) {
        self.lock().remove(&table.to_string());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.next.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `n` consecutive fresh values of `table`'s key `key`; the first is
    /// returned.
    pub async fn take(
        &self,
        shards: &[SharedBackend],
        table: &TableName,
        key: &str,
        n: usize,
    ) -> Result<i64, PgError> {
        let name = table.to_string();
        if !self.lock().contains_key(&name) {
            let mut largest = 0i64;
            for shard in shards {
                largest = largest.max(largest_key(shard, &name, key).await?);
            }
            self.lock().entry(name.clone()).or_insert(largest + 1);
        }
        let mut next = self.lock();
        let counter = next.entry(name).or_insert(1);
        let first = *counter;
        *counter += i64::try_from(n).unwrap_or(i64::MAX);
        Ok(first)
    }
}

/// The largest value of `key` on one shard (0 for an empty table).
async fn largest_key(shard: &SharedBackend, table: &str, key: &str) -> Result<i64, PgError> {
    let mut chan = shard.checkout().await?;
    let column = ast::Ident::with_quote('"', key).to_string();
    chan.send(&Request::Simple(format!(
        "SELECT max({column}) FROM {table}"
    )))
    .await?;
    let mut largest = 0;
    let mut error = None;
    loop {
        match chan.recv().await? {
            BackendMessage::DataRow(row) => {
                if let Some(Some(v)) = fields(&row)?.first() {
                    largest = std::str::from_utf8(v)
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(0);
                }
            }
            BackendMessage::Error(e) => error = Some(e),
            BackendMessage::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    error.map_or(Ok(largest), Err)
}

fn is_default(expr: &Expr) -> bool {
    matches!(expr, Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
}

/// The INSERT with `values[j]` as the key of the j-th row that had none
/// (its key column DEFAULT or left out); `None` when the statement's shape
/// does not allow it (no VALUES, or rows shorter than the key's place).
pub fn fill_keys(
    statement: &sql::Statement,
    key: &str,
    table_columns: &[String],
    first: i64,
) -> Option<sql::Statement> {
    let ast::Statement::Insert(insert) = &statement.ast else {
        return None;
    };
    let mut insert = insert.clone();
    let named = |c: &ObjectName| {
        c.0.last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| sql::fold(i) == key)
    };
    let position = if insert.columns.is_empty() {
        table_columns.iter().position(|c| c == key)?
    } else if let Some(p) = insert.columns.iter().position(named) {
        p
    } else {
        insert
            .columns
            .push(ObjectName::from(vec![Ident::with_quote('"', key)]));
        insert.columns.len() - 1
    };
    let SetExpr::Values(values) = insert.source.as_mut()?.body.as_mut() else {
        return None;
    };
    let mut next = first;
    for row in &mut values.rows {
        if row.len() == position {
            row.push(Expr::Identifier(Ident::new("DEFAULT")));
        }
        let slot = row.get_mut(position)?;
        if is_default(slot) {
            *slot = Expr::value(ast::Value::Number(next.to_string(), false));
            next += 1;
        }
    }
    sql::parse_single(&ast::Statement::Insert(insert).to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(text: &str, cols: &[&str]) -> String {
        let s = sql::parse_single(text).unwrap();
        let cols: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
        fill_keys(&s, "id", &cols, 7).unwrap().text
    }

    #[test]
    fn missing_and_default_keys_get_consecutive_values() {
        assert_eq!(
            fill(
                "INSERT INTO t (c) VALUES (1), (2) RETURNING id",
                &["id", "c"]
            ),
            "INSERT INTO t (c, \"id\") VALUES (1, 7), (2, 8) RETURNING id"
        );
        assert_eq!(
            fill(
                "INSERT INTO t VALUES (DEFAULT, 1), (3, 2), (default, 5)",
                &["id", "c"]
            ),
            "INSERT INTO t VALUES (7, 1), (3, 2), (8, 5)"
        );
    }
}
