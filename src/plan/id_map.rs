//! Hash maps keyed by shot ids and file names, with a fast unkeyed hash (FxHash, finished with
//! a folded multiply).
//!
//! Linking a 100,000-shot plan fills several id maps; std's SipHash cost a few percent of the
//! whole plan. Its protection against chosen-key flooding buys nothing here: the keys come from
//! the user's own manifest, planned on the user's own machine.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`FxHasher`].
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// An empty [`IdMap`] with room for `n` entries.
pub fn with_capacity<K, V>(n: usize) -> IdMap<K, V> {
    IdMap::with_capacity_and_hasher(n, BuildHasherDefault::default())
}

/// The Firefox/rustc hash: rotate, xor a word, multiply.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // A folded multiply, so every output bit depends on every input bit: hashbrown picks
        // buckets with the low bits and tags with the high ones.
        let full = u128::from(self.0) * u128::from(K);
        (full as u64) ^ ((full >> 64) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_it_holds_and_spreads_similar_ids() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("teaser-SKU{i:06}")).collect();
        let mut map = with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            assert!(map.insert(id.as_str(), i).is_none());
        }
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(map.get(id.as_str()), Some(&i));
        }
        assert_eq!(map.get("teaser-SKU010000"), None);
        let buckets: std::collections::HashSet<u64> = ids
            .iter()
            .map(|id| {
                let mut h = FxHasher::default();
                h.write(id.as_bytes());
                h.finish() & 0xffff
            })
            .collect();
        assert!(buckets.len() > 8_000, "{} distinct low bits", buckets.len());
    }
}
