//! SCRAM-SHA-256 (RFC 5802 / 7677) as PostgreSQL's server speaks it:
//! no channel binding, the user name taken from the startup packet.
//! Secrets are stored as PostgreSQL stores them (salt, iterations, StoredKey,
//! ServerKey), never the password.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::error::PgError;

type HmacSha256 = Hmac<Sha256>;

/// Iterations PostgreSQL uses by default (`scram_iterations`).
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// `n` random bytes from the OS.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS generator failing is not recoverable; fall back to the clock
    // rather than panic (the bytes are salts, nonces and cancel keys).
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            .to_le_bytes();
        for (i, x) in b.iter_mut().enumerate() {
            *x = t[i % t.len()];
        }
    }
    b
}

pub(crate) fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA-256 with one output block (RFC 5802's `Hi`).
pub(crate) fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password, &block);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &u);
        out.iter_mut().zip(u).for_each(|(o, x)| *o ^= x);
    }
    out
}

/// `password` normalised by SASLprep (RFC 4013), or as given when
/// SASLprep refuses it (PostgreSQL's and libpq's `pg_saslprep` rule).
pub fn saslprep(password: &str) -> std::borrow::Cow<'_, str> {
    stringprep::saslprep(password).unwrap_or(std::borrow::Cow::Borrowed(password))
}

/// A user's SCRAM-SHA-256 verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramSecret {
    /// Salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// H(ClientKey).
    pub stored_key: [u8; 32],
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: [u8; 32],
}

impl ScramSecret {
    /// Derives a verifier from a password with a fresh 16-byte salt.
    pub fn from_password(password: &str) -> Self {
        Self::derive(password, &random_bytes::<16>(), DEFAULT_ITERATIONS)
    }

    /// A verifier no password matches, for a user that does not exist.
    /// As PostgreSQL's `scram_mock_salt`, its salt is derived from the
    /// user name and the server's secret `nonce`, so every attempt for
    /// that name sees the same salt, as it would for a real user.
    pub fn mock(user: &str, nonce: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(user.as_bytes());
        h.update(nonce);
        let salt = &h.finalize()[..16];
        Self::derive(&B64.encode(random_bytes::<32>()), salt, DEFAULT_ITERATIONS)
    }

    /// Derives a verifier from a password, salt and iteration count. The
    /// password is SASLprep'd first, as PostgreSQL does (one SASLprep
    /// refuses is used as given, as PostgreSQL uses it).
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> Self {
        let password = saslprep(password);
        let salted = hi(password.as_bytes(), salt, iterations.max(1));
        let client_key = hmac(&salted, b"Client Key");
        ScramSecret {
            salt: salt.to_vec(),
            iterations: iterations.max(1),
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(&salted, b"Server Key"),
        }
    }

    /// Parses PostgreSQL's `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`
    /// (as in `pg_authid.rolpassword`).
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("SCRAM-SHA-256$")?;
        let (params, keys) = rest.split_once('$')?;
        let (iter, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        Some(ScramSecret {
            salt: B64.decode(salt).ok()?,
            iterations: iter.parse().ok().filter(|&i| i > 0)?,
            stored_key: B64.decode(stored).ok()?.try_into().ok()?,
            server_key: B64.decode(server).ok()?.try_into().ok()?,
        })
    }
}

/// The server side of one SCRAM exchange.
#[derive(Debug)]
pub struct ScramExchange {
    secret: ScramSecret,
    user: String,
    server_nonce: String,
    /// client-first-message-bare, server-first-message, once sent.
    transcript: Option<(String, String, String)>,
}

impl ScramExchange {
    /// Starts an exchange for `user` with a random server nonce.
    pub fn new(user: &str, secret: ScramSecret) -> Self {
        Self::with_nonce(user, secret, B64.encode(random_bytes::<18>()))
    }

    /// Starts an exchange with a given server nonce (for tests).
    pub fn with_nonce(user: &str, secret: ScramSecret, server_nonce: String) -> Self {
        ScramExchange {
            secret,
            user: user.to_string(),
            server_nonce,
            transcript: None,
        }
    }

    fn malformed(&self) -> PgError {
        PgError::protocol_violation("malformed SCRAM message")
    }

    /// Answers the client-first-message with the server-first-message.
    pub fn server_first(&mut self, client_first: &str) -> Result<String, PgError> {
        let bare = match client_first.split_once(",,") {
            Some(("n" | "y", bare)) => bare,
            Some((cb, _)) if cb.starts_with("p=") => {
                return Err(PgError::protocol_violation(
                    "channel binding is not supported by this server",
                ))
            }
            _ => return Err(self.malformed()),
        };
        let client_nonce = bare
            .split(',')
            .find_map(|a| a.strip_prefix("r="))
            .filter(|n| !n.is_empty())
            .ok_or_else(|| self.malformed())?;
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&self.secret.salt),
            self.secret.iterations
        );
        let header = client_first[..client_first.len() - bare.len()].to_string();
        self.transcript = Some((bare.to_string(), first.clone(), header));
        Ok(first)
    }

    /// Checks the client-final-message; returns the server-final-message,
    /// or FATAL 28P01 when the proof is wrong.
    pub fn server_final(&self, client_final: &str) -> Result<String, PgError> {
        let Some((bare, first, header)) = &self.transcript else {
            return Err(self.malformed());
        };
        let (without_proof, proof) = client_final
            .rsplit_once(",p=")
            .ok_or_else(|| self.malformed())?;
        let mut channel = None;
        let mut nonce = None;
        for attr in without_proof.split(',') {
            if let Some(c) = attr.strip_prefix("c=") {
                channel = Some(c);
            } else if let Some(r) = attr.strip_prefix("r=") {
                nonce = Some(r);
            }
        }
        let expected_nonce = first
            .strip_prefix("r=")
            .and_then(|s| s.split(',').next())
            .unwrap_or_default();
        let header_ok =
            channel.and_then(|c| B64.decode(c).ok()).as_deref() == Some(header.as_bytes());
        if !header_ok || nonce != Some(expected_nonce) {
            return Err(self.malformed());
        }
        let proof: [u8; 32] = B64
            .decode(proof)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| self.malformed())?;
        let auth_message = format!("{bare},{first},{without_proof}");
        let signature = hmac(&self.secret.stored_key, auth_message.as_bytes());
        let mut client_key = proof;
        client_key
            .iter_mut()
            .zip(signature)
            .for_each(|(k, s)| *k ^= s);
        let stored: [u8; 32] = Sha256::digest(client_key).into();
        if stored != self.secret.stored_key {
            return Err(PgError::password_failed(&self.user));
        }
        let server_signature = hmac(&self.secret.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's example exchange.
    fn rfc_exchange() -> ScramExchange {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let secret = ScramSecret::derive("pencil", &salt, 4096);
        ScramExchange::with_nonce("user", secret, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into())
    }

    #[test]
    fn rfc7677_example() {
        let mut x = rfc_exchange();
        let first = x.server_first("n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(
            first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let fin = x
            .server_final("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(fin, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    #[test]
    fn wrong_proof_and_garbage_are_errors() {
        let mut x = rfc_exchange();
        x.server_first("n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        let e = x
            .server_final("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            .unwrap_err();
        assert_eq!(e.code, "28P01");
        assert_eq!(
            x.server_final("c=biws,r=wrong,p=AAAA").unwrap_err().code,
            "08P01"
        );
        assert!(rfc_exchange().server_first("garbage").is_err());
        assert!(rfc_exchange()
            .server_first("p=tls-server-end-point,,r=x")
            .is_err());
    }

    #[test]
    fn parses_postgres_verifiers() {
        let s = ScramSecret::derive("pw", b"0123456789abcdef", 4096);
        let text = format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            s.iterations,
            B64.encode(&s.salt),
            B64.encode(s.stored_key),
            B64.encode(s.server_key)
        );
        assert_eq!(ScramSecret::parse(&text), Some(s));
        assert_eq!(ScramSecret::parse("md5abc"), None);
    }
}
