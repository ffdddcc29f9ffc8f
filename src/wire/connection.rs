//! Framing over a socket (mini-redis's `Connection`): a read buffer that
//! yields whole frames, `None` on a clean EOF and an error on EOF
//! mid-frame, and a write buffer flushed at protocol boundaries
//! (ReadyForQuery, Flush, before waiting for COPY data) or when it grows
//! past [`FLUSH_AT`].

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::error::{PgError, WireError};
use super::frontend::FrontendMessage;
use super::prefixed::Prefixed;
use super::responder::ClientIo;
use super::tls::ServerTls;

/// Output size at which row streaming flushes without waiting for a boundary.
pub const FLUSH_AT: usize = 64 * 1024;
/// PostgreSQL's `MAX_STARTUP_PACKET_LENGTH`.
const MAX_STARTUP: usize = 10_000;
/// PostgreSQL's `PG_MAX_AUTH_TOKEN_LENGTH`: the longest message accepted
/// during authentication.
pub const MAX_AUTH_MESSAGE: usize = 65_535;
/// Most buffer space reserved ahead of bytes actually received: a
/// declared length only says how much may come, so a client announcing
/// 1 GiB and sending nothing costs no more than this.
const READ_AHEAD: usize = 64 * 1024;
/// Least buffer space offered to each read: a client's Parse, Bind,
/// Execute and Sync carrying a vector of a few thousand dimensions as
/// text, or a shard's whole reply, then arrive in one read system call
/// rather than in pieces cut where an earlier frame left the buffer.
const READ_ROOM: usize = 16 * 1024;

/// A client socket with its buffers.
#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    read: BytesMut,
    /// Pending output; backend message encoders write here.
    pub out: BytesMut,
    max_message: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Wraps `stream`; frames longer than `max_message` bytes are refused.
    pub fn new(stream: S, max_message: usize) -> Self {
        Connection {
            stream,
            read: BytesMut::with_capacity(READ_ROOM),
            out: BytesMut::with_capacity(8 * 1024),
            max_message,
        }
    }

    /// Reads until `n` bytes are buffered; `Ok(false)` on EOF before any
    /// byte of the frame.
    async fn fill(&mut self, n: usize) -> Result<bool, WireError> {
        while self.read.len() < n {
            self.read
                .reserve((n - self.read.len()).clamp(READ_ROOM, READ_AHEAD));
            if self.stream.read_buf(&mut self.read).await? == 0 {
                return if self.read.is_empty() {
                    Ok(false)
                } else {
                    Err(WireError::UnexpectedEof)
                };
            }
        }
        Ok(true)
    }

    fn length(&self, at: usize, max: usize) -> Result<usize, WireError> {
        let len = i32::from_be_bytes([
            self.read[at],
            self.read[at + 1],
            self.read[at + 2],
            self.read[at + 3],
        ]);
        match usize::try_from(len) {
            Ok(n) if (4..=max.saturating_add(4)).contains(&n) => Ok(n - 4),
            _ => Err(WireError::Fatal(PgError::protocol_violation(
                "invalid message length",
            ))),
        }
    }

    /// Reads the untyped startup-phase packet body (after its length).
    pub async fn read_startup(&mut self) -> Result<Option<Bytes>, WireError> {
        if !self.fill(4).await? {
            return Ok(None);
        }
        let len = match self.length(0, MAX_STARTUP) {
            Ok(len) => len,
            Err(_) => {
                return Err(WireError::Unanswered(PgError::protocol_violation(
                    "invalid length of startup packet",
                )))
            }
        };
        if !self.fill(4 + len).await? {
            return Err(WireError::UnexpectedEof);
        }
        self.read.advance(4);
        Ok(Some(self.read.split_to(len).freeze()))
    }

    /// Reads one typed frame: its tag and body.
    pub async fn read_frame(&mut self) -> Result<Option<(u8, Bytes)>, WireError> {
        self.read_frame_within(self.max_message).await
    }

    /// Reads one typed frame whose body is at most `max` bytes.
    async fn read_frame_within(&mut self, max: usize) -> Result<Option<(u8, Bytes)>, WireError> {
        if !self.fill(5).await? {
            return Ok(None);
        }
        let len = self.length(1, max)?;
        if !self.fill(5 + len).await? {
            return Err(WireError::UnexpectedEof);
        }
        Ok(Some(self.split_frame(len)))
    }

    /// The next typed frame when it is already wholly buffered (no read
    /// is attempted): `Ok(None)` when more bytes must be read first.
    pub fn buffered_frame(&mut self) -> Result<Option<(u8, Bytes)>, WireError> {
        if self.read.len() < 5 {
            return Ok(None);
        }
        let len = self.length(1, self.max_message)?;
        if self.read.len() < 5 + len {
            return Ok(None);
        }
        Ok(Some(self.split_frame(len)))
    }

    /// Up to `max` frames tagged `tag` wholly buffered at the front, taken
    /// at once as they came (undecoded): their bytes and their count.
    pub fn buffered_run(&mut self, tag: u8, max: usize) -> Option<(Bytes, usize)> {
        let (mut end, mut count) = (0, 0);
        while count < max && self.read.get(end) == Some(&tag) && self.read.len() >= end + 5 {
            let Ok(len) = self.length(end + 1, self.max_message) else {
                break;
            };
            if self.read.len() < end + 5 + len {
                break;
            }
            end += 5 + len;
            count += 1;
        }
        (count > 0).then(|| (self.read.split_to(end).freeze(), count))
    }

    /// Takes the buffered frame whose body is `len` bytes.
    fn split_frame(&mut self, len: usize) -> (u8, Bytes) {
        let tag = self.read[0];
        self.read.advance(5);
        (tag, self.read.split_to(len).freeze())
    }

    /// Reads and decodes one frontend message.
    pub async fn read_message(&mut self) -> Result<Option<FrontendMessage>, WireError> {
        self.read_message_within(self.max_message).await
    }

    /// Reads and decodes one frontend message of at most `max` bytes (a
    /// longer one is a protocol violation before it is read).
    pub async fn read_message_within(
        &mut self,
        max: usize,
    ) -> Result<Option<FrontendMessage>, WireError> {
        match self.read_frame_within(max).await? {
            None => Ok(None),
            Some((tag, body)) => FrontendMessage::decode(tag, body)
                .map(Some)
                .map_err(WireError::Fatal),
        }
    }

    /// True when received bytes wait to be read (a pipelined message).
    pub fn has_buffered_input(&self) -> bool {
        !self.read.is_empty()
    }

    /// Writes out everything buffered.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        self.stream.flush().await
    }

    /// Flushes when the output buffer has grown past [`FLUSH_AT`].
    pub async fn flush_if_full(&mut self) -> std::io::Result<()> {
        if self.out.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }
}

impl Connection<Box<dyn ClientIo>> {
    /// True when the peer closed the connection or sent something not
    /// asked for (checked without waiting): an idle connection in that
    /// state is no longer usable.
    pub fn peer_gone(&mut self) -> bool {
        if !self.read.is_empty() {
            return true;
        }
        let mut byte = [0u8; 1];
        let mut buf = tokio::io::ReadBuf::new(&mut byte);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        // Ready means end of stream, an error or unasked-for bytes.
        std::pin::Pin::new(&mut self.stream)
            .poll_read(&mut cx, &mut buf)
            .is_ready()
    }

    /// The first byte the client sent, without consuming it; `None` on EOF.
    pub async fn peek_byte(&mut self) -> Result<Option<u8>, WireError> {
        Ok(self.fill(1).await?.then(|| self.read[0]))
    }

    /// Runs the TLS handshake on the socket; from then on every byte goes
    /// through TLS. After an SSLRequest (answered 'S'), bytes the client
    /// sent before the handshake are refused, as PostgreSQL refuses them
    /// (CVE-2021-23214): a man in the middle could have injected them.
    /// With `direct` (the client started with its ClientHello) the
    /// buffered bytes are the handshake's, and the client must have
    /// offered ALPN `postgresql`, as PostgreSQL 17 requires.
    pub async fn start_tls(&mut self, tls: &ServerTls, direct: bool) -> Result<(), WireError> {
        if !direct && !self.read.is_empty() {
            return Err(WireError::Fatal(
                PgError::protocol_violation("received unencrypted data after SSL request")
                    .with_detail("This could be either a client-software bug or evidence of an attempted man-in-the-middle attack."),
            ));
        }
        // The socket moves into the TLS stream; if the handshake fails the
        // connection is over and the placeholder is only dropped.
        let mut plain = std::mem::replace(&mut self.stream, Box::new(tokio::io::empty()));
        if !self.read.is_empty() {
            plain = Box::new(Prefixed::new(self.read.split().freeze(), plain));
        }
        let stream = tls.acceptor().accept(plain).await?;
        let alpn = stream.get_ref().1.alpn_protocol().is_some();
        self.stream = Box::new(stream);
        if direct && !alpn {
            return Err(WireError::Fatal(PgError::protocol_violation(
                "received direct SSL connection request without ALPN protocol negotiation extension",
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn frames_eof_and_oversize() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut conn = Connection::new(server, 16);
        client.write_all(b"Q\0\0\0\x09abcd\0").await.unwrap();
        client.write_all(b"Q\0\0\0\x40").await.unwrap();
        let Some(FrontendMessage::Query(q)) = conn.read_message().await.unwrap() else {
            panic!("no query");
        };
        assert_eq!(q, "abcd");
        match conn.read_message().await {
            Err(WireError::Fatal(e)) => assert_eq!(e.message, "invalid message length"),
            other => panic!("{other:?}"),
        }
        let (mut client, server) = tokio::io::duplex(1024);
        let mut conn = Connection::new(server, 16);
        client.write_all(b"S\0\0").await.unwrap();
        drop(client);
        assert!(matches!(
            conn.read_frame().await,
            Err(WireError::UnexpectedEof)
        ));
        let (client, server) = tokio::io::duplex(1024);
        let mut conn = Connection::new(server, 16);
        drop(client);
        assert!(conn.read_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn buffered_frames_are_taken_without_reading() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut conn = Connection::new(server, 64);
        // Three rows, a tag, and the first bytes of a fourth row.
        client
            .write_all(b"D\0\0\0\x05aD\0\0\0\x06bbD\0\0\0\x04C\0\0\0\x05xD\0\0")
            .await
            .unwrap();
        assert_eq!(
            conn.read_frame().await.unwrap().unwrap(),
            (b'D', Bytes::from("a"))
        );
        let (rows, n) = conn.buffered_run(b'D', 1).unwrap();
        assert_eq!((&rows[..], n), (&b"D\0\0\0\x06bb"[..], 1));
        let (rows, n) = conn.buffered_run(b'D', usize::MAX).unwrap();
        assert_eq!((&rows[..], n), (&b"D\0\0\0\x04"[..], 1));
        assert!(conn.buffered_run(b'D', usize::MAX).is_none());
        assert_eq!(
            conn.buffered_frame().unwrap().unwrap(),
            (b'C', Bytes::from("x"))
        );
        // Half a frame stays until the rest is read.
        assert!(conn.buffered_frame().unwrap().is_none());
        assert!(conn.buffered_run(b'D', usize::MAX).is_none());
        client.write_all(b"\0\x05y").await.unwrap();
        assert_eq!(
            conn.read_frame().await.unwrap().unwrap(),
            (b'D', Bytes::from("y"))
        );
        // A bad length is an error, not a frame.
        client.write_all(b"D\0\0\0\x01").await.unwrap();
        conn.fill(5).await.unwrap();
        assert!(conn.buffered_frame().is_err());
        assert!(conn.buffered_run(b'D', usize::MAX).is_none());
    }
}
