//! The fuzzer's side of a connection: it writes a case's bytes while it
//! reads the server's answers (so neither side can block the other on a
//! full socket buffer), frames every answer strictly, and reports a
//! server that neither answers nor closes before a deadline as a hang.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Longest backend message accepted from our servers (a DataRow of the
/// widest vector is far smaller).
const MAX_BACKEND_MESSAGE: usize = 256 << 20;

/// One backend message.
#[derive(Debug, Clone)]
pub struct Msg {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl Msg {
    /// A field (`S`, `C`, `M`…) of an ErrorResponse or NoticeResponse.
    pub fn field(&self, code: u8) -> Option<String> {
        let mut rest = &self.body[..];
        while let Some((&c, tail)) = rest.split_first() {
            if c == 0 {
                break;
            }
            let end = tail.iter().position(|&b| b == 0)?;
            if c == code {
                return Some(String::from_utf8_lossy(&tail[..end]).into_owned());
            }
            rest = &tail[end + 1..];
        }
        None
    }

    /// The text of every column of a DataRow (NULL as `None`).
    pub fn columns(&self) -> Vec<Option<String>> {
        let b = &self.body;
        let mut out = Vec::new();
        let mut at = 2;
        while at + 4 <= b.len() {
            let len = i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            at += 4;
            if len < 0 {
                out.push(None);
                continue;
            }
            let end = (at + len as usize).min(b.len());
            out.push(Some(String::from_utf8_lossy(&b[at..end]).into_owned()));
            at = end;
        }
        out
    }
}

/// What went wrong on a connection: each is a finding.
#[derive(Debug)]
pub enum Fault {
    /// No answer and no close before the deadline.
    Hang(String),
    /// The server sent bytes that are not a backend message.
    Malformed(String),
    /// A backend message broke the protocol's rules (an error without a
    /// valid SQLSTATE, a PANIC…).
    Invalid(String),
    /// The server refused or failed a fresh connection.
    Refused(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Hang(s) => write!(f, "hang: {s}"),
            Fault::Malformed(s) => write!(f, "malformed answer: {s}"),
            Fault::Invalid(s) => write!(f, "invalid message: {s}"),
            Fault::Refused(s) => write!(f, "new connection failed: {s}"),
        }
    }
}

/// What an exchange read.
pub struct Exchange {
    /// Single-byte answers read first (to SSLRequest / GSSENCRequest).
    pub bytes: Vec<u8>,
    /// The messages, in order.
    pub msgs: Vec<Msg>,
    /// The server closed the connection.
    pub closed: bool,
}

/// A raw connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to 127.0.0.1:`port`.
    pub async fn connect(port: u16) -> Result<Conn, Fault> {
        let stream = tokio::time::timeout(
            Duration::from_secs(10),
            TcpStream::connect(("127.0.0.1", port)),
        )
        .await
        .map_err(|_| Fault::Hang("connect".into()))?
        .map_err(|e| Fault::Refused(format!("connect: {e}")))?;
        stream.set_nodelay(true).ok();
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    /// Writes `bytes` (then shuts the write side when `shutdown`) while
    /// reading `single` one-byte answers and then messages, until `done`
    /// says so or the server closes; a deadline passing first is a hang.
    pub async fn exchange(
        &mut self,
        bytes: &[u8],
        shutdown: bool,
        single: usize,
        deadline: Instant,
        mut done: impl FnMut(&[Msg]) -> bool,
    ) -> Result<Exchange, Fault> {
        let Conn { stream, buf } = self;
        let (mut r, mut w) = stream.split();
        let write = async {
            // A server that closed early makes the write fail: that is
            // an answer, read below, not a finding.
            if w.write_all(bytes).await.is_ok() && shutdown {
                w.shutdown().await.ok();
            }
        };
        let mut out = Exchange {
            bytes: Vec::new(),
            msgs: Vec::new(),
            closed: false,
        };
        let read = async {
            let out = &mut out;
            loop {
                if out.bytes.len() < single {
                    if let Some(&b) = buf.first() {
                        buf.remove(0);
                        out.bytes.push(b);
                        continue;
                    }
                } else if let Some(msg) = take_message(buf)? {
                    validate(&msg)?;
                    out.msgs.push(msg);
                    if done(&out.msgs) {
                        return Ok(());
                    }
                    continue;
                }
                let mut chunk = [0u8; 16 * 1024];
                match r.read(&mut chunk).await {
                    Ok(0) | Err(_) => {
                        if !buf.is_empty() && out.bytes.len() >= single {
                            return Err(Fault::Malformed(format!(
                                "closed after {} bytes of an incomplete message: {:?}",
                                buf.len(),
                                &buf[..buf.len().min(64)]
                            )));
                        }
                        out.closed = true;
                        return Ok(());
                    }
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        };
        let result = tokio::time::timeout_at(deadline, async { tokio::join!(write, read).1 }).await;
        match result {
            Ok(Ok(())) => Ok(out),
            Ok(Err(fault)) => Err(fault),
            Err(_) => {
                let tail: Vec<String> = out.msgs.iter().rev().take(6).rev().map(summary).collect();
                Err(Fault::Hang(format!(
                    "neither an answer nor a close after {} messages (last: {}; {} bytes unread)",
                    out.msgs.len(),
                    tail.join(", "),
                    buf.len()
                )))
            }
        }
    }
}

/// A message's type, and an error's or notice's SQLSTATE and text.
fn summary(m: &Msg) -> String {
    match m.tag {
        b'E' | b'N' => format!(
            "{} {} {}",
            m.tag as char,
            m.field(b'C').unwrap_or_default(),
            m.field(b'M').unwrap_or_default()
        ),
        b'D' => format!("D {:?}", m.columns()),
        t => (t as char).to_string(),
    }
}

/// Takes one complete message off the front of `buf`.
fn take_message(buf: &mut Vec<u8>) -> Result<Option<Msg>, Fault> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if len < 4 || len as usize > MAX_BACKEND_MESSAGE {
        return Err(Fault::Malformed(format!(
            "message {:?} with length {len}",
            buf[0] as char
        )));
    }
    let total = 1 + len as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let msg = Msg {
        tag: buf[0],
        body: buf[5..total].to_vec(),
    };
    buf.drain(..total);
    Ok(Some(msg))
}

/// Backend message types of protocol 3.
const BACKEND_TAGS: &[u8] = b"123ACDEGHIKNRSTVWZcdnstv";

/// Checks a backend message's type and, for errors and notices, that
/// they carry a severity, a message and a well-formed SQLSTATE.
pub fn validate(msg: &Msg) -> Result<(), Fault> {
    if !BACKEND_TAGS.contains(&msg.tag) {
        return Err(Fault::Malformed(format!(
            "unknown message type {:?}",
            msg.tag as char
        )));
    }
    if msg.tag != b'E' && msg.tag != b'N' {
        return Ok(());
    }
    let severity = msg.field(b'V').or_else(|| msg.field(b'S'));
    let code = msg.field(b'C').unwrap_or_default();
    let text = msg.field(b'M');
    let allowed: &[&str] = if msg.tag == b'E' {
        &["ERROR", "FATAL"]
    } else {
        &["WARNING", "NOTICE", "DEBUG", "INFO", "LOG"]
    };
    let well_formed = code.len() == 5
        && code
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
    if !severity.as_deref().is_some_and(|s| allowed.contains(&s)) || !well_formed || text.is_none()
    {
        return Err(Fault::Invalid(format!(
            "{} with severity {severity:?}, SQLSTATE {code:?}, message {text:?}",
            msg.tag as char
        )));
    }
    Ok(())
}
