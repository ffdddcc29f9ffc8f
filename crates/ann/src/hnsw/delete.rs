//! Deleting nodes and repairing the graph around them, in the phases
//! pgvector's vacuum uses:
//!
//! 1. Take the deleted nodes out, remembering their neighbour lists.
//! 2. Replace the entry point if it was deleted (a surviving node of the
//!    highest level).
//! 3. Strip deleted ids from every surviving list; each list that lost a
//!    member is rebuilt from its survivors plus the survivors of the deleted
//!    members' lists (two hops, as hnswlib's repair does), with the
//!    selection heuristic. A list left with too few candidates gets a full
//!    neighbour search from the entry point instead, as pgvector does. The
//!    node is linked back from its new neighbours so it stays reachable.
//!
//! Afterwards no list mentions a deleted id, so searches need no tombstone
//! checks, and a deleted id can be inserted again.

use super::build::{prune, Inserter};
use super::graph::NodeLocks;
use super::layer::{Layers, Limits, NodeProbe, Probe, Scratch};
use super::order::{id_of, scored, Scored};
use super::{Entry, Hnsw};
use crate::space::Space;
use std::collections::HashMap;
use std::sync::Mutex;

/// Removes `ids` (unknown ids are ignored) and repairs the graph.
pub(super) fn delete<S: Space>(index: &mut Hnsw, space: &S, ids: &[u32]) {
    let mut doomed = vec![false; index.graph.capacity()];
    let mut saved: HashMap<u32, Vec<Vec<u32>>> = HashMap::new();
    for &id in ids {
        let Some(level) = index.graph.level(id) else {
            continue;
        };
        let lists = (0..=level)
            .map(|l| {
                let mut v = Vec::new();
                index.graph.read_links(id, l, &mut v);
                v
            })
            .collect();
        saved.insert(id, lists);
        doomed[id as usize] = true;
        index.graph.remove_node(id);
    }
    if saved.is_empty() {
        return;
    }
    index.len -= saved.len();
    if index.entry.is_some_and(|e| doomed[e.node as usize]) {
        index.entry = index
            .graph
            .nodes()
            .filter_map(|n| index.graph.level(n).map(|level| Entry { node: n, level }))
            .max_by_key(|e| (e.level, std::cmp::Reverse(e.node)));
    }

    let graph = &index.graph;
    let mut repairs: Vec<(u32, u8, Vec<u32>)> = Vec::new();
    let mut links = Vec::new();
    for x in graph.nodes() {
        let top = graph.level(x).unwrap_or(0);
        for l in 0..=top {
            links.clear();
            graph.read_links(x, l, &mut links);
            if !links.iter().any(|&n| doomed[n as usize]) {
                continue;
            }
            let kept: Vec<u32> = links
                .iter()
                .copied()
                .filter(|&n| !doomed[n as usize])
                .collect();
            graph.write_links(x, l, &kept);
            let mut candidates = kept;
            for &d in links.iter().filter(|&&n| doomed[n as usize]) {
                let two_hop = saved[&d].get(l as usize).map_or(&[][..], |v| v);
                for &n in two_hop {
                    if n != x && !doomed[n as usize] && !candidates.contains(&n) {
                        candidates.push(n);
                    }
                }
            }
            repairs.push((x, l, candidates));
        }
    }

    let locks = NodeLocks::new(1);
    let entry = Mutex::new(index.entry);
    let inserter = Inserter {
        space,
        graph,
        locks: &locks,
        params: index.params,
        entry: &entry,
        passed_over: None,
    };
    let mut scratch = Scratch::default();
    for (x, l, mut candidates) in repairs {
        let limit = index.params.max_links(l as usize);
        if candidates.len() < index.params.m {
            if let Some(e) = index.entry {
                for s in search_from_entry(&inserter, e, x, l, &mut scratch) {
                    if !candidates.contains(&id_of(s)) {
                        candidates.push(id_of(s));
                    }
                }
            }
        }
        let chosen = prune(space, x, &candidates, limit);
        graph.write_links(x, l, &chosen);
        for &n in &chosen {
            if graph.level(n).is_some_and(|nl| nl >= l) {
                inserter.link(n, x, l);
            }
        }
    }
}

/// Nearest nodes to stored node `x` on `level`, found by descending from
/// the entry point (`x` itself excluded).
fn search_from_entry<S: Space>(
    inserter: &Inserter<'_, S>,
    entry: Entry,
    x: u32,
    level: u8,
    scratch: &mut Scratch,
) -> Vec<Scored> {
    let space = inserter.space;
    let probe = NodeProbe { space, node: x };
    let layers = Layers {
        graph: inserter.graph,
        locks: None,
    };
    let mut limits = Limits::unbounded();
    let mut cur = scored(probe.dist(entry.node), entry.node);
    if entry.level > level {
        cur = layers.descend(&probe, cur, entry.level, level + 1, &mut limits, scratch);
    }
    if entry.level < level {
        return Vec::new();
    }
    scratch.visited.begin(inserter.graph.capacity());
    scratch.visited.insert(x);
    scratch.visited.insert(id_of(cur));
    let found = layers.search(
        &probe,
        &|_| true,
        cur,
        level,
        inserter.params.ef_construction,
        &mut limits,
        scratch,
    );
    found.into_iter().filter(|&s| id_of(s) != x).collect()
}

#[cfg(test)]
mod tests {
    use super::super::testdata::{ids, mean_recall, rows_and_queries};
    use super::super::{HnswParams, HnswSearch};
    use super::*;
    use crate::search::BuildProgress;
    use crate::space::{DenseSpace, Metric};

    const N: usize = 3_000;
    const DIM: usize = 16;

    #[test]
    fn deleted_rows_never_return_and_recall_holds() {
        let (data, queries) = rows_and_queries(N, 100, DIM, 21);
        let space = DenseSpace::new(&data, DIM, Metric::L2);
        let mut index = Hnsw::build(
            &space,
            &ids(N),
            HnswParams::default(),
            2,
            &BuildProgress::new(),
        )
        .unwrap();
        let entry = index.entry.unwrap().node;
        let mut gone: Vec<u32> = ids(N).into_iter().filter(|i| i % 10 < 3).collect();
        gone.push(entry);
        index.delete(&space, &gone);
        assert_ne!(index.entry.unwrap().node, entry, "entry point replaced");
        let live: Vec<u32> = ids(N)
            .into_iter()
            .filter(|&i| i % 10 >= 3 && i != entry)
            .collect();
        assert_eq!(index.len(), live.len());
        let opts = HnswSearch::default();
        for q in queries.chunks_exact(DIM) {
            let rows = index.search(&space, &space.query(q), 10, &opts, None);
            assert!(rows.iter().all(|n| live.contains(&n.id)));
        }
        let r = mean_recall(&index, &space, &queries, &live, 10, &opts);
        assert!(r >= 0.95, "recall after deleting 30%: {r}");

        index.insert(&space, 0);
        let q = space.query(space.vector(0));
        assert_eq!(index.search(&space, &q, 1, &opts, None)[0].id, 0);
        assert_eq!(index.len(), live.len() + 1);
    }

    #[test]
    fn deleting_everything_empties_the_index_and_it_can_grow_again() {
        let (data, _) = rows_and_queries(300, 0, DIM, 22);
        let space = DenseSpace::new(&data, DIM, Metric::L2);
        let mut index = Hnsw::build(
            &space,
            &ids(300),
            HnswParams::default(),
            1,
            &BuildProgress::new(),
        )
        .unwrap();
        index.delete(&space, &ids(300));
        index.delete(&space, &[5, 1_000_000]);
        assert!(index.is_empty());
        assert_eq!(index.entry, None);
        let q = space.query(space.vector(7));
        assert!(index
            .search(&space, &q, 3, &HnswSearch::default(), None)
            .is_empty());
        for id in [7, 8, 9] {
            index.insert(&space, id);
        }
        let ids: Vec<u32> = index
            .search(&space, &q, 3, &HnswSearch::default(), None)
            .iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(ids[0], 7);
        assert_eq!(ids.len(), 3);
    }
}
