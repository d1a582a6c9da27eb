//! Read-only memory maps of `.log` files, handed out as `Bytes` without copying.

use std::fs::File;
use std::sync::Arc;

use bytes::Bytes;
use memmap2::{Mmap, MmapOptions};

/// A read-only map of a segment's `.log` file, possibly longer than the file (an active
/// segment is mapped up to `segment.bytes` so it never needs remapping as it grows).
#[derive(Debug)]
pub(crate) struct LogMap {
    map: Option<Mmap>,
}

/// A range of a [`LogMap`] that owns a reference to it, so `Bytes` can point into the map.
struct MapRange {
    map: Arc<LogMap>,
    start: usize,
    len: usize,
}

impl AsRef<[u8]> for MapRange {
    fn as_ref(&self) -> &[u8] {
        self.map.range(self.start, self.len)
    }
}

impl LogMap {
    /// Maps `len` bytes of `file` (0 maps nothing).
    pub(crate) fn new(file: &File, len: usize) -> std::io::Result<LogMap> {
        if len == 0 {
            return Ok(LogMap { map: None });
        }
        Ok(LogMap {
            map: Some(map_log(file, len)?),
        })
    }

    /// Mapped length.
    pub(crate) fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }

    /// `[start, start + len)` of the map as `Bytes`, sharing the map. The caller passes a
    /// range of published bytes: below the segment's size, which only grows.
    pub(crate) fn bytes(self: &Arc<Self>, start: usize, len: usize) -> Bytes {
        if len == 0 {
            return Bytes::new();
        }
        assert!(
            start + len <= self.len(),
            "range {start}+{len} beyond the map"
        );
        Bytes::from_owner(MapRange {
            map: self.clone(),
            start,
            len,
        })
    }

    fn range(&self, start: usize, len: usize) -> &[u8] {
        match &self.map {
            Some(m) => published_range(m, start, len),
            None => &[],
        }
    }
}

/// Maps `len` bytes of `file` read-only; `len` may exceed the file's current size.
#[allow(unsafe_code)]
fn map_log(file: &File, len: usize) -> std::io::Result<Mmap> {
    // SAFETY: the map is read through `published_range` only, over bytes below the
    // segment's published size. Those bytes are never modified or truncated while the
    // segment is open: appends write after them through the file (`write`/`writev`), and the only truncation of
    // a `.log` file (recovery) happens before its segment is mapped for readers. Another
    // process must not write the file: `LogDir` holds the data directory's OS lock.
    unsafe { MmapOptions::new().len(len).map(file) }
}

/// `len` bytes of the map from `start`, as a slice that covers only that range.
#[allow(unsafe_code)]
fn published_range(map: &Mmap, start: usize, len: usize) -> &[u8] {
    assert!(start.checked_add(len).is_some_and(|end| end <= map.len()));
    // SAFETY: the range is inside the mapping (checked above), the mapping lives as long
    // as `map`, and the caller only asks for published bytes, which nothing modifies
    // while the segment is open (see `map_log`). Slicing just this range, rather than
    // dereferencing the whole `Mmap`, keeps unpublished bytes, which the writer may be
    // changing through the file, out of any Rust reference.
    unsafe { std::slice::from_raw_parts(map.as_ptr().add(start), len) }
}
