//! `pgvshard bench proxy`: what the proxy costs and what fan-out does.
//!
//! For each shard count it starts that many `pgvshard shard` processes and
//! a `pgvshard proxy` process in front of them (this binary, on free
//! loopback ports, data in a temporary directory), loads the dataset
//! through the proxy, builds an HNSW index through the proxy, and
//! measures from this process with the proxy's own protocol client
//! (extended protocol, text parameters, one connection per client task):
//! - fan-out: recall@10 and latency of one client issuing the first
//!   `--queries` queries through the proxy, and closed-loop QPS with 8
//!   clients;
//! - overhead (with one shard): point SELECT by key and KNN at k=10, once
//!   through the proxy and once directly against the shard, with each
//!   client count of `--clients` for `--seconds` each.
//!
//! The proxy reaches the shards through their Unix-domain sockets by
//! default (`--shard-link tcp`: loopback TCP), as a proxy configured
//! beside its shards would; the direct clients use TCP, as an application
//! would. Everything shares the machine's cores, as the anchors' server
//! and client processes did.
//!
//! With `--relay-floor` the overhead rounds measure a third way to the
//! shard beside the two: through a byte relay process
//! ([`super::relay`]) over the same link, the least any proxy hop adds on
//! this machine.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ann::Metric;
use bytes::Bytes;
use pgvshard::proxy::backend::messages::fields;
use pgvshard::proxy::backend::run_simple;
use pgvshard::proxy::backend::{
    Backend, BackendMessage, ExtendedRequest, RemoteBackend, Request, ShardChannel,
};
use pgvshard::wire::{unix_socket_path, Format, PgError};

use super::cluster::{client_runtime, free_port, wait_ready, Cluster, ShardLink};
use super::dataset::Dataset;
use super::measure::{median, Timing};

/// Options of `pgvshard bench proxy`.
#[derive(Debug, clap::Args)]
pub struct ProxyBenchArgs {
    /// Dataset directory in texmex layout (see ../shared/datasets/README.md).
    #[arg(long)]
    dataset: PathBuf,
    /// Load only the first N base vectors (recall is then not comparable
    /// with the ground truth and is not printed).
    #[arg(long)]
    rows: Option<usize>,
    /// Shard counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4])]
    shards: Vec<usize>,
    /// Client counts of the overhead table, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8, 64])]
    clients: Vec<usize>,
    /// Queries of the recall pass (the first N of the query file).
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// hnsw.ef_search for every KNN query.
    #[arg(long, default_value_t = 40)]
    ef_search: usize,
    /// Seconds of each closed-loop run.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// How the proxy reaches its shards: their Unix-domain sockets (they
    /// share its host) or loopback TCP. Direct clients always use TCP.
    #[arg(long, value_enum, default_value_t = ShardLink::Unix)]
    shard_link: ShardLink,
    /// Also measure, in the overhead rounds, a byte relay in front of the
    /// shard (`pgvshard bench relay`): the floor of a proxy hop.
    #[arg(long)]
    relay_floor: bool,
}

/// k of every KNN query.
const K: usize = 10;
/// Rows per INSERT while loading.
const BATCH: usize = 100;
/// Alternating direct/proxy rounds per overhead cell.
const ROUNDS: usize = 3;
/// Clients of the fan-out throughput column.
const FANOUT_CLIENTS: usize = 8;

/// Runs the benchmark and prints its tables.
pub fn run(args: &ProxyBenchArgs) -> Result<(), String> {
    let data = Dataset::load(&args.dataset)?;
    let rows = args.rows.unwrap_or(data.len()).min(data.len());
    let (runtime, exe) = client_runtime()?;
    let work = Workload::new(&data, rows, args);
    let mut fanout = String::new();
    let mut overhead = String::new();
    for &n in &args.shards {
        let mut cluster = Cluster::start(&exe, "proxy", n, args.shard_link)?;
        let relay = match (args.relay_floor, cluster.shard_ports.as_slice()) {
            (true, &[shard]) => Some(start_relay(&mut cluster, &exe, shard, args.shard_link)?),
            _ => None,
        };
        let line = runtime
            .block_on(measure_cluster(
                &cluster,
                relay,
                &data,
                &work,
                args,
                &mut overhead,
            ))
            .map_err(|e| format!("{n} shard(s): {} {}", e.code, e.message))?;
        fanout.push_str(&line);
        eprintln!("{n} shard(s) done");
    }
    let link = match args.shard_link {
        ShardLink::Unix => "Unix-domain sockets",
        ShardLink::Tcp => "loopback TCP",
    };
    println!(
        "dataset {} ({rows} rows x {} dims), HNSW m=16 ef_construction=64, ef_search={}, k={K}; proxy to shards over {link}, clients over loopback TCP\n",
        data.name, data.dim, args.ef_search
    );
    println!("Fan-out (KNN through the proxy; recall and latency: 1 client, {} queries; QPS: {FANOUT_CLIENTS} clients, {} s)\n", work.knn.len(), args.seconds);
    println!("| shards | load s | index build s | recall@10 | p50 µs | p99 µs | QPS 1 client | QPS {FANOUT_CLIENTS} clients |");
    println!("|---|---|---|---|---|---|---|---|");
    print!("{fanout}");
    if !overhead.is_empty() {
        println!(
            "\nProxy overhead (1 shard; closed loop; median of {ROUNDS} alternating {} s rounds per cell)\n",
            args.seconds
        );
        let floor = match args.relay_floor {
            true => (" relay p50 µs | added by the relay p50 µs |", "---|---|"),
            false => ("", ""),
        };
        println!("| query | clients | direct QPS | direct p50 µs | direct p99 µs | proxy QPS | proxy p50 µs | proxy p99 µs | added p50 µs |{}", floor.0);
        println!("|---|---|---|---|---|---|---|---|---|{}", floor.1);
        print!("{overhead}");
    }
    Ok(())
}

/// The statements a benchmark sends, prepared once.
struct Workload {
    metric: Metric,
    rows: usize,
    dim: usize,
    ef_search: usize,
    /// Text of the query vectors used for KNN.
    knn: Vec<String>,
    recall_counted: bool,
}

impl Workload {
    fn new(data: &Dataset, rows: usize, args: &ProxyBenchArgs) -> Self {
        let n = args.queries.min(data.query_count());
        Workload {
            metric: data.metric,
            rows,
            dim: data.dim,
            ef_search: args.ef_search,
            knn: (0..n).map(|i| vector_text(data.query(i))).collect(),
            recall_counted: rows == data.len(),
        }
    }

    fn operator(&self) -> (&'static str, &'static str) {
        match self.metric {
            Metric::L2 => ("<->", "vector_l2_ops"),
            Metric::Cosine => ("<=>", "vector_cosine_ops"),
            _ => ("<#>", "vector_ip_ops"),
        }
    }

    fn knn_request(&self, i: usize) -> Request<'static> {
        let (op, _) = self.operator();
        extended(
            format!("SELECT id FROM bench_items ORDER BY embedding {op} $1 LIMIT {K}"),
            &self.knn[i % self.knn.len()],
        )
    }

    fn point_request(&self, i: usize) -> Request<'static> {
        let id = (i.wrapping_mul(7919)) % self.rows;
        extended(
            "SELECT id, embedding FROM bench_items WHERE id = $1".to_string(),
            &id.to_string(),
        )
    }
}

fn extended(sql: String, param: &str) -> Request<'static> {
    Request::Extended(ExtendedRequest {
        sql: sql.into(),
        param_types: vec![0].into(),
        param_formats: vec![Format::Text].into(),
        values: vec![Some(Bytes::copy_from_slice(param.as_bytes()))].into(),
        result_formats: vec![0].into(),
    })
}

fn vector_text(v: &[f32]) -> String {
    let parts: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("[{}]", parts.join(","))
}

/// Starts a byte relay (this binary's `bench relay`) in front of the
/// shard on `shard_port`, over `link`; returns the relay's port.
fn start_relay(
    cluster: &mut Cluster,
    exe: &std::path::Path,
    shard_port: u16,
    link: ShardLink,
) -> Result<u16, String> {
    let port = free_port()?;
    let to = match link {
        ShardLink::Unix => unix_socket_path(cluster.dir(), shard_port)
            .display()
            .to_string(),
        ShardLink::Tcp => shard_port.to_string(),
    };
    let listen = port.to_string();
    cluster.spawn(
        exe,
        "relay",
        &["bench", "relay", "--listen", &listen, "--to", &to],
    )?;
    wait_ready(port)?;
    Ok(port)
}

/// Loads, indexes and measures one cluster; returns its fan-out row and
/// appends the overhead rows when it has one shard (with the relay's
/// figures when `relay` is its port).
async fn measure_cluster(
    cluster: &Cluster,
    relay: Option<u16>,
    data: &Dataset,
    work: &Workload,
    args: &ProxyBenchArgs,
    overhead: &mut String,
) -> Result<String, PgError> {
    let proxy = Arc::new(RemoteBackend::loopback(cluster.proxy_port, 80));
    let t = Instant::now();
    load(&proxy, data, work).await?;
    let load_s = t.elapsed().as_secs_f64();
    let (_, opclass) = work.operator();
    let t = Instant::now();
    let mut chan = proxy.checkout().await?;
    run_simple(
        chan.as_mut(),
        &format!(
            "CREATE INDEX ON bench_items USING hnsw (embedding {opclass}) WITH (m = 16, ef_construction = 64)"
        ),
    )
    .await?;
    drop(chan);
    let build_s = t.elapsed().as_secs_f64();
    let (recall, lat) = recall_pass(&proxy, data, work).await?;
    let knn = |i| work.knn_request(i);
    let wide = closed_loop(&proxy, work, FANOUT_CLIENTS, args.seconds, &knn).await?;
    let recall = if work.recall_counted {
        format!("{recall:.3}")
    } else {
        "-".to_string()
    };
    let row = format!(
        "| {} | {load_s:.1} | {build_s:.1} | {recall} | {:.0} | {:.0} | {:.0} | {:.0} |\n",
        cluster.shard_ports.len(),
        lat.p50,
        lat.p99,
        lat.qps,
        wide.qps
    );
    if let [shard_port] = cluster.shard_ports.as_slice() {
        let direct = Arc::new(RemoteBackend::loopback(*shard_port, 80));
        let relay = relay.map(|port| Arc::new(RemoteBackend::loopback(port, 80)));
        let point = |i| work.point_request(i);
        let cases: [(&str, &(dyn Fn(usize) -> Request<'static> + Sync)); 2] =
            [("point by key", &point), ("KNN k=10", &knn)];
        for (name, request) in cases {
            for &c in &args.clients {
                // Alternating rounds, the median of each side: the shared
                // cores' noise then hits both alike.
                let (mut ds, mut ps, mut rs) = (Vec::new(), Vec::new(), Vec::new());
                for _ in 0..ROUNDS {
                    ds.push(closed_loop(&direct, work, c, args.seconds, request).await?);
                    if let Some(relay) = &relay {
                        rs.push(closed_loop(relay, work, c, args.seconds, request).await?);
                    }
                    ps.push(closed_loop(&proxy, work, c, args.seconds, request).await?);
                }
                let (d, p) = (median(ds), median(ps));
                let floor = match rs.is_empty() {
                    true => String::new(),
                    false => {
                        let r = median(rs);
                        format!(" {:.0} | {:.0} |", r.p50, r.p50 - d.p50)
                    }
                };
                writeln!(
                    overhead,
                    "| {name} | {c} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |{floor}",
                    d.qps,
                    d.p50,
                    d.p99,
                    p.qps,
                    p.p50,
                    p.p99,
                    p.p50 - d.p50
                )
                .ok();
            }
        }
    }
    Ok(row)
}

/// Creates `bench_items` and inserts the rows through the proxy, two
/// INSERT streams at a time.
async fn load(proxy: &Arc<RemoteBackend>, data: &Dataset, work: &Workload) -> Result<(), PgError> {
    let mut chan = proxy.checkout().await?;
    run_simple(
        chan.as_mut(),
        &format!(
            "CREATE TABLE bench_items (id int PRIMARY KEY, embedding vector({}))",
            work.dim
        ),
    )
    .await?;
    drop(chan);
    let statements: Vec<String> = (0..work.rows)
        .step_by(BATCH)
        .map(|start| {
            let values: Vec<String> = (start..(start + BATCH).min(work.rows))
                .map(|id| format!("({id}, '{}')", vector_text(data.base_vector(id))))
                .collect();
            format!("INSERT INTO bench_items VALUES {}", values.join(","))
        })
        .collect();
    let statements = Arc::new(statements);
    let mut tasks = Vec::new();
    for part in 0..2 {
        let (proxy, statements) = (Arc::clone(proxy), Arc::clone(&statements));
        tasks.push(tokio::spawn(async move {
            let mut chan = proxy.checkout().await?;
            for sql in statements.iter().skip(part).step_by(2) {
                run_simple(chan.as_mut(), sql).await?;
            }
            Ok::<_, PgError>(())
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| PgError::new("58000", e.to_string()))??;
    }
    Ok(())
}

async fn session(
    backend: &Arc<RemoteBackend>,
    work: &Workload,
) -> Result<Box<dyn ShardChannel>, PgError> {
    let mut chan = backend.checkout().await?;
    run_simple(
        chan.as_mut(),
        &format!("SET hnsw.ef_search = {}", work.ef_search),
    )
    .await?;
    Ok(chan)
}

/// Sends a request and reads its reply; returns the first column of each
/// row as an integer.
pub(super) async fn query(
    chan: &mut dyn ShardChannel,
    request: &Request<'_>,
) -> Result<Vec<Option<u32>>, PgError> {
    chan.send(request).await?;
    let mut ids = Vec::new();
    let mut error = None;
    loop {
        match chan.recv().await? {
            BackendMessage::DataRow(row) => {
                let id = fields(&row)?
                    .first()
                    .copied()
                    .flatten()
                    .and_then(|f| std::str::from_utf8(f).ok()?.parse().ok());
                ids.push(id);
            }
            BackendMessage::Error(e) => error = Some(e),
            BackendMessage::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    error.map_or(Ok(ids), Err)
}

/// One client runs every KNN query in order (after a warm-up of 100):
/// recall@10 against the ground truth and the latencies.
async fn recall_pass(
    proxy: &Arc<RemoteBackend>,
    data: &Dataset,
    work: &Workload,
) -> Result<(f64, Timing), PgError> {
    let mut chan = session(proxy, work).await?;
    for i in 0..100.min(work.knn.len()) {
        query(chan.as_mut(), &work.knn_request(i)).await?;
    }
    let mut hits = 0;
    let mut micros = Vec::with_capacity(work.knn.len());
    let started = Instant::now();
    for i in 0..work.knn.len() {
        let t = Instant::now();
        let ids = query(chan.as_mut(), &work.knn_request(i)).await?;
        micros.push(t.elapsed().as_secs_f64() * 1e6);
        let truth = &data.groundtruth[i][..K];
        hits += ids.iter().flatten().filter(|id| truth.contains(id)).count();
    }
    let wall = started.elapsed();
    let recall = hits as f64 / (work.knn.len() * K).max(1) as f64;
    Ok((recall, Timing::from(micros, wall)))
}

/// `clients` tasks each send `request(i)` back to back for `seconds`.
async fn closed_loop(
    backend: &Arc<RemoteBackend>,
    work: &Workload,
    clients: usize,
    seconds: u64,
    request: &(dyn Fn(usize) -> Request<'static> + Sync),
) -> Result<Timing, PgError> {
    let mut sessions = Vec::with_capacity(clients);
    for _ in 0..clients {
        sessions.push(session(backend, work).await?);
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let runs = sessions
        .into_iter()
        .enumerate()
        .map(|(c, mut chan)| async move {
            let mut micros = Vec::new();
            let mut i = c * 7_919;
            while Instant::now() < deadline {
                let r = request(i);
                let t = Instant::now();
                query(chan.as_mut(), &r).await?;
                micros.push(t.elapsed().as_secs_f64() * 1e6);
                i += 1;
            }
            Ok::<_, PgError>(micros)
        });
    let mut micros = Vec::new();
    for part in futures_util::future::join_all(runs).await {
        micros.extend(part?);
    }
    Ok(Timing::from(micros, started.elapsed()))
}
