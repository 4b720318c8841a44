//! The hasher of the window operators' key maps.
//!
//! Every event looks its key up once, so the hash is on the hot path. std's default
//! `RandomState` (SipHash-1-3) costs tens of instructions even for a `u64` key; this is the
//! multiply-rotate hash of rustc's `FxHasher`, a few instructions per word. It is not
//! resistant to keys chosen to collide: a stream whose keys an adversary picks could make one
//! key's lookup slow, never wrong.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` keyed by window keys, hashed with [`KeyHasher`].
pub(crate) type KeyMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// FxHash: `h = (h.rotl(5) ^ word) * SEED` per word.
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher {
    hash: u64,
}

impl KeyHasher {
    #[inline]
    fn word(&mut self, w: u64) {
        self.hash = (self.hash.rotate_left(5) ^ w).wrapping_mul(SEED);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(last));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.word(i as u64);
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.word(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.word(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.word(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.word(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // hashbrown takes the top 7 bits as the tag and the low bits as the bucket: fold the
        // well-mixed high half down so both are spread.
        self.hash ^ (self.hash >> 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash<K: Hash>(k: &K) -> u64 {
        BuildHasherDefault::<KeyHasher>::default().hash_one(k)
    }

    #[test]
    fn window_keyhash_spreads_small_keys_and_tells_strings_apart() {
        let mut low = std::collections::HashSet::new();
        for k in 0u64..1_000 {
            low.insert(hash(&k) & 1023);
        }
        assert!(low.len() > 600, "{} distinct low bit patterns", low.len());
        assert_ne!(hash(&"ab"), hash(&"ba"));
        assert_ne!(hash(&("a", 1u32)), hash(&("a", 2u32)));
        let mut m: KeyMap<String, u32> = KeyMap::default();
        m.insert("x".into(), 1);
        assert_eq!(m.get("x"), Some(&1));
    }
}
