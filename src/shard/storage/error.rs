//! Storage's one error type: a PostgreSQL SQLSTATE, the message a client
//! sees, and an optional DETAIL line, built by named constructors so that
//! the wording matches PostgreSQL's.

use crate::shard::datum::KeyValue;
use std::path::Path;

/// An error from storage, ready to become an ErrorResponse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StorageError {
    /// The SQLSTATE PostgreSQL uses for this condition.
    pub sqlstate: &'static str,
    /// Primary message.
    pub message: String,
    /// Optional DETAIL line.
    pub detail: Option<String>,
    /// Optional HINT line.
    pub hint: Option<String>,
}

/// Result with [`StorageError`].
pub type Result<T> = std::result::Result<T, StorageError>;

impl StorageError {
    /// An error with `sqlstate` and `message`.
    pub fn new(sqlstate: &'static str, message: impl Into<String>) -> Self {
        StorageError {
            sqlstate,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    /// The error with PostgreSQL's DETAIL line.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The error with PostgreSQL's HINT line.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// 23505: `duplicate key value violates unique constraint "t_pkey"`.
    pub fn unique_violation(constraint: &str, columns: &[&str], key: &[KeyValue]) -> Self {
        let values: Vec<String> = key.iter().map(ToString::to_string).collect();
        Self::new(
            "23505",
            format!("duplicate key value violates unique constraint \"{constraint}\""),
        )
        .with_detail(format!(
            "Key ({})=({}) already exists.",
            columns.join(", "),
            values.join(", ")
        ))
    }

    /// 23502: a NULL in a NOT NULL column.
    pub fn not_null(column: &str, table: &str) -> Self {
        Self::new(
            "23502",
            format!("null value in column \"{column}\" of relation \"{table}\" violates not-null constraint"),
        )
    }

    /// 42P01: no such table.
    pub fn undefined_table(name: &str) -> Self {
        Self::new("42P01", format!("relation \"{name}\" does not exist"))
    }

    /// 42P07: a table or index of that name exists.
    pub fn duplicate_relation(name: &str) -> Self {
        Self::new("42P07", format!("relation \"{name}\" already exists"))
    }

    /// 42704: no such index.
    pub fn undefined_index(name: &str) -> Self {
        Self::new("42704", format!("index \"{name}\" does not exist"))
    }

    /// 42703: no such column.
    pub fn undefined_column(column: &str, table: &str) -> Self {
        Self::new(
            "42703",
            format!("column \"{column}\" of relation \"{table}\" does not exist"),
        )
    }

    /// 42701: a column of that name exists.
    pub fn duplicate_column(column: &str, table: &str) -> Self {
        Self::new(
            "42701",
            format!("column \"{column}\" of relation \"{table}\" already exists"),
        )
    }

    /// 42804: a value of the wrong type reached storage (an executor bug).
    pub fn datatype_mismatch(column: &str, expected: &str, got: &str) -> Self {
        Self::new(
            "42804",
            format!("column \"{column}\" is of type {expected} but expression is of type {got}"),
        )
    }

    /// 57014: the statement was canceled.
    pub fn canceled() -> Self {
        Self::new("57014", "canceling statement due to user request")
    }

    /// 40001: the row changed since the transaction read it.
    pub fn serialization_failure() -> Self {
        Self::new(
            "40001",
            "could not serialize access due to concurrent update",
        )
    }

    /// 42710: PREPARE TRANSACTION with a gid already prepared.
    pub fn gid_in_use(gid: &str) -> Self {
        Self::new(
            "42710",
            format!("transaction identifier \"{gid}\" is already in use"),
        )
    }

    /// 42704: COMMIT/ROLLBACK PREPARED of an unknown gid.
    pub fn unknown_gid(gid: &str) -> Self {
        Self::new(
            "42704",
            format!("prepared transaction with identifier \"{gid}\" does not exist"),
        )
    }

    /// 22023: a gid longer than PostgreSQL allows.
    pub fn gid_too_long(gid: &str) -> Self {
        Self::new(
            "22023",
            format!("transaction identifier \"{gid}\" is too long"),
        )
    }

    /// PREPARE TRANSACTION beyond `max_prepared_transactions` (55000 when
    /// it is 0, 53200 when all are taken), with PostgreSQL's hints.
    pub fn prepared_limit(max: usize) -> Self {
        let mut e = if max == 0 {
            Self::new("55000", "prepared transactions are disabled")
        } else {
            Self::new("53200", "maximum number of prepared transactions reached")
        };
        e.hint = Some(if max == 0 {
            "Set \"max_prepared_transactions\" to a nonzero value.".to_string()
        } else {
            format!("Increase \"max_prepared_transactions\" (currently {max}).")
        });
        e
    }

    /// 0A000: a feature storage does not have.
    pub fn unsupported(what: impl Into<String>) -> Self {
        Self::new("0A000", what)
    }

    /// XX001: a damaged file, named.
    pub fn corrupted(path: &Path, why: impl std::fmt::Display) -> Self {
        Self::new(
            "XX001",
            format!("file \"{}\" is damaged: {why}", path.display()),
        )
    }

    /// 58030: an I/O error on `path`.
    pub fn io(path: &Path, err: std::io::Error) -> Self {
        Self::new(
            "58030",
            format!("could not access file \"{}\": {err}", path.display()),
        )
    }
}

impl From<ann::AnnError> for StorageError {
    fn from(e: ann::AnnError) -> Self {
        StorageError {
            sqlstate: e.kind.sqlstate(),
            message: e.message,
            detail: e.detail,
            hint: None,
        }
    }
}
