//! What a node's channels report: each request timed from send to its
//! ReadyForQuery and the node's errors counted, for the per-shard metrics
//! and the slow-statement log's per-shard timings. The pool's channels
//! ([`super::pool`]) call it themselves rather than through a wrapping
//! backend, so a statement's checkout, send and receive pass one layer of
//! boxed futures instead of two.

use std::time::Instant;

use super::BackendMessage;
use crate::metrics::{NodeMetrics, ProxyMetrics};
use crate::wire::PgError;

/// A node's name and its metric series.
pub struct Meter {
    name: String,
    metrics: NodeMetrics,
}

impl Meter {
    /// The series of node `name` in `metrics`.
    pub fn new(name: &str, metrics: &ProxyMetrics) -> Self {
        Meter {
            name: name.to_string(),
            metrics: metrics.node(name),
        }
    }

    /// Counts one error of the node (a failed checkout or send).
    pub fn error(&self) {
        self.metrics.error();
    }

    /// Follows a message of a reply to a request sent at `sent`: times it
    /// at its ReadyForQuery (taking `sent`), counts errors.
    pub fn observe(&self, sent: &mut Option<Instant>, r: &Result<BackendMessage, PgError>) {
        match r {
            Ok(BackendMessage::ReadyForQuery(_)) => {
                if let Some(sent) = sent.take() {
                    let took = sent.elapsed();
                    self.metrics.request(took);
                    crate::proxy::ops::shard_timings::note(&self.name, took);
                }
            }
            Ok(BackendMessage::Error(_)) | Err(_) => self.metrics.error(),
            Ok(_) => {}
        }
    }
}
