//! `pgvshard bench ann`: builds one index over a dataset and prints recall,
//! QPS, latency, build time and memory per search setting.

use super::dataset::{Dataset, LabelFilter};
use super::measure::{self, Measured};
use ann::exact::exact_search;
use ann::hnsw::{Hnsw, HnswParams, HnswSearch};
use ann::ivfflat::{IvfFlat, IvfParams, IvfSearch};
use ann::plan::{
    choose_filtered_plan, estimate_selectivity, hnsw_search_cost, ivf_search_cost, FilteredPlan,
};
use ann::{BuildProgress, DenseSpace, IterativeScan, QuantizedSpace, Space, Sq8Codes};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::time::Instant;

/// Which index to benchmark.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum IndexChoice {
    /// HNSW graph.
    Hnsw,
    /// IVFFlat lists.
    Ivfflat,
    /// Exact scan (the recall reference).
    Exact,
}

/// How the HNSW graph walk compares vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WalkChoice {
    /// Exact f32 distances throughout.
    Exact,
    /// 8-bit codes for the walk, exact re-ranking of the candidates
    /// (L2, inner product and cosine; the codes count as index memory).
    Sq8,
}

/// Which filtered workload to run.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FilterChoice {
    /// `label = (query label + 1) % 10`: 10% selectivity, against
    /// filtered-groundtruth.ivecs.
    Label,
}

/// Arguments of `pgvshard bench ann`.
#[derive(Debug, clap::Args)]
pub struct AnnArgs {
    /// Dataset directory in texmex layout (see ../shared/datasets/README.md).
    #[arg(long)]
    dataset: PathBuf,
    /// Index to build.
    #[arg(long, value_enum)]
    index: IndexChoice,
    /// HNSW: maximum connections per layer.
    #[arg(long, default_value_t = 16)]
    m: usize,
    /// HNSW: candidate list size during build.
    #[arg(long, default_value_t = 64)]
    ef_construction: usize,
    /// HNSW: candidate list sizes to search with, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [10, 20, 40, 80, 160, 320])]
    ef_search: Vec<usize>,
    /// IVFFlat: number of lists (default: rows / 1000, as pgvector advises).
    #[arg(long)]
    lists: Option<usize>,
    /// IVFFlat: lists probed per query, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 5, 10, 20])]
    probes: Vec<usize>,
    /// HNSW: how the unfiltered search walks the graph.
    #[arg(long, value_enum, default_value_t = WalkChoice::Sq8)]
    walk: WalkChoice,
    /// Number of queries timed (the first N of the query file).
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Run a filtered workload instead of plain KNN.
    #[arg(long, value_enum)]
    filter: Option<FilterChoice>,
    /// Threads for the index build.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

/// One printed row.
struct Row {
    index: &'static str,
    params: Map<String, Value>,
    measured: Measured,
    build_s: f64,
    memory_bytes: usize,
    iterative_scan: Option<&'static str>,
    filter: Option<&'static str>,
}

/// A built index ready to be searched with one setting.
enum Built {
    Hnsw(Hnsw),
    Ivf(IvfFlat),
    Exact,
}

/// Runs the benchmark and prints its rows.
pub fn run(args: &AnnArgs) -> Result<(), String> {
    let t = Instant::now();
    let data = Dataset::load(&args.dataset)?;
    let n_queries = args.queries.min(data.query_count());
    eprintln!(
        "loaded {} ({} x {}, {:?}) in {:.1}s",
        data.name,
        data.len(),
        data.dim,
        data.metric,
        t.elapsed().as_secs_f64()
    );
    let space = DenseSpace::new(&data.base, data.dim, data.metric);
    let ids: Vec<u32> = (0..data.len() as u32).collect();

    let progress = BuildProgress::new();
    let t = Instant::now();
    let built = match args.index {
        IndexChoice::Hnsw => {
            let params =
                HnswParams::new(args.m, args.ef_construction).map_err(|e| e.to_string())?;
            Built::Hnsw(
                Hnsw::build(&space, &ids, params, args.threads, &progress)
                    .map_err(|e| e.to_string())?,
            )
        }
        IndexChoice::Ivfflat => {
            let lists = args.lists.unwrap_or((data.len() / 1000).max(1));
            let params = IvfParams::new(lists).map_err(|e| e.to_string())?;
            Built::Ivf(IvfFlat::build(&space, &ids, params, &progress).map_err(|e| e.to_string())?)
        }
        IndexChoice::Exact => Built::Exact,
    };
    let codes = match (&built, args.walk) {
        (Built::Hnsw(_), WalkChoice::Sq8) => Sq8Codes::train(&space, &ids),
        _ => None,
    };
    let build_s = t.elapsed().as_secs_f64();
    eprintln!("built {:?} in {build_s:.2}s", args.index);

    let queries: Vec<_> = (0..n_queries).map(|i| space.query(data.query(i))).collect();
    let mut rows = Vec::new();
    match args.filter {
        None => {
            let quantized = codes.as_ref().map(|c| QuantizedSpace::new(&space, c));
            let coded: Vec<_> = match &quantized {
                Some(q) => queries.iter().map(|v| q.query(v.clone())).collect(),
                None => Vec::new(),
            };
            for (params, opts) in settings(args, &built)? {
                let measured = measure::run(n_queries, args.k, &data.groundtruth, |i| {
                    match (&built, &quantized, &opts) {
                        (Built::Hnsw(h), Some(q), Setting::Hnsw(o)) => h
                            .search(q, &coded[i], args.k, o, None)
                            .into_iter()
                            .map(|n| n.id)
                            .collect(),
                        _ => search(&built, &space, &ids, &queries[i], args.k, &opts, None),
                    }
                });
                let mut r = row(&built, params, measured, build_s, None, None);
                r.memory_bytes += codes.as_ref().map_or(0, Sq8Codes::memory_bytes);
                rows.push(r);
                print_last(&rows, args.json);
            }
        }
        Some(FilterChoice::Label) => {
            let labels = data.label_filter()?;
            for (params, opts) in settings(args, &built)? {
                for mode in [
                    None,
                    Some(IterativeScan::Off),
                    Some(IterativeScan::StrictOrder),
                    Some(IterativeScan::RelaxedOrder),
                ] {
                    if mode.is_none() && matches!(built, Built::Exact) {
                        continue;
                    }
                    let measured =
                        filtered_run(&built, &space, &ids, &queries, &labels, args.k, &opts, mode);
                    let label = mode.map_or("auto", IterativeScan::as_str);
                    rows.push(row(
                        &built,
                        params.clone(),
                        measured,
                        build_s,
                        Some(label),
                        Some("label"),
                    ));
                    print_last(&rows, args.json);
                }
            }
        }
    }
    Ok(())
}

/// Search settings of one row: what is printed, and what the index gets.
#[derive(Clone, Copy)]
enum Setting {
    Hnsw(HnswSearch),
    Ivf(IvfSearch),
    Exact,
}

/// The printed parameters of a row and the setting searched with.
type NamedSetting = (Map<String, Value>, Setting);

fn settings(args: &AnnArgs, built: &Built) -> Result<Vec<NamedSetting>, String> {
    let mut out = Vec::new();
    match built {
        Built::Hnsw(h) => {
            for &ef in &args.ef_search {
                let opts = HnswSearch {
                    ef_search: ef,
                    ..HnswSearch::default()
                };
                HnswSearch::new(
                    opts.ef_search,
                    opts.iterative_scan,
                    opts.max_scan_tuples,
                    opts.scan_mem_multiplier,
                )
                .map_err(|e| e.to_string())?;
                let p = h.params();
                let params =
                    json!({"m": p.m, "ef_construction": p.ef_construction, "ef_search": ef});
                out.push((object(params), Setting::Hnsw(opts)));
            }
        }
        Built::Ivf(ivf) => {
            for &probes in &args.probes {
                let opts =
                    IvfSearch::new(probes, IterativeScan::Off, 32768).map_err(|e| e.to_string())?;
                let params = json!({"lists": ivf.params().lists, "probes": probes});
                out.push((object(params), Setting::Ivf(opts)));
            }
        }
        Built::Exact => out.push((Map::new(), Setting::Exact)),
    }
    Ok(out)
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn search(
    built: &Built,
    space: &DenseSpace,
    ids: &[u32],
    query: &<DenseSpace as Space>::Query,
    k: usize,
    setting: &Setting,
    filter: Option<ann::Filter>,
) -> Vec<u32> {
    let found = match (built, setting) {
        (Built::Hnsw(h), Setting::Hnsw(o)) => h.search(space, query, k, o, filter),
        (Built::Ivf(i), Setting::Ivf(o)) => i.search(space, query, k, o, filter),
        _ => exact_search(space, ids, query, k, filter),
    };
    found.into_iter().map(|n| n.id).collect()
}

/// One filtered setting: `mode` None lets the planner choose between the
/// index (relaxed iterative scan) and an exact scan of matching rows.
#[allow(clippy::too_many_arguments)]
fn filtered_run(
    built: &Built,
    space: &DenseSpace,
    ids: &[u32],
    queries: &[<DenseSpace as Space>::Query],
    labels: &LabelFilter,
    k: usize,
    setting: &Setting,
    mode: Option<IterativeScan>,
) -> Measured {
    let mut setting = *setting;
    match (&mut setting, mode) {
        (Setting::Hnsw(o), Some(m)) => o.iterative_scan = m,
        (Setting::Ivf(o), Some(m)) => o.iterative_scan = m,
        (Setting::Hnsw(o), None) => o.iterative_scan = IterativeScan::RelaxedOrder,
        (Setting::Ivf(o), None) => o.iterative_scan = IterativeScan::RelaxedOrder,
        _ => {}
    }
    let index_cost = match (built, setting) {
        (Built::Hnsw(_), Setting::Hnsw(o)) => hnsw_search_cost(o.ef_search, k),
        (Built::Ivf(i), Setting::Ivf(o)) => ivf_search_cost(ids.len(), i.params().lists, o.probes),
        _ => 0.0,
    };
    measure::run(queries.len(), k, &labels.groundtruth, |i| {
        let wanted = labels.wanted(i);
        let base = &labels.base;
        let pred = move |id: u32| base[id as usize] == wanted;
        let plan = match mode {
            Some(_) => FilteredPlan::Index,
            None => choose_filtered_plan(ids.len(), estimate_selectivity(ids, &pred), index_cost),
        };
        match plan {
            FilteredPlan::Index => search(built, space, ids, &queries[i], k, &setting, Some(&pred)),
            FilteredPlan::Exact => search(
                &Built::Exact,
                space,
                ids,
                &queries[i],
                k,
                &Setting::Exact,
                Some(&pred),
            ),
        }
    })
}

fn row(
    built: &Built,
    params: Map<String, Value>,
    measured: Measured,
    build_s: f64,
    iterative_scan: Option<&'static str>,
    filter: Option<&'static str>,
) -> Row {
    let (index, memory_bytes) = match built {
        Built::Hnsw(h) => ("hnsw", h.memory_bytes()),
        Built::Ivf(i) => ("ivfflat", i.memory_bytes()),
        Built::Exact => ("exact", 0),
    };
    Row {
        index,
        params,
        measured,
        build_s,
        memory_bytes,
        iterative_scan,
        filter,
    }
}

fn print_last(rows: &[Row], as_json: bool) {
    let Some(r) = rows.last() else { return };
    if as_json {
        let mut v = json!({
            "index": r.index,
            "params": r.params,
            "recall": round(r.measured.recall, 4),
            "qps": round(r.measured.qps, 1),
            "cpu_qps": round(r.measured.cpu_qps, 1),
            "p50_us": round(r.measured.p50_us, 1),
            "p99_us": round(r.measured.p99_us, 1),
            "build_s": round(r.build_s, 3),
            "memory_bytes": r.memory_bytes,
        });
        if let (Some(mode), Some(filter)) = (r.iterative_scan, r.filter) {
            v["iterative_scan"] = json!(mode);
            v["filter"] = json!(filter);
        }
        println!("{v}");
        return;
    }
    if rows.len() == 1 {
        println!(
            "{:<8} {:<40} {:>14} {:>8} {:>10} {:>9} {:>9} {:>8} {:>12}",
            "index",
            "params",
            "iterative_scan",
            "recall",
            "qps",
            "p50_us",
            "p99_us",
            "build_s",
            "memory_bytes"
        );
    }
    let params: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "{:<8} {:<40} {:>14} {:>8.4} {:>10.1} {:>9.1} {:>9.1} {:>8.2} {:>12}",
        r.index,
        params.join(","),
        r.iterative_scan.unwrap_or("-"),
        r.measured.recall,
        r.measured.qps,
        r.measured.p50_us,
        r.measured.p99_us,
        r.build_s,
        r.memory_bytes
    );
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}
