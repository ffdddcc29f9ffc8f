//! How the proxy talks to a shard: one [`Backend`] per shard node, whatever
//! kind of server it is. A backend hands out [`ShardChannel`]s — pooled,
//! message-level sessions — on which the proxy sends [`Request`]s and reads
//! the shard's [`BackendMessage`]s one by one, so rows stream through the
//! merge as raw bytes instead of being collected and decoded.
//!
//! The interface is the PostgreSQL protocol's message flow rather than
//! typed rows because the proxy must hand clients exactly the bytes a
//! PostgreSQL server would send, in the formats each client asked for
//! (tokio-postgres, for one, forces binary results on prepared queries,
//! see ../shared/DEPENDENCIES.md). The remote kind ([`remote`], pooled by
//! [`pool`]) speaks it over TCP; an in-process shard ([`local`]) produces
//! the same messages without a socket, through the same pool. A channel
//! dropped mid-reply has its statement canceled on the node ([`cancel`]).

pub mod cancel;
pub mod local;
pub mod metered;
pub mod pool;
pub mod remote;
mod statements;
mod unix_socket;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

pub use crate::wire::backend_messages as messages;
pub use local::LocalShard;
pub use messages::BackendMessage;
pub use pool::{NodeStatus, RemoteBackend, SharedBackend};
pub use remote::Dialer;

use crate::wire::{oid, Format, PgError};

/// A boxed future, for the object-safe traits below.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One request to a shard. Type OIDs are the shard's own.
#[derive(Debug, Clone)]
pub enum Request<'a> {
    /// A simple-protocol Query.
    Simple(String),
    /// Parse, Bind, Describe (portal), Execute and Sync on the unnamed
    /// statement and portal.
    Extended(ExtendedRequest<'a>),
    /// Parse, Describe (statement) and Sync: parameter and result types.
    Describe {
        /// The statement.
        sql: String,
        /// Parameter types (0 = let the shard infer).
        param_types: Vec<u32>,
    },
    /// CopyData during COPY FROM STDIN.
    CopyData(Bytes),
    /// CopyDone.
    CopyDone,
    /// CopyFail with a reason.
    CopyFail(String),
}

/// A statement with bound parameters for the extended protocol, borrowed
/// where it can be from the statement and the client's Bind (it is made
/// for every statement a client executes).
#[derive(Debug, Clone, Default)]
pub struct ExtendedRequest<'a> {
    /// The statement.
    pub sql: Cow<'a, str>,
    /// Parameter types (the shard's OIDs).
    pub param_types: Cow<'a, [u32]>,
    /// Parameter formats (Bind's rule).
    pub param_formats: Cow<'a, [Format]>,
    /// Parameter values; `None` is NULL.
    pub values: Cow<'a, [Option<Bytes>]>,
    /// Result format codes, one per output column (or one for all).
    pub result_formats: Cow<'a, [i16]>,
}

/// The settings a shard connection has, as the proxy set them.
#[derive(Debug, Default)]
pub struct ChannelSettings {
    /// Settings set on the connection (name → value); the others have
    /// their defaults.
    pub values: BTreeMap<String, String>,
    /// The session settings version ([`Session::settings_version`],
    /// unique in the process) the connection was last brought to: while
    /// the session's settings stay at it, nothing needs comparing.
    ///
    /// [`Session::settings_version`]: crate::wire::Session::settings_version
    pub synced: Option<u64>,
    /// A statement may have changed settings behind `values` (a
    /// `set_config` call, a ROLLBACK TO SAVEPOINT): the connection is reset
    /// before it is next used ([`RemoteBackend`](pool::RemoteBackend)'s
    /// checkout, or the statement path's settings sync on a pinned one).
    pub unknown: bool,
}

impl ChannelSettings {
    /// Records that the connection's settings are no longer known.
    pub fn mark_unknown(&mut self) {
        *self = ChannelSettings {
            unknown: true,
            ..Default::default()
        };
    }
}

/// A session with one shard node, checked out of its pool.
pub trait ShardChannel: Send {
    /// Sends a request (and flushes it).
    fn send<'a>(&'a mut self, request: &'a Request<'_>) -> BoxFuture<'a, Result<(), PgError>>;
    /// The next message of the reply; the reply ends with ReadyForQuery.
    fn recv(&mut self) -> BoxFuture<'_, Result<BackendMessage, PgError>>;
    /// The next message when it was already read off the socket (`None`:
    /// [`ShardChannel::recv`] must wait for it). A reply usually arrives
    /// in one read, so most of its messages are taken this way, without a
    /// boxed future per message.
    fn buffered(&mut self) -> Option<Result<BackendMessage, PgError>>;
    /// Up to `max` DataRow messages already read, taken at once as the
    /// node sent them (their frames, and how many): rows a proxy passes
    /// on unchanged need no decoding.
    fn buffered_rows(&mut self, max: usize) -> Option<(Bytes, usize)>;
    /// Settings this connection currently has set, so the proxy can bring
    /// it to the session's values with the fewest SETs.
    fn settings(&mut self) -> &mut ChannelSettings;
}

/// The next message of a reply on `chan`: the buffered one, else awaited.
pub async fn next_message(chan: &mut dyn ShardChannel) -> Result<BackendMessage, PgError> {
    match chan.buffered() {
        Some(message) => message,
        None => chan.recv().await,
    }
}

/// Runs a statement whose rows the proxy does not need (BEGIN, SET,
/// COMMIT) and returns its last tag.
pub async fn run_simple(chan: &mut dyn ShardChannel, sql: &str) -> Result<String, PgError> {
    chan.send(&Request::Simple(sql.to_string())).await?;
    let mut tag = String::new();
    let mut error = None;
    loop {
        match chan.recv().await? {
            BackendMessage::CommandComplete(t) => tag = t,
            BackendMessage::Error(e) => error = error.or(Some(e)),
            BackendMessage::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    error.map_or(Ok(tag), Err)
}

/// One shard node.
pub trait Backend: Send + Sync + 'static {
    /// The shard's name, for errors and `SHOW pgvshard.shards`.
    fn name(&self) -> &str;
    /// A channel from the pool (fails fast with 08006 when the node is down).
    fn checkout(&self) -> BoxFuture<'_, Result<Box<dyn ShardChannel>, PgError>>;
    /// The node's vector type OIDs.
    fn oids(&self) -> OidMap;
    /// Forget the type OIDs (after CREATE/DROP EXTENSION): looked up again
    /// on the next checkout.
    fn invalidate_types(&self);
    /// Forget the statements its connections keep prepared (after a
    /// statement that may have changed the schema): each connection closes
    /// them before its next request.
    fn forget_statements(&self);
    /// Health and pool counters.
    fn status(&self) -> NodeStatus;
}

/// The proxy's OIDs for pgvector's types (the wire registry's) and one
/// shard's: extension OIDs depend on the database they were created in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OidMap {
    /// (proxy OID, shard OID) for vector, halfvec, sparsevec; shard OID 0
    /// while the extension is not installed.
    pairs: [(u32, u32); 3],
}

impl OidMap {
    /// The proxy's names and OIDs of the mapped types.
    pub const TYPES: [(&'static str, u32); 3] = [
        ("vector", oid::VECTOR),
        ("halfvec", oid::HALFVEC),
        ("sparsevec", oid::SPARSEVEC),
    ];

    /// A map from the shard's `(typname, oid)` rows.
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = (&'a str, u32)>) -> Self {
        let mut map = OidMap {
            pairs: Self::TYPES.map(|(_, ours)| (ours, 0)),
        };
        for (name, shard) in rows {
            if let Some(i) = Self::TYPES.iter().position(|(n, _)| *n == name) {
                map.pairs[i].1 = shard;
            }
        }
        map
    }

    /// The OID a client sees for a shard's OID.
    pub fn to_client(&self, shard: u32) -> u32 {
        self.pairs
            .iter()
            .find(|(_, s)| *s == shard && shard != 0)
            .map_or(shard, |(ours, _)| *ours)
    }

    /// The shard's OID for a client's OID.
    pub fn to_shard(&self, ours: u32) -> u32 {
        self.pairs
            .iter()
            .find(|(o, s)| *o == ours && *s != 0)
            .map_or(ours, |(_, s)| *s)
    }

    /// The shard's OIDs for a client's, copied only when one differs.
    pub fn types_to_shard<'a>(&self, ours: &'a [u32]) -> Cow<'a, [u32]> {
        match ours.iter().all(|&t| self.to_shard(t) == t) {
            true => Cow::Borrowed(ours),
            false => Cow::Owned(ours.iter().map(|&t| self.to_shard(t)).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_translate_both_ways() {
        let m = OidMap::from_rows([("vector", 16385), ("halfvec", 16498), ("sparsevec", 16633)]);
        assert_eq!(m.to_client(16498), oid::HALFVEC);
        assert_eq!(m.to_shard(oid::SPARSEVEC), 16633);
        assert_eq!(m.to_client(23), 23);
        let none = OidMap::from_rows([]);
        assert_eq!(none.to_shard(oid::VECTOR), oid::VECTOR);
        assert_eq!(none.to_client(0), 0);
        let types = [23, oid::VECTOR];
        assert!(matches!(none.types_to_shard(&types), Cow::Borrowed(_)));
        let m = OidMap::from_rows([("vector", 16385)]);
        assert_eq!(*m.types_to_shard(&types), [23, 16385]);
    }
}
