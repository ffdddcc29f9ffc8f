//! The layer's errors. [`PgError`] is what a client sees — an ErrorResponse
//! or NoticeResponse with severity, SQLSTATE, message, detail and hint —
//! built through named constructors so that every code comes from
//! [`super::sqlstate`]. [`WireError`] is what ends a connection.

use std::borrow::Cow;
use std::fmt;

use super::sqlstate;

/// Severity of an ErrorResponse or NoticeResponse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Ends the statement; the session goes on.
    Error,
    /// Ends the session.
    Fatal,
    /// A NoticeResponse that warns.
    Warning,
    /// A NoticeResponse that informs.
    Notice,
}

impl Severity {
    /// The (untranslated) severity word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
            Severity::Warning => "WARNING",
            Severity::Notice => "NOTICE",
        }
    }
}

/// An error or notice as PostgreSQL reports it to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgError {
    /// ERROR, FATAL, WARNING or NOTICE.
    pub severity: Severity,
    /// Five-character SQLSTATE; `Cow` so errors relayed from a shard keep theirs.
    pub code: Cow<'static, str>,
    /// Primary message.
    pub message: String,
    /// Optional DETAIL.
    pub detail: Option<String>,
    /// Optional HINT.
    pub hint: Option<String>,
}

impl PgError {
    /// An ERROR with `code` and `message`.
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        PgError {
            severity: Severity::Error,
            code: code.into(),
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    /// Adds a DETAIL line.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds a HINT line.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Changes the severity (FATAL ends the session after sending).
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// FATAL 08006: the client's connection broke; the session ends. (A
    /// handler's own 08006 ERROR, such as a proxy's shard being down, ends
    /// only the statement.)
    pub fn connection_lost(message: impl Into<String>) -> Self {
        Self::new(sqlstate::CONNECTION_FAILURE, message).with_severity(Severity::Fatal)
    }

    /// 08P01 protocol_violation.
    pub fn protocol_violation(message: impl Into<String>) -> Self {
        Self::new(sqlstate::PROTOCOL_VIOLATION, message)
    }

    /// 0A000 feature_not_supported.
    pub fn feature_not_supported(message: impl Into<String>) -> Self {
        Self::new(sqlstate::FEATURE_NOT_SUPPORTED, message)
    }

    /// 42883: no function `name` takes `count` arguments.
    pub fn no_function_with_args(name: &str, count: usize) -> Self {
        Self::new(
            sqlstate::UNDEFINED_FUNCTION,
            format!("function {name} with {count} arguments does not exist"),
        )
    }

    /// 0A000 `cached plan must not change result type`: a prepared
    /// statement's result columns changed since Describe (as after DDL).
    pub fn result_type_changed() -> Self {
        Self::feature_not_supported("cached plan must not change result type")
    }

    /// 22023 invalid_parameter_value.
    pub fn invalid_parameter_value(message: impl Into<String>) -> Self {
        Self::new(sqlstate::INVALID_PARAMETER_VALUE, message)
    }

    /// 22P02 `invalid input syntax for type <ty>: "<text>"`.
    pub fn invalid_text(type_name: &str, text: &str) -> Self {
        Self::new(
            sqlstate::INVALID_TEXT_REPRESENTATION,
            format!("invalid input syntax for type {type_name}: \"{text}\""),
        )
    }

    /// 22P03 invalid_binary_representation.
    pub fn invalid_binary(message: impl Into<String>) -> Self {
        Self::new(sqlstate::INVALID_BINARY_REPRESENTATION, message)
    }

    /// 42704 `unrecognized configuration parameter "<name>"`.
    pub fn unrecognized_parameter(name: &str) -> Self {
        Self::new(
            sqlstate::UNDEFINED_OBJECT,
            format!("unrecognized configuration parameter \"{name}\""),
        )
    }

    /// 26000 `prepared statement "<name>" does not exist`.
    pub fn unknown_statement(name: &str) -> Self {
        Self::new(
            sqlstate::INVALID_SQL_STATEMENT_NAME,
            format!("prepared statement \"{name}\" does not exist"),
        )
    }

    /// 42P05 `prepared statement "<name>" already exists`.
    pub fn duplicate_statement(name: &str) -> Self {
        Self::new(
            sqlstate::DUPLICATE_PREPARED_STATEMENT,
            format!("prepared statement \"{name}\" already exists"),
        )
    }

    /// 34000 `portal "<name>" does not exist`.
    pub fn unknown_portal(name: &str) -> Self {
        Self::new(
            sqlstate::INVALID_CURSOR_NAME,
            format!("portal \"{name}\" does not exist"),
        )
    }

    /// 25P02, the error for statements in an aborted transaction.
    pub fn in_failed_transaction() -> Self {
        Self::new(
            sqlstate::IN_FAILED_SQL_TRANSACTION,
            "current transaction is aborted, commands ignored until end of transaction block",
        )
    }

    /// 57014 `canceling statement due to user request`.
    pub fn canceled_by_user() -> Self {
        Self::new(
            sqlstate::QUERY_CANCELED,
            "canceling statement due to user request",
        )
    }

    /// 57014 `canceling statement due to statement timeout`.
    pub fn statement_timeout() -> Self {
        Self::new(
            sqlstate::QUERY_CANCELED,
            "canceling statement due to statement timeout",
        )
    }

    /// FATAL 28P01 `password authentication failed for user "<user>"`.
    pub fn password_failed(user: &str) -> Self {
        Self::new(
            sqlstate::INVALID_PASSWORD,
            format!("password authentication failed for user \"{user}\""),
        )
        .with_severity(Severity::Fatal)
    }

    /// FATAL 28000 invalid_authorization_specification.
    pub fn not_authorized(message: impl Into<String>) -> Self {
        Self::new(sqlstate::INVALID_AUTHORIZATION_SPECIFICATION, message)
            .with_severity(Severity::Fatal)
    }

    /// FATAL 53300 `sorry, too many clients already`.
    pub fn too_many_connections() -> Self {
        Self::new(
            sqlstate::TOO_MANY_CONNECTIONS,
            "sorry, too many clients already",
        )
        .with_severity(Severity::Fatal)
    }

    /// FATAL 57P01 `terminating connection due to administrator command`.
    pub fn admin_shutdown() -> Self {
        Self::new(
            sqlstate::ADMIN_SHUTDOWN,
            "terminating connection due to administrator command",
        )
        .with_severity(Severity::Fatal)
    }

    /// XX000 internal_error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(sqlstate::INTERNAL_ERROR, message)
    }

    /// A WARNING notice (01000 unless a code is given later).
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(code, message).with_severity(Severity::Warning)
    }

    /// A NOTICE (00000).
    pub fn notice(message: impl Into<String>) -> Self {
        Self::new(sqlstate::SUCCESSFUL_COMPLETION, message).with_severity(Severity::Notice)
    }

    /// True for FATAL: the connection closes after sending it.
    pub fn is_fatal(&self) -> bool {
        self.severity == Severity::Fatal
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.severity.as_str(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for PgError {}

impl From<ann::AnnError> for PgError {
    fn from(e: ann::AnnError) -> Self {
        let err = PgError::new(e.kind.sqlstate(), e.message);
        match e.detail {
            Some(d) => err.with_detail(d),
            None => err,
        }
    }
}

/// NOTICE 42622 for each identifier of `statement` cut to 63 bytes, as
/// PostgreSQL's lexer words it.
pub fn truncation_notices(statement: &crate::sql::Statement) -> impl Iterator<Item = PgError> + '_ {
    statement.truncated.iter().map(|t| {
        PgError::new(
            super::sqlstate::NAME_TOO_LONG,
            format!(
                "identifier \"{}\" will be truncated to \"{}\"",
                t.written, t.truncated
            ),
        )
        .with_severity(Severity::Notice)
    })
}

impl From<crate::sql::SqlError> for PgError {
    fn from(e: crate::sql::SqlError) -> Self {
        PgError {
            hint: e.hint.map(String::from),
            ..PgError::new(e.sqlstate, e.message)
        }
    }
}

/// Why a connection ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer broke the protocol or authentication failed; the error was
    /// sent to the client (when it could be) before closing.
    #[error("{0}")]
    Fatal(PgError),
    /// The peer closed the connection in the middle of a message.
    #[error("connection closed mid-message")]
    UnexpectedEof,
    /// A startup packet PostgreSQL does not answer (it only logs it, as
    /// `invalid length of startup packet`): the connection closes
    /// without a message.
    #[error("{0}")]
    Unanswered(PgError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ann_errors_keep_sqlstate_and_detail() {
        let e: PgError = ann::AnnError::data("expected 3 dimensions, not 2")
            .with_detail("d")
            .into();
        assert_eq!(e.code, "22000");
        assert_eq!(e.message, "expected 3 dimensions, not 2");
        assert_eq!(e.detail.as_deref(), Some("d"));
        assert_eq!(e.severity, Severity::Error);
    }

    #[test]
    fn password_failure_is_fatal_28p01() {
        let e = PgError::password_failed("x");
        assert!(e.is_fatal());
        assert_eq!(e.code, "28P01");
        assert_eq!(e.message, "password authentication failed for user \"x\"");
    }
}
