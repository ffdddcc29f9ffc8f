//! Raw sockets to a test server, for bytes no client library would send.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A bare TCP connection to the server on `port`.
pub async fn connect(port: u16) -> std::io::Result<TcpStream> {
    TcpStream::connect(("127.0.0.1", port)).await
}

/// A protocol 3.0 StartupMessage for `user` and database `db`.
pub fn startup_packet(user: &str) -> Vec<u8> {
    let mut body = 196_608i32.to_be_bytes().to_vec();
    for s in ["user", user, "database", "db", ""] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    let mut p = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    p.extend_from_slice(&body);
    p
}

/// Reads until the peer closes (or 5 s pass) and returns everything.
pub async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut all)).await;
    all
}

/// A session past startup (ReadyForQuery read).
pub async fn session(port: u16) -> TcpStream {
    let mut s = connect(port).await.unwrap();
    s.write_all(&startup_packet("raw")).await.unwrap();
    let mut got = Vec::new();
    while !got.ends_with(b"Z\0\0\0\x05I") {
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed during startup");
        got.extend_from_slice(&buf[..n]);
    }
    s
}

/// Asserts `reply` is a FATAL 08P01 ErrorResponse mentioning `message`.
pub fn assert_fatal_08p01(reply: &[u8], message: &str) {
    assert_eq!(reply.first(), Some(&b'E'), "{reply:?}");
    let text = String::from_utf8_lossy(reply);
    assert!(text.contains("SFATAL"), "{text}");
    assert!(text.contains("C08P01"), "{text}");
    assert!(text.contains(message), "{text}");
}
