//! Checkpoints: restart loads tables and ANN indexes (not rebuilt) and
//! replays only the WAL tail; old WAL goes; damaged files are named.

mod storage_support;

use pgvshard::shard::storage::{Database, Transaction};
use pgvshard::wire::Value;
use std::path::{Path, PathBuf};
use storage_support::*;

fn insert_range(db: &Database, ids: std::ops::Range<i64>) {
    for chunk in ids.collect::<Vec<_>>().chunks(10) {
        let mut t = Transaction::new();
        for &id in chunk {
            t.insert(&db.read().unwrap(), "items", item(id, id % 7, 0))
                .unwrap();
        }
        db.commit(t).unwrap();
    }
}

#[test]
fn restart_loads_the_checkpoint_and_replays_only_the_tail() {
    let dir = fresh_dir("ckpt-tail");
    let db = open(&dir);
    create_items(&db, 100);
    insert_range(&db, 100..300);
    let segments_before = segments(&dir).len();
    assert!(segments_before > 3);
    let lsn = db.checkpoint().unwrap();
    assert_eq!(lsn, db.current_lsn());
    assert_eq!(
        segments(&dir).len(),
        1,
        "segments wholly before the checkpoint are gone"
    );
    insert_range(&db, 300..330);
    let mut t = Transaction::new();
    let r = db.read().unwrap();
    let items = r.get("items").unwrap();
    let victim = items
        .row_ref(items.find_key(&[Some(Value::Int8(7))]).unwrap())
        .unwrap();
    t.delete(&r, "items", victim).unwrap();
    drop(r);
    db.commit(t).unwrap();
    let before = dump(&db.read().unwrap());
    drop(db); // crash: no final checkpoint

    let db = open(&dir);
    let report = db.recovery_report().clone();
    assert_eq!(report.checkpoint_lsn, lsn);
    assert_eq!(report.indexes_loaded, 2);
    assert_eq!(
        report.indexes_built, 0,
        "the IVFFlat index was loaded, not rebuilt"
    );
    assert_eq!(report.transactions_replayed, 4);
    let r = db.read().unwrap();
    assert_eq!(dump(&r), before);
    assert_eq!(r.get("items").unwrap().len(), 329);
    check_indexes_agree(&r);
    drop(r);

    // A clean shutdown checkpoints, so the next start replays nothing.
    db.close().unwrap();
    let db = open(&dir);
    assert_eq!(db.recovery_report().transactions_replayed, 0);
    assert_eq!(db.recovery_report().indexes_loaded, 2);
    assert_eq!(dump(&db.read().unwrap()), before);
}

#[test]
fn checkpoints_start_by_wal_size_in_the_background() {
    let dir = fresh_dir("ckpt-size");
    let options = pgvshard::shard::storage::StorageOptions {
        checkpoint_wal_bytes: 8 << 10,
        ..small_options()
    };
    let db = Database::open(&dir, options).unwrap();
    create_items(&db, 10);
    insert_range(&db, 10..200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !dir.join("MANIFEST").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn checkpointed(name: &str) -> PathBuf {
    let dir = fresh_dir(name);
    let db = open(&dir);
    create_items(&db, 50);
    db.close().unwrap();
    dir
}

fn files_in_checkpoint(dir: &Path) -> Vec<PathBuf> {
    let ckpt = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("ckpt-")
        })
        .unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(ckpt)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.push(dir.join("MANIFEST"));
    files.sort();
    files
}

#[test]
fn a_damaged_checkpoint_file_is_an_error_naming_it() {
    let dir = checkpointed("ckpt-damage");
    let files = files_in_checkpoint(&dir);
    assert_eq!(files.len(), 4, "{files:?}");
    for file in &files {
        let good = std::fs::read(file).unwrap();
        for (what, bad) in [
            ("flip", {
                let mut b = good.clone();
                let i = good.len() / 2;
                b[i] ^= 0x08;
                b
            }),
            ("truncate", good[..good.len() - 3].to_vec()),
            ("empty", Vec::new()),
        ] {
            std::fs::write(file, &bad).unwrap();
            let err = Database::open(&dir, small_options()).unwrap_err();
            assert_eq!(err.sqlstate, "XX001", "{what} {}: {err}", file.display());
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                err.message.contains(&name),
                "{what}: {} names {name}?",
                err.message
            );
        }
        std::fs::write(file, &good).unwrap();
    }
    let db = open(&dir);
    assert_eq!(db.read().unwrap().get("items").unwrap().len(), 50);
}
