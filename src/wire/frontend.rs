//! Messages a client sends after startup, decoded from one frame's body.
//! Decoding never panics: short or malformed bodies are 08P01 errors with
//! PostgreSQL's wording.

use bytes::{Buf, Bytes};

use super::error::PgError;

/// What a Describe or Close names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// 'S': a prepared statement.
    Statement,
    /// 'P': a portal.
    Portal,
}

/// One decoded frontend message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendMessage {
    /// 'Q' simple query.
    Query(String),
    /// 'P' Parse.
    Parse {
        /// Statement name ("" = unnamed).
        name: String,
        /// SQL text.
        query: String,
        /// Parameter type OIDs the client specified (0 = infer).
        param_types: Vec<u32>,
    },
    /// 'B' Bind.
    Bind(Bind),
    /// 'D' Describe.
    Describe {
        /// Statement or portal.
        target: Target,
        /// Its name.
        name: String,
    },
    /// 'E' Execute.
    Execute {
        /// Portal name.
        portal: String,
        /// Row limit; 0 = all.
        max_rows: u32,
    },
    /// 'S' Sync.
    Sync,
    /// 'H' Flush.
    Flush,
    /// 'C' Close.
    Close {
        /// Statement or portal.
        target: Target,
        /// Its name.
        name: String,
    },
    /// 'd' CopyData.
    CopyData(Bytes),
    /// 'c' CopyDone.
    CopyDone,
    /// 'f' CopyFail with the client's reason.
    CopyFail(String),
    /// 'p' a password, SASLInitialResponse or SASLResponse (decoded by auth).
    Password(Bytes),
    /// 'F' FunctionCall (not supported).
    FunctionCall,
    /// 'X' Terminate.
    Terminate,
}

/// The body of a Bind message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bind {
    /// Destination portal ("" = unnamed).
    pub portal: String,
    /// Source statement ("" = unnamed).
    pub statement: String,
    /// Parameter format codes: none (all text), one (for all) or one each.
    pub param_formats: Vec<i16>,
    /// Parameter values; `None` is SQL NULL.
    pub params: Vec<Option<Bytes>>,
    /// Result format codes: none (all text), one (for all) or one each.
    pub result_formats: Vec<i16>,
}

impl FrontendMessage {
    /// Decodes the body of a message of type `tag`.
    pub fn decode(tag: u8, body: Bytes) -> Result<Self, PgError> {
        let mut r = BodyReader(body);
        let msg = match tag {
            b'Q' => FrontendMessage::Query(r.cstr()?),
            b'P' => {
                let name = r.cstr()?;
                let query = r.cstr()?;
                let n = r.count()?;
                let param_types = (0..n).map(|_| r.u32()).collect::<Result<_, _>>()?;
                FrontendMessage::Parse {
                    name,
                    query,
                    param_types,
                }
            }
            b'B' => FrontendMessage::Bind(decode_bind(&mut r)?),
            b'D' => {
                let target = r.target()?;
                FrontendMessage::Describe {
                    target,
                    name: r.cstr()?,
                }
            }
            b'E' => {
                let portal = r.cstr()?;
                let max_rows = r.i32()?.max(0) as u32;
                FrontendMessage::Execute { portal, max_rows }
            }
            b'S' => FrontendMessage::Sync,
            b'H' => FrontendMessage::Flush,
            b'C' => {
                let target = r.target()?;
                FrontendMessage::Close {
                    target,
                    name: r.cstr()?,
                }
            }
            b'd' => return Ok(FrontendMessage::CopyData(r.0)),
            b'c' => FrontendMessage::CopyDone,
            b'f' => FrontendMessage::CopyFail(r.cstr()?),
            b'p' => return Ok(FrontendMessage::Password(r.0)),
            b'F' => return Ok(FrontendMessage::FunctionCall),
            b'X' => FrontendMessage::Terminate,
            other => {
                return Err(PgError::protocol_violation(format!(
                    "invalid frontend message type {other}"
                )))
            }
        };
        r.finish()?;
        Ok(msg)
    }
}

fn decode_bind(r: &mut BodyReader) -> Result<Bind, PgError> {
    let portal = r.cstr()?;
    let statement = r.cstr()?;
    let n = r.count()?;
    let param_formats = (0..n).map(|_| r.i16()).collect::<Result<_, _>>()?;
    let n = r.count()?;
    let mut params = Vec::with_capacity(n.min(r.0.len() / 4));
    for _ in 0..n {
        let len = r.i32()?;
        params.push(if len < 0 {
            None
        } else {
            Some(r.bytes(len as usize)?)
        });
    }
    let n = r.count()?;
    let result_formats = (0..n).map(|_| r.i16()).collect::<Result<_, _>>()?;
    Ok(Bind {
        portal,
        statement,
        param_formats,
        params,
        result_formats,
    })
}

/// A cursor over a message body whose reads fail with PostgreSQL's
/// `insufficient data left in message` instead of panicking.
pub struct BodyReader(pub Bytes);

impl BodyReader {
    fn need(&self, n: usize) -> Result<(), PgError> {
        if self.0.remaining() < n {
            Err(PgError::protocol_violation(
                "insufficient data left in message",
            ))
        } else {
            Ok(())
        }
    }

    /// A NUL-terminated UTF-8 string.
    pub fn cstr(&mut self) -> Result<String, PgError> {
        let invalid = || PgError::protocol_violation("invalid string in message");
        let bytes = std::ffi::CStr::from_bytes_until_nul(&self.0)
            .map_err(|_| invalid())?
            .to_bytes();
        let s = std::str::from_utf8(bytes)
            .map_err(|_| invalid())?
            .to_owned();
        self.0.advance(s.len() + 1);
        Ok(s)
    }

    /// A big-endian i16.
    pub fn i16(&mut self) -> Result<i16, PgError> {
        self.need(2)?;
        Ok(self.0.get_i16())
    }

    /// A big-endian i32.
    pub fn i32(&mut self) -> Result<i32, PgError> {
        self.need(4)?;
        Ok(self.0.get_i32())
    }

    /// A big-endian u32 (an OID).
    pub fn u32(&mut self) -> Result<u32, PgError> {
        self.need(4)?;
        Ok(self.0.get_u32())
    }

    /// `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<Bytes, PgError> {
        self.need(n)?;
        Ok(self.0.split_to(n))
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> Bytes {
        let n = self.0.len();
        self.0.split_to(n)
    }

    /// A big-endian u16.
    pub fn u16(&mut self) -> Result<u16, PgError> {
        self.need(2)?;
        Ok(self.0.get_u16())
    }

    /// An element count: an unsigned 16-bit word, as PostgreSQL reads it
    /// (`pq_getmsgint(msg, 2)`), so up to 65,535 parameters.
    fn count(&mut self) -> Result<usize, PgError> {
        self.u16().map(usize::from)
    }

    fn target(&mut self) -> Result<Target, PgError> {
        self.need(1)?;
        match self.0.get_u8() {
            b'S' => Ok(Target::Statement),
            b'P' => Ok(Target::Portal),
            t => Err(PgError::protocol_violation(format!(
                "invalid DESCRIBE message subtype {t}"
            ))),
        }
    }

    /// Fails unless the whole body was read.
    pub fn finish(&self) -> Result<(), PgError> {
        if self.0.has_remaining() {
            Err(PgError::protocol_violation("invalid message format"))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_bind_with_null_and_formats() {
        let mut b = Vec::new();
        b.extend_from_slice(b"p\0s\0");
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&2i16.to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(b"hi");
        b.extend_from_slice(&0i16.to_be_bytes());
        let FrontendMessage::Bind(bind) = FrontendMessage::decode(b'B', b.into()).unwrap() else {
            panic!("not a bind");
        };
        assert_eq!(bind.portal, "p");
        assert_eq!(bind.statement, "s");
        assert_eq!(bind.param_formats, vec![1]);
        assert_eq!(bind.params, vec![None, Some(Bytes::from_static(b"hi"))]);
        assert!(bind.result_formats.is_empty());
    }

    #[test]
    fn truncated_and_unknown_messages_are_protocol_violations() {
        let e = FrontendMessage::decode(b'B', Bytes::from_static(b"p\0s\0\x00")).unwrap_err();
        assert_eq!(e.code, "08P01");
        assert_eq!(e.message, "insufficient data left in message");
        let e = FrontendMessage::decode(b'Q', Bytes::from_static(b"select")).unwrap_err();
        assert_eq!(e.message, "invalid string in message");
        let e = FrontendMessage::decode(b'z', Bytes::new()).unwrap_err();
        assert_eq!(e.message, "invalid frontend message type 122");
        let e = FrontendMessage::decode(b'S', Bytes::from_static(b"x")).unwrap_err();
        assert_eq!(e.message, "invalid message format");
    }
}
