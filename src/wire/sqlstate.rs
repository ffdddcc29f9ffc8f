//! SQLSTATE codes the protocol layer and its users report, in one place
//! (neon's `pq_proto` habit): a code is never spelled as a literal elsewhere.

/// 00000 successful_completion (used by notices that are not warnings).
pub const SUCCESSFUL_COMPLETION: &str = "00000";
/// 01000 warning.
pub const WARNING: &str = "01000";
/// 08006 connection_failure.
pub const CONNECTION_FAILURE: &str = "08006";
/// 08P01 protocol_violation.
pub const PROTOCOL_VIOLATION: &str = "08P01";
/// 0A000 feature_not_supported.
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// 22023 invalid_parameter_value.
pub const INVALID_PARAMETER_VALUE: &str = "22023";
/// 22P02 invalid_text_representation.
pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
/// 22P03 invalid_binary_representation.
pub const INVALID_BINARY_REPRESENTATION: &str = "22P03";
/// 22003 numeric_value_out_of_range.
pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
/// 22007 invalid_datetime_format.
pub const INVALID_DATETIME_FORMAT: &str = "22007";
/// 22021 character_not_in_repertoire (invalid UTF-8).
pub const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
/// 25001 active_sql_transaction.
pub const ACTIVE_SQL_TRANSACTION: &str = "25001";
/// 25P01 no_active_sql_transaction.
pub const NO_ACTIVE_SQL_TRANSACTION: &str = "25P01";
/// 25P02 in_failed_sql_transaction.
pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";
/// 26000 invalid_sql_statement_name (unknown prepared statement).
pub const INVALID_SQL_STATEMENT_NAME: &str = "26000";
/// 28000 invalid_authorization_specification.
pub const INVALID_AUTHORIZATION_SPECIFICATION: &str = "28000";
/// 28P01 invalid_password.
pub const INVALID_PASSWORD: &str = "28P01";
/// 42P03 duplicate_cursor.
pub const DUPLICATE_CURSOR: &str = "42P03";
/// 34000 invalid_cursor_name (unknown portal).
pub const INVALID_CURSOR_NAME: &str = "34000";
/// 42804 datatype_mismatch.
pub const DATATYPE_MISMATCH: &str = "42804";
/// 42622 name_too_long (the NOTICE of a truncated identifier).
pub const NAME_TOO_LONG: &str = "42622";
/// 42601 syntax_error.
pub const SYNTAX_ERROR: &str = "42601";
/// 42883 undefined_function.
pub const UNDEFINED_FUNCTION: &str = "42883";
/// 42704 undefined_object.
pub const UNDEFINED_OBJECT: &str = "42704";
/// 42P05 duplicate_prepared_statement.
pub const DUPLICATE_PREPARED_STATEMENT: &str = "42P05";
/// 42P18 indeterminate_datatype.
pub const INDETERMINATE_DATATYPE: &str = "42P18";
/// 53300 too_many_connections.
pub const TOO_MANY_CONNECTIONS: &str = "53300";
/// 54000 program_limit_exceeded.
pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
/// 55P02 cant_change_runtime_param.
pub const CANT_CHANGE_RUNTIME_PARAM: &str = "55P02";
/// 57014 query_canceled.
pub const QUERY_CANCELED: &str = "57014";
/// 57P01 admin_shutdown.
pub const ADMIN_SHUTDOWN: &str = "57P01";
/// XX000 internal_error.
pub const INTERNAL_ERROR: &str = "XX000";
