//! The in-process kind of shard: a pgvshard shard's storage and executor
//! living in the proxy's process. Its sessions are served by the wire
//! layer over in-memory pipes ([`crate::wire::LocalServer`]) and pooled
//! like a remote node's connections, so the planner, router and merge see
//! exactly the messages a `pgvshard shard` across the network would send:
//! the backend kind is configuration, not a code fork. What a socket would
//! cost here is one copy of each message through the pipe.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::shard::executor::{Shard, ShardFactory};
use crate::shard::server::close;
use crate::shard::storage::{Database, StorageOptions};
use crate::wire::responder::ClientIo;
use crate::wire::{LocalServer, WireConfig};

/// One embedded shard: its database and the server of its sessions.
pub struct LocalShard {
    dir: PathBuf,
    shard: Arc<Shard>,
    server: LocalServer<ShardFactory>,
}

impl LocalShard {
    /// Opens (or creates) the shard's data directory, replaying its WAL;
    /// its recall monitor samples `recall_sample_rate` of ANN reads.
    pub async fn open(dir: &Path, recall_sample_rate: f64) -> Result<Arc<Self>, String> {
        let path = dir.to_path_buf();
        let db =
            tokio::task::spawn_blocking(move || Database::open(&path, StorageOptions::default()))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
        let shard = Arc::new(Shard::with_recall_sample_rate(
            Arc::new(db),
            recall_sample_rate,
        ));
        let server = LocalServer::new(ShardFactory::new(Arc::clone(&shard)), WireConfig::default());
        Ok(Arc::new(LocalShard {
            dir: dir.to_path_buf(),
            shard,
            server,
        }))
    }

    /// The shard's state (for its metrics collector).
    pub fn shard(&self) -> &Arc<Shard> {
        &self.shard
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new session's byte stream; `None` once closed.
    pub fn connect(&self) -> Option<Box<dyn ClientIo>> {
        self.server
            .connect()
            .map(|s| Box::new(s) as Box<dyn ClientIo>)
    }

    /// Ends every session (idle ones at once, running statements when
    /// they finish), then writes a final checkpoint.
    pub async fn close(&self) -> Result<(), String> {
        self.server.shutdown().await;
        let shard = Arc::clone(&self.shard);
        tokio::task::spawn_blocking(move || close(shard))
            .await
            .map_err(|e| e.to_string())?
    }
}
