//! Families whose values live elsewhere (pool counters, the L1's size,
//! Redis' own eviction counts) and are read when Prometheus scrapes,
//! instead of being pushed on every change: a [`Sampled`] collector runs
//! its closure on the family just before collecting it.

use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};

/// A family `C` brought up to date by a closure at each scrape.
#[derive(Clone)]
pub struct Sampled<C> {
    family: C,
    sample: Arc<dyn Fn(&C) + Send + Sync>,
}

/// A gauge family filled at each scrape.
pub type SampledGauges = Sampled<IntGaugeVec>;

impl<C> Sampled<C> {
    /// `family`, updated by `sample` before each scrape.
    pub fn wrap(family: C, sample: impl Fn(&C) + Send + Sync + 'static) -> Self {
        Sampled {
            family,
            sample: Arc::new(sample),
        }
    }
}

impl SampledGauges {
    /// A family `name` with `labels`, set by `sample` before each scrape.
    pub fn new(
        name: &str,
        help: &str,
        labels: &[&str],
        sample: impl Fn(&IntGaugeVec) + Send + Sync + 'static,
    ) -> Result<Self, prometheus::Error> {
        Ok(Sampled::wrap(
            IntGaugeVec::new(Opts::new(name, help), labels)?,
            sample,
        ))
    }
}

impl<C: Collector> Collector for Sampled<C> {
    fn desc(&self) -> Vec<&Desc> {
        self.family.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        (self.sample)(&self.family);
        self.family.collect()
    }
}
