//! Choosing a partition, exactly as Kafka's Java producer does (reference §7.1).

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};

/// Java's `Utils.murmur2`: the hash Kafka's default partitioner applies to key bytes.
///
/// Words are read little-endian and all arithmetic wraps at 32 bits, as in Java.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        let mut k = u32::from_le_bytes(w.try_into().expect("4 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = words.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner gives a key: `(murmur2 & 0x7fffffff) % n`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions
}

/// Chooses the partition of a record that names none.
///
/// Kafka name: `partitioner.class`. Return a value in `0..partitions`; anything else
/// fails the send with [`Error::UnknownPartition`](crate::Error::UnknownPartition).
pub trait Partitioner: Send + Sync + Debug {
    /// The partition for a record of `topic` with this key and value.
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partitions: i32,
    ) -> i32;
}

/// The keyless path of Kafka's built-in partitioner (KIP-794): one "sticky" partition per
/// topic, switched for a random other one after `batch_size` bytes went to it.
///
/// The partition and the bytes sent to it share one atomic word (partition in the high
/// 32 bits, bytes in the low 32), so a send costs one compare-and-swap, not a lock.
#[derive(Debug)]
pub(crate) struct Sticky {
    state: AtomicU64,
    rng: AtomicU64,
}

/// No partition chosen yet.
const UNSET: u64 = u64::MAX;

impl Sticky {
    pub(crate) fn new(seed: u64) -> Sticky {
        Sticky {
            state: AtomicU64::new(UNSET),
            rng: AtomicU64::new(seed | 1),
        }
    }

    /// The partition for a keyless record of `size` bytes; switches after `batch_size`.
    pub(crate) fn next(&self, partitions: i32, size: usize, batch_size: usize) -> i32 {
        let size = size.min(u32::MAX as usize) as u64;
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            let (partition, bytes) = ((cur >> 32) as i32, cur & 0xffff_ffff);
            let stale = cur == UNSET || partition >= partitions || bytes >= batch_size as u64;
            let (partition, bytes) = if stale {
                (
                    self.pick(partitions, if cur == UNSET { -1 } else { partition }),
                    0,
                )
            } else {
                (partition, bytes)
            };
            let new = ((partition as u64) << 32) | (bytes + size).min(0xffff_ffff);
            match self
                .state
                .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return partition,
                Err(seen) => cur = seen,
            }
        }
    }

    /// A random partition, different from `current` when there is a choice.
    fn pick(&self, partitions: i32, current: i32) -> i32 {
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        if partitions <= 1 || !(0..partitions).contains(&current) {
            return (x % partitions.max(1) as u64) as i32;
        }
        let other = (x % (partitions as u64 - 1)) as i32;
        if other >= current { other + 1 } else { other }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn javas_murmur2_vectors() {
        let vectors: [(&str, i32); 7] = [
            ("", 275_646_681),
            ("a", -1_563_381_124),
            ("ab", 316_155_434),
            ("abc", 479_470_107),
            ("abcd", -1_323_649_548),
            ("key-0", 29_210_041),
            ("hello world", 1_221_641_059),
        ];
        for (key, hash) in vectors {
            assert_eq!(murmur2(key.as_bytes()), hash, "{key:?}");
        }
        assert_eq!(partition_for_key(b"key-0", 3), 1);
    }

    #[test]
    fn sticky_switches_after_batch_size_to_another_partition() {
        let s = Sticky::new(42);
        let first = s.next(4, 100, 1000);
        for _ in 0..9 {
            assert_eq!(s.next(4, 100, 1000), first);
        }
        let second = s.next(4, 100, 1000);
        assert_ne!(second, first);
        assert_eq!(Sticky::new(7).next(1, 10, 10), 0);
    }
}
