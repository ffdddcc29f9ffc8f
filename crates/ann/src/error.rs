//! The engine's one error type. Each [`ErrorKind`] is a PostgreSQL error
//! condition, so the SQL layer can answer with the SQLSTATE pgvector uses.

use std::fmt;

/// The PostgreSQL error condition an [`AnnError`] corresponds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 22000 data_exception: wrong dimensions, NaN, infinity, empty vectors.
    DataException,
    /// 22P02 invalid_text_representation: malformed text input.
    InvalidTextRepresentation,
    /// 22P03 invalid_binary_representation: malformed binary input.
    InvalidBinaryRepresentation,
    /// 54000 program_limit_exceeded: too many dimensions or non-zero elements.
    ProgramLimitExceeded,
    /// 22023 invalid_parameter_value: index options out of range.
    InvalidParameterValue,
    /// 22003 numeric_value_out_of_range: a value overflows its type.
    NumericValueOutOfRange,
    /// 2202E array_subscript_error: bad subvector bounds and similar.
    ArraySubscriptError,
    /// 22026 string_data_length_mismatch: bit strings of different lengths.
    StringDataLengthMismatch,
    /// 08P01 protocol_violation: a binary value shorter than its layout.
    ProtocolViolation,
    /// 42704 undefined_object: no operator class for a type and index method.
    UndefinedObject,
    /// XX001 data_corrupted: a saved index failed its checks.
    DataCorrupted,
    /// 58030 io_error: reading or writing an index file failed.
    Io,
    /// 57014 query_canceled: the caller asked the work to stop.
    Canceled,
    /// XX000 internal_error.
    Internal,
}

impl ErrorKind {
    /// The SQLSTATE PostgreSQL + pgvector report for this condition.
    pub fn sqlstate(self) -> &'static str {
        match self {
            ErrorKind::DataException => "22000",
            ErrorKind::InvalidTextRepresentation => "22P02",
            ErrorKind::InvalidBinaryRepresentation => "22P03",
            ErrorKind::ProgramLimitExceeded => "54000",
            ErrorKind::InvalidParameterValue => "22023",
            ErrorKind::NumericValueOutOfRange => "22003",
            ErrorKind::ArraySubscriptError => "2202E",
            ErrorKind::StringDataLengthMismatch => "22026",
            ErrorKind::ProtocolViolation => "08P01",
            ErrorKind::UndefinedObject => "42704",
            ErrorKind::DataCorrupted => "XX001",
            ErrorKind::Io => "58030",
            ErrorKind::Canceled => "57014",
            ErrorKind::Internal => "XX000",
        }
    }
}

/// An error with pgvector's message text and the condition it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnError {
    /// Which PostgreSQL condition this is.
    pub kind: ErrorKind,
    /// The primary message, worded as pgvector words it.
    pub message: String,
    /// Optional DETAIL line.
    pub detail: Option<String>,
}

impl AnnError {
    /// An error of `kind` with `message` and no detail.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        AnnError {
            kind,
            message: message.into(),
            detail: None,
        }
    }

    /// Adds a DETAIL line.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// 22000 data_exception.
    pub fn data(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::DataException, message)
    }

    /// 22023 invalid_parameter_value.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParameterValue, message)
    }

    /// 54000 program_limit_exceeded.
    pub fn limit(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ProgramLimitExceeded, message)
    }

    /// XX001 data_corrupted.
    pub fn corrupted(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::DataCorrupted, message)
    }
}

impl fmt::Display for AnnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AnnError {}

impl From<std::io::Error> for AnnError {
    fn from(e: std::io::Error) -> Self {
        AnnError::new(ErrorKind::Io, e.to_string())
    }
}

/// Result with [`AnnError`].
pub type Result<T> = std::result::Result<T, AnnError>;
