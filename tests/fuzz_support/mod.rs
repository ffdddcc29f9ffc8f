//! The fuzzer: structure-aware generators of protocol messages
//! ([`proto`]) and of pgvector's SQL ([`sql`], [`mutate`]) played against
//! an in-process server — a shard, or the proxy with embedded shards —
//! over loopback. Every case runs on its own connection and is checked:
//! - no panic anywhere in the process (a panic hook counts them; an
//!   abort ends the test binary, and the case being played is then in
//!   `<target tmp>/fuzz-<target>-last-case.txt`);
//! - every answer is a well-formed backend message, every error and
//!   notice carries a severity, a message and a well-formed SQLSTATE;
//! - the server answers or closes before a bound (no hang);
//! - afterwards the same session answers a probe `SELECT`, or, when the
//!   server closed it (or the case ended mid-frame), a new connection
//!   answers `SELECT 1`.
//!
//! Cases are built from one seed each (see [`gen::case_seed`]), so a
//! finding is replayed with `PGVSHARD_FUZZ_CASE=<seed>`.

#![allow(dead_code)]

pub mod conn;
pub mod gen;
pub mod mutate;
pub mod proto;
pub mod sql;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use conn::{Conn, Exchange, Fault, Msg};
use gen::Gen;
use mutate::Corpus;
use proto::Piece;

/// An in-process server under test.
pub struct Target {
    pub name: &'static str,
    pub port: u16,
    dir: PathBuf,
    _server: Box<dyn std::any::Any + Send>,
}

/// A fresh directory under cargo's temp dir.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("fuzz dir");
    dir
}

/// Stops a served shard when dropped.
struct ShardServer(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for ShardServer {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            stop.send(()).ok();
        }
    }
}

impl Target {
    /// A shard (storage and executor) served in this process.
    pub async fn shard() -> Target {
        use pgvshard::shard::executor::{Shard, ShardFactory};
        use pgvshard::shard::storage::{Database, StorageOptions};
        let dir = fresh_dir("shard");
        let data = dir.join("data");
        let db =
            tokio::task::spawn_blocking(move || Database::open(&data, StorageOptions::default()))
                .await
                .unwrap()
                .expect("storage opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let factory = ShardFactory::new(Arc::new(Shard::new(Arc::new(db))));
        tokio::spawn(pgvshard::wire::serve(
            listener,
            factory,
            pgvshard::wire::WireConfig::default(),
            async {
                stopped.await.ok();
            },
        ));
        Target {
            name: "shard",
            port,
            dir,
            _server: Box::new(ShardServer(Some(stop))),
        }
    }

    /// The proxy with its embedded default (four in-process shards).
    pub async fn proxy() -> Target {
        let dir = fresh_dir("proxy");
        let mut config = pgvshard::proxy::config::ProxyConfig::embedded();
        config.listen = "127.0.0.1:0".into();
        config.data_dir = Some(dir.join("data"));
        config.metrics.listen = None;
        let proxy = pgvshard::proxy::start(config).await.expect("proxy starts");
        Target {
            name: "proxy",
            port: proxy.addr.port(),
            dir,
            _server: Box::new(proxy),
        }
    }
}

/// How long and how hard to fuzz.
pub struct Budget {
    /// Stop starting cases after this long.
    pub run: Duration,
    /// Longest a case may take before it counts as a hang.
    pub case: Duration,
    /// The run's seed.
    pub seed: u64,
    /// Replay only this case seed.
    pub only: Option<u64>,
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

impl Budget {
    /// `PGVSHARD_FUZZ_SECONDS` (default `default_seconds`),
    /// `PGVSHARD_FUZZ_SEED`, `PGVSHARD_FUZZ_CASE`.
    pub fn from_env(default_seconds: u64) -> Budget {
        Budget {
            run: Duration::from_secs(env_u64("PGVSHARD_FUZZ_SECONDS").unwrap_or(default_seconds)),
            case: Duration::from_secs(30),
            seed: env_u64("PGVSHARD_FUZZ_SEED").unwrap_or(0x00f0_220d),
            only: env_u64("PGVSHARD_FUZZ_CASE"),
        }
    }
}

thread_local! {
    /// Set on the threads that run the fuzzer itself, whose own panics
    /// (a finding being reported) are not the servers'.
    static DRIVER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Panics seen on the servers' threads since the hook was installed.
fn panics() -> &'static Mutex<Vec<String>> {
    static PANICS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    PANICS.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current().name().unwrap_or("?").to_string();
            if !DRIVER.with(|d| d.get()) {
                if let Ok(mut p) = panics().lock() {
                    p.push(format!("thread {thread}: {info}"));
                }
            }
            previous(info);
        }));
        Mutex::new(Vec::new())
    })
}

/// What one case is.
pub struct Case {
    pub kind: &'static str,
    /// Start with a normal session (else the bytes are the startup).
    pub session: bool,
    pub pieces: Vec<Piece>,
    /// Every frame is whole: the session must answer a probe after it.
    pub complete: bool,
    /// One-byte answers that come first (SSLRequest, GSSENCRequest).
    pub single: usize,
}

impl Case {
    fn describe(&self) -> String {
        let mut s = format!("{} case ({} pieces):\n", self.kind, self.pieces.len());
        for p in &self.pieces {
            s.push_str("  ");
            s.push_str(&p.what);
            s.push('\n');
        }
        s
    }
}

/// Builds the case for `seed`.
pub fn generate(seed: u64, corpus: &Corpus) -> Case {
    let mut g = Gen::new(seed);
    let mut case = Case {
        kind: "",
        session: true,
        pieces: Vec::new(),
        complete: true,
        single: 0,
    };
    match g.below(20) {
        0..=4 => {
            case.kind = "sql";
            for _ in 0..1 + g.count(3) {
                let sql = if g.chance(0.15) {
                    let a = sql::statement(&mut g, 0);
                    let b = sql::statement(&mut g, 0);
                    format!("{a}; {b}")
                } else {
                    sql::statement(&mut g, 0)
                };
                case.pieces
                    .push(Piece::new(format!("Query {sql:?}"), proto::query(&sql)));
            }
        }
        5..=8 => {
            case.kind = "extended";
            case.pieces = proto::extended(&mut g);
        }
        9 | 10 => {
            case.kind = "copy";
            case.pieces = proto::copy_in(&mut g);
        }
        11..=13 => {
            case.kind = "mutated file";
            let file = &corpus.files[g.below(corpus.files.len())];
            let mutations = 1 + g.count(2);
            let mut chosen: Vec<usize> = (0..mutations).map(|_| g.below(file.len())).collect();
            chosen.sort();
            for (i, stmt) in file.iter().enumerate() {
                let sql = if chosen.contains(&i) {
                    mutate::mutate(&mut g, stmt)
                } else {
                    stmt.clone()
                };
                case.pieces
                    .push(Piece::new(format!("Query {sql:?}"), proto::query(&sql)));
            }
        }
        14 => {
            case.kind = "mutated test statement";
            for _ in 0..1 + g.count(2) {
                let stmt = &corpus.statements[g.below(corpus.statements.len())];
                let sql = mutate::mutate(&mut g, stmt);
                case.pieces
                    .push(Piece::new(format!("Query {sql:?}"), proto::query(&sql)));
            }
        }
        15 | 16 => {
            case.kind = "messages";
            for _ in 0..1 + g.count(5) {
                let p = proto::any_message(&mut g);
                case.pieces.push(p);
            }
        }
        17 => {
            case.kind = "broken frame";
            for _ in 0..g.count(2) {
                let p = proto::any_message(&mut g);
                case.pieces.push(p);
            }
            case.pieces.push(proto::broken_frame(&mut g));
            case.complete = false;
        }
        _ => {
            case.kind = "startup";
            let (pieces, single) = proto::startup_phase(&mut g);
            case.session = false;
            case.pieces = pieces;
            case.single = single;
            case.complete = false;
        }
    }
    case
}

/// Counts of one run, printed at its end.
#[derive(Default)]
pub struct Stats {
    pub cases: usize,
    pub by_kind: BTreeMap<&'static str, usize>,
    pub sqlstates: BTreeMap<String, usize>,
    pub closed_by_server: usize,
    pub messages: usize,
}

impl Stats {
    fn count(&mut self, ex: &Exchange) {
        self.messages += ex.msgs.len();
        for m in ex.msgs.iter().filter(|m| m.tag == b'E') {
            *self
                .sqlstates
                .entry(m.field(b'C').unwrap_or_default())
                .or_default() += 1;
        }
        if ex.closed {
            self.closed_by_server += 1;
        }
    }

    /// A table of the run.
    pub fn report(&self, target: &str, elapsed: Duration) -> String {
        let mut s = format!(
            "fuzz {target}: {} cases in {:.0} s ({:.0}/s), {} messages answered, {} connections closed by the server\n",
            self.cases,
            elapsed.as_secs_f64(),
            self.cases as f64 / elapsed.as_secs_f64().max(1e-9),
            self.messages,
            self.closed_by_server
        );
        s += &format!("  cases by kind: {:?}\n", self.by_kind);
        let mut codes: Vec<_> = self.sqlstates.iter().collect();
        codes.sort_by(|a, b| b.1.cmp(a.1));
        let top: Vec<String> = codes
            .iter()
            .take(25)
            .map(|(c, n)| format!("{c}×{n}"))
            .collect();
        s += &format!("  errors by SQLSTATE: {}\n", top.join(" "));
        s
    }
}

/// Sent after a complete case: ends a COPY that may still be open (and
/// is ignored outside one), ends an extended-protocol error state, leaves
/// a transaction, then asks for a marker row.
fn probe(marker: &str) -> Vec<u8> {
    [
        proto::copy_fail("fuzz probe"),
        proto::sync(),
        proto::query("ROLLBACK"),
        proto::query(&format!("SELECT '{marker}'")),
    ]
    .concat()
}

/// Connects as `postgres` and runs the session's settings (the statement
/// timeout keeps generated slow statements below the hang bound).
async fn session(port: u16, deadline: Instant) -> Result<Conn, Fault> {
    let mut c = Conn::connect(port).await?;
    let start = proto::startup(
        3 << 16,
        &[
            ("user".into(), "postgres".into()),
            ("database".into(), "postgres".into()),
        ],
        true,
    );
    let bytes = [start, proto::query("SET statement_timeout = '5s'")].concat();
    let mut ready = 0;
    let ex = c
        .exchange(&bytes, false, 0, deadline, |msgs: &[Msg]| {
            ready = msgs.iter().filter(|m| m.tag == b'Z').count();
            ready == 2
        })
        .await?;
    match ex.msgs.iter().find(|m| m.tag == b'E') {
        Some(e) => Err(Fault::Refused(format!(
            "{:?} {:?}",
            e.field(b'C'),
            e.field(b'M')
        ))),
        None if ready == 2 => Ok(c),
        None => Err(Fault::Refused("closed during startup".into())),
    }
}

/// A new connection must answer `SELECT 1`.
async fn select_one(port: u16, deadline: Instant) -> Result<(), Fault> {
    let mut c = session(port, deadline).await?;
    let ex = c
        .exchange(
            &proto::query("SELECT 1"),
            false,
            0,
            deadline,
            |m: &[Msg]| m.last().is_some_and(|m| m.tag == b'Z'),
        )
        .await?;
    let rows: Vec<_> = ex
        .msgs
        .iter()
        .filter(|m| m.tag == b'D')
        .map(Msg::columns)
        .collect();
    if rows != [vec![Some("1".to_string())]] {
        return Err(Fault::Refused(format!("SELECT 1 answered {:?}", ex.msgs)));
    }
    Ok(())
}

/// Plays one case and checks what came back.
async fn play(
    target: &Target,
    case: &Case,
    stats: &mut Stats,
    bound: Duration,
) -> Result<(), Fault> {
    let deadline = Instant::now() + bound;
    let mut bytes: Vec<u8> = case
        .pieces
        .iter()
        .flat_map(|p| p.bytes.iter().copied())
        .collect();
    let mut conn = if case.session {
        session(target.port, deadline).await?
    } else {
        Conn::connect(target.port).await?
    };
    let marker = "fz-probe-answered";
    if case.complete {
        bytes.extend(probe(marker));
    }
    // RowDescription, the marker row, CommandComplete, ReadyForQuery.
    let answered = |msgs: &[Msg]| {
        msgs.last().is_some_and(|m| m.tag == b'Z')
            && msgs
                .iter()
                .rev()
                .take(3)
                .any(|m| m.tag == b'D' && m.columns() == [Some(marker.to_string())])
    };
    let ex = conn
        .exchange(&bytes, !case.complete, case.single, deadline, answered)
        .await?;
    for &b in &ex.bytes {
        if !b"NSG".contains(&b) {
            return Err(Fault::Malformed(format!(
                "answer {b:#x} to a negotiation request"
            )));
        }
    }
    stats.count(&ex);
    if !(case.complete && answered(&ex.msgs)) {
        select_one(target.port, deadline).await?;
    }
    Ok(())
}

/// Creates the schema the generators name.
pub async fn setup(target: &Target) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut c = session(target.port, deadline)
        .await
        .expect("session for setup");
    for stmt in sql::setup() {
        let ex = c
            .exchange(&proto::query(&stmt), false, 0, deadline, |m: &[Msg]| {
                m.last().is_some_and(|m| m.tag == b'Z')
            })
            .await
            .expect("setup statement answered");
        if let Some(e) = ex.msgs.iter().find(|m| m.tag == b'E') {
            panic!("{}: setup {stmt:?}: {:?}", target.name, e.field(b'M'));
        }
    }
}

/// Fuzzes `target` within `budget`; panics with the case on a finding.
pub async fn run(target: &Target, budget: &Budget) -> Stats {
    panics();
    DRIVER.with(|d| d.set(true));
    let corpus = Corpus::load();
    setup(target).await;
    let last_case = target.dir.with_extension("last-case.txt");
    let started = Instant::now();
    let mut stats = Stats::default();
    let seeds: Box<dyn Iterator<Item = u64>> = match budget.only {
        Some(seed) => Box::new(std::iter::once(seed)),
        None => Box::new((0u64..).map(|i| gen::case_seed(budget.seed, i))),
    };
    for seed in seeds {
        if budget.only.is_none() && started.elapsed() >= budget.run {
            break;
        }
        let case = generate(seed, &corpus);
        let text = format!("{} seed {seed:#x}\n{}", target.name, case.describe());
        std::fs::write(&last_case, &text).ok();
        let outcome = play(target, &case, &mut stats, budget.case).await;
        let panicked: Vec<String> = std::mem::take(&mut *panics().lock().unwrap());
        let finding = match (outcome, panicked.is_empty()) {
            (_, false) => Some(format!("panic: {}", panicked.join("\n"))),
            (Err(fault), true) => Some(fault.to_string()),
            (Ok(()), true) => None,
        };
        if let Some(finding) = finding {
            panic!(
                "{finding}\n{text}replay: PGVSHARD_FUZZ_CASE={seed:#x} cargo test --test fuzz {}",
                target.name
            );
        }
        stats.cases += 1;
        *stats.by_kind.entry(case.kind).or_default() += 1;
    }
    println!("{}", stats.report(target.name, started.elapsed()));
    stats
}
