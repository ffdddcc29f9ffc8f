//! Candidates packed into one `u64`: an order-preserving key of the f32
//! distance in the high half, the id in the low half.
//!
//! Heaps of plain integers compare with one instruction, ties break by the
//! lower id (so results are repeatable), and NaN distances (cosine of a zero
//! vector) get the largest key: they sort last and can never corrupt a heap.

/// A (distance, id) pair as one sortable integer.
pub(super) type Scored = u64;

/// Packs `distance` and `id`; smaller distances give smaller keys.
#[inline]
pub(super) fn scored(distance: f32, id: u32) -> Scored {
    let key = if distance.is_nan() {
        u32::MAX
    } else {
        let bits = distance.to_bits();
        if bits >> 31 == 1 {
            !bits
        } else {
            bits | 0x8000_0000
        }
    };
    ((key as u64) << 32) | id as u64
}

/// The id of a packed candidate.
#[inline]
pub(super) fn id_of(s: Scored) -> u32 {
    s as u32
}

/// The distance of a packed candidate (NaN stays NaN).
#[inline]
pub(super) fn distance_of(s: Scored) -> f32 {
    let key = (s >> 32) as u32;
    if key == u32::MAX {
        f32::NAN
    } else if key >> 31 == 1 {
        f32::from_bits(key & 0x7FFF_FFFF)
    } else {
        f32::from_bits(!key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_like_distances_with_nan_last() {
        let values = [
            f32::NEG_INFINITY,
            -3.5,
            -1e-30,
            -0.0,
            0.0,
            1e-30,
            0.25,
            7.0,
            f32::INFINITY,
            f32::NAN,
        ];
        for w in values.windows(2) {
            assert!(scored(w[0], 9) < scored(w[1], 0), "{} < {}", w[0], w[1]);
        }
        for &v in &values {
            let s = scored(v, 42);
            assert_eq!(id_of(s), 42);
            let back = distance_of(s);
            assert!(back.to_bits() == v.to_bits() || (v.is_nan() && back.is_nan()));
        }
        assert!(scored(1.0, 3) < scored(1.0, 4));
    }
}
