//! The client side of PostgreSQL's password authentication, for the
//! proxy's own logins to shards and a standby's to its primary: cleartext, MD5 and SCRAM-SHA-256 (RFC
//! 5802 without channel binding; the server takes the user from the
//! startup packet, so the SCRAM user name is empty as libpq sends it).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use md5::{Digest, Md5};
use sha2::Sha256;

use crate::wire::backend_messages::{password, sasl_initial};
use crate::wire::scram::{hi, hmac};
use crate::wire::{sqlstate, PgError};
use bytes::BytesMut;

/// 28P01; `server` names the server as errors show it (`shard "s0"`).
fn auth_failed(server: &str, why: &str) -> PgError {
    PgError::new(
        "28P01",
        format!("authentication with {server} failed: {why}"),
    )
}

/// Answers a server's authentication requests (cleartext, MD5,
/// SCRAM-SHA-256) for one login.
pub struct ClientLogin {
    user: String,
    password: String,
    scram: Option<ScramClient>,
}

impl ClientLogin {
    /// A login as `user` with `password`.
    pub fn new(user: &str, password: &str) -> Self {
        ClientLogin {
            user: user.to_string(),
            password: password.to_string(),
            scram: None,
        }
    }

    /// Encodes into `out` the answer to AuthenticationRequest `code` with
    /// its payload (nothing for AuthenticationOk or SASLFinal, whose
    /// signature it checks). `server` names the server in errors.
    pub fn answer(
        &mut self,
        server: &str,
        code: i32,
        data: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), PgError> {
        let broken = || PgError::protocol_violation(format!("{server} broke the SCRAM exchange"));
        match code {
            0 => {}
            3 => {
                let mut p = self.password.as_bytes().to_vec();
                p.push(0);
                password(out, &p);
            }
            5 => {
                let mut p = md5_password(&self.user, &self.password, data).into_bytes();
                p.push(0);
                password(out, &p);
            }
            10 => {
                let client = ScramClient::new(&self.password);
                sasl_initial(out, "SCRAM-SHA-256", client.client_first().as_bytes());
                self.scram = Some(client);
            }
            11 => {
                let client = self.scram.as_mut().ok_or_else(broken)?;
                let reply = client.client_final(server, &String::from_utf8_lossy(data))?;
                password(out, reply.as_bytes());
            }
            12 => {
                let client = self.scram.as_ref().ok_or_else(broken)?;
                client.verify(server, &String::from_utf8_lossy(data))?;
            }
            code => {
                return Err(PgError::new(
                    sqlstate::CONNECTION_FAILURE,
                    format!("{server} is unavailable: unsupported authentication request {code}"),
                ))
            }
        }
        Ok(())
    }
}

/// The MD5 password message: `md5` + md5hex(md5hex(password + user) + salt).
pub fn md5_password(user: &str, password: &str, salt: &[u8]) -> String {
    let inner = hex(&Md5::digest(format!("{password}{user}").as_bytes()));
    let mut outer = Md5::new();
    outer.update(inner.as_bytes());
    outer.update(salt);
    format!("md5{}", hex(&outer.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One SCRAM-SHA-256 exchange from the client side.
pub struct ScramClient {
    password: String,
    nonce: String,
    client_first_bare: String,
    auth_message: String,
    salted: [u8; 32],
}

impl ScramClient {
    /// Starts an exchange with a fresh nonce.
    pub fn new(password: &str) -> Self {
        let mut raw = [0u8; 18];
        if getrandom::fill(&mut raw).is_err() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            raw[..16].copy_from_slice(&t.to_le_bytes());
        }
        let nonce = B64.encode(raw);
        ScramClient {
            password: password.to_string(),
            client_first_bare: format!("n=,r={nonce}"),
            nonce,
            auth_message: String::new(),
            salted: [0; 32],
        }
    }

    /// The client-first message.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// The client-final message for the server-first message.
    pub fn client_final(&mut self, server: &str, server_first: &str) -> Result<String, PgError> {
        let field = |k: &str| {
            server_first
                .split(',')
                .find_map(|p| p.strip_prefix(k))
                .ok_or_else(|| auth_failed(server, "malformed SCRAM server-first message"))
        };
        let nonce = field("r=")?;
        if !nonce.starts_with(&self.nonce) {
            return Err(auth_failed(server, "SCRAM nonce mismatch"));
        }
        let salt = B64
            .decode(field("s=")?)
            .map_err(|_| auth_failed(server, "malformed SCRAM salt"))?;
        let iterations: u32 = field("i=")?
            .parse()
            .map_err(|_| auth_failed(server, "malformed SCRAM iteration count"))?;
        let password = crate::wire::scram::saslprep(&self.password);
        self.salted = hi(password.as_bytes(), &salt, iterations.max(1));
        let without_proof = format!("c=biws,r={nonce}");
        self.auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_key = hmac(&self.salted, b"Client Key");
        let stored: [u8; 32] = Sha256::digest(client_key).into();
        let signature = hmac(&stored, self.auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(a, b)| a ^ b)
            .collect();
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Checks the server-final message's signature.
    pub fn verify(&self, server: &str, server_final: &str) -> Result<(), PgError> {
        let server_key = hmac(&self.salted, b"Server Key");
        let expected = B64.encode(hmac(&server_key, self.auth_message.as_bytes()));
        match server_final.strip_prefix("v=") {
            Some(v) if v == expected => Ok(()),
            _ => Err(auth_failed(
                server,
                "the server's SCRAM signature does not match",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::scram::{ScramExchange, ScramSecret};

    #[test]
    fn md5_matches_postgres() {
        // Computed independently (Python's hashlib) for user and password
        // "postgres", salt [1, 2, 3, 4].
        let m = md5_password("postgres", "postgres", &[1, 2, 3, 4]);
        assert_eq!(m, "md568be9ed08db75f318087ab337aaea044");
    }

    #[test]
    fn scram_round_trip_with_our_server() {
        let secret = ScramSecret::from_password("pw");
        let mut server = ScramExchange::new("u", secret);
        let mut client = ScramClient::new("pw");
        let first = server.server_first(&client.client_first()).unwrap();
        let fin = client.client_final("s0", &first).unwrap();
        let server_final = server.server_final(&fin).unwrap();
        client.verify("s0", &server_final).unwrap();

        let mut server = ScramExchange::new("u", ScramSecret::from_password("other"));
        let mut client = ScramClient::new("pw");
        let first = server.server_first(&client.client_first()).unwrap();
        let fin = client.client_final("s0", &first).unwrap();
        assert!(server.server_final(&fin).is_err());
    }
}
