//! `pgvshard bench relay`: a byte relay, the floor of what a hop through a
//! proxy process costs. Each client connection gets one connection to the
//! target and the bytes are copied both ways as they come, on a
//! current-thread runtime (the proxy's one worker on a 2-CPU machine),
//! with TCP_NODELAY on the TCP sockets. `pgvshard bench proxy
//! --relay-floor` starts one in front of the shard and measures it beside
//! the proxy.

use std::path::PathBuf;

use tokio::net::{TcpListener, TcpStream, UnixStream};

/// Options of `pgvshard bench relay`.
#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    /// Port to listen on (127.0.0.1).
    #[arg(long)]
    listen: u16,
    /// Where to relay to: a loopback port, or a Unix-domain socket's path.
    #[arg(long)]
    to: String,
}

/// Relays until killed.
pub fn run(args: &RelayArgs) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let listener = TcpListener::bind(("127.0.0.1", args.listen))
            .await
            .map_err(|e| format!("port {}: {e}", args.listen))?;
        let target = Target::parse(&args.to)?;
        loop {
            let (client, _) = listener.accept().await.map_err(|e| e.to_string())?;
            let target = target.clone();
            tokio::spawn(async move {
                if let Err(e) = relay(client, &target).await {
                    eprintln!("relay: {e}");
                }
            });
        }
    })
}

/// The relay's target.
#[derive(Clone)]
enum Target {
    Tcp(u16),
    Unix(PathBuf),
}

impl Target {
    fn parse(to: &str) -> Result<Target, String> {
        if to.starts_with('/') {
            return Ok(Target::Unix(PathBuf::from(to)));
        }
        to.parse()
            .map(Target::Tcp)
            .map_err(|_| format!("--to {to}: neither a port nor a socket path"))
    }
}

async fn relay(mut client: TcpStream, target: &Target) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    match target {
        Target::Tcp(port) => {
            let mut server = TcpStream::connect(("127.0.0.1", *port)).await?;
            server.set_nodelay(true)?;
            tokio::io::copy_bidirectional(&mut client, &mut server).await?;
        }
        Target::Unix(path) => {
            let mut server = UnixStream::connect(path).await?;
            tokio::io::copy_bidirectional(&mut client, &mut server).await?;
        }
    }
    Ok(())
}
