//! One client connection from the first byte to the last: startup, auth,
//! then the message loop of the simple protocol (the extended protocol's
//! messages are in [`super::extended`]). Statements run under the session's
//! cancel signal and `statement_timeout`; the loop checks for server
//! shutdown only between messages, so a running statement finishes.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use tokio::sync::{watch, OwnedSemaphorePermit};

use super::backend::{self, TransactionStatus};
use super::cancel::{CancelRegistry, CancelSignal, SessionCancel, StatementTimer};
use super::config::{LiveWireConfig, WireConfig};
use super::connection::Connection;
use super::deallocate::Deallocate;
use super::error::{PgError, WireError};
use super::extended::{Portal, PreparedStatement};
use super::frontend::FrontendMessage;
use super::handler::{HandlerFactory, QueryHandler};
use super::responder::{ClientIo, Responder};
use super::session::Session;
use super::startup::{self, Opening};
use super::{auth, guc};

/// State shared by every connection of one server.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Arc<LiveWireConfig>,
    pub(crate) cancels: Arc<CancelRegistry>,
    next_pid: AtomicI32,
}

impl Shared {
    pub(crate) fn new(config: Arc<LiveWireConfig>) -> Self {
        Shared {
            config,
            cancels: Arc::new(CancelRegistry::default()),
            next_pid: AtomicI32::new(1000),
        }
    }
}

/// A session's prepared statements or portals by name. Looked up several
/// times per statement (mostly the unnamed one), so hashed with FNV-1a
/// rather than SipHash: the names are the session's own, and a client
/// choosing colliding names slows down only itself.
pub(crate) type Names<V> = HashMap<String, V, BuildHasherDefault<NameHasher>>;

/// FNV-1a, for [`Names`].
pub(crate) struct NameHasher(u64);

impl Default for NameHasher {
    fn default() -> Self {
        NameHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A connection after startup: everything one session owns.
pub(crate) struct Client<H: QueryHandler> {
    pub(crate) conn: Connection<Box<dyn ClientIo>>,
    pub(crate) session: Session,
    pub(crate) handler: H,
    /// The signal of the statement running now (or last run).
    pub(crate) cancel: Arc<CancelSignal>,
    /// Where CancelRequests for this session land.
    pub(crate) session_cancel: Arc<SessionCancel>,
    pub(crate) statements: Names<PreparedStatement<H::Statement>>,
    pub(crate) portals: Names<Portal<H::Statement>>,
    /// After an error in the extended protocol: ignore messages until Sync.
    pub(crate) skip_to_sync: bool,
}

/// Serves one accepted socket until the client leaves, breaks the
/// protocol, or the server shuts down. `starting` is the connection's
/// place among those in the startup phase (none for in-process pipes),
/// given back once it is a session (or gone). `peer` is `None` over a
/// Unix-domain socket.
pub(crate) async fn serve_client<F: HandlerFactory>(
    stream: Box<dyn ClientIo>,
    (peer, local): (Option<SocketAddr>, Option<SocketAddr>),
    factory: Arc<F>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    starting: Option<OwnedSemaphorePermit>,
) -> Result<(), WireError> {
    let config = shared.config.current();
    let mut conn = Connection::new(stream, config.max_message_size);
    let deadline = config.authentication_timeout;
    let result = tokio::time::timeout(
        deadline,
        start(&mut conn, (peer, local), &*factory, &shared, &config),
    )
    .await;
    drop(starting);
    let (session, handler, _place) = match result {
        // As PostgreSQL, a client still starting up at the deadline is
        // disconnected without a message.
        Err(_) => {
            tracing::debug!(?peer, "authentication timeout: disconnected");
            return Ok(());
        }
        Ok(Ok(Some(started))) => started,
        Ok(Ok(None)) => return Ok(()),
        Ok(Err(e)) => return fail(&mut conn, e).await,
    };
    let session_cancel = Arc::new(SessionCancel::default());
    let cancel = session_cancel.begin_statement();
    let key = shared.cancels.register(
        session.pid,
        startup::long_cancel_key(session.protocol_minor),
        Arc::clone(&session_cancel),
    );
    backend::backend_key_data(&mut conn.out, key.pid, &key.secret);
    let mut client = Client {
        conn,
        session,
        handler,
        cancel,
        session_cancel,
        statements: Names::default(),
        portals: Names::default(),
        skip_to_sync: false,
    };
    backend::ready_for_query(&mut client.conn.out, client.session.transaction_status());
    client.conn.flush().await?;
    let result = client.run(shutdown).await;
    match result {
        Err(e) => fail(&mut client.conn, e).await,
        Ok(()) => Ok(()),
    }
}

/// Sends a FATAL error (when the socket still works) and reports it.
async fn fail(conn: &mut Connection<Box<dyn ClientIo>>, e: WireError) -> Result<(), WireError> {
    if let WireError::Fatal(err) = &e {
        let err = err.clone().with_severity(super::error::Severity::Fatal);
        backend::error_or_notice(&mut conn.out, &err);
        conn.flush().await.ok();
    }
    Err(e)
}

/// Startup and authentication; `None` when the packet was a
/// CancelRequest or the client left. A StartupMessage takes a session
/// permit (none left: FATAL 53300, as PostgreSQL answers it).
async fn start<F: HandlerFactory>(
    conn: &mut Connection<Box<dyn ClientIo>>,
    (peer, local): (Option<SocketAddr>, Option<SocketAddr>),
    factory: &F,
    shared: &Shared,
    config: &WireConfig,
) -> Result<Option<(Session, F::Handler, OwnedSemaphorePermit)>, WireError> {
    // As PostgreSQL, no TLS over a Unix-domain socket: SSLRequest gets 'N'.
    let tls = config.tls.as_ref().filter(|_| peer.is_some());
    let (params, encrypted, minor) = match startup::open(conn, tls).await? {
        None => return Ok(None),
        Some(Opening::Cancel { pid, secret }) => {
            shared.cancels.cancel(pid, &secret);
            return Ok(None);
        }
        Some(Opening::Startup {
            params,
            encrypted,
            minor,
        }) => (params, encrypted, minor),
    };
    let place = Arc::clone(shared.config.sessions.permits())
        .try_acquire_owned()
        .map_err(|_| WireError::Fatal(PgError::too_many_connections()))?;
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let Some(user) = get("user").filter(|u| !u.is_empty()) else {
        return Err(WireError::Fatal(PgError::not_authorized(
            "no PostgreSQL user name specified in startup packet",
        )));
    };
    let database = get("database").unwrap_or_else(|| user.clone());
    let pid = shared.next_pid.fetch_add(1, Ordering::Relaxed);
    let mut session = Session::new(user, database, pid);
    session.superuser = config.is_superuser(&session.user);
    session.protocol_minor = minor;
    session.peer = peer;
    session.server_addr = local;
    session.replication = match get("replication").as_deref() {
        None => false,
        Some(v) => replication_option(v)?,
    };
    for (name, value) in &params {
        session.apply_startup_option(name, value);
    }
    auth::authenticate(conn, config, &session, peer, encrypted).await?;
    let handler = factory
        .connect(&session)
        .map_err(|e| WireError::Fatal(e.with_severity(super::error::Severity::Fatal)))?;
    for g in guc::GUCS.iter().filter(|g| g.report) {
        let value = session.show(g.name).unwrap_or_default();
        backend::parameter_status(&mut conn.out, g.name, &value);
    }
    session.take_reports();
    Ok(Some((session, handler, place)))
}

/// The `replication` startup option: a boolean asks for a physical
/// replication connection; `database` (logical replication) is refused.
fn replication_option(value: &str) -> Result<bool, WireError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        "database" => Err(WireError::Fatal(PgError::feature_not_supported(
            "logical replication is not supported",
        ))),
        _ => Err(WireError::Fatal(PgError::new(
            super::sqlstate::INVALID_PARAMETER_VALUE,
            format!("invalid value for parameter \"replication\": \"{value}\""),
        ))),
    }
}

/// Runs `fut` until it finishes or the session's cancel signal fires, which
/// a CancelRequest or the statement's [`StatementTimer`] (kept in its
/// [`Responder`]) does. A statement that [shielded](CancelSignal::shield)
/// itself is waited for: it sees the signal and answers for itself.
///
/// `fut` is pinned by the caller and borrowed here: taken by value it
/// would be kept twice in this future (as the argument and in the
/// select), which every statement moves.
pub(crate) async fn guarded<T>(
    cancel: &CancelSignal,
    fut: Pin<&mut impl Future<Output = Result<T, PgError>>>,
) -> Result<T, PgError> {
    tokio::select! {
        biased;
        r = fut => r,
        e = cancel.canceled() => Err(e),
    }
}

impl<H: QueryHandler> Client<H> {
    /// The message loop. Shutdown closes the session only at a
    /// ReadyForQuery boundary with nothing pipelined, so a client never
    /// loses the answer to a statement it already sent.
    async fn run(&mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), WireError> {
        let mut at_boundary = true;
        loop {
            let idle = at_boundary && !self.conn.has_buffered_input();
            if idle && *shutdown.borrow() {
                return Err(WireError::Fatal(PgError::admin_shutdown()));
            }
            let msg = if idle {
                tokio::select! {
                    m = self.conn.read_message() => m?,
                    _ = shutdown.changed() => continue,
                }
            } else {
                self.conn.read_message().await?
            };
            at_boundary = matches!(msg, Some(FrontendMessage::Query(_) | FrontendMessage::Sync));
            let Some(msg) = msg else { return Ok(()) };
            if self.skip_to_sync
                && !matches!(msg, FrontendMessage::Sync | FrontendMessage::Terminate)
            {
                continue;
            }
            match msg {
                FrontendMessage::Query(sql) => self.simple_query(&sql).await?,
                FrontendMessage::Terminate => return Ok(()),
                FrontendMessage::Sync => {
                    self.skip_to_sync = false;
                    self.ready_for_query().await?;
                }
                FrontendMessage::Flush => self.conn.flush().await?,
                // Leftovers of a COPY that already failed: ignored, as in
                // PostgreSQL.
                FrontendMessage::CopyData(_)
                | FrontendMessage::CopyDone
                | FrontendMessage::CopyFail(_) => {}
                FrontendMessage::Password(_) => {
                    return Err(WireError::Fatal(PgError::protocol_violation(
                        "unexpected password message after authentication",
                    )))
                }
                FrontendMessage::FunctionCall => {
                    self.extended_error(PgError::feature_not_supported(
                        "the function call protocol is not supported",
                    ))
                    .await?;
                }
                // Parse and Execute are awaited each on its own, so a
                // message moves only its own future (the handler's are
                // large), and the other messages none.
                FrontendMessage::Parse {
                    name,
                    query,
                    param_types,
                } => {
                    let parsed = self.parse(name, &query, &param_types).await;
                    self.extended_result(parsed).await?;
                }
                FrontendMessage::Execute { portal, max_rows } => {
                    let executed = self.execute(&portal, max_rows).await;
                    self.extended_result(executed).await?;
                }
                other => {
                    let answered = self.extended(other);
                    self.extended_result(answered).await?;
                }
            }
            self.conn.flush_if_full().await?;
        }
    }

    /// Sends ParameterStatus for changed reported settings and
    /// ReadyForQuery, then flushes.
    pub(crate) async fn ready_for_query(&mut self) -> Result<(), WireError> {
        // As PostgreSQL: portals end with their transaction (an implicit
        // one ends here). Their parameter values are slices of the read
        // buffer, which the next read can then reuse instead of
        // allocating a new one.
        if self.session.transaction_status() == TransactionStatus::Idle {
            self.portals.clear();
        }
        for (name, value) in self.session.take_reports() {
            backend::parameter_status(&mut self.conn.out, name, &value);
        }
        backend::ready_for_query(&mut self.conn.out, self.session.transaction_status());
        self.conn.flush().await?;
        Ok(())
    }

    /// Sends a statement's error and marks the transaction failed.
    pub(crate) fn statement_error(&mut self, e: &PgError) {
        backend::error_or_notice(&mut self.conn.out, e);
        self.session.fail();
        self.handler.statement_failed(&mut self.session);
    }

    /// An extended-protocol error: sent at once with what precedes it,
    /// as PostgreSQL flushes every error it reports (a client that sent
    /// Parse, Describe and Flush without Sync, as asyncpg does, waits for
    /// it), then every message up to the next Sync is skipped, Flush
    /// included.
    async fn extended_error(&mut self, e: PgError) -> Result<(), WireError> {
        self.statement_error(&e);
        self.skip_to_sync = true;
        self.conn.flush().await?;
        Ok(())
    }

    /// An extended-protocol message's outcome: an error is
    /// [sent](Self::extended_error).
    async fn extended_result(&mut self, result: Result<(), PgError>) -> Result<(), WireError> {
        match result {
            Ok(()) => Ok(()),
            Err(e) => self.extended_error(e).await,
        }
    }

    /// Drains a COPY FROM STDIN the handler left open (it failed before
    /// reading CopyDone): the client's remaining CopyData is discarded.
    pub(crate) async fn drain_copy(&mut self) -> Result<(), WireError> {
        loop {
            match self.conn.read_message().await? {
                Some(FrontendMessage::CopyDone | FrontendMessage::CopyFail(_)) | None => {
                    return Ok(())
                }
                Some(_) => {}
            }
        }
    }

    /// Drops named prepared statements (SQL `DEALLOCATE`).
    fn deallocate(&mut self, target: Deallocate) {
        let result = match &target {
            _ if self.session.transaction_status() == TransactionStatus::Failed => {
                Err(PgError::in_failed_transaction())
            }
            Deallocate::All => {
                self.statements.retain(|name, _| name.is_empty());
                Ok(())
            }
            Deallocate::Named(name) => match self.statements.remove(name) {
                Some(_) => Ok(()),
                None => Err(PgError::unknown_statement(name)),
            },
        };
        match result {
            Ok(()) => backend::command_complete(&mut self.conn.out, target.tag()),
            Err(e) => self.statement_error(&e),
        }
    }

    async fn simple_query(&mut self, sql: &str) -> Result<(), WireError> {
        self.statements.remove("");
        self.portals.remove("");
        self.cancel = self.session_cancel.begin_statement();
        if let Some(target) = Deallocate::parse(sql) {
            self.deallocate(target);
            return self.ready_for_query().await;
        }
        let timer = StatementTimer::arm(&self.cancel, &self.session);
        let mut out = Responder {
            conn: &mut self.conn,
            session: &mut self.session,
            cancel: &self.cancel,
            timer,
            portal: None,
            copy_open: false,
            recording: None,
            last_tag: None,
        };
        let result = {
            let run = pin!(self.handler.simple_query(sql, &mut out));
            guarded(&self.cancel, run).await
        };
        out.timer = None;
        let copy_open = out.copy_open;
        if let Err(e) = result {
            if e.severity == super::error::Severity::Fatal {
                return Err(WireError::Fatal(e));
            }
            self.statement_error(&e);
        }
        if copy_open {
            self.drain_copy().await?;
        }
        self.ready_for_query().await
    }
}
