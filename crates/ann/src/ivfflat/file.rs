//! Saving and loading an IVFFlat index through [`crate::persist`].
//!
//! ```text
//! payload (little-endian), after persist's header with kind tag 2:
//!   u8    metric (0 L2, 1 inner product, 2 cosine, 3 L1, 4 Hamming, 5 Jaccard)
//!   u64   dim
//!   u32   lists
//!   f32s  centres, lists × dim (u64 length, then values)
//!   lists × u32s  the ids of each list (u64 length, then ids)
//! ```
//!
//! Loading re-checks everything the payload claims (metric, list count
//! range, centre count and finiteness, no id twice), so a damaged file is a
//! [`crate::ErrorKind::DataCorrupted`] error, never a panic or a bad index.

use super::{IvfFlat, IvfParams, MAX_LISTS, MIN_LISTS};
use crate::error::{AnnError, Result};
use crate::kmeans::Geometry;
use crate::persist::{self, PayloadReader, PayloadWriter};
use crate::space::Metric;
use std::path::Path;

/// persist's kind tag for IVFFlat files.
pub const KIND: u32 = 2;

impl IvfFlat {
    /// Writes the index to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut w = PayloadWriter::new();
        w.u8(self.metric.tag());
        w.u64(self.dim as u64);
        w.u32(self.params.lists as u32);
        w.f32s(&self.centres);
        for list in &self.lists {
            w.u32s(list);
        }
        persist::write_file(path, KIND, &w.finish())
    }

    /// Reads an index written by [`IvfFlat::save`], checking its contents.
    pub fn load(path: &Path) -> Result<IvfFlat> {
        let payload = persist::read_file(path, KIND)?;
        decode(&payload).map_err(|e| {
            AnnError::corrupted(format!(
                "index file \"{}\" is damaged: {}",
                path.display(),
                e.message
            ))
        })
    }
}

fn decode(payload: &[u8]) -> Result<IvfFlat> {
    let bad = |why: &str| AnnError::corrupted(why.to_string());
    let mut r = PayloadReader::new(payload);
    let metric = Metric::from_tag(r.u8()?).ok_or_else(|| bad("unknown metric"))?;
    Geometry::of(metric).map_err(|_| bad("metric has no ivfflat operator class"))?;
    let dim = usize::try_from(r.u64()?).map_err(|_| bad("dimension out of range"))?;
    let lists = r.u32()? as usize;
    if dim == 0 || !(MIN_LISTS..=MAX_LISTS).contains(&lists) {
        return Err(bad("dimension or list count out of range"));
    }
    let centres = r.f32s()?;
    if Some(centres.len()) != lists.checked_mul(dim) {
        return Err(bad("centre count does not match lists × dimensions"));
    }
    if centres.iter().any(|c| !c.is_finite()) {
        return Err(bad("a centre is not finite"));
    }
    let lists_ids = (0..lists).map(|_| r.u32s()).collect::<Result<Vec<_>>>()?;
    r.finish()?;
    let mut all: Vec<u32> = lists_ids.iter().flatten().copied().collect();
    all.sort_unstable();
    if all.windows(2).any(|w| w[0] == w[1]) {
        return Err(bad("an id is listed twice"));
    }
    Ok(IvfFlat::from_parts(
        IvfParams { lists },
        metric,
        dim,
        centres,
        lists_ids,
    ))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{build, dataset, DIM};
    use super::*;
    use crate::error::ErrorKind;
    use crate::space::DenseSpace;
    use crate::test_file::TestFile;
    use crate::{IterativeScan, IvfSearch};

    #[test]
    fn round_trip_gives_identical_results() {
        let (data, queries) = dataset();
        let space = DenseSpace::new(&data, DIM, Metric::Cosine);
        let ids: Vec<u32> = (0..10_000).step_by(3).collect();
        let index = build(&space, &ids, 30);
        let file = TestFile::new("ann-ivf-round", "ivf.idx");
        let path = file.path.clone();
        index.save(&path).unwrap();
        let loaded = IvfFlat::load(&path).unwrap();
        assert_eq!(loaded, index);
        let opts = IvfSearch::new(3, IterativeScan::RelaxedOrder, 10).unwrap();
        let even = |id: u32| id.is_multiple_of(2);
        for q in &queries {
            let q = space.query(q);
            assert_eq!(
                loaded.search(&space, &q, 10, &opts, Some(&even)),
                index.search(&space, &q, 10, &opts, Some(&even))
            );
        }
    }

    #[test]
    fn damaged_or_truncated_files_are_errors() {
        let (data, _) = dataset();
        let space = DenseSpace::new(&data, DIM, Metric::L2);
        let ids: Vec<u32> = (0..500).collect();
        let file = TestFile::new("ann-ivf-damaged", "ivf.idx");
        let path = file.path.clone();
        build(&space, &ids, 4).save(&path).unwrap();
        let good = std::fs::read(&path).unwrap();
        for cut in [0, 20, good.len() / 2, good.len() - 1] {
            std::fs::write(&path, &good[..cut]).unwrap();
            assert_eq!(
                IvfFlat::load(&path).unwrap_err().kind,
                ErrorKind::DataCorrupted
            );
        }
        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert_eq!(
            IvfFlat::load(&path).unwrap_err().kind,
            ErrorKind::DataCorrupted
        );

        // Payloads with valid checksums but impossible contents.
        type WritePayload = fn(&mut PayloadWriter);
        let cases: [(&str, WritePayload); 5] = [
            ("metric", |w| {
                w.u8(9);
            }),
            ("L1", |w| {
                w.u8(3);
            }),
            ("lists", |w| {
                w.u8(0);
                w.u64(2);
                w.u32(0);
                w.f32s(&[]);
            }),
            ("centres", |w| {
                w.u8(0);
                w.u64(2);
                w.u32(1);
                w.f32s(&[1.0]);
                w.u32s(&[]);
            }),
            ("twice", |w| {
                w.u8(0);
                w.u64(1);
                w.u32(2);
                w.f32s(&[0.0, 1.0]);
                w.u32s(&[4]);
                w.u32s(&[4]);
            }),
        ];
        for (name, write) in cases {
            let mut w = PayloadWriter::new();
            write(&mut w);
            persist::write_file(&path, KIND, &w.finish()).unwrap();
            let err = IvfFlat::load(&path).unwrap_err();
            assert_eq!(err.kind, ErrorKind::DataCorrupted, "{name}: {err}");
        }
        std::fs::remove_file(&path).unwrap();
        assert_eq!(IvfFlat::load(&path).unwrap_err().kind, ErrorKind::Io);
    }
}
