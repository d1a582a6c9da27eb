//! Memory maps of `.log` files: read-only for sealed segments, read-write for the active
//! one (the writer copies batches into it), handed out to readers as `Bytes` without
//! copying.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use memmap2::{MmapOptions, MmapRaw};

/// A map of a segment's `.log` file, possibly longer than the file (an active segment is
/// mapped up to `segment.bytes` so it never needs remapping as it grows).
#[derive(Debug)]
pub(crate) struct LogMap {
    map: Option<MmapRaw>,
    writable: bool,
    /// How far this map has been faulted in for writing (see [`LogMap::populate`]); a
    /// new map starts at 0.
    populated: AtomicU64,
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
    /// Maps `len` bytes of `file` read-only (0 maps nothing).
    pub(crate) fn new(file: &File, len: usize) -> std::io::Result<LogMap> {
        if len == 0 {
            return Ok(LogMap {
                map: None,
                writable: false,
                populated: AtomicU64::new(0),
            });
        }
        Ok(LogMap {
            map: Some(map_log(file, len, false)?),
            writable: false,
            populated: AtomicU64::new(0),
        })
    }

    /// Maps `len` bytes of `file` (opened for writing) read-write and shared, for the
    /// segment's writer; `len` may exceed the file's size.
    pub(crate) fn writable(file: &File, len: usize) -> std::io::Result<LogMap> {
        Ok(LogMap {
            map: Some(map_log(file, len.max(1), true)?),
            writable: true,
            populated: AtomicU64::new(0),
        })
    }

    /// Mapped length.
    pub(crate) fn len(&self) -> usize {
        self.map.as_ref().map_or(0, MmapRaw::len)
    }

    /// Whether the writer may copy into this map.
    pub(crate) fn is_writable(&self) -> bool {
        self.writable
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

    /// Copies `data` into the map at `pos` (the writer's call).
    ///
    /// The caller is the segment's single writer; `[pos, pos + data.len())` lies past the
    /// published size (no reader looks at it) and inside the file, which the writer has
    /// extended over it beforehand (touching a mapped page beyond the end of the file
    /// raises `SIGBUS`). Panics if the map is read-only or too short: both are bugs.
    pub(crate) fn write(&self, pos: usize, data: &[u8]) {
        let map = self.map.as_ref().filter(|_| self.writable);
        let map = map.expect("write into a read-only segment map");
        assert!(
            pos.checked_add(data.len())
                .is_some_and(|end| end <= map.len()),
            "write {pos}+{} beyond the map of {}",
            data.len(),
            map.len()
        );
        copy_into(map, pos, data);
    }

    /// The end of the range faulted in by [`LogMap::populate`] so far: stores below it
    /// take no page fault (ranges are populated from where the last one ended).
    pub(crate) fn populated(&self) -> u64 {
        self.populated.load(Ordering::Acquire)
    }

    /// Faults `[start, start + len)` in for writing now (`MADV_POPULATE_WRITE`), so the
    /// writer's stores there take no page fault, and moves [`LogMap::populated`] to its
    /// end. An error means a store could have raised `SIGBUS`; kernels before 5.14 lack
    /// the advice (`EINVAL`), and then the pages fault in on first store as usual.
    pub(crate) fn populate(&self, start: usize, len: usize) -> std::io::Result<()> {
        self.advise_populate(start, len)?;
        self.populated
            .fetch_max((start + len) as u64, Ordering::AcqRel);
        Ok(())
    }

    fn advise_populate(&self, start: usize, len: usize) -> std::io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(m) = self.map.as_ref().filter(|_| self.writable)
            && len > 0
            && start.checked_add(len).is_some_and(|end| end <= m.len())
        {
            return match m.advise_range(memmap2::Advice::PopulateWrite, start, len) {
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
                other => other,
            };
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (start, len);
        Ok(())
    }
}

/// Maps `len` bytes of `file`; `len` may exceed the file's current size.
#[allow(unsafe_code)]
fn map_log(file: &File, len: usize, writable: bool) -> std::io::Result<MmapRaw> {
    let mut options = MmapOptions::new();
    options.len(len);
    // `MmapRaw` hands out only a pointer: nothing here makes a Rust reference to the whole
    // map. Readers slice published bytes (`published_range`), which are never modified or
    // truncated while the segment is open; the writer copies only past them
    // (`copy_into`). The only truncations of a `.log` file (recovery, and trimming the
    // preallocated tail when a segment is sealed) cut bytes past the published size.
    // Another process must not write the file: `LogDir` holds the data directory's OS lock.
    if writable {
        options.map_raw(file)
    } else {
        options.map_raw_read_only(file)
    }
}

/// `len` bytes of the map from `start`, as a slice that covers only that range.
#[allow(unsafe_code)]
fn published_range(map: &MmapRaw, start: usize, len: usize) -> &[u8] {
    assert!(start.checked_add(len).is_some_and(|end| end <= map.len()));
    // SAFETY: the range is inside the mapping (checked above), the mapping lives as long
    // as `map`, and the caller only asks for published bytes, which nothing modifies
    // while the segment is open (see `map_log`). Slicing just this range keeps
    // unpublished bytes, which the writer may be changing, out of any Rust reference.
    unsafe { std::slice::from_raw_parts(map.as_ptr().add(start), len) }
}

/// Copies `data` to `pos` in a writable map.
#[allow(unsafe_code)]
fn copy_into(map: &MmapRaw, pos: usize, data: &[u8]) {
    // SAFETY: `LogMap::write` checked that the range lies inside the mapping, which is
    // writable and lives as long as `map`. The range is past the published size, so no
    // reader holds a reference to it, and the partition's single writer (under the log's
    // writer lock) is the only one copying; `data` is a separate buffer, so the ranges do
    // not overlap. The file covers the range (the writer extended it first), so the
    // stores cannot fault past its end.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), map.as_mut_ptr().add(pos), data.len()) }
}
