//! The time index (`.timeindex`): entries `int64 timestamp, int32 relativeOffset`.
//!
//! Entry (T, O) means T is the largest timestamp in the segment up to the batch whose last
//! offset is O; any record with a larger timestamp lies after O. One slot is kept free for
//! the entry written at roll and close, which holds the segment's max timestamp.

use std::path::Path;

use super::index_file::IndexFile;
use crate::error::Result;
use crate::record::NO_TIMESTAMP;

/// Bytes per entry.
pub(crate) const ENTRY_SIZE: usize = 12;

/// The time index of one segment.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    file: IndexFile,
    base_offset: i64,
}

impl TimeIndex {
    pub(crate) fn open(path: &Path, base_offset: i64) -> Result<TimeIndex> {
        Ok(TimeIndex {
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

    /// Kafka's `isFull`: the last slot is reserved for the final entry.
    pub(crate) fn is_full(&self) -> bool {
        self.file.len() + 1 >= self.file.capacity()
    }

    /// Entry `i` as (timestamp, absolute offset).
    #[inline]
    pub(crate) fn entry(&self, i: usize) -> (i64, i64) {
        let e = self.file.entry(i);
        let ts = i64::from_be_bytes(e[0..8].try_into().expect("8 bytes"));
        let rel = u32::from_be_bytes(e[8..12].try_into().expect("4 bytes"));
        (ts, self.base_offset + i64::from(rel))
    }

    /// The last entry, if any.
    pub(crate) fn last(&self) -> Option<(i64, i64)> {
        self.len().checked_sub(1).map(|i| self.entry(i))
    }

    /// Appends (timestamp, offset) if the timestamp is larger than the last entry's and
    /// the offset not smaller, as Kafka's `maybeAppend`. With `final_entry` the reserved
    /// slot may be used.
    pub(crate) fn maybe_push(&mut self, timestamp: i64, offset: i64, final_entry: bool) {
        // An empty index compares as if it held (NO_TIMESTAMP, base), as Kafka's does,
        // so a segment without timestamps gets no entry.
        let (t, o) = self.last().unwrap_or((NO_TIMESTAMP, self.base_offset));
        if timestamp <= t || offset < o {
            return;
        }
        if self.file.len() >= self.file.capacity() || (!final_entry && self.is_full()) {
            return;
        }
        let mut e = [0u8; ENTRY_SIZE];
        e[0..8].copy_from_slice(&timestamp.to_be_bytes());
        e[8..12].copy_from_slice(&((offset - self.base_offset) as u32).to_be_bytes());
        self.file.push(&e);
    }

    /// The entry with the largest timestamp ≤ `timestamp`, if any.
    pub(crate) fn lookup(&self, timestamp: i64) -> Option<(i64, i64)> {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid).0 <= timestamp {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1).map(|i| self.entry(i))
    }

    /// Checks the entries: timestamps and offsets never decreasing, offsets inside
    /// [base, `next_offset`).
    pub(crate) fn check(&self, next_offset: i64) -> std::result::Result<(), String> {
        let mut prev: Option<(i64, i64)> = None;
        for i in 0..self.len() {
            let (ts, off) = self.entry(i);
            if off < self.base_offset || off >= next_offset.max(self.base_offset + 1) {
                return Err(format!("entry {i}: offset {off} outside the segment"));
            }
            if let Some((pts, poff)) = prev
                && (ts < pts || off < poff)
            {
                return Err(format!(
                    "entry {i}: ({ts}, {off}) decreases after ({pts}, {poff})"
                ));
            }
            prev = Some((ts, off));
        }
        Ok(())
    }
}
