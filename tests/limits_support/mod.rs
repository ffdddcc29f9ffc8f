//! A raw protocol client for the `limits` tests: the bytes no client
//! library sends (65,535 parameters, protocol 3.2, silent sockets), read
//! back as typed messages, so one test can send the same bytes to real
//! PostgreSQL, a `pgvshard shard` and the proxy and compare the answers.

#![allow(dead_code)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Protocol 3.0 as a StartupMessage version word.
pub const V3_0: i32 = 3 << 16;
/// Protocol 3.2 (PostgreSQL 18).
pub const V3_2: i32 = (3 << 16) | 2;

/// One backend message: its tag and body.
#[derive(Debug, Clone)]
pub struct Msg {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl Msg {
    /// An ErrorResponse's or NoticeResponse's field `code` ('C', 'M', 'S').
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
}

/// A framed message with a type byte.
pub fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// A StartupMessage with `version` and `params` (name, value) pairs.
pub fn startup(version: i32, params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    for (k, v) in params {
        for s in [k, v] {
            body.extend_from_slice(s.as_bytes());
            body.push(0);
        }
    }
    body.push(0);
    let mut p = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    p.extend_from_slice(&body);
    p
}

/// The SSLRequest packet.
pub fn ssl_request() -> Vec<u8> {
    let mut p = 8i32.to_be_bytes().to_vec();
    p.extend_from_slice(&80_877_103i32.to_be_bytes());
    p
}

/// A socket with a read buffer.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connects to 127.0.0.1:`port`.
    pub async fn connect(port: u16) -> Raw {
        Raw {
            stream: TcpStream::connect(("127.0.0.1", port)).await.unwrap(),
            buf: Vec::new(),
        }
    }

    /// Sends bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    async fn fill(&mut self, n: usize) -> bool {
        while self.buf.len() < n {
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout(Duration::from_secs(20), self.stream.read(&mut chunk)).await
            {
                Ok(Ok(0)) | Ok(Err(_)) => return false,
                Ok(Ok(k)) => self.buf.extend_from_slice(&chunk[..k]),
                Err(_) => panic!("no answer within 20 s"),
            }
        }
        true
    }

    /// One byte (the answer to an SSLRequest).
    pub async fn byte(&mut self) -> Option<u8> {
        self.fill(1).await.then(|| self.buf.remove(0))
    }

    /// The next message; `None` when the server closed the connection.
    pub async fn recv(&mut self) -> Option<Msg> {
        if !self.fill(5).await {
            return None;
        }
        let len = i32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
        let total = 1 + len as usize;
        if !self.fill(total).await {
            return None;
        }
        let body = self.buf[5..total].to_vec();
        let tag = self.buf[0];
        self.buf.drain(..total);
        Some(Msg { tag, body })
    }

    /// Messages up to and including ReadyForQuery, or until the server
    /// closes the connection.
    pub async fn until_ready(&mut self) -> Vec<Msg> {
        let mut all = Vec::new();
        while let Some(m) = self.recv().await {
            let done = m.tag == b'Z';
            all.push(m);
            if done {
                break;
            }
        }
        all
    }

    /// Connects, starts protocol 3.0 as `postgres` on `db` (trust) and
    /// reads up to ReadyForQuery.
    pub async fn session(port: u16, db: &str) -> Raw {
        let mut raw = Raw::connect(port).await;
        raw.send(&startup(V3_0, &[("user", "postgres"), ("database", db)]))
            .await;
        let msgs = raw.until_ready().await;
        assert_eq!(msgs.last().map(|m| m.tag), Some(b'Z'), "{msgs:?}");
        raw
    }
}

/// Parse `sql` declaring `n` int4 parameters, Bind `n` text values
/// (`1`, `2`, …), Execute, Sync: the extended protocol at its widest.
pub fn wide_bind(sql: &str, n: usize) -> Vec<u8> {
    let mut parse = vec![0u8];
    parse.extend_from_slice(sql.as_bytes());
    parse.push(0);
    parse.extend_from_slice(&(n as u16).to_be_bytes());
    for _ in 0..n {
        parse.extend_from_slice(&23u32.to_be_bytes());
    }
    let mut bind = vec![0u8, 0u8];
    bind.extend_from_slice(&0u16.to_be_bytes());
    bind.extend_from_slice(&(n as u16).to_be_bytes());
    for i in 1..=n {
        let v = i.to_string();
        bind.extend_from_slice(&(v.len() as i32).to_be_bytes());
        bind.extend_from_slice(v.as_bytes());
    }
    bind.extend_from_slice(&0u16.to_be_bytes());
    let mut out = frame(b'P', &parse);
    out.extend(frame(b'B', &bind));
    out.extend(frame(b'E', &[0, 0, 0, 0, 0]));
    out.extend(frame(b'S', &[]));
    out
}

/// The text of the first column of every DataRow in `msgs`.
pub fn first_column(msgs: &[Msg]) -> Vec<String> {
    msgs.iter()
        .filter(|m| m.tag == b'D')
        .map(|m| {
            let len = i32::from_be_bytes([m.body[2], m.body[3], m.body[4], m.body[5]]);
            String::from_utf8_lossy(&m.body[6..6 + len as usize]).into_owned()
        })
        .collect()
}

/// The SQLSTATE of the first ErrorResponse in `msgs`.
pub fn error_code(msgs: &[Msg]) -> Option<String> {
    msgs.iter()
        .find(|m| m.tag == b'E')
        .and_then(|m| m.field(b'C'))
}
