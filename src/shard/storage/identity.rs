//! The data directory's system identifier: a random number chosen when the
//! directory is created and copied with every base backup, so a standby
//! can tell whether a server is its primary (PostgreSQL's
//! `system_identifier`, reported by IDENTIFY_SYSTEM).
//!
//! ```text
//! <data dir>/IDENTITY := the identifier in decimal, newline
//! ```

use super::error::{Result, StorageError};
use super::wal::writer::sync_dir;
use std::path::Path;

/// Name of the identity file in the data directory.
pub const IDENTITY: &str = "IDENTITY";

/// Reads the system identifier of `data`, choosing and saving one first
/// when there is none.
pub fn load_or_create(data: &Path) -> Result<u64> {
    let path = data.join(IDENTITY);
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| StorageError::corrupted(&path, "not a system identifier")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut raw = [0u8; 8];
            getrandom::fill(&mut raw)
                .map_err(|e| StorageError::new("58000", format!("no random numbers: {e}")))?;
            // Positive as a signed 64-bit number, as PostgreSQL's are.
            let id = u64::from_le_bytes(raw) >> 1;
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, format!("{id}\n"))
                .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| StorageError::io(&path, e))?;
            sync_dir(data)?;
            Ok(id)
        }
        Err(e) => Err(StorageError::io(&path, e)),
    }
}
