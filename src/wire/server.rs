//! The accept loop (mini-redis's `server::run`): one semaphore caps the
//! connections in the startup phase (twice `max_connections`, as
//! PostgreSQL allows about twice as many children as sessions; a socket
//! over it is closed at once), another the sessions (taken after the
//! startup packet, so a client over it gets FATAL 53300 the way
//! PostgreSQL sends it, after the SSLRequest was answered); a watch channel
//! tells every connection to stop, and `serve` returns only after the
//! last connection task has dropped its clone of the drain sender.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::client::{serve_client, Shared};
use super::config::{LiveWireConfig, WireConfig};
use super::error::WireError;
use super::handler::HandlerFactory;
use super::listen::Listeners;

/// Serves PostgreSQL clients on `listener` (a TCP listener, or
/// [`Listeners`] with a Unix-domain socket too) with handlers from `factory`
/// until `shutdown` completes; then stops accepting, closes idle sessions
/// with FATAL 57P01, lets running statements finish, and returns when every
/// connection has ended.
pub async fn serve<F: HandlerFactory>(
    listener: impl Into<Listeners>,
    factory: F,
    config: WireConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_live(
        listener.into(),
        factory,
        LiveWireConfig::new(config),
        shutdown,
    )
    .await
}

/// [`serve`] with a configuration that can be replaced while serving
/// (see [`LiveWireConfig`]).
pub async fn serve_live<F: HandlerFactory>(
    listener: Listeners,
    factory: F,
    config: Arc<LiveWireConfig>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let first = config.current();
    if let Ok(addr) = listener.local_addr() {
        super::auth::warn_if_trust_is_exposed(&first, addr);
    }
    let factory = Arc::new(factory);
    let shared = Arc::new(Shared::new(config));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (drain_tx, mut drain_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let accepted = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors and similar: back off, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (stream, peer, local) = (accepted.stream, accepted.peer, accepted.local);
        let drain = drain_tx.clone();
        let Ok(permit) = Arc::clone(shared.config.starting.permits()).try_acquire_owned() else {
            tracing::warn!(?peer, "too many connections starting up: closed");
            continue;
        };
        let (factory, shared, stop) = (Arc::clone(&factory), Arc::clone(&shared), stop_rx.clone());
        tokio::spawn(async move {
            match serve_client(stream, (peer, local), factory, shared, stop, Some(permit)).await {
                Ok(()) | Err(WireError::Io(_) | WireError::UnexpectedEof) => {}
                Err(e) => tracing::debug!(?peer, error = %e, "connection ended"),
            }
            drop(drain);
        });
    }
    drop(listener);
    stop_tx.send_replace(true);
    drop(drain_tx);
    drain_rx.recv().await;
    Ok(())
}
