//! The proxy's families: client connections, statements by class and
//! outcome, end-to-end and per-stage latency, fan-out width, and each
//! shard node's request latency, errors and pool state.

use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
};

use super::{counter, latency, register, Registry};

/// The class of a statement, a bounded label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementClass {
    /// A KNN query (ORDER BY a distance, LIMIT).
    Knn,
    /// A read on one shard (shard-key equality).
    Point,
    /// A read on several shards.
    Scatter,
    /// INSERT, UPDATE, DELETE, COPY.
    Write,
    /// Schema changes.
    Ddl,
    /// Session statements and everything else.
    Other,
}

impl StatementClass {
    /// Every class, in a fixed order.
    pub const ALL: [StatementClass; 6] = [
        StatementClass::Knn,
        StatementClass::Point,
        StatementClass::Scatter,
        StatementClass::Write,
        StatementClass::Ddl,
        StatementClass::Other,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            StatementClass::Knn => "knn",
            StatementClass::Point => "point",
            StatementClass::Scatter => "scatter",
            StatementClass::Write => "write",
            StatementClass::Ddl => "ddl",
            StatementClass::Other => "other",
        }
    }
}

/// Which part of a statement's life a stage latency measures.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    /// SQL text to statements.
    Parse,
    /// Choosing the route (and learning a table's key the first time).
    Plan,
    /// Getting shard connections for the route.
    Backend,
    /// Sending to the shards, reading and combining their replies.
    Merge,
}

impl Stage {
    /// Every stage, in declaration order.
    const ALL: [Stage; 4] = [Stage::Parse, Stage::Plan, Stage::Backend, Stage::Merge];

    fn label(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Plan => "plan",
            Stage::Backend => "backend",
            Stage::Merge => "merge",
        }
    }
}

/// The proxy's metric families.
#[derive(Clone)]
pub struct ProxyMetrics {
    /// Client sessions open now.
    pub connections: IntGauge,
    /// Client sessions opened since start.
    pub connections_opened: IntCounter,
    statements: IntCounterVec,
    /// The series every statement touches, resolved once (a label look-up
    /// hashes and locks): `statements` with outcome `ok` and `duration`,
    /// by class in [`StatementClass::ALL`] order, and `stages`' series.
    ok: [IntCounter; 6],
    duration: [Histogram; 6],
    stages: [Histogram; 4],
    fanout: Histogram,
    shard_requests: HistogramVec,
    shard_errors: IntCounterVec,
}

impl ProxyMetrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let fanout = Histogram::with_opts(
            HistogramOpts::new(
                "pgvshard_fanout_shards",
                "Shards one statement was sent to.",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
        )?;
        let statements = counter(
            registry,
            "pgvshard_statements_total",
            "Statements by class and outcome (ok, or error_ and the SQLSTATE class).",
            &["class", "outcome"],
        )?;
        let duration = latency(
            registry,
            "pgvshard_statement_duration_seconds",
            "End-to-end statement latency in the proxy, by class.",
            &["class"],
        )?;
        let stages = latency(
            registry,
            "pgvshard_stage_duration_seconds",
            "Statement latency by stage: parse, plan, backend (shard connections), merge (shard replies combined).",
            &["stage"],
        )?;
        Ok(ProxyMetrics {
            ok: StatementClass::ALL.map(|c| statements.with_label_values(&[c.label(), "ok"])),
            duration: StatementClass::ALL.map(|c| duration.with_label_values(&[c.label()])),
            stages: Stage::ALL.map(|s| stages.with_label_values(&[s.label()])),
            statements,
            connections: register(
                registry,
                IntGauge::with_opts(Opts::new(
                    "pgvshard_client_connections",
                    "Client sessions open now.",
                ))?,
            )?,
            connections_opened: register(
                registry,
                IntCounter::with_opts(Opts::new(
                    "pgvshard_client_connections_opened_total",
                    "Client sessions opened since start.",
                ))?,
            )?,
            fanout: register(registry, fanout)?,
            shard_requests: latency(
                registry,
                "pgvshard_node_request_duration_seconds",
                "Latency of one request to a shard node, from send to its ReadyForQuery.",
                &["shard"],
            )?,
            shard_errors: counter(
                registry,
                "pgvshard_node_errors_total",
                "Errors from a shard node (its ErrorResponses and failed connections).",
                &["shard"],
            )?,
        })
    }

    /// Counts a finished statement.
    pub fn statement(&self, class: StatementClass, sqlstate: Option<&str>, took: Duration) {
        match sqlstate {
            None => self.ok[class as usize].inc(),
            Some(code) => {
                let code: String = code
                    .chars()
                    .take(2)
                    .filter(char::is_ascii_alphanumeric)
                    .collect();
                self.statements
                    .with_label_values(&[class.label(), &format!("error_{code}")])
                    .inc();
            }
        }
        self.duration[class as usize].observe(took.as_secs_f64());
    }

    /// Records a stage's latency.
    pub fn stage(&self, stage: Stage, took: Duration) {
        self.stages[stage as usize].observe(took.as_secs_f64());
    }

    /// Records how many shards a statement went to.
    pub fn fanout(&self, shards: usize) {
        self.fanout.observe(shards as f64);
    }

    /// Shard node `shard`'s series, resolved once for its channels.
    pub fn node(&self, shard: &str) -> NodeMetrics {
        NodeMetrics {
            requests: self.shard_requests.with_label_values(&[shard]),
            errors: self.shard_errors.with_label_values(&[shard]),
        }
    }
}

/// One shard node's request latency and error count.
#[derive(Clone)]
pub struct NodeMetrics {
    requests: Histogram,
    errors: IntCounter,
}

impl NodeMetrics {
    /// Records one request's latency.
    pub fn request(&self, took: Duration) {
        self.requests.observe(took.as_secs_f64());
    }

    /// Counts an error.
    pub fn error(&self) {
        self.errors.inc();
    }
}
