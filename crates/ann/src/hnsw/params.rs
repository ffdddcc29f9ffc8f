//! Build options and search settings, bounded and worded as pgvector's
//! reloptions (`m`, `ef_construction`) and GUCs (`hnsw.ef_search`,
//! `hnsw.iterative_scan`, `hnsw.max_scan_tuples`, `hnsw.scan_mem_multiplier`).

use crate::error::{AnnError, Result};
use crate::search::IterativeScan;

/// pgvector's `HNSW_MIN_M` / `HNSW_MAX_M`.
const M_RANGE: (usize, usize) = (2, 100);
/// pgvector's `HNSW_MIN_EF_CONSTRUCTION` / `HNSW_MAX_EF_CONSTRUCTION`.
const EF_CONSTRUCTION_RANGE: (usize, usize) = (4, 1000);
/// pgvector's `HNSW_MIN_EF_SEARCH` / `HNSW_MAX_EF_SEARCH`.
const EF_SEARCH_RANGE: (usize, usize) = (1, 1000);
/// `hnsw.max_scan_tuples` bounds (an int GUC).
const MAX_SCAN_TUPLES_RANGE: (usize, usize) = (1, i32::MAX as usize);
/// `hnsw.scan_mem_multiplier` bounds (a real GUC).
const SCAN_MEM_MULTIPLIER_RANGE: (f64, f64) = (1.0, 1000.0);

/// Index options of `CREATE INDEX … USING hnsw … WITH (m, ef_construction)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Maximum neighbours per node on upper levels (twice that on level 0).
    pub m: usize,
    /// Size of the candidate list while inserting.
    pub ef_construction: usize,
}

impl HnswParams {
    /// Validated options, with PostgreSQL's reloption messages and pgvector's
    /// `ef_construction >= 2 * m` check (all 22023).
    pub fn new(m: usize, ef_construction: usize) -> Result<Self> {
        check_reloption("m", m, M_RANGE)?;
        check_reloption("ef_construction", ef_construction, EF_CONSTRUCTION_RANGE)?;
        if ef_construction < 2 * m {
            return Err(AnnError::invalid_parameter(
                "ef_construction must be greater than or equal to 2 * m",
            ));
        }
        Ok(HnswParams { m, ef_construction })
    }

    /// Largest neighbour list on `level` (pgvector's `HnswGetLayerM`).
    pub(super) fn max_links(&self, level: usize) -> usize {
        if level == 0 {
            2 * self.m
        } else {
            self.m
        }
    }
}

impl Default for HnswParams {
    /// pgvector's defaults: m = 16, ef_construction = 64.
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 64,
        }
    }
}

fn check_reloption(name: &str, value: usize, (lo, hi): (usize, usize)) -> Result<()> {
    if (lo..=hi).contains(&value) {
        return Ok(());
    }
    Err(
        AnnError::invalid_parameter(format!("value {value} out of bounds for option \"{name}\""))
            .with_detail(format!("Valid values are between \"{lo}\" and \"{hi}\".")),
    )
}

/// Per-query settings: pgvector's `hnsw.*` GUCs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HnswSearch {
    /// Size of the candidate list (`hnsw.ef_search`).
    pub ef_search: usize,
    /// Whether to keep scanning when a filter leaves too few rows.
    pub iterative_scan: IterativeScan,
    /// Most tuples an iterative scan visits (`hnsw.max_scan_tuples`).
    pub max_scan_tuples: usize,
    /// Memory an iterative scan may use, in multiples of PostgreSQL's default
    /// `work_mem` of 4 MB (`hnsw.scan_mem_multiplier`).
    pub scan_mem_multiplier: f64,
}

impl HnswSearch {
    /// Validated settings, with PostgreSQL's GUC out-of-range message (22023).
    pub fn new(
        ef_search: usize,
        iterative_scan: IterativeScan,
        max_scan_tuples: usize,
        scan_mem_multiplier: f64,
    ) -> Result<Self> {
        check_int_guc("hnsw.ef_search", ef_search, EF_SEARCH_RANGE)?;
        check_int_guc(
            "hnsw.max_scan_tuples",
            max_scan_tuples,
            MAX_SCAN_TUPLES_RANGE,
        )?;
        let (lo, hi) = SCAN_MEM_MULTIPLIER_RANGE;
        if !(lo..=hi).contains(&scan_mem_multiplier) {
            return Err(AnnError::invalid_parameter(format!(
                "{scan_mem_multiplier} is outside the valid range for parameter \"hnsw.scan_mem_multiplier\" ({lo} .. {hi})"
            )));
        }
        Ok(HnswSearch {
            ef_search,
            iterative_scan,
            max_scan_tuples,
            scan_mem_multiplier,
        })
    }

    /// Most heap entries (8 bytes each) an iterative scan may hold.
    pub(super) fn max_heap_entries(&self) -> usize {
        const WORK_MEM_BYTES: f64 = 4.0 * 1024.0 * 1024.0;
        (self.scan_mem_multiplier * WORK_MEM_BYTES / 8.0) as usize
    }
}

impl Default for HnswSearch {
    /// pgvector's defaults: ef_search 40, iterative scan off, 20,000 tuples,
    /// multiplier 1.
    fn default() -> Self {
        HnswSearch {
            ef_search: 40,
            iterative_scan: IterativeScan::Off,
            max_scan_tuples: 20_000,
            scan_mem_multiplier: 1.0,
        }
    }
}

fn check_int_guc(name: &str, value: usize, (lo, hi): (usize, usize)) -> Result<()> {
    if (lo..=hi).contains(&value) {
        return Ok(());
    }
    Err(AnnError::invalid_parameter(format!(
        "{value} is outside the valid range for parameter \"{name}\" ({lo} .. {hi})"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn build_options_follow_pgvector() {
        assert_eq!(HnswParams::default(), HnswParams::new(16, 64).unwrap());
        let e = HnswParams::new(1, 64).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidParameterValue);
        assert_eq!(e.message, "value 1 out of bounds for option \"m\"");
        assert_eq!(
            e.detail.as_deref(),
            Some("Valid values are between \"2\" and \"100\".")
        );
        let e = HnswParams::new(16, 1001).unwrap_err();
        assert_eq!(
            e.message,
            "value 1001 out of bounds for option \"ef_construction\""
        );
        assert_eq!(
            e.detail.as_deref(),
            Some("Valid values are between \"4\" and \"1000\".")
        );
        let e = HnswParams::new(16, 31).unwrap_err();
        assert_eq!(e.kind.sqlstate(), "22023");
        assert_eq!(
            e.message,
            "ef_construction must be greater than or equal to 2 * m"
        );
        assert!(HnswParams::new(100, 200).is_ok());
    }

    #[test]
    fn search_settings_follow_pgvector_gucs() {
        let d = HnswSearch::default();
        assert_eq!(
            HnswSearch::new(40, IterativeScan::Off, 20_000, 1.0).unwrap(),
            d
        );
        let e = HnswSearch::new(0, IterativeScan::Off, 20_000, 1.0).unwrap_err();
        assert_eq!(e.kind.sqlstate(), "22023");
        assert_eq!(
            e.message,
            "0 is outside the valid range for parameter \"hnsw.ef_search\" (1 .. 1000)"
        );
        let e = HnswSearch::new(40, IterativeScan::Off, 0, 1.0).unwrap_err();
        assert_eq!(
            e.message,
            "0 is outside the valid range for parameter \"hnsw.max_scan_tuples\" (1 .. 2147483647)"
        );
        let e = HnswSearch::new(40, IterativeScan::Off, 10, 0.5).unwrap_err();
        assert_eq!(
            e.message,
            "0.5 is outside the valid range for parameter \"hnsw.scan_mem_multiplier\" (1 .. 1000)"
        );
        assert!(HnswSearch::new(40, IterativeScan::Off, 10, f64::NAN).is_err());
        assert_eq!(d.max_heap_entries(), 524_288);
    }
}
