//! The [`Backend`] writes and primary reads of a shard with standbys go
//! through: whichever node is the shard's primary in the current term
//! ([`Topology::primary_channel`]), so every caller that holds "the
//! shard's primary" follows a failover without knowing about it.

use std::sync::Arc;

use super::Topology;
use crate::proxy::backend::{Backend, BoxFuture, NodeStatus, OidMap, ShardChannel, SharedBackend};
use crate::wire::PgError;

/// The primary of one shard, whichever node it is.
pub struct ShardWriter {
    topology: Arc<Topology>,
    shard: usize,
}

impl ShardWriter {
    /// The primary of shard `shard` of `topology`.
    pub fn new(topology: Arc<Topology>, shard: usize) -> Self {
        ShardWriter { topology, shard }
    }

    fn primary(&self) -> SharedBackend {
        Arc::clone(&self.topology.shards()[self.shard].primary().data)
    }
}

impl Backend for ShardWriter {
    fn name(&self) -> &str {
        &self.topology.shards()[self.shard].name
    }

    fn checkout(&self) -> BoxFuture<'_, Result<Box<dyn ShardChannel>, PgError>> {
        Box::pin(self.topology.primary_channel(self.shard))
    }

    fn oids(&self) -> OidMap {
        self.primary().oids()
    }

    fn invalidate_types(&self) {
        for n in self.topology.shards()[self.shard].nodes().iter() {
            n.data.invalidate_types();
        }
    }

    fn forget_statements(&self) {
        for n in self.topology.shards()[self.shard].nodes().iter() {
            n.data.forget_statements();
        }
    }

    fn status(&self) -> NodeStatus {
        self.primary().status()
    }
}
