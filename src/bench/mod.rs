//! `pgvshard bench …`: benchmark commands that print tables (never tests).

mod ann_bench;
mod dataset;
mod measure;

pub use ann_bench::{run as ann_bench_run, AnnArgs};
