//! The startup phase: the first packet a client sends, before any typed
//! message (SSLRequest, GSSENCRequest, CancelRequest or StartupMessage).

use bytes::Bytes;

use super::error::PgError;
use super::frontend::BodyReader;

const PROTOCOL_3_0: i32 = 196_608;
const CANCEL_REQUEST: i32 = 80_877_102;
const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;

/// A decoded startup-phase packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    /// SSLRequest: answered 'N' (no TLS configured).
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
            other => {
                return Err(PgError::feature_not_supported(format!(
                    "unsupported frontend protocol {}.{}: server supports 3.0 to 3.0",
                    other >> 16,
                    other & 0xffff
                ))
                .with_severity(super::error::Severity::Fatal))
            }
        };
        r.finish()?;
        Ok(packet)
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
