//! Messages the server sends, encoded straight into the connection's
//! output buffer. [`DataRow`] is a typed view over already-encoded column
//! values, so a proxy can pass a shard's rows on without decoding them.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::PgError;

/// Transaction status in ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransactionStatus {
    /// 'I': not in a transaction block.
    #[default]
    Idle,
    /// 'T': in a transaction block.
    InTransaction,
    /// 'E': in a failed transaction block.
    Failed,
}

impl TransactionStatus {
    fn byte(self) -> u8 {
        match self {
            TransactionStatus::Idle => b'I',
            TransactionStatus::InTransaction => b'T',
            TransactionStatus::Failed => b'E',
        }
    }
}

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    /// Column name.
    pub name: String,
    /// Table OID, 0 if not a table column.
    pub table_oid: u32,
    /// Attribute number, 0 if not a table column.
    pub column_id: i16,
    /// Type OID.
    pub type_oid: u32,
    /// `pg_type.typlen` (-1 variable).
    pub type_size: i16,
    /// Type modifier (-1 none).
    pub type_modifier: i32,
    /// 0 text, 1 binary.
    pub format: i16,
}

impl FieldDescription {
    /// A column of one of the built-in types this server registers
    /// (`oid::TEXT`, `oid::INT8`, …).
    pub fn builtin(name: impl Into<String>, oid: u32) -> Self {
        Self::new(
            name,
            super::types::by_oid(oid).expect("built-in types are registered"),
        )
    }

    /// Columns of built-in types, from (name, type OID) pairs: the
    /// RowDescription of a view the server answers itself.
    pub fn builtins(columns: &[(&str, u32)]) -> Vec<Self> {
        columns
            .iter()
            .map(|&(name, oid)| Self::builtin(name, oid))
            .collect()
    }

    /// A computed column `name` of type `ty` in text format.
    pub fn new(name: impl Into<String>, ty: &super::types::PgType) -> Self {
        FieldDescription {
            name: name.into(),
            table_oid: 0,
            column_id: 0,
            type_oid: ty.oid,
            type_size: ty.len,
            type_modifier: -1,
            format: 0,
        }
    }
}

/// A DataRow: the field count and the encoded fields (each an i32 length,
/// -1 for NULL, then the bytes), exactly as on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRow {
    /// Number of fields.
    pub field_count: u16,
    /// The encoded fields.
    pub data: Bytes,
}

/// Builds a [`DataRow`] field by field.
#[derive(Debug, Default)]
pub struct DataRowBuilder {
    count: u16,
    data: BytesMut,
}

impl DataRowBuilder {
    /// Appends a NULL.
    pub fn push_null(&mut self) {
        self.count += 1;
        self.data.put_i32(-1);
    }

    /// Appends an encoded value.
    pub fn push(&mut self, value: &[u8]) {
        self.count += 1;
        self.data.put_i32(value.len() as i32);
        self.data.put_slice(value);
    }

    /// Appends a value written by `f` (no intermediate allocation).
    pub fn push_with(&mut self, f: impl FnOnce(&mut BytesMut)) {
        self.count += 1;
        field_with(&mut self.data, f);
    }

    /// The finished row.
    pub fn finish(self) -> DataRow {
        DataRow {
            field_count: self.count,
            data: self.data.freeze(),
        }
    }
}

/// Writes one DataRow field: its length, then the value `f` writes.
pub(crate) fn field_with(buf: &mut BytesMut, f: impl FnOnce(&mut BytesMut)) {
    let at = buf.len();
    buf.put_i32(0);
    f(buf);
    let len = (buf.len() - at - 4) as i32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Writes one message: tag, length, body written by `body`.
pub(crate) fn message(buf: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    let at = buf.len() + 1;
    // The tag and room for the length in one write (each `put_*` is a
    // call and a copy: messages are written many times per statement).
    buf.put_slice(&[tag, 0, 0, 0, 0]);
    body(buf);
    let len = (buf.len() - at) as i32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

pub(crate) fn cstr(buf: &mut BytesMut, s: &str) {
    // Most names the protocol carries are empty (the unnamed statement
    // and portal).
    if !s.is_empty() {
        buf.put_slice(s.as_bytes());
    }
    buf.put_u8(0);
}

/// Authentication request of `code` with an optional payload.
pub fn authentication(buf: &mut BytesMut, code: i32, payload: &[u8]) {
    message(buf, b'R', |b| {
        b.put_i32(code);
        b.put_slice(payload);
    });
}

/// ParameterStatus.
pub fn parameter_status(buf: &mut BytesMut, name: &str, value: &str) {
    message(buf, b'S', |b| {
        cstr(b, name);
        cstr(b, value);
    });
}

/// BackendKeyData.
pub fn backend_key_data(buf: &mut BytesMut, pid: i32, secret: &[u8]) {
    message(buf, b'K', |b| {
        b.put_i32(pid);
        b.put_slice(secret);
    });
}

/// ReadyForQuery.
pub fn ready_for_query(buf: &mut BytesMut, status: TransactionStatus) {
    message(buf, b'Z', |b| b.put_u8(status.byte()));
}

/// ErrorResponse (severity ERROR/FATAL) or NoticeResponse (WARNING/NOTICE).
pub fn error_or_notice(buf: &mut BytesMut, e: &PgError) {
    use super::error::Severity;
    let tag = match e.severity {
        Severity::Error | Severity::Fatal => b'E',
        Severity::Warning | Severity::Notice => b'N',
    };
    message(buf, tag, |b| {
        for field in [b'S', b'V'] {
            b.put_u8(field);
            cstr(b, e.severity.as_str());
        }
        b.put_u8(b'C');
        cstr(b, &e.code);
        b.put_u8(b'M');
        cstr(b, &e.message);
        if let Some(d) = &e.detail {
            b.put_u8(b'D');
            cstr(b, d);
        }
        if let Some(h) = &e.hint {
            b.put_u8(b'H');
            cstr(b, h);
        }
        b.put_u8(0);
    });
}

/// RowDescription.
pub fn row_description(buf: &mut BytesMut, fields: &[FieldDescription]) {
    row_description_in(buf, fields, fields.iter().map(|f| f.format));
}

/// RowDescription of `fields` with the format codes `formats` (a portal's
/// columns in the formats its Bind chose), one per field.
pub fn row_description_in(
    buf: &mut BytesMut,
    fields: &[FieldDescription],
    formats: impl Iterator<Item = i16>,
) {
    message(buf, b'T', |b| {
        b.put_i16(fields.len() as i16);
        for (f, format) in fields.iter().zip(formats) {
            cstr(b, &f.name);
            b.put_u32(f.table_oid);
            b.put_i16(f.column_id);
            b.put_u32(f.type_oid);
            b.put_i16(f.type_size);
            b.put_i32(f.type_modifier);
            b.put_i16(format);
        }
    });
}

/// DataRow.
pub fn data_row(buf: &mut BytesMut, row: &DataRow) {
    message(buf, b'D', |b| {
        b.put_u16(row.field_count);
        b.put_slice(&row.data);
    });
}

/// CommandComplete with `tag` (e.g. `SELECT 3`).
pub fn command_complete(buf: &mut BytesMut, tag: &str) {
    message(buf, b'C', |b| cstr(b, tag));
}

/// ParameterDescription.
pub fn parameter_description(buf: &mut BytesMut, types: &[u32]) {
    message(buf, b't', |b| {
        b.put_u16(u16::try_from(types.len()).unwrap_or(u16::MAX));
        for t in types {
            b.put_u32(*t);
        }
    });
}

/// A message without a body: ParseComplete '1', BindComplete '2',
/// CloseComplete '3', NoData 'n', PortalSuspended 's', EmptyQueryResponse
/// 'I', CopyDone 'c'.
pub fn empty(buf: &mut BytesMut, tag: u8) {
    message(buf, tag, |_| {});
}

/// Tags of the body-less messages for [`empty`].
pub mod tag {
    /// ParseComplete.
    pub const PARSE_COMPLETE: u8 = b'1';
    /// BindComplete.
    pub const BIND_COMPLETE: u8 = b'2';
    /// CloseComplete.
    pub const CLOSE_COMPLETE: u8 = b'3';
    /// NoData.
    pub const NO_DATA: u8 = b'n';
    /// PortalSuspended.
    pub const PORTAL_SUSPENDED: u8 = b's';
    /// EmptyQueryResponse.
    pub const EMPTY_QUERY: u8 = b'I';
    /// CopyDone.
    pub const COPY_DONE: u8 = b'c';
}

/// CopyInResponse ('G'), CopyOutResponse ('H') or CopyBothResponse ('W').
pub fn copy_response(buf: &mut BytesMut, tag: u8, binary: bool, column_formats: &[i16]) {
    message(buf, tag, |b| {
        b.put_i8(i8::from(binary));
        b.put_i16(column_formats.len() as i16);
        for f in column_formats {
            b.put_i16(*f);
        }
    });
}

/// CopyData.
pub fn copy_data(buf: &mut BytesMut, data: &[u8]) {
    message(buf, b'd', |b| b.put_slice(data));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_row_bytes_are_wire_exact() {
        let mut row = DataRowBuilder::default();
        row.push(b"ab");
        row.push_null();
        row.push_with(|b| b.put_slice(b"xyz"));
        let row = row.finish();
        let mut buf = BytesMut::new();
        data_row(&mut buf, &row);
        let mut want = vec![b'D', 0, 0, 0, 23, 0, 3, 0, 0, 0, 2, b'a', b'b'];
        want.extend_from_slice(&[0xff; 4]);
        want.extend_from_slice(&[0, 0, 0, 3, b'x', b'y', b'z']);
        assert_eq!(&buf[..], &want[..]);
    }

    #[test]
    fn error_response_fields() {
        let mut buf = BytesMut::new();
        error_or_notice(&mut buf, &PgError::protocol_violation("bad").with_hint("h"));
        assert_eq!(buf[0], b'E');
        let body = &buf[5..];
        assert_eq!(body, b"SERROR\0VERROR\0C08P01\0Mbad\0Hh\0\0".as_slice());
    }
}
