//! Limits and hardening (issue 10): connection limits, the startup and
//! authentication timeout, protocol versions, wide Binds, type modifiers,
//! key spellings and smaller PostgreSQL behaviours, each checked on real
//! PostgreSQL (the control), a `pgvshard shard` process and the proxy.

mod limits_support;
mod pg_support;
mod shard_support;

use limits_support::{error_code, first_column, startup, wide_bind, Raw, V3_0, V3_2};
use pg_support::PgServer;
use shard_support::{fresh_dir, Shard};

/// `n` empty shard processes for test `name`.
fn shards(name: &str, n: usize) -> Vec<Shard> {
    (0..n)
        .map(|i| Shard::start(&fresh_dir(&format!("limits-{name}-{i}"))))
        .collect()
}

/// A proxy over shard servers on `ports` (database `db`), with extra YAML.
async fn proxy(ports: &[u16], db: &str, extra: &str) -> pgvshard::proxy::RunningProxy {
    let mut yaml = String::from("listen: 127.0.0.1:0\nshards:\n");
    for (i, port) in ports.iter().enumerate() {
        yaml.push_str(&format!(
            "  - name: s{i}\n    port: {port}\n    dbname: {db}\n    pool:\n      connect_timeout_ms: 1000\n"
        ));
    }
    yaml.push_str(extra);
    let config = pgvshard::proxy::config::ProxyConfig::from_yaml(&yaml).expect("valid config");
    pgvshard::proxy::start(config).await.expect("proxy starts")
}

/// Defect 5: PostgreSQL reads a Bind's counts as unsigned 16-bit words,
/// so 65,535 parameters work; so must they on a shard and through the
/// proxy (which binds them again on a shard).
#[tokio::test]
async fn bind_takes_65535_parameters_as_postgres_does() {
    let pg = PgServer::start().await;
    let shards = shards("bind", 1);
    let proxy = proxy(&[shards[0].port], "db", "").await;
    let targets = [
        ("postgres", pg.port, "postgres"),
        ("shard", shards[0].port, "db"),
        ("proxy", proxy.addr.port(), "db"),
    ];
    for (who, port, db) in targets {
        let mut s = Raw::session(port, db).await;
        s.send(&wide_bind("SELECT $65535 + $40000", 65_535)).await;
        let msgs = s.until_ready().await;
        assert_eq!(
            first_column(&msgs),
            vec!["105535"],
            "{who}: {:?}",
            error_code(&msgs)
        );
    }
}

/// Connects with tokio-postgres as `postgres` to `db`.
async fn connect(port: u16, db: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname(db)
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(conn);
    Ok(client)
}

/// psql's stderr for `SELECT 1` on `port` with libpq's default
/// `sslmode=prefer`, the port number replaced by `PORT`.
async fn psql_error(port: u16, db: &str) -> String {
    let mut command = std::process::Command::new("psql");
    command
        .args(["-X", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-U", "postgres", "-d", db, "-c", "SELECT 1"])
        .env("PGSSLMODE", "prefer");
    let out = tokio::task::spawn_blocking(move || command.output().expect("psql runs"))
        .await
        .unwrap();
    assert!(!out.status.success(), "psql connected to {port}");
    String::from_utf8_lossy(&out.stderr).replace(&port.to_string(), "PORT")
}

/// A shard config file in `dir` with `yaml`; the `--config` arguments.
fn shard_config(dir: &std::path::Path, yaml: &str) -> Vec<String> {
    let path = dir.with_extension("yaml");
    std::fs::write(&path, yaml).unwrap();
    vec!["--config".into(), path.display().to_string()]
}

/// Starts a shard with config `yaml` for test `name`.
fn shard_with(name: &str, yaml: &str) -> Shard {
    let dir = fresh_dir(&format!("limits-{name}"));
    let args = shard_config(&dir, yaml);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Shard::start_with(&dir, &args)
}

/// Defect 2: one client over the limit gets what PostgreSQL sends: the
/// SSLRequest answered, then FATAL 53300 after the startup packet, so
/// psql (sslmode=prefer) reports "sorry, too many clients already" —
/// from the proxy (`max_client_connections`) and a shard (`max_connections`).
#[tokio::test]
async fn a_client_over_the_limit_gets_53300_as_from_postgres() {
    let pg = PgServer::start_with(&["max_connections=2", "superuser_reserved_connections=0"]).await;
    let shard = shard_with("max-conn", "max_connections: 2\n");
    let backend = Shard::start(&fresh_dir("limits-max-conn-backend"));
    let proxy = proxy(&[backend.port], "db", "max_client_connections: 2\n").await;
    let targets = [
        ("postgres", pg.port, "postgres"),
        ("shard", shard.port, "db"),
        ("proxy", proxy.addr.port(), "db"),
    ];
    let mut expected = None;
    for (who, port, db) in targets {
        // A place frees only once the server has ended the session that
        // held it (PostgreSQL's setup session may still be exiting).
        let held = [held_place(port, db).await, held_place(port, db).await];
        let Err(e) = connect(port, db).await else {
            panic!("{who}: a third client was let in");
        };
        let db_error = e.as_db_error().unwrap_or_else(|| panic!("{who}: {e}"));
        assert_eq!(db_error.code().code(), "53300", "{who}");
        assert_eq!(db_error.message(), "sorry, too many clients already");
        let psql = psql_error(port, db).await;
        assert!(
            psql.contains("sorry, too many clients already"),
            "{who}: {psql}"
        );
        assert_eq!(expected.get_or_insert_with(|| psql.clone()), &psql, "{who}");
        // A session that ends frees its place.
        drop(held);
        let mut back = false;
        for _ in 0..100 {
            if connect(port, db).await.is_ok() {
                back = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(back, "{who}: no place freed");
    }
}

/// A session that holds one of the server's places, retried for a few
/// seconds while the places are still taken by sessions that are ending.
async fn held_place(port: u16, db: &str) -> tokio_postgres::Client {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match connect(port, db).await {
            Ok(c) => return c,
            Err(e) if std::time::Instant::now() < deadline => {
                assert_eq!(e.code().map(|c| c.code()), Some("53300"), "{e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no place within 10 s: {e}"),
        }
    }
}

/// Defect 3: sockets that connect and say nothing are closed after
/// `authentication_timeout` (as PostgreSQL closes them), and 100 of them
/// do not keep another client out meanwhile; a startup packet over
/// PostgreSQL's 10,000 bytes is refused before it is read.
#[tokio::test]
async fn silent_sockets_are_closed_after_authentication_timeout() {
    let pg = PgServer::start_with(&["authentication_timeout=1"]).await;
    let shard = shard_with("auth-timeout", "authentication_timeout: 1\n");
    let proxy = proxy(&[shard.port], "db", "authentication_timeout: 1\n").await;
    let targets = [
        ("postgres", pg.port, "postgres", 10),
        ("shard", shard.port, "db", 100),
        ("proxy", proxy.addr.port(), "db", 100),
    ];
    for (who, port, db, silent) in targets {
        let mut sockets = Vec::new();
        for _ in 0..silent {
            sockets.push(Raw::connect(port).await);
        }
        let client = connect(port, db)
            .await
            .unwrap_or_else(|e| panic!("{who}: {e}"));
        let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
        let started = std::time::Instant::now();
        for s in &mut sockets {
            assert!(
                s.recv().await.is_none(),
                "{who}: a message to a silent client"
            );
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{who}"
        );

        // A startup packet declaring more than 10,000 bytes is closed
        // at once without an answer (PostgreSQL only logs it).
        let mut s = Raw::connect(port).await;
        let mut packet = 10_005i32.to_be_bytes().to_vec();
        packet.extend_from_slice(&limits_support::V3_0.to_be_bytes());
        s.send(&packet).await;
        assert!(s.recv().await.is_none(), "{who}");
    }
}

/// SQLSTATE and message of `sql` on `client`, or "ok".
async fn outcome(client: &tokio_postgres::Client, sql: &str) -> (String, String) {
    match client.batch_execute(sql).await {
        Ok(()) => ("ok".into(), String::new()),
        Err(e) => {
            let db = e
                .as_db_error()
                .unwrap_or_else(|| panic!("{sql}: {e}"))
                .clone();
            (db.code().code().to_string(), db.message().to_string())
        }
    }
}

/// Defect 6: type modifiers out of pgvector's (and PostgreSQL's `bit`)
/// ranges are refused where the type is named — CREATE TABLE, ALTER TABLE
/// ADD COLUMN, a cast — with the same 22023 and messages, on a shard and
/// through the proxy.
#[tokio::test]
async fn type_modifiers_are_checked_as_pgvector_checks_them() {
    let pg = PgServer::start().await;
    let shard = Shard::start(&fresh_dir("limits-typmod"));
    let backend = Shard::start(&fresh_dir("limits-typmod-backend"));
    let proxy = proxy(&[backend.port], "db", "").await;
    let types = [
        "vector(16001)",
        "vector(0)",
        "vector(16000)",
        "halfvec(16001)",
        "halfvec(0)",
        "sparsevec(1000000001)",
        "sparsevec(0)",
        "bit(0)",
        "vector(3, 4)",
    ];
    let mut statements = Vec::new();
    for (i, ty) in types.iter().enumerate() {
        statements.push(format!("CREATE TABLE tm{i} (id int PRIMARY KEY, v {ty})"));
        statements.push(format!("ALTER TABLE base ADD COLUMN c{i} {ty}"));
        if !ty.starts_with("bit") {
            statements.push(format!("SELECT '[1,2,3]'::{ty}"));
        }
    }
    let pg_client = pg.connect().await.unwrap();
    let targets = [
        ("shard", shard.port, "db"),
        ("proxy", proxy.addr.port(), "db"),
    ];
    let mut ours = Vec::new();
    for (_, port, db) in targets {
        ours.push(connect(port, db).await.unwrap());
    }
    for c in std::iter::once(&pg_client).chain(&ours) {
        c.batch_execute("CREATE TABLE base (id int PRIMARY KEY)")
            .await
            .unwrap();
    }
    for sql in &statements {
        let expected = outcome(&pg_client, sql).await;
        for ((who, _, _), client) in targets.iter().zip(&ours) {
            assert_eq!(outcome(client, sql).await, expected, "{who}: {sql}");
        }
    }
}

/// SplitMix64: a seeded, reproducible generator.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A spelling of integer `v` PostgreSQL's int8 input may accept: blanks,
/// sign, leading zeros, `_` between digits, 0x/0o/0b.
fn integer_spelling(rng: &mut Mix, v: i64) -> String {
    let magnitude = v.unsigned_abs();
    let digits = match rng.below(4) {
        0 => format!("0x{magnitude:X}"),
        1 => format!("0o{magnitude:o}"),
        2 => format!("0b{magnitude:b}"),
        _ => format!("{}{magnitude}", "0".repeat(rng.below(3) as usize)),
    };
    let (prefix, body) = digits.split_at(
        if digits.starts_with("0x") || digits.starts_with("0o") || digits.starts_with("0b") {
            2
        } else {
            0
        },
    );
    let mut spelled = prefix.to_string();
    for (i, c) in body.chars().enumerate() {
        if i > 0 && rng.below(5) == 0 {
            spelled.push('_');
        }
        spelled.push(c);
    }
    let sign = if v < 0 { "-" } else { rng.pick(&["", "+"]) };
    let blank = ["", " ", "  ", "\t", "\n"];
    format!("{}{sign}{spelled}{}", rng.pick(&blank), rng.pick(&blank))
}

/// A spelling of integer `v` as a decimal number: `v.000`, `d.ddde+k`.
fn decimal_spelling(rng: &mut Mix, v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let digits = v.unsigned_abs().to_string();
    if rng.below(2) == 0 {
        return format!("{sign}{digits}.{}", "0".repeat(rng.below(4) as usize));
    }
    let shift = rng.below(digits.len() as u64 + 2) as usize;
    let point = digits.len().saturating_sub(shift);
    let (whole, fraction) = digits.split_at(point);
    let e = rng.pick(&["e", "E"]);
    format!("{sign}{whole}.{fraction}{e}{}", digits.len() - point)
}

/// A spelling of the UUID `hex` (32 lower-case digits): any case, braces,
/// a hyphen after any group of four digits.
fn uuid_spelling(rng: &mut Mix, hex: &str) -> String {
    let mut s = String::new();
    for (i, c) in hex.chars().enumerate() {
        if i > 0 && i.is_multiple_of(4) && rng.below(2) == 0 {
            s.push('-');
        }
        s.push(if rng.below(2) == 0 {
            c.to_ascii_uppercase()
        } else {
            c
        });
    }
    if rng.below(2) == 0 {
        format!("{{{s}}}")
    } else {
        s
    }
}

/// Defect 7, property: every generated spelling PostgreSQL accepts for a
/// key's value (int8, numeric or uuid input) hashes to the slot of the
/// value as PostgreSQL prints it.
#[tokio::test]
async fn every_spelling_postgres_accepts_hashes_to_its_values_slot() {
    use pgvshard::proxy::slots::slot_of;
    let pg = PgServer::start().await;
    let client = pg.connect().await.unwrap();
    let mut rng = Mix(0x5eed);
    let mut checked = 0;
    for _ in 0..300 {
        let v = (rng.next() >> rng.below(64)) as i64;
        let v = if rng.below(2) == 0 {
            v
        } else {
            v.wrapping_neg()
        };
        let s = integer_spelling(&mut rng, v);
        let sql = format!("SELECT '{s}'::int8::text");
        let Ok(row) = client.query_one(&sql, &[]).await else {
            continue;
        };
        let value: String = row.get(0);
        assert_eq!(slot_of(&s), slot_of(&value), "{s:?} is {value}");
        checked += 1;

        let d = decimal_spelling(&mut rng, v);
        let sql = format!("SELECT '{d}'::numeric = {v}");
        let equal: bool = client.query_one(&sql, &[]).await.unwrap().get(0);
        assert!(equal, "{d} is not {v}");
        assert_eq!(slot_of(&d), slot_of(&value), "{d:?} is {value}");

        let hex: String = (0..2).map(|_| format!("{:016x}", rng.next())).collect();
        let u = uuid_spelling(&mut rng, &hex);
        let value: String = client
            .query_one(&format!("SELECT '{u}'::uuid::text"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(slot_of(&u), slot_of(&value), "{u:?} is {value}");
    }
    assert!(checked > 250, "only {checked} integer spellings were valid");
}

/// Defect 7, end to end: through the proxy over two PostgreSQL shards, a
/// row inserted with one spelling of its key is found by every other
/// spelling (literal or parameter) and a second insert of the same value
/// in another spelling conflicts with it: the row exists once.
#[tokio::test]
async fn a_key_spelled_differently_reaches_the_same_row() {
    let fixture = pg_support::Fixture::start("").await;
    let proxy = fixture.client().await;
    proxy
        .batch_execute(
            "CREATE TABLE u (id uuid PRIMARY KEY, n int); \
             CREATE TABLE b (id bigint PRIMARY KEY, n int)",
        )
        .await
        .unwrap();
    let uuids = [
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "0e1f2a3b-4c5d-6e7f-8091-a2b3c4d5e6f7",
        "ffffffff-0000-1111-2222-333344445555",
    ];
    for (i, canonical) in uuids.iter().enumerate() {
        let hex = canonical.replace('-', "");
        let spellings = [
            canonical.to_string(),
            canonical.to_uppercase(),
            hex.clone(),
            format!("{{{canonical}}}"),
            format!("{{{}}}", hex.to_uppercase()),
        ];
        proxy
            .batch_execute(&format!("INSERT INTO u VALUES ('{}', {i})", spellings[4]))
            .await
            .unwrap();
        for s in &spellings {
            let sql = format!("SELECT n FROM u WHERE id = '{s}'");
            let rows = proxy.query(&sql, &[]).await.unwrap();
            assert_eq!(rows.len(), 1, "{sql}");
            let again = format!("INSERT INTO u VALUES ('{s}', 99) ON CONFLICT (id) DO NOTHING");
            proxy.batch_execute(&again).await.unwrap();
        }
    }
    assert_eq!(fixture.shard_counts("u").await.iter().sum::<i64>(), 3);

    proxy
        .batch_execute("INSERT INTO b VALUES ('+042', 1)")
        .await
        .unwrap();
    for s in [
        "42",
        "'42'",
        "' 42 '",
        "'0x2A'",
        "'0b101010'",
        "'4_2'",
        "42.0",
        "4.2e1",
        "'0042'",
    ] {
        let sql = format!("SELECT n FROM b WHERE id = {s}");
        assert_eq!(proxy.query(&sql, &[]).await.unwrap().len(), 1, "{sql}");
        let again = format!("INSERT INTO b VALUES ({s}::int8, 2) ON CONFLICT (id) DO NOTHING");
        proxy.batch_execute(&again).await.unwrap();
    }
    let by_param = proxy
        .query("SELECT n FROM b WHERE id = $1", &[&42i64])
        .await
        .unwrap();
    assert_eq!(by_param.len(), 1);
    assert_eq!(fixture.shard_counts("b").await.iter().sum::<i64>(), 1);
}

/// Defect 8: the proxy says Terminate to a shard session it drops (here:
/// one a client left inside a transaction), so PostgreSQL does not see
/// the socket vanish ("unexpected EOF on client connection").
#[tokio::test]
async fn dropped_shard_sessions_are_terminated() {
    let pg = PgServer::start_with(&["log_min_messages=debug1", "log_disconnections=on"]).await;
    let proxy = proxy(&[pg.port], "postgres", "").await;
    let client = connect(proxy.addr.port(), "postgres").await.unwrap();
    // Two strings: BEGIN inside one would take the CREATE TABLE before it
    // into the abandoned transaction, as PostgreSQL does.
    client
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    client
        .batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    drop(client);
    let started = std::time::Instant::now();
    while !pg.log().contains("disconnection:") && started.elapsed().as_secs() < 5 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = pg.log();
    assert!(
        !log.contains("unexpected EOF on client connection"),
        "{log}"
    );
    let check = pg.connect().await.unwrap();
    let n: i64 = check
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "the abandoned transaction was rolled back");
}

/// Defect 8: floats out of a type's range are 22003, not Infinity or 0,
/// as PostgreSQL's float4in/float8in answer (shard and proxy).
#[tokio::test]
async fn floats_out_of_range_are_refused_as_postgres_refuses_them() {
    let pg = PgServer::start().await;
    let shard = Shard::start(&fresh_dir("limits-floats"));
    let proxy = proxy(&[shard.port], "db", "").await;
    let statements = [
        "SELECT '1e39'::real",
        "SELECT '-1e39'::real",
        "SELECT '1e-50'::real",
        "SELECT '3.4e38'::real",
        "SELECT '1e309'::float8",
        "SELECT '1e-400'::float8",
        "SELECT '0e-400'::float8",
        "SELECT 'Infinity'::real",
    ];
    let pg_client = pg.connect().await.unwrap();
    let ours = [
        ("shard", connect(shard.port, "db").await.unwrap()),
        ("proxy", connect(proxy.addr.port(), "db").await.unwrap()),
    ];
    for sql in statements {
        let expected = outcome(&pg_client, sql).await;
        for (who, client) in &ours {
            assert_eq!(outcome(client, sql).await, expected, "{who}: {sql}");
        }
    }
}

/// Defect 8: trust authentication listening on every address logs a
/// warning, and the printed psql hint names a loopback host, not
/// `-h 0.0.0.0`.
#[test]
fn trust_on_a_wildcard_address_warns_and_hints_loopback() {
    use std::io::BufRead;
    let dir = fresh_dir("limits-wildcard");
    let log = dir.join("proxy.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pgvshard"))
        .args(["--listen", "0.0.0.0:0", "--metrics-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let hint = stdout
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("connect:"))
        .expect("a connect hint");
    let started = std::time::Instant::now();
    let mut logged = String::new();
    while !logged.contains("WARN") && started.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        logged = std::fs::read_to_string(&log).unwrap();
    }
    child.kill().ok();
    child.wait().ok();
    assert!(hint.starts_with("connect: psql -h 127.0.0.1 -p "), "{hint}");
    assert!(
        logged.contains("WARN")
            && logged.contains("trust authentication on a non-loopback address"),
        "{logged}"
    );
}

/// How a server answered a startup: NegotiateProtocolVersion's body, the
/// cancel key's length, errors, and whether the session started.
fn startup_answer(msgs: &[limits_support::Msg]) -> Vec<String> {
    msgs.iter()
        .filter_map(|m| match m.tag {
            b'v' => Some(format!("NegotiateProtocolVersion {:?}", m.body)),
            b'K' => Some(format!("cancel key of {} bytes", m.body.len() - 4)),
            b'E' => Some(format!("{:?} {:?}", m.field(b'C'), m.field(b'M'))),
            b'Z' => Some("ReadyForQuery".into()),
            _ => None,
        })
        .collect()
}

/// libpq 18 (psycopg's) at protocol 3.2: a query, then a cancel with the
/// 32-byte key (only where pg_sleep exists) while pg_sleep runs.
const LIBPQ_3_2: &str = r#"
import sys, threading, time, psycopg
port, sleep = int(sys.argv[1]), sys.argv[2] == "sleep"
conn = psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                       max_protocol_version="3.2", autocommit=True)
print(conn.execute("SELECT 41 + 1").fetchone()[0])
if sleep:
    threading.Timer(0.5, conn.cancel_safe).start()
    try:
        conn.execute("SELECT pg_sleep(30)")
    except psycopg.errors.QueryCanceled as e:
        print("canceled", e.sqlstate)
"#;

/// Defect 4: protocol versions as PostgreSQL 18 serves them: 3.0 to 3.2,
/// a higher 3.x or `_pq_.` options answered with NegotiateProtocolVersion,
/// 3.2's 32-byte cancel key (and a CancelRequest carrying it), another
/// major version refused — the same bytes to PostgreSQL 18 (the control),
/// a shard and the proxy; and libpq 18 connecting at 3.2.
#[tokio::test]
async fn protocol_versions_are_negotiated_as_postgres_18_does() {
    let pg = PgServer::start().await;
    let shard = Shard::start(&fresh_dir("limits-protocol"));
    let proxy = proxy(&[pg.port], "postgres", "").await;
    let targets = [
        ("postgres", pg.port),
        ("shard", shard.port),
        ("proxy", proxy.addr.port()),
    ];
    let asks: [(i32, &[(&str, &str)]); 6] = [
        (V3_0, &[]),
        (V3_0 + 1, &[]),
        (V3_2, &[]),
        (V3_0 + 7, &[]),
        (V3_2, &[("_pq_.no_such_option", "on")]),
        (4 << 16, &[]),
    ];
    let mut control = None;
    for (who, port) in targets {
        let mut answers = Vec::new();
        for (version, options) in asks {
            let mut raw = Raw::connect(port).await;
            let mut params = vec![("user", "postgres"), ("database", "postgres")];
            params.extend_from_slice(options);
            raw.send(&startup(version, &params)).await;
            answers.push(startup_answer(&raw.until_ready().await));
        }
        assert!(
            answers[3][0].starts_with("NegotiateProtocolVersion"),
            "{who}: {answers:?}"
        );
        assert_eq!(
            control.get_or_insert_with(|| answers.clone()),
            &answers,
            "{who}"
        );
        let sleep = if who == "shard" { "no" } else { "sleep" };
        // Not on this runtime's thread: the proxy under test runs there.
        let args = [
            "-c".to_string(),
            LIBPQ_3_2.into(),
            port.to_string(),
            sleep.into(),
        ];
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("python3").args(args).output()
        })
        .await
        .unwrap()
        .expect("python3 runs");
        let expected = if who == "shard" {
            "42\n"
        } else {
            "42\ncanceled 57014\n"
        };
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            expected,
            "{who}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Defect 8: identifiers over 63 bytes are cut to 63 with NOTICE 42622,
/// quoted or not (unquoted ones reported downcased), and the cut name is
/// the one that exists — on PostgreSQL (the control), a shard and the
/// proxy over two shards, statement by statement, simple and extended.
#[tokio::test]
async fn long_identifiers_are_truncated_with_a_notice_as_postgres_does() {
    let pg = PgServer::start().await;
    let shards = shards("long-names", 3);
    let proxy = proxy(&[shards[1].port, shards[2].port], "db", "").await;
    let table = format!("Long_{}", "T".repeat(70));
    let column = format!("\"{}é\"", "c".repeat(62));
    let cut = table[..63].to_ascii_lowercase();
    let statements = [
        format!("CREATE TABLE {table} (id int PRIMARY KEY, {column} int)"),
        format!("INSERT INTO {table} VALUES (1, 2), (7, 8)"),
        format!("SELECT {column} FROM {table} ORDER BY id"),
        format!("SELECT count(*) FROM {cut}"),
    ];
    let targets = [
        ("postgres", pg.port, "postgres"),
        ("shard", shards[0].port, "db"),
        ("proxy", proxy.addr.port(), "db"),
    ];
    let mut control = None;
    for (who, port, db) in targets {
        let mut s = Raw::session(port, db).await;
        let mut answers = Vec::new();
        for sql in &statements {
            let mut query = sql.as_bytes().to_vec();
            query.push(0);
            s.send(&limits_support::frame(b'Q', &query)).await;
            answers.push(s.until_ready().await);
        }
        // The extended protocol: the NOTICE answers the Parse.
        let mut parse = b"\0".to_vec();
        parse.extend_from_slice(statements[2].as_bytes());
        parse.extend_from_slice(&[0, 0, 0]);
        let mut batch = limits_support::frame(b'P', &parse);
        batch.extend(limits_support::frame(b'S', b""));
        s.send(&batch).await;
        answers.push(s.until_ready().await);
        let seen: Vec<Vec<String>> = answers
            .iter()
            .map(|msgs| {
                let mut seen: Vec<String> = msgs
                    .iter()
                    .filter(|m| matches!(m.tag, b'N' | b'E'))
                    .map(|m| format!("{:?} {:?}", m.field(b'C'), m.field(b'M')))
                    .collect();
                seen.extend(first_column(msgs));
                seen
            })
            .collect();
        assert_eq!(seen[0].len(), 2, "{who}: {seen:?}");
        assert_eq!(control.get_or_insert_with(|| seen.clone()), &seen, "{who}");
    }
}

/// Defect 8: a statement that reads no sharded table (`SELECT 1`, the
/// catalog) needs no particular shard: with shard s0 killed it is answered
/// by another, as PostgreSQL answers it, the first time; a read of a
/// sharded table still names the missing shard (08006).
#[tokio::test]
async fn a_statement_without_tables_is_answered_while_the_first_shard_is_down() {
    let pg = PgServer::start().await;
    let mut shards = shards("first-down", 2);
    let proxy = proxy(&[shards[0].port, shards[1].port], "db", "").await;
    let client = connect(proxy.addr.port(), "db").await.unwrap();
    let control = pg.connect().await.unwrap();
    client
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3)")
        .await
        .unwrap();
    let one = "SELECT 1 AS one";
    let expected = first_value(&control, one).await;
    assert_eq!(first_value(&client, one).await, expected);
    shards.remove(0).kill9();
    for _ in 0..3 {
        assert_eq!(first_value(&client, one).await, expected);
    }
    let catalog = "SELECT count(*) FROM pg_class WHERE relname = 't'";
    assert_eq!(first_value(&client, catalog).await, "1");
    let e = client.simple_query("SELECT * FROM t").await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("08006"), "{e}");
}

/// The first column of the first row, as text.
async fn first_value(client: &tokio_postgres::Client, sql: &str) -> String {
    let rows = client.simple_query(sql).await.unwrap();
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap()
}
