//! Authentication after StartupMessage: trust (loopback only unless
//! configured otherwise) or SCRAM-SHA-256 against the configured users;
//! with `tls.required`, clients without TLS are refused first.
//! An unknown user goes through the same SCRAM exchange against a secret
//! no password matches, with a salt derived from the name (PostgreSQL's
//! mock salt), so neither the reply nor the salt tells which user names
//! exist.

use std::net::SocketAddr;

use bytes::Bytes;

use super::backend;
use super::config::{AuthMethod, WireConfig};
use super::connection::{Connection, MAX_AUTH_MESSAGE};
use super::error::{PgError, WireError};
use super::frontend::{BodyReader, FrontendMessage};
use super::responder::ClientIo;
use super::scram::{ScramExchange, ScramSecret};
use super::session::Session;

const AUTH_OK: i32 = 0;
const AUTH_SASL: i32 = 10;
const AUTH_SASL_CONTINUE: i32 = 11;
const AUTH_SASL_FINAL: i32 = 12;
const MECHANISM: &str = "SCRAM-SHA-256";

/// Warns (once, at start) when trust authentication listens beyond
/// loopback: without `trust_remote` remote clients are refused, with it
/// they log in as anyone without a password.
pub(crate) fn warn_if_trust_is_exposed(config: &WireConfig, addr: SocketAddr) {
    if config.auth != AuthMethod::Trust || addr.ip().is_loopback() {
        return;
    }
    if config.trust_remote {
        tracing::warn!(%addr, "trust authentication with trust_remote on a non-loopback address: any client that reaches it logs in as any user without a password");
    } else {
        tracing::warn!(%addr, "trust authentication on a non-loopback address: remote clients are refused (28000); configure scram-sha-256 users to let them in");
    }
}

/// Authenticates the session's user; on success AuthenticationOk is
/// buffered. Errors are FATAL.
pub(crate) async fn authenticate(
    conn: &mut Connection<Box<dyn ClientIo>>,
    config: &WireConfig,
    session: &Session,
    peer: Option<SocketAddr>,
    encrypted: bool,
) -> Result<(), WireError> {
    let tls_missing = !encrypted && config.tls.as_ref().is_some_and(|t| t.required());
    // A Unix-domain socket (no peer address) is as local as loopback.
    let remote_trust = config.auth == AuthMethod::Trust
        && !config.trust_remote
        && peer.is_some_and(|p| !p.ip().is_loopback());
    if tls_missing || remote_trust {
        // PostgreSQL's words when no pg_hba.conf line matches, e.g. only
        // `hostssl` lines and a client without TLS.
        return Err(WireError::Fatal(PgError::not_authorized(format!(
            "no pg_hba.conf entry for host \"{}\", user \"{}\", database \"{}\", {}",
            peer.map_or("[local]".to_string(), |p| p.ip().to_string()),
            session.user,
            session.database,
            if encrypted {
                "SSL encryption"
            } else {
                "no encryption"
            }
        ))));
    }
    if config.auth == AuthMethod::ScramSha256 {
        scram(conn, config, &session.user).await?;
    }
    backend::authentication(&mut conn.out, AUTH_OK, &[]);
    Ok(())
}

async fn scram(
    conn: &mut Connection<Box<dyn ClientIo>>,
    config: &WireConfig,
    user: &str,
) -> Result<(), WireError> {
    let known = config.users.get(user);
    let secret = known
        .cloned()
        .unwrap_or_else(|| ScramSecret::mock(user, &config.mock_auth_nonce));
    let mut exchange = ScramExchange::new(user, secret);
    let mut mechanisms = format!("{MECHANISM}\0").into_bytes();
    mechanisms.push(0);
    backend::authentication(&mut conn.out, AUTH_SASL, &mechanisms);
    conn.flush().await?;

    let mut initial = BodyReader(password_message(conn).await?);
    let mechanism = initial.cstr().map_err(WireError::Fatal)?;
    if mechanism != MECHANISM {
        return Err(WireError::Fatal(PgError::protocol_violation(
            "client selected an invalid SASL authentication mechanism",
        )));
    }
    let len = initial.i32().map_err(WireError::Fatal)?;
    let data = initial
        .bytes(usize::try_from(len).unwrap_or(0))
        .map_err(WireError::Fatal)?;
    let first = exchange.server_first(&utf8(&data)?).map_err(fatal)?;
    backend::authentication(&mut conn.out, AUTH_SASL_CONTINUE, first.as_bytes());
    conn.flush().await?;

    let response = password_message(conn).await?;
    let verdict = exchange.server_final(&utf8(&response)?);
    let fin = match (verdict, known) {
        (Ok(fin), Some(_)) => fin,
        (Err(e), _) if e.code != super::sqlstate::INVALID_PASSWORD => return Err(fatal(e)),
        _ => return Err(WireError::Fatal(PgError::password_failed(user))),
    };
    backend::authentication(&mut conn.out, AUTH_SASL_FINAL, fin.as_bytes());
    Ok(())
}

fn fatal(e: PgError) -> WireError {
    WireError::Fatal(e.with_severity(super::error::Severity::Fatal))
}

fn utf8(b: &[u8]) -> Result<String, WireError> {
    String::from_utf8(b.to_vec())
        .map_err(|_| fatal(PgError::protocol_violation("malformed SCRAM message")))
}

async fn password_message(conn: &mut Connection<Box<dyn ClientIo>>) -> Result<Bytes, WireError> {
    match conn.read_message_within(MAX_AUTH_MESSAGE).await? {
        Some(FrontendMessage::Password(body)) => Ok(body),
        None => Err(WireError::UnexpectedEof),
        Some(_) => Err(fatal(PgError::protocol_violation(
            "expected SASL response, got another message type",
        ))),
    }
}
