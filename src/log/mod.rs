//! The partition log: segments, roll, append, read, lookups, durability.

mod checkpoint;
mod compact;
mod config;
mod dir;
mod load;
mod lock;
mod producer_state;
mod retention;
mod swap;
mod sync;
mod txn_index;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::padded::Padded;
use crate::record::layout::{ATTR_CONTROL, ATTR_TRANSACTIONAL};
use crate::record::{Codecs, EncodedBatch, RecordBatch, TimestampType};
use crate::segment::{PendingBatch, Scanned, Segment};
pub(crate) use checkpoint::{bad_line, read_entry_lines, sync_dir, write_entry_lines};
pub use checkpoint::{read_checkpoint, write_checkpoint};
pub use compact::{CompactionConfig, CompactionReport, MAP_ENTRY_OVERHEAD};
pub use config::{FsyncPolicy, LogConfig};
pub use dir::{LogDir, partition_dir_name, validate_topic_name};
pub use load::{RecoveryReport, Truncation};
pub use retention::RetentionReport;
pub use swap::{SwapHook, SwapStep};
use sync::SyncState;
pub(crate) use sync::Waiter;
pub use txn_index::AbortedTxn;

/// How to open a [`Log`], beyond its [`LogConfig`].
#[derive(Clone, Debug)]
pub struct LogOptions {
    /// Codec implementations for reading and writing batches.
    pub codecs: Codecs,
    /// The clock for LogAppendTime, time-based roll fallbacks and interval fsyncs.
    pub clock: Arc<dyn Clock>,
    /// Offset below which every batch is known to have been fsynced; recovery after an
    /// unclean shutdown starts at the segment holding it. 0 checks everything.
    pub recovery_point: i64,
    /// The log start offset from the owner's checkpoint (0 when unknown). When it lies
    /// above the recovered log end offset, every segment is deleted and the log starts
    /// empty at it, as Kafka's loader does.
    pub log_start_offset: i64,
    /// Whether the owner shut down cleanly, so no batch needs validating.
    pub clean_shutdown: bool,
}

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions {
            codecs: Codecs::default(),
            clock: Arc::new(SystemClock),
            recovery_point: 0,
            log_start_offset: 0,
            clean_shutdown: false,
        }
    }
}

/// What an append wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// The batch's `maxTimestamp` as stored.
    pub max_timestamp: i64,
    /// The time stamped on every record, when the log uses LogAppendTime.
    pub log_append_time: Option<i64>,
    /// Number of records.
    pub records: i32,
}

/// An offset found by timestamp, with the record's timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampOffset {
    /// The first offset whose record timestamp is ≥ the one asked for.
    pub offset: i64,
    /// That record's timestamp.
    pub timestamp: i64,
}

/// The appender's state, behind the log's writer lock.
#[derive(Debug)]
struct Writer {
    active: Arc<Segment>,
    bytes_since_index: u64,
    /// `maxTimestamp` of the active segment's first batch (`None` while it is empty).
    first_batch_timestamp: Option<i64>,
    /// When the active segment was created, for segments whose first batch has no time.
    created_ms: i64,
    unflushed_records: u64,
    /// Idempotent and transactional producers' state on this partition.
    producers: producer_state::ProducerStates,
    /// The allocations of an append's producer verdicts and runs, kept empty between
    /// appends so that appending one batch allocates nothing.
    staged_room: producer_state::StagedRoom,
    run_room: Vec<PendingBatch<'static>>,
}

/// Room kept in the writer's lists between appends; a larger append's is given back.
const ROOM_KEEP: usize = 64;

/// Gives back the room of `v` past `ROOM_KEEP`. Checked here, so that the usual append
/// (which grew nothing) does not call into `shrink_to`, a page of code of its own.
#[inline(always)]
fn trim_room<T>(v: &mut Vec<T>) {
    if v.capacity() > ROOM_KEEP {
        v.shrink_to(ROOM_KEEP);
    }
}

/// Poisons its log if dropped by a panic: an append that unwinds once it has begun to
/// write (a user's clock that panics during a roll, or a bug) may leave the segment files
/// and the writer's state apart, so the log takes no more writes until it is reopened and
/// recovery has checked the tail. A panic before that point writes nothing and poisons
/// nothing.
struct PoisonOnUnwind<'a>(&'a Log);

impl Drop for PoisonOnUnwind<'_> {
    #[inline]
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0
                .poison_with("an append panicked while writing".to_string());
        }
    }
}

/// A run's allocation, kept past the batches it borrowed (collected in place: the
/// element types differ only in lifetime, so the allocation carries over). The caller
/// empties `run` first; an element left would lose its bytes.
fn keep_room(run: Vec<PendingBatch<'_>>) -> Vec<PendingBatch<'static>> {
    run.into_iter()
        .map(|b| PendingBatch { bytes: &[], ..b })
        .collect()
}

/// Where a reader's last [`Log::read_at`] ended: the segment, the byte after the last
/// batch it returned, and that batch's next offset.
///
/// A tailing reader's next read starts there. Without it, each read looks its offset up
/// in the offset index and walks the batch headers from that entry to the offset: with
/// Kafka's 4 KiB index interval and small batches, dozens of headers, most of them cold
/// in this thread's cache. The position is only trusted for the same segment (a `Weak`,
/// so the cursor keeps no deleted segment open, and a segment the cleaner replaced is a
/// different one) and the same offset; live segments only ever grow, so a byte that
/// began a batch still does.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReadCursor {
    segment: std::sync::Weak<Segment>,
    position: u64,
    offset: i64,
}

impl ReadCursor {
    /// The byte of `segment` to read `offset` from, if this cursor knows it.
    fn position_in(&self, segment: &Arc<Segment>, offset: i64) -> Option<u64> {
        (self.offset == offset && std::ptr::eq(self.segment.as_ptr(), Arc::as_ptr(segment)))
            .then_some(self.position)
    }
}

/// One partition's log on disk, in Kafka's format.
///
/// Appends go through one writer at a time (an internal lock); reads, offset lookups and
/// time lookups run concurrently with appends and see only whole batches. `Log` is
/// `Send + Sync`; share it with `Arc`.
///
/// What an append writes and what a read writes (a lock word, a count) sit on cache lines
/// of their own (each padded to 128 bytes): the writer's lock and state, the log end
/// offset that readers load, the segment list that readers lock, and the waiters the
/// writer wakes.
#[derive(Debug)]
pub struct Log {
    name: String,
    dir: PathBuf,
    config: LogConfig,
    codecs: Codecs,
    clock: Arc<dyn Clock>,
    segments: Padded<RwLock<Vec<Arc<Segment>>>>,
    writer: Padded<Mutex<Writer>>,
    log_end_offset: Padded<AtomicI64>,
    /// First offset of the earliest open transaction (`i64::MAX` when none): the LSO is
    /// this or the log end offset, whichever is lower.
    first_unstable: AtomicI64,
    log_start_offset: AtomicI64,
    recovery_point: AtomicI64,
    last_flush_ms: AtomicI64,
    /// Files were created since the directory was last fsynced.
    dir_dirty: AtomicBool,
    /// The first write or fsync failure, set once: the log refuses writes until reopened.
    /// A `OnceLock`, so the check on every append is one load.
    poisoned: OnceLock<String>,
    closed: AtomicBool,
    sync: Padded<SyncState>,
    recovery: RecoveryReport,
    /// Cleanup state: retention and compaction of this log run one at a time.
    cleanup: compact::CleanupState,
}

impl Log {
    /// Opens the partition directory `dir` (`<topic>-<partition>`), creating it if
    /// needed, and recovers it as after an unclean shutdown: every batch is validated.
    /// [`LogDir`] keeps the checkpoints that let a cleanly closed log open without a scan,
    /// and the lock that keeps other processes out; a bare `Log` takes no lock, so the
    /// caller must not open the same directory twice.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`], or [`Error::Io`] naming the file that failed.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log> {
        Log::open_with(dir, config, LogOptions::default())
    }

    /// Opens `dir` with explicit codecs, clock and recovery state.
    ///
    /// # Errors
    /// As [`Log::open`].
    pub fn open_with(dir: impl AsRef<Path>, config: LogConfig, options: LogOptions) -> Result<Log> {
        load::load(dir.as_ref(), config, options)
    }

    /// The partition's name: its directory name, `<topic>-<partition>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settings the log was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// The codec implementations the log uses.
    pub fn codecs(&self) -> &Codecs {
        &self.codecs
    }

    /// The first offset of the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    /// The offset the next record will get; every offset below it is readable.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset.load(Ordering::SeqCst)
    }

    /// The last stable offset (Kafka's LSO with one replica): the first offset of the
    /// earliest transaction still open on this partition, else the log end offset.
    /// read_committed consumers read below it.
    pub fn last_stable_offset(&self) -> i64 {
        // The log end offset first: an append lowers `first_unstable` before it publishes
        // the end offset past a transaction's first batch, so a reader that sees the new
        // end offset then sees the open transaction too. In the other order a reader
        // could load `first_unstable` just before the transaction opened and the end
        // offset just after, and read its uncommitted records.
        let end = self.log_end_offset();
        self.first_unstable.load(Ordering::SeqCst).min(end)
    }

    /// The aborted transactions that may hold records in `from..upper`, from the
    /// `.txnindex` files (Kafka's `collectAbortedTxns`): entries whose marker is at or
    /// after `from` and whose first offset is below `upper`.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::BadCheckpoint`] naming a `.txnindex` file.
    pub fn aborted_transactions(&self, from: i64, upper: i64) -> Result<Vec<AbortedTxn>> {
        let segs: Vec<Arc<Segment>> = self.segments.read().clone();
        let first = segs
            .partition_point(|s| s.base_offset() <= from)
            .saturating_sub(1);
        let mut out = Vec::new();
        for seg in &segs[first..] {
            for e in swap::read_txn_index(&self.dir, seg.base_offset())? {
                if e.last_offset >= from && e.first_offset < upper {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    /// The producers with a transaction open on this partition: (producer id, epoch,
    /// first offset of the transaction), by first offset.
    pub fn open_transactions(&self) -> Vec<(i64, i16, i64)> {
        let w = self.writer.lock();
        let mut out: Vec<(i64, i16, i64)> = w
            .producers
            .producers
            .iter()
            .filter_map(|(id, e)| Some((*id, e.epoch, e.current_txn_first_offset?)))
            .collect();
        out.sort_by_key(|t| t.2);
        out
    }

    /// The highest producer id in this partition's producer state.
    pub(crate) fn max_producer_id(&self) -> Option<i64> {
        self.writer.lock().producers.producers.keys().max().copied()
    }

    /// The offset below which everything has been fsynced.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point.load(Ordering::Acquire)
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.read().len()
    }

    /// Total bytes of all segments' `.log` files.
    pub fn size_bytes(&self) -> u64 {
        self.segments.read().iter().map(|s| s.size()).sum()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments
            .read()
            .iter()
            .map(|s| s.base_offset())
            .collect()
    }

    /// What opening the log found and repaired.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Why the log takes no more writes, if an earlier write or fsync failed (or an
    /// append panicked after it had begun to write).
    pub fn poisoned(&self) -> Option<String> {
        self.poisoned.get().cloned()
    }

    fn check_writable(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed(self.name.clone()));
        }
        self.check_not_poisoned()
    }

    /// [`Error::Poisoned`] once a write or fsync has failed.
    fn check_not_poisoned(&self) -> Result<()> {
        match self.poisoned.get() {
            Some(cause) => Err(Error::Poisoned {
                partition: self.name.clone(),
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Records a write or fsync failure: the log refuses writes until reopened, because
    /// a failed fsync may have dropped dirty pages that a retry would report as written.
    fn poison(&self, err: &Error) {
        self.poison_with(err.to_string());
    }

    /// Records `cause` as why the log refuses writes, unless an earlier failure did.
    fn poison_with(&self, cause: String) {
        // The first failure is the cause; later ones follow from it.
        let _ = self.poisoned.set(cause);
    }

    /// Appends a batch: assigns its offsets from the log end offset, stamps the leader
    /// epoch (and LogAppendTime when configured), writes it, and fsyncs as the
    /// [`FsyncPolicy`] asks before returning.
    ///
    /// # Errors
    /// [`Error::BatchTooLarge`] over `max.message.bytes` or `segment.bytes`;
    /// [`Error::InvalidBatch`] for a batch without records;
    /// [`Error::Poisoned`] after an earlier failure; [`Error::Closed`];
    /// [`Error::Io`] when the write or fsync fails (the log is then poisoned).
    pub fn append(&self, mut batch: EncodedBatch) -> Result<AppendInfo> {
        self.append_one(&mut batch)
    }

    /// Appends several batches as one chunk: consecutive offsets, one copy into the
    /// segment's map per segment they land in, one wake-up of readers, and one fsync for
    /// all of them when the policy asks. Cheaper per batch than [`Log::append`] in a
    /// loop, which takes the writer lock and wakes readers once per batch. Index entries
    /// are still placed per batch.
    ///
    /// Either every batch is checked and appended, or (on a validation error) none is.
    ///
    /// # Errors
    /// As [`Log::append`]. After an I/O error some leading batches may have been written;
    /// the log is then poisoned and the next open decides what survived.
    pub fn append_batches(&self, mut batches: Vec<EncodedBatch>) -> Result<Vec<AppendInfo>> {
        let mut infos = Vec::with_capacity(batches.len());
        self.append_all(&mut batches, &mut infos)?;
        Ok(infos)
    }

    /// [`Log::append_batches`] leaving the batches with the caller, whose buffers the
    /// producer reuses.
    pub(crate) fn append_batches_in_place(
        &self,
        batches: &mut [EncodedBatch],
        infos: &mut Vec<AppendInfo>,
    ) -> Result<()> {
        self.append_all(batches, infos)
    }

    fn append_all(&self, batches: &mut [EncodedBatch], infos: &mut Vec<AppendInfo>) -> Result<()> {
        self.check_writable()?;
        for b in batches.iter() {
            self.check_batch(b)?;
        }
        let sync_to = {
            let mut w = self.writer.lock();
            self.check_writable()?;
            self.append_all_locked(&mut w, batches, infos)?
        };
        self.sync.notify_appended();
        if let Some(target) = sync_to {
            self.sync_to(target)?;
        }
        Ok(())
    }

    /// `append_all` under the writer lock, past the checks that need no lock: the
    /// producer checks, then the append, poisoning the log if the append fails.
    fn append_all_locked(
        &self,
        w: &mut Writer,
        batches: &mut [EncodedBatch],
        infos: &mut Vec<AppendInfo>,
    ) -> Result<Option<i64>> {
        let log_append_time = (self.config.timestamp_type == TimestampType::LogAppendTime)
            .then(|| self.clock.now_ms());
        // Producer checks refuse the call without writing, so they do not poison.
        let staged = self.check_producers(w, batches, log_append_time)?;
        let result = self.append_locked(w, batches, infos, log_append_time, staged);
        if let Err(e) = &result {
            self.poison(e);
        }
        result
    }

    /// Appends one batch, as [`Log::append`] does and the producer does for a record
    /// sent on its own.
    ///
    /// The usual batch (no LogAppendTime, not transactional, no duplicate, no roll due)
    /// takes a path of its own: one look-up of its producer, no lists, and the producer's
    /// state recorded after the batch is published, so that a reader sees it sooner.
    /// Nothing reads that state without the writer lock, which is held throughout. A
    /// thread that has slept runs an append with cold caches, where every cache line and
    /// page of code it touches costs; this path touches few. Any other batch goes through
    /// the general path of [`Log::append_batches`], under the same lock.
    pub(crate) fn append_one(&self, batch: &mut EncodedBatch) -> Result<AppendInfo> {
        self.check_writable()?;
        self.check_batch(batch)?;
        let (info, sync_to) = {
            let mut w = self.writer.lock();
            self.check_writable()?;
            match self.append_plain(&mut w, batch)? {
                Some(appended) => appended,
                None => {
                    let mut infos = Vec::with_capacity(1);
                    let sync_to =
                        self.append_all_locked(&mut w, std::slice::from_mut(batch), &mut infos)?;
                    (infos[0], sync_to)
                }
            }
        };
        self.sync.notify_appended();
        if let Some(target) = sync_to {
            self.sync_to(target)?;
        }
        Ok(info)
    }

    /// `append_one`'s own path, under the writer lock: appends `batch` if it is the
    /// usual kind and returns what it wrote with the offset to fsync up to when the
    /// policy asks; `None` leaves it (and the log) untouched for the general path. A
    /// write failure poisons the log; a producer check's refusal does not.
    #[inline]
    fn append_plain(
        &self,
        w: &mut Writer,
        batch: &mut EncodedBatch,
    ) -> Result<Option<(AppendInfo, Option<i64>)>> {
        if self.config.timestamp_type == TimestampType::LogAppendTime {
            return Ok(None);
        }
        let (_, _, _, attributes) = batch.producer_header();
        if attributes & (ATTR_TRANSACTIONAL | ATTR_CONTROL) != 0 {
            return Ok(None);
        }
        let producer = producer_state::BatchProducer::of(batch);
        if let Some(b) = &producer {
            match w.producers.check_plain(&self.name, b) {
                Some(result) => result?,
                None => return Ok(None),
            }
        }
        let next = self.log_end_offset.load(Ordering::Relaxed);
        let last = next + i64::from(batch.last_offset_delta());
        let info = AppendInfo {
            base_offset: next,
            last_offset: last,
            max_timestamp: batch.max_timestamp(),
            log_append_time: None,
            records: batch.records_count(),
        };
        let size = batch.size() as u64;
        if self.should_roll(w, 0, w.active.index_room() == 0, size, &info) {
            return Ok(None);
        }
        // From here on the segment and the writer's state change together.
        let _unwind = PoisonOnUnwind(self);
        batch.stamp(next, self.config.leader_epoch);
        let index_entry = self.place(w, size, info.max_timestamp);
        let pending = PendingBatch {
            bytes: batch.as_bytes(),
            last_offset: last,
            max_timestamp: info.max_timestamp,
            index_entry,
        };
        if let Err(e) = self.write_run(w, &[pending]) {
            self.poison(&e);
            return Err(e);
        }
        if let Some(b) = &producer {
            let meta = producer_state::BatchMeta {
                first_seq: b.base_sequence,
                last_seq: b.last_sequence(),
                first_offset: next,
                last_offset: last,
                max_timestamp: info.max_timestamp,
            };
            w.producers.record_plain(b, meta, self.clock.now_ms());
        }
        w.unflushed_records += info.records as u64;
        Ok(Some((info, self.sync_due(w).then_some(last + 1))))
    }

    /// Refuses a batch larger than `max.message.bytes` or `segment.bytes`, or one without
    /// records, as every append does before it takes the writer lock.
    pub(crate) fn check_batch(&self, batch: &EncodedBatch) -> Result<()> {
        let size = batch.size();
        let limits = [
            (self.config.max_message_bytes, "max.message.bytes"),
            (self.config.segment_bytes, "segment.bytes"),
        ];
        for (limit, limit_name) in limits {
            if size > limit as usize {
                return Err(Error::BatchTooLarge {
                    partition: self.name.clone(),
                    size,
                    limit: limit as usize,
                    limit_name,
                });
            }
        }
        if batch.records_count() <= 0 {
            return Err(Error::InvalidBatch {
                partition: self.name.clone(),
                source: crate::DecodeError::Inconsistent("a batch needs at least one record"),
            });
        }
        Ok(())
    }

    /// The append itself, under the writer lock: stamps every batch, then writes them in
    /// runs, rolling between runs where a batch calls for it. Returns the offset to fsync
    /// up to when the policy asks for it.
    fn append_locked(
        &self,
        w: &mut Writer,
        batches: &mut [EncodedBatch],
        infos: &mut Vec<AppendInfo>,
        log_append_time: Option<i64>,
        staged: Option<producer_state::Staged>,
    ) -> Result<Option<i64>> {
        let mut next = self.log_end_offset.load(Ordering::Relaxed);
        for (i, batch) in batches.iter_mut().enumerate() {
            if let Some(dup) = staged.as_ref().and_then(|s| s.duplicate(i)) {
                infos.push(dup.append_info(log_append_time.is_some()));
                continue;
            }
            if let Some(now) = log_append_time {
                batch.set_max_timestamp(now, true);
            }
            batch.stamp(next, self.config.leader_epoch);
            let last = next + i64::from(batch.last_offset_delta());
            infos.push(AppendInfo {
                base_offset: next,
                last_offset: last,
                max_timestamp: batch.max_timestamp(),
                log_append_time,
                records: batch.records_count(),
            });
            next = last + 1;
        }
        let mut run: Vec<PendingBatch<'_>> = std::mem::take(&mut w.run_room);
        let mut run_bytes = 0u64;
        // Free index slots of the active segment, read once (it takes both index locks)
        // and counted down as the run queues batches.
        let mut index_room = w.active.index_room();
        let mut aborted: Vec<(i64, AbortedTxn)> = Vec::new();
        let mut txn_changed = false;
        let now = match (&staged, log_append_time) {
            (None, _) => 0,
            (Some(_), Some(t)) => t,
            (Some(_), None) => self.clock.now_ms(),
        };
        // From here on the segment and the writer's state change together.
        let _unwind = PoisonOnUnwind(self);
        for (i, (batch, info)) in batches.iter().zip(infos.iter()).enumerate() {
            if staged.as_ref().is_some_and(|s| s.duplicate(i).is_some()) {
                continue;
            }
            let size = batch.size() as u64;
            if self.should_roll(w, run_bytes, index_room <= run.len(), size, info) {
                self.write_run(w, &run)?;
                run.clear();
                run_bytes = 0;
                self.roll(w, info.base_offset)?;
                index_room = w.active.index_room();
            }
            if let Some(s) = &staged {
                // After a roll's snapshot (which must not cover it) and before the batch
                // is published: an opened transaction holds the LSO back first.
                if let Some(entry) = s.apply(i, info, now, &mut w.producers) {
                    aborted.push((w.active.base_offset(), entry));
                }
                if s.touches_transactions(i) {
                    txn_changed = true;
                    let first = w.producers.first_unstable_offset();
                    self.first_unstable
                        .fetch_min(first.unwrap_or(i64::MAX), Ordering::SeqCst);
                }
            }
            // Per batch even inside a multi-batch run (as Kafka's recovery does), so an
            // index never depends on how appends were grouped.
            let index_entry = self.place(w, size, info.max_timestamp);
            run.push(PendingBatch {
                bytes: batch.as_bytes(),
                last_offset: info.last_offset,
                max_timestamp: info.max_timestamp,
                index_entry,
            });
            run_bytes += size;
        }
        self.write_run(w, &run)?;
        if txn_changed {
            // The index entries of aborts go in before the LSO moves past their records.
            for (base, entry) in &aborted {
                txn_index::append(&txn_index::path(&self.dir, *base), &[*entry])?;
            }
            let first = w.producers.first_unstable_offset();
            self.first_unstable
                .store(first.unwrap_or(i64::MAX), Ordering::SeqCst);
        }
        let records: u64 = infos.iter().map(|i| i.records as u64).sum();
        w.unflushed_records += records;
        run.clear();
        trim_room(&mut run);
        w.run_room = keep_room(run);
        if let Some(s) = staged {
            let mut room = s.into_room();
            room.clear();
            trim_room(&mut room);
            w.staged_room = room;
        }
        Ok(self.sync_due(w).then_some(next))
    }

    /// Counts a batch of `size` bytes and `max_timestamp` into the active segment's
    /// writer state; returns whether it gets an index entry (Kafka's rule: once more than
    /// `index.interval.bytes` were appended since the last entry).
    #[inline(always)]
    fn place(&self, w: &mut Writer, size: u64, max_timestamp: i64) -> bool {
        let index_entry = w.bytes_since_index > u64::from(self.config.index_interval_bytes);
        if index_entry {
            w.bytes_since_index = 0;
        }
        w.bytes_since_index += size;
        if w.first_batch_timestamp.is_none() {
            w.first_batch_timestamp = Some(max_timestamp);
        }
        index_entry
    }

    /// Checks every batch that carries a producer id against the producers' state;
    /// `None` (and no allocation) when no batch carries one.
    fn check_producers(
        &self,
        w: &mut Writer,
        batches: &[EncodedBatch],
        log_append_time: Option<i64>,
    ) -> Result<Option<producer_state::Staged>> {
        if batches.iter().all(|b| b.producer_header().0 < 0) {
            return Ok(None);
        }
        let next = self.log_end_offset.load(Ordering::Relaxed);
        let room = std::mem::take(&mut w.staged_room);
        producer_state::Staged::check(
            &self.name,
            &w.producers,
            batches,
            next,
            log_append_time,
            room,
        )
        .map(Some)
    }

    /// Writes a run to the active segment and publishes the new log end offset.
    fn write_run(&self, w: &Writer, run: &[PendingBatch<'_>]) -> Result<()> {
        let Some(last) = run.last() else {
            return Ok(());
        };
        w.active.append(run)?;
        self.log_end_offset
            .store(last.last_offset + 1, Ordering::SeqCst);
        Ok(())
    }

    /// Whether the fsync policy asks for an fsync now; resets the record count if so.
    fn sync_due(&self, w: &mut Writer) -> bool {
        let due = match self.config.fsync {
            FsyncPolicy::Never => false,
            FsyncPolicy::EveryAppend => true,
            FsyncPolicy::EveryRecords(n) => w.unflushed_records >= n,
            FsyncPolicy::Interval(d) => {
                let since = self.clock.now_ms() - self.last_flush_ms.load(Ordering::Relaxed);
                since >= d.as_millis() as i64
            }
        };
        if due {
            w.unflushed_records = 0;
        }
        due
    }

    /// Whether the incoming batch must go to a new segment (Kafka's `shouldRoll`), given
    /// `run_bytes` already queued for the active segment and whether its indexes could
    /// be full once the queued batches add their entries.
    fn should_roll(
        &self,
        w: &Writer,
        run_bytes: u64,
        full_index: bool,
        size: u64,
        info: &AppendInfo,
    ) -> bool {
        let seg = &w.active;
        let seg_size = seg.size() + run_bytes;
        if seg_size == 0 {
            return false; // an empty segment never rolls
        }
        let full_by_size = seg_size > u64::from(self.config.segment_bytes) - size;
        let age = match w.first_batch_timestamp {
            Some(first) if first >= 0 => info.max_timestamp.saturating_sub(first),
            _ => self.clock.now_ms().saturating_sub(w.created_ms),
        };
        let full_by_time = age > self.config.segment_ms;
        let overflow = info.last_offset - seg.base_offset() > i64::from(i32::MAX);
        full_by_size || full_by_time || full_index || overflow
    }

    /// Seals the active segment, fsyncs it with its indexes (as Kafka flushes at roll) and
    /// starts a new one at `base_offset`.
    ///
    /// The fsync makes every sealed segment durable, so recovery after a crash never has
    /// to look behind the active segment, and sealed indexes are never lost.
    fn roll(&self, w: &mut Writer, base_offset: i64) -> Result<()> {
        w.active.seal()?;
        w.active.sync_log()?;
        w.active.sync_indexes()?;
        w.producers.remove_expired(self.clock.now_ms());
        producer_state::write_snapshot(&self.dir, base_offset, &w.producers)?;
        let seg = Arc::new(Segment::create(
            &self.dir,
            base_offset,
            self.config.segment_index_bytes as usize,
            self.config.segment_bytes as usize,
        )?);
        self.dir_dirty.store(true, Ordering::Release);
        // The directory holds the sealed segment's entry (and the new one's): fsync it
        // before the recovery point moves past the sealed segment.
        sync_dir(&self.dir)?;
        self.segments.write().push(seg.clone());
        self.recovery_point.fetch_max(base_offset, Ordering::AcqRel);
        w.active = seg;
        w.bytes_since_index = 0;
        w.first_batch_timestamp = None;
        w.created_ms = self.clock.now_ms();
        Ok(())
    }

    /// Starts a new segment now if the active one holds any batch (Kafka's `roll`).
    ///
    /// # Errors
    /// As [`Log::append`].
    pub fn roll_now(&self) -> Result<()> {
        self.check_writable()?;
        let mut w = self.writer.lock();
        if w.active.size() == 0 {
            return Ok(());
        }
        let result = self.roll(&mut w, self.log_end_offset());
        if let Err(e) = &result {
            self.poison(e);
        }
        result
    }

    /// Reads whole batches starting with the one that holds `offset`, up to `max_bytes`
    /// (at least one batch, however large, so a reader always makes progress).
    ///
    /// The first batch may begin before `offset`; callers skip the records below it, as
    /// Kafka's consumers do. Reading at the log end offset returns no batch.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] below the log start or above the log end offset;
    /// [`Error::CorruptBatch`] or [`Error::Io`] naming the segment file.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<Vec<RecordBatch>> {
        self.read_at(offset, max_bytes, &mut ReadCursor::default())
    }

    /// [`Log::read`] for a reader that goes on from where its last read ended: when
    /// `offset` is where `cursor` says that read stopped, in the same segment, the read
    /// starts at that byte instead of at the index's entry below `offset`. Leaves
    /// `cursor` after the last batch returned.
    pub(crate) fn read_at(
        &self,
        offset: i64,
        max_bytes: usize,
        cursor: &mut ReadCursor,
    ) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        self.read_into(offset, max_bytes, cursor, &mut out)?;
        Ok(out)
    }

    /// [`Log::read_at`] into `out` (emptied first), whose room a reader keeps between
    /// reads.
    pub(crate) fn read_into(
        &self,
        offset: i64,
        max_bytes: usize,
        cursor: &mut ReadCursor,
        out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        out.clear();
        let end = self.log_end_offset();
        self.check_offset(offset, end)?;
        let mut seg = self.segment_for(offset);
        // The segment publishes its size before the log publishes its end offset, so a
        // scan may meet a batch at or past `end`: it is not part of this read.
        while let Some(s) = seg {
            let found = match cursor.position_in(&s, offset) {
                Some(position) => s.find_batch_from(position, offset)?,
                None => s.find_batch(offset)?,
            };
            if let Some((mut scanner, position, first)) = found {
                if first.base_offset() >= end {
                    return Ok(());
                }
                let mut total = first.size();
                let mut after = (position + first.size() as u64, first.next_offset());
                out.push(first);
                while total < max_bytes {
                    match scanner.next_batch() {
                        Scanned::Batch(position, b)
                            if total + b.size() <= max_bytes && b.base_offset() < end =>
                        {
                            total += b.size();
                            after = (position + b.size() as u64, b.next_offset());
                            out.push(b);
                        }
                        _ => break,
                    }
                }
                *cursor = ReadCursor {
                    segment: Arc::downgrade(&s),
                    position: after.0,
                    offset: after.1,
                };
                return Ok(());
            }
            seg = self.segment_after(s.base_offset());
        }
        Ok(())
    }

    fn check_offset(&self, offset: i64, end: i64) -> Result<()> {
        let start = self.log_start_offset();
        if offset < start || offset > end {
            return Err(Error::OffsetOutOfRange {
                partition: self.name.clone(),
                offset,
                log_start_offset: start,
                log_end_offset: end,
            });
        }
        Ok(())
    }

    /// The segment whose range holds `offset` (the last one with base ≤ offset).
    fn segment_for(&self, offset: i64) -> Option<Arc<Segment>> {
        let segs = self.segments.read();
        let i = segs.partition_point(|s| s.base_offset() <= offset);
        segs.get(i.checked_sub(1)?).cloned()
    }

    fn segment_after(&self, base_offset: i64) -> Option<Arc<Segment>> {
        let segs = self.segments.read();
        let i = segs.partition_point(|s| s.base_offset() <= base_offset);
        segs.get(i).cloned()
    }

    /// The first offset whose record timestamp is ≥ `timestamp` (Kafka's ListOffsets by
    /// time), or `None` when every record is older.
    ///
    /// The time index finds the segment and a starting point; the batches from there are
    /// scanned and the first qualifying batch's records decoded.
    ///
    /// # Errors
    /// [`Error::CorruptBatch`] or [`Error::Io`] naming the segment file.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampOffset>> {
        let start = self.log_start_offset();
        let end = self.log_end_offset();
        let segs: Vec<Arc<Segment>> = self.segments.read().clone();
        for seg in segs.iter().filter(|s| s.max_timestamp() >= timestamp) {
            let from = seg
                .time_index()
                .read()
                .lookup(timestamp)
                .map_or(seg.base_offset(), |(_, o)| o)
                .max(start);
            let Some((mut scanner, mut pos, mut batch)) = seg.find_batch(from)? else {
                continue;
            };
            loop {
                // Like `read`, never past the log end offset loaded first.
                if batch.base_offset() >= end {
                    return Ok(None);
                }
                if batch.max_timestamp() >= timestamp
                    && let Some(found) =
                        self.first_at_or_after(seg, pos, &batch, timestamp, start)?
                {
                    return Ok(Some(found));
                }
                match scanner.next_batch() {
                    Scanned::Batch(p, b) => (pos, batch) = (p, b),
                    _ => break,
                }
            }
        }
        Ok(None)
    }

    fn first_at_or_after(
        &self,
        seg: &Segment,
        pos: u64,
        batch: &RecordBatch,
        timestamp: i64,
        start: i64,
    ) -> Result<Option<TimestampOffset>> {
        let corrupt = |source| Error::CorruptBatch {
            path: seg.log_path().to_path_buf(),
            position: pos,
            source,
        };
        for r in batch.records(&self.codecs).map_err(corrupt)? {
            let r = r.map_err(corrupt)?;
            if r.timestamp >= timestamp && r.offset >= start {
                return Ok(Some(TimestampOffset {
                    offset: r.offset,
                    timestamp: r.timestamp,
                }));
            }
        }
        Ok(None)
    }

    /// fsyncs everything appended so far, and the directory entries of new segment files;
    /// moves the recovery point to the log end offset.
    ///
    /// # Errors
    /// [`Error::Io`] when an fsync fails; the log is then poisoned.
    pub fn flush(&self) -> Result<()> {
        self.check_writable()?;
        self.sync_to(self.log_end_offset())
    }

    /// Flushes, writes the active segment's final time-index entry and trims its log file
    /// and indexes (fsynced, so the next open finds the files as Kafka leaves them).
    /// Later appends fail with [`Error::Closed`]; reads still work. Closing twice is a no-op.
    ///
    /// # Errors
    /// As [`Log::flush`].
    pub fn close(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        self.flush()?;
        let mut w = self.writer.lock();
        w.producers.remove_expired(self.clock.now_ms());
        let sealed = w
            .active
            .seal()
            .and_then(|()| w.active.sync_log())
            .and_then(|()| w.active.sync_indexes())
            .and_then(|()| {
                producer_state::write_snapshot(&self.dir, self.log_end_offset(), &w.producers)
            });
        if let Err(e) = &sealed {
            self.poison(e);
            return sealed;
        }
        self.closed.store(true, Ordering::Release);
        self.sync.notify_appended();
        Ok(())
    }

    /// Whether [`Log::close`] has run.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Blocks until the log end offset passes `offset` or `timeout` elapses; returns the
    /// log end offset then. Woken by appends on any thread, without polling.
    pub fn wait_for_append(&self, offset: i64, timeout: std::time::Duration) -> i64 {
        let waiter = Arc::new(Waiter::new());
        self.add_waiter(&waiter);
        let deadline = std::time::Instant::now().checked_add(timeout);
        waiter.park_until(deadline, || {
            self.log_end_offset() > offset || self.is_closed()
        });
        self.remove_waiter(&waiter);
        self.log_end_offset()
    }

    /// Registers a waiter to be unparked by every append.
    pub(crate) fn add_waiter(&self, w: &Arc<Waiter>) {
        self.sync.add_waiter(w);
    }

    /// Unregisters a waiter.
    pub(crate) fn remove_waiter(&self, w: &Arc<Waiter>) {
        self.sync.remove_waiter(w);
    }
}

#[cfg(test)]
mod read_cursor_tests {
    use super::*;
    use crate::record::{BatchBuilder, Compression};

    /// A batch of one record with key `key` and a 40-byte value.
    fn batch(key: &str) -> EncodedBatch {
        let mut b = BatchBuilder::new(Compression::None);
        b.push(
            1_700_000_000_000,
            Some(key.as_bytes()),
            Some(&[b'v'; 40]),
            &[],
        );
        b.build(&Codecs::default()).unwrap()
    }

    /// (base offset, bytes) of each batch, to compare reads.
    fn summary(batches: &[RecordBatch]) -> Vec<(i64, Vec<u8>)> {
        batches
            .iter()
            .map(|b| (b.base_offset(), b.as_bytes().to_vec()))
            .collect()
    }

    fn small_segments(dir: &Path) -> Log {
        let config = LogConfig {
            segment_bytes: 4096,
            ..LogConfig::default()
        };
        Log::open(dir, config).unwrap()
    }

    #[test]
    fn a_tailing_reader_reads_what_a_fresh_read_does_across_rolls() {
        let dir = tempfile::tempdir().unwrap();
        let log = small_segments(dir.path());
        let (mut cursor, mut fetch) = (ReadCursor::default(), 0);
        for i in 0..200 {
            for j in 0..=i % 4 {
                log.append(batch(&format!("k{i}.{j}"))).unwrap();
            }
            // Limits that cut reads short (a batch is about 110 bytes): the cursor must stop
            // after the last batch returned, not after the one the limit refused.
            let max = [1, 300, 1 << 20][i % 3];
            while fetch < log.log_end_offset() {
                let tailing = log.read_at(fetch, max, &mut cursor).unwrap();
                assert_eq!(summary(&tailing), summary(&log.read(fetch, max).unwrap()));
                assert_eq!(tailing[0].base_offset(), fetch, "read {i}");
                fetch = tailing.last().unwrap().next_offset();
                assert_eq!(cursor.offset, fetch);
                let seg = log.segment_for(fetch - 1).unwrap();
                assert!(std::ptr::eq(cursor.segment.as_ptr(), Arc::as_ptr(&seg)));
            }
            // Caught up: the cursor sits at the end of the segment it read last.
            let seg = log.segment_for(fetch - 1).unwrap();
            assert_eq!(cursor.position, seg.size(), "after append {i}");
        }
        assert!(log.segment_base_offsets().len() > 5, "the test must roll");
    }

    #[test]
    fn a_cursor_for_another_offset_or_segment_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let log = small_segments(dir.path());
        for i in 0..100 {
            // Keys repeat, so compaction below has records to drop.
            log.append(batch(&format!("k{}", i % 10))).unwrap();
        }
        let mut cursor = ReadCursor::default();
        log.read_at(0, 1 << 20, &mut cursor).unwrap();
        // A seek back: the cursor's position belongs to another offset.
        let back = log.read_at(3, 1, &mut cursor).unwrap();
        assert_eq!(summary(&back), summary(&log.read(3, 1).unwrap()));
        assert_eq!(back[0].base_offset(), 3);
        // The cleaner replaces the segment the cursor points into: offset 41 (key k1,
        // superseded at 91) is in the second segment, and compaction removes it.
        log.read_at(40, 1, &mut cursor).unwrap();
        assert_eq!(cursor.offset, 41);
        let before = cursor.clone();
        log.roll_now().unwrap();
        let report = log.compact(&CompactionConfig::default()).unwrap();
        assert!(report.segments_cleaned > 1);
        let mut stale = before.clone();
        let after = log.read_at(41, 1 << 20, &mut stale).unwrap();
        assert_eq!(summary(&after), summary(&log.read(41, 1 << 20).unwrap()));
        assert!(after[0].base_offset() > 41, "offset 41 was compacted away");
        assert!(!std::ptr::eq(
            stale.segment.as_ptr(),
            before.segment.as_ptr()
        ));
    }
}
