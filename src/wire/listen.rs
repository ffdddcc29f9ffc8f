//! Where a server accepts clients: a TCP listener and, as PostgreSQL's
//! `unix_socket_directories`, optionally a Unix-domain socket named
//! `.s.PGSQL.<port>` in a directory (the TCP port's number), so that
//! `psql -h <dir> -p <port>` and libpq's rule for a host that starts with
//! `/` find it. A client on the same host skips the TCP/IP stack there:
//! the proxy reaches shards on its own host that way.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, UnixListener};

use super::responder::ClientIo;

/// The socket file's name in `dir` for `port` (libpq's and PostgreSQL's).
pub fn unix_socket_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!(".s.PGSQL.{port}"))
}

/// A server's listening sockets.
pub struct Listeners {
    tcp: TcpListener,
    unix: Option<UnixListener>,
}

/// One accepted client.
pub(crate) struct Accepted {
    pub stream: Box<dyn ClientIo>,
    /// The client's address; `None` over a Unix-domain socket (PostgreSQL's
    /// `[local]`, where `inet_client_addr()` is NULL).
    pub peer: Option<SocketAddr>,
    /// The server's address the client reached (`None` likewise).
    pub local: Option<SocketAddr>,
}

impl From<TcpListener> for Listeners {
    fn from(tcp: TcpListener) -> Self {
        Listeners { tcp, unix: None }
    }
}

impl Listeners {
    /// TCP and, when given, a Unix-domain socket.
    pub fn new(tcp: TcpListener, unix: Option<UnixListener>) -> Self {
        Listeners { tcp, unix }
    }

    /// The TCP listener's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The next client on either socket.
    pub(crate) async fn accept(&self) -> io::Result<Accepted> {
        let Some(unix) = &self.unix else {
            return accept_tcp(&self.tcp).await;
        };
        tokio::select! {
            a = accept_tcp(&self.tcp) => a,
            a = unix.accept() => a.map(|(socket, _)| Accepted {
                stream: Box::new(socket),
                peer: None,
                local: None,
            }),
        }
    }
}

async fn accept_tcp(tcp: &TcpListener) -> io::Result<Accepted> {
    let (socket, peer) = tcp.accept().await?;
    socket.set_nodelay(true).ok();
    let local = socket.local_addr().ok();
    Ok(Accepted {
        stream: Box::new(socket),
        peer: Some(peer),
        local,
    })
}

/// A bound Unix-domain socket file, removed when dropped (as PostgreSQL
/// removes its socket at shutdown).
pub struct UnixSocketFile {
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
}

impl UnixSocketFile {
    /// Binds `<dir>/.s.PGSQL.<port>`. A file left there by a server that
    /// is gone is replaced; one a live server accepts on is an error, as
    /// PostgreSQL refuses a socket another postmaster holds.
    pub fn bind(dir: &Path, port: u16) -> Result<Self, String> {
        let path = unix_socket_path(dir, port);
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                return Err(format!(
                    "cannot listen on {}: another server is accepting on it",
                    path.display()
                ));
            }
            std::fs::remove_file(&path)
                .map_err(|e| format!("cannot remove the stale {}: {e}", path.display()))?;
        }
        let listener = std::os::unix::net::UnixListener::bind(&path)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        Ok(UnixSocketFile { listener, path })
    }

    /// The socket file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A tokio listener on the socket (each start of a server takes one).
    pub fn listener(&self) -> Result<UnixListener, String> {
        self.listener
            .try_clone()
            .and_then(UnixListener::from_std)
            .map_err(|e| format!("cannot listen on {}: {e}", self.path.display()))
    }
}

impl Drop for UnixSocketFile {
    fn drop(&mut self) {
        std::fs::remove_file(&self.path).ok();
    }
}
