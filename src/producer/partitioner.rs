//! Choosing a partition, exactly as Kafka's Java producer does (reference §7.1).

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

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
/// Choosing is one atomic load. The bytes are counted by the partition's queue under the
/// lock it takes anyway to add the record (as Kafka counts them under its deque lock),
/// and the queue that reaches `batch_size` calls [`Sticky::move_on`].
#[derive(Debug)]
pub(crate) struct Sticky {
    /// The sticky partition, or [`UNSET`].
    state: AtomicI64,
    rng: AtomicU64,
}

/// No partition chosen yet.
const UNSET: i64 = -1;

impl Sticky {
    pub(crate) fn new(seed: u64) -> Sticky {
        Sticky {
            state: AtomicI64::new(UNSET),
            rng: AtomicU64::new(seed | 1),
        }
    }

    /// The partition for a keyless record, choosing one when there is none yet (or the
    /// one chosen is out of range).
    #[inline]
    pub(crate) fn current(&self, partitions: i32) -> i32 {
        let cur = self.state.load(Ordering::Acquire);
        if (0..i64::from(partitions)).contains(&cur) {
            return cur as i32;
        }
        self.choose(cur, partitions)
    }

    /// Chooses a partition for `current` when `cur` is none (or out of range).
    #[inline(never)]
    fn choose(&self, cur: i64, partitions: i32) -> i32 {
        let stale = i32::try_from(cur).unwrap_or(-1);
        let new = i64::from(self.pick(partitions, stale));
        match self
            .state
            .compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => new as i32,
            // Another sender chose first; its choice stands (it is in range).
            Err(seen) if (0..i64::from(partitions)).contains(&seen) => seen as i32,
            Err(_) => new as i32,
        }
    }

    /// Whether `partition` is the sticky one.
    pub(crate) fn is_current(&self, partition: i32) -> bool {
        self.state.load(Ordering::Acquire) == i64::from(partition)
    }

    /// `batch_size` bytes went to `partition`: stick to a random other one, unless another
    /// sender already moved on.
    pub(crate) fn move_on(&self, partition: i32, partitions: i32) {
        let next = i64::from(self.pick(partitions, partition));
        let _moved_by_someone_else = self.state.compare_exchange(
            i64::from(partition),
            next,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
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
    fn sticky_moves_on_to_another_partition_once() {
        let s = Sticky::new(42);
        let first = s.current(4);
        assert!((0..4).contains(&first));
        assert_eq!(s.current(4), first);
        assert!(s.is_current(first));
        s.move_on(first, 4);
        let second = s.current(4);
        assert_ne!(second, first);
        assert!((0..4).contains(&second));
        // A second sender reaching batch_size on the old partition does not move it again.
        s.move_on(first, 4);
        assert_eq!(s.current(4), second);
        let one = Sticky::new(7);
        assert_eq!(one.current(1), 0);
        one.move_on(0, 1);
        assert_eq!(one.current(1), 0);
    }
}
