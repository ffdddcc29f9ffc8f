//! A [`Backend`] wrapper that times each request to its node (send to
//! ReadyForQuery) and counts the node's errors, for the per-shard
//! metrics and the slow-statement log's per-shard timings, without the
//! pool or the router knowing about either.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::{Backend, BackendMessage, BoxFuture, NodeStatus, OidMap, Request, ShardChannel};
use crate::metrics::ProxyMetrics;
use crate::wire::PgError;

/// A node whose channels report to the proxy's metrics.
pub struct MeteredBackend {
    inner: Arc<dyn Backend>,
    metrics: ProxyMetrics,
}

impl MeteredBackend {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Backend>, metrics: ProxyMetrics) -> Self {
        MeteredBackend { inner, metrics }
    }
}

struct MeteredChannel {
    inner: Box<dyn ShardChannel>,
    shard: String,
    metrics: ProxyMetrics,
    sent: Option<Instant>,
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
                self.metrics.shard_error(&self.shard);
            }
            r
        })
    }

    fn recv(&mut self) -> BoxFuture<'_, Result<BackendMessage, PgError>> {
        Box::pin(async move {
            let r = self.inner.recv().await;
            match &r {
                Ok(BackendMessage::ReadyForQuery(_)) => {
                    if let Some(sent) = self.sent.take() {
                        let took = sent.elapsed();
                        self.metrics.shard_request(&self.shard, took);
                        crate::proxy::ops::shard_timings::note(&self.shard, took);
                    }
                }
                Ok(BackendMessage::Error(_)) | Err(_) => self.metrics.shard_error(&self.shard),
                Ok(_) => {}
            }
            r
        })
    }

    fn settings(&mut self) -> &mut BTreeMap<String, String> {
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
                    shard: self.inner.name().to_string(),
                    metrics: self.metrics.clone(),
                    sent: None,
                }) as Box<dyn ShardChannel>),
                Err(e) => {
                    self.metrics.shard_error(self.inner.name());
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
