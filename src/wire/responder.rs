//! What a handler writes results through. In the simple protocol every
//! message goes straight to the client. For an extended-protocol Execute
//! the responder applies the portal's result formats and row limit: rows
//! past the limit are kept in the portal, PortalSuspended is sent, and the
//! next Execute on the portal continues from them.
//!
//! A responder can also record what a statement answers
//! ([`Responder::record`]): the RowDescription, DataRows and
//! CommandComplete encoded exactly as the simple protocol sends them, so
//! a result cache can replay the same bytes later.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};

use super::backend::{self, DataRow, FieldDescription};
use super::cancel::{CancelSignal, StatementTimer};
use super::connection::Connection;
use super::copy::{CopyBoth, CopyFormat, CopyIn, CopyOut};
use super::error::PgError;
use super::session::Session;
use super::value::{Format, Value};

/// A client byte stream (TCP today, TLS later), boxed so that handlers do
/// not depend on it.
pub trait ClientIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ClientIo for T {}

/// Rows an Execute produced past its row limit, with the tag to send once
/// they are all delivered.
#[derive(Debug, Default)]
pub(crate) struct Suspended {
    pub(crate) rows: VecDeque<DataRow>,
    pub(crate) tag: Option<String>,
}

/// Where an Execute's output goes.
pub(crate) struct PortalOutput {
    pub(crate) formats: Vec<Format>,
    pub(crate) limit: u32,
    pub(crate) sent: u32,
    pub(crate) suspended: Suspended,
    /// The last CommandComplete tag the handler gave.
    pub(crate) tag: Option<String>,
    /// Type OIDs of the columns Describe announced for the statement.
    pub(crate) described: Vec<u32>,
    /// The handler's columns differ from `described`: its rows would not
    /// match what the client was told, so they are refused.
    pub(crate) changed: bool,
}

/// The handler's view of the client for one statement.
pub struct Responder<'a> {
    pub(crate) conn: &'a mut Connection<Box<dyn ClientIo>>,
    pub(crate) session: &'a mut Session,
    pub(crate) cancel: &'a Arc<CancelSignal>,
    /// The running statement's `statement_timeout`, if set.
    pub(crate) timer: Option<StatementTimer>,
    pub(crate) portal: Option<PortalOutput>,
    pub(crate) copy_open: bool,
    pub(crate) recording: Option<Recording>,
    /// The last CommandComplete tag given (see [`Responder::take_tag`]).
    pub(crate) last_tag: Option<String>,
}

/// The messages of one statement's answer, as they were encoded.
#[derive(Debug)]
pub(crate) struct Recording {
    bytes: BytesMut,
    limit: usize,
    /// A notice, COPY, empty query or the size limit made the answer unfit
    /// to replay.
    spoiled: bool,
}

impl Recording {
    fn add(&mut self, encode: impl FnOnce(&mut BytesMut)) {
        if self.spoiled {
            return;
        }
        encode(&mut self.bytes);
        if self.bytes.len() > self.limit {
            self.spoil();
        }
    }

    fn spoil(&mut self) {
        self.spoiled = true;
        self.bytes = BytesMut::new();
    }
}

fn io_error(e: std::io::Error) -> PgError {
    PgError::connection_lost(e.to_string())
}

impl Responder<'_> {
    /// The session: settings, transaction status, user.
    pub fn session(&mut self) -> &mut Session {
        self.session
    }

    /// The running statement's cancel signal; clone it into work sent to
    /// a blocking pool, which must poll [`CancelSignal::is_canceled`].
    pub fn cancel_signal(&self) -> &Arc<CancelSignal> {
        self.cancel
    }

    /// Starts `statement_timeout` anew, as the session sets it now, for the
    /// next statement of a simple Query that holds several: PostgreSQL
    /// times each on its own (so a `SET statement_timeout` earlier in the
    /// string applies to the statements after it).
    pub fn restart_statement_timeout(&mut self) {
        self.timer = None;
        self.timer = StatementTimer::arm(self.cancel, self.session);
    }

    /// `Err(57014)` once the statement was canceled or timed out.
    pub fn check_canceled(&self) -> Result<(), PgError> {
        self.cancel.error().map_or(Ok(()), Err)
    }

    /// True inside an extended-protocol Execute.
    pub fn is_extended(&self) -> bool {
        self.portal.is_some()
    }

    /// The format the client asked for column `i` (text in the simple
    /// protocol).
    pub fn result_format(&self, i: usize) -> Format {
        self.portal
            .as_ref()
            .and_then(|p| p.formats.get(i).copied())
            .unwrap_or_default()
    }

    /// Starts recording this statement's answer, up to `limit` bytes.
    pub fn record(&mut self, limit: usize) {
        self.recording = Some(Recording {
            bytes: BytesMut::new(),
            limit,
            spoiled: false,
        });
    }

    /// Stops recording: the answer's RowDescription, DataRows and
    /// CommandComplete messages, or `None` when it held anything else (a
    /// notice, COPY, an empty query) or outgrew the limit.
    pub fn take_recording(&mut self) -> Option<Bytes> {
        let r = self.recording.take()?;
        (!r.spoiled && !r.bytes.is_empty()).then(|| r.bytes.freeze())
    }

    /// Marks the answer being recorded as one the cache must not keep.
    pub fn spoil_recording(&mut self) {
        if let Some(r) = &mut self.recording {
            r.spoil();
        }
    }

    /// Announces result columns. Sent in the simple protocol; in the
    /// extended protocol Describe already did, so this only checks that
    /// the columns are still the described ones (rows of other columns are
    /// then refused, as PostgreSQL refuses a prepared statement whose
    /// result type changed).
    pub fn row_description(&mut self, fields: &[FieldDescription]) {
        if let Some(r) = &mut self.recording {
            r.add(|b| backend::row_description(b, fields));
        }
        match &mut self.portal {
            None => backend::row_description(&mut self.conn.out, fields),
            Some(p) => {
                p.changed = !fields
                    .iter()
                    .map(|f| f.type_oid)
                    .eq(p.described.iter().copied());
            }
        }
    }

    /// Sends one row of typed values in the requested formats: encoded
    /// straight into the output buffer when it goes out now (no row
    /// limit reached, nothing recorded), else kept as a [`DataRow`].
    pub async fn row(&mut self, values: &[Option<Value>]) -> Result<(), PgError> {
        let formats = self.portal.as_ref().map(|p| p.formats.as_slice());
        let encode = |b: &mut BytesMut| {
            for (i, v) in values.iter().enumerate() {
                match v {
                    None => b.put_i32(-1),
                    Some(v) => {
                        let format = formats.and_then(|f| f.get(i).copied());
                        backend::field_with(b, |b| v.encode(format.unwrap_or_default(), b));
                    }
                }
            }
        };
        let sends_now = self
            .portal
            .as_ref()
            .is_none_or(|p| !p.changed && (p.limit == 0 || p.sent < p.limit));
        if self.recording.is_some() || !sends_now {
            let mut data = BytesMut::new();
            encode(&mut data);
            let row = DataRow {
                field_count: values.len() as u16,
                data: data.freeze(),
            };
            return self.data_row(row).await;
        }
        backend::message(&mut self.conn.out, b'D', |b| {
            b.put_u16(values.len() as u16);
            encode(b);
        });
        if let Some(p) = &mut self.portal {
            p.sent += 1;
        }
        self.conn.flush_if_full().await.map_err(io_error)
    }

    /// Sends an already-encoded row (a proxy forwarding a shard's bytes
    /// must have asked the shard for [`Responder::result_format`]).
    pub async fn data_row(&mut self, row: DataRow) -> Result<(), PgError> {
        if let Some(r) = &mut self.recording {
            r.add(|b| backend::data_row(b, &row));
        }
        if let Some(p) = &mut self.portal {
            if p.changed {
                return Err(PgError::result_type_changed());
            }
            if p.limit != 0 && p.sent >= p.limit {
                p.suspended.rows.push_back(row);
                return Ok(());
            }
            p.sent += 1;
        }
        backend::data_row(&mut self.conn.out, &row);
        self.conn.flush_if_full().await.map_err(io_error)
    }

    /// How many already-encoded rows [`Responder::data_row_frames`] may
    /// send at once now: none while the answer is recorded or its columns
    /// changed, else up to the portal's row limit.
    pub fn row_frames_room(&self) -> usize {
        match &self.portal {
            _ if self.recording.is_some() => 0,
            None => usize::MAX,
            Some(p) if p.changed => 0,
            Some(p) if p.limit == 0 => usize::MAX,
            Some(p) => p.limit.saturating_sub(p.sent) as usize,
        }
    }

    /// Sends `count` DataRow messages exactly as a shard sent them (at
    /// most [`Responder::row_frames_room`], asked for in the client's
    /// formats): one copy, nothing decoded.
    pub async fn data_row_frames(&mut self, frames: &[u8], count: usize) -> Result<(), PgError> {
        if let Some(p) = &mut self.portal {
            p.sent = p
                .sent
                .saturating_add(u32::try_from(count).unwrap_or(u32::MAX));
        }
        self.conn.out.put_slice(frames);
        self.conn.flush_if_full().await.map_err(io_error)
    }

    /// CommandComplete with `tag`, e.g. `SELECT 3`, `INSERT 0 1`.
    pub fn complete(&mut self, tag: &str) {
        self.last_tag = Some(tag.to_string());
        if let Some(r) = &mut self.recording {
            r.add(|b| backend::command_complete(b, tag));
        }
        if let Some(p) = &mut self.portal {
            p.tag = Some(tag.to_string());
            if !p.suspended.rows.is_empty() {
                p.suspended.tag = Some(tag.to_string());
                return;
            }
        }
        backend::command_complete(&mut self.conn.out, tag);
    }

    /// The CommandComplete tag given since the last call, e.g. `SELECT 3`.
    pub fn take_tag(&mut self) -> Option<String> {
        self.last_tag.take()
    }

    /// EmptyQueryResponse (the query held no statement).
    pub fn empty_query(&mut self) {
        self.spoil_recording();
        backend::empty(&mut self.conn.out, backend::tag::EMPTY_QUERY);
    }

    /// Sends a NoticeResponse (a [`PgError`] of WARNING or NOTICE severity).
    pub fn notice(&mut self, notice: &PgError) {
        self.spoil_recording();
        backend::error_or_notice(&mut self.conn.out, notice);
    }

    /// Starts COPY FROM STDIN: sends CopyInResponse and returns the stream
    /// of CopyData chunks.
    pub async fn copy_in(
        &mut self,
        format: CopyFormat,
        columns: usize,
    ) -> Result<CopyIn<'_>, PgError> {
        self.spoil_recording();
        let (binary, codes) = format.codes(columns);
        backend::copy_response(&mut self.conn.out, b'G', binary, &codes);
        self.conn.flush().await.map_err(io_error)?;
        self.copy_open = true;
        Ok(CopyIn {
            conn: self.conn,
            open: &mut self.copy_open,
        })
    }

    /// Enters copy-both mode: sends CopyBothResponse (binary, no columns)
    /// and flushes.
    pub async fn copy_both(&mut self) -> Result<CopyBoth<'_>, PgError> {
        self.spoil_recording();
        backend::copy_response(&mut self.conn.out, b'W', false, &[]);
        self.conn.flush().await.map_err(io_error)?;
        Ok(CopyBoth { conn: self.conn })
    }

    /// Starts COPY TO STDOUT: sends CopyOutResponse.
    pub fn copy_out(&mut self, format: CopyFormat, columns: usize) -> CopyOut<'_> {
        self.spoil_recording();
        let (binary, codes) = format.codes(columns);
        backend::copy_response(&mut self.conn.out, b'H', binary, &codes);
        CopyOut { conn: self.conn }
    }
}
