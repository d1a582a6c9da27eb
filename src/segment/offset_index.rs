//! The offset index (`.index`): sparse entries `int32 relativeOffset, int32 position`.
//!
//! Entry (k, p) promises that the batch holding offset `base + k` starts at or after byte
//! `p`. Lookups binary-search the largest key ≤ the target and scan the log forward from
//! its position.

use std::path::Path;

use super::index_file::IndexFile;
use crate::error::Result;

/// Bytes per entry.
pub(crate) const ENTRY_SIZE: usize = 8;

/// The offset index of one segment.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    file: IndexFile,
    base_offset: i64,
}

impl OffsetIndex {
    pub(crate) fn open(path: &Path, base_offset: i64) -> Result<OffsetIndex> {
        Ok(OffsetIndex {
            file: IndexFile::open(path, ENTRY_SIZE)?,
            base_offset,
        })
    }

    pub(crate) fn file(&self) -> &IndexFile {
        &self.file
    }

    pub(crate) fn file_mut(&mut self) -> &mut IndexFile {
        &mut self.file
    }

    pub(crate) fn len(&self) -> usize {
        self.file.len()
    }

    /// Whether no entry can be added.
    pub(crate) fn is_full(&self) -> bool {
        self.file.len() >= self.file.capacity()
    }

    /// Entry `i` as (absolute offset, position).
    #[inline]
    pub(crate) fn entry(&self, i: usize) -> (i64, u32) {
        let e = self.file.entry(i);
        let rel = u32::from_be_bytes(e[0..4].try_into().expect("4 bytes"));
        let pos = u32::from_be_bytes(e[4..8].try_into().expect("4 bytes"));
        (self.base_offset + i64::from(rel), pos)
    }

    /// The last entry, if any.
    pub(crate) fn last(&self) -> Option<(i64, u32)> {
        self.len().checked_sub(1).map(|i| self.entry(i))
    }

    /// Appends `(offset, position)`. The caller keeps keys increasing and checked
    /// `!is_full()` and that `offset - base` fits in 31 bits.
    pub(crate) fn push(&mut self, offset: i64, position: u32) {
        let rel = (offset - self.base_offset) as u32;
        let mut e = [0u8; ENTRY_SIZE];
        e[0..4].copy_from_slice(&rel.to_be_bytes());
        e[4..8].copy_from_slice(&position.to_be_bytes());
        self.file.push(&e);
    }

    /// The position to start scanning from for `offset`: the entry with the largest key
    /// ≤ `offset`, or the segment start.
    pub(crate) fn lookup(&self, offset: i64) -> (i64, u32) {
        let (mut lo, mut hi) = (0usize, self.len());
        // Invariant: entries [0, lo) have key <= offset, entries [hi, len) have key > offset.
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid).0 <= offset {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        match lo.checked_sub(1) {
            Some(i) => self.entry(i),
            None => (self.base_offset, 0),
        }
    }

    /// Checks the entries against a log of `log_size` bytes: keys strictly increasing and
    /// above the base (entry 0 may equal it), positions increasing and inside the log.
    pub(crate) fn check(&self, log_size: u64) -> std::result::Result<(), String> {
        let mut prev: Option<(i64, u32)> = None;
        for i in 0..self.len() {
            let (off, pos) = self.entry(i);
            if off < self.base_offset || off - self.base_offset > i64::from(i32::MAX) {
                return Err(format!("entry {i}: offset {off} outside the segment"));
            }
            if u64::from(pos) >= log_size.max(1) {
                return Err(format!(
                    "entry {i}: position {pos} beyond the log size {log_size}"
                ));
            }
            if let Some((poff, ppos)) = prev
                && (off <= poff || pos <= ppos)
            {
                return Err(format!(
                    "entry {i}: ({off}, {pos}) does not increase after ({poff}, {ppos})"
                ));
            }
            prev = Some((off, pos));
        }
        Ok(())
    }
}
