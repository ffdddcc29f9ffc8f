//! The pool of connections to one shard node (remote, or in-process
//! through [`Dialer::Local`]): at most `size`
//! connections, idle ones kept until `idle_timeout`, a checkout that waits
//! at most `connect_timeout`. A connection goes back to the pool only
//! when its last reply was read to ReadyForQuery outside a transaction;
//! one dropped mid-reply has its statement canceled on the node and is
//! drained first ([`super::cancel`]); anything else (broken, inside a
//! transaction) is closed, so a pooled connection never carries state
//! into another session.
//!
//! A pool made with [`RemoteBackend::metered`] times its channels'
//! requests and counts the node's errors ([`Meter`]).
//!
//! `std::sync::Mutex` guards the idle list: it is held only to push or
//! pop, never across an await. Connections are boxed, so a checkout and
//! its return move a pointer, not the connection and its buffers.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;

use super::cancel::recover;
use super::messages::BackendMessage;
use super::metered::Meter;
use super::remote::{shard_unavailable, Dialer, PgConnection};
use super::{run_simple, Backend, BoxFuture, ChannelSettings, OidMap, Request, ShardChannel};
use crate::proxy::config::{PoolConfig, ShardConfig};
use crate::wire::{Limit, PgError};

/// What `SHOW pgvshard.shards` / `pools` report about a node.
#[derive(Debug, Clone, Default)]
pub struct NodeStatus {
    /// Kind and address, e.g. `postgres 127.0.0.1:5432`.
    pub address: String,
    /// The last connect attempt's error, if it failed (`None`: up).
    pub down: Option<String>,
    /// Pool size.
    pub size: usize,
    /// Connections checked out now.
    pub active: usize,
    /// Idle connections.
    pub idle: usize,
    /// Connections opened since start.
    pub opened: u64,
    /// Checkouts waiting for a free connection now.
    pub waiting: usize,
}

#[derive(Default)]
struct Counters {
    down: Option<String>,
    opened: u64,
}

/// A pooled shard node.
pub struct RemoteBackend {
    config: ShardConfig,
    /// The pool settings now (`config.pool` at start; see [`RemoteBackend::resize`]).
    pool: RwLock<PoolConfig>,
    dialer: Dialer,
    #[allow(
        clippy::vec_box,
        reason = "a checkout moves the box, not the connection and its buffers"
    )]
    idle: Mutex<Vec<Box<PgConnection>>>,
    /// One place per connection checked out (or being recovered).
    permits: Limit,
    oids: RwLock<Option<OidMap>>,
    counters: Mutex<Counters>,
    waiting: AtomicUsize,
    /// Set by [`RemoteBackend::close`]: no more checkouts.
    closed: AtomicBool,
    /// Moved by [`Backend::forget_statements`]; a connection whose
    /// statements are older closes them before its next request.
    statements_epoch: AtomicU64,
    /// Where its channels report (none: unmetered).
    meter: Option<Meter>,
}

impl RemoteBackend {
    /// A pool for the TCP node `config` describes (no connection is
    /// opened yet).
    pub fn new(config: ShardConfig) -> Arc<Self> {
        Self::with_dialer(config, Dialer::Tcp)
    }

    /// A pool of up to `size` trust-auth connections as `postgres` to a
    /// server on loopback `port`: the client the benchmarks drive.
    pub fn loopback(port: u16, size: usize) -> Arc<Self> {
        Self::new(ShardConfig {
            name: "bench".to_string(),
            kind: Default::default(),
            host: "127.0.0.1".to_string(),
            port,
            user: "postgres".to_string(),
            password: None,
            dbname: "postgres".to_string(),
            sslmode: Default::default(),
            sslrootcert: None,
            data_dir: None,
            pool: crate::proxy::config::PoolConfig {
                size,
                ..Default::default()
            },
            weight: 1,
            standbys: Vec::new(),
        })
    }

    /// A pool whose connections `dialer` opens.
    pub fn with_dialer(config: ShardConfig, dialer: Dialer) -> Arc<Self> {
        Self::build(config, dialer, None)
    }

    /// [`RemoteBackend::with_dialer`] whose channels report to `meter`.
    pub fn metered(config: ShardConfig, dialer: Dialer, meter: Meter) -> Arc<Self> {
        Self::build(config, dialer, Some(meter))
    }

    fn build(config: ShardConfig, dialer: Dialer, meter: Option<Meter>) -> Arc<Self> {
        Arc::new(RemoteBackend {
            dialer,
            permits: Limit::new(config.pool.size),
            pool: RwLock::new(config.pool.clone()),
            config,
            idle: Mutex::new(Vec::new()),
            oids: RwLock::new(None),
            counters: Mutex::new(Counters::default()),
            waiting: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            statements_epoch: AtomicU64::new(0),
            meter,
        })
    }

    /// Connections checked out now, or being recovered after their
    /// reply was abandoned.
    pub fn in_use(&self) -> usize {
        self.permits.held()
    }

    /// The pool settings in force.
    pub fn pool(&self) -> PoolConfig {
        self.pool.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Applies new pool settings while serving (a configuration reload).
    /// A larger size takes effect at once; a smaller one as soon as enough
    /// connections are free: busy ones finish their statements and their
    /// places are then withdrawn, so no session loses its connection.
    /// Timeouts apply to the next checkout and connection.
    pub fn resize(&self, new: PoolConfig) {
        let size = new.size;
        *self.pool.write().unwrap_or_else(|e| e.into_inner()) = new;
        self.permits.resize(size);
    }

    /// Closes the pool for good (its node left the configuration): idle
    /// connections are closed now, busy ones when their session returns
    /// them, and checkouts fail with 08006.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        for conn in idle {
            conn.close();
        }
    }

    /// The node's settings with the pool settings in force.
    fn connect_config(&self) -> ShardConfig {
        ShardConfig {
            pool: self.pool(),
            ..self.config.clone()
        }
    }

    fn put_idle(&self, mut conn: Box<PgConnection>) {
        if self.closed.load(Ordering::Relaxed) {
            conn.close();
            return;
        }
        conn.idle_since = Instant::now();
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
    }

    fn take_idle(&self) -> Option<Box<PgConnection>> {
        let limit = self.pool().idle_timeout();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(mut c) = idle.pop() {
            // A node that stopped or restarted closed its end: dial anew
            // rather than fail the statement on a dead socket.
            if c.idle_since.elapsed() < limit && !c.peer_gone() {
                return Some(c);
            }
            c.close();
        }
        None
    }

    fn record(&self, result: &Result<PgConnection, PgError>) {
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(_) => {
                c.down = None;
                c.opened += 1;
            }
            Err(e) => c.down = Some(e.message.clone()),
        }
    }

    async fn load_types(&self, conn: &mut PgConnection) -> Result<(), PgError> {
        let sql = "SELECT typname::text, oid::int8 FROM pg_catalog.pg_type \
                   WHERE typname IN ('vector', 'halfvec', 'sparsevec') \
                   AND typnamespace = (SELECT extnamespace FROM pg_catalog.pg_extension WHERE extname = 'vector')";
        let request = Request::Simple(sql.to_string());
        conn.send(&request).await?;
        let mut rows = Vec::new();
        loop {
            match conn.recv().await? {
                BackendMessage::DataRow(row) => {
                    let f = super::messages::fields(&row)?;
                    if let [Some(name), Some(oid)] = f.as_slice() {
                        let name = String::from_utf8_lossy(name).into_owned();
                        let oid = std::str::from_utf8(oid).ok().and_then(|o| o.parse().ok());
                        rows.push((name, oid.unwrap_or(0)));
                    }
                }
                BackendMessage::ReadyForQuery(_) => break,
                _ => {}
            }
        }
        let map = OidMap::from_rows(rows.iter().map(|(n, o)| (n.as_str(), *o)));
        *self.oids.write().unwrap_or_else(|e| e.into_inner()) = Some(map);
        Ok(())
    }

    async fn checkout_inner(self: Arc<Self>) -> Result<Box<dyn ShardChannel>, PgError> {
        let checked_out = Arc::clone(&self).open_channel().await;
        if let (Err(_), Some(meter)) = (&checked_out, &self.meter) {
            meter.error();
        }
        checked_out
    }

    async fn open_channel(self: Arc<Self>) -> Result<Box<dyn ShardChannel>, PgError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(shard_unavailable(
                &self.config.name,
                "the node was removed from the configuration",
            ));
        }
        let pool = self.pool();
        let wait = pool.connect_timeout();
        let waiting = Waiting::new(&self.waiting);
        let acquired =
            tokio::time::timeout(wait, Arc::clone(self.permits.permits()).acquire_owned()).await;
        drop(waiting);
        let permit = match acquired {
            Ok(Ok(p)) => p,
            _ => {
                return Err(shard_unavailable(
                    &self.config.name,
                    format!(
                        "all {} pool connections stayed busy for {} ms",
                        pool.size,
                        wait.as_millis()
                    ),
                ))
            }
        };
        // The rare steps below are boxed: their futures would otherwise
        // make every checkout's future (allocated per statement) large.
        let mut conn = match self.take_idle() {
            Some(c) => c,
            None => {
                let config = self.connect_config();
                let result = Box::pin(PgConnection::connect(&config, &self.dialer)).await;
                self.record(&result);
                Box::new(result?)
            }
        };
        let known = self
            .oids
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        if !known {
            Box::pin(self.load_types(&mut conn)).await?;
        }
        if conn.settings().unknown {
            Box::pin(run_simple(conn.as_mut(), "RESET ALL")).await?;
            *conn.settings() = ChannelSettings::default();
        }
        Ok(Box::new(Pooled {
            conn: Some(conn),
            home: Arc::clone(&self),
            permit: Some(permit),
            sent: None,
        }))
    }
}

/// Counts a checkout waiting for a permit, also when its future is
/// dropped while it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Waiting(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A checked-out connection; it returns to its pool when dropped clean,
/// or after [`recover`] when dropped mid-reply.
struct Pooled {
    conn: Option<Box<PgConnection>>,
    home: Arc<RemoteBackend>,
    /// Held until the connection is idle again or closed.
    permit: Option<OwnedSemaphorePermit>,
    /// When the request being answered was sent (metered pools).
    sent: Option<Instant>,
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if conn.in_flight {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let home = Arc::clone(&self.home);
                let permit = self.permit.take();
                runtime.spawn(async move {
                    if let Some(conn) = recover(*conn, &home.dialer, &home.config).await {
                        home.put_idle(Box::new(conn));
                    }
                    drop(permit);
                });
                return;
            }
        }
        if conn.in_flight || conn.broken || conn.status != b'I' {
            conn.close();
            return;
        }
        self.home.put_idle(conn);
    }
}

impl Pooled {
    fn conn(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("present until drop")
    }

    fn observe(&mut self, r: &Result<BackendMessage, PgError>) {
        if let Some(meter) = &self.home.meter {
            meter.observe(&mut self.sent, r);
        }
    }
}

impl ShardChannel for Pooled {
    fn send<'a>(&'a mut self, request: &'a Request<'_>) -> BoxFuture<'a, Result<(), PgError>> {
        let epoch = self.home.statements_epoch.load(Ordering::Relaxed);
        self.conn().statements.at_epoch(epoch);
        let timed = matches!(
            request,
            Request::Simple(_) | Request::Extended(_) | Request::Describe { .. }
        );
        if timed && self.home.meter.is_some() {
            self.sent = Some(Instant::now());
        }
        Box::pin(async move {
            let sent = self.conn().send_request(request).await;
            if let (Err(_), Some(meter)) = (&sent, &self.home.meter) {
                meter.error();
            }
            sent
        })
    }

    fn recv(&mut self) -> BoxFuture<'_, Result<BackendMessage, PgError>> {
        Box::pin(async move {
            let r = self.conn().read().await;
            self.observe(&r);
            r
        })
    }

    fn buffered(&mut self) -> Option<Result<BackendMessage, PgError>> {
        let r = self.conn().buffered()?;
        self.observe(&r);
        Some(r)
    }

    fn buffered_rows(&mut self, max: usize) -> Option<(bytes::Bytes, usize)> {
        self.conn().buffered_rows(max)
    }

    fn settings(&mut self) -> &mut ChannelSettings {
        self.conn().settings()
    }
}

/// Shared handle used by the router.
pub type SharedBackend = Arc<dyn Backend>;

impl Backend for Arc<RemoteBackend> {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn checkout(&self) -> BoxFuture<'_, Result<Box<dyn ShardChannel>, PgError>> {
        Box::pin(Arc::clone(self).checkout_inner())
    }

    fn oids(&self) -> OidMap {
        self.oids
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or_default()
    }

    fn invalidate_types(&self) {
        *self.oids.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn forget_statements(&self) {
        self.statements_epoch.fetch_add(1, Ordering::Relaxed);
    }

    fn status(&self) -> NodeStatus {
        let c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).len();
        NodeStatus {
            address: self.dialer.address(&self.config),
            down: c.down.clone(),
            size: self.permits.size(),
            active: self.permits.held(),
            idle,
            opened: c.opened,
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }
}
