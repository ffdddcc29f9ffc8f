//! COPY framing: the handler asks the [`super::Responder`] to start a COPY
//! and then reads CopyData chunks ([`CopyIn`]) or writes them
//! ([`CopyOut`]), or both at once ([`CopyBoth`], for START_REPLICATION). Parsing the rows inside the chunks is the handler's job;
//! the layer only hands over the format the statement asked for.

use bytes::Bytes;

use super::backend;
use super::connection::Connection;
use super::error::{PgError, WireError};
use super::frontend::FrontendMessage;
use super::responder::ClientIo;
use super::sqlstate;

/// The format named in `COPY … WITH (FORMAT …)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    /// Tab-separated text.
    Text,
    /// CSV.
    Csv,
    /// PostgreSQL's binary COPY format.
    Binary,
}

impl CopyFormat {
    fn is_binary(self) -> bool {
        self == CopyFormat::Binary
    }

    /// The CopyIn/CopyOutResponse header fields: overall format and one
    /// format code per column.
    pub(crate) fn codes(self, columns: usize) -> (bool, Vec<i16>) {
        let code = i16::from(self.is_binary());
        (self.is_binary(), vec![code; columns])
    }
}

/// CopyData chunks from the client, until CopyDone.
pub struct CopyIn<'a> {
    pub(crate) conn: &'a mut Connection<Box<dyn ClientIo>>,
    pub(crate) open: &'a mut bool,
}

impl CopyIn<'_> {
    /// The next chunk, `None` after CopyDone; CopyFail is 57014
    /// `COPY from stdin failed: <reason>`.
    pub async fn next(&mut self) -> Result<Option<Bytes>, PgError> {
        if !*self.open {
            return Ok(None);
        }
        loop {
            let msg = self.conn.read_message().await.map_err(copy_error)?;
            match msg {
                Some(FrontendMessage::CopyData(b)) => return Ok(Some(b)),
                Some(FrontendMessage::CopyDone) => {
                    *self.open = false;
                    return Ok(None);
                }
                Some(FrontendMessage::CopyFail(reason)) => {
                    *self.open = false;
                    return Err(PgError::new(
                        sqlstate::QUERY_CANCELED,
                        format!("COPY from stdin failed: {reason}"),
                    ));
                }
                Some(FrontendMessage::Flush | FrontendMessage::Sync) => {}
                Some(other) => {
                    *self.open = false;
                    return Err(PgError::protocol_violation(format!(
                        "unexpected message type during COPY from stdin: {other:?}"
                    )));
                }
                None => {
                    *self.open = false;
                    return Err(PgError::connection_lost(
                        "unexpected EOF on client connection with an open transaction",
                    ));
                }
            }
        }
    }
}

fn copy_error(e: WireError) -> PgError {
    match e {
        WireError::Fatal(e) => e,
        other => PgError::connection_lost(other.to_string()),
    }
}

/// Writes CopyData chunks to the client; [`CopyOut::finish`] sends CopyDone.
pub struct CopyOut<'a> {
    pub(crate) conn: &'a mut Connection<Box<dyn ClientIo>>,
}

impl CopyOut<'_> {
    /// Sends one chunk (any split of the data is valid).
    pub async fn send(&mut self, chunk: &[u8]) -> Result<(), PgError> {
        backend::copy_data(&mut self.conn.out, chunk);
        self.conn
            .flush_if_full()
            .await
            .map_err(|e| PgError::connection_lost(e.to_string()))
    }

    /// Sends CopyDone; the handler then sends CommandComplete `COPY n`.
    pub fn finish(self) {
        backend::empty(&mut self.conn.out, backend::tag::COPY_DONE);
    }
}

/// Copy-both mode (START_REPLICATION): CopyData both ways until either
/// side sends CopyDone.
pub struct CopyBoth<'a> {
    pub(crate) conn: &'a mut Connection<Box<dyn ClientIo>>,
}

impl CopyBoth<'_> {
    /// Queues one CopyData message (sent at [`CopyBoth::flush`] or when
    /// the buffer is full).
    pub async fn send(&mut self, chunk: &[u8]) -> Result<(), PgError> {
        backend::copy_data(&mut self.conn.out, chunk);
        self.conn
            .flush_if_full()
            .await
            .map_err(|e| PgError::connection_lost(e.to_string()))
    }

    /// Sends what is queued.
    pub async fn flush(&mut self) -> Result<(), PgError> {
        self.conn
            .flush()
            .await
            .map_err(|e| PgError::connection_lost(e.to_string()))
    }

    /// The client's next CopyData, `None` after its CopyDone. Cancel-safe:
    /// dropped before a whole message arrived, it loses nothing.
    pub async fn recv(&mut self) -> Result<Option<Bytes>, PgError> {
        loop {
            match self.conn.read_message().await.map_err(copy_error)? {
                Some(FrontendMessage::CopyData(b)) => return Ok(Some(b)),
                Some(FrontendMessage::CopyDone) => return Ok(None),
                Some(FrontendMessage::Flush | FrontendMessage::Sync) => {}
                Some(FrontendMessage::CopyFail(reason)) => {
                    return Err(PgError::new(
                        sqlstate::QUERY_CANCELED,
                        format!("COPY from stdin failed: {reason}"),
                    ))
                }
                Some(other) => {
                    return Err(PgError::protocol_violation(format!(
                        "unexpected message type during COPY: {other:?}"
                    )))
                }
                None => {
                    return Err(PgError::connection_lost(
                        "unexpected EOF on standby connection",
                    ))
                }
            }
        }
    }

    /// Sends CopyDone (the server's end of the stream).
    pub fn finish(self) {
        backend::empty(&mut self.conn.out, backend::tag::COPY_DONE);
    }
}
