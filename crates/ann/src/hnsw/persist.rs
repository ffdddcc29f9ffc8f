//! Saving and loading the graph through [`crate::persist`] (kind tag 1).
//!
//! ```text
//! u32   m
//! u32   ef_construction
//! u32   entry node (u32::MAX: empty index)
//! u8    entry level
//! bytes levels        one per id slot: 255 = absent, else the node's level
//! u32s  level0        per id slot: count, then 2m slots
//! u32s  upper         per node with level L > 0, in id order: L blocks of
//!                     (count, m slots)
//! ```
//!
//! Loading reads the arrays as they are (no rebuild) and then checks that
//! every count fits its list, every linked id is a node present on that
//! level, every level is the one the id's level function gives, and the
//! entry point is a node of the top level, so a damaged file can never give
//! a graph that sends a search out of bounds.

use super::graph::{level_for, Graph, ABSENT};
use super::params::HnswParams;
use super::{Entry, Hnsw};
use crate::error::{AnnError, Result};
use crate::persist::{read_file, write_file, PayloadReader, PayloadWriter};
use std::path::Path;

/// The index kind tag of HNSW files.
const KIND: u32 = 1;
const NO_ENTRY: u32 = u32::MAX;

pub(super) fn save(index: &Hnsw, path: &Path) -> Result<()> {
    let mut w = PayloadWriter::new();
    w.u32(index.params.m as u32);
    w.u32(index.params.ef_construction as u32);
    w.u32(index.entry.map_or(NO_ENTRY, |e| e.node));
    w.u8(index.entry.map_or(0, |e| e.level));
    w.bytes(index.graph.level_bytes());
    w.u32s(&index.graph.level0_words());
    w.u32s(&index.graph.upper_words());
    write_file(path, KIND, &w.finish())
}

pub(super) fn load(path: &Path) -> Result<Hnsw> {
    let payload = read_file(path, KIND)?;
    let bad = |why: &str| {
        AnnError::corrupted(format!(
            "index file \"{}\" is damaged: {why}",
            path.display()
        ))
    };
    let mut r = PayloadReader::new(&payload);
    let m = r.u32()? as usize;
    let ef_construction = r.u32()? as usize;
    let params =
        HnswParams::new(m, ef_construction).map_err(|_| bad("impossible build options"))?;
    let entry_node = r.u32()?;
    let entry_level = r.u8()?;
    let levels = r.bytes()?.to_vec();
    let level0 = r.u32s()?;
    let upper = r.u32s()?;
    r.finish()?;
    if levels.len() > u32::MAX as usize {
        return Err(bad("too many id slots"));
    }
    for (id, &l) in levels.iter().enumerate() {
        if l != ABSENT && l != level_for(id as u32, m) {
            return Err(bad("a node has the wrong level"));
        }
    }
    let graph = Graph::from_words(m, levels, level0, upper)
        .ok_or_else(|| bad("graph arrays of inconsistent lengths"))?;
    check_links(&graph, &params).map_err(&bad)?;

    let top = graph.nodes().filter_map(|n| graph.level(n)).max();
    let entry = match top {
        None if entry_node == NO_ENTRY => None,
        Some(top) if graph.level(entry_node) == Some(top) && entry_level == top => Some(Entry {
            node: entry_node,
            level: top,
        }),
        _ => return Err(bad("the entry point is not a node of the top level")),
    };
    let len = graph.nodes().count();
    Ok(Hnsw {
        graph,
        params,
        entry,
        len,
    })
}

/// Every list of every node: count within capacity, members present on
/// that level; absent slots have empty level-0 lists.
fn check_links(graph: &Graph, params: &HnswParams) -> std::result::Result<(), &'static str> {
    let mut links = Vec::new();
    for id in 0..graph.capacity() as u32 {
        let Some(level) = graph.level(id) else {
            if graph.link_count(id, 0).0 != 0 {
                return Err("an absent node has neighbours");
            }
            continue;
        };
        for l in 0..=level {
            let (count, capacity) = graph.link_count(id, l);
            if count > capacity || capacity != params.max_links(l as usize) {
                return Err("a neighbour list is longer than its capacity");
            }
            links.clear();
            graph.read_links(id, l, &mut links);
            if links
                .iter()
                .any(|&n| graph.level(n).is_none_or(|nl| nl < l))
            {
                return Err("a neighbour list names a node that is not there");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testdata::{ids, rows_and_queries};
    use super::super::HnswSearch;
    use super::*;
    use crate::error::ErrorKind;
    use crate::search::BuildProgress;
    use crate::space::{DenseSpace, Metric};
    use crate::test_file::TestFile;

    const DIM: usize = 8;

    fn small() -> (Vec<f32>, Vec<f32>) {
        rows_and_queries(500, 10, DIM, 31)
    }

    #[test]
    fn round_trip_gives_identical_results() {
        let (data, queries) = small();
        let space = DenseSpace::new(&data, DIM, Metric::Cosine);
        let mut index = Hnsw::build(
            &space,
            &ids(500),
            HnswParams::new(8, 40).unwrap(),
            2,
            &BuildProgress::new(),
        )
        .unwrap();
        index.delete(&space, &[1, 2, 3]);
        let file = TestFile::new("ann-hnsw-round", "index.hnsw");
        let path = file.path.clone();
        index.save(&path).unwrap();
        let back = Hnsw::load(&path).unwrap();
        assert_eq!(back.len(), index.len());
        assert_eq!(back.params(), index.params());
        assert_eq!(back.entry, index.entry);
        for q in queries.chunks_exact(DIM) {
            let q = space.query(q);
            let opts = HnswSearch::default();
            assert_eq!(
                back.search(&space, &q, 10, &opts, None),
                index.search(&space, &q, 10, &opts, None)
            );
        }
    }

    #[test]
    fn damaged_files_are_errors() {
        let (data, _) = small();
        let space = DenseSpace::new(&data, DIM, Metric::L2);
        let index = Hnsw::build(
            &space,
            &ids(500),
            HnswParams::new(8, 40).unwrap(),
            1,
            &BuildProgress::new(),
        )
        .unwrap();
        let file = TestFile::new("ann-hnsw-damaged", "index.hnsw");
        let path = file.path.clone();
        index.save(&path).unwrap();
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, &good[..good.len() - 9]).unwrap();
        assert_eq!(
            Hnsw::load(&path).unwrap_err().kind,
            ErrorKind::DataCorrupted
        );

        // Checksums intact, contents wrong: the loader's own checks catch it.
        let payload = {
            std::fs::write(&path, &good).unwrap();
            read_file(&path, KIND).unwrap()
        };
        let levels_at = 4 + 4 + 4 + 1 + 8;
        let level0_at = levels_at + 500 + 8;
        let node = 10usize;
        let word = move |w: usize| level0_at + 4 * (node * 17 + w);
        type Damage = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(&str, Damage)> = vec![
            (
                "link out of range",
                Box::new(move |p: &mut Vec<u8>| {
                    p[word(1)..word(1) + 4].copy_from_slice(&9_999u32.to_le_bytes())
                }),
            ),
            (
                "count too large",
                Box::new(move |p: &mut Vec<u8>| {
                    p[word(0)..word(0) + 4].copy_from_slice(&17u32.to_le_bytes())
                }),
            ),
            (
                "bad m",
                Box::new(|p: &mut Vec<u8>| p[0..4].copy_from_slice(&1u32.to_le_bytes())),
            ),
            (
                "bad entry",
                Box::new(|p: &mut Vec<u8>| p[8..12].copy_from_slice(&7_777u32.to_le_bytes())),
            ),
            (
                "bad level",
                Box::new(move |p: &mut Vec<u8>| p[levels_at + node] = 9),
            ),
            (
                "absent linked node",
                Box::new(move |p: &mut Vec<u8>| {
                    let target = u32::from_le_bytes(p[word(1)..word(1) + 4].try_into().unwrap());
                    p[levels_at + target as usize] = ABSENT;
                }),
            ),
        ];
        for (what, damage) in cases {
            let mut p = payload.clone();
            damage(&mut p);
            write_file(&path, KIND, &p).unwrap();
            let err = Hnsw::load(&path).unwrap_err();
            assert_eq!(err.kind, ErrorKind::DataCorrupted, "{what}: {err}");
        }
    }
}
