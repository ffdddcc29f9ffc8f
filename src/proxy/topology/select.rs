//! Choosing the node a read goes to among those allowed: least outstanding
//! requests relative to weight, ties taken in turn.

/// A node a read may go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Its index in the shard's node list.
    pub node: usize,
    /// Its configured share (> 0).
    pub weight: u32,
    /// Its data-path channels checked out now.
    pub in_flight: usize,
}

/// The candidate with the fewest requests per unit of weight (counting
/// the one about to be sent); among equals, the first at or after
/// `turn` (modulo their number), so equal nodes take turns.
pub fn least_loaded(candidates: &[Candidate], turn: usize) -> Option<Candidate> {
    let n = candidates.len();
    let better = |a: &Candidate, b: &Candidate| {
        // (a.in_flight + 1) / a.weight < (b.in_flight + 1) / b.weight
        (a.in_flight as u128 + 1) * u128::from(b.weight)
            < (b.in_flight as u128 + 1) * u128::from(a.weight)
    };
    (0..n)
        .map(|i| candidates[(turn + i) % n])
        .reduce(|best, c| if better(&c, &best) { c } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(node: usize, weight: u32, in_flight: usize) -> Candidate {
        Candidate {
            node,
            weight,
            in_flight,
        }
    }

    #[test]
    fn fewest_outstanding_per_weight_wins_and_ties_rotate() {
        assert_eq!(least_loaded(&[], 0), None);
        let idle = [c(1, 1, 0), c(2, 1, 0)];
        assert_eq!(least_loaded(&idle, 0).unwrap().node, 1);
        assert_eq!(least_loaded(&idle, 1).unwrap().node, 2);
        assert_eq!(least_loaded(&idle, 2).unwrap().node, 1);
        assert_eq!(least_loaded(&[c(1, 1, 3), c(2, 1, 1)], 0).unwrap().node, 2);
        // Weight 3 takes three times the requests before it loses.
        assert_eq!(least_loaded(&[c(1, 3, 2), c(2, 1, 0)], 0).unwrap().node, 1);
        assert_eq!(least_loaded(&[c(1, 3, 3), c(2, 1, 0)], 0).unwrap().node, 2);
    }
}
