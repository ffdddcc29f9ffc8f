//! The PostgreSQL protocol layer every pgvshard server shares: startup and
//! authentication (trust, SCRAM-SHA-256), sessions and their settings
//! (GUCs), type OIDs and value encoding (pgvector's types through
//! `ann::types`), errors with SQLSTATE, the simple and extended query
//! protocols, COPY framing, CancelRequest and `statement_timeout`.
//!
//! A server is [`serve`] plus a [`HandlerFactory`]: the layer owns the
//! socket and protocol state; a [`QueryHandler`] turns SQL into results
//! through a [`Responder`].
//!
//! # Why our own codec and not pgwire
//!
//! pgwire 0.42 works (psql, tokio-postgres, SCRAM were verified with it),
//! but its shape fights what pgvshard needs from this layer:
//! - its `ExtendedQueryHandler` passes Execute's row limit to the handler
//!   and leaves suspending and resuming portals to it; here the layer does
//!   it once for every handler;
//! - its `CancelHandler` only receives the (pid, secret) pair: there is no
//!   registry linking it to a running statement, nor a statement timeout;
//! - it has no limit on a frontend message's length, which we need to
//!   refuse oversized messages with 08P01 before buffering them;
//! - the proxy must forward shard rows as raw DataRow bytes in the
//!   client's formats, stream them with backpressure and relay COPY, which
//!   is simplest when the layer is a thin typed view over frames
//!   (pgdog's design) rather than an encoder of typed result streams.
//!
//! The protocol v3 framing is small (one file per concern below), and
//! owning it keeps the message loop, cancel and shutdown visible in one
//! place. TLS ([`tls`], rustls with the `ring` provider) is optional: with
//! it configured an SSLRequest is answered 'S' and the session continues
//! over the encrypted stream; [`responder::ClientIo`] is boxed, so handlers
//! never know which kind of stream they write to. GSSENCRequest is always
//! answered 'N'.

pub mod array;
mod auth;
pub mod backend;
pub mod backend_messages;
pub mod cancel;
pub mod catalog;
mod client;
pub mod client_auth;
pub mod config;
pub mod connection;
pub mod copy;
pub mod datetime;
mod deallocate;
pub mod error;
mod extended;
pub mod frontend;
pub mod guc;
pub mod handler;
pub mod interval;
pub mod limit;
pub mod listen;
mod local;
mod prefixed;
pub mod responder;
pub mod scram;
mod server;
pub mod session;
pub mod sqlstate;
pub mod startup;
pub mod tls;
pub mod tls_client;
pub mod types;
pub mod uuid;
pub mod value;

pub use array::Array;
pub use backend::{DataRow, DataRowBuilder, FieldDescription, TransactionStatus};
pub use cancel::{CancelReason, CancelRegistry, CancelSignal, SessionCancel};
pub use config::{AuthMethod, LiveWireConfig, WireConfig};
pub use copy::{CopyBoth, CopyFormat, CopyIn, CopyOut};
pub use error::{truncation_notices, PgError, Severity, WireError};
pub use handler::{HandlerFactory, Params, Prepared, QueryHandler};
pub use limit::Limit;
pub use listen::{unix_socket_path, Listeners, UnixSocketFile};
pub use local::LocalServer;
pub use responder::Responder;
pub use server::{serve, serve_live};
pub use session::Session;
pub use tls::{ServerTls, TlsConfig, TlsConfigError};
pub use tls_client::{ClientTls, SslMode};
pub use types::{oid, PgType};
pub use value::{Format, Value};
