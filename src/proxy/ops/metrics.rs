//! The reload's metrics: `pgvshard_config_last_reload_successful` (1 at
//! start and after a reload that applied the file, 0 after one that
//! refused it — like Prometheus' own `prometheus_config_last_reload_successful`:
//! the running configuration is then not the file's, and a restart would
//! fail on that file) and `pgvshard_config_reloads_total{outcome}`
//! (`applied`, `refused`).

use prometheus::{IntCounterVec, IntGauge};

use crate::metrics::{counter, register, Registry};

/// The families, registered once per proxy.
#[derive(Clone)]
pub struct ReloadMetrics {
    last_ok: IntGauge,
    total: IntCounterVec,
}

impl ReloadMetrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let last_ok = register(
            registry,
            IntGauge::new(
                "pgvshard_config_last_reload_successful",
                "1 when the last configuration reload applied the file (or none was tried), 0 when it refused it.",
            )?,
        )?;
        last_ok.set(1);
        let total = counter(
            registry,
            "pgvshard_config_reloads_total",
            "Configuration reloads (SIGHUP, pgvshard.reload()) by outcome: applied, refused.",
            &["outcome"],
        )?;
        for outcome in ["applied", "refused"] {
            total.with_label_values(&[outcome]);
        }
        Ok(ReloadMetrics { last_ok, total })
    }

    /// Counts one reload.
    pub fn reloaded(&self, applied: bool) {
        self.last_ok.set(i64::from(applied));
        let outcome = if applied { "applied" } else { "refused" };
        self.total.with_label_values(&[outcome]).inc();
    }
}
