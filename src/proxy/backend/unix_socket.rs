//! A Unix-domain socket to a shard, registered with the runtime for reads
//! only. A Unix socket signals EPOLLOUT to every epoll watching it each
//! time its peer reads (the buffer space freed), so a socket registered
//! both ways (as tokio's `UnixStream` is) wakes the proxy once more per
//! statement, while the shard works, for nothing. Writes go straight to
//! the socket; only one that finds the buffer full (a large COPY) waits
//! for room, on a clone of the socket registered for writes until it
//! went through.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// See the module documentation.
pub struct ShardUnixStream {
    reads: AsyncFd<StdUnixStream>,
    /// Registered for writes while a write waits for room.
    writes: Option<AsyncFd<StdUnixStream>>,
}

impl ShardUnixStream {
    /// Connects to the socket at `path`.
    pub async fn connect(path: &Path) -> io::Result<Self> {
        let socket = tokio::net::UnixStream::connect(path).await?.into_std()?;
        Ok(ShardUnixStream {
            reads: register(socket, Interest::READABLE)?,
            writes: None,
        })
    }
}

/// `socket` (non-blocking, as `into_std` and `try_clone` of one leave it)
/// registered with the runtime for `interest`.
fn register(socket: StdUnixStream, interest: Interest) -> io::Result<AsyncFd<StdUnixStream>> {
    // SAFETY: the stream owns its descriptor, which stays open and the same
    // until the AsyncFd (which owns the stream) is dropped.
    Ok(unsafe { AsyncFd::register_with_interest(socket, interest) }?)
}

impl AsyncRead for ShardUnixStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.reads.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|s| s.get_ref().read(unfilled)) {
                Ok(result) => {
                    let n = result?;
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for ShardUnixStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.writes.is_none() {
            match this.reads.get_ref().write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let clone = this.reads.get_ref().try_clone()?;
                    this.writes = Some(register(clone, Interest::WRITABLE)?);
                }
                done => return Poll::Ready(done),
            }
        }
        let done = loop {
            let Some(writes) = &this.writes else {
                return Poll::Ready(Err(io::ErrorKind::WouldBlock.into()));
            };
            let mut guard = ready!(writes.poll_write_ready(cx))?;
            if let Ok(done) = guard.try_io(|s| s.get_ref().write(buf)) {
                break done;
            }
        };
        // Through (or failed): registered for reads only again.
        this.writes = None;
        Poll::Ready(done)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.reads.get_ref().shutdown(std::net::Shutdown::Write))
    }
}
