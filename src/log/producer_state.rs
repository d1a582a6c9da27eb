//! Per-partition producer state for idempotent and transactional appends (reference §6.1),
//! and its `%020d.snapshot` files (§6.3).
//!
//! For every producer id seen on the partition the log keeps the epoch, the last
//! [`BATCHES_TO_RETAIN`] batches' sequence ranges and offsets, and the first offset of its
//! open transaction. An append of a batch that carries a producer id is checked against
//! it: a resend of one of the cached batches is answered with the original offsets and not
//! written; a sequence gap is [`Error::OutOfOrderSequence`]; an older epoch is
//! [`Error::ProducerFenced`]. Batches without a producer id (`-1`) skip all of this, so
//! the non-idempotent path pays one header read per batch.
//!
//! The state survives restarts through snapshot files in Kafka's format, named for the
//! log end offset they describe (exclusive), written at roll and at clean close with
//! write-to-temporary, fsync, rename and a directory fsync. Opening loads the newest
//! snapshot at or below the log end offset and replays the batch headers after it; a
//! corrupt snapshot is deleted and the state rebuilt from the whole log, as Kafka does.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::txn_index::AbortedTxn;
use crate::error::{Error, IoContext, Result};
use crate::record::layout::{ATTR_CONTROL, ATTR_TRANSACTIONAL, NO_PRODUCER_EPOCH, NO_SEQUENCE};
use crate::record::{ControlRecordType, EncodedBatch, RecordBatch};
use crate::segment::{Scanned, Segment};

/// Batches per producer kept for duplicate detection (Kafka's `NUM_BATCHES_TO_RETAIN`).
pub(crate) const BATCHES_TO_RETAIN: usize = 5;

/// How long a producer with no open transaction is remembered after its last append
/// (Kafka's `producer.id.expiration.ms` default, one day). Every idempotent `Producer`
/// gets a new id, so without this a partition would keep every id it ever saw.
pub(crate) const PRODUCER_ID_EXPIRATION_MS: i64 = 24 * 60 * 60 * 1000;

/// Snapshot file version written and read (Kafka's `ProducerSnapshot` version 1).
const SNAPSHOT_VERSION: i16 = 1;
/// version (2) + crc (4) + count (4).
const SNAPSHOT_HEADER: usize = 10;
/// One entry: pid 8, epoch 2, lastSeq 4, lastOffset 8, offsetDelta 4, timestamp 8,
/// coordinatorEpoch 4, currentTxnFirstOffset 8.
const SNAPSHOT_ENTRY: usize = 46;
/// The snapshot file extension.
pub(crate) const SNAPSHOT_EXT: &str = "snapshot";

/// One batch a producer wrote: its sequence range and where it landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

/// What the partition knows about one producer id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    /// The last batches, oldest first, at most [`BATCHES_TO_RETAIN`].
    pub batches: VecDeque<BatchMeta>,
    pub coordinator_epoch: i32,
    /// First offset of the producer's open transaction on this partition.
    pub current_txn_first_offset: Option<i64>,
    pub last_timestamp: i64,
    /// When (the log's clock) this producer last appended here; `None` when it was
    /// loaded from a snapshot or replayed, which counts from the next expiry check.
    pub last_append_ms: Option<i64>,
}

impl ProducerEntry {
    fn new(epoch: i16) -> ProducerEntry {
        ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            coordinator_epoch: -1,
            current_txn_first_offset: None,
            last_timestamp: -1,
            last_append_ms: None,
        }
    }

    fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    fn push(&mut self, meta: BatchMeta) {
        if self.batches.len() == BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.batches.push_back(meta);
        self.last_timestamp = meta.max_timestamp;
    }
}

/// A batch's producer fields, read from its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchProducer {
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
    /// Records in the batch (`lastOffsetDelta + 1`).
    pub count: i32,
    pub transactional: bool,
    pub control: bool,
    /// A control batch whose marker is ABORT.
    pub abort: bool,
}

impl BatchProducer {
    /// The sequence of the batch's last record, wrapping at `i32::MAX` as Kafka does.
    pub(crate) fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.count - 1)
    }
}

/// `seq + by`, wrapping from `i32::MAX` to 0 (Kafka's `incrementSequence`).
pub(crate) fn increment_sequence(seq: i32, by: i32) -> i32 {
    if seq > i32::MAX - by {
        by - (i32::MAX - seq) - 1
    } else {
        seq + by
    }
}

/// What the check of an incoming batch decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Write it.
    Append,
    /// A resend of a batch already in the log: answer with these offsets, write nothing.
    Duplicate(BatchMeta),
}

/// Every producer's state on one partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProducerStates {
    pub producers: ProducerMap,
}

/// Producer entries by producer id.
pub(crate) type ProducerMap = HashMap<i64, ProducerEntry, BuildHasherDefault<IdHasher>>;

/// Hashes a producer id with one multiplication (Fibonacci hashing) instead of SipHash:
/// every append looks its producer up, ids are small integers the broker hands out, and
/// DoS resistance buys nothing for a map inside the application's own process.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_i64(&mut self, id: i64) {
        let h = (id as u64 ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // hashbrown takes the bucket from the low bits and a tag from the top 7: fold the
        // well-mixed high half down so both are.
        self.0 = h ^ (h >> 32);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl ProducerStates {
    /// Checks an incoming client batch against the producer's state (Kafka's
    /// `ProducerAppendInfo.checkProducerEpoch` and `checkSequence`, in that order, after
    /// the duplicate check).
    #[cfg(test)]
    pub(crate) fn check(&self, partition: &str, b: &BatchProducer) -> Result<Verdict> {
        check_entry(self.producers.get(&b.producer_id), partition, b)
    }

    /// Records a batch that was appended at `meta`'s offsets; returns the
    /// aborted-transaction index entry when it is an ABORT marker that ends an open
    /// transaction (§6.2: the LSO at abort is the first offset of another producer's
    /// open transaction, else the marker's offset + 1).
    pub(crate) fn update(&mut self, b: &BatchProducer, meta: BatchMeta) -> Option<AbortedTxn> {
        let entry = self
            .producers
            .entry(b.producer_id)
            .or_insert_with(|| ProducerEntry::new(b.epoch));
        let first_offset = update_entry(entry, b, meta)?;
        if !b.abort {
            return None;
        }
        let last_stable_offset = self.first_unstable_offset().unwrap_or(meta.last_offset + 1);
        Some(AbortedTxn {
            producer_id: b.producer_id,
            first_offset,
            last_offset: meta.last_offset,
            last_stable_offset,
        })
    }

    /// The check of one batch that is neither transactional nor a control batch, for the
    /// log's single-batch append: `Some(Ok(()))` to write it, `Some(Err)` to refuse it,
    /// `None` for a duplicate, which the general path answers.
    pub(crate) fn check_plain(&self, partition: &str, b: &BatchProducer) -> Option<Result<()>> {
        match check_entry(self.producers.get(&b.producer_id), partition, b) {
            Ok(Verdict::Append) => Some(Ok(())),
            Ok(Verdict::Duplicate(_)) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Records a batch that [`ProducerStates::check_plain`] let through, appended at
    /// `meta`'s offsets at `now` (the log's clock), as [`Staged::apply`] does.
    pub(crate) fn record_plain(&mut self, b: &BatchProducer, meta: BatchMeta, now: i64) {
        debug_assert!(!b.transactional && !b.control);
        let entry = self
            .producers
            .entry(b.producer_id)
            .or_insert_with(|| ProducerEntry::new(b.epoch));
        update_entry(entry, b, meta);
        entry.last_append_ms = Some(now);
    }

    /// Forgets the producers without an open transaction that have not appended for
    /// [`PRODUCER_ID_EXPIRATION_MS`] at `now` (Kafka's `removeExpiredProducers`).
    ///
    /// Kafka measures from the last batch's `maxTimestamp`; partlog measures from the
    /// log's clock at the append instead, so a producer writing old event times is not
    /// forgotten (and its resends then duplicated) at once. That time is not in the
    /// snapshot, so a reopened log counts a loaded producer from its first check.
    pub(crate) fn remove_expired(&mut self, now: i64) {
        self.producers.retain(|_, e| {
            if e.current_txn_first_offset.is_some() {
                return true;
            }
            match e.last_append_ms {
                Some(t) => now.saturating_sub(t) < PRODUCER_ID_EXPIRATION_MS,
                None => {
                    e.last_append_ms = Some(now);
                    true
                }
            }
        });
    }

    /// The first offset of the earliest open transaction, if any.
    pub(crate) fn first_unstable_offset(&self) -> Option<i64> {
        self.producers
            .values()
            .filter_map(|e| e.current_txn_first_offset)
            .min()
    }

    /// The snapshot bytes: Kafka's layout, entries ordered by producer id.
    pub(crate) fn encode_snapshot(&self) -> Vec<u8> {
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        let mut out = Vec::with_capacity(SNAPSHOT_HEADER + ids.len() * SNAPSHOT_ENTRY);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(ids.len() as i32).to_be_bytes());
        for id in ids {
            let e = &self.producers[id];
            let last = e.batches.back();
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.extend_from_slice(&last.map_or(NO_SEQUENCE, |b| b.last_seq).to_be_bytes());
            out.extend_from_slice(&last.map_or(-1i64, |b| b.last_offset).to_be_bytes());
            let delta = last.map_or(0, |b| (b.last_offset - b.first_offset) as i32);
            out.extend_from_slice(&delta.to_be_bytes());
            out.extend_from_slice(&e.last_timestamp.to_be_bytes());
            out.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            let txn = e.current_txn_first_offset.unwrap_or(-1);
            out.extend_from_slice(&txn.to_be_bytes());
        }
        let crc = crc32c::crc32c(&out[6..]);
        out[2..6].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses snapshot bytes; `Err` says what is wrong with them.
    pub(crate) fn decode_snapshot(bytes: &[u8]) -> std::result::Result<ProducerStates, String> {
        if bytes.len() < SNAPSHOT_HEADER {
            return Err(format!("{} bytes, shorter than the header", bytes.len()));
        }
        let version = i16::from_be_bytes([bytes[0], bytes[1]]);
        if version != SNAPSHOT_VERSION {
            return Err(format!("unknown version {version}"));
        }
        let crc = u32::from_be_bytes(bytes[2..6].try_into().expect("4 bytes"));
        let actual = crc32c::crc32c(&bytes[6..]);
        if crc != actual {
            return Err(format!("crc {crc:#010x} does not match {actual:#010x}"));
        }
        let count = i32::from_be_bytes(bytes[6..10].try_into().expect("4 bytes"));
        let body = &bytes[SNAPSHOT_HEADER..];
        if count < 0 || body.len() != count as usize * SNAPSHOT_ENTRY {
            return Err(format!("{count} entries do not fill {} bytes", body.len()));
        }
        let mut states = ProducerStates::default();
        for e in body.chunks_exact(SNAPSHOT_ENTRY) {
            let i64_at = |at: usize| i64::from_be_bytes(e[at..at + 8].try_into().expect("8"));
            let i32_at = |at: usize| i32::from_be_bytes(e[at..at + 4].try_into().expect("4"));
            let pid = i64_at(0);
            let mut entry = ProducerEntry::new(i16::from_be_bytes([e[8], e[9]]));
            let (last_seq, last_offset, delta) = (i32_at(10), i64_at(14), i32_at(22));
            entry.last_timestamp = i64_at(26);
            entry.coordinator_epoch = i32_at(34);
            entry.current_txn_first_offset = Some(i64_at(38)).filter(|&o| o >= 0);
            if last_seq >= 0 && last_offset >= 0 && delta >= 0 {
                entry.batches.push_back(BatchMeta {
                    first_seq: (i64::from(last_seq) - i64::from(delta)).rem_euclid(1 << 31) as i32,
                    last_seq,
                    first_offset: last_offset - i64::from(delta),
                    last_offset,
                    max_timestamp: entry.last_timestamp,
                });
            }
            states.producers.insert(pid, entry);
        }
        Ok(states)
    }
}

/// The checks of [`ProducerStates::check`] against one producer's entry.
fn check_entry(
    entry: Option<&ProducerEntry>,
    partition: &str,
    b: &BatchProducer,
) -> Result<Verdict> {
    let Some(entry) = entry else {
        return Ok(Verdict::Append); // unknown producer: any sequence is accepted
    };
    if b.epoch < entry.epoch {
        return Err(Error::ProducerFenced {
            partition: partition.to_string(),
            producer_id: b.producer_id,
            epoch: b.epoch,
            current_epoch: entry.epoch,
        });
    }
    if b.control || b.base_sequence == NO_SEQUENCE {
        // Markers and the coordinator's transactional offset commits carry no sequence.
        return Ok(Verdict::Append);
    }
    let last_seq = b.last_sequence();
    if b.epoch == entry.epoch
        && let Some(dup) = entry
            .batches
            .iter()
            .find(|m| m.first_seq == b.base_sequence && m.last_seq == last_seq)
    {
        return Ok(Verdict::Duplicate(*dup));
    }
    let expected = if b.epoch != entry.epoch {
        // A new epoch starts over at 0, unless the current one is unknown.
        (entry.epoch != NO_PRODUCER_EPOCH).then_some(0)
    } else {
        match entry.last_seq() {
            NO_SEQUENCE => Some(0),
            seq => Some(increment_sequence(seq, 1)),
        }
    };
    match expected {
        Some(e) if e != b.base_sequence => Err(Error::OutOfOrderSequence {
            partition: partition.to_string(),
            producer_id: b.producer_id,
            epoch: b.epoch,
            expected: e,
            received: b.base_sequence,
        }),
        _ => Ok(Verdict::Append),
    }
}

/// Records in `entry` a batch appended at `meta`'s offsets.
///
/// Returns the first offset of the transaction a marker ends, if one was open.
fn update_entry(entry: &mut ProducerEntry, b: &BatchProducer, meta: BatchMeta) -> Option<i64> {
    if b.epoch != entry.epoch {
        entry.epoch = b.epoch;
        entry.batches.clear();
    }
    if b.control {
        entry.last_timestamp = meta.max_timestamp;
        return entry.current_txn_first_offset.take();
    }
    if b.transactional && entry.current_txn_first_offset.is_none() {
        entry.current_txn_first_offset = Some(meta.first_offset);
    }
    if b.base_sequence == NO_SEQUENCE {
        entry.last_timestamp = meta.max_timestamp;
    } else {
        entry.push(meta);
    }
    None
}

/// Whether the control batch in `bytes` holds an ABORT marker (its first record's key).
/// A control batch is never compressed; one that does not parse counts as no ABORT.
fn control_is_abort(bytes: &[u8]) -> bool {
    RecordBatch::from_bytes(bytes::Bytes::copy_from_slice(bytes)).is_ok_and(|b| batch_is_abort(&b))
}

/// Whether the control batch `batch` holds an ABORT marker.
fn batch_is_abort(batch: &RecordBatch) -> bool {
    let Ok(mut records) = batch.records(&crate::record::Codecs::default()) else {
        return false;
    };
    matches!(
        records.next().and_then(|r| r.ok()).and_then(|r| r.key),
        Some(key) if ControlRecordType::parse_key(&key) == Ok(ControlRecordType::Abort)
    )
}

impl BatchMeta {
    /// The append result a duplicate is answered with: the original batch's offsets.
    pub(crate) fn append_info(&self, log_append_time: bool) -> super::AppendInfo {
        super::AppendInfo {
            base_offset: self.first_offset,
            last_offset: self.last_offset,
            max_timestamp: self.max_timestamp,
            log_append_time: log_append_time.then_some(self.max_timestamp),
            records: (self.last_offset - self.first_offset + 1) as i32,
        }
    }
}

impl BatchProducer {
    /// The producer fields of `batch`, or `None` when it carries no producer id.
    pub(crate) fn of(batch: &EncodedBatch) -> Option<BatchProducer> {
        let (producer_id, epoch, base_sequence, attributes) = batch.producer_header();
        (producer_id >= 0).then(|| BatchProducer {
            producer_id,
            epoch,
            base_sequence,
            count: batch.last_offset_delta() + 1,
            transactional: attributes & ATTR_TRANSACTIONAL != 0,
            control: attributes & ATTR_CONTROL != 0,
            abort: attributes & ATTR_CONTROL != 0 && control_is_abort(batch.as_bytes()),
        })
    }
}

/// The producer checks of one append call, made before anything is written: per batch,
/// its producer fields and the verdict, with the offsets it will get.
#[derive(Debug)]
pub(crate) struct Staged {
    batches: StagedRoom,
}

/// The vector of a [`Staged`]'s verdicts, kept by the log between appends.
pub(crate) type StagedRoom = Vec<Option<(BatchProducer, Verdict)>>;

impl Staged {
    /// Checks `batches`, to be appended from offset `next`, in order: a later batch of
    /// the same producer is checked against the state the earlier ones leave. The
    /// verdicts go in `room` (emptied first), which [`Staged::into_room`] gives back.
    pub(crate) fn check(
        partition: &str,
        states: &ProducerStates,
        batches: &[EncodedBatch],
        mut next: i64,
        log_append_time: Option<i64>,
        room: StagedRoom,
    ) -> Result<Staged> {
        let mut overlay: ProducerMap = HashMap::default();
        let mut out = room;
        out.clear();
        for (i, batch) in batches.iter().enumerate() {
            let last = next + i64::from(batch.last_offset_delta());
            let Some(b) = BatchProducer::of(batch) else {
                out.push(None);
                next = last + 1;
                continue;
            };
            let known = overlay
                .get(&b.producer_id)
                .or_else(|| states.producers.get(&b.producer_id));
            let verdict = check_entry(known, partition, &b)?;
            // The state a batch leaves is only read by later batches of the call: the last
            // one (the only one, for most appends) skips building it.
            if verdict == Verdict::Append && i + 1 < batches.len() {
                let meta = BatchMeta {
                    first_seq: b.base_sequence,
                    last_seq: b.last_sequence(),
                    first_offset: next,
                    last_offset: last,
                    max_timestamp: log_append_time.unwrap_or_else(|| batch.max_timestamp()),
                };
                let entry = overlay.entry(b.producer_id).or_insert_with(|| {
                    (states.producers.get(&b.producer_id).cloned())
                        .unwrap_or_else(|| ProducerEntry::new(b.epoch))
                });
                update_entry(entry, &b, meta);
                next = last + 1;
            }
            out.push(Some((b, verdict)));
        }
        Ok(Staged { batches: out })
    }

    /// The verdicts' vector, for the next call's `room`.
    pub(crate) fn into_room(self) -> StagedRoom {
        self.batches
    }

    /// Whether batch `i` (appended) may open or close a transaction.
    pub(crate) fn touches_transactions(&self, i: usize) -> bool {
        matches!(self.batches.get(i), Some(Some((b, Verdict::Append))) if b.transactional || b.control)
    }

    /// The original batch when batch `i` is a duplicate.
    pub(crate) fn duplicate(&self, i: usize) -> Option<BatchMeta> {
        match self.batches.get(i)? {
            Some((_, Verdict::Duplicate(meta))) => Some(*meta),
            _ => None,
        }
    }

    /// Records batch `i`, appended as `info` says at `now` (the log's clock), in
    /// `states`; returns the aborted-transaction entry it makes, if any.
    pub(crate) fn apply(
        &self,
        i: usize,
        info: &super::AppendInfo,
        now: i64,
        states: &mut ProducerStates,
    ) -> Option<AbortedTxn> {
        let Some(Some((b, Verdict::Append))) = self.batches.get(i) else {
            return None;
        };
        let aborted = states.update(
            b,
            BatchMeta {
                first_seq: b.base_sequence,
                last_seq: b.last_sequence(),
                first_offset: info.base_offset,
                last_offset: info.last_offset,
                max_timestamp: info.max_timestamp,
            },
        );
        if let Some(e) = states.producers.get_mut(&b.producer_id) {
            e.last_append_ms = Some(now);
        }
        aborted
    }
}

/// Replays `batch`, read back from the log, into `states` without checks (Kafka's
/// `loadProducersFromRecords`); returns the aborted-transaction entry it makes.
pub(crate) fn replay(states: &mut ProducerStates, batch: &RecordBatch) -> Option<AbortedTxn> {
    let producer_id = batch.producer_id();
    if producer_id < 0 {
        return None;
    }
    let b = BatchProducer {
        producer_id,
        epoch: batch.producer_epoch(),
        base_sequence: batch.base_sequence(),
        count: batch.last_offset_delta() + 1,
        transactional: batch.is_transactional(),
        control: batch.is_control(),
        abort: batch.is_control() && batch_is_abort(batch),
    };
    let meta = BatchMeta {
        first_seq: b.base_sequence,
        last_seq: b.last_sequence(),
        first_offset: batch.base_offset(),
        last_offset: batch.last_offset(),
        max_timestamp: batch.max_timestamp(),
    };
    states.update(&b, meta)
}

/// Appends `aborted` to the `.txnindex` of the segment at `base` unless it is there
/// already (the replay after a crash meets markers whose entries were written).
fn restore_txn_entry(dir: &Path, base: i64, aborted: AbortedTxn) -> Result<()> {
    let path = super::txn_index::path(dir, base);
    let present = super::txn_index::read(&path)?
        .last()
        .is_some_and(|e| e.last_offset >= aborted.last_offset);
    if present {
        return Ok(());
    }
    super::txn_index::append(&path, &[aborted])
}

/// The path of the snapshot for log end offset `offset`.
pub(crate) fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(crate::segment::file_name(offset, SNAPSHOT_EXT))
}

/// The offsets of the snapshot files in `dir`, ascending.
pub(crate) fn list_snapshots(dir: &Path) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        if let Some((offset, SNAPSHOT_EXT)) =
            name.to_str().and_then(crate::segment::parse_file_name)
        {
            out.push(offset);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Writes the snapshot for log end offset `offset` durably (temporary file, fsync,
/// rename, directory fsync), then deletes snapshots older than the previous one.
pub(crate) fn write_snapshot(dir: &Path, offset: i64, states: &ProducerStates) -> Result<()> {
    let path = snapshot_path(dir, offset);
    let tmp = path.with_extension("snapshot.tmp");
    let bytes = states.encode_snapshot();
    let mut f = fs::File::create(&tmp).at(&tmp)?;
    f.write_all(&bytes).at(&tmp)?;
    f.sync_all().at(&tmp)?;
    drop(f);
    fs::rename(&tmp, &path).at(&path)?;
    let all = list_snapshots(dir)?;
    // Keep this snapshot and the one before it; older ones describe nothing new.
    let keep_from = all.len().saturating_sub(2);
    for &old in &all[..keep_from] {
        let p = snapshot_path(dir, old);
        fs::remove_file(&p).at(&p)?;
    }
    super::sync_dir(dir)
}

/// Deletes snapshots describing offsets past `log_end` (recovery cut the log below
/// them) and leftover temporary files; returns the newest remaining snapshot that
/// parses, deleting corrupt ones on the way.
pub(crate) fn load_latest(dir: &Path, log_end: i64) -> Result<Option<(i64, ProducerStates)>> {
    for entry in fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        if path.to_str().is_some_and(|p| p.ends_with(".snapshot.tmp")) {
            fs::remove_file(&path).at(&path)?;
        }
    }
    let mut found = None;
    for offset in list_snapshots(dir)?.into_iter().rev() {
        let path = snapshot_path(dir, offset);
        if offset > log_end {
            fs::remove_file(&path).at(&path)?;
            continue;
        }
        if found.is_some() {
            continue;
        }
        let bytes = fs::read(&path).at(&path)?;
        match ProducerStates::decode_snapshot(&bytes) {
            Ok(states) => found = Some((offset, states)),
            Err(_) => fs::remove_file(&path).at(&path)?,
        }
    }
    Ok(found)
}

/// The producers' state of a log opened with `segments` up to `log_end`: the newest
/// valid snapshot, then every batch after it replayed.
pub(crate) fn rebuild(
    dir: &Path,
    segments: &[std::sync::Arc<Segment>],
    log_end: i64,
) -> Result<ProducerStates> {
    let (from, mut states) = load_latest(dir, log_end)?.unwrap_or_default();
    for (i, seg) in segments.iter().enumerate() {
        let upper = segments.get(i + 1).map_or(i64::MAX, |s| s.base_offset());
        if upper <= from {
            continue;
        }
        super::txn_index::repair(&super::txn_index::path(dir, seg.base_offset()), log_end)?;
        let Some((mut scanner, _, mut batch)) = seg.find_batch(from)? else {
            continue;
        };
        loop {
            if batch.base_offset() >= log_end {
                return Ok(states);
            }
            if let Some(aborted) = replay(&mut states, &batch) {
                restore_txn_entry(dir, seg.base_offset(), aborted)?;
            }
            match scanner.next_batch() {
                Scanned::Batch(_, b) => batch = b,
                _ => break,
            }
        }
    }
    Ok(states)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, seq: i32, count: i32) -> BatchProducer {
        BatchProducer {
            producer_id: pid,
            epoch,
            base_sequence: seq,
            count,
            transactional: false,
            control: false,
            abort: false,
        }
    }

    fn meta(b: &BatchProducer, first: i64) -> BatchMeta {
        BatchMeta {
            first_seq: b.base_sequence,
            last_seq: b.last_sequence(),
            first_offset: first,
            last_offset: first + i64::from(b.count) - 1,
            max_timestamp: 7,
        }
    }

    #[test]
    fn duplicate_gap_and_fencing() {
        let mut s = ProducerStates::default();
        let b0 = batch(9, 0, 0, 3);
        assert_eq!(s.check("t-0", &b0).unwrap(), Verdict::Append);
        s.update(&b0, meta(&b0, 10));
        assert_eq!(
            s.check("t-0", &b0).unwrap(),
            Verdict::Duplicate(meta(&b0, 10))
        );
        let gap = batch(9, 0, 4, 1);
        assert!(matches!(
            s.check("t-0", &gap),
            Err(Error::OutOfOrderSequence {
                expected: 3,
                received: 4,
                ..
            })
        ));
        let next = batch(9, 0, 3, 1);
        assert_eq!(s.check("t-0", &next).unwrap(), Verdict::Append);
        s.update(&next, meta(&next, 13));
        let bumped = batch(9, 1, 0, 1);
        assert_eq!(s.check("t-0", &bumped).unwrap(), Verdict::Append);
        s.update(&bumped, meta(&bumped, 14));
        assert!(matches!(
            s.check("t-0", &next),
            Err(Error::ProducerFenced {
                epoch: 0,
                current_epoch: 1,
                ..
            })
        ));
        assert!(matches!(
            s.check("t-0", &batch(9, 2, 5, 1)),
            Err(Error::OutOfOrderSequence { expected: 0, .. })
        ));
    }

    #[test]
    fn only_five_batches_are_remembered() {
        let mut s = ProducerStates::default();
        for i in 0..6 {
            let b = batch(1, 0, i, 1);
            s.update(&b, meta(&b, i64::from(i)));
        }
        assert_eq!(s.producers[&1].batches.len(), BATCHES_TO_RETAIN);
        assert!(matches!(
            s.check("t-0", &batch(1, 0, 0, 1)),
            Err(Error::OutOfOrderSequence { expected: 6, .. })
        ));
        assert!(matches!(
            s.check("t-0", &batch(1, 0, 1, 1)),
            Ok(Verdict::Duplicate(_))
        ));
    }

    #[test]
    fn sequences_wrap_at_int_max() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(batch(1, 0, i32::MAX, 2).last_sequence(), 0);
    }

    #[test]
    fn snapshot_round_trip_keeps_the_last_batch() {
        let mut s = ProducerStates::default();
        for i in 0..3 {
            let b = batch(5, 2, i * 4, 4);
            s.update(&b, meta(&b, 100 + i64::from(i) * 4));
        }
        let mut t = batch(6, 0, 0, 2);
        t.transactional = true;
        s.update(&t, meta(&t, 200));
        let bytes = s.encode_snapshot();
        assert_eq!(bytes.len(), SNAPSHOT_HEADER + 2 * SNAPSHOT_ENTRY);
        let back = ProducerStates::decode_snapshot(&bytes).unwrap();
        let e = &back.producers[&5];
        assert_eq!(e.epoch, 2);
        assert_eq!(
            e.batches.iter().copied().collect::<Vec<_>>(),
            vec![BatchMeta {
                first_seq: 8,
                last_seq: 11,
                first_offset: 108,
                last_offset: 111,
                max_timestamp: 7,
            }]
        );
        assert_eq!(back.producers[&6].current_txn_first_offset, Some(200));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(
                ProducerStates::decode_snapshot(&bad).is_err(),
                "flip at {i}"
            );
        }
        for n in 0..bytes.len() {
            assert!(ProducerStates::decode_snapshot(&bytes[..n]).is_err());
        }
    }
}
