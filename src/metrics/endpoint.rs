//! `GET /metrics` over plain HTTP/1.1, written by hand: Prometheus sends
//! one small GET per scrape, so a request line, headers up to a blank
//! line and a `Connection: close` answer are the whole protocol, and the
//! proxy does not carry an HTTP stack for it. A scrape renders on the
//! blocking pool: collectors read shard tables under their lock and ask
//! Redis for its statistics, which must not stall the async workers.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{render, Registry};

/// Longest request head accepted.
const MAX_HEAD: usize = 8 * 1024;
/// A client must send its request within this time.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A metrics endpoint serving in the background; dropping it stops it.
pub struct MetricsServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
    _task: JoinHandle<()>,
}

impl MetricsServer {
    /// Binds `addr` and serves `registry` until dropped.
    pub async fn start(addr: SocketAddr, registry: Registry) -> std::io::Result<Self> {
        MetricsServer::on(TcpListener::bind(addr).await?, registry)
    }

    /// Serves `registry` on `listener` until dropped.
    pub fn on(listener: TcpListener, registry: Registry) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, registry, async move {
            stopped.await.ok();
        }));
        Ok(MetricsServer {
            addr,
            _stop: stop,
            _task: task,
        })
    }
}

/// Answers scrapes on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, registry: Registry, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let registry = registry.clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(stream, &registry).await {
                            tracing::debug!(error = %e, "metrics request failed");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "metrics accept failed"),
            },
        }
    }
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            break;
        }
    }
    Ok(head)
}

async fn answer(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, path) = (words.next(), words.next());
    let (status, body) = match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => {
            let registry = registry.clone();
            let body = tokio::task::spawn_blocking(move || render(&registry))
                .await
                .map_err(std::io::Error::other)?;
            ("200 OK", body)
        }
        (Some(b"GET"), _) => ("404 Not Found", "try /metrics\n".to_string()),
        _ => ("405 Method Not Allowed", "only GET\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
