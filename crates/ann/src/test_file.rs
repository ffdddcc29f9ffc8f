//! A file path in a temporary directory of its own for one test; the
//! directory is removed when the value is dropped, so tests leave nothing
//! behind in the temporary directory.

use std::path::PathBuf;

/// `path` is `<tmp>/<prefix>-<pid>/<file>`; the directory exists.
pub(crate) struct TestFile {
    dir: PathBuf,
    pub path: PathBuf,
}

impl TestFile {
    pub fn new(prefix: &str, file: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(file);
        TestFile { dir, path }
    }
}

impl Drop for TestFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
