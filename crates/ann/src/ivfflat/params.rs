//! IVFFlat's build option and search settings, with pgvector's ranges and
//! PostgreSQL's messages for values outside them.

use crate::error::{AnnError, Result};
use crate::search::IterativeScan;

/// Fewest lists (and probes) pgvector accepts.
pub const MIN_LISTS: usize = 1;
/// Most lists (and probes) pgvector accepts.
pub const MAX_LISTS: usize = 32768;
/// `lists` when `WITH (lists = …)` is not given.
pub const DEFAULT_LISTS: usize = 100;
/// Default of `ivfflat.probes`.
pub const DEFAULT_PROBES: usize = 1;

/// `CREATE INDEX … USING ivfflat … WITH (lists = …)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IvfParams {
    /// Number of inverted lists (k-means centres).
    pub lists: usize,
}

impl IvfParams {
    /// Checks `lists` the way PostgreSQL checks the reloption.
    pub fn new(lists: usize) -> Result<Self> {
        if !(MIN_LISTS..=MAX_LISTS).contains(&lists) {
            return Err(AnnError::invalid_parameter(format!(
                "value {lists} out of bounds for option \"lists\""
            ))
            .with_detail(format!(
                "Valid values are between \"{MIN_LISTS}\" and \"{MAX_LISTS}\"."
            )));
        }
        Ok(IvfParams { lists })
    }
}

impl Default for IvfParams {
    fn default() -> Self {
        IvfParams {
            lists: DEFAULT_LISTS,
        }
    }
}

/// The session's `ivfflat.*` settings for one search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IvfSearch {
    /// `ivfflat.probes`: lists scanned (capped at the index's list count).
    pub probes: usize,
    /// `ivfflat.iterative_scan`: whether to probe on until `k` rows pass
    /// the filter.
    pub iterative_scan: IterativeScan,
    /// `ivfflat.max_probes`: most lists an iterative scan visits; when it is
    /// below `probes`, `probes` is used.
    pub max_probes: usize,
}

impl IvfSearch {
    /// Checks each setting against its GUC range.
    pub fn new(probes: usize, iterative_scan: IterativeScan, max_probes: usize) -> Result<Self> {
        check_guc("ivfflat.probes", probes)?;
        check_guc("ivfflat.max_probes", max_probes)?;
        Ok(IvfSearch {
            probes,
            iterative_scan,
            max_probes,
        })
    }
}

impl Default for IvfSearch {
    fn default() -> Self {
        IvfSearch {
            probes: DEFAULT_PROBES,
            iterative_scan: IterativeScan::Off,
            max_probes: MAX_LISTS,
        }
    }
}

fn check_guc(name: &str, value: usize) -> Result<()> {
    if (MIN_LISTS..=MAX_LISTS).contains(&value) {
        Ok(())
    } else {
        Err(AnnError::invalid_parameter(format!(
            "{value} is outside the valid range for parameter \"{name}\" ({MIN_LISTS} .. {MAX_LISTS})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn lists_follow_the_reloption_range_and_message() {
        assert_eq!(IvfParams::new(1).unwrap().lists, 1);
        assert_eq!(IvfParams::new(32768).unwrap().lists, 32768);
        assert_eq!(IvfParams::default().lists, 100);
        let err = IvfParams::new(0).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidParameterValue);
        assert_eq!(err.kind.sqlstate(), "22023");
        assert_eq!(err.message, "value 0 out of bounds for option \"lists\"");
        assert_eq!(
            err.detail.as_deref(),
            Some("Valid values are between \"1\" and \"32768\".")
        );
        assert_eq!(
            IvfParams::new(32769).unwrap_err().message,
            "value 32769 out of bounds for option \"lists\""
        );
    }

    #[test]
    fn search_settings_follow_the_guc_ranges_and_message() {
        let s = IvfSearch::new(10, IterativeScan::RelaxedOrder, 20).unwrap();
        assert_eq!((s.probes, s.max_probes), (10, 20));
        let d = IvfSearch::default();
        assert_eq!(
            (d.probes, d.max_probes, d.iterative_scan),
            (1, 32768, IterativeScan::Off)
        );
        let err = IvfSearch::new(0, IterativeScan::Off, 5).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidParameterValue);
        assert_eq!(
            err.message,
            "0 is outside the valid range for parameter \"ivfflat.probes\" (1 .. 32768)"
        );
        assert_eq!(
            IvfSearch::new(1, IterativeScan::Off, 40000)
                .unwrap_err()
                .message,
            "40000 is outside the valid range for parameter \"ivfflat.max_probes\" (1 .. 32768)"
        );
    }
}
