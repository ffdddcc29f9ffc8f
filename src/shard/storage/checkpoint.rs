//! Checkpoints: every table's rows and every ANN index written to files,
//! named by one manifest that is replaced atomically.
//!
//! ```text
//! <data dir>/
//!   MANIFEST                   the current checkpoint
//!   ckpt-<LSN as 16 hex>/
//!     t<table oid>.rows        a table's rows
//!     i<index oid>.ann         an ANN index, in the ann engine's own format
//!   wal/                       segments (see wal)
//!
//! MANIFEST, *.rows := magic (8) | version u32 | payload length u64 |
//!                     CRC-32 of payload u32 | payload
//! MANIFEST payload := checkpoint LSN u64 | next oid u32 | directory str |
//!                     table count u32 | per table: table_def,
//!                     index count u32, index_def* |
//!                     prepared count u32 | prepare record* (undecided
//!                     prepared transactions; see prepared)
//! rows payload     := row count u32 | per row: slot u32, row
//! ```
//!
//! A checkpoint is written in a new directory while the tables are held
//! still (a read lock: no commit is applied meanwhile), the WAL is flushed
//! up to the checkpoint LSN, then the manifest is written to a temporary
//! file, fsynced and renamed over the old one. Only then are the previous
//! checkpoint directory and the WAL segments wholly before the LSN removed.
//! Loading checks every checksum and every row against its table; a damaged
//! file is an error that names it. B-tree and primary-key indexes are
//! rebuilt from the rows (cheap); ANN indexes are loaded, never rebuilt.

use super::error::{Result, StorageError};
use super::prepared::PrepareRecord;
use super::row_codec::{ByteReader, ByteWriter, Decoded};
use super::table::{IndexData, Table};
use super::tables::{Tables, Undo};
use super::wal::record::WalRecord;
use super::wal::{writer::sync_dir, Lsn};
use crate::shard::storage::ann_index::AnnIndex;
use ann::BuildProgress;
use std::io::Write;
use std::path::{Path, PathBuf};

const MANIFEST_MAGIC: &[u8; 8] = b"PGVSMANI";
const ROWS_MAGIC: &[u8; 8] = b"PGVSROWS";
const VERSION: u32 = 2;
const HEADER: usize = 24;

/// Name of the manifest file in the data directory.
pub const MANIFEST: &str = "MANIFEST";

/// Writes `payload` framed under `magic` to `path` via a synced temporary
/// file and a rename.
fn write_framed(path: &Path, magic: &[u8; 8], payload: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let io = |e| StorageError::io(&tmp, e);
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(magic).map_err(io)?;
    f.write_all(&VERSION.to_le_bytes()).map_err(io)?;
    f.write_all(&(payload.len() as u64).to_le_bytes())
        .map_err(io)?;
    f.write_all(&crc32fast::hash(payload).to_le_bytes())
        .map_err(io)?;
    f.write_all(payload).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| StorageError::io(path, e))
}

/// Reads a file written by [`write_framed`], checking all of it.
fn read_framed(path: &Path, magic: &[u8; 8]) -> Result<Vec<u8>> {
    let mut bytes = std::fs::read(path).map_err(|e| StorageError::io(path, e))?;
    let bad = |why: &str| StorageError::corrupted(path, why);
    if bytes.len() < HEADER {
        return Err(bad("shorter than its header"));
    }
    if &bytes[..8] != magic {
        return Err(bad("wrong magic number"));
    }
    if bytes[8..12] != VERSION.to_le_bytes() {
        return Err(bad("unknown format version"));
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().unwrap_or_default());
    if len != (bytes.len() - HEADER) as u64 {
        return Err(bad("truncated or extended"));
    }
    if crc32fast::hash(&bytes[HEADER..])
        != u32::from_le_bytes(bytes[20..24].try_into().unwrap_or_default())
    {
        return Err(bad("checksum mismatch"));
    }
    Ok(bytes.split_off(HEADER))
}

/// The directory of the checkpoint at `lsn`.
pub fn checkpoint_dir(data: &Path, lsn: Lsn) -> PathBuf {
    data.join(format!("ckpt-{:016X}", lsn.0))
}

fn rows_file(dir: &Path, oid: u32) -> PathBuf {
    dir.join(format!("t{oid}.rows"))
}

fn index_file(dir: &Path, oid: u32) -> PathBuf {
    dir.join(format!("i{oid}.ann"))
}

/// Writes the files of a checkpoint of `tables` at `lsn` (not yet the
/// manifest); returns the manifest payload to install with
/// [`install_manifest`].
pub fn write_files(data: &Path, tables: &Tables, lsn: Lsn) -> Result<Vec<u8>> {
    let dir = checkpoint_dir(data, lsn);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
    let mut manifest = ByteWriter::default();
    manifest.u64(lsn.0);
    manifest.u32(tables.next_oid());
    manifest.str(
        &dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    manifest.u32(tables.iter().count() as u32);
    for table in tables.iter() {
        let mut rows = ByteWriter::default();
        rows.u32(table.len() as u32);
        for slot in table.live_slots() {
            rows.u32(slot);
            rows.row(&table.row(slot).unwrap_or_default());
        }
        write_framed(&rows_file(&dir, table.def().oid), ROWS_MAGIC, &rows.buf)?;
        manifest.table_def(table.def());
        manifest.u32(table.indexes().len() as u32);
        for index in table.indexes() {
            manifest.index_def(&index.def);
            if let IndexData::Ann(ann) = &index.data {
                ann.save(&index_file(&dir, index.def.oid))?;
            }
        }
    }
    manifest.u32(tables.prepared().count() as u32);
    for p in tables.prepared() {
        p.record.encode(&mut manifest);
    }
    sync_dir(&dir)?;
    Ok(manifest.buf)
}

/// Makes the checkpoint whose manifest payload is `manifest` the current
/// one, then removes older checkpoint directories.
pub fn install_manifest(data: &Path, manifest: &[u8], lsn: Lsn) -> Result<()> {
    write_framed(&data.join(MANIFEST), MANIFEST_MAGIC, manifest)?;
    sync_dir(data)?;
    let keep = checkpoint_dir(data, lsn);
    let entries = std::fs::read_dir(data).map_err(|e| StorageError::io(data, e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let is_ckpt = entry.file_name().to_string_lossy().starts_with("ckpt-");
        if is_ckpt && path != keep {
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(dir = %path.display(), error = %e, "could not remove an old checkpoint");
            }
        }
    }
    Ok(())
}

/// What loading a checkpoint produced.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The tables as of the checkpoint.
    pub tables: Tables,
    /// The checkpoint's LSN (replay starts here).
    pub lsn: Lsn,
    /// ANN indexes read from files.
    pub indexes_loaded: u64,
}

/// Loads the current checkpoint of `data`, or empty tables at LSN 0 when
/// there is none yet.
pub fn load(data: &Path) -> Result<Loaded> {
    let path = data.join(MANIFEST);
    if !path.exists() {
        return Ok(Loaded::default());
    }
    let payload = read_framed(&path, MANIFEST_MAGIC)?;
    let bad = |e: super::row_codec::Malformed| StorageError::corrupted(&path, e);
    let mut r = ByteReader::new(&payload);
    let lsn = Lsn(r.u64().map_err(bad)?);
    let next_oid = r.u32().map_err(bad)?;
    let dir_name = r.str().map_err(bad)?;
    if dir_name.contains(['/', '\\']) || dir_name.starts_with('.') {
        return Err(StorageError::corrupted(
            &path,
            "bad checkpoint directory name",
        ));
    }
    let dir = data.join(dir_name);
    let mut loaded = Loaded {
        lsn,
        ..Loaded::default()
    };
    let count = r.count(8).map_err(bad)?;
    for _ in 0..count {
        let def = r.table_def().map_err(bad)?;
        let n = r.count(8).map_err(bad)?;
        let indexes = (0..n)
            .map(|_| r.index_def())
            .collect::<Decoded<Vec<_>>>()
            .map_err(bad)?;
        let mut table = load_rows(&rows_file(&dir, def.oid), def)?;
        for idef in indexes {
            if Tables::is_ann(idef.method) {
                if table.def().columns.get(idef.column).is_none() {
                    return Err(StorageError::corrupted(
                        &path,
                        "an index is on a column that does not exist",
                    ));
                }
                let (method, file) = (idef.method, index_file(&dir, idef.oid));
                table.attach_loaded_ann(idef, |dim| AnnIndex::load(method, dim, &file))?;
                loaded.indexes_loaded += 1;
            } else {
                table.create_index(idef, &BuildProgress::new())?;
            }
        }
        loaded.tables.attach(table);
    }
    // Prepared transactions (absent from manifests written before them).
    let prepared = if r.at_end() {
        0
    } else {
        r.count(4).map_err(bad)?
    };
    for _ in 0..prepared {
        let rec = PrepareRecord::decode(&mut r).map_err(bad)?;
        let record = WalRecord::Prepare(Box::new(rec));
        let _: Undo = loaded.tables.apply(&record, &BuildProgress::new(), None)?;
    }
    r.finish().map_err(bad)?;
    loaded.tables.set_next_oid(next_oid);
    Ok(loaded)
}

fn load_rows(path: &Path, def: super::catalog::TableDef) -> Result<Table> {
    let payload = read_framed(path, ROWS_MAGIC)?;
    let bad = |e: super::row_codec::Malformed| StorageError::corrupted(path, e);
    let mut r = ByteReader::new(&payload);
    let n = r.count(5).map_err(bad)?;
    let mut table = Table::new(def);
    for _ in 0..n {
        let slot = r.u32().map_err(bad)?;
        let row = r.row().map_err(bad)?;
        table
            .insert_at(slot, &row, 1)
            .map_err(|e| StorageError::corrupted(path, e.message))?;
    }
    r.finish().map_err(bad)?;
    Ok(table)
}
