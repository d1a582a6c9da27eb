//! One segment: a `.log` file of batches with its `.index` and `.timeindex`.
//!
//! The segment's writer is the partition's single appender; readers run concurrently.
//! A reader only looks at bytes below `size`, which the writer publishes after the write
//! completes, so it never sees part of a batch. Index entries are added under the index's
//! write lock, lookups take its read lock.

pub(crate) mod cleaned;
mod index_file;
mod map;
mod offset_index;
mod prepare;
mod scan;
mod time_index;

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::error::{DecodeError, Error, IoContext, Result};
use crate::padded::Padded;
use crate::record::{NO_TIMESTAMP, RecordBatch};
use map::LogMap;
pub(crate) use offset_index::OffsetIndex;
use prepare::Job;
pub(crate) use scan::{Scanned, Scanner};
pub(crate) use time_index::TimeIndex;

/// File name of a segment file: the base offset zero-padded to 20 digits, plus `ext`.
pub(crate) fn file_name(base_offset: i64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

/// Parses a segment file name of the form `%020d.<ext>`.
pub(crate) fn parse_file_name(name: &str) -> Option<(i64, &str)> {
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, ext))
}

/// One batch of a run handed to [`Segment::append`].
#[derive(Debug)]
pub(crate) struct PendingBatch<'a> {
    /// The encoded batch, offsets already stamped.
    pub bytes: &'a [u8],
    /// Its last offset.
    pub last_offset: i64,
    /// Its `maxTimestamp`.
    pub max_timestamp: i64,
    /// Whether an index entry (its last offset, its start position) goes in for it.
    pub index_entry: bool,
}

/// Runs shorter than this are copied into the segment's map; longer ones are written with
/// `writev`. A store into a page the map has not touched yet costs a page fault, about
/// three times what `write` pays per page on the measured VM, while a system call costs a
/// few microseconds whatever its size: small appends (a `send_blocking`, a lingered batch)
/// gain from the map, bulk ones from the kernel's write path.
const MAP_STORE_MAX: u64 = 4096;

/// How far ahead of a small run the map is faulted in at once (`MADV_POPULATE_WRITE`),
/// so the small appends that follow take no page fault.
const POPULATE_AHEAD: u64 = 256 * 1024;

/// Smallest and largest step by which an active segment's file grows ahead of its data:
/// the step doubles with the file, from 64 KiB, so a quiet partition reserves little disk
/// and a busy one extends its file (one `fallocate`) once per 4 MiB.
const MIN_GROWTH: u64 = 64 * 1024;
const MAX_GROWTH: u64 = 4 * 1024 * 1024;

/// Extends `file` from `from` to `to` bytes with its blocks reserved, so that the
/// writer's stores into the mapped range never need the file system to allocate (a store
/// that found the disk full would raise `SIGBUS` instead of returning an error).
///
/// `fallocate` on Linux; where it is unsupported, the range is written with zeros.
fn extend_file(file: &File, from: u64, to: u64) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let len = libc::off_t::try_from(to - from).map_err(std::io::Error::other)?;
        let offset = libc::off_t::try_from(from).map_err(std::io::Error::other)?;
        loop {
            #[allow(unsafe_code)]
            // SAFETY: a plain system call on an open descriptor; no memory is passed.
            let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, len) };
            if r == 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EOPNOTSUPP | libc::ENOSYS) => break,
                _ => return Err(e),
            }
        }
    }
    use std::os::unix::fs::FileExt;
    let zeros = vec![0u8; (to - from).min(MIN_GROWTH) as usize];
    let mut pos = from;
    while pos < to {
        let n = (to - pos).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], pos)?;
        pos += n as u64;
    }
    Ok(())
}

/// Writes every batch of `run` at `pos`, with as few `writev` calls as the kernel allows.
fn write_run_at(file: &File, run: &[PendingBatch<'_>], pos: u64) -> std::io::Result<()> {
    use std::io::{IoSlice, Seek, SeekFrom, Write};
    let mut f = file;
    f.seek(SeekFrom::Start(pos))?;
    if let [one] = run {
        return f.write_all(one.bytes);
    }
    let mut slices: Vec<IoSlice<'_>> = run.iter().map(|b| IoSlice::new(b.bytes)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match f.write_vectored(rest) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether appends may store through a shared map of `file`: on Linux, on file systems
/// where a store into a block reserved with `fallocate` needs no further allocation
/// (ext4, XFS, tmpfs). Elsewhere (btrfs and other copy-on-write file systems allocate on
/// every write fault, and a full disk would then raise `SIGBUS`; other systems may not
/// write map-dirtied pages out on `fsync`) every append is a `write`.
fn stores_through_map(file: &File) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        const EXT4: i64 = 0xEF53;
        const XFS: i64 = 0x5846_5342;
        const TMPFS: i64 = 0x0102_1994;
        #[allow(unsafe_code)]
        // SAFETY: `fstatfs` fills the zeroed struct we pass; the descriptor is open.
        let f_type = unsafe {
            let mut st: libc::statfs = std::mem::zeroed();
            if libc::fstatfs(file.as_raw_fd(), &mut st) != 0 {
                return false;
            }
            st.f_type as i64
        };
        matches!(f_type, EXT4 | XFS | TMPFS)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        false
    }
}

/// The process's file size limit (`RLIMIT_FSIZE`): reserving past it would raise
/// `SIGXFSZ`, so the reservation step stops there.
fn file_size_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    #[allow(unsafe_code)]
    // SAFETY: `getrlimit` fills the struct we pass.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) };
    if r != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return u64::MAX;
    }
    limit.rlim_cur
}

/// Why a segment's tail was cut during recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TruncationReason {
    /// The last batch was cut short by the end of the file.
    TornTail,
    /// A batch failed its structure or CRC check.
    Corrupt(DecodeError),
    /// A batch's offsets go backwards or leave the segment's range.
    OffsetOrder {
        /// The batch's base offset.
        base_offset: i64,
        /// The smallest base offset it could have had.
        expected_at_least: i64,
    },
}

impl std::fmt::Display for TruncationReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TruncationReason::TornTail => f.write_str("torn tail (partial batch)"),
            TruncationReason::Corrupt(e) => write!(f, "corrupt batch: {e}"),
            TruncationReason::OffsetOrder {
                base_offset,
                expected_at_least,
            } => write!(
                f,
                "batch base offset {base_offset} is below the expected {expected_at_least}"
            ),
        }
    }
}

/// Outcome of [`Segment::recover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Offset after the last valid batch (the segment base when it holds none).
    pub next_offset: i64,
    /// Bytes kept.
    pub valid_bytes: u64,
    /// Bytes cut from the end, and why (`None` when nothing was cut).
    pub truncated: Option<(u64, TruncationReason)>,
    /// Zeros cut from the end of a last segment: the space its file had reserved ahead of
    /// its data when the process stopped (no batch was there).
    pub zero_tail: u64,
}

/// One segment of a partition log.
///
/// Fields are grouped by who writes them, so that an append and a concurrent read share
/// only the cache line they must (see [`Padded`]): readers load `size` and lock `map`
/// on every read; the writer stores `size` and everything in `written` on every append,
/// and takes neither `map`'s lock nor the index locks unless it must.
#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    file: File,
    /// Whether small appends store through the map (see `stores_through_map`); when not,
    /// the file is never reserved ahead and every append is a `write`.
    map_stores: bool,
    /// The process's file size limit when the segment was opened, read once so that
    /// appends near it do not queue a job each ([`Segment::prepare`] reads it afresh).
    size_limit: u64,
    /// Bytes of whole batches, as published to readers.
    size: Padded<AtomicU64>,
    written: Padded<Written>,
    /// Map of the `.log` file; readers slice it below `size`. Read-write and as long as
    /// `segment.bytes` while the segment is active (the writer copies batches into it),
    /// read-only and as long as the data once sealed.
    map: Padded<RwLock<Arc<LogMap>>>,
    index: RwLock<OffsetIndex>,
    time_index: RwLock<TimeIndex>,
}

/// Whether the file may still grow.
#[derive(Debug, Default)]
struct Growth {
    /// Set by `seal`: the file is trimmed to its data and never extended again.
    sealed: bool,
}

/// What the writer changes as it appends, apart from the published size.
#[derive(Debug)]
struct Written {
    /// Largest record timestamp in the segment, and the last offset of its batch.
    max_timestamp: AtomicI64,
    offset_of_max_timestamp: AtomicI64,
    /// Length of the file on disk: `size`, or beyond it while the segment is active (the
    /// file is extended ahead of its data, by the writer or the preparer, and trimmed
    /// back when the segment is sealed). Grows only under `growth`.
    allocated: AtomicU64,
    /// Taken to extend the file, and by `seal` to trim it for good.
    growth: Mutex<Growth>,
    /// A preparation of this segment (see [`prepare`]) is queued or running.
    preparing: AtomicBool,
    /// The writer's own handle on `map` (the same map), so that an append does not lock
    /// the readers' `map`. Replaced together with it, under this lock and then `map`'s.
    map: Mutex<Arc<LogMap>>,
    /// Entries both indexes can still take (see [`Segment::index_room`]), counted when
    /// the segment is made active and after each append that adds entries.
    index_room: AtomicU64,
}

impl Segment {
    /// Creates the files of a new, empty segment with preallocated indexes, mapped for
    /// reading up to `map_bytes` (the most it will hold).
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        index_bytes: usize,
        map_bytes: usize,
    ) -> Result<Segment> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&log_path)
            .at(&log_path)?;
        let seg = Segment::with_file(dir, base_offset, log_path, file, 0)?;
        seg.make_active(index_bytes, map_bytes)?;
        Ok(seg)
    }

    /// Opens an existing segment as it is on disk; the caller checks or rebuilds indexes.
    pub(crate) fn open(dir: &Path, base_offset: i64) -> Result<Segment> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .at(&log_path)?;
        let size = file.metadata().at(&log_path)?.len();
        let seg = Segment::with_file(dir, base_offset, log_path, file, size)?;
        if let Some((ts, off)) = seg.time_index.read().last() {
            seg.written.max_timestamp.store(ts, Ordering::Relaxed);
            seg.written
                .offset_of_max_timestamp
                .store(off, Ordering::Relaxed);
        }
        Ok(seg)
    }

    fn with_file(
        dir: &Path,
        base_offset: i64,
        log_path: PathBuf,
        file: File,
        size: u64,
    ) -> Result<Segment> {
        let map = Arc::new(LogMap::new(&file, size as usize).at(&log_path)?);
        let map_stores = stores_through_map(&file);
        let index = OffsetIndex::open(&dir.join(file_name(base_offset, "index")), base_offset)?;
        let time_index =
            TimeIndex::open(&dir.join(file_name(base_offset, "timeindex")), base_offset)?;
        Ok(Segment {
            base_offset,
            log_path,
            file,
            map_stores,
            size_limit: file_size_limit(),
            size: Padded::new(AtomicU64::new(size)),
            written: Padded::new(Written {
                max_timestamp: AtomicI64::new(NO_TIMESTAMP),
                offset_of_max_timestamp: AtomicI64::new(-1),
                allocated: AtomicU64::new(size),
                growth: Mutex::new(Growth::default()),
                preparing: AtomicBool::new(false),
                map: Mutex::new(map.clone()),
                index_room: AtomicU64::new(0),
            }),
            map: Padded::new(RwLock::new(map)),
            index: RwLock::new(index),
            time_index: RwLock::new(time_index),
        })
    }

    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Bytes of whole batches, as published to readers.
    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// Largest record timestamp in the segment (`NO_TIMESTAMP` when it has none).
    pub(crate) fn max_timestamp(&self) -> i64 {
        self.written.max_timestamp.load(Ordering::Acquire)
    }

    pub(crate) fn time_index(&self) -> &RwLock<TimeIndex> {
        &self.time_index
    }

    /// How many more entries both indexes can take (the time index keeps its last slot
    /// for the final entry), as counted when the segment was made active or last
    /// appended to: the writer's call, so no entry was added since.
    pub(crate) fn index_room(&self) -> usize {
        self.written.index_room.load(Ordering::Relaxed) as usize
    }

    /// Counts [`Segment::index_room`] afresh from both indexes.
    fn count_index_room(&self, index: &OffsetIndex, time_index: &TimeIndex) {
        let offsets = index.file().capacity() - index.len();
        let times = (time_index.file().capacity() - time_index.len()).saturating_sub(1);
        let room = offsets.min(times) as u64;
        self.written.index_room.store(room, Ordering::Relaxed);
    }

    /// Replaces the map readers and the writer use; the caller holds `written.map`.
    fn set_map(&self, writer_map: &mut Arc<LogMap>, map: LogMap) {
        let map = Arc::new(map);
        *writer_map = map.clone();
        *self.map.write() = map;
    }

    /// Writes a run of batches at the end of the segment (the single writer's call), adds
    /// the index entries its batches ask for, then publishes the new size.
    ///
    /// A run shorter than `MAP_STORE_MAX` is copied into the segment's read-write map:
    /// a store into the page cache, as a `write` would make, without the system call. The
    /// file was extended over the range beforehand (see [`Segment::reserve`]) and the
    /// pages faulted in, and an fsync writes the pages out as it would written ones. A
    /// longer run is one `writev`. Readers never see the new bytes before the size is
    /// published, so they never see part of a batch; an index entry may briefly point
    /// past the published size, which is harmless because scans never start beyond it.
    ///
    /// Once the published size comes within half of `POPULATE_AHEAD` of what is reserved
    /// or faulted in, the append hands the next stretch to the preparer (see
    /// [`prepare`]), so that it is ready before the appends that follow reach it.
    pub(crate) fn append(self: &Arc<Segment>, run: &[PendingBatch<'_>]) -> Result<()> {
        let start = self.size.load(Ordering::Relaxed);
        let len: u64 = run.iter().map(|b| b.bytes.len() as u64).sum();
        let stored = self.map_stores && len < MAP_STORE_MAX;
        let mut map = self.written.map.lock();
        if self.map_stores {
            self.reserve(&mut map, start + len)?;
        }
        if stored {
            self.populate(&map, start, start + len)?;
            let mut pos = start as usize;
            for b in run {
                map.write(pos, b.bytes);
                pos += b.bytes.len();
            }
        } else {
            write_run_at(&self.file, run, start).at(&self.log_path)?;
        }
        let job = self.job_ahead(&map, start + len, stored);
        // Locks are taken indexes first, then the maps (as `recover` and `seal` do).
        drop(map);
        // Entries are gathered and written into the maps together, under one lock each:
        // a run then dirties the index pages once, where one store per batch could meet
        // a page that writeback had just cleaned (a write-protect fault) every time.
        let mut offsets = Vec::new();
        let mut times = Vec::new();
        let (mut max_ts, mut max_ts_offset) = self.max_timestamp_and_offset();
        let mut pos = start;
        for b in run {
            if b.max_timestamp > max_ts {
                (max_ts, max_ts_offset) = (b.max_timestamp, b.last_offset);
            }
            if b.index_entry {
                offsets.push((b.last_offset, pos as u32));
                times.push((max_ts, max_ts_offset));
            }
            pos += b.bytes.len() as u64;
        }
        self.written
            .offset_of_max_timestamp
            .store(max_ts_offset, Ordering::Relaxed);
        self.written.max_timestamp.store(max_ts, Ordering::Release);
        if !offsets.is_empty() {
            let mut index = self.index.write();
            for (offset, position) in offsets {
                index.push(offset, position);
            }
            let mut time_index = self.time_index.write();
            for (ts, offset) in times {
                time_index.maybe_push(ts, offset, false);
            }
            self.count_index_room(&index, &time_index);
        }
        self.size.store(pos, Ordering::Release);
        if let Some(job) = job {
            prepare::submit(job);
        }
        Ok(())
    }

    /// The preparer's next job for this segment, if `end` has come within half of
    /// `POPULATE_AHEAD` of the reserved file or (for appends `stored` through the map) of
    /// the faulted-in map, and no job is queued already. None where appends never
    /// store through the map (nothing is reserved ahead there).
    fn job_ahead(self: &Arc<Segment>, map: &Arc<LogMap>, end: u64, stored: bool) -> Option<Job> {
        if !self.map_stores {
            return None;
        }
        let map_len = map.len() as u64;
        let want = (end + POPULATE_AHEAD / 2).min(map_len).min(self.size_limit);
        let short = self.written.allocated.load(Ordering::Acquire) < want
            || (stored && map.populated() < want);
        if !short || self.written.preparing.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(Job {
            segment: self.clone(),
            map: map.clone(),
            upto: (end + POPULATE_AHEAD).min(map_len),
            populate: stored,
            done: false,
        })
    }

    /// A preparer's job: reserves the file up to `upto` and, if asked, faults `map` in
    /// up to there, unless the segment was sealed meanwhile. Never past the process's
    /// file size limit: only an append's own need may go there (and meet `EFBIG`, or the
    /// `SIGXFSZ` that stops a process which does not ignore it). Returns `false` on a
    /// failure, which is left to the writer: it meets it itself if it gets there, as an
    /// append error.
    fn prepare(&self, map: &LogMap, upto: u64, populate: bool) -> bool {
        let upto = upto.min(file_size_limit());
        let growth = self.written.growth.lock();
        if growth.sealed {
            return true;
        }
        if self.grow(&growth, map.len() as u64, upto).is_err() {
            return false;
        }
        let to = upto.min(self.written.allocated.load(Ordering::Acquire));
        let from = map.populated();
        !(populate && to > from) || map.populate(from as usize, (to - from) as usize).is_ok()
    }

    /// Makes the file at least `end` bytes long, its blocks reserved, and the map
    /// writable over it; grows by whole steps that double with the file (see
    /// `MIN_GROWTH`), never past the process's file size limit unless the run itself
    /// needs it.
    fn reserve(&self, writer_map: &mut Arc<LogMap>, end: u64) -> Result<()> {
        let allocated = self.written.allocated.load(Ordering::Acquire);
        let (writable, map_len) = (writer_map.is_writable(), writer_map.len() as u64);
        if end <= allocated && writable {
            return Ok(());
        }
        if !writable || map_len < end {
            // Not made active, or a batch past `segment.bytes` (the log rolls before
            // that): map afresh.
            let map = LogMap::writable(&self.file, end.max(map_len) as usize).at(&self.log_path)?;
            self.set_map(writer_map, map);
        }
        let growth = self.written.growth.lock();
        self.grow(&growth, writer_map.len() as u64, end)
    }

    /// Extends the file to at least `end` bytes, by as many whole growth steps as that
    /// takes if they fit within `map_len` and the file size limit, else by exactly what
    /// `end` needs; nothing if it already reaches `end`. The caller holds `growth`.
    fn grow(&self, _growth: &Growth, map_len: u64, end: u64) -> Result<()> {
        let allocated = self.written.allocated.load(Ordering::Acquire);
        if end <= allocated {
            return Ok(());
        }
        // Whole steps, as many as `end` needs, so lengths stay on the same grid however
        // far ahead the preparer asks for.
        let mut target = allocated;
        while target < end {
            target += target.clamp(MIN_GROWTH, MAX_GROWTH);
        }
        let mut target = target.min(map_len).min(file_size_limit()).max(end);
        if let Err(e) = extend_file(&self.file, allocated, target) {
            // Near a full disk or a file size limit, reserve only what this run needs:
            // the append fails only if that does not fit either.
            if target == end {
                return Err(Error::io(self.log_path.clone(), e));
            }
            target = end;
            extend_file(&self.file, allocated, target).at(&self.log_path)?;
        }
        self.written.allocated.store(target, Ordering::Release);
        Ok(())
    }

    /// Faults the map in over `[start, end)` and up to `POPULATE_AHEAD` beyond (within
    /// the reserved file), unless it already is, so that stores there take no page fault.
    /// A page the kernel cannot provide is an error here (it would be `SIGBUS` on the
    /// store), which fails the append and poisons the partition.
    fn populate(&self, writer_map: &LogMap, start: u64, end: u64) -> Result<()> {
        let populated = writer_map.populated();
        if end <= populated {
            return Ok(());
        }
        let from = populated.max(start);
        let to = (start + POPULATE_AHEAD)
            .max(end)
            .min(self.written.allocated.load(Ordering::Acquire));
        writer_map
            .populate(from as usize, (to - from) as usize)
            .at(&self.log_path)
    }

    fn max_timestamp_and_offset(&self) -> (i64, i64) {
        (
            self.written.max_timestamp.load(Ordering::Acquire),
            self.written.offset_of_max_timestamp.load(Ordering::Acquire),
        )
    }

    /// A scanner over the published bytes `[pos, size)`.
    pub(crate) fn scanner(&self, pos: u64) -> Scanner {
        let size = self.size();
        let pos = pos.min(size);
        let data = self.map.read().bytes(pos as usize, (size - pos) as usize);
        Scanner::new(data, pos)
    }

    /// Maps at least `len` bytes of the file, so the map covers every published byte.
    fn ensure_mapped(&self, len: usize) -> Result<()> {
        let mut writer_map = self.written.map.lock();
        if writer_map.len() < len {
            let map = LogMap::new(&self.file, len).at(&self.log_path)?;
            self.set_map(&mut writer_map, map);
        }
        Ok(())
    }

    /// The first batch whose last offset is ≥ `offset`, and its position, scanning from
    /// the index's hint; `None` when every batch of the segment ends before `offset`.
    ///
    /// The scanner is returned positioned after that batch, for reading on.
    pub(crate) fn find_batch(&self, offset: i64) -> Result<Option<(Scanner, u64, RecordBatch)>> {
        let (_, hint) = self.index.read().lookup(offset);
        self.find_batch_from(u64::from(hint), offset)
    }

    /// [`Segment::find_batch`] scanning from `position`, which must begin a batch at or
    /// before the one holding `offset`.
    pub(crate) fn find_batch_from(
        &self,
        position: u64,
        offset: i64,
    ) -> Result<Option<(Scanner, u64, RecordBatch)>> {
        let mut scanner = self.scanner(position);
        loop {
            match scanner.next_batch() {
                Scanned::Batch(pos, b) if b.last_offset() >= offset => {
                    return Ok(Some((scanner, pos, b)));
                }
                Scanned::Batch(..) => {}
                Scanned::End | Scanned::Torn(_) => return Ok(None),
                Scanned::Legacy(pos, magic) => return Err(self.legacy(pos, magic)),
                Scanned::Corrupt(pos, source) => {
                    return Err(Error::CorruptBatch {
                        path: self.log_path.clone(),
                        position: pos,
                        source,
                    });
                }
            }
        }
    }

    /// The offset after the last batch, scanning from the last index entry. Used when
    /// the segment is known to be valid (after a clean shutdown).
    pub(crate) fn read_next_offset(&self) -> Result<i64> {
        let start = self.index.read().last().map_or(0, |(_, pos)| pos);
        let mut scanner = self.scanner(u64::from(start));
        let mut next = self.base_offset;
        loop {
            match scanner.next_batch() {
                Scanned::Batch(_, b) => next = b.next_offset(),
                Scanned::End => return Ok(next),
                Scanned::Torn(position) => {
                    return Err(Error::CorruptBatch {
                        path: self.log_path.clone(),
                        position,
                        source: DecodeError::Inconsistent("torn tail after a clean shutdown"),
                    });
                }
                Scanned::Legacy(position, magic) => return Err(self.legacy(position, magic)),
                Scanned::Corrupt(position, source) => {
                    return Err(Error::CorruptBatch {
                        path: self.log_path.clone(),
                        position,
                        source,
                    });
                }
            }
        }
    }

    fn legacy(&self, position: u64, magic: i8) -> Error {
        Error::CorruptBatch {
            path: self.log_path.clone(),
            position,
            source: DecodeError::UnsupportedMagic { magic },
        }
    }

    /// Validates every batch (structure, CRC, offset order), rebuilds both indexes the way
    /// Kafka's recovery does (an entry when more than `index_interval` bytes passed since
    /// the last), and truncates the file after the last valid batch.
    ///
    /// `expected_at_least` is the smallest base offset the first batch may have (the end
    /// of the previous segment). In the `last` segment, a tail of zeros to the end of the
    /// file is the space reserved ahead of the data (see [`Segment::reserve`]): it is cut
    /// but reported in `zero_tail`, not as a truncation. Elsewhere it is damage (a
    /// segment's file is trimmed and fsynced before the next segment exists). A legacy (magic 0/1) message with a valid CRC is not
    /// corruption: the open fails with [`DecodeError::UnsupportedMagic`] naming the file
    /// and position, and nothing is truncated.
    pub(crate) fn recover(
        &self,
        expected_at_least: i64,
        index_interval: u64,
        index_bytes: usize,
        last: bool,
    ) -> Result<Recovered> {
        let mut index = self.index.write();
        let mut time_index = self.time_index.write();
        index.file_mut().truncate_entries(0);
        time_index.file_mut().truncate_entries(0);
        index.file_mut().resize(index_bytes)?;
        time_index.file_mut().resize(index_bytes)?;
        let file_size = self.file.metadata().at(&self.log_path)?.len();
        self.ensure_mapped(file_size as usize)?;
        self.size.store(file_size, Ordering::Release);

        let mut scanner = self.scanner(0);
        let (mut next, mut last_indexed) = (expected_at_least.max(self.base_offset), 0u64);
        let (mut max_ts, mut max_ts_offset) = (NO_TIMESTAMP, -1);
        // End of the last batch that passed every check; the file is cut here, before a
        // bad batch, never after it.
        let mut valid_bytes = 0u64;
        let reason = loop {
            let (pos, batch) = match scanner.next_batch() {
                Scanned::Batch(pos, b) => (pos, b),
                Scanned::End => break None,
                Scanned::Torn(_) => break Some(TruncationReason::TornTail),
                Scanned::Corrupt(_, e) => break Some(TruncationReason::Corrupt(e)),
                Scanned::Legacy(position, magic) => {
                    // Leave no preallocated (zero-padded) index behind on the refused open.
                    index.file_mut().trim()?;
                    time_index.file_mut().trim()?;
                    return Err(self.legacy(position, magic));
                }
            };
            if let Err(e) = batch.verify_crc() {
                break Some(TruncationReason::Corrupt(e));
            }
            // baseOffset is outside the CRC, so damage there must not overflow anything.
            let last = batch
                .base_offset()
                .checked_add(i64::from(batch.last_offset_delta()))
                .filter(|_| batch.last_offset_delta() >= 0);
            let in_range =
                last.is_some_and(|l| l - self.base_offset <= i64::from(i32::MAX) && l < i64::MAX);
            if batch.base_offset() < next || !in_range {
                break Some(TruncationReason::OffsetOrder {
                    base_offset: batch.base_offset(),
                    expected_at_least: next,
                });
            }
            let last = last.expect("checked in range");
            if batch.max_timestamp() > max_ts {
                (max_ts, max_ts_offset) = (batch.max_timestamp(), last);
            }
            if pos - last_indexed > index_interval && !index.is_full() {
                index.push(last, pos as u32);
                time_index.maybe_push(max_ts, max_ts_offset, false);
                last_indexed = pos;
            }
            next = last + 1;
            valid_bytes = scanner.position();
        };
        // An active segment's file runs ahead of its data with zeros (see `reserve`), and
        // a crash leaves them behind: they are cut like a bad tail, but hold no batch.
        let zero_tail = reason.is_some() && last && self.zeros(valid_bytes, file_size);
        let reason = reason.filter(|_| !zero_tail);
        if valid_bytes < file_size {
            self.file.set_len(valid_bytes).at(&self.log_path)?;
        }
        self.written.allocated.store(valid_bytes, Ordering::Relaxed);
        self.size.store(valid_bytes, Ordering::Release);
        if max_ts_offset >= 0 {
            time_index.maybe_push(max_ts, max_ts_offset, true);
        }
        self.written.max_timestamp.store(max_ts, Ordering::Release);
        self.written
            .offset_of_max_timestamp
            .store(max_ts_offset, Ordering::Release);
        let truncated = reason.map(|r| (file_size - valid_bytes, r));
        Ok(Recovered {
            next_offset: next.max(self.base_offset),
            valid_bytes,
            truncated,
            zero_tail: if zero_tail {
                file_size - valid_bytes
            } else {
                0
            },
        })
    }

    /// Whether the published bytes `[from, to)` are all zero.
    fn zeros(&self, from: u64, to: u64) -> bool {
        let bytes = self.map.read().bytes(from as usize, (to - from) as usize);
        bytes.iter().all(|&b| b == 0)
    }

    /// Checks both indexes against the log without reading it all: entry order and range,
    /// and that the last offset-index entry points at a batch that starts at or before its
    /// key. `Err` says what is wrong.
    pub(crate) fn check_indexes(
        &self,
        next_offset: i64,
    ) -> Result<std::result::Result<(), String>> {
        let index = self.index.read();
        let time_index = self.time_index.read();
        for (f, size) in [(index.file(), 8), (time_index.file(), 12)] {
            if f.torn()? {
                return Ok(Err(format!(
                    "{} is not a whole number of {size}-byte entries",
                    f.path().display()
                )));
            }
        }
        if let Err(e) = index.check(self.size()) {
            return Ok(Err(format!("{}: {e}", index.file().path().display())));
        }
        if let Err(e) = time_index.check(next_offset) {
            return Ok(Err(format!("{}: {e}", time_index.file().path().display())));
        }
        if let Some((off, pos)) = index.last()
            && !self.batch_at_holds(pos, off)?
        {
            return Ok(Err(format!(
                "{}: last entry ({off}, {pos}) does not point at a batch at or before {off}",
                index.file().path().display()
            )));
        }
        // Spot-check offset-index entries beyond the last: a scrambled entry that still
        // sorts would send a lookup into the middle of a batch.
        let step = (index.len() / 16).max(1);
        for i in (0..index.len()).step_by(step) {
            let (off, pos) = index.entry(i);
            if !self.batch_at_holds(pos, off)? {
                return Ok(Err(format!(
                    "{}: entry {i} ({off}, {pos}) does not point at a batch at or before {off}",
                    index.file().path().display()
                )));
            }
        }
        if let Some((ts, off)) = time_index.last()
            && let Some(found) = self.timestamp_after(&index, off, ts)
        {
            return Ok(Err(format!(
                "{}: ends at ({ts}, {off}) but a later batch has timestamp {found}",
                time_index.file().path().display()
            )));
        }
        if self.size() > 0 && time_index.len() == 0 {
            let mut scanner = self.scanner(0);
            if let Scanned::Batch(_, b) = scanner.next_batch()
                && b.max_timestamp() != NO_TIMESTAMP
            {
                return Ok(Err(format!(
                    "{}: empty, but the segment has timestamps",
                    time_index.file().path().display()
                )));
            }
        }
        Ok(Ok(()))
    }

    /// A batch `maxTimestamp` above `ts` after the batch holding `offset`, if any: the
    /// time index's last entry must hold the segment's max timestamp. The walk reads batch
    /// headers only, from `offset` to the end, which is short unless the index is wrong.
    fn timestamp_after(&self, index: &OffsetIndex, offset: i64, ts: i64) -> Option<i64> {
        let (_, pos) = index.lookup(offset);
        let mut scanner = self.scanner(u64::from(pos));
        while let Scanned::Batch(_, b) = scanner.next_batch() {
            if b.last_offset() >= offset && b.max_timestamp() > ts {
                return Some(b.max_timestamp());
            }
        }
        None
    }

    /// Whether a whole batch starts at `pos` with a base offset ≤ `offset`.
    fn batch_at_holds(&self, pos: u32, offset: i64) -> Result<bool> {
        let mut scanner = self.scanner(u64::from(pos));
        Ok(matches!(scanner.next_batch(), Scanned::Batch(_, b) if b.base_offset() <= offset))
    }

    /// Grows both indexes to `index_bytes` and maps the log read-write over `map_bytes`
    /// (the most it will hold), so the segment can take appends.
    pub(crate) fn make_active(&self, index_bytes: usize, map_bytes: usize) -> Result<()> {
        self.written.growth.lock().sealed = false;
        {
            let mut index = self.index.write();
            let mut time_index = self.time_index.write();
            index.file_mut().resize(index_bytes)?;
            time_index.file_mut().resize(index_bytes)?;
            self.count_index_room(&index, &time_index);
        }
        let len = map_bytes.max(self.size() as usize);
        let map = if self.map_stores {
            LogMap::writable(&self.file, len)
        } else {
            LogMap::new(&self.file, len)
        };
        self.set_map(&mut self.written.map.lock(), map.at(&self.log_path)?);
        Ok(())
    }

    /// Finishes an active segment at roll or close: the final time-index entry (the
    /// segment's max timestamp), both indexes trimmed to their entries, the file trimmed
    /// to its data (Kafka trims a preallocated segment the same way), and the map made
    /// read-only and shrunk to the data. The caller fsyncs the log so the trim is durable.
    pub(crate) fn seal(&self) -> Result<()> {
        let (ts, off) = self.max_timestamp_and_offset();
        let mut time_index = self.time_index.write();
        if off >= 0 {
            time_index.maybe_push(ts, off, true);
        }
        time_index.file_mut().trim()?;
        self.index.write().file_mut().trim()?;
        let size = self.size();
        // Waits for a preparation under way; none runs after this.
        let mut growth = self.written.growth.lock();
        growth.sealed = true;
        // The file's own length, not `allocated`: a reservation that failed part way may
        // have left the file longer than recorded.
        if self.file.metadata().at(&self.log_path)?.len() > size {
            self.file.set_len(size).at(&self.log_path)?;
        }
        self.written.allocated.store(size, Ordering::Release);
        drop(growth);
        // Shrink the map from `segment.bytes` to the data, so that sealed segments do not
        // each hold a maximum-size mapping; readers of the old map keep it alive, and read
        // only published bytes, all below the trimmed end.
        let mut writer_map = self.written.map.lock();
        if writer_map.len() > size as usize || writer_map.is_writable() {
            let map = LogMap::new(&self.file, size as usize).at(&self.log_path)?;
            self.set_map(&mut writer_map, map);
        }
        Ok(())
    }

    /// fsyncs the log data (`fdatasync`: the data and the file size).
    pub(crate) fn sync_log(&self) -> Result<()> {
        self.file.sync_data().at(&self.log_path)
    }

    /// Writes both indexes to disk.
    pub(crate) fn sync_indexes(&self) -> Result<()> {
        self.index.read().file().sync()?;
        self.time_index.read().file().sync()
    }

    /// Deletes the segment's files.
    pub(crate) fn delete_files(&self) -> Result<()> {
        let dir = self.log_path.parent().unwrap_or(Path::new("."));
        for ext in ["log", "index", "timeindex", "txnindex"] {
            let p = dir.join(file_name(self.base_offset, ext));
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(p, e)),
            }
        }
        Ok(())
    }
}
