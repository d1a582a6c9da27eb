//! Producers: records in, batches per partition, appended by size or after `linger`.

mod idempotence;
mod partitioner;
mod transactions;

use std::any::Any;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use idempotence::ProducerId;
use partitioner::Sticky;
pub use partitioner::{Partitioner, murmur2, partition_for_key};

use crate::broker::{Broker, Topic, TopicCompression};
use crate::error::{Error, Result};
use crate::log::{AppendInfo, Log};
use crate::record::{
    BATCH_HEADER_SIZE, BatchBuilder, Codecs, Compression, EncodedBatch, Header, RecordHead,
};

/// Producer settings; `Default` gives Kafka's defaults where they apply.
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    /// Kafka: `batch.size`. A partition's batch is appended once it holds this many bytes
    /// (default 16384); keyless records also move to another partition after this many.
    pub batch_size: usize,
    /// Kafka: `linger.ms`. A batch that is not full is appended this long after its first
    /// record (default 5 ms, as in Kafka 4.0).
    pub linger: Duration,
    /// Kafka: `compression.type` (default none). A topic whose own `compression.type` is
    /// a codec overrides it.
    pub compression: Compression,
    /// Kafka: `partitioner.class`. Chooses the partition of records that name none;
    /// `None` uses Kafka's built-in rule (murmur2 of the key, sticky when keyless).
    pub partitioner: Option<Arc<dyn Partitioner>>,
    /// Kafka: `buffer.memory`. Bytes of full batches that may wait for the sender thread
    /// (default 32 MiB); past it, `send` appends its partition's batches itself, which
    /// slows the caller down to the log's pace instead of growing memory. As Kafka's
    /// `BufferPool` does, the producer keeps the buffers of appended batches for its next
    /// batches: up to an eighth of this (4 MiB by default).
    pub buffer_memory: usize,
    /// Kafka: `enable.idempotence` (default true, as in Kafka ≥ 3.0). The producer gets a
    /// producer id from the broker and numbers each partition's records from 0; every
    /// batch carries the id, epoch and its first record's sequence, assigned as the batch
    /// is appended, so the log writes a resent batch only once and refuses a gap. A batch
    /// that fails before it is written uses up no sequence number.
    pub enable_idempotence: bool,
    /// Kafka: `transactional.id` (default none). Makes the producer transactional (and
    /// idempotent): call [`Producer::init_transactions`] once before sending, and send
    /// only inside [`Producer::begin_transaction`] … commit or abort.
    pub transactional_id: Option<String>,
    /// Kafka: `transaction.timeout.ms` (default 60 s): the broker aborts a transaction
    /// open for longer, and fences its producer.
    pub transaction_timeout: Duration,
}

impl Default for ProducerConfig {
    fn default() -> ProducerConfig {
        ProducerConfig {
            batch_size: 16 * 1024,
            linger: Duration::from_millis(5),
            compression: Compression::None,
            partitioner: None,
            buffer_memory: 32 << 20,
            enable_idempotence: true,
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
        }
    }
}

/// A record to send. It borrows its parts: `send` copies them into the partition's batch
/// at once, so the caller's buffers are free again when `send` returns.
#[derive(Clone, Copy, Debug)]
pub struct ProducerRecord<'a> {
    /// The topic.
    pub topic: &'a str,
    /// An explicit partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// The key; `None` is a null key.
    pub key: Option<&'a [u8]>,
    /// The value; `None` is a null value (a tombstone on compacted topics).
    pub value: Option<&'a [u8]>,
    /// Headers.
    pub headers: &'a [Header],
    /// The record's timestamp in ms; `None` takes the broker clock's time at `send`.
    pub timestamp: Option<i64>,
}

impl<'a> ProducerRecord<'a> {
    /// A keyless record with `value`.
    pub fn new(topic: &'a str, value: &'a [u8]) -> ProducerRecord<'a> {
        ProducerRecord {
            topic,
            partition: None,
            key: None,
            value: Some(value),
            headers: &[],
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }

    /// Sets the value; `None` makes a tombstone.
    pub fn value(mut self, value: Option<&'a [u8]>) -> Self {
        self.value = value;
        self
    }

    /// Sends to this partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the headers.
    pub fn headers(mut self, headers: &'a [Header]) -> Self {
        self.headers = headers;
        self
    }

    /// Sets the timestamp (ms since the Unix epoch).
    pub fn timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }
}

/// Where a sent record landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The record's timestamp as stored (the append time on LogAppendTime topics).
    pub timestamp: i64,
}

/// The outcome of one batch, shared by the handles of its records.
#[derive(Debug, Default)]
struct BatchState {
    result: Mutex<Option<std::result::Result<AppendInfo, Arc<Error>>>>,
    done: Condvar,
}

impl BatchState {
    fn complete(&self, result: std::result::Result<AppendInfo, Arc<Error>>) {
        *self.result.lock() = Some(result);
        self.done.notify_all();
    }

    /// Fails the batch unless it already has its result: a drain that unwound may have
    /// completed some of its batches before the panic.
    fn fail_if_pending(&self, e: &Arc<Error>) {
        let mut result = self.result.lock();
        if result.is_none() {
            *result = Some(Err(e.clone()));
            drop(result);
            self.done.notify_all();
        }
    }
}

/// The pending result of a [`Producer::send`]; resolves once the record's batch is
/// appended, and fsynced when the topic's fsync policy asks for it.
#[derive(Debug)]
#[must_use = "a send's failure is reported only through its handle"]
pub struct SendHandle {
    batch: Outcome,
    partition: i32,
    delta: i32,
    timestamp: i64,
}

/// Where a handle's result is.
#[derive(Debug)]
enum Outcome {
    /// In the state its batch shares with the other records' handles, once appended.
    Batch(Arc<BatchState>),
    /// Already known: the record was appended on its own by the sending thread.
    Appended(std::result::Result<AppendInfo, Arc<Error>>),
}

impl SendHandle {
    /// Blocks until the batch is appended.
    ///
    /// # Errors
    /// [`Error::BatchFailed`] wrapping why the batch's append failed; a batch whose
    /// append panicked on another thread (the sender thread, or one in
    /// [`Producer::flush`]) fails with [`Error::AppendPanicked`], so no handle waits for
    /// ever. A record that [`Producer::send_blocking`] appends on its own, on the
    /// calling thread, passes a panic on to that thread instead, as any call does.
    pub fn wait(self) -> Result<RecordMetadata> {
        let batch = match &self.batch {
            Outcome::Batch(batch) => batch,
            Outcome::Appended(r) => return self.metadata(r),
        };
        let mut r = batch.result.lock();
        while r.is_none() {
            batch.done.wait(&mut r);
        }
        self.metadata(r.as_ref().expect("set"))
    }

    /// Whether the batch has been appended (or failed).
    pub fn is_done(&self) -> bool {
        match &self.batch {
            Outcome::Batch(batch) => batch.result.lock().is_some(),
            Outcome::Appended(_) => true,
        }
    }

    fn metadata(&self, r: &std::result::Result<AppendInfo, Arc<Error>>) -> Result<RecordMetadata> {
        match r {
            Ok(info) => Ok(RecordMetadata {
                partition: self.partition,
                offset: info.base_offset + i64::from(self.delta),
                timestamp: info.log_append_time.unwrap_or(self.timestamp),
            }),
            Err(e) => Err(Error::BatchFailed(e.clone())),
        }
    }
}

/// Unique ids for producers, so a per-thread cache never mistakes one for another.
static NEXT_PRODUCER_ID: AtomicU64 = AtomicU64::new(1);

/// (producer id, broker topic epoch, topic name, its queues).
type CachedTopic = (u64, u64, String, Weak<TopicQueues>);

thread_local! {
    /// The last topic this thread sent to: (producer id, broker topic epoch, name, queues).
    /// Most senders send to one topic; this skips the map lookup and its lock. Weak, so
    /// it keeps nothing alive.
    static LAST_TOPIC: RefCell<Option<CachedTopic>> = const { RefCell::new(None) };
}

/// FNV-1a: topic names are short, and SipHash's DoS resistance buys nothing for a map
/// keyed by the application's own topic names.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The batch a partition is filling.
#[derive(Debug)]
struct OpenBatch {
    builder: BatchBuilder,
    state: Arc<BatchState>,
    /// Counts batches, so a linger deadline can tell whether its batch is still open.
    generation: u64,
    /// Bytes of keyless records sent here while this was the topic's sticky partition;
    /// counted under this lock, so a send pays no atomic operation for it.
    sticky_bytes: usize,
}

impl OpenBatch {
    fn new(compression: Compression, capacity: usize) -> OpenBatch {
        OpenBatch {
            builder: BatchBuilder::with_capacity(compression, capacity),
            state: Arc::default(),
            generation: 0,
            sticky_bytes: 0,
        }
    }

    /// Takes the batch out, leaving an empty one in its place (in a buffer from
    /// `buffers` when it has one). An idempotent producer's batch gets its id, epoch and
    /// base sequence later, as it is appended (see `Drain::next_sequence`).
    fn take(&mut self, capacity: usize, buffers: &Buffers) -> TakenBatch {
        self.generation += 1;
        let compression = self.builder.compression();
        let next = match buffers.take() {
            Some(buffer) => BatchBuilder::with_buffer(compression, buffer, capacity),
            None => BatchBuilder::with_capacity(compression, capacity),
        };
        let builder = std::mem::replace(&mut self.builder, next);
        let state = std::mem::replace(&mut self.state, buffers.take_state());
        (builder, state)
    }
}

/// The largest buffer a partition keeps for `send_blocking`'s lone records.
const ALONE_KEEP: usize = 4096;

/// A batch taken from a partition's open batch, with the state its handles wait on.
type TakenBatch = (BatchBuilder, Arc<BatchState>);

/// A drain's working lists, kept between drains (empty, with their room) so that an
/// append of one batch (`send_blocking`) allocates none of them.
#[derive(Debug, Default)]
struct Drain {
    batches: VecDeque<TakenBatch>,
    encoded: Vec<EncodedBatch>,
    states: Vec<Arc<BatchState>>,
    infos: Vec<AppendInfo>,
    /// The buffer of the last record appended on its own (`Producer::append_alone`).
    alone: Vec<u8>,
    /// Sequence number of the next record of an idempotent producer on this partition.
    ///
    /// Kept under the append lock and given to a batch only as it is appended, in the
    /// order batches reach the log: a batch that fails before it is written (too large
    /// once compressed, refused by the transaction coordinator or the log) uses up no
    /// sequence number, so the batches after it do not meet a gap. Kafka's sender gets
    /// the same result by renumbering the batches in flight after such a failure.
    next_sequence: i32,
}

impl Drain {
    /// Room kept in each list between drains; a burst's larger room is given back.
    const KEEP: usize = 64;

    /// Fails every batch of a drain whose append panicked with `payload`, and empties
    /// the lists, so that none of them is appended again by the next drain.
    fn fail_unwound(&mut self, queue: &PartitionQueue, payload: &(dyn Any + Send)) {
        let message = payload
            .downcast_ref::<&str>()
            .map(|m| (*m).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let e = Arc::new(Error::AppendPanicked {
            partition: queue.log.name().to_string(),
            message,
        });
        queue.failed.lock().get_or_insert_with(|| e.clone());
        for (_, state) in self.batches.drain(..) {
            state.fail_if_pending(&e);
        }
        for state in self.states.drain(..) {
            state.fail_if_pending(&e);
        }
        self.encoded.clear();
        self.infos.clear();
    }

    /// Empties the lists (after a drain they are empty unless one unwound past
    /// [`Drain::fail_unwound`]) and trims their room.
    fn reset(&mut self) {
        self.batches.clear();
        self.encoded.clear();
        self.states.clear();
        self.infos.clear();
        self.batches.shrink_to(Self::KEEP);
        self.encoded.shrink_to(Self::KEEP);
        self.states.shrink_to(Self::KEEP);
        self.infos.shrink_to(Self::KEEP);
    }
}

/// Buffers and states of batches already appended, for the next batches: without them
/// each batch's buffer and state are allocated on the sending thread and freed on the
/// sender thread, and the two threads take turns on the allocator's lock for them (a
/// futex wait, often). A state comes back while handles may still hold it (a
/// `send_blocking` caller's does until it has read the result), and is reused once none
/// does.
#[derive(Debug)]
struct Buffers {
    spare: Mutex<Vec<Vec<u8>>>,
    states: Mutex<Vec<Arc<BatchState>>>,
    /// Buffers (and states) kept at most, for the whole producer: an eighth of
    /// `buffer_memory` in buffers of `max_bytes` (128 with Kafka's defaults, 2 to 4 MiB),
    /// so that a sender thread catching up on many batches at once gives them all back.
    keep: usize,
    /// Buffers larger than this (grown by a record over `batch.size`) are not kept.
    max_bytes: usize,
}

impl Buffers {
    fn new(batch_size: usize, buffer_memory: usize) -> Buffers {
        let max_bytes = 2 * batch_size.max(BATCH_HEADER_SIZE);
        Buffers {
            spare: Mutex::new(Vec::new()),
            states: Mutex::new(Vec::new()),
            keep: (buffer_memory / 8 / max_bytes).max(4),
            max_bytes,
        }
    }

    fn take(&self) -> Option<Vec<u8>> {
        self.spare.lock().pop()
    }

    /// A state for a new batch: the last one given back if no handle holds it any more
    /// (reset), else a new one.
    fn take_state(&self) -> Arc<BatchState> {
        let Some(mut state) = self.states.lock().pop() else {
            return Arc::default();
        };
        match Arc::get_mut(&mut state) {
            Some(unused) => {
                *unused.result.get_mut() = None;
                state
            }
            // Still held: its handles free it.
            None => Arc::default(),
        }
    }

    /// Keeps the state of an appended batch for a later batch.
    fn give_back_state(&self, state: Arc<BatchState>) {
        let mut states = self.states.lock();
        if states.len() < self.keep {
            states.push(state);
        }
    }

    /// Keeps `buffer` for a later batch of `batch_limit` bytes, unless enough are kept
    /// or it is too small or too large for one.
    fn give_back(&self, buffer: Vec<u8>, batch_limit: usize) {
        if !(batch_limit..=self.max_bytes).contains(&buffer.capacity()) {
            return;
        }
        let mut spare = self.spare.lock();
        if spare.len() < self.keep {
            spare.push(buffer);
        }
    }
}

/// Keeps a value on cache lines of its own (128 bytes: adjacent-line prefetching pairs
/// 64-byte lines on x86).
#[derive(Debug)]
#[repr(align(128))]
struct CachePadded<T>(T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// One partition's batching state.
#[derive(Debug)]
struct PartitionQueue {
    partition: i32,
    /// Bytes at which a batch is appended (see `TopicQueues::batch_limit`).
    batch_limit: usize,
    log: Arc<Log>,
    /// The senders' side, on cache lines of its own: the sender thread works on
    /// `pending` at the same time, and sharing a line would bounce it between cores on
    /// every record.
    open: CachePadded<Mutex<OpenBatch>>,
    /// Batches taken from `open` and not yet appended, in the order they were taken
    /// (pushed while `open` is held, so the order is the order of the records).
    pending: CachePadded<Mutex<VecDeque<TakenBatch>>>,
    /// Whether the sender thread has this queue on its list.
    scheduled: AtomicBool,
    /// Held while draining `pending`, or while `send_blocking` appends a record on its
    /// own, so batches reach the log one at a time, in order; holds the drain's working
    /// lists.
    append: Mutex<Drain>,
    /// The idempotent producer's id and epoch, stamped on batches as they are appended.
    producer: Option<ProducerId>,
    /// The topic, and the transaction its batches join (transactional producers).
    topic: Arc<str>,
    txn: Option<Arc<transactions::TxnState>>,
    /// The first append failure since the last `flush`, which reports it: a caller that
    /// dropped its handles still learns that records were lost.
    failed: Mutex<Option<Arc<Error>>>,
}

/// A topic's partitions as this producer sees them.
#[derive(Debug)]
struct TopicQueues {
    topic: Arc<Topic>,
    /// Every queue created so far, in partition order.
    queues: RwLock<Vec<Arc<PartitionQueue>>>,
    /// The same queues for the partitions the topic had when this was built, in
    /// write-once slots: `send` finds its queue with one atomic load instead of a lock.
    /// Partitions added later are served from `queues`.
    slots: Box<[OnceLock<Arc<PartitionQueue>>]>,
    sticky: Sticky,
    compression: Compression,
    /// `batch_size`, capped so a batch never exceeds the topic's `max.message.bytes` or
    /// `segment.bytes` (the log would refuse it).
    batch_limit: usize,
    /// The largest batch the log accepts and the config that sets it: a record that
    /// needs a larger batch is refused at `send` with [`Error::RecordTooLarge`], as
    /// Kafka's producer does, rather than later through its handle.
    record_limit: (usize, &'static str),
    /// The idempotent producer's id and epoch, for the queues.
    producer: Option<ProducerId>,
    /// The transactional producer's transaction state, for the queues.
    txn: Option<Arc<transactions::TxnState>>,
}

impl TopicQueues {
    /// The queue of `partition`, picking up partitions added since this was built.
    fn queue(&self, partition: i32) -> Result<Arc<PartitionQueue>> {
        if let Some(q) = usize::try_from(partition)
            .ok()
            .and_then(|p| self.queues.read().get(p).cloned())
        {
            return Ok(q);
        }
        let log = self.topic.log(partition)?;
        let mut queues = self.queues.write();
        while queues.len() <= partition as usize {
            let p = queues.len() as i32;
            let log = if p == partition {
                log.clone()
            } else {
                self.topic.log(p)?
            };
            let queue = Arc::new(PartitionQueue {
                partition: p,
                batch_limit: self.batch_limit,
                log,
                open: CachePadded(Mutex::new(OpenBatch::new(
                    self.compression,
                    self.batch_limit,
                ))),
                pending: CachePadded(Mutex::new(VecDeque::new())),
                scheduled: AtomicBool::new(false),
                append: Mutex::new(Drain::default()),
                producer: self.producer,
                topic: self.topic.name.clone(),
                txn: self.txn.clone(),
                failed: Mutex::new(None),
            });
            if let Some(slot) = self.slots.get(p as usize) {
                // Only this writer (under the lock) sets slot `p`, once.
                let _first = slot.set(queue.clone());
            }
            queues.push(queue);
        }
        Ok(queues[partition as usize].clone())
    }
}

/// The producer's sender thread and what it works on: partitions with full batches to
/// append, and deadlines of batches waiting for `linger` (oldest first: linger is fixed,
/// so the order of scheduling is the order of deadlines).
#[derive(Debug)]
struct Sender {
    state: Mutex<SenderState>,
    wake: Condvar,
    codecs: Codecs,
    /// Bytes of batches in the partitions' `pending` queues.
    pending_bytes: AtomicUsize,
    buffer_memory: usize,
    /// Buffers of appended batches, for the partitions' next batches.
    buffers: Buffers,
}

#[derive(Debug, Default)]
struct SenderState {
    ready: VecDeque<Weak<PartitionQueue>>,
    linger: VecDeque<(Instant, Weak<PartitionQueue>, u64)>,
    stop: bool,
}

impl Sender {
    /// Puts a batch taken from `queue`'s open batch on its `pending` queue, counting its
    /// bytes first (a drain may subtract them as soon as it is visible). The caller holds
    /// `queue.open`, which keeps batches in record order.
    fn push_pending(&self, queue: &PartitionQueue, taken: TakenBatch) {
        self.pending_bytes
            .fetch_add(taken.0.estimated_size(), Ordering::AcqRel);
        queue.pending.lock().push_back(taken);
    }

    /// Has the sender thread append `queue`'s pending batches, or appends them on this
    /// thread when too much is waiting.
    fn hand_off(&self, queue: &Arc<PartitionQueue>) {
        if self.pending_bytes.load(Ordering::Acquire) > self.buffer_memory {
            self.drain(queue);
        } else if !queue.scheduled.swap(true, Ordering::AcqRel) {
            self.state.lock().ready.push_back(Arc::downgrade(queue));
            self.wake.notify_one();
        }
    }

    /// Appends everything pending for `queue`, in order, in as few log appends as
    /// possible.
    fn drain(&self, queue: &PartitionQueue) {
        let mut drain = queue.append.lock();
        queue.scheduled.store(false, Ordering::Release);
        loop {
            drain.reset();
            {
                // Swapped rather than copied out: `pending` keeps the empty queue's room.
                let mut pending = queue.pending.lock();
                if pending.is_empty() {
                    return;
                }
                std::mem::swap(&mut *pending, &mut drain.batches);
            }
            let bytes: usize = drain.batches.iter().map(|(b, _)| b.estimated_size()).sum();
            // A panic (in a user's clock, or a bug) must not leave the batches' handles
            // waiting forever, their bytes counted as pending, or the sender thread dead
            // with later batches behind it: it fails this drain's batches instead.
            let appended = panic::catch_unwind(AssertUnwindSafe(|| {
                append_ready(&self.codecs, queue, &mut drain, &self.buffers);
            }));
            self.pending_bytes.fetch_sub(bytes, Ordering::AcqRel);
            if let Err(payload) = appended {
                drain.fail_unwound(queue, payload.as_ref());
            }
        }
    }

    /// Takes the open batch of `queue` (if it holds records and, when `generation` is
    /// given, is still that batch) and appends it with everything pending before it.
    fn flush_queue(&self, queue: &PartitionQueue, generation: Option<u64>) {
        {
            let mut open = queue.open.lock();
            if !open.builder.is_empty() && generation.is_none_or(|g| g == open.generation) {
                let taken = open.take(queue.batch_limit, &self.buffers);
                self.push_pending(queue, taken);
            } else if generation.is_some() {
                return;
            }
        }
        self.drain(queue);
    }

    fn schedule_linger(&self, queue: &Arc<PartitionQueue>, deadline: Instant, generation: u64) {
        let mut state = self.state.lock();
        let was_empty = state.linger.is_empty();
        state
            .linger
            .push_back((deadline, Arc::downgrade(queue), generation));
        if was_empty {
            self.wake.notify_one();
        }
    }

    /// The sender thread: appends partitions' full batches as they are handed off, and
    /// each other batch `linger` after its first record unless it went before.
    ///
    /// It holds no reference to the producer (or its broker), only weak ones to partition
    /// queues: dropping the last `Producer` runs the final flush on the dropping thread and
    /// joins this one, so nothing keeps the broker (and its directory lock) alive after.
    fn run(&self) {
        let mut state = self.state.lock();
        loop {
            if state.stop {
                return;
            }
            if let Some(queue) = state.ready.pop_front() {
                drop(state);
                if let Some(queue) = queue.upgrade() {
                    self.drain(&queue);
                }
                state = self.state.lock();
                continue;
            }
            let Some(&(deadline, _, _)) = state.linger.front() else {
                self.wake.wait(&mut state);
                continue;
            };
            if Instant::now() < deadline {
                self.wake.wait_until(&mut state, deadline);
                continue;
            }
            let (_, queue, generation) = state.linger.pop_front().expect("front exists");
            drop(state);
            if let Some(queue) = queue.upgrade() {
                self.flush_queue(&queue, Some(generation));
            }
            state = self.state.lock();
        }
    }
}

#[derive(Debug)]
struct ProducerInner {
    broker: Broker,
    config: ProducerConfig,
    topics: RwLock<HashMap<String, Arc<TopicQueues>, BuildHasherDefault<Fnv>>>,
    sender: Arc<Sender>,
    sender_thread: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
    /// The broker's topic epoch when `topics` was last checked.
    seen_epoch: AtomicU64,
    /// This producer's unique id (for the per-thread topic cache).
    id: u64,
    /// The first topic this producer sent to. A send to it needs no map lookup, no
    /// thread-local and no reference count: the producer itself keeps it alive. If the
    /// topic is deleted, its (closed) queues stay here until the producer is dropped, and
    /// sends go through `topics`.
    hot: OnceLock<Arc<TopicQueues>>,
    /// The broker's topic epoch at which `hot` was last found current.
    hot_epoch: AtomicU64,
    /// The producer id and epoch when idempotent (a transactional producer's is set by
    /// `init_transactions`).
    producer_id: OnceLock<ProducerId>,
    /// The transaction state of a transactional producer.
    txn: Option<Arc<transactions::TxnState>>,
}

/// Sends records to a broker's topics, batching per partition.
///
/// `Send + Sync` and cheap to clone: use one from many threads. Records from one thread
/// to one partition keep their order. Dropping the last clone flushes what is pending.
#[derive(Clone, Debug)]
pub struct Producer {
    inner: Arc<ProducerInner>,
}

impl Producer {
    pub(crate) fn new(broker: Broker, config: ProducerConfig) -> Producer {
        let sender = Arc::new(Sender {
            state: Mutex::new(SenderState::default()),
            wake: Condvar::new(),
            codecs: broker.config().codecs.clone(),
            pending_bytes: AtomicUsize::new(0),
            buffer_memory: config.buffer_memory,
            buffers: Buffers::new(config.batch_size, config.buffer_memory),
        });
        let txn = transactions::TxnState::new(&broker, &config);
        // A transactional producer stays closed until `init_transactions`.
        let closed = txn.is_some();
        let inner = Arc::new(ProducerInner {
            broker,
            config,
            topics: RwLock::new(HashMap::default()),
            sender: sender.clone(),
            sender_thread: Mutex::new(None),
            closed: AtomicBool::new(closed),
            seen_epoch: AtomicU64::new(0),
            id: NEXT_PRODUCER_ID.fetch_add(1, Ordering::Relaxed),
            hot: OnceLock::new(),
            hot_epoch: AtomicU64::new(0),
            producer_id: OnceLock::new(),
            txn,
        });
        let thread = std::thread::Builder::new()
            .name("partlog-sender".into())
            .spawn(move || sender.run())
            .expect("spawn the producer's sender thread");
        *inner.sender_thread.lock() = Some(thread);
        Producer { inner }
    }

    /// The producer's settings.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }

    /// The producer id and epoch stamped on this producer's batches, when idempotent.
    pub fn producer_id(&self) -> Option<(i64, i16)> {
        self.inner.producer_id.get().map(|p| (p.id, p.epoch))
    }

    fn topic(&self, name: &str) -> Result<Arc<TopicQueues>> {
        let epoch = self.inner.broker.topic_epoch();
        let cached = LAST_TOPIC.with(|c| {
            let c = c.borrow();
            let (id, e, n, t) = c.as_ref()?;
            (*id == self.inner.id && *e == epoch && n == name).then(|| t.upgrade())?
        });
        if let Some(t) = cached {
            self.note_hot(&t, epoch);
            return Ok(t);
        }
        let t = self.topic_slow(name)?;
        LAST_TOPIC.with(|c| {
            *c.borrow_mut() = Some((self.inner.id, epoch, name.to_string(), Arc::downgrade(&t)));
        });
        self.note_hot(&t, epoch);
        Ok(t)
    }

    /// `t` is current as of topic epoch `epoch`: the first topic sent to becomes the hot
    /// one, and the hot one is marked current.
    fn note_hot(&self, t: &Arc<TopicQueues>, epoch: u64) {
        let hot = self.inner.hot.get_or_init(|| t.clone());
        if Arc::ptr_eq(hot, t) {
            self.inner.hot_epoch.store(epoch, Ordering::Release);
        }
    }

    /// The hot topic, if the record is for it and no topic changed since it was found
    /// current.
    fn hot_topic(&self, name: &str) -> Option<&TopicQueues> {
        let hot = self.inner.hot.get()?;
        let current = *hot.topic.name == *name
            && self.inner.hot_epoch.load(Ordering::Acquire) == self.inner.broker.topic_epoch();
        current.then_some(&**hot)
    }

    fn topic_slow(&self, name: &str) -> Result<Arc<TopicQueues>> {
        // A topic deleted (and maybe created again) since it was cached must be looked up
        // afresh; one atomic load tells whether anything changed.
        let epoch = self.inner.broker.topic_epoch();
        if self.inner.seen_epoch.load(Ordering::Acquire) != epoch {
            let mut topics = self.inner.topics.write();
            topics.retain(|name, t| {
                self.inner
                    .broker
                    .topic_if_exists(name)
                    .is_some_and(|now| Arc::ptr_eq(&now, &t.topic))
            });
            self.inner.seen_epoch.store(epoch, Ordering::Release);
        }
        if let Some(t) = self.inner.topics.read().get(name) {
            return Ok(t.clone());
        }
        let topic = self.inner.broker.topic(name)?;
        idempotence::ensure_id(
            &self.inner.broker,
            &self.inner.config,
            &self.inner.producer_id,
        )?;
        let compression = match topic.config.compression {
            TopicCompression::Producer => self.inner.config.compression,
            TopicCompression::Codec(c) => c,
        };
        let slots = (0..topic.partition_count())
            .map(|_| OnceLock::new())
            .collect();
        let seed = (Arc::as_ptr(&topic) as u64) ^ self.inner.broker.config().clock.now_ms() as u64;
        let (max_message, segment) = (
            topic.config.max_message_bytes as usize,
            topic.config.segment_bytes as usize,
        );
        let record_limit = if segment < max_message {
            (segment, "segment.bytes")
        } else {
            (max_message, "max.message.bytes")
        };
        let batch_limit = self.inner.config.batch_size.min(record_limit.0);
        let queues = Arc::new(TopicQueues {
            record_limit,
            topic,
            queues: RwLock::new(Vec::new()),
            slots,
            sticky: Sticky::new(seed),
            compression,
            batch_limit,
            producer: self.inner.producer_id.get().copied(),
            txn: self.inner.txn.clone(),
        });
        Ok(self
            .inner
            .topics
            .write()
            .entry(name.to_string())
            .or_insert(queues)
            .clone())
    }

    /// Adds a record to its partition's batch and returns a handle on its outcome.
    ///
    /// The partition is the record's own, else the configured partitioner's choice, else
    /// Kafka's: `(murmur2(key) & 0x7fffffff) % partitions` for a key, a sticky partition
    /// for keyless records. A batch is appended by the producer's sender thread when it
    /// reaches `batch_size` bytes or `linger` after its first record; the sender appends
    /// every batch waiting for a partition in one call. When more than
    /// `buffer_memory` bytes wait, `send` appends them itself.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`], [`Error::UnknownPartition`], [`Error::RecordTooLarge`],
    /// [`Error::Closed`]. Failures of the append itself reach the handle.
    #[inline]
    pub fn send(&self, record: ProducerRecord<'_>) -> Result<SendHandle> {
        self.send_with(record, true)
    }

    /// `send`; `linger` false appends the record's batch at once on this thread (for
    /// `send_blocking`), without scheduling a linger deadline or waking the sender thread.
    ///
    /// It and the functions it calls on the way to `enqueue` are inlined into one: a
    /// record costs a few hundred instructions, and each call between them moved the
    /// record's words again.
    #[inline(always)]
    fn send_with(&self, record: ProducerRecord<'_>, linger: bool) -> Result<SendHandle> {
        self.check_open()?;
        // Held through the send, so that a transaction does not end under it. One call
        // of `send_unchecked` for both kinds of producer, so that it is inlined once.
        let _accepting = match &self.inner.txn {
            Some(txn) => {
                let accepting = txn.accepting.read();
                if !*accepting {
                    return Err(txn.not_accepting());
                }
                Some(accepting)
            }
            None => None,
        };
        self.send_unchecked(record, linger)
    }

    /// `send_with` past the transactional check.
    #[inline(always)]
    fn send_unchecked(&self, record: ProducerRecord<'_>, linger: bool) -> Result<SendHandle> {
        match self.hot_topic(record.topic) {
            Some(topics) => self.send_to(topics, &record, linger),
            None => self.send_to_other(&record, linger),
        }
    }

    /// `send_unchecked` to a topic other than the one this thread sent to last: out of
    /// line, so that the path of the usual case stays short (a record sent after a pause
    /// pays for every page of code it runs through).
    #[inline(never)]
    fn send_to_other(&self, record: &ProducerRecord<'_>, linger: bool) -> Result<SendHandle> {
        let topics = self.topic(record.topic)?;
        self.send_to(&topics, record, linger)
    }

    #[inline(always)]
    fn send_to(
        &self,
        topics: &TopicQueues,
        record: &ProducerRecord<'_>,
        linger: bool,
    ) -> Result<SendHandle> {
        if record.key.is_none() && topics.topic.config.cleanup_policy.compacts() {
            return Err(keyless_on_compacted(record.topic));
        }
        let partitions = topics.topic.partition_count();
        let ts = record
            .timestamp
            .unwrap_or_else(|| self.inner.broker.config().clock.now_ms());
        let (partition, sticky) = self.choose_partition(record, topics, partitions)?;
        let sticky = sticky.then_some((&topics.sticky, partitions));
        let max = topics.record_limit;
        // The common case: the queue exists in its slot; no lock, no reference count.
        let added;
        let queue = match topics.slots.get(partition as usize).and_then(OnceLock::get) {
            Some(queue) => queue,
            None => {
                added = topics.queue(partition)?;
                &added
            }
        };
        self.enqueue(queue, record, ts, max, sticky, linger)
    }

    #[inline(always)]
    fn choose_partition(
        &self,
        record: &ProducerRecord<'_>,
        topics: &TopicQueues,
        partitions: i32,
    ) -> Result<(i32, bool)> {
        let (partition, sticky) =
            match (record.partition, &self.inner.config.partitioner, record.key) {
                (Some(p), _, _) => (p, false),
                (None, Some(custom), _) => (
                    custom.partition(record.topic, record.key, record.value, partitions),
                    false,
                ),
                (None, None, Some(key)) => (partition_for_key(key, partitions), false),
                (None, None, None) => (topics.sticky.current(partitions), true),
            };
        if !(0..partitions).contains(&partition) {
            return Err(unknown_partition(record.topic, partition, partitions));
        }
        Ok((partition, sticky))
    }

    #[inline(always)]
    fn enqueue(
        &self,
        queue: &Arc<PartitionQueue>,
        record: &ProducerRecord<'_>,
        ts: i64,
        (max_bytes, limit_name): (usize, &'static str),
        sticky: Option<(&Sticky, i32)>,
        linger: bool,
    ) -> Result<SendHandle> {
        let open = queue.open.lock();
        let (key, value, headers) = (record.key, record.value, record.headers);
        let head = open.builder.head(ts, key, value, headers);
        if head.size + BATCH_HEADER_SIZE > max_bytes {
            let size = head.size + BATCH_HEADER_SIZE;
            return Err(record_too_large(record.topic, size, max_bytes, limit_name));
        }
        if !linger {
            if open.builder.is_empty()
                && queue.txn.is_none()
                && let Some(drain) = queue.append.try_lock()
                && queue.pending.lock().is_empty()
            {
                // Nothing of this partition waits to be appended and no drain runs: the
                // record goes to the log on its own, now, on this thread.
                return Ok(self.append_alone(queue, open, drain, record, ts, sticky));
            }
            return self.enqueue_now(queue, open, head, record, ts, sticky);
        }
        self.add_to_batch(queue, open, head, record, ts, sticky, true)
    }

    /// `enqueue` without linger where records of the partition wait: through the batch,
    /// appended at once. Out of line, so that `send_blocking`'s usual path stays short.
    #[inline(never)]
    fn enqueue_now(
        &self,
        queue: &Arc<PartitionQueue>,
        open: parking_lot::MutexGuard<'_, OpenBatch>,
        head: RecordHead,
        record: &ProducerRecord<'_>,
        ts: i64,
        sticky: Option<(&Sticky, i32)>,
    ) -> Result<SendHandle> {
        self.add_to_batch(queue, open, head, record, ts, sticky, false)
    }

    /// Adds the record (its `head` encoded against the open batch) to the partition's
    /// open batch, handing batches off to be appended as they fill, or at once without
    /// `linger`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn add_to_batch(
        &self,
        queue: &Arc<PartitionQueue>,
        mut open: parking_lot::MutexGuard<'_, OpenBatch>,
        mut head: RecordHead,
        record: &ProducerRecord<'_>,
        ts: i64,
        sticky: Option<(&Sticky, i32)>,
        linger: bool,
    ) -> Result<SendHandle> {
        let batch_size = queue.batch_limit;
        let (key, value, headers) = (record.key, record.value, record.headers);
        let sender = &self.inner.sender;
        let mut handed_off = false;
        if !open.builder.is_empty() && open.builder.estimated_size() + head.size > batch_size {
            let taken = open.take(batch_size, &sender.buffers);
            sender.push_pending(queue, taken);
            handed_off = true;
            // Deltas against a new first record differ: encode it again.
            head = open.builder.head(ts, key, value, headers);
        }
        let started = open.builder.is_empty();
        open.builder.push_head(&head, ts, key, value, headers);
        self.count_sticky(&mut open, queue.partition, head.size, sticky);
        let handle = SendHandle {
            batch: Outcome::Batch(open.state.clone()),
            partition: queue.partition,
            delta: open.builder.len() as i32 - 1,
            timestamp: ts,
        };
        if open.builder.estimated_size() >= batch_size || !linger {
            let taken = open.take(batch_size, &sender.buffers);
            sender.push_pending(queue, taken);
            handed_off = true;
        } else if started {
            // A linger too large for an `Instant` means: append only when full or flushed.
            if let Some(deadline) = Instant::now().checked_add(self.inner.config.linger) {
                self.inner
                    .sender
                    .schedule_linger(queue, deadline, open.generation);
            }
        }
        drop(open);
        if !linger {
            sender.drain(queue);
        } else if handed_off {
            sender.hand_off(queue);
        }
        Ok(handle)
    }

    /// Counts `size` bytes sent to `partition` for the sticky partitioner.
    #[inline(always)]
    fn count_sticky(
        &self,
        open: &mut OpenBatch,
        partition: i32,
        size: usize,
        sticky: Option<(&Sticky, i32)>,
    ) {
        let Some((sticky, partitions)) = sticky else {
            return;
        };
        // Kafka's built-in partitioner counts the bytes sent to the sticky partition and
        // moves on after `batch.size` of them; records that raced with a switch to
        // another partition do not count.
        if sticky.is_current(partition) {
            open.sticky_bytes += size;
            if open.sticky_bytes >= self.inner.config.batch_size {
                open.sticky_bytes = 0;
                sticky.move_on(partition, partitions);
            }
        }
    }

    /// `send_blocking`'s record appended as a batch of its own, when its partition has
    /// nothing waiting: the caller holds `open` (empty) and the partition's `append`
    /// lock, and `pending` is empty. Skips what a batch shared between sends needs (its
    /// state, the pending queue, the pool, a wake-up of the handles), which is most of
    /// the cost of a lone send on a thread that has just woken up (cold caches).
    ///
    /// The append lock is taken before `open` is let go and held until the append, so
    /// records sent meanwhile by other threads reach the log after this one (and get
    /// later sequence numbers, which are given out under the append lock).
    #[inline(never)]
    fn append_alone(
        &self,
        queue: &PartitionQueue,
        mut open: parking_lot::MutexGuard<'_, OpenBatch>,
        mut drain: parking_lot::MutexGuard<'_, Drain>,
        record: &ProducerRecord<'_>,
        ts: i64,
        sticky: Option<(&Sticky, i32)>,
    ) -> SendHandle {
        let (key, value, headers) = (record.key, record.value, record.headers);
        let compression = open.builder.compression();
        let mut builder = BatchBuilder::with_buffer(
            compression,
            std::mem::take(&mut drain.alone),
            BATCH_HEADER_SIZE,
        );
        let head = builder.head(ts, key, value, headers);
        builder = stamp_producer(builder, queue.producer, drain.next_sequence);
        self.count_sticky(&mut open, queue.partition, head.size, sticky);
        drop(open);
        builder.push_head(&head, ts, key, value, headers);
        let codecs = &self.inner.sender.codecs;
        let encoded = if compression == Compression::None {
            builder.into_encoded(codecs)
        } else {
            let batch = builder.build(codecs);
            drain.alone = builder.into_buffer();
            batch
        };
        let result = match encoded {
            Ok(mut batch) => {
                let appended = queue.log.append_one(&mut batch);
                if appended.is_ok() {
                    // Refused, it used up no sequence number (see `Drain::next_sequence`).
                    drain.next_sequence = idempotence::next_sequence(drain.next_sequence, 1);
                }
                if compression == Compression::None {
                    drain.alone = batch.into_buffer();
                }
                appended
            }
            Err(e) => Err(Error::InvalidBatch {
                partition: queue.log.name().to_string(),
                source: e,
            }),
        };
        if drain.alone.capacity() > ALONE_KEEP {
            // A large record's buffer is not kept for the next lone record.
            drain.alone = Vec::new();
        }
        // Recorded before the append lock goes, as a drain does: a `flush` waiting on
        // the lock then reports it.
        let result = result.map_err(|e| {
            let e = Arc::new(e);
            queue.failed.lock().get_or_insert_with(|| e.clone());
            e
        });
        drop(drain);
        SendHandle {
            batch: Outcome::Appended(result),
            partition: queue.partition,
            delta: 0,
            timestamp: ts,
        }
    }

    /// Sends a record and waits for its append (its partition's batch is appended at
    /// once rather than after `linger`).
    ///
    /// # Errors
    /// What [`Producer::send`] and [`SendHandle::wait`] return.
    pub fn send_blocking(&self, record: ProducerRecord<'_>) -> Result<RecordMetadata> {
        self.send_with(record, false)?.wait()
    }

    /// Appends every pending batch now and waits until they are appended.
    ///
    /// # Errors
    /// [`Error::Closed`] when the producer was closed; [`Error::BatchFailed`] with the
    /// first append failure since the last flush (its records' handles report it too),
    /// so that a caller who drops handles still learns that records were not written.
    pub fn flush(&self) -> Result<()> {
        self.check_open()?;
        match self.inner.flush_all() {
            Some(e) => Err(Error::BatchFailed(e)),
            None => Ok(()),
        }
    }

    /// Flushes and stops the producer; later sends fail with [`Error::Closed`].
    ///
    /// # Errors
    /// [`Error::BatchFailed`] as for [`Producer::flush`].
    pub fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        match self.inner.flush_all() {
            Some(e) => Err(Error::BatchFailed(e)),
            None => Ok(()),
        }
    }

    #[inline(always)]
    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(self.closed_error());
        }
        self.inner.broker.check_open()
    }

    #[cold]
    #[inline(never)]
    fn closed_error(&self) -> Error {
        if let Some(txn) = &self.inner.txn
            && self.inner.producer_id.get().is_none()
        {
            return txn.not_initialised();
        }
        Error::Closed("producer".into())
    }
}

// The errors of `send`, built out of line: the hot path only branches to them.

#[cold]
#[inline(never)]
fn keyless_on_compacted(topic: &str) -> Error {
    let topic = topic.to_string();
    Error::KeylessRecordOnCompactedTopic { topic }
}

#[cold]
#[inline(never)]
fn unknown_partition(topic: &str, partition: i32, partitions: i32) -> Error {
    let topic = topic.to_string();
    Error::UnknownPartition {
        topic,
        partition,
        partitions,
    }
}

#[cold]
#[inline(never)]
fn record_too_large(topic: &str, size: usize, limit: usize, limit_name: &'static str) -> Error {
    let topic = topic.to_string();
    Error::RecordTooLarge {
        topic,
        size,
        limit,
        limit_name,
    }
}

impl ProducerInner {
    /// Appends every open batch; returns the first append failure since the last call.
    fn flush_all(&self) -> Option<Arc<Error>> {
        let topics: Vec<Arc<TopicQueues>> = self.topics.read().values().cloned().collect();
        let mut first = None;
        for t in topics {
            let queues: Vec<Arc<PartitionQueue>> = t.queues.read().clone();
            for q in queues {
                self.sender.flush_queue(&q, None);
                if let Some(e) = q.failed.lock().take() {
                    first.get_or_insert(e);
                }
            }
        }
        first
    }
}

impl Drop for ProducerInner {
    fn drop(&mut self) {
        // Failures reach the records' handles; there is no caller left to return them to.
        let _reported_through_handles = self.flush_all();
        self.sender.state.lock().stop = true;
        self.sender.wake.notify_all();
        if let Some(t) = self.sender_thread.lock().take() {
            // Drains catch their panics (`Drain::fail_unwound`); any other would be a bug
            // of the thread's loop, with no caller left to report it to.
            let _joined = t.join();
        }
    }
}

/// `builder` with an idempotent producer's id, epoch, transactional bit and base
/// sequence `sequence`; unchanged without a producer id.
fn stamp_producer(
    builder: BatchBuilder,
    producer: Option<ProducerId>,
    sequence: i32,
) -> BatchBuilder {
    match producer {
        Some(id) => builder
            .producer(id.batch_info(sequence))
            .transactional(id.transactional),
        None => builder,
    }
}

/// Appends the batches of `drain.batches`, whose other lists `Drain::reset` emptied
/// (leaving them all empty).
fn append_ready(codecs: &Codecs, queue: &PartitionQueue, drain: &mut Drain, buffers: &Buffers) {
    let Drain {
        batches: ready,
        encoded,
        states,
        infos,
        next_sequence: sequence,
        ..
    } = drain;
    if let Some(txn) = &queue.txn
        && let Err(e) = txn.add_partition(&queue.topic, queue.partition, queue.producer)
    {
        // Not written: outside a transaction, or fenced.
        let e = Arc::new(e);
        queue.failed.lock().get_or_insert_with(|| e.clone());
        for (_, state) in ready.drain(..) {
            state.complete(Err(e.clone()));
        }
        return;
    }
    let mut next_sequence = *sequence;
    while let Some((builder, state)) = ready.pop_front() {
        let records = builder.len();
        let builder = stamp_producer(builder, queue.producer, next_sequence);
        let encoded_batch = if builder.compression() == Compression::None {
            // Encoded in its own buffer, which goes back to `buffers` once appended.
            builder.into_encoded(codecs)
        } else {
            let batch = builder.build(codecs);
            buffers.give_back(builder.into_buffer(), queue.batch_limit);
            batch
        };
        let checked = match encoded_batch {
            Ok(batch) => match queue.log.check_batch(&batch) {
                // Checked here as the log would, so that a batch that grew past a limit
                // when compressed fails alone instead of failing the whole append.
                Ok(()) => Ok(batch),
                Err(e) => {
                    buffers.give_back(batch.into_buffer(), queue.batch_limit);
                    Err(e)
                }
            },
            Err(e) => Err(Error::InvalidBatch {
                partition: queue.log.name().to_string(),
                source: e,
            }),
        };
        match checked {
            Ok(batch) => {
                next_sequence = idempotence::next_sequence(next_sequence, records);
                encoded.push(batch);
                states.push(state);
            }
            Err(e) => {
                let e = Arc::new(e);
                queue.failed.lock().get_or_insert_with(|| e.clone());
                state.complete(Err(e));
            }
        }
    }
    if encoded.is_empty() {
        return;
    }
    match queue.log.append_batches_in_place(encoded, infos) {
        Ok(()) => {
            *sequence = next_sequence;
            for (state, info) in states.drain(..).zip(infos.drain(..)) {
                state.complete(Ok(info));
                buffers.give_back_state(state);
            }
        }
        Err(e) => {
            // The sequence stays where it was: a refused append writes nothing, and one
            // whose write or fsync failed poisoned the partition, which refuses every
            // later append until it is reopened (by a new broker, whose producers get
            // new ids).
            let e = Arc::new(e);
            queue.failed.lock().get_or_insert_with(|| e.clone());
            for state in states.drain(..) {
                state.complete(Err(e.clone()));
            }
        }
    }
    for batch in encoded.drain(..) {
        buffers.give_back(batch.into_buffer(), queue.batch_limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BrokerConfig, TopicConfig};

    /// The room of the buffer partition `p` keeps for lone records: none until
    /// `append_alone` has run there.
    fn lone_buffer(producer: &Producer, p: i32) -> usize {
        let queue = producer.topic("t").unwrap().queue(p).unwrap();
        queue.append.lock().alone.capacity()
    }

    #[test]
    fn send_blocking_appends_alone_only_when_nothing_waits() {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path(), BrokerConfig::default()).unwrap();
        broker.create_topic("t", 2, TopicConfig::default()).unwrap();
        let producer = broker.producer(ProducerConfig {
            linger: Duration::from_secs(3600),
            ..ProducerConfig::default()
        });
        let blocking = |v: &[u8], p| {
            producer
                .send_blocking(ProducerRecord::new("t", v).partition(p))
                .unwrap()
                .offset
        };
        // A record waits in partition 0's open batch: the next goes through the batch.
        let waiting = producer
            .send(ProducerRecord::new("t", b"a").partition(0))
            .unwrap();
        assert_eq!(blocking(b"b", 0), 1);
        assert_eq!(waiting.wait().unwrap().offset, 0);
        assert_eq!(lone_buffer(&producer, 0), 0);
        // Now nothing waits there, and the record is appended on its own.
        assert_eq!(blocking(b"c", 0), 2);
        assert!(lone_buffer(&producer, 0) > 0);
        // Partition 1 has had nothing waiting from the start.
        assert_eq!(lone_buffer(&producer, 1), 0);
        assert_eq!(blocking(b"d", 1), 0);
        assert!(lone_buffer(&producer, 1) > 0);
    }
}
