//! Hash partitioning: a shard-key value hashes into one of [`SLOTS`]
//! slots, and the [`SlotMap`] assigns slots to shards.
//!
//! The hash must give the same slot for equal values however a client
//! spelled them (`42`, `'42'`, `042` for an integer key; binary or text
//! parameters) and across restarts and releases, so it is written out
//! here rather than taken from `std` (whose hasher may change):
//!
//! 1. the value's canonical text ([`canonical_key`]): every spelling
//!    PostgreSQL accepts for an integer, a number or a UUID becomes one
//!    text; anything else is its text as is;
//! 2. FNV-1a 64 over the UTF-8 bytes of that text;
//! 3. the slot is the hash modulo 4096.

pub use super::canonical_key::canonical_key;
use super::config::{ProxyConfig, SlotRange};

/// Number of hash slots.
pub const SLOTS: usize = 4096;

/// FNV-1a 64.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The slot of a key value given as text.
pub fn slot_of(text: &str) -> usize {
    (fnv1a(canonical_key(text).as_bytes()) % SLOTS as u64) as usize
}

/// Which shard owns each slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMap {
    owner: Vec<usize>,
    shards: usize,
}

impl SlotMap {
    /// Contiguous, even ranges over `shards` shards.
    pub fn even(shards: usize) -> Self {
        let n = shards.max(1);
        SlotMap {
            owner: (0..SLOTS).map(|s| s * n / SLOTS).collect(),
            shards: n,
        }
    }

    /// The map a validated configuration describes.
    pub fn from_config(config: &ProxyConfig) -> Self {
        let Some(ranges) = &config.slots else {
            return Self::even(config.shards.len());
        };
        let mut map = Self::even(config.shards.len());
        for (i, shard) in config.shards.iter().enumerate() {
            for SlotRange(a, b) in ranges.get(&shard.name).into_iter().flatten() {
                for slot in *a..=*b {
                    map.owner[usize::from(slot)] = i;
                }
            }
        }
        map
    }

    /// The shard that owns a key value.
    pub fn shard_of(&self, key_text: &str) -> usize {
        self.owner[slot_of(key_text)]
    }

    /// The shard that owns `slot`.
    pub fn owner_of(&self, slot: usize) -> usize {
        self.owner[slot]
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Slots owned by shard `i`.
    pub fn slots_of(&self, i: usize) -> usize {
        self.owner.iter().filter(|&&o| o == i).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_meet_whatever_the_spelling() {
        assert_eq!(slot_of("42"), slot_of(" +042"));
        assert_eq!(
            slot_of("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"),
            slot_of("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
        );
        assert_ne!(slot_of("abc"), slot_of(" abc"));
    }

    #[test]
    fn the_hash_is_fixed() {
        // Pinned values: changing them moves every stored row.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(slot_of("1"), (fnv1a(b"1") % 4096) as usize);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn even_map_splits_evenly() {
        let m = SlotMap::even(3);
        assert_eq!(m.shards(), 3);
        assert_eq!(m.slots_of(0) + m.slots_of(1) + m.slots_of(2), SLOTS);
        assert!(m.slots_of(0).abs_diff(m.slots_of(2)) <= 1);
        let spread: std::collections::HashSet<_> =
            (0..100).map(|k| m.shard_of(&k.to_string())).collect();
        assert_eq!(spread.len(), 3);
    }
}
