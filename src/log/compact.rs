//! Key compaction (reference §5.2, Kafka's `LogCleaner`): the latest record per key
//! survives below the active segment, tombstones go after `delete.retention.ms`, records
//! of aborted transactions go, and offsets stay where they were, with gaps.
//!
//! A pass runs in three steps, none of which holds a lock that appends or reads take:
//! 1. a scan of the batch headers of every sealed segment finds aborted transactions
//!    (data batches of a producer between its previous marker and an ABORT marker), the
//!    last batch of each producer, and transactions still open (their first offset caps
//!    the pass, as Kafka's last stable offset does);
//! 2. the offset map (key → latest offset) is built over the dirty range
//!    `[first dirty offset, first uncleanable offset)`, bounded by the dedupe buffer;
//! 3. the segments below the map's end are rewritten in groups that fit `segment.bytes`
//!    into `.cleaned` files, and each group is swapped in (see the `swap` module); only
//!    the in-memory swap of the segment list takes the list's write lock, briefly.
//!
//! The offset map keeps the keys themselves, not Kafka's MD5 digests, so two keys never
//! collide and a record is never dropped for another key's sake; the dedupe buffer
//! bounds the keys' bytes plus [`MAP_ENTRY_OVERHEAD`] per entry. When it fills, the pass
//! ends at the batch that filled it (at least one batch is always taken, so a pass always
//! progresses) and the next pass goes on from there.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use super::Log;
use super::swap::{self, SwapHook, SwapStep};
use crate::error::{Error, Result};
use crate::record::{ControlRecordType, Record, RecordBatch, rebuild};
use crate::segment::cleaned::CleanedWriter;
use crate::segment::{Scanned, Segment};

/// Bytes of the dedupe buffer counted for each offset-map entry on top of its key: the
/// offset, the hash-table slot and the key's allocation header.
pub const MAP_ENTRY_OVERHEAD: usize = 48;

/// The settings of a compaction pass, from the topic's and broker's configs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionConfig {
    /// Kafka: `delete.retention.ms`. How long a tombstone (and an emptied transaction's
    /// marker) stays after the cleaner first sees it (default 1 day).
    pub delete_retention_ms: i64,
    /// Kafka: `min.compaction.lag.ms`. Segments holding a record newer than this are not
    /// compacted yet (default 0).
    pub min_compaction_lag_ms: i64,
    /// Kafka: `log.cleaner.dedupe.buffer.size`. Memory for the offset map (default
    /// 128 MiB).
    pub dedupe_buffer_bytes: usize,
}

impl Default for CompactionConfig {
    fn default() -> CompactionConfig {
        CompactionConfig {
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            dedupe_buffer_bytes: 128 << 20,
        }
    }
}

/// What one compaction pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Where the dirty range began.
    pub first_dirty_offset: i64,
    /// Where the pass ended: the new first dirty offset.
    pub end_offset: i64,
    /// Segments rewritten.
    pub segments_cleaned: usize,
    /// Segments written in their place.
    pub segments_written: usize,
    /// Bytes of the segments rewritten.
    pub bytes_read: u64,
    /// Bytes written in their place.
    pub bytes_written: u64,
    /// Records removed (superseded, expired tombstones, aborted).
    pub records_removed: u64,
}

/// The log's cleanup state.
pub(super) struct CleanupState {
    /// Held by a retention or compaction pass, so they run one at a time.
    pub(super) pass: Mutex<()>,
    /// Kafka's "first dirty offset" (the `cleaner-offset-checkpoint` value).
    first_dirty: AtomicI64,
    /// Why cleaning stopped (a swap failed); cleared by reopening.
    disabled: Mutex<Option<String>>,
    hook: Mutex<Option<SwapHook>>,
}

impl std::fmt::Debug for CleanupState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CleanupState")
            .field("first_dirty", &self.first_dirty)
            .field("disabled", &self.disabled)
            .field("hook", &self.hook.lock().is_some())
            .finish()
    }
}

impl CleanupState {
    pub(super) fn new(first_dirty: i64) -> CleanupState {
        CleanupState {
            pass: Mutex::new(()),
            first_dirty: AtomicI64::new(first_dirty),
            disabled: Mutex::new(None),
            hook: Mutex::new(None),
        }
    }
}

/// Transactions found by the header scan.
#[derive(Default)]
struct TxnScan {
    /// Per producer id, `(first offset, ABORT marker offset)` of aborted transactions.
    aborted: HashMap<i64, Vec<(i64, i64)>>,
    /// Base offset of each producer's last batch.
    last_batch: HashMap<i64, i64>,
    /// The first offset of a transaction with no marker yet.
    first_open: Option<i64>,
}

impl TxnScan {
    fn is_aborted(&self, b: &RecordBatch) -> bool {
        b.is_transactional()
            && !b.is_control()
            && self.aborted.get(&b.producer_id()).is_some_and(|v| {
                v.iter()
                    .any(|(lo, hi)| (*lo..=*hi).contains(&b.base_offset()))
            })
    }
}

/// Per-pass state of the rewrite.
struct Rewrite<'a> {
    map: &'a HashMap<Bytes, i64>,
    end: i64,
    now: i64,
    horizon: i64,
    txns: &'a TxnScan,
    /// Per producer id: whether its current transaction kept a record.
    txn_kept: HashMap<i64, bool>,
    removed: u64,
}

enum Outcome {
    Keep,
    Rewrite(Vec<u8>),
    Drop,
}

impl Log {
    /// Kafka's first dirty offset: where the next compaction's dirty range begins.
    pub fn first_dirty_offset(&self) -> i64 {
        self.cleanup.first_dirty.load(Ordering::Acquire)
    }

    /// Sets the first dirty offset, from the owner's `cleaner-offset-checkpoint`. A value
    /// outside the log is reset to the log start offset by the next pass, as Kafka does.
    pub fn set_first_dirty_offset(&self, offset: i64) {
        self.cleanup.first_dirty.store(offset, Ordering::Release);
    }

    /// Kafka's dirty ratio: bytes of sealed segments at or after the first dirty offset,
    /// over bytes of all sealed segments (whole segments counted; 0 when there are none).
    pub fn dirty_ratio(&self) -> f64 {
        let first_dirty = self.first_dirty_offset();
        let segs = self.segments.read();
        let (mut clean, mut dirty) = (0u64, 0u64);
        for pair in segs.windows(2) {
            if pair[1].base_offset() <= first_dirty {
                clean += pair[0].size();
            } else {
                dirty += pair[0].size();
            }
        }
        if clean + dirty == 0 {
            0.0
        } else {
            dirty as f64 / (clean + dirty) as f64
        }
    }

    /// Largest record timestamp of the oldest sealed segment at or after the first dirty
    /// offset, for `max.compaction.lag.ms`; `None` without one.
    pub(crate) fn first_dirty_segment_timestamp(&self) -> Option<i64> {
        let first_dirty = self.first_dirty_offset();
        let segs = self.segments.read();
        segs.windows(2)
            .find(|p| p[1].base_offset() > first_dirty)
            .map(|p| p[0].max_timestamp())
    }

    /// Installs (or removes) a fault-injection hook called before every step of a
    /// segment swap. For tests of crash safety; not part of the stable API.
    #[doc(hidden)]
    pub fn set_swap_hook(&self, hook: Option<SwapHook>) {
        *self.cleanup.hook.lock() = hook;
    }

    /// Compacts the sealed segments now, whatever the dirty ratio, as Kafka's cleaner
    /// does (reference §5.2; docs/format.md §16 has the output format and the swap
    /// protocol). The active segment is never touched, and appends and reads go on while
    /// the pass runs; only the swap of the segment list takes the list's write lock.
    ///
    /// The dirty range starts at [`Log::first_dirty_offset`] and ends at the first
    /// uncleanable offset: the active segment's base, the first segment with a record
    /// newer than `min_compaction_lag_ms`, or the first offset of a transaction without
    /// its marker. With nothing dirty, the pass still drops tombstones past their
    /// horizon. Records written without the broker's keyless check (through
    /// [`Log::append`]) are dropped by compaction, as Kafka drops keyless records.
    ///
    /// # Errors
    /// [`Error::Closed`] after [`Log::close`];
    /// [`Error::CleanerDisabled`] after an earlier swap failed in this session;
    /// [`Error::CorruptBatch`] or [`Error::Io`] naming the file. A failure during a swap
    /// leaves the files for the next open to finish or undo, and disables cleaning of
    /// this log until then (Kafka marks such a partition uncleanable); the log keeps
    /// serving appends and reads from the segments it had.
    pub fn compact(&self, config: &CompactionConfig) -> Result<CompactionReport> {
        let _pass = self.cleanup.pass.lock();
        if self.is_closed() {
            return Err(Error::Closed(self.name.clone()));
        }
        self.check_cleanup_enabled()?;
        let now = self.clock.now_ms();
        let segs: Vec<Arc<Segment>> = self.segments.read().clone();
        let Some((active, sealed)) = segs.split_last() else {
            return Ok(CompactionReport::default());
        };
        let (start, end_of_log) = (self.log_start_offset(), self.log_end_offset());
        let mut first_dirty = self.first_dirty_offset();
        if first_dirty < start || first_dirty > end_of_log {
            first_dirty = start;
        }
        let mut report = CompactionReport {
            first_dirty_offset: first_dirty,
            end_offset: first_dirty,
            ..CompactionReport::default()
        };
        let mut uncleanable = active.base_offset();
        if config.min_compaction_lag_ms > 0 {
            let young = now.saturating_sub(config.min_compaction_lag_ms);
            if let Some(s) = sealed.iter().find(|s| s.max_timestamp() > young) {
                uncleanable = uncleanable.min(s.base_offset());
            }
        }
        let txns = self.scan_transactions(sealed)?;
        if let Some(open) = txns.first_open {
            uncleanable = uncleanable.min(open);
        }
        // With nothing dirty the pass still rewrites the clean segments whose tombstones
        // or markers reached their delete horizon (an unchanged group is left alone).
        let (map, end) = if first_dirty >= uncleanable {
            (HashMap::new(), first_dirty.min(uncleanable))
        } else {
            self.build_offset_map(sealed, first_dirty, uncleanable, &txns, config)?
        };
        let targets: Vec<Arc<Segment>> = sealed
            .iter()
            .filter(|s| s.base_offset() < end)
            .cloned()
            .collect();
        let mut rewrite = Rewrite {
            map: &map,
            end,
            now,
            horizon: now.saturating_add(config.delete_retention_ms),
            txns: &txns,
            txn_kept: HashMap::new(),
            removed: 0,
        };
        for group in self.groups(&targets) {
            report.bytes_read += group.iter().map(|s| s.size()).sum::<u64>();
            if let Some(written) = self.clean_group(group, &mut rewrite)? {
                report.segments_cleaned += group.len();
                report.bytes_written += written;
                report.segments_written += 1;
            }
        }
        report.records_removed = rewrite.removed;
        report.end_offset = end;
        self.cleanup.first_dirty.store(end, Ordering::Release);
        Ok(report)
    }

    /// [`Error::CleanerDisabled`] once a swap failed in this session. The segment list in
    /// memory then no longer matches the files on disk (the failed swap may have renamed
    /// the cleaned segments' files and put its output under the first one's name), so no
    /// cleanup — compaction, retention or `delete_records` — may delete files by name
    /// until a reopen has finished or undone the swap.
    pub(super) fn check_cleanup_enabled(&self) -> Result<()> {
        match self.cleanup.disabled.lock().clone() {
            Some(cause) => Err(Error::CleanerDisabled {
                partition: self.name.clone(),
                cause,
            }),
            None => Ok(()),
        }
    }

    /// Step 1: the header scan for transactions.
    fn scan_transactions(&self, sealed: &[Arc<Segment>]) -> Result<TxnScan> {
        let mut scan = TxnScan::default();
        let mut open: HashMap<i64, i64> = HashMap::new();
        for seg in sealed {
            let mut scanner = seg.scanner(0);
            while let Some((_, b)) = next_batch(seg, &mut scanner)? {
                if b.producer_id() >= 0 {
                    scan.last_batch.insert(b.producer_id(), b.base_offset());
                }
                if !b.is_transactional() {
                    continue;
                }
                if !b.is_control() {
                    // An empty data batch is a transaction's batch that an earlier pass
                    // emptied and kept: that transaction ended (its marker may be gone).
                    if b.records_count() > 0 {
                        open.entry(b.producer_id()).or_insert(b.base_offset());
                    }
                    continue;
                }
                let first = open.remove(&b.producer_id());
                if self.control_type(seg, &b)? == Some(ControlRecordType::Abort)
                    && let Some(first) = first
                {
                    let ranges = scan.aborted.entry(b.producer_id()).or_default();
                    ranges.push((first, b.base_offset()));
                }
            }
        }
        scan.first_open = open.values().copied().min();
        Ok(scan)
    }

    fn control_type(&self, seg: &Segment, b: &RecordBatch) -> Result<Option<ControlRecordType>> {
        let records = self.decode(seg, b)?;
        Ok(records
            .first()
            .and_then(|r| r.key.as_deref())
            .and_then(|k| ControlRecordType::parse_key(k).ok()))
    }

    fn decode(&self, seg: &Segment, b: &RecordBatch) -> Result<Vec<Record>> {
        let corrupt = |source| Error::CorruptRecords {
            partition: format!("{} ({})", self.name, seg.log_path().display()),
            offset: b.base_offset(),
            source,
        };
        b.records(&self.codecs)
            .map_err(corrupt)?
            .map(|r| r.map_err(corrupt))
            .collect()
    }

    /// Step 2: the offset map over `[first_dirty, uncleanable)` and where it ends.
    fn build_offset_map(
        &self,
        sealed: &[Arc<Segment>],
        first_dirty: i64,
        uncleanable: i64,
        txns: &TxnScan,
        config: &CompactionConfig,
    ) -> Result<(HashMap<Bytes, i64>, i64)> {
        let mut map: HashMap<Bytes, i64> = HashMap::new();
        let mut used = 0usize;
        let mut end = first_dirty;
        for seg in sealed {
            let mut scanner = seg.scanner(0);
            while let Some((_, b)) = next_batch(seg, &mut scanner)? {
                if b.base_offset() >= uncleanable {
                    return Ok((map, uncleanable));
                }
                if b.last_offset() < first_dirty {
                    continue;
                }
                if used >= config.dedupe_buffer_bytes && end > first_dirty {
                    return Ok((map, end));
                }
                if !b.is_control() && !txns.is_aborted(&b) {
                    for r in self.decode(seg, &b)? {
                        let Some(key) = r.key.filter(|_| r.offset >= first_dirty) else {
                            continue;
                        };
                        if map.insert(Bytes::copy_from_slice(&key), r.offset).is_none() {
                            used += key.len() + MAP_ENTRY_OVERHEAD;
                        }
                    }
                }
                end = b.next_offset();
            }
        }
        Ok((map, uncleanable))
    }

    /// Consecutive segments whose total size fits `segment.bytes` and whose offsets fit
    /// one segment's 31-bit relative offsets, as Kafka's `groupSegmentsBySize`.
    fn groups<'a>(&self, targets: &'a [Arc<Segment>]) -> Vec<&'a [Arc<Segment>]> {
        let limit = u64::from(self.config.segment_bytes);
        let mut out = Vec::new();
        let mut i = 0;
        while i < targets.len() {
            let (base, mut size, mut j) = (targets[i].base_offset(), targets[i].size(), i + 1);
            while j < targets.len()
                && size + targets[j].size() <= limit
                && targets
                    .get(j + 1)
                    .map_or(self.log_end_offset(), |s| s.base_offset())
                    - base
                    <= i64::from(i32::MAX)
            {
                size += targets[j].size();
                j += 1;
            }
            out.push(&targets[i..j]);
            i = j;
        }
        out
    }

    /// Step 3 for one group: writes the `.cleaned` output and swaps it in; returns its
    /// size, or `None` when every batch stayed as it was (the output is then dropped).
    fn clean_group(&self, group: &[Arc<Segment>], rw: &mut Rewrite<'_>) -> Result<Option<u64>> {
        let base = group[0].base_offset();
        let mut out = CleanedWriter::create(
            &self.dir,
            base,
            self.config.segment_index_bytes as usize,
            u64::from(self.config.index_interval_bytes),
        )?;
        // The batch seen last, written only once the next one shows it was not the last
        // of the group: the group's last batch always stays (empty if need be), so the
        // output ends where the group ended and a reopen after a crash mid-swap replaces
        // exactly the group's segments.
        let mut pending: Option<RecordBatch> = None;
        let mut changed = false;
        for seg in group {
            let mut scanner = seg.scanner(0);
            while let Some((_, b)) = next_batch(seg, &mut scanner)? {
                if let Some(prev) = pending.replace(b) {
                    changed |= self.write_filtered(&mut out, seg, &prev, rw, false)?;
                }
            }
        }
        if let Some(last) = pending {
            let seg = group.last().expect("a group is never empty");
            changed |= self.write_filtered(&mut out, seg, &last, rw, true)?;
        }
        let size = out.size();
        if !changed && group.len() == 1 {
            return out.discard().map(|()| None);
        }
        out.finish()?;
        let old: Vec<i64> = group.iter().map(|s| s.base_offset()).collect();
        let result = self.swap_in(base, &old);
        if let Err(e) = &result {
            *self.cleanup.disabled.lock() = Some(e.to_string());
        }
        result.map(|()| Some(size))
    }

    fn write_filtered(
        &self,
        out: &mut CleanedWriter,
        seg: &Segment,
        b: &RecordBatch,
        rw: &mut Rewrite<'_>,
        last_of_group: bool,
    ) -> Result<bool> {
        let outcome = self.filter_batch(seg, b, rw)?;
        let keep_empty = last_of_group
            || (b.producer_id() >= 0
                && rw.txns.last_batch.get(&b.producer_id()) == Some(&b.base_offset()));
        match outcome {
            Outcome::Keep => {
                out.append(b.as_bytes(), b.last_offset(), b.max_timestamp())?;
                return Ok(false);
            }
            Outcome::Rewrite(bytes) => {
                let max_ts =
                    crate::record::layout::get_i64(&bytes, crate::record::layout::MAX_TIMESTAMP);
                out.append(&bytes, b.last_offset(), max_ts)?;
            }
            Outcome::Drop if keep_empty => {
                let bytes = rebuild(b, &[], None, &self.codecs).map_err(|source| {
                    Error::CorruptRecords {
                        partition: self.name.clone(),
                        offset: b.base_offset(),
                        source,
                    }
                })?;
                out.append(&bytes, b.last_offset(), b.max_timestamp())?;
            }
            Outcome::Drop => {}
        }
        Ok(true)
    }

    /// What happens to one batch (reference §5.2's retention rule).
    fn filter_batch(
        &self,
        seg: &Segment,
        b: &RecordBatch,
        rw: &mut Rewrite<'_>,
    ) -> Result<Outcome> {
        let expired = b.has_delete_horizon() && rw.now >= b.base_timestamp();
        let pid = b.producer_id();
        if b.is_control() {
            let kind = self.control_type(seg, b)?;
            let had_data = rw.txn_kept.insert(pid, false).unwrap_or(false);
            if b.records_count() == 0 {
                // A marker already emptied (kept as its group's last batch): nothing to do.
                return Ok(Outcome::Keep);
            }
            let emptied = kind == Some(ControlRecordType::Abort) || !had_data;
            if b.last_offset() >= rw.end || !emptied || !b.is_transactional() {
                return Ok(Outcome::Keep);
            }
            if expired {
                rw.removed += b.records_count().max(0) as u64;
                return Ok(Outcome::Drop);
            }
            if b.has_delete_horizon() {
                return Ok(Outcome::Keep);
            }
            let records = self.decode(seg, b)?;
            return self.rebuilt(b, &records, Some(rw.horizon));
        }
        if rw.txns.is_aborted(b) {
            rw.removed += b.records_count().max(0) as u64;
            return Ok(Outcome::Drop);
        }
        let records = self.decode(seg, b)?;
        let total = records.len();
        let kept: Vec<Record> = records
            .into_iter()
            .filter(|r| {
                r.offset >= rw.end
                    || r.key.as_ref().is_some_and(|k| {
                        rw.map.get(k).is_none_or(|latest| r.offset >= *latest)
                            && (r.value.is_some() || !expired)
                    })
            })
            .collect();
        rw.removed += (total - kept.len()) as u64;
        if b.is_transactional() && !kept.is_empty() {
            rw.txn_kept.insert(pid, true);
        }
        let needs_horizon = !b.has_delete_horizon() && kept.iter().any(|r| r.value.is_none());
        if kept.len() == total && !needs_horizon {
            Ok(Outcome::Keep)
        } else if kept.is_empty() {
            Ok(Outcome::Drop)
        } else {
            self.rebuilt(b, &kept, needs_horizon.then_some(rw.horizon))
        }
    }

    fn rebuilt(&self, b: &RecordBatch, kept: &[Record], horizon: Option<i64>) -> Result<Outcome> {
        rebuild(b, kept, horizon, &self.codecs)
            .map(Outcome::Rewrite)
            .map_err(|source| Error::CorruptRecords {
                partition: self.name.clone(),
                offset: b.base_offset(),
                source,
            })
    }

    /// Renames the output into place and swaps the segment list.
    fn swap_in(&self, base: i64, old: &[i64]) -> Result<()> {
        let hook = self.cleanup.hook.lock().clone();
        swap::rename_into_place(&self.dir, base, old, hook.as_ref())?;
        if let Some(h) = &hook {
            h(&SwapStep::SwapList)?;
        }
        let seg = Arc::new(Segment::open(&self.dir, base)?);
        {
            let mut segs = self.segments.write();
            let i = segs.partition_point(|s| s.base_offset() < base);
            let n = segs[i..]
                .iter()
                .zip(old)
                .take_while(|(s, b)| s.base_offset() == **b)
                .count();
            debug_assert_eq!(n, old.len(), "the cleaned segments are still listed");
            segs.splice(i..i + n, [seg]);
        }
        swap::unlink_deleted(&self.dir, old, hook.as_ref())
    }
}

/// The next batch of `seg`, or `None` at its end; a malformed batch is an error naming
/// the file (a sealed segment was validated when it was opened or written).
pub(super) fn next_batch(
    seg: &Segment,
    scanner: &mut crate::segment::Scanner,
) -> Result<Option<(u64, RecordBatch)>> {
    match scanner.next_batch() {
        Scanned::Batch(pos, b) => Ok(Some((pos, b))),
        Scanned::End => Ok(None),
        Scanned::Torn(position) => Err(Error::CorruptBatch {
            path: seg.log_path().to_path_buf(),
            position,
            source: crate::DecodeError::Inconsistent("torn batch in a sealed segment"),
        }),
        Scanned::Corrupt(position, source) => Err(Error::CorruptBatch {
            path: seg.log_path().to_path_buf(),
            position,
            source,
        }),
        Scanned::Legacy(position, magic) => Err(Error::CorruptBatch {
            path: seg.log_path().to_path_buf(),
            position,
            source: crate::DecodeError::UnsupportedMagic { magic },
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::log::{LogConfig, LogOptions};
    use crate::record::{BatchBuilder, Codecs, Compression, EndTxnMarker, ProducerInfo};

    const T0: i64 = 1_700_000_000_000;
    const PID: i64 = 1000;

    fn put(log: &Log, key: &str, seq: Option<i32>) {
        let mut b = BatchBuilder::new(Compression::None);
        if let Some(base_sequence) = seq {
            b = b
                .producer(ProducerInfo {
                    producer_id: PID,
                    producer_epoch: 0,
                    base_sequence,
                })
                .transactional(true);
        }
        b.push(T0, Some(key.as_bytes()), Some(b"v"), &[]);
        log.append(b.build(&Codecs::default()).unwrap()).unwrap();
    }

    fn commit(log: &Log) {
        let mut b = BatchBuilder::new(Compression::None)
            .producer(ProducerInfo {
                producer_id: PID,
                producer_epoch: 0,
                base_sequence: -1,
            })
            .transactional(true)
            .control(true);
        let value = EndTxnMarker {
            coordinator_epoch: 0,
        }
        .value();
        b.push(
            T0,
            Some(&ControlRecordType::Commit.key()),
            Some(&value),
            &[],
        );
        log.append(b.build(&Codecs::default()).unwrap()).unwrap();
    }

    /// A transaction's data batch emptied by compaction but kept (the last batch of its
    /// group) once its marker was gone read, in the header scan, as the start of a
    /// transaction still open: the pass stopped there, and the first dirty offset moved
    /// back to it.
    #[test]
    fn an_emptied_transactional_batch_does_not_open_a_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let options = LogOptions {
            clock: clock.clone(),
            ..LogOptions::default()
        };
        let config = LogConfig {
            segment_bytes: 220,
            ..LogConfig::default()
        };
        let log = Log::open_with(dir.path().join("t-0"), config, options).unwrap();
        put(&log, "x", None); // 0
        put(&log, "a", Some(0)); // 1: P's first transaction
        log.roll_now().unwrap();
        commit(&log); // 2
        put(&log, "a", None); // 3: supersedes 1
        log.roll_now().unwrap();
        put(&log, "b", Some(1)); // 4: P's second transaction, still open
        put(&log, "y", None); // 5
        log.roll_now().unwrap();
        // One segment per group, so offset 1 ends its group and stays as an empty batch.
        let config = CompactionConfig::default();
        let groups: Vec<usize> = {
            let segs = log.segments.read().clone();
            log.groups(&segs[..3]).iter().map(|g| g.len()).collect()
        };
        assert_eq!(groups, [1, 1, 1]);
        assert_eq!(log.compact(&config).unwrap().end_offset, 4);
        clock.set(T0 + config.delete_retention_ms);
        assert_eq!(log.compact(&config).unwrap().end_offset, 4);
        // The COMMIT at 2 is gone; offset 1 is an empty transactional batch.
        let b = &log.read(1, 1 << 20).unwrap()[0];
        assert_eq!((b.base_offset(), b.records_count()), (1, 0));
        assert!(b.is_transactional() && !b.is_control());
        assert_eq!(log.read(2, 1 << 20).unwrap()[0].base_offset(), 3);
        let r = log.compact(&config).unwrap();
        assert_eq!((r.first_dirty_offset, r.end_offset), (4, 4), "{r:?}");
        assert_eq!(log.first_dirty_offset(), 4);
    }
}
