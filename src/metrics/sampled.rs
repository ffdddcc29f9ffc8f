//! Gauges whose values live elsewhere (pool counters, the L1's size) and
//! are read when Prometheus scrapes, instead of being pushed on every
//! change.

use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};

type Sampler = Arc<dyn Fn(&IntGaugeVec) + Send + Sync>;

/// A gauge family filled by a closure at each scrape.
#[derive(Clone)]
pub struct SampledGauges {
    gauges: IntGaugeVec,
    sample: Sampler,
}

impl SampledGauges {
    /// A family `name` with `labels`, set by `sample` before each scrape.
    pub fn new(
        name: &str,
        help: &str,
        labels: &[&str],
        sample: impl Fn(&IntGaugeVec) + Send + Sync + 'static,
    ) -> Result<Self, prometheus::Error> {
        Ok(SampledGauges {
            gauges: IntGaugeVec::new(Opts::new(name, help), labels)?,
            sample: Arc::new(sample),
        })
    }
}

impl Collector for SampledGauges {
    fn desc(&self) -> Vec<&Desc> {
        self.gauges.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        (self.sample)(&self.gauges);
        self.gauges.collect()
    }
}
