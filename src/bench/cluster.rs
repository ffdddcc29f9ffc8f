//! Benchmark processes: `pgvshard shard` processes and a `pgvshard proxy`
//! in front of them, started from this binary on free loopback ports with
//! their data in a temporary directory, and killed (the directory removed)
//! on drop.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the proxy reaches its shards (all on this host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ShardLink {
    /// Each shard's Unix-domain socket (`unix_socket_dir`), as a proxy
    /// beside its shards would be configured.
    #[default]
    Unix,
    /// Loopback TCP, as to shards on other hosts.
    Tcp,
}

/// Shard processes and a proxy process in front of them; killed on drop.
pub(super) struct Cluster {
    dir: PathBuf,
    children: Vec<Child>,
    /// The shards' ports, in the order of the proxy's shard list.
    pub shard_ports: Vec<u16>,
    /// The proxy's port.
    pub proxy_port: u16,
}

impl Cluster {
    /// Starts `shards` shard processes of `exe` and a proxy in front of
    /// them, reaching them through `link`; `bench` names the temporary
    /// directory. Returns once all accept.
    pub fn start(
        exe: &Path,
        bench: &str,
        shards: usize,
        link: ShardLink,
    ) -> Result<Cluster, String> {
        let mut cluster = Cluster::empty(&format!("{bench}-{shards}"))?;
        cluster.proxy_port = free_port()?;
        let mut yaml = format!(
            "listen: 127.0.0.1:{}\ndata_dir: {}\nshards:\n",
            cluster.proxy_port,
            cluster.dir.join("proxy").display()
        );
        // Room for the proxy's pool and the direct clients at once.
        let shard_config = cluster.dir.join("shard.yaml");
        std::fs::write(&shard_config, "max_connections: 300\n").map_err(|e| e.to_string())?;
        let shard_config = shard_config.display().to_string();
        let socket_dir = cluster.dir.display().to_string();
        let host = match link {
            ShardLink::Unix => socket_dir.as_str(),
            ShardLink::Tcp => "127.0.0.1",
        };
        for s in 0..shards {
            let port = free_port()?;
            let data = cluster.dir.join(format!("s{s}"));
            cluster.spawn(
                exe,
                &format!("s{s}"),
                &[
                    "shard",
                    "--config",
                    &shard_config,
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--data-dir",
                    &data.display().to_string(),
                    "--unix-socket-dir",
                    &socket_dir,
                ],
            )?;
            cluster.shard_ports.push(port);
            write!(
                yaml,
                "  - name: s{s}\n    kind: postgres\n    host: {host}\n    port: {port}\n    pool:\n      size: 80\n"
            )
            .ok();
        }
        let config = cluster.dir.join("proxy.yaml");
        std::fs::write(&config, yaml).map_err(|e| e.to_string())?;
        for port in cluster.shard_ports.clone() {
            wait_ready(port)?;
        }
        let config = config.display().to_string();
        cluster.spawn(exe, "proxy", &["proxy", "--config", &config])?;
        wait_ready(cluster.proxy_port)?;
        Ok(cluster)
    }

    /// No process yet, a fresh temporary directory named after `bench`.
    pub fn empty(bench: &str) -> Result<Cluster, String> {
        let dir =
            std::env::temp_dir().join(format!("pgvshard-bench-{bench}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Cluster {
            dir,
            children: Vec::new(),
            shard_ports: Vec::new(),
            proxy_port: 0,
        })
    }

    /// The temporary directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills the `i`-th process started (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(c) = self.children.get_mut(i) {
            c.kill().ok();
            c.wait().ok();
        }
    }

    /// Starts `exe` with `args`, its log in the directory as `name.log`.
    pub fn spawn(&mut self, exe: &Path, name: &str, args: &[&str]) -> Result<(), String> {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log")))
            .map_err(|e| e.to_string())?;
        let child = Command::new(exe)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        self.children.push(child);
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            c.kill().ok();
            c.wait().ok();
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// A loopback port nothing listens on (yet).
pub(super) fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Waits up to 30 s until something accepts on `port`.
pub(super) fn wait_ready(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("nothing listens on port {port} after 30 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The clients' runtime (two worker threads, as the machine's cores are
/// shared with the servers) and this binary's path, which the benchmark
/// starts as shard and proxy processes.
pub(super) fn client_runtime() -> Result<(tokio::runtime::Runtime, PathBuf), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    Ok((runtime, exe))
}
