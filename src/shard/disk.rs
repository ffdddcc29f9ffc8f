//! Free space of the file system a shard writes its WAL to, read with
//! `statvfs(3)` at each scrape (`pgvshard_shard_wal_fs_*`): a full disk
//! stops every commit (the WAL cannot be written), so it is alerted on
//! before it happens.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Space of one file system, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Bytes an unprivileged process may still write (`f_bavail`).
    pub available: u64,
    /// The file system's size.
    pub total: u64,
}

/// The space of the file system holding `path`; `None` when it cannot
/// be read (the path is gone, or holds a NUL byte).
// The statvfs fields are u64 on 64-bit Linux but narrower elsewhere.
#[allow(clippy::useless_conversion)]
pub fn space(path: &Path) -> Option<DiskSpace> {
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string for the whole
    // call and `stat` points to writable memory of the struct's size;
    // statvfs either fills it completely (returning 0) or fails.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it initialised `stat`.
    let stat = unsafe { stat.assume_init() };
    let block = u64::from(stat.f_frsize);
    Some(DiskSpace {
        available: u64::from(stat.f_bavail).saturating_mul(block),
        total: u64::from(stat.f_blocks).saturating_mul(block),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temp_dir_has_space_and_a_missing_path_has_none() {
        let s = space(&std::env::temp_dir()).unwrap();
        assert!(s.total > 0 && s.available <= s.total, "{s:?}");
        assert_eq!(space(Path::new("/no/such/dir/at/all")), None);
    }
}
