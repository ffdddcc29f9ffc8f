//! A [`Backend`] wrapper that times each request to its node (send to
//! ReadyForQuery) and counts the node's errors, for the per-shard
//! metrics and the slow-statement log's per-shard timings, without the
//! pool or the router knowing about either.

use std::sync::Arc;
use std::time::Instant;

use super::{
    Backend, BackendMessage, BoxFuture, ChannelSettings, NodeStatus, OidMap, Request, ShardChannel,
};
use crate::metrics::{NodeMetrics, ProxyMetrics};
use crate::wire::PgError;

/// A node whose channels report to the proxy's metrics.
pub struct MeteredBackend {
    inner: Arc<dyn Backend>,
    node: Arc<Node>,
}

/// What every channel of a node reports under: its name and its series.
struct Node {
    name: String,
    metrics: NodeMetrics,
}

impl MeteredBackend {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Backend>, metrics: ProxyMetrics) -> Self {
        let name = inner.name().to_string();
        let node = Arc::new(Node {
            metrics: metrics.node(&name),
            name,
        });
        MeteredBackend { inner, node }
    }
}

struct MeteredChannel {
    inner: Box<dyn ShardChannel>,
    node: Arc<Node>,
    sent: Option<Instant>,
}

impl MeteredChannel {
    /// Times the request at its ReadyForQuery; counts errors.
    fn observe(&mut self, r: &Result<BackendMessage, PgError>) {
        match r {
            Ok(BackendMessage::ReadyForQuery(_)) => {
                if let Some(sent) = self.sent.take() {
                    let took = sent.elapsed();
                    self.node.metrics.request(took);
                    crate::proxy::ops::shard_timings::note(&self.node.name, took);
                }
            }
            Ok(BackendMessage::Error(_)) | Err(_) => self.node.metrics.error(),
            Ok(_) => {}
        }
    }
}

impl ShardChannel for MeteredChannel {
    fn send<'a>(&'a mut self, request: &'a Request) -> BoxFuture<'a, Result<(), PgError>> {
        if matches!(
            request,
            Request::Simple(_) | Request::Extended(_) | Request::Describe { .. }
        ) {
            self.sent = Some(Instant::now());
        }
        Box::pin(async move {
            let r = self.inner.send(request).await;
            if r.is_err() {
                self.node.metrics.error();
            }
            r
        })
    }

    fn recv(&mut self) -> BoxFuture<'_, Result<BackendMessage, PgError>> {
        Box::pin(async move {
            let r = self.inner.recv().await;
            self.observe(&r);
            r
        })
    }

    fn buffered(&mut self) -> Option<Result<BackendMessage, PgError>> {
        let r = self.inner.buffered()?;
        self.observe(&r);
        Some(r)
    }

    fn buffered_rows(&mut self, max: usize) -> Option<(bytes::Bytes, usize)> {
        self.inner.buffered_rows(max)
    }

    fn settings(&mut self) -> &mut ChannelSettings {
        self.inner.settings()
    }
}

impl Backend for MeteredBackend {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn checkout(&self) -> BoxFuture<'_, Result<Box<dyn ShardChannel>, PgError>> {
        Box::pin(async move {
            match self.inner.checkout().await {
                Ok(inner) => Ok(Box::new(MeteredChannel {
                    inner,
                    node: Arc::clone(&self.node),
                    sent: None,
                }) as Box<dyn ShardChannel>),
                Err(e) => {
                    self.node.metrics.error();
                    Err(e)
                }
            }
        })
    }

    fn oids(&self) -> OidMap {
        self.inner.oids()
    }

    fn invalidate_types(&self) {
        self.inner.invalidate_types()
    }

    fn forget_statements(&self) {
        self.inner.forget_statements()
    }

    fn status(&self) -> NodeStatus {
        self.inner.status()
    }
}
