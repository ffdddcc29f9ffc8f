//! The SQL layer's one error type. Every error carries the SQLSTATE and the
//! message PostgreSQL would send for the same mistake, so the wire layer can
//! turn it into an ErrorResponse without knowing where it came from.

/// 42601 syntax_error.
pub const SYNTAX_ERROR: &str = "42601";
/// 0A000 feature_not_supported.
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// 54001 statement_too_complex (PostgreSQL's "stack depth limit exceeded").
pub const STATEMENT_TOO_COMPLEX: &str = "54001";
/// 42P02 undefined_parameter.
pub const UNDEFINED_PARAMETER: &str = "42P02";

/// An error with PostgreSQL's SQLSTATE and message text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SqlError {
    /// Five-character SQLSTATE code.
    pub sqlstate: &'static str,
    /// The primary message, worded as PostgreSQL words it.
    pub message: String,
    /// 1-based character position in the query text (ErrorResponse field P).
    pub position: Option<usize>,
    /// PostgreSQL's HINT, if it gives one for this error.
    pub hint: Option<&'static str>,
}

/// PostgreSQL's hint with 54001 "stack depth limit exceeded".
pub const STACK_DEPTH_HINT: &str = "Increase the configuration parameter \"max_stack_depth\" (currently 2048kB), after ensuring the platform's stack depth limit is adequate.";

impl SqlError {
    /// A 42601 syntax error.
    pub fn syntax(message: impl Into<String>, position: Option<usize>) -> Self {
        SqlError {
            sqlstate: SYNTAX_ERROR,
            message: message.into(),
            position,
            hint: None,
        }
    }

    /// A 0A000 error naming the unsupported `feature`.
    pub fn unsupported(feature: impl std::fmt::Display) -> Self {
        SqlError {
            sqlstate: FEATURE_NOT_SUPPORTED,
            message: format!("{feature} is not supported"),
            position: None,
            hint: None,
        }
    }

    /// PostgreSQL's "stack depth limit exceeded" for absurdly nested input.
    pub fn too_complex() -> Self {
        SqlError {
            sqlstate: STATEMENT_TOO_COMPLEX,
            message: "stack depth limit exceeded".into(),
            position: None,
            hint: Some(STACK_DEPTH_HINT),
        }
    }

    /// `unrecognized configuration parameter "name"` (42704).
    pub fn unrecognized_parameter(name: &str) -> Self {
        SqlError {
            sqlstate: "42704",
            message: format!("unrecognized configuration parameter \"{name}\""),
            position: None,
            hint: None,
        }
    }

    /// `there is no parameter $n` (42P02).
    pub fn undefined_parameter(text: &str) -> Self {
        SqlError {
            sqlstate: UNDEFINED_PARAMETER,
            message: format!("there is no parameter {text}"),
            position: None,
            hint: None,
        }
    }
}

/// The layer's result type.
pub type Result<T> = std::result::Result<T, SqlError>;
