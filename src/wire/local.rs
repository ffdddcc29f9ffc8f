//! Sessions over in-memory pipes instead of a listener. An in-process
//! shard behind the proxy is served this way: the proxy speaks the same
//! protocol to it as to a shard across the network, so the extended
//! protocol, formats, COPY, cancel and `statement_timeout` have one
//! implementation (this layer's) for both kinds of shard, and the bytes
//! the proxy forwards are identical by construction.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::io::DuplexStream;
use tokio::sync::{mpsc, watch};

use super::client::{serve_client, Shared};
use super::config::{LiveWireConfig, WireConfig};
use super::handler::HandlerFactory;

/// Bytes buffered in each direction of a pipe.
const PIPE_BYTES: usize = 256 * 1024;

/// A server whose clients connect through [`LocalServer::connect`].
pub struct LocalServer<F: HandlerFactory> {
    factory: Arc<F>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    /// Each session holds a clone; `shutdown` waits for the last to drop.
    drain: Mutex<Option<mpsc::Sender<()>>>,
    drained: tokio::sync::Mutex<mpsc::Receiver<()>>,
}

impl<F: HandlerFactory> LocalServer<F> {
    /// A server with handlers from `factory`. Sessions come from the
    /// loopback address, so trust auth accepts them; their number is not
    /// limited here (the proxy's pool for the shard bounds it).
    pub fn new(factory: F, mut config: WireConfig) -> Self {
        config.max_connections = tokio::sync::Semaphore::MAX_PERMITS;
        let (stop, _) = watch::channel(false);
        let (drain, drained) = mpsc::channel(1);
        LocalServer {
            factory: Arc::new(factory),
            shared: Arc::new(Shared::new(LiveWireConfig::new(config))),
            stop,
            drain: Mutex::new(Some(drain)),
            drained: tokio::sync::Mutex::new(drained),
        }
    }

    /// Opens a session; `None` once shut down. The returned end is the
    /// client's: write a StartupMessage to it as to a socket.
    pub fn connect(&self) -> Option<DuplexStream> {
        let drain = self
            .drain
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let (client, server) = tokio::io::duplex(PIPE_BYTES);
        let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let (factory, shared) = (Arc::clone(&self.factory), Arc::clone(&self.shared));
        let stop = self.stop.subscribe();
        tokio::spawn(async move {
            serve_client(
                Box::new(server),
                (Some(peer), None),
                factory,
                shared,
                stop,
                None,
            )
            .await
            .ok();
            drop(drain);
        });
        Some(client)
    }

    /// Refuses new sessions, closes idle ones at their next boundary, and
    /// waits until every session has ended.
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        self.drain.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.drained.lock().await.recv().await;
    }
}
