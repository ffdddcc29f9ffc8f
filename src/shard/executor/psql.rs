//! The catalog queries psql sends for `\dt` and `\d table`.

use super::select::Relation;
use crate::shard::storage::Tables;
use crate::wire::PgError;

/// Answers one of psql's catalog queries from `tables`, or `None`.
pub fn answer(_sql: &str, _tables: &Tables, _database: &str) -> Result<Option<Relation>, PgError> {
    Ok(None)
}
