//! A value alone on its cache lines.
//!
//! A writer and its readers run on different CPUs. When a field that one side writes
//! shares a cache line with a field that the other side writes (a lock word taken by
//! readers, say), every write takes the line away from the other CPU, and its next access
//! waits for the line to come back: on this kind of machine a few hundred nanoseconds each
//! time, several times per append. Fields are grouped by who writes them, and each group
//! that is written while others read it is wrapped in [`Padded`].
//!
//! 128 bytes, not 64: x86's spatial prefetcher pulls cache lines in pairs, and recent ARM
//! cores have 128-byte lines. (The same choice as `crossbeam_utils::CachePadded`, whose
//! crate partlog does not otherwise need.)

use std::ops::{Deref, DerefMut};

/// `T`, aligned to and padded out to 128 bytes, so nothing else shares its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(T);

impl<T> Padded<T> {
    pub(crate) const fn new(value: T) -> Padded<T> {
        Padded(value)
    }
}

impl<T> Deref for Padded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Padded<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Padded;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Two padded fields side by side never share a 128-byte block.
    #[test]
    fn padded_fields_sit_in_different_blocks() {
        struct Two {
            a: Padded<AtomicU64>,
            b: Padded<AtomicU64>,
        }
        let two = Two {
            a: Padded::new(AtomicU64::new(1)),
            b: Padded::new(AtomicU64::new(2)),
        };
        let (a, b) = (&*two.a as *const _ as usize, &*two.b as *const _ as usize);
        assert_eq!(a % 128, 0);
        assert_eq!(b % 128, 0);
        assert_eq!(a.abs_diff(b), 128);
        assert_eq!(
            two.a.load(Ordering::Relaxed) + two.b.load(Ordering::Relaxed),
            3
        );
        assert_eq!(std::mem::size_of::<Padded<u8>>(), 128);
    }
}
