//! What a protocol server needs to know before accepting clients.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::limit::Limit;
use super::scram::ScramSecret;
use super::tls::ServerTls;

/// How clients prove who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// No password. Loopback clients only unless `trust_remote` is set.
    Trust,
    /// SCRAM-SHA-256 against [`WireConfig::users`].
    ScramSha256,
}

/// Settings of [`super::serve`].
#[derive(Debug, Clone)]
pub struct WireConfig {
    /// Authentication method (default: trust).
    pub auth: AuthMethod,
    /// With trust auth, accept clients that are not on loopback too.
    pub trust_remote: bool,
    /// Users and their SCRAM secrets, by name.
    pub users: HashMap<String, ScramSecret>,
    /// The users that are superusers (PostgreSQL's `rolsuper`); absent:
    /// every user is one.
    pub superusers: Option<HashSet<String>>,
    /// Most concurrent sessions; a client over it gets FATAL 53300 after
    /// its startup packet (PostgreSQL's `max_connections`). Twice as many
    /// connections may be in the startup phase at once; past that a new
    /// socket is closed at once.
    pub max_connections: usize,
    /// Longest time from accept to the end of authentication; a client
    /// still starting up then is disconnected (PostgreSQL's
    /// `authentication_timeout`, 60 s).
    pub authentication_timeout: Duration,
    /// Largest frontend message body accepted; larger ones are a protocol
    /// violation that closes the connection (PostgreSQL: 1 GiB).
    pub max_message_size: usize,
    /// TLS after SSLRequest; absent: SSLRequest is answered 'N'.
    pub tls: Option<ServerTls>,
    /// The server's secret for SCRAM salts of unknown users (PostgreSQL's
    /// `mock_auth_nonce`); random per configuration.
    pub mock_auth_nonce: [u8; 32],
}

impl Default for WireConfig {
    fn default() -> Self {
        WireConfig {
            auth: AuthMethod::Trust,
            trust_remote: false,
            users: HashMap::new(),
            superusers: None,
            max_connections: 100,
            authentication_timeout: Duration::from_secs(60),
            max_message_size: 1 << 30,
            tls: None,
            mock_auth_nonce: super::scram::random_bytes(),
        }
    }
}

impl WireConfig {
    /// Adds a SCRAM user with a password (a fresh salt, 4096 iterations).
    /// Is `user` a superuser?
    pub fn is_superuser(&self, user: &str) -> bool {
        self.superusers.as_ref().is_none_or(|s| s.contains(user))
    }

    pub fn with_user(mut self, name: impl Into<String>, password: &str) -> Self {
        self.users
            .insert(name.into(), ScramSecret::from_password(password));
        self
    }
}

/// The [`WireConfig`] a server runs with, replaceable while it serves
/// (a configuration reload): a connection authenticates with the one
/// current when it started up, so sessions already open are untouched.
/// `max_connections` resizes the session limit (and the startup limit,
/// twice it) as [`Limit`] does: open sessions stay, new ones wait for the
/// count to come down; `max_message_size` keeps its value from the start.
#[derive(Debug)]
pub struct LiveWireConfig {
    config: RwLock<Arc<WireConfig>>,
    /// One place per session past its startup packet.
    pub(crate) sessions: Limit,
    /// One place per connection in the startup phase.
    pub(crate) starting: Limit,
}

impl LiveWireConfig {
    /// Starts with `config`.
    pub fn new(config: WireConfig) -> Arc<Self> {
        Arc::new(LiveWireConfig {
            sessions: Limit::new(config.max_connections),
            starting: Limit::new(starting_places(config.max_connections)),
            config: RwLock::new(Arc::new(config)),
        })
    }

    /// The configuration new connections use now.
    pub fn current(&self) -> Arc<WireConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Makes `config` the one new connections use and resizes the limits
    /// to its `max_connections`, keeping the start's `max_message_size`
    /// and SCRAM mock nonce (so an unknown user's fake salt does not
    /// change across reloads, which would tell a prober it is unknown).
    /// Call within a tokio runtime (see [`Limit::resize`]).
    pub fn replace(&self, mut config: WireConfig) {
        let mut current = self.config.write().unwrap_or_else(|e| e.into_inner());
        config.max_message_size = current.max_message_size;
        config.mock_auth_nonce = current.mock_auth_nonce;
        if config.max_connections != current.max_connections {
            self.sessions.resize(config.max_connections);
            self.starting
                .resize(starting_places(config.max_connections));
        }
        *current = Arc::new(config);
    }
}

/// Connections allowed in the startup phase for `max_connections`
/// sessions: twice as many (PostgreSQL allows about twice as many children
/// as sessions), within what a semaphore holds.
fn starting_places(max_connections: usize) -> usize {
    max_connections
        .saturating_mul(2)
        .min(tokio::sync::Semaphore::MAX_PERMITS)
}
