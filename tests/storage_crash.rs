//! THE crash test: a child process commits from several threads, printing
//! what it tried and what was acknowledged; it is killed with SIGKILL
//! mid-load; the data directory is reopened and must hold every
//! acknowledged transaction, nothing half of any other, and ANN indexes that
//! agree with the table. Two rounds, so the second recovers from a WAL that
//! the first recovery cut and that checkpoints ran through.
//!
//! The child is this test binary re-executed with [`CHILD_ENV`] set, running
//! only [`child_writer_process`].

mod storage_support;

use pgvshard::shard::storage::{Database, StorageOptions, Transaction};
use pgvshard::wire::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage_support::*;

const CHILD_ENV: &str = "PGVSHARD_CRASH_DATA_DIR";
const ROUND_ENV: &str = "PGVSHARD_CRASH_ROUND";
const THREADS: i64 = 4;
const INITIAL_ROWS: i64 = 64;

/// The child's workload; does nothing unless started by the crash test.
#[test]
fn child_writer_process() {
    let (Ok(dir), Ok(round)) = (std::env::var(CHILD_ENV), std::env::var(ROUND_ENV)) else {
        return;
    };
    let round: i64 = round.parse().unwrap();
    let options = StorageOptions {
        wal_segment_bytes: 32 << 10,
        checkpoint_wal_bytes: 128 << 10,
        checkpoint_interval: Some(Duration::from_millis(300)),
        ..StorageOptions::default()
    };
    let db = Arc::new(Database::open(Path::new(&dir), options).unwrap());
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                write_forever(&db, 1_000_000 * (1 + round * THREADS + thread))
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

/// Commits forever: three-row inserts, and every fourth transaction a
/// delete of one acknowledged row with an update of another.
fn write_forever(db: &Database, base: i64) {
    let mut mine: std::collections::VecDeque<i64> = Default::default();
    for n in 0i64.. {
        let mut t = Transaction::new();
        if n % 4 == 3 && mine.len() >= 2 {
            let (del, upd) = (mine[0], mine[1]);
            let r = db.read().unwrap();
            let items = r.get("items").unwrap();
            let row = |id| {
                items
                    .row_ref(items.find_key(&[Some(Value::Int8(id))]).unwrap())
                    .unwrap()
            };
            let grp = match items.row(row(upd).slot).unwrap()[1] {
                Some(Value::Int8(g)) => g,
                _ => unreachable!("grp is bigint"),
            };
            t.delete(&r, "items", row(del)).unwrap();
            t.update(&r, "items", row(upd), item(upd, grp, 1)).unwrap();
            drop(r);
            println!("TRY DU {del} {upd}");
            db.commit(t).unwrap();
            println!("ACK DU {del} {upd}");
            mine.pop_front();
        } else {
            let ids = [base + 3 * n, base + 3 * n + 1, base + 3 * n + 2];
            for id in ids {
                t.insert(&db.read().unwrap(), "items", item(id, ids[0], 0))
                    .unwrap();
            }
            println!("TRY INS {} {} {}", ids[0], ids[1], ids[2]);
            db.commit(t).unwrap();
            println!("ACK INS {} {} {}", ids[0], ids[1], ids[2]);
            mine.extend(ids);
        }
    }
}

/// What the child printed, split into its whole lines.
fn run_child_and_kill(dir: &Path, round: i64) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_writer_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            if line.ends_with('\n') && tx.send(line.trim_end().to_string()).is_err() {
                break;
            }
            line.clear();
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut acks = 0;
    while acks < 300 {
        assert!(
            Instant::now() < deadline,
            "child made too little progress ({acks} acks)"
        );
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(50)) {
            acks += l.starts_with("ACK") as usize;
            lines.push(l);
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "child exited early: {lines:?}"
        );
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    lines
}

#[derive(Default)]
struct Expected {
    /// id → (grp, version) of every acknowledged row not acknowledged deleted.
    rows: BTreeMap<i64, (i64, u32)>,
    deleted: BTreeSet<i64>,
    /// Transactions tried but not acknowledged.
    unacked_inserts: Vec<[i64; 3]>,
    unacked_du: Vec<(i64, i64)>,
}

fn expectations(lines: &[String], mut prior: Expected) -> Expected {
    let mut tried_ins = BTreeSet::new();
    let mut tried_du = BTreeSet::new();
    for l in lines {
        let f: Vec<&str> = l.split(' ').collect();
        let n = |i: usize| f[i].parse::<i64>().unwrap();
        match (f.first().copied(), f.get(1).copied()) {
            (Some("TRY"), Some("INS")) => drop(tried_ins.insert([n(2), n(3), n(4)])),
            (Some("TRY"), Some("DU")) => drop(tried_du.insert((n(2), n(3)))),
            (Some("ACK"), Some("INS")) => {
                tried_ins.remove(&[n(2), n(3), n(4)]);
                for i in 2..5 {
                    prior.rows.insert(n(i), (n(2), 0));
                }
            }
            (Some("ACK"), Some("DU")) => {
                tried_du.remove(&(n(2), n(3)));
                prior.rows.remove(&n(2));
                prior.deleted.insert(n(2));
                let grp = prior.rows[&n(3)].0;
                prior.rows.insert(n(3), (grp, 1));
            }
            _ => {}
        }
    }
    prior.unacked_inserts = tried_ins.into_iter().collect();
    prior.unacked_du = tried_du.into_iter().collect();
    prior
}

/// Checks the reopened database against what was acknowledged; returns the
/// state the next round starts from.
fn check(db: &Database, exp: Expected) -> Expected {
    let r = db.read().unwrap();
    let items = r.get("items").unwrap();
    let get = |id: i64| {
        items
            .find_key(&[Some(Value::Int8(id))])
            .map(|s| items.row(s).unwrap())
    };
    let mut next = Expected {
        deleted: exp.deleted.clone(),
        ..Expected::default()
    };
    for &id in &exp.deleted {
        assert!(get(id).is_none(), "acknowledged delete of {id} lost");
    }
    let du_targets: BTreeMap<i64, (i64, i64)> = exp
        .unacked_du
        .iter()
        .flat_map(|&(d, u)| [(d, (d, u)), (u, (d, u))])
        .collect();
    for (&id, &(grp, version)) in &exp.rows {
        let row = get(id);
        if let Some(&(d, u)) = du_targets.get(&id) {
            // An unacknowledged delete+update: both happened or neither.
            let deleted = get(d).is_none();
            let updated = get(u).is_some_and(|r| r == item(u, exp.rows[&u].0, 1));
            assert_eq!(deleted, updated, "delete {d} / update {u} half applied");
            if deleted && id == d {
                next.deleted.insert(d);
                continue;
            }
            let version = if updated && id == u { 1 } else { version };
            assert_eq!(row, Some(item(id, grp, version)), "row {id}");
            next.rows.insert(id, (grp, version));
            continue;
        }
        assert_eq!(row, Some(item(id, grp, version)), "acknowledged row {id}");
        next.rows.insert(id, (grp, version));
    }
    for ids in &exp.unacked_inserts {
        let present: Vec<bool> = ids.iter().map(|&id| get(id).is_some()).collect();
        assert!(
            present.iter().all(|&p| p == present[0]),
            "insert {ids:?} half applied: {present:?}"
        );
        if present[0] {
            for &id in ids {
                assert_eq!(get(id), Some(item(id, ids[0], 0)));
                next.rows.insert(id, (ids[0], 0));
            }
        }
    }
    assert_eq!(items.len(), next.rows.len(), "rows nobody tried to write");
    check_indexes_agree(&r);
    next
}

#[test]
fn kill_9_during_concurrent_commits_loses_nothing_acknowledged() {
    let dir = fresh_dir("crash");
    let db = open(&dir);
    create_items(&db, INITIAL_ROWS);
    db.close().unwrap();
    let mut state = Expected {
        rows: (0..INITIAL_ROWS).map(|id| (id, (id, 0))).collect(),
        ..Expected::default()
    };
    for round in 0..2 {
        let lines = run_child_and_kill(&dir, round);
        let exp = expectations(&lines, state);
        let db = open(&dir);
        // `check` asserts every acknowledged row; an unacknowledged
        // delete+update may also have reached the disk (durable, but killed
        // before it was acknowledged), so the row count may drop.
        state = check(&db, exp);
        drop(db);
    }
}
