//! Inserting nodes: one at a time after the build, from several threads
//! during it.
//!
//! An insert finds the node's nearest neighbours level by level
//! ([`Layers::search`] with `ef_construction`), keeps some of them chosen by
//! the neighbour-selection heuristic (with [`INSERT_SLACK`]), and links back
//! from each; a full list is re-pruned with the plain heuristic. On level 0
//! the rest of the node's slots are filled with the nearest candidates the
//! heuristic passed over: at once for a single insert, after the last insert
//! for a bulk build (see `fill`). As in hnswlib, each list is read and
//! written under its node's lock, and the entry point sits under its own lock,
//! which an insert whose level tops the graph holds until it is done. The
//! build inserts the first nodes on one thread, so the graph has a shape
//! before threads start meeting in it, then hands out the rest one by one.

use super::fill::{fill_free_slots, PassedOver};
use super::graph::{level_for, Graph, NodeLocks};
use super::layer::{Layers, Limits, NodeProbe, Probe, QueryProbe, Scratch};
use super::order::{id_of, scored, Scored};
use super::params::HnswParams;
use super::{Entry, Hnsw};
use crate::error::Result;
use crate::search::BuildProgress;
use crate::space::{Metric, Space};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Nodes inserted on one thread before the others join.
const SEQUENTIAL_PREFIX: usize = 1_000;
/// How often (in inserts) a thread looks at the cancel flag.
const CANCEL_CHECK_EVERY: usize = 64;
/// Lock stripes used while building.
const BUILD_LOCK_STRIPES: usize = 4_096;
/// Slack of the heuristic when an insert chooses its own neighbours: a
/// candidate is kept unless a kept one is closer to it than `1 /
/// INSERT_SLACK` of its distance to the new node. With the level-0 fill,
/// 1.1 took pypi-minilm-384's recall@10 at ef_search 40 from 0.947 to 0.955
/// (pgvector 0.949–0.950); re-pruning a full list stays strict, as a slack
/// there fills lists sooner and doubled the build's work. Inner-product
/// distances can be negative, so there it is 1.
const INSERT_SLACK: f32 = 1.1;

/// How many of its `limit` level-0 slots an insert's own choice may take
/// (5/8: 20 of 32): the rest stay free for reverse links until the fill,
/// so fewer of them meet a full list (0.955 at ef_search 40 as with all 32,
/// for three quarters of the heuristic's comparisons).
fn own_share(limit: usize) -> usize {
    (limit * 5).div_ceil(8)
}

/// Everything an insert needs, shareable between builder threads.
pub(super) struct Inserter<'a, S: Space> {
    /// Where the vectors are.
    pub space: &'a S,
    /// The graph being grown.
    pub graph: &'a Graph,
    /// Locks around neighbour lists.
    pub locks: &'a NodeLocks,
    /// m and ef_construction.
    pub params: HnswParams,
    /// The entry point and top level.
    pub entry: &'a Mutex<Option<Entry>>,
    /// Where a bulk build notes the level-0 candidates each insert passed
    /// over, for the fill after the last insert; None for single inserts,
    /// which fill their own list at once.
    pub passed_over: Option<&'a PassedOver>,
}

impl<S: Space> Inserter<'_, S> {
    fn layers(&self) -> Layers<'_> {
        Layers {
            graph: self.graph,
            locks: Some(self.locks),
        }
    }

    /// Links node `q` (already added to the graph) into every level it has.
    /// Where the space prepares `q` as a query, the level searches compare
    /// through it, four candidates per pass.
    pub(super) fn insert(&self, q: u32, scratch: &mut Scratch) {
        match self.space.node_query(q) {
            Some(query) => {
                let probe = QueryProbe {
                    space: self.space,
                    query: &query,
                };
                self.insert_with(q, &probe, scratch)
            }
            None => {
                let probe = NodeProbe {
                    space: self.space,
                    node: q,
                };
                self.insert_with(q, &probe, scratch)
            }
        }
    }

    fn insert_with(&self, q: u32, probe: &impl Probe, scratch: &mut Scratch) {
        let Some(level) = self.graph.level(q) else {
            return;
        };
        let mut top = self.entry.lock().unwrap_or_else(|e| e.into_inner());
        let Some(ep) = *top else {
            *top = Some(Entry { node: q, level });
            return;
        };
        // Only an insert that raises the top level keeps the entry lock.
        let raising = if level > ep.level {
            Some(top)
        } else {
            drop(top);
            None
        };
        let layers = self.layers();
        let mut limits = Limits::unbounded();
        let mut cur = scored(probe.dist(ep.node), ep.node);
        if ep.level > level {
            cur = layers.descend(probe, cur, ep.level, level + 1, &mut limits, scratch);
        }
        for l in (0..=level.min(ep.level)).rev() {
            scratch.visited.begin(self.graph.capacity());
            scratch.visited.insert(q);
            scratch.visited.insert(id_of(cur));
            let found = layers.search(
                probe,
                &|_| true,
                cur,
                l,
                self.params.ef_construction,
                &mut limits,
                scratch,
            );
            let Some(&nearest) = found.first() else {
                continue;
            };
            let limit = self.params.max_links(l as usize);
            let slack = match self.space.metric() {
                Metric::InnerProduct => 1.0,
                _ => INSERT_SLACK,
            };
            let own = if l == 0 { own_share(limit) } else { limit };
            let chosen = select_neighbours(self.space, &found, own, slack);
            let passed = found.iter().filter(|&&s| !chosen.contains(&id_of(s)));
            let mut list = chosen.clone();
            if l == 0 {
                match self.passed_over {
                    Some(p) => p.note(q, passed.copied()),
                    None => list.extend(passed.map(|&s| id_of(s)).take(limit - chosen.len())),
                }
            }
            // Another thread that reached `q` through a level above may
            // already have linked itself into this list: keep those links.
            let mut early = Vec::new();
            {
                let _guard = self.locks.lock(q);
                self.graph.read_links(q, l, &mut early);
                self.graph.write_links(q, l, &list);
            }
            for &e in &chosen {
                self.link(e, q, l);
            }
            for &x in early.iter().filter(|x| !list.contains(x)) {
                self.link(q, x, l);
            }
            cur = nearest;
        }
        if let Some(mut top) = raising {
            *top = Some(Entry { node: q, level });
        }
    }

    /// Adds `q` to `e`'s list on `level`; a full list is pruned again with
    /// the heuristic over its members and `q`.
    pub(super) fn link(&self, e: u32, q: u32, level: u8) {
        let _guard = self.locks.lock(e);
        let mut links = Vec::with_capacity(self.params.max_links(level as usize) + 1);
        self.graph.read_links(e, level, &mut links);
        if links.contains(&q) || self.graph.push_link(e, level, q) {
            return;
        }
        links.push(q);
        let kept = prune(self.space, e, &links, self.params.max_links(level as usize));
        self.graph.write_links(e, level, &kept);
    }
}

/// Chooses at most `limit` neighbours for stored node `base` among `ids`
/// with [`select_neighbours`].
pub(super) fn prune<S: Space>(space: &S, base: u32, ids: &[u32], limit: usize) -> Vec<u32> {
    let mut candidates: Vec<Scored> = Vec::with_capacity(ids.len());
    let mut quads = ids.chunks_exact(4);
    for quad in &mut quads {
        let four = [quad[0], quad[1], quad[2], quad[3]];
        let d = space.distance_between_x4(base, four);
        candidates.extend((0..4).map(|i| scored(d[i], four[i])));
    }
    candidates.extend(
        quads
            .remainder()
            .iter()
            .map(|&n| scored(space.distance_between(base, n), n)),
    );
    candidates.sort_unstable();
    select_neighbours(space, &candidates, limit, 1.0)
}

/// The neighbour-selection heuristic (Malkov & Yashunin, Algorithm 4, as
/// hnswlib and pgvector use it): walking `candidates` nearest first, keep one
/// only if it is closer to the base node than to every one kept so far (with
/// `slack`, than `1 / slack` of its distance to each), up to `limit`.
/// Spreads links over directions instead of one dense cluster.
pub(super) fn select_neighbours<S: Space>(
    space: &S,
    candidates: &[Scored],
    limit: usize,
    slack: f32,
) -> Vec<u32> {
    if candidates.len() <= limit {
        return candidates.iter().map(|&c| id_of(c)).collect();
    }
    let mut kept: Vec<u32> = Vec::with_capacity(limit);
    for &c in candidates {
        if kept.len() >= limit {
            break;
        }
        let id = id_of(c);
        let to_base = c >> 32;
        // A kept node closer to the candidate than the base is: the kept
        // ones are compared four per pass (the batch kernels' one pass over
        // the candidate's vector), stopping at the first pass that finds one.
        let dominated = |d: f32| scored(slack * d, 0) >> 32 < to_base;
        let mut quads = kept.chunks_exact(4);
        let diverse = quads.by_ref().all(|quad| {
            let four = [quad[0], quad[1], quad[2], quad[3]];
            !space
                .distance_between_x4(id, four)
                .into_iter()
                .any(dominated)
        }) && !quads
            .remainder()
            .iter()
            .any(|&k| dominated(space.distance_between(id, k)));
        if diverse {
            kept.push(id);
        }
    }
    kept
}

/// Builds an index over `ids` (duplicates count once) with `threads`
/// threads.
pub(super) fn build<S: Space>(
    space: &S,
    ids: &[u32],
    params: HnswParams,
    threads: usize,
    progress: &BuildProgress,
) -> Result<Hnsw> {
    let mut graph = Graph::new(params.m);
    if let Some(&max) = ids.iter().max() {
        graph.reserve_ids(max as usize + 1);
    }
    let mut order = Vec::with_capacity(ids.len());
    for &id in ids {
        if graph.level(id).is_none() {
            graph.add_node(id, level_for(id, params.m));
            order.push(id);
        }
    }
    progress.set_total(order.len() as u64);
    let locks = NodeLocks::new(BUILD_LOCK_STRIPES);
    let entry = Mutex::new(None);
    let passed = PassedOver::new(graph.capacity(), params.max_links(0));
    let inserter = Inserter {
        space,
        graph: &graph,
        locks: &locks,
        params,
        entry: &entry,
        passed_over: Some(&passed),
    };
    let threads = threads.max(1);
    let sequential = if threads == 1 {
        order.len()
    } else {
        order.len().min(SEQUENTIAL_PREFIX)
    };
    let mut scratch = Scratch::default();
    for (i, &id) in order[..sequential].iter().enumerate() {
        if i.is_multiple_of(CANCEL_CHECK_EVERY) {
            progress.check()?;
        }
        inserter.insert(id, &mut scratch);
        progress.advance(1);
    }
    let next = AtomicUsize::new(sequential);
    std::thread::scope(|s| {
        for _ in 0..threads.min(order.len() - sequential) {
            s.spawn(|| {
                let mut scratch = Scratch::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= order.len()
                        || (i.is_multiple_of(CANCEL_CHECK_EVERY) && progress.is_canceled())
                    {
                        break;
                    }
                    inserter.insert(order[i], &mut scratch);
                    progress.advance(1);
                }
            });
        }
    });
    progress.check()?;
    fill_free_slots(&graph, &order, &passed, threads);
    let entry = entry.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(Hnsw {
        graph,
        params,
        entry,
        len: order.len(),
    })
}
