//! Helpers shared by the storage integration tests.
#![allow(dead_code)]

use ann::types::Vector;
use ann::Metric;
use pgvshard::shard::datum::Datum;
use pgvshard::shard::storage::{
    AnnSearch, ColumnDef, ColumnType, Database, IndexDef, IndexMethod, StorageOptions, Tables,
    Transaction,
};
use pgvshard::wire::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Dimensions of the test vectors.
pub const DIM: usize = 8;

/// A fresh, empty directory for one test, under cargo's temp dir (so a
/// test's data stays inside target/ and the next run replaces it).
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("storage-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Options that roll WAL segments and checkpoint often, so tests cross
/// those boundaries with little data.
pub fn small_options() -> StorageOptions {
    StorageOptions {
        wal_segment_bytes: 4096,
        checkpoint_wal_bytes: u64::MAX,
        checkpoint_interval: None,
        ..StorageOptions::default()
    }
}

/// A vector determined by `id` and `version` (distinct for distinct ids).
pub fn vector_for(id: i64, version: u32) -> Datum {
    let mut x = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ((version as u64) << 17);
    let v = (0..DIM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 20_000) as f32 / 1000.0 - 10.0
        })
        .collect();
    Some(Value::Vector(Vector::new(v).unwrap()))
}

/// `items (id bigint primary key, grp bigint not null, note text,
/// embedding vector(8))`.
pub fn items_columns() -> Vec<ColumnDef> {
    let col = |name: &str, ty, not_null| ColumnDef {
        name: name.into(),
        ty,
        not_null,
        default: None,
    };
    vec![
        col("id", ColumnType::Int8, true),
        col("grp", ColumnType::Int8, true),
        col("note", ColumnType::Text, false),
        col("embedding", ColumnType::Vector(Some(DIM as u32)), false),
    ]
}

/// A row of `items`.
pub fn item(id: i64, grp: i64, version: u32) -> Vec<Datum> {
    vec![
        Some(Value::Int8(id)),
        Some(Value::Int8(grp)),
        Some(Value::Text(format!("row {id} v{version}"))),
        vector_for(id, version),
    ]
}

/// Creates `items` with an IVFFlat index (`items_embedding_idx`, L2, 4
/// lists) built after `initial` rows.
pub fn create_items(db: &Database, initial: i64) {
    let mut t = Transaction::new();
    t.create_table(
        &db.read().unwrap(),
        "items",
        items_columns(),
        vec![0],
        Default::default(),
    )
    .unwrap();
    db.commit(t).unwrap();
    let mut t = Transaction::new();
    for id in 0..initial {
        t.insert(&db.read().unwrap(), "items", item(id, id, 0))
            .unwrap();
    }
    db.commit(t).unwrap();
    let mut t = Transaction::new();
    let method = IndexMethod::IvfFlat {
        metric: Metric::L2,
        lists: 4,
    };
    t.create_index(
        &db.read().unwrap(),
        "items",
        index("items_embedding_idx", 3, method),
    )
    .unwrap();
    let hnsw = IndexMethod::Hnsw {
        metric: Metric::L2,
        m: 8,
        ef_construction: 32,
    };
    t.create_index(
        &db.read().unwrap(),
        "items",
        index("items_embedding_hnsw", 3, hnsw),
    )
    .unwrap();
    db.commit(t).unwrap();
}

/// An index named `name` on column `column`, before commit gives its OID.
pub fn index(name: &str, column: usize, method: IndexMethod) -> IndexDef {
    IndexDef {
        oid: 0,
        name: name.into(),
        column,
        method,
        expression: None,
        predicate: None,
        with: Vec::new(),
    }
}

/// Every table's rows by primary key (first column), as debug text.
pub fn dump(tables: &Tables) -> BTreeMap<String, BTreeMap<String, String>> {
    tables
        .iter()
        .map(|t| {
            let rows = t
                .live_slots()
                .map(|s| {
                    let row = t.row(s).unwrap();
                    (format!("{:?}", row[0]), format!("{row:?}"))
                })
                .collect();
            (t.def().name.clone(), rows)
        })
        .collect()
}

/// Checks that every ANN index of every table holds exactly the rows with
/// a vector, and finds each row as its own nearest neighbour.
pub fn check_indexes_agree(tables: &Tables) {
    for t in tables.iter() {
        for index in t.indexes() {
            let pgvshard::shard::storage::table::IndexData::Ann(ann) = &index.data else {
                continue;
            };
            let col = index.def.column;
            let with_vector: Vec<u32> = t
                .live_slots()
                .filter(|&s| t.value(s, col).is_some())
                .collect();
            assert_eq!(
                ann.len(),
                with_vector.len(),
                "index {} size",
                index.def.name
            );
            let mut all = AnnSearch::default();
            all.ivfflat.probes = 32768;
            all.hnsw.ef_search = 1000;
            all.hnsw.iterative_scan = ann::IterativeScan::RelaxedOrder;
            all.hnsw.max_scan_tuples = usize::MAX;
            let everything = t
                .ann_search(
                    &index.def.name,
                    t.value(with_vector[0], col).as_ref().unwrap(),
                    with_vector.len() + 5,
                    &all,
                    None,
                )
                .unwrap();
            let mut found: Vec<u32> = everything.iter().map(|n| n.id).collect();
            found.sort_unstable();
            assert_eq!(found, with_vector, "index {} ids", index.def.name);
            for &s in &with_vector {
                let hit = t
                    .ann_search(
                        &index.def.name,
                        t.value(s, col).as_ref().unwrap(),
                        1,
                        &all,
                        None,
                    )
                    .unwrap();
                assert_eq!(hit[0].distance, 0.0, "slot {s} not found by its own vector");
                assert_eq!(t.value(hit[0].id, col), t.value(s, col));
            }
        }
    }
}

/// The WAL segment files of `data`, oldest first.
pub fn segments(data: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Opens `dir` with [`small_options`].
pub fn open(dir: &Path) -> Database {
    Database::open(dir, small_options()).unwrap()
}
