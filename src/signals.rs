//! SIGHUP for every process of the binary. Its default action ends the
//! process, so a `kill -HUP` meant to reload the proxy's file would stop a
//! shard sent the same signal: each process listens for it instead — the
//! proxy re-reads its file, others log that they have nothing to reload.

use std::future::Future;

use tokio::task::JoinHandle;

/// The SIGHUP listener; it stops when this is dropped.
pub struct OnHangup(JoinHandle<()>);

impl Drop for OnHangup {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `action` at each SIGHUP until the returned value is dropped.
/// Call within a tokio runtime.
pub fn on_hangup<F, Fut>(mut action: F) -> OnHangup
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    OnHangup(tokio::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP");
            return;
        };
        while hangups.recv().await.is_some() {
            action().await;
        }
    }))
}
