//! The startup phase: the packets a client sends before any typed message
//! (SSLRequest, GSSENCRequest, CancelRequest or StartupMessage), and the
//! negotiation they open: an SSLRequest gets 'S' and a TLS handshake when
//! the server has TLS configured, else 'N', as does every GSSENCRequest.
//! With TLS configured a client may also start with its TLS ClientHello
//! (PostgreSQL 17's direct TLS, `sslnegotiation=direct`).

use bytes::{BufMut, Bytes};

use super::connection::Connection;
use super::error::{PgError, Severity, WireError};
use super::frontend::BodyReader;
use super::responder::ClientIo;
use super::tls::ServerTls;

const PROTOCOL_3_0: i32 = 196_608;
const CANCEL_REQUEST: i32 = 80_877_102;
/// The SSLRequest code (1234.5679).
pub(crate) const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
/// The first byte of a TLS handshake record: a client using direct TLS
/// (no SSLRequest). No startup packet starts with it: its length would be
/// over 369 MB.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// A decoded startup-phase packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    /// SSLRequest: answered 'S' and a TLS handshake, or 'N' without TLS.
    SslRequest,
    /// GSSENCRequest: answered 'N'.
    GssEncRequest,
    /// CancelRequest for the session with this key.
    Cancel {
        /// Process id from BackendKeyData.
        pid: i32,
        /// Secret from BackendKeyData.
        secret: i32,
    },
    /// StartupMessage for protocol 3.0 with its parameters.
    Startup(Vec<(String, String)>),
}

impl StartupPacket {
    /// Decodes a packet body (after the length word).
    pub fn decode(body: Bytes) -> Result<Self, PgError> {
        let mut r = BodyReader(body);
        let code = r.i32()?;
        let packet = match code {
            SSL_REQUEST => StartupPacket::SslRequest,
            GSSENC_REQUEST => StartupPacket::GssEncRequest,
            CANCEL_REQUEST => StartupPacket::Cancel {
                pid: r.i32()?,
                secret: r.i32()?,
            },
            PROTOCOL_3_0 => {
                let mut params = Vec::new();
                loop {
                    let name = r.cstr()?;
                    if name.is_empty() {
                        break;
                    }
                    params.push((name, r.cstr()?));
                }
                StartupPacket::Startup(params)
            }
            other => return Err(unsupported_protocol(other)),
        };
        r.finish()?;
        Ok(packet)
    }
}

/// PostgreSQL's answer to a protocol code it does not serve (FATAL 0A000);
/// also its answer to an SSLRequest or GSSENCRequest sent twice.
fn unsupported_protocol(code: i32) -> PgError {
    PgError::feature_not_supported(format!(
        "unsupported frontend protocol {}.{}: server supports 3.0 to 3.0",
        code >> 16,
        code & 0xffff
    ))
    .with_severity(Severity::Fatal)
}

/// Where the startup phase ended.
#[derive(Debug)]
pub(crate) enum Opening {
    /// A CancelRequest for the session with this key.
    Cancel {
        /// Process id from BackendKeyData.
        pid: i32,
        /// Secret from BackendKeyData.
        secret: i32,
    },
    /// A StartupMessage with its parameters.
    Startup {
        /// The parameters (user, database, options, …).
        params: Vec<(String, String)>,
        /// True when the session runs over TLS.
        encrypted: bool,
    },
}

/// Reads startup packets until a CancelRequest or a StartupMessage;
/// `None` when the client leaves first. As in PostgreSQL each encryption
/// request may come once, and GSSENCRequest not after TLS started; a
/// repeat is refused like an unknown protocol version.
pub(crate) async fn open(
    conn: &mut Connection<Box<dyn ClientIo>>,
    tls: Option<&ServerTls>,
) -> Result<Option<Opening>, WireError> {
    let (mut ssl_done, mut gss_done, mut encrypted) = (false, false, false);
    if let Some(tls) = tls {
        if conn.peek_byte().await? == Some(TLS_HANDSHAKE_RECORD) {
            conn.start_tls(tls, true).await?;
            (ssl_done, gss_done, encrypted) = (true, true, true);
        }
    }
    loop {
        let Some(body) = conn.read_startup().await? else {
            return Ok(None);
        };
        match StartupPacket::decode(body).map_err(WireError::Fatal)? {
            StartupPacket::SslRequest if !ssl_done => {
                ssl_done = true;
                conn.out.put_u8(if tls.is_some() { b'S' } else { b'N' });
                conn.flush().await?;
                if let Some(tls) = tls {
                    conn.start_tls(tls, false).await?;
                    encrypted = true;
                    gss_done = true;
                }
            }
            StartupPacket::GssEncRequest if !gss_done => {
                gss_done = true;
                conn.out.put_u8(b'N');
                conn.flush().await?;
            }
            StartupPacket::SslRequest => {
                return Err(WireError::Fatal(unsupported_protocol(SSL_REQUEST)))
            }
            StartupPacket::GssEncRequest => {
                return Err(WireError::Fatal(unsupported_protocol(GSSENC_REQUEST)))
            }
            StartupPacket::Cancel { pid, secret } => {
                return Ok(Some(Opening::Cancel { pid, secret }))
            }
            StartupPacket::Startup(params) => {
                return Ok(Some(Opening::Startup { params, encrypted }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(code: i32, rest: &[u8]) -> Bytes {
        let mut b = code.to_be_bytes().to_vec();
        b.extend_from_slice(rest);
        b.into()
    }

    #[test]
    fn decodes_each_kind() {
        assert_eq!(
            StartupPacket::decode(packet(SSL_REQUEST, b"")).unwrap(),
            StartupPacket::SslRequest
        );
        let mut cancel = 5i32.to_be_bytes().to_vec();
        cancel.extend_from_slice(&9i32.to_be_bytes());
        assert_eq!(
            StartupPacket::decode(packet(CANCEL_REQUEST, &cancel)).unwrap(),
            StartupPacket::Cancel { pid: 5, secret: 9 }
        );
        assert_eq!(
            StartupPacket::decode(packet(PROTOCOL_3_0, b"user\0x\0\0")).unwrap(),
            StartupPacket::Startup(vec![("user".into(), "x".into())])
        );
        let e = StartupPacket::decode(packet(2 << 16, b"")).unwrap_err();
        assert_eq!(
            e.message,
            "unsupported frontend protocol 2.0: server supports 3.0 to 3.0"
        );
        assert!(StartupPacket::decode(packet(PROTOCOL_3_0, b"user\0x")).is_err());
    }
}
