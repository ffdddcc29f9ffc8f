//! A connection to a shard (over TCP, a Unix-domain socket, or a pipe to
//! an in-process shard):
//! startup and password authentication, then requests encoded into one
//! buffer and flushed once, and the reply read frame by frame through the
//! wire layer's framing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::local::LocalShard;
use super::messages::{self, BackendMessage};
use super::statements::{ShardStatements, StatementUse};
use super::unix_socket::ShardUnixStream;
use super::{BoxFuture, ChannelSettings, ExtendedRequest, Request, ShardChannel};
use crate::proxy::config::ShardConfig;
use crate::wire::client_auth::ClientLogin;
use crate::wire::connection::Connection;
use crate::wire::error::WireError;
use crate::wire::responder::ClientIo;
use crate::wire::{sqlstate, unix_socket_path, PgError};

/// Largest message accepted from a shard.
const MAX_MESSAGE: usize = 1 << 30;

/// 08006 naming the shard.
pub fn shard_unavailable(shard: &str, why: impl std::fmt::Display) -> PgError {
    PgError::new(
        sqlstate::CONNECTION_FAILURE,
        format!("shard \"{shard}\" is unavailable: {why}"),
    )
}

/// How a connection reaches its node.
#[derive(Clone)]
pub enum Dialer {
    /// The configured host and port: TCP, or libpq's rule for a host
    /// that starts with `/`, the Unix-domain socket `<host>/.s.PGSQL.<port>`
    /// (no TLS on it, as libpq).
    Tcp,
    /// An in-memory pipe to an in-process shard.
    Local(Arc<LocalShard>),
}

impl Dialer {
    /// A new byte stream to the node (not yet started up).
    pub(crate) async fn dial(&self, config: &ShardConfig) -> Result<Box<dyn ClientIo>, PgError> {
        match self {
            Dialer::Tcp if is_socket_dir(&config.host) => {
                let path = unix_socket_path(config.host.as_ref(), config.port);
                let socket = ShardUnixStream::connect(&path).await.map_err(|e| {
                    shard_unavailable(&config.name, format!("{}: {e}", path.display()))
                })?;
                Ok(Box::new(socket))
            }
            Dialer::Tcp => {
                let socket = TcpStream::connect((config.host.as_str(), config.port))
                    .await
                    .map_err(|e| shard_unavailable(&config.name, e))?;
                socket.set_nodelay(true).ok();
                let tls = config
                    .client_tls()
                    .map_err(|e| shard_unavailable(&config.name, e))?;
                tls.negotiate(socket, &config.host)
                    .await
                    .map_err(|e| shard_unavailable(&config.name, e))
            }
            Dialer::Local(shard) => shard
                .connect()
                .ok_or_else(|| shard_unavailable(&config.name, "the shard is shutting down")),
        }
    }

    /// Kind and address, for `SHOW pgvshard.shards`.
    pub fn address(&self, config: &ShardConfig) -> String {
        match self {
            Dialer::Tcp if is_socket_dir(&config.host) => format!(
                "postgres {}",
                unix_socket_path(config.host.as_ref(), config.port).display()
            ),
            Dialer::Tcp => format!("postgres {}:{}", config.host, config.port),
            Dialer::Local(shard) => format!("embedded {}", shard.dir().display()),
        }
    }
}

/// libpq's rule: a host that starts with `/` is a socket directory.
fn is_socket_dir(host: &str) -> bool {
    host.starts_with('/')
}

/// One open connection to a shard node.
pub struct PgConnection {
    shard: String,
    conn: Connection<Box<dyn ClientIo>>,
    settings: ChannelSettings,
    query_timeout: Option<Duration>,
    deadline: Option<tokio::time::Instant>,
    /// A request was sent and its ReadyForQuery not read yet.
    pub(crate) in_flight: bool,
    /// The connection can no longer be trusted (I/O error, timeout).
    pub(crate) broken: bool,
    /// Transaction status of the last ReadyForQuery.
    pub(crate) status: u8,
    /// The node's BackendKeyData (pid, secret), for a CancelRequest.
    pub(crate) key: Option<(i32, i32)>,
    /// A flush was started and has not finished: if it was abandoned, how
    /// much of the buffer reached the node is unknown.
    pub(crate) writing: bool,
    /// The node is in COPY FROM STDIN, waiting for CopyData.
    pub(crate) copy_in: bool,
    /// When it was last returned to its pool.
    pub(crate) idle_since: Instant,
    /// The statements it keeps prepared on the node.
    pub(crate) statements: ShardStatements,
}

impl PgConnection {
    /// Connects and authenticates within `config.pool.connect_timeout`.
    pub async fn connect(config: &ShardConfig, dialer: &Dialer) -> Result<Self, PgError> {
        let limit = config.pool.connect_timeout();
        match tokio::time::timeout(limit, Self::connect_inner(config, dialer)).await {
            Ok(r) => r,
            Err(_) => Err(shard_unavailable(
                &config.name,
                format!("no connection within {} ms", limit.as_millis()),
            )),
        }
    }

    async fn connect_inner(config: &ShardConfig, dialer: &Dialer) -> Result<Self, PgError> {
        let name = &config.name;
        let socket = dialer.dial(config).await?;
        let mut c = PgConnection {
            shard: name.clone(),
            conn: Connection::new(socket, MAX_MESSAGE),
            settings: ChannelSettings::default(),
            query_timeout: config.pool.query_timeout(),
            deadline: None,
            in_flight: true,
            broken: false,
            status: b'I',
            key: None,
            writing: false,
            copy_in: false,
            idle_since: Instant::now(),
            statements: ShardStatements::default(),
        };
        messages::startup(
            &mut c.conn.out,
            &[
                ("user", &config.user),
                ("database", &config.dbname),
                ("application_name", "pgvshard"),
                ("client_encoding", "UTF8"),
                ("DateStyle", "ISO, MDY"),
            ],
        );
        c.flush().await?;
        let server = format!("shard \"{name}\"");
        let mut login = ClientLogin::new(&config.user, config.password.as_deref().unwrap_or(""));
        loop {
            match c.read().await? {
                BackendMessage::Authentication(code, data) => {
                    login.answer(&server, code, &data, &mut c.conn.out)?;
                    c.flush().await?;
                }
                BackendMessage::Error(e) => {
                    return Err(PgError::new(
                        e.code.clone(),
                        format!("shard \"{name}\" refused the proxy's login: {}", e.message),
                    ))
                }
                BackendMessage::BackendKeyData(pid, secret) => c.key = Some((pid, secret)),
                BackendMessage::ReadyForQuery(status) => {
                    c.status = status;
                    c.in_flight = false;
                    return Ok(c);
                }
                _ => {}
            }
        }
    }

    async fn flush(&mut self) -> Result<(), PgError> {
        self.writing = true;
        let flushed = self.conn.flush().await;
        self.writing = false;
        if let Err(e) = flushed {
            self.broken = true;
            return Err(shard_unavailable(&self.shard, e));
        }
        Ok(())
    }

    /// The next message of the reply, read off the socket when not
    /// buffered (within the request's `query_timeout`).
    pub(crate) async fn read(&mut self) -> Result<BackendMessage, PgError> {
        let frame = match self.deadline {
            Some(at) => match tokio::time::timeout_at(at, self.conn.read_frame()).await {
                Ok(f) => f,
                Err(_) => {
                    self.broken = true;
                    return Err(PgError::new(
                        sqlstate::QUERY_CANCELED,
                        format!(
                            "shard \"{}\" did not answer within its query_timeout",
                            self.shard
                        ),
                    ));
                }
            },
            None => self.conn.read_frame().await,
        };
        self.accept(frame)
    }

    /// The next message when it is wholly buffered already.
    pub(crate) fn buffered(&mut self) -> Option<Result<BackendMessage, PgError>> {
        match self.conn.buffered_frame() {
            Ok(None) => None,
            frame => Some(self.accept(frame)),
        }
    }

    /// Decodes a frame read from the node and follows the connection's
    /// state by it.
    fn accept(
        &mut self,
        frame: Result<Option<(u8, bytes::Bytes)>, WireError>,
    ) -> Result<BackendMessage, PgError> {
        let (tag, body) = match frame {
            Ok(Some(f)) => f,
            Ok(None) | Err(WireError::UnexpectedEof) => {
                self.broken = true;
                return Err(shard_unavailable(&self.shard, "the connection was closed"));
            }
            Err(e) => {
                self.broken = true;
                return Err(shard_unavailable(&self.shard, e));
            }
        };
        let msg = BackendMessage::decode(tag, body).inspect_err(|_| self.broken = true)?;
        match msg {
            BackendMessage::ReadyForQuery(status) => {
                self.statements.request_done();
                self.status = status;
                self.in_flight = false;
                self.copy_in = false;
                self.deadline = None;
            }
            BackendMessage::CopyIn => self.copy_in = true,
            BackendMessage::Ack(b'1') => self.statements.parse_complete(),
            // A kept statement may have changed its result type (0A000)
            // or be gone (26000): prepare afresh from the next request on.
            BackendMessage::Error(ref e)
                if e.code == sqlstate::FEATURE_NOT_SUPPORTED
                    || e.code == sqlstate::INVALID_SQL_STATEMENT_NAME =>
            {
                self.statements.forget()
            }
            _ => {}
        }
        Ok(msg)
    }

    fn encode(&mut self, request: &Request<'_>) {
        let out = &mut self.conn.out;
        match request {
            Request::Simple(sql) => messages::query(out, sql),
            Request::Extended(ExtendedRequest {
                sql,
                param_types,
                param_formats,
                values,
                result_formats,
            }) => {
                for stale in self.statements.take_stale() {
                    messages::close_statement(out, &stale);
                }
                let name = match self.statements.lookup(sql, param_types) {
                    StatementUse::Bind(name) => name,
                    StatementUse::Prepare(name) => {
                        messages::parse(out, name, sql, param_types);
                        name
                    }
                    StatementUse::Unnamed => {
                        messages::parse(out, "", sql, param_types);
                        ""
                    }
                };
                messages::bind(out, name, param_formats, values, result_formats);
                messages::describe(out, b'P');
                messages::execute(out);
                messages::sync(out);
            }
            Request::Describe { sql, param_types } => {
                messages::parse(out, "", sql, param_types);
                messages::describe(out, b'S');
                messages::sync(out);
            }
            Request::CopyData(data) => messages::copy_data(out, data),
            Request::CopyDone => {
                self.copy_in = false;
                messages::copy_done(out)
            }
            Request::CopyFail(reason) => {
                self.copy_in = false;
                messages::copy_fail(out, reason)
            }
        }
    }

    /// Sends a request: encoded into the output buffer and flushed (COPY
    /// data is flushed once 64 KiB are buffered).
    pub(crate) async fn send_request(&mut self, request: &Request<'_>) -> Result<(), PgError> {
        if !matches!(request, Request::CopyData(_)) {
            self.in_flight = true;
            if self.deadline.is_none() {
                self.deadline = self.query_timeout.map(|d| tokio::time::Instant::now() + d);
            }
        }
        self.encode(request);
        if matches!(request, Request::CopyData(_)) && self.conn.out.len() < (64 << 10) {
            return Ok(());
        }
        self.flush().await
    }

    /// Ends an abandoned reply: fails a COPY FROM STDIN the node still
    /// waits on, sends what is buffered, and reads the rest of the reply
    /// up to ReadyForQuery (the caller bounds the time).
    pub(crate) async fn drain(&mut self) -> Result<(), PgError> {
        self.deadline = None;
        if self.copy_in {
            self.encode(&Request::CopyFail(
                "the proxy's client canceled the statement".into(),
            ));
        }
        self.flush().await?;
        while self.in_flight {
            self.read().await?;
        }
        Ok(())
    }

    /// True when the node closed the connection while it was idle.
    pub(crate) fn peer_gone(&mut self) -> bool {
        self.conn.peer_gone()
    }

    /// Says goodbye: sends Terminate and flushes it (in a task of its
    /// own, best effort), so the shard ends the session — and rolls back
    /// what it left open — cleanly instead of seeing the socket vanish.
    pub(crate) fn close(mut self) {
        if self.broken {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        messages::terminate(&mut self.conn.out);
        runtime.spawn(async move {
            self.conn.flush().await.ok();
        });
    }
}

impl ShardChannel for PgConnection {
    fn send<'a>(&'a mut self, request: &'a Request<'_>) -> BoxFuture<'a, Result<(), PgError>> {
        Box::pin(self.send_request(request))
    }

    fn recv(&mut self) -> BoxFuture<'_, Result<BackendMessage, PgError>> {
        Box::pin(self.read())
    }

    fn buffered(&mut self) -> Option<Result<BackendMessage, PgError>> {
        PgConnection::buffered(self)
    }

    fn buffered_rows(&mut self, max: usize) -> Option<(bytes::Bytes, usize)> {
        // DataRows change nothing of the connection's state.
        self.conn.buffered_run(b'D', max)
    }

    fn settings(&mut self) -> &mut ChannelSettings {
        &mut self.settings
    }
}
