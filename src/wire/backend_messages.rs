//! The protocol seen from the client side: messages a server sends (typed
//! views over the frame bodies, rows kept as raw [`DataRow`] bytes) and the
//! frontend messages a client sends — the proxy to its shards, a standby
//! to its primary.

use bytes::{BufMut, Bytes, BytesMut};

use crate::wire::backend::{cstr, message};
use crate::wire::error::Severity;
use crate::wire::frontend::BodyReader;
use crate::wire::{DataRow, FieldDescription, Format, PgError};

/// One message from a shard.
#[derive(Debug, Clone)]
pub enum BackendMessage {
    /// 'R': an authentication request (code, payload).
    Authentication(i32, Bytes),
    /// 'S': ParameterStatus.
    ParameterStatus,
    /// 'K': BackendKeyData (pid, secret).
    BackendKeyData(i32, i32),
    /// 'Z': ReadyForQuery with its status byte.
    ReadyForQuery(u8),
    /// 'T': RowDescription.
    RowDescription(Vec<FieldDescription>),
    /// 'D': DataRow, still encoded.
    DataRow(DataRow),
    /// 'C': CommandComplete tag.
    CommandComplete(String),
    /// 'I': EmptyQueryResponse.
    EmptyQuery,
    /// 'E': ErrorResponse.
    Error(PgError),
    /// 'N': NoticeResponse.
    Notice(PgError),
    /// 't': ParameterDescription.
    ParameterDescription(Vec<u32>),
    /// 'n': NoData.
    NoData,
    /// 'G': CopyInResponse.
    CopyIn,
    /// 'H': CopyOutResponse.
    CopyOut,
    /// 'W': CopyBothResponse (START_REPLICATION).
    CopyBoth,
    /// 'd': CopyData.
    CopyData(Bytes),
    /// '1', '2', '3', 's', 'c', 'A': acknowledgements the proxy skips.
    Ack(u8),
}

impl BackendMessage {
    /// Decodes one frame. Errors are protocol violations by the shard.
    pub fn decode(tag: u8, body: Bytes) -> Result<Self, PgError> {
        let mut r = BodyReader(body);
        Ok(match tag {
            b'R' => {
                let code = r.i32()?;
                BackendMessage::Authentication(code, r.0)
            }
            b'S' => BackendMessage::ParameterStatus,
            b'K' => BackendMessage::BackendKeyData(r.i32()?, r.i32()?),
            b'Z' => BackendMessage::ReadyForQuery(r.bytes(1)?[0]),
            b'T' => BackendMessage::RowDescription(row_description(&mut r)?),
            b'D' => {
                let count = r.i16()?;
                BackendMessage::DataRow(DataRow {
                    field_count: u16::try_from(count)
                        .map_err(|_| PgError::protocol_violation("negative field count"))?,
                    data: r.0,
                })
            }
            b'C' => BackendMessage::CommandComplete(r.cstr()?),
            b'I' => BackendMessage::EmptyQuery,
            b'E' => BackendMessage::Error(error_fields(&mut r)?),
            b'N' => BackendMessage::Notice(error_fields(&mut r)?),
            b't' => {
                let n = r.u16()?;
                let types = (0..n).map(|_| r.u32()).collect::<Result<_, _>>()?;
                BackendMessage::ParameterDescription(types)
            }
            b'n' => BackendMessage::NoData,
            b'G' => BackendMessage::CopyIn,
            b'H' => BackendMessage::CopyOut,
            b'W' => BackendMessage::CopyBoth,
            b'd' => BackendMessage::CopyData(r.0),
            b'1' | b'2' | b'3' | b's' | b'c' | b'A' => BackendMessage::Ack(tag),
            other => {
                return Err(PgError::protocol_violation(format!(
                    "unexpected message type '{}' from shard",
                    other as char
                )))
            }
        })
    }
}

fn row_description(r: &mut BodyReader) -> Result<Vec<FieldDescription>, PgError> {
    let n = r.i16()?;
    (0..n.max(0))
        .map(|_| {
            Ok(FieldDescription {
                name: r.cstr()?,
                table_oid: r.u32()?,
                column_id: r.i16()?,
                type_oid: r.u32()?,
                type_size: r.i16()?,
                type_modifier: r.i32()?,
                format: r.i16()?,
            })
        })
        .collect()
}

fn error_fields(r: &mut BodyReader) -> Result<PgError, PgError> {
    let mut e = PgError::new("XX000", "");
    while let Some(&field) = r.0.first() {
        r.bytes(1)?;
        if field == 0 {
            break;
        }
        let value = r.cstr()?;
        match field {
            b'V' => {
                e.severity = match value.as_str() {
                    "FATAL" | "PANIC" => Severity::Fatal,
                    "WARNING" => Severity::Warning,
                    "ERROR" => Severity::Error,
                    _ => Severity::Notice,
                }
            }
            b'C' => e.code = value.into(),
            b'M' => e.message = value,
            b'D' => e.detail = Some(value),
            b'H' => e.hint = Some(value),
            _ => {}
        }
    }
    Ok(e)
}

/// The fields of one DataRow: each `None` for NULL.
pub fn fields(row: &DataRow) -> Result<Vec<Option<&[u8]>>, PgError> {
    let mut out = Vec::with_capacity(usize::from(row.field_count));
    let data = &row.data[..];
    let mut at = 0usize;
    for _ in 0..row.field_count {
        let len_bytes: [u8; 4] = data
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(truncated)?;
        at += 4;
        let len = i32::from_be_bytes(len_bytes);
        if len < 0 {
            out.push(None);
            continue;
        }
        let end = at + len as usize;
        out.push(Some(data.get(at..end).ok_or_else(truncated)?));
        at = end;
    }
    Ok(out)
}

/// The row with only its first `keep` fields (hidden columns dropped),
/// sharing the original bytes.
pub fn truncate_row(row: &DataRow, keep: usize) -> Result<DataRow, PgError> {
    if keep >= usize::from(row.field_count) {
        return Ok(row.clone());
    }
    let mut at = 0usize;
    for _ in 0..keep {
        let len_bytes: [u8; 4] = row
            .data
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(truncated)?;
        at += 4 + usize::try_from(i32::from_be_bytes(len_bytes)).unwrap_or(0);
    }
    if at > row.data.len() {
        return Err(truncated());
    }
    Ok(DataRow {
        field_count: keep as u16,
        data: row.data.slice(..at),
    })
}

fn truncated() -> PgError {
    PgError::protocol_violation("truncated DataRow from shard")
}

/// The StartupMessage (protocol 3.0) with `params`.
pub fn startup(buf: &mut BytesMut, params: &[(&str, &str)]) {
    let at = buf.len();
    buf.put_i32(0);
    buf.put_i32(196_608);
    for (k, v) in params {
        cstr(buf, k);
        cstr(buf, v);
    }
    buf.put_u8(0);
    let len = (buf.len() - at) as i32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// PasswordMessage / SASLResponse ('p' with raw payload).
pub fn password(buf: &mut BytesMut, payload: &[u8]) {
    message(buf, b'p', |b| b.put_slice(payload));
}

/// SASLInitialResponse for `mechanism`.
pub fn sasl_initial(buf: &mut BytesMut, mechanism: &str, data: &[u8]) {
    message(buf, b'p', |b| {
        cstr(b, mechanism);
        b.put_i32(data.len() as i32);
        b.put_slice(data);
    });
}

/// An element count as the protocol sends it (an unsigned 16-bit word);
/// every list here came from a client message, which holds at most 65,535.
fn count(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// Query (simple protocol).
pub fn query(buf: &mut BytesMut, sql: &str) {
    message(buf, b'Q', |b| cstr(b, sql));
}

/// Parse into a statement (`""`: the unnamed one).
pub fn parse(buf: &mut BytesMut, statement: &str, sql: &str, param_types: &[u32]) {
    message(buf, b'P', |b| {
        cstr(b, statement);
        cstr(b, sql);
        b.put_u16(count(param_types.len()));
        for t in param_types {
            b.put_u32(*t);
        }
    });
}

/// Bind a statement (`""`: the unnamed one) to the unnamed portal.
pub fn bind(
    buf: &mut BytesMut,
    statement: &str,
    param_formats: &[Format],
    values: &[Option<Bytes>],
    results: &[i16],
) {
    message(buf, b'B', |b| {
        cstr(b, "");
        cstr(b, statement);
        b.put_u16(count(param_formats.len()));
        for f in param_formats {
            b.put_i16(f.code());
        }
        b.put_u16(count(values.len()));
        for v in values {
            match v {
                None => b.put_i32(-1),
                Some(v) => {
                    b.put_i32(v.len() as i32);
                    b.put_slice(v);
                }
            }
        }
        b.put_u16(count(results.len()));
        for f in results {
            b.put_i16(*f);
        }
    });
}

/// Describe the unnamed statement ('S') or portal ('P').
pub fn describe(buf: &mut BytesMut, target: u8) {
    message(buf, b'D', |b| {
        b.put_u8(target);
        cstr(b, "");
    });
}

/// Close a prepared statement.
pub fn close_statement(buf: &mut BytesMut, statement: &str) {
    message(buf, b'C', |b| {
        b.put_u8(b'S');
        cstr(b, statement);
    });
}

/// Execute the unnamed portal with no row limit.
pub fn execute(buf: &mut BytesMut) {
    message(buf, b'E', |b| {
        cstr(b, "");
        b.put_i32(0);
    });
}

/// Sync.
pub fn sync(buf: &mut BytesMut) {
    message(buf, b'S', |_| {});
}

/// Terminate.
pub fn terminate(buf: &mut BytesMut) {
    message(buf, b'X', |_| {});
}

/// CopyData (the same message in both directions).
pub use crate::wire::backend::copy_data;

/// CopyDone.
pub fn copy_done(buf: &mut BytesMut) {
    message(buf, b'c', |_| {});
}

/// CopyFail with a reason.
pub fn copy_fail(buf: &mut BytesMut, reason: &str) {
    message(buf, b'f', |b| cstr(b, reason));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::DataRowBuilder;

    #[test]
    fn fields_and_truncation_share_bytes() {
        let mut b = DataRowBuilder::default();
        b.push(b"7");
        b.push_null();
        b.push(b"0.5");
        let row = b.finish();
        assert_eq!(
            fields(&row).unwrap(),
            vec![Some(&b"7"[..]), None, Some(&b"0.5"[..])]
        );
        let cut = truncate_row(&row, 2).unwrap();
        assert_eq!(cut.field_count, 2);
        assert_eq!(fields(&cut).unwrap(), vec![Some(&b"7"[..]), None]);
        let bad = DataRow {
            field_count: 2,
            data: Bytes::from_static(&[0, 0, 0, 9, 1]),
        };
        assert!(fields(&bad).is_err());
    }

    #[test]
    fn error_response_is_decoded() {
        let body =
            Bytes::from_static(b"SERROR\0VERROR\0C42P01\0Mrelation \"x\" does not exist\0\0");
        let BackendMessage::Error(e) = BackendMessage::decode(b'E', body).unwrap() else {
            panic!("not an error");
        };
        assert_eq!(
            (e.code.as_ref(), e.message.as_str()),
            ("42P01", "relation \"x\" does not exist")
        );
    }
}
