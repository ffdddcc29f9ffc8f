//! A standby's connection to its primary: `standby_of:` in the shard's
//! configuration, the replication login (startup with `replication=true`,
//! password authentication through the wire layer's client side), simple
//! queries with text results, and the messages of copy modes.

use crate::wire::backend::copy_data;
use crate::wire::backend_messages::{self, fields, BackendMessage};
use crate::wire::client_auth::ClientLogin;
use crate::wire::connection::Connection;
use crate::wire::error::WireError;
use crate::wire::responder::ClientIo;
use crate::wire::{sqlstate, ClientTls, PgError, SslMode};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpStream;

/// Largest message accepted from the primary.
const MAX_MESSAGE: usize = 1 << 30;
/// Time allowed to connect and log in.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a standby streams from (`standby_of:`; `--standby-of HOST:PORT`
/// sets host and port).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StandbyOf {
    /// The primary's host.
    pub host: String,
    /// The primary's port.
    pub port: u16,
    /// The user to log in as (needs the replication right there).
    pub user: String,
    /// Its password (for scram-sha-256 primaries).
    pub password: Option<String>,
    /// The standby's name on the primary (`pg_stat_replication`'s
    /// `application_name`, what `synchronous_standby_names` lists).
    pub application_name: String,
    /// TLS to the primary: disable, prefer, require, verify-full.
    pub sslmode: SslMode,
    /// PEM file of the certificates to trust (verify-full).
    pub sslrootcert: Option<PathBuf>,
}

impl Default for StandbyOf {
    fn default() -> Self {
        StandbyOf {
            host: "127.0.0.1".into(),
            port: 5433,
            user: "postgres".into(),
            password: None,
            application_name: "walreceiver".into(),
            sslmode: SslMode::Disable,
            sslrootcert: None,
        }
    }
}

impl StandbyOf {
    /// Sets host and port from `HOST:PORT`.
    pub fn set_address(&mut self, addr: &str) -> Result<(), String> {
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| format!("standby_of: \"{addr}\" is not HOST:PORT"))?;
        self.port = port
            .parse()
            .map_err(|_| format!("standby_of: \"{port}\" is not a port"))?;
        self.host = host.trim_matches(['[', ']']).to_string();
        Ok(())
    }

    /// The connection's parameters as `pg_stat_wal_receiver` shows them.
    pub fn conninfo(&self) -> String {
        let sslmode = match self.sslmode {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyFull => "verify-full",
        };
        format!(
            "host={} port={} user={} application_name={} sslmode={sslmode} replication=true",
            self.host, self.port, self.user, self.application_name
        )
    }

    fn name(&self) -> String {
        format!("primary {}:{}", self.host, self.port)
    }

    fn unavailable(&self, why: impl std::fmt::Display) -> PgError {
        PgError::new(
            sqlstate::CONNECTION_FAILURE,
            format!("{} is unavailable: {why}", self.name()),
        )
    }
}

/// An open replication connection to the primary.
pub struct Upstream {
    conn: Connection<Box<dyn ClientIo>>,
    to: StandbyOf,
}

impl Upstream {
    /// Connects and logs in as a replication connection.
    pub async fn connect(to: &StandbyOf) -> Result<Upstream, PgError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, Self::login(to)).await {
            Ok(r) => r,
            Err(_) => Err(to.unavailable(format!(
                "no connection within {} s",
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn login(to: &StandbyOf) -> Result<Upstream, PgError> {
        let socket = TcpStream::connect((to.host.as_str(), to.port))
            .await
            .map_err(|e| to.unavailable(e))?;
        socket.set_nodelay(true).ok();
        let tls = ClientTls::new(to.sslmode, to.sslrootcert.as_deref())
            .map_err(|e| to.unavailable(format!("standby_of.{e}")))?;
        let stream = tls
            .negotiate(socket, &to.host)
            .await
            .map_err(|e| to.unavailable(e))?;
        let mut up = Upstream {
            conn: Connection::new(stream, MAX_MESSAGE),
            to: to.clone(),
        };
        backend_messages::startup(
            &mut up.conn.out,
            &[
                ("user", &to.user),
                ("database", "replication"),
                ("replication", "true"),
                ("application_name", &to.application_name),
            ],
        );
        up.flush().await?;
        let server = up.to.name();
        let mut login = ClientLogin::new(&to.user, to.password.as_deref().unwrap_or(""));
        loop {
            match up.read().await? {
                BackendMessage::Authentication(code, data) => {
                    login.answer(&server, code, &data, &mut up.conn.out)?;
                    up.flush().await?;
                }
                BackendMessage::Error(e) => return Err(refused(&server, e)),
                BackendMessage::ReadyForQuery(_) => return Ok(up),
                _ => {}
            }
        }
    }

    /// Sends what is buffered.
    pub async fn flush(&mut self) -> Result<(), PgError> {
        self.conn.flush().await.map_err(|e| self.to.unavailable(e))
    }

    /// The next message from the primary.
    pub async fn read(&mut self) -> Result<BackendMessage, PgError> {
        match self.conn.read_frame().await {
            Ok(Some((tag, body))) => BackendMessage::decode(tag, body),
            Ok(None) | Err(WireError::UnexpectedEof) => {
                Err(self.to.unavailable("the connection was closed"))
            }
            Err(e) => Err(self.to.unavailable(e)),
        }
    }

    /// Sends a simple query (not waiting for its answer).
    pub async fn send_query(&mut self, sql: &str) -> Result<(), PgError> {
        backend_messages::query(&mut self.conn.out, sql);
        self.flush().await
    }

    /// Runs a simple query returning text rows; the primary's error fails
    /// it.
    pub async fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, PgError> {
        self.send_query(sql).await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            match self.read().await? {
                BackendMessage::DataRow(row) => rows.push(text_fields(&row)?),
                BackendMessage::Error(e) => error = Some(e),
                BackendMessage::ReadyForQuery(_) => break,
                _ => {}
            }
        }
        error.map_or(Ok(rows), |e| Err(refused(&self.to.name(), e)))
    }

    /// Queues CopyData to the primary.
    pub fn copy_data(&mut self, payload: &[u8]) {
        copy_data(&mut self.conn.out, payload);
    }

    /// The primary's name in messages.
    pub fn name(&self) -> String {
        self.to.name()
    }
}

/// A row's fields as text.
pub fn text_fields(row: &crate::wire::DataRow) -> Result<Vec<Option<String>>, PgError> {
    Ok(fields(row)?
        .into_iter()
        .map(|f| f.map(|b| String::from_utf8_lossy(b).into_owned()))
        .collect())
}

/// The primary's error, its code kept, its message naming the primary.
pub fn refused(server: &str, e: PgError) -> PgError {
    let mut out = PgError::new(e.code.clone(), format!("{server}: {}", e.message));
    out.detail = e.detail;
    out.hint = e.hint;
    out
}
