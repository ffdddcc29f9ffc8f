//! Shard storage: tables in memory, made durable by a write-ahead log and
//! checkpoints, recovered after a crash.
//!
//! ```text
//!  executor ──Transaction (write set)──▶ Database::commit
//!                                          │ write lock: plan → apply (undo on error)
//!                                          │ append WAL frames
//!                                          │ unlock, group-commit fsync
//!  executor ◀──Database::read (RwLock)──  Tables ─ Table ─ ColumnStore (by slot)
//!                                                        ├ pkey / btree indexes
//!                                                        └ ANN indexes over ColumnSpace
//! <data dir>/MANIFEST, ckpt-<LSN>/ (checkpoint.rs), wal/<LSN>.wal (wal/),
//!            IDENTITY (identity.rs), TIMELINE (timeline.rs)
//! ```
//!
//! Durability: `commit` returns after the WAL is fsynced past the commit
//! record. A checkpoint writes all tables and ANN indexes, fsyncs them,
//! flushes the WAL to the checkpoint LSN and atomically replaces the
//! manifest; then older WAL segments go. Opening replays the WAL after the
//! checkpoint, so ANN indexes are loaded, not rebuilt.

pub mod ann_index;
pub mod catalog;
pub mod checkpoint;
pub mod columns;
pub mod database;
pub mod error;
pub mod identity;
pub mod index_source;
pub mod prepared;
pub mod recovery;
pub mod row_codec;
pub mod space;
pub mod table;
pub mod tables;
pub mod timeline;
pub mod txn;
pub mod wal;

pub use ann_index::{AnnIndex, AnnSearch};
pub use catalog::{
    key_of_columns, ColumnDef, ColumnType, Constraints, ElementType, ForeignKey, IndexDef,
    IndexMethod, OnDelete, OnUpdate, TableDef, Unique, IDENTITY_MARK,
};
pub use database::{BaseBackup, Database, ReplicatedTxn, StorageOptions, WalHold};
pub use error::{Result, StorageError};
pub use prepared::PrepareRecord;
pub use recovery::RecoveryReport;
pub use space::{ColumnQuery, ColumnSpace};
pub use table::{IndexData, RowRef, Table, TableIndex};
pub use tables::Tables;
pub use txn::{Change, Transaction};
pub use wal::writer::CommitMode;
pub use wal::Lsn;
