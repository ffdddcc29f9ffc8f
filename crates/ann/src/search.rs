//! Search settings shared by the indexes, named and bounded as pgvector's
//! GUCs, and the build progress/cancellation handle.

use crate::error::{AnnError, Result};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// pgvector 0.8's `hnsw.iterative_scan` / `ivfflat.iterative_scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IterativeScan {
    /// Search once; a filter may leave fewer than k rows.
    #[default]
    Off,
    /// Keep scanning; results come out in exact distance order.
    StrictOrder,
    /// Keep scanning; results may be slightly out of order.
    RelaxedOrder,
}

impl IterativeScan {
    /// Parses the GUC value (`off`, `strict_order`, `relaxed_order`).
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "off" => Ok(IterativeScan::Off),
            "strict_order" => Ok(IterativeScan::StrictOrder),
            "relaxed_order" => Ok(IterativeScan::RelaxedOrder),
            _ => Err(AnnError::invalid_parameter(format!(
                "invalid value for parameter \"iterative_scan\": \"{s}\""
            ))
            .with_detail("Available values: off, relaxed_order, strict_order.")),
        }
    }

    /// The GUC spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            IterativeScan::Off => "off",
            IterativeScan::StrictOrder => "strict_order",
            IterativeScan::RelaxedOrder => "relaxed_order",
        }
    }
}

/// A predicate on stored ids: only ids for which it returns true are results.
pub type Filter<'a> = &'a (dyn Fn(u32) -> bool + Sync);

/// Shared handle for a long build: progress counters the owner can read while
/// the build runs, and a flag that cancels it. The flag may be linked to
/// one owned elsewhere (a statement's cancel flag), which the build then
/// reads at its own check points: no watcher thread is needed.
#[derive(Debug, Default)]
pub struct BuildProgress {
    done: AtomicU64,
    total: AtomicU64,
    cancel: AtomicBool,
    linked: Option<Arc<AtomicBool>>,
}

impl BuildProgress {
    /// A fresh handle.
    pub fn new() -> Self {
        Self::default()
    }
    /// A fresh handle that also counts as canceled once `flag` is set.
    pub fn linked_to(flag: Arc<AtomicBool>) -> Self {
        BuildProgress {
            linked: Some(flag),
            ..Self::default()
        }
    }
    /// Sets the number of work items (e.g. vectors to insert).
    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }
    /// Records `n` more finished items.
    pub fn advance(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
    /// (done, total) so far.
    pub fn get(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
    /// Asks the build to stop at its next check.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
    /// True once [`Self::cancel`] was called or the linked flag was set.
    pub fn is_canceled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
            || self
                .linked
                .as_ref()
                .is_some_and(|f| f.load(Ordering::Relaxed))
    }
    /// `Err(57014)` once canceled, for `?` at check points.
    pub fn check(&self) -> Result<()> {
        if self.is_canceled() {
            Err(AnnError::new(
                crate::error::ErrorKind::Canceled,
                "canceling statement due to user request",
            ))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linked_flag_cancels_the_build() {
        let flag = Arc::new(AtomicBool::new(false));
        let progress = BuildProgress::linked_to(Arc::clone(&flag));
        assert!(!progress.is_canceled());
        assert!(progress.check().is_ok());
        flag.store(true, Ordering::Relaxed);
        assert!(progress.is_canceled());
        assert!(progress.check().is_err());
        let own = BuildProgress::new();
        own.cancel();
        assert!(own.is_canceled());
    }
}
