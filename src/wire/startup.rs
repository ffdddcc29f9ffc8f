//! The startup phase: the packets a client sends before any typed message
//! (SSLRequest, GSSENCRequest, CancelRequest or StartupMessage), and the
//! negotiation they open: an SSLRequest gets 'S' and a TLS handshake when
//! the server has TLS configured, else 'N', as does every GSSENCRequest.
//! With TLS configured a client may also start with its TLS ClientHello
//! (PostgreSQL 17's direct TLS, `sslnegotiation=direct`).
//!
//! Protocol versions as PostgreSQL 18 serves them: 3.0 to 3.2. A higher
//! 3.x, or `_pq_.` protocol options (none is known), get a
//! NegotiateProtocolVersion naming 3.2 and the options, and the session
//! goes on at 3.2; another major version gets FATAL 0A000. From 3.2 on the
//! cancel key is 32 bytes instead of 4, and a CancelRequest carries a key
//! of up to 256 bytes.

use bytes::{BufMut, Bytes};

use super::connection::Connection;
use super::error::{PgError, Severity, WireError};
use super::frontend::BodyReader;
use super::responder::ClientIo;
use super::tls::ServerTls;

const PROTOCOL_3_0: i32 = 196_608;
/// The newest minor version of protocol 3 served.
const LATEST_MINOR: u16 = 2;
/// The longest cancel key a CancelRequest may carry (PostgreSQL's
/// MAX_CANCEL_KEY_LENGTH).
const MAX_CANCEL_KEY: usize = 256;
/// The prefix of protocol options in a StartupMessage.
const PROTOCOL_OPTION_PREFIX: &str = "_pq_.";
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
        /// Secret from BackendKeyData (4 bytes before protocol 3.2).
        secret: Vec<u8>,
    },
    /// StartupMessage for protocol 3.x.
    Startup {
        /// The minor version the client asked for.
        minor: u16,
        /// The parameters (user, database, options, …).
        params: Vec<(String, String)>,
        /// Names of the `_pq_.` protocol options asked for.
        options: Vec<String>,
    },
}

impl StartupPacket {
    /// Decodes a packet body (after the length word).
    pub fn decode(body: Bytes) -> Result<Self, PgError> {
        let mut r = BodyReader(body);
        let code = r.i32()?;
        let packet = match code {
            SSL_REQUEST => StartupPacket::SslRequest,
            GSSENC_REQUEST => StartupPacket::GssEncRequest,
            CANCEL_REQUEST => {
                let pid = r.i32()?;
                let secret = r.rest();
                if secret.len() > MAX_CANCEL_KEY {
                    return Err(PgError::protocol_violation(
                        "invalid length of cancel request packet",
                    ));
                }
                StartupPacket::Cancel {
                    pid,
                    secret: secret.to_vec(),
                }
            }
            code if code >> 16 == PROTOCOL_3_0 >> 16 => {
                let (mut params, mut options) = (Vec::new(), Vec::new());
                loop {
                    let name = r.cstr()?;
                    if name.is_empty() {
                        break;
                    }
                    let value = r.cstr()?;
                    if name.starts_with(PROTOCOL_OPTION_PREFIX) {
                        options.push(name);
                    } else {
                        params.push((name, value));
                    }
                }
                StartupPacket::Startup {
                    minor: (code & 0xffff) as u16,
                    params,
                    options,
                }
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
        "unsupported frontend protocol {}.{}: server supports 3.0 to 3.{LATEST_MINOR}",
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
        secret: Vec<u8>,
    },
    /// A StartupMessage with its parameters.
    Startup {
        /// The parameters (user, database, options, …).
        params: Vec<(String, String)>,
        /// True when the session runs over TLS.
        encrypted: bool,
        /// The minor version of protocol 3 the session speaks.
        minor: u16,
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
            StartupPacket::Startup {
                minor,
                params,
                options,
            } => {
                if minor > LATEST_MINOR || !options.is_empty() {
                    negotiate_protocol_version(&mut conn.out, &options);
                }
                return Ok(Some(Opening::Startup {
                    params,
                    encrypted,
                    minor: minor.min(LATEST_MINOR),
                }));
            }
        }
    }
}

/// NegotiateProtocolVersion: the newest version served (3.2) and the
/// protocol options not recognized (all of them).
fn negotiate_protocol_version(out: &mut bytes::BytesMut, options: &[String]) {
    let mut body = bytes::BytesMut::new();
    body.put_i32((PROTOCOL_3_0 >> 16 << 16) | i32::from(LATEST_MINOR));
    body.put_i32(options.len() as i32);
    for option in options {
        body.put_slice(option.as_bytes());
        body.put_u8(0);
    }
    out.put_u8(b'v');
    out.put_i32(body.len() as i32 + 4);
    out.put_slice(&body);
}

/// True when a session of protocol 3.`minor` gets a long cancel key.
pub(crate) fn long_cancel_key(minor: u16) -> bool {
    minor >= 2
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
        cancel.extend_from_slice(&[1; 32]);
        assert_eq!(
            StartupPacket::decode(packet(CANCEL_REQUEST, &cancel)).unwrap(),
            StartupPacket::Cancel {
                pid: 5,
                secret: vec![1; 32]
            }
        );
        cancel.extend_from_slice(&[1; 225]);
        assert!(StartupPacket::decode(packet(CANCEL_REQUEST, &cancel)).is_err());
        assert_eq!(
            StartupPacket::decode(packet(PROTOCOL_3_0 + 5, b"user\0x\0_pq_.a\0b\0\0")).unwrap(),
            StartupPacket::Startup {
                minor: 5,
                params: vec![("user".into(), "x".into())],
                options: vec!["_pq_.a".into()],
            }
        );
        let e = StartupPacket::decode(packet(2 << 16, b"")).unwrap_err();
        assert_eq!(
            e.message,
            "unsupported frontend protocol 2.0: server supports 3.0 to 3.2"
        );
        assert!(StartupPacket::decode(packet(PROTOCOL_3_0, b"user\0x")).is_err());
    }
}
