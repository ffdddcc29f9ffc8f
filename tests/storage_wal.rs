//! WAL round trips, statement and commit errors, and damaged WAL tails.

mod storage_support;

use pgvshard::shard::datum::{self, Datum};
use pgvshard::shard::storage::{
    ColumnDef, ColumnType, Database, IndexDef, RecoveryReport, Transaction,
};
use pgvshard::wire::Value;
use std::path::Path;
use storage_support::*;

/// A workload touching every record type; returns the dump it leaves.
fn workload(db: &Database) {
    create_items(db, 40);
    let mut t = Transaction::new();
    let r = db.read().unwrap();
    let items = r.get("items").unwrap();
    let five = items
        .row_ref(items.find_key(&[Some(Value::Int8(5))]).unwrap())
        .unwrap();
    let six = items
        .row_ref(items.find_key(&[Some(Value::Int8(6))]).unwrap())
        .unwrap();
    t.update(&r, "items", five, item(5, 55, 1)).unwrap();
    t.delete(&r, "items", six).unwrap();
    t.insert(&r, "items", item(6, 66, 2)).unwrap();
    t.insert(
        &r,
        "items",
        vec![Some(Value::Int8(100)), Some(Value::Int8(1)), None, None],
    )
    .unwrap();
    drop(r);
    db.commit(t).unwrap();

    let mut t = Transaction::new();
    let r = db.read().unwrap();
    t.add_column(
        &r,
        "items",
        ColumnDef {
            name: "score".into(),
            ty: ColumnType::Float8,
            not_null: false,
            default: Some("1.5".into()),
        },
        Some(Value::Float8(1.5)),
    )
    .unwrap();
    t.create_table(&r, "other", items_columns(), vec![0], Default::default())
        .unwrap();
    t.insert(&r, "other", item(1, 1, 0)).unwrap();
    drop(r);
    db.commit(t).unwrap();

    let mut t = Transaction::new();
    t.truncate(&db.read().unwrap(), "other").unwrap();
    t.insert(&db.read().unwrap(), "other", item(2, 2, 0))
        .unwrap();
    db.commit(t).unwrap();
    let mut t = Transaction::new();
    let btree = pgvshard::shard::storage::IndexMethod::BTree;
    t.create_index(
        &db.read().unwrap(),
        "items",
        index("items_grp_idx", 1, btree),
    )
    .unwrap();
    let on_expression = IndexDef {
        expression: Some("(grp + 1)".into()),
        ..index("items_expr_idx", 1, btree)
    };
    t.create_index(&db.read().unwrap(), "items", on_expression)
        .unwrap();
    db.commit(t).unwrap();
}

#[test]
fn replaying_the_wal_rebuilds_every_change() {
    let dir = fresh_dir("wal-roundtrip");
    let db = open(&dir);
    workload(&db);
    let before = dump(&db.read().unwrap());
    let lsn = db.current_lsn();
    assert!(lsn.0 > 0 && db.flushed_lsn() >= lsn);
    drop(db); // no checkpoint: everything comes back from the WAL

    let db = open(&dir);
    let report: &RecoveryReport = db.recovery_report();
    assert_eq!(report.checkpoint_lsn.0, 0);
    assert_eq!(report.transactions_replayed, 7);
    assert_eq!(report.end_lsn, lsn);
    assert!(report.wal_cut.is_none());
    assert!(segments(&dir).len() > 1, "4 KiB segments rolled over");
    let r = db.read().unwrap();
    assert_eq!(dump(&r), before);
    let items = r.get("items").unwrap();
    assert_eq!(items.len(), 41);
    assert_eq!(items.def().columns.len(), 5);
    assert_eq!(r.get("other").unwrap().len(), 1);
    let grp = items
        .btree_range(
            "items_grp_idx",
            std::ops::Bound::Included(datum::key(&Some(Value::Int8(55))).unwrap()),
            std::ops::Bound::Included(datum::key(&Some(Value::Int8(66))).unwrap()),
        )
        .unwrap();
    let ids: Vec<Datum> = grp.iter().map(|&s| items.value(s, 0)).collect();
    assert_eq!(ids, vec![Some(Value::Int8(5)), Some(Value::Int8(6))]);
    check_indexes_agree(&r);
    let on_expression = items
        .indexes()
        .iter()
        .find(|i| i.def.name == "items_expr_idx");
    assert_eq!(
        on_expression.and_then(|i| i.def.expression.as_deref()),
        Some("(grp + 1)")
    );
    drop(r);
    assert_eq!(db.current_lsn(), lsn);
}

#[test]
fn statements_fail_with_postgres_errors_and_commits_are_all_or_nothing() {
    let dir = fresh_dir("wal-errors");
    let db = open(&dir);
    create_items(&db, 3);
    let mut t = Transaction::new();
    let e = t
        .insert(&db.read().unwrap(), "items", item(1, 1, 0))
        .unwrap_err();
    assert_eq!(e.sqlstate, "23505");
    assert_eq!(
        e.message,
        "duplicate key value violates unique constraint \"items_pkey\""
    );
    assert_eq!(e.detail.as_deref(), Some("Key (id)=(1) already exists."));
    let e = t
        .insert(
            &db.read().unwrap(),
            "items",
            vec![Some(Value::Int8(9)), None, None, None],
        )
        .unwrap_err();
    assert_eq!(e.sqlstate, "23502");
    assert_eq!(
        e.message,
        "null value in column \"grp\" of relation \"items\" violates not-null constraint"
    );
    t.insert(&db.read().unwrap(), "items", item(10, 0, 0))
        .unwrap();
    assert_eq!(
        t.insert(&db.read().unwrap(), "items", item(10, 0, 0))
            .unwrap_err()
            .sqlstate,
        "23505"
    );
    assert_eq!(
        t.insert(&db.read().unwrap(), "nope", item(1, 1, 0))
            .unwrap_err()
            .sqlstate,
        "42P01"
    );

    // Two transactions pass their statements; the second commit conflicts
    // on its second row and leaves nothing of itself behind.
    let mut a = Transaction::new();
    let mut b = Transaction::new();
    a.insert(&db.read().unwrap(), "items", item(20, 0, 0))
        .unwrap();
    let r = db.read().unwrap();
    b.create_table(&r, "side", items_columns(), vec![0], Default::default())
        .unwrap();
    b.insert(&r, "side", item(1, 1, 0)).unwrap();
    let score = ColumnDef {
        name: "score".into(),
        ty: ColumnType::Int4,
        not_null: false,
        default: None,
    };
    b.add_column(&r, "items", score, None).unwrap();
    b.drop_index(&r, "items_embedding_idx").unwrap();
    b.insert(
        &r,
        "items",
        vec![
            Some(Value::Int8(21)),
            Some(Value::Int8(0)),
            None,
            None,
            Some(Value::Int4(1)),
        ],
    )
    .unwrap();
    b.insert(&r, "items", item(20, 0, 0)).unwrap_err(); // 4 columns now
    b.insert(
        &r,
        "items",
        vec![
            Some(Value::Int8(20)),
            Some(Value::Int8(0)),
            None,
            None,
            None,
        ],
    )
    .unwrap();
    drop(r);
    db.commit(a).unwrap();
    let lsn = db.current_lsn();
    let e = db.commit(b).unwrap_err();
    assert_eq!(e.sqlstate, "23505");
    assert_eq!(db.current_lsn(), lsn, "a failed commit writes no WAL");
    let r = db.read().unwrap();
    let items = r.get("items").unwrap();
    assert!(items.find_key(&[Some(Value::Int8(21))]).is_none());
    assert_eq!(items.len(), 4);
    assert!(
        r.get("side").is_none(),
        "the table created by the failed commit is gone"
    );
    assert_eq!(items.def().columns.len(), 4);
    assert!(items.index("items_embedding_idx").is_some());
    check_indexes_agree(&r);

    // A row changed after it was read cannot be updated from the old read.
    let one = items
        .row_ref(items.find_key(&[Some(Value::Int8(1))]).unwrap())
        .unwrap();
    drop(r);
    let mut u1 = Transaction::new();
    u1.update(&db.read().unwrap(), "items", one, item(1, 7, 1))
        .unwrap();
    let mut u2 = Transaction::new();
    u2.delete(&db.read().unwrap(), "items", one).unwrap();
    db.commit(u1).unwrap();
    assert_eq!(db.commit(u2).unwrap_err().sqlstate, "40001");
    drop(db);
    let db = open(&dir);
    let r = db.read().unwrap();
    assert_eq!(r.get("items").unwrap().len(), 4);
    assert_eq!(
        r.get("items").unwrap().row(one.slot).unwrap()[1],
        Some(Value::Int8(7))
    );
}

/// A commit of many rows is logged by a second thread while it is applied:
/// one whose 1,501st row clashes with a key committed after its statements
/// ran fails whole, in the tables and in the WAL (what was written of it is
/// cut, so the next commit follows the last good one directly), and one
/// that succeeds comes back whole after reopening.
#[test]
fn a_large_commit_is_all_or_nothing_in_the_tables_and_the_wal() {
    let dir = fresh_dir("wal-bulk");
    let db = open(&dir);
    create_items(&db, 3);
    // Rows of 1 KB: more than a megabyte is logged before the clash.
    let mut big = Transaction::new();
    for id in 1000..3000 {
        let mut row = item(id, 0, 0);
        row[2] = Some(Value::Text("x".repeat(1000)));
        big.insert(&db.read().unwrap(), "items", row).unwrap();
    }
    let mut clash = Transaction::new();
    clash
        .insert(&db.read().unwrap(), "items", item(2500, 1, 0))
        .unwrap();
    db.commit(clash).unwrap();
    let lsn = db.current_lsn();
    let e = db.commit(big).unwrap_err();
    assert_eq!(e.sqlstate, "23505");
    assert_eq!(e.detail.as_deref(), Some("Key (id)=(2500) already exists."));
    assert_eq!(db.current_lsn(), lsn, "a failed commit leaves no WAL");
    assert_eq!(db.read().unwrap().get("items").unwrap().len(), 4);
    check_indexes_agree(&db.read().unwrap());
    let mut small = Transaction::new();
    small
        .insert(&db.read().unwrap(), "items", item(4000, 2, 0))
        .unwrap();
    db.commit(small).unwrap();
    let mut big = Transaction::new();
    for id in 5000..7000 {
        big.insert(&db.read().unwrap(), "items", item(id, 3, 1))
            .unwrap();
    }
    db.commit(big).unwrap();
    let before = dump(&db.read().unwrap());
    assert_eq!(before["items"].len(), 2005);
    drop(db);
    let db = open(&dir);
    let r = db.read().unwrap();
    assert_eq!(dump(&r), before);
    check_indexes_agree(&r);
}

/// Two committed transactions, then a third whose frames are damaged in
/// each way; returns (data dir, LSN before the third, bytes of the WAL).
fn three_transactions(name: &str) -> (std::path::PathBuf, u64, Vec<u8>) {
    let dir = fresh_dir(name);
    let db = Database::open(&dir, StorageOptionsBig::get()).unwrap();
    create_items(&db, 2);
    let before_last = db.current_lsn().0;
    let mut t = Transaction::new();
    t.insert(&db.read().unwrap(), "items", item(50, 1, 0))
        .unwrap();
    t.insert(&db.read().unwrap(), "items", item(51, 1, 0))
        .unwrap();
    db.commit(t).unwrap();
    drop(db);
    let segs = segments(&dir);
    assert_eq!(segs.len(), 1);
    (dir.clone(), before_last, std::fs::read(&segs[0]).unwrap())
}

struct StorageOptionsBig;
impl StorageOptionsBig {
    fn get() -> pgvshard::shard::storage::StorageOptions {
        pgvshard::shard::storage::StorageOptions {
            wal_segment_bytes: 1 << 30,
            ..small_options()
        }
    }
}

fn reopen_after_damage(dir: &Path, segment: &Path, bytes: &[u8]) -> (bool, RecoveryReport) {
    std::fs::write(segment, bytes).unwrap();
    let db = Database::open(dir, StorageOptionsBig::get()).unwrap();
    let r = db.read().unwrap();
    let items = r.get("items").unwrap();
    let has = |id| items.find_key(&[Some(Value::Int8(id))]).is_some();
    assert!(has(0) && has(1), "earlier transactions survive");
    assert_eq!(has(50), has(51), "the last transaction is all or nothing");
    check_indexes_agree(&r);
    let last = has(50);
    drop(r);
    let report = db.recovery_report().clone();
    drop(db);
    (last, report)
}

#[test]
fn a_truncated_tail_is_cut_at_the_last_whole_commit_at_every_byte() {
    let (dir, before_last, wal) = three_transactions("wal-truncate");
    let seg = segments(&dir)[0].clone();
    let header = 24usize;
    let start = header + before_last as usize;
    for cut in start..wal.len() {
        let (last, report) = reopen_after_damage(&dir, &seg, &wal[..cut]);
        assert!(!last, "cut at {cut}");
        if cut > start {
            let (lsn, _) = report.wal_cut.clone().expect("cut reported");
            assert!(
                lsn.0 >= before_last && (lsn.0 as usize) < cut,
                "damage found at {lsn}"
            );
        }
        assert_eq!(report.end_lsn.0, before_last);
        // The cut is real: the segment now ends at the last commit, and
        // the restart started a fresh one there.
        assert_eq!(
            std::fs::metadata(&seg).unwrap().len() as usize,
            start,
            "cut {cut} of {}",
            wal.len()
        );
        for extra in segments(&dir).into_iter().filter(|p| *p != seg) {
            std::fs::remove_file(extra).unwrap();
        }
    }
    let (last, report) = reopen_after_damage(&dir, &seg, &wal);
    assert!(last && report.wal_cut.is_none());
}

#[test]
fn flipped_bytes_are_detected_and_never_half_apply() {
    let (dir, before_last, wal) = three_transactions("wal-flip");
    let seg = segments(&dir)[0].clone();
    let start = 24 + before_last as usize;
    for i in start..wal.len() {
        let mut bad = wal.clone();
        bad[i] ^= 0x10;
        let (last, report) = reopen_after_damage(&dir, &seg, &bad);
        assert!(!last, "flip at {i}");
        assert!(report.wal_cut.is_some());
        for extra in segments(&dir).into_iter().filter(|p| *p != seg) {
            std::fs::remove_file(extra).unwrap();
        }
    }
    // Damage in the middle cuts everything after it, consistently.
    let mut bad = wal.clone();
    bad[40] ^= 0xFF;
    std::fs::write(&seg, &bad).unwrap();
    let db = Database::open(&dir, StorageOptionsBig::get()).unwrap();
    assert!(
        db.read().unwrap().get("items").is_none(),
        "the table's creation was cut"
    );
    assert_eq!(db.recovery_report().end_lsn.0, 0);
}
