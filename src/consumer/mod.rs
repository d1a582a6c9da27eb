//! Consumers: read partitions from a position, block without spinning until data comes.

mod group;

pub use group::{ConsumerGroupMetadata, ConsumerRebalanceListener};

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::broker::{Broker, Partition};
use crate::error::{Error, Result};
use crate::group::assignor::{Assignor, CooperativeStickyAssignor, RangeAssignor};
use crate::log::{Log, ReadCursor, TimestampOffset, Waiter};
use crate::record::{Header, RecordBatch, TimestampType};

/// A topic and partition.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

/// Kafka's `auto.offset.reset`: where to start when there is no position, or when the
/// position is outside the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// `earliest`: the log start offset.
    Earliest,
    /// `latest` (Kafka's default): the log end offset, so only new records are read.
    #[default]
    Latest,
    /// `none`: `poll` fails with [`Error::NoOffset`] or [`Error::OffsetOutOfRange`].
    None,
}

/// Kafka's `isolation.level`: which records of transactions a consumer sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// `read_uncommitted` (Kafka's default): every record up to the log end offset,
    /// those of open and aborted transactions included. Control records are never
    /// returned.
    #[default]
    ReadUncommitted,
    /// `read_committed`: records up to the last stable offset only (the first offset of
    /// the earliest open transaction), without those of aborted transactions (found in
    /// the `.txnindex` files, reference §3.3 and §6.2).
    ReadCommitted,
}

impl IsolationLevel {
    /// The offset below which a consumer with this level may read `log`.
    pub(crate) fn upper(self, log: &Log) -> i64 {
        match self {
            IsolationLevel::ReadUncommitted => log.log_end_offset(),
            IsolationLevel::ReadCommitted => log.last_stable_offset(),
        }
    }
}

/// How a consumer waits for records in `poll`, in the style of Chronicle Queue's tailers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WaitStrategy {
    /// Park the thread until an append wakes it: no CPU while idle; the wake-up costs
    /// what the OS charges to reschedule a thread (tens of µs on a VM).
    #[default]
    Park,
    /// Spin this many times checking for data, then park: low latency for bursts, no CPU
    /// when idle for long.
    SpinThenPark {
        /// Spins before parking.
        spins: u32,
    },
    /// Spin until data or the timeout: the lowest latency, one core busy while waiting.
    BusySpin,
}

/// Consumer settings; `Default` gives Kafka's defaults.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// Kafka: `group.id`. With a group, [`Consumer::subscribe`] makes the consumer a
    /// member that shares the topics' partitions with the group's other members, and
    /// offsets can be committed (see [`ConsumerRebalanceListener`] for the protocol).
    pub group_id: Option<String>,
    /// Kafka: `group.instance.id`: makes the member static. A static member that goes
    /// away (closed or dropped) keeps its partitions for `session_timeout`; coming back
    /// within it, it gets them back without a rebalance.
    pub group_instance_id: Option<String>,
    /// Kafka: `partition.assignment.strategy`, in order of preference (default range,
    /// then cooperative-sticky, as Kafka). The group uses one every member lists.
    pub partition_assignment_strategy: Vec<Arc<dyn Assignor>>,
    /// Kafka: `session.timeout.ms` (default 45 s): how long a static member that went
    /// away keeps its partitions. A dynamic member leaves at once when dropped.
    pub session_timeout: Duration,
    /// Kafka: `max.poll.interval.ms` (default 5 min): a member that does not call `poll`
    /// for longer (by the broker's [`Clock`](crate::Clock)) is removed from the group, and
    /// its partitions go to the others. There is no timer thread: the removal happens at
    /// the group's next call (another member's poll or commit, a join, an admin call),
    /// which is the first moment it can matter. Static members are removed the same way.
    pub max_poll_interval: Duration,
    /// Kafka: `enable.auto.commit` (default true): commit positions every
    /// `auto_commit_interval` in `poll`, before revoking partitions, and on `close`.
    pub enable_auto_commit: bool,
    /// Kafka: `auto.commit.interval.ms` (default 5 s).
    pub auto_commit_interval: Duration,
    /// Kafka: `max.poll.records` (default 500).
    pub max_poll_records: usize,
    /// Kafka: `auto.offset.reset` (default latest).
    pub auto_offset_reset: OffsetReset,
    /// Kafka: `max.partition.fetch.bytes`, the bytes read from one partition at a time
    /// (default 1 MiB; a larger batch is still returned whole).
    pub max_partition_fetch_bytes: usize,
    /// How `poll` waits.
    pub wait_strategy: WaitStrategy,
    /// Kafka: `isolation.level` (default read_uncommitted). It also decides what
    /// `end_offsets`, `seek_to_end` and the `latest` reset mean: the last stable offset
    /// under read_committed.
    pub isolation_level: IsolationLevel,
}

impl Default for ConsumerConfig {
    fn default() -> ConsumerConfig {
        ConsumerConfig {
            group_id: None,
            group_instance_id: None,
            partition_assignment_strategy: vec![
                Arc::new(RangeAssignor),
                Arc::new(CooperativeStickyAssignor),
            ],
            session_timeout: Duration::from_secs(45),
            max_poll_interval: Duration::from_secs(300),
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            max_poll_records: 500,
            auto_offset_reset: OffsetReset::Latest,
            max_partition_fetch_bytes: 1 << 20,
            wait_strategy: WaitStrategy::Park,
            isolation_level: IsolationLevel::ReadUncommitted,
        }
    }
}

/// A record as a consumer receives it. Key, value and header values are slices of the
/// stored batch (of the segment's memory map when uncompressed): nothing is copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The timestamp (ms since the Unix epoch).
    pub timestamp: i64,
    /// Whether the timestamp is the producer's or the log's.
    pub timestamp_type: TimestampType,
    /// The key.
    pub key: Option<Bytes>,
    /// The value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// The headers.
    pub headers: Vec<Header>,
}

/// Kafka's `OffsetAndTimestamp`.
pub type OffsetAndTimestamp = TimestampOffset;

/// One assigned partition.
#[derive(Debug)]
struct Assigned {
    tp: TopicPartition,
    topic: Arc<str>,
    log: Arc<Log>,
    /// Next offset `poll` returns; `None` until reset by `auto_offset_reset`.
    position: Option<i64>,
    /// Next offset to read from the log (after the buffered records).
    fetch: i64,
    buffer: VecDeque<ConsumerRecord>,
    paused: bool,
    /// Where the last read of this partition ended, so the next starts there.
    cursor: ReadCursor,
    /// The room of the batches read, kept between reads.
    batches: Vec<RecordBatch>,
}

/// Reads records from assigned or subscribed partitions.
///
/// With [`ConsumerConfig::group_id`], a subscribed consumer is a member of a consumer
/// group: the group's members share the partitions, and committed offsets
/// ([`Consumer::commit_sync`], auto-commit) let a partition's next owner, or the group
/// after a restart, continue where the last one stopped. See
/// [`ConsumerRebalanceListener`] for the rebalance callbacks and
/// [`Consumer::subscribe_with_listener`] for an example.
///
/// Like Kafka's consumer it is used from one thread at a time (`Send`, not `Sync`); make
/// one per thread. Many consumers can read one partition, each at its own pace: they
/// share the segment's page cache and cost the writer only a wake-up when they wait.
#[derive(Debug)]
pub struct Consumer {
    broker: Broker,
    config: ConsumerConfig,
    subscription: Option<Vec<String>>,
    assigned: Vec<Assigned>,
    next: usize,
    waiter: Arc<Waiter>,
    /// The broker's topic epoch when the subscription was last resolved.
    seen_epoch: u64,
    /// Group membership, after `subscribe` with a `group_id`.
    membership: Option<group::Membership>,
}

impl Consumer {
    pub(crate) fn new(broker: Broker, config: ConsumerConfig) -> Consumer {
        Consumer {
            broker,
            config,
            subscription: None,
            assigned: Vec::new(),
            next: 0,
            waiter: Arc::new(Waiter::new()),
            seen_epoch: u64::MAX,
            membership: None,
        }
    }

    /// The consumer's settings.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Reads exactly these partitions (Kafka's `assign`); replaces any subscription.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`] or [`Error::UnknownPartition`]; nothing changes then.
    pub fn assign(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let mut logs = Vec::with_capacity(partitions.len());
        for tp in partitions {
            let p = self.broker.partition(&tp.topic, tp.partition)?;
            logs.push((tp.clone(), p.log().clone()));
        }
        self.leave_group(true)?;
        self.subscription = None;
        self.set_assignment(logs);
        Ok(())
    }

    /// Reads every partition of these topics, including partitions added later (without a
    /// group every subscriber reads all partitions). With a `group_id`, the consumer joins
    /// the group at its next `poll` and reads the partitions the group gives it.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`] (unless the broker auto-creates topics).
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        if self.config.group_id.is_some() {
            return self.subscribe_group(topics, None);
        }
        for t in topics {
            self.broker.topic(t)?;
        }
        let mut names: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        names.sort();
        names.dedup();
        self.subscription = Some(names);
        self.seen_epoch = u64::MAX;
        self.refresh_subscription()
    }

    /// Drops every assignment and subscription; a group member leaves its group (after
    /// the revoke callback; its error, if any, is dropped: use `close` to see it).
    pub fn unsubscribe(&mut self) {
        let _ = self.leave_group(true);
        self.subscription = None;
        self.set_assignment(Vec::new());
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assigned.iter().map(|a| a.tp.clone()).collect()
    }

    /// Re-reads the subscribed topics' partitions when topics changed since the last look
    /// (created, deleted, grown). A deleted topic simply has no partitions, as in Kafka.
    fn refresh_subscription(&mut self) -> Result<()> {
        let Some(topics) = &self.subscription else {
            return Ok(());
        };
        let epoch = self.broker.topic_epoch();
        if epoch == self.seen_epoch {
            return Ok(());
        }
        let mut logs = Vec::new();
        for t in topics {
            let count = match self.broker.partition_count(t) {
                Ok(n) => n,
                Err(Error::UnknownTopic { .. }) => 0,
                Err(e) => return Err(e),
            };
            for p in 0..count {
                let part = self.broker.partition(t, p)?;
                logs.push((TopicPartition::new(t.as_str(), p), part.log().clone()));
            }
        }
        self.set_assignment(logs);
        self.seen_epoch = epoch;
        Ok(())
    }

    /// Keeps the state of partitions that stay; new ones start without a position.
    /// Partitions named twice are assigned once; a partition whose log was replaced (its
    /// topic deleted and created again) starts afresh.
    fn set_assignment(&mut self, logs: Vec<(TopicPartition, Arc<Log>)>) {
        let mut old: HashMap<TopicPartition, Assigned> =
            self.assigned.drain(..).map(|a| (a.tp.clone(), a)).collect();
        for a in old.values() {
            a.log.remove_waiter(&self.waiter);
        }
        for (tp, log) in logs {
            if self.assigned.iter().any(|a| a.tp == tp) {
                continue;
            }
            let kept = old.remove(&tp).filter(|a| Arc::ptr_eq(&a.log, &log));
            let a = kept.unwrap_or_else(|| Assigned {
                topic: tp.topic.as_str().into(),
                tp,
                log,
                position: None,
                fetch: 0,
                buffer: VecDeque::new(),
                paused: false,
                cursor: ReadCursor::default(),
                batches: Vec::new(),
            });
            a.log.add_waiter(&self.waiter);
            self.assigned.push(a);
        }
        self.next = 0;
    }

    fn index(&self, tp: &TopicPartition) -> Result<usize> {
        self.assigned
            .iter()
            .position(|a| &a.tp == tp)
            .ok_or_else(|| Error::NotAssigned {
                topic: tp.topic.clone(),
                partition: tp.partition,
            })
    }

    /// Returns up to `max_poll_records` records from the unpaused partitions, taking
    /// them in turn; when none is available, waits up to `timeout` (by the wait
    /// strategy), woken by the append itself. Control records are skipped.
    ///
    /// # Errors
    /// [`Error::NoOffset`] or [`Error::OffsetOutOfRange`] when `auto_offset_reset` is
    /// `None`; a corrupt batch or I/O error naming its file. A poll that has taken records
    /// before one of these (of other partitions, or of the failing one up to the bad
    /// batch or record) returns those records instead, and the next poll meets the error
    /// (records are never dropped with an error).
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        if self.membership.is_some() {
            return self.group_poll(timeout);
        }
        self.refresh_subscription()?;
        // A timeout too large for an `Instant` (Duration::MAX) means no deadline.
        let deadline = Instant::now().checked_add(timeout);
        let mut spins = 0u32;
        loop {
            let records = self.take_available()?;
            if !records.is_empty() {
                return Ok(records);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(records);
            }
            self.wait(deadline, &mut spins);
        }
    }

    /// Waits for data by the configured strategy, up to `deadline`.
    fn wait(&self, deadline: Option<Instant>, spins: &mut u32) {
        let park = match self.config.wait_strategy {
            WaitStrategy::Park => true,
            WaitStrategy::SpinThenPark { spins: limit } => *spins >= limit,
            WaitStrategy::BusySpin => false,
        };
        if !park {
            *spins += 1;
            std::hint::spin_loop();
            return;
        }
        self.waiter.park_until(deadline, || self.has_data());
    }

    /// Whether an unpaused partition has a record past its position (or buffered).
    fn has_data(&self) -> bool {
        if self.membership.as_ref().is_some_and(|m| m.signalled()) {
            return true;
        }
        self.assigned.iter().any(|a| {
            !a.paused
                && (!a.buffer.is_empty()
                    || a.position.is_none()
                    || self.config.isolation_level.upper(&a.log) > a.fetch)
        })
    }

    /// Takes up to `max_poll_records` records from the unpaused partitions in turn.
    ///
    /// A partition's error ends the poll. When records were taken already (of other
    /// partitions, or of the failing one before its bad batch or record), they are
    /// returned and the error is left for the next poll, as Kafka's consumer returns the
    /// records it has collected and raises the error on the next poll: their positions
    /// have moved past them, so failing the poll would lose them. The failing partition
    /// stays where the error found it, so the next poll that reads it meets the error
    /// again (a partition without a position, a corrupt batch); one that has gone
    /// meanwhile (a passing I/O error) cost no record.
    fn take_available(&mut self) -> Result<Vec<ConsumerRecord>> {
        let mut out = Vec::new();
        let n = self.assigned.len();
        for i in 0..n {
            if out.len() >= self.config.max_poll_records {
                break;
            }
            let idx = (self.next + i) % n;
            if self.assigned[idx].paused {
                continue;
            }
            if let Err(e) = self.take_from(idx, &mut out) {
                if out.is_empty() {
                    return Err(e);
                }
                break;
            }
        }
        if n > 0 {
            self.next = (self.next + 1) % n;
        }
        Ok(out)
    }

    /// Moves the records of assigned partition `idx` that `out` has room for (up to
    /// `max_poll_records`) into `out`: the buffered ones, or when none are buffered, the
    /// next batches read and decoded straight into `out`, the rest kept in the buffer.
    ///
    /// The position moves past every record put in `out`, also when reading fails
    /// midway: those records are returned and the error meets the next poll.
    fn take_from(&mut self, idx: usize, out: &mut Vec<ConsumerRecord>) -> Result<()> {
        self.ensure_position(idx)?;
        let want = self.config.max_poll_records - out.len();
        let before = out.len();
        let a = &mut self.assigned[idx];
        let result = if a.buffer.is_empty() {
            self.fill(idx, out, want)
        } else {
            out.extend(a.buffer.drain(..want.min(a.buffer.len())));
            Ok(())
        };
        let a = &mut self.assigned[idx];
        if let Some(last) = out.last().filter(|_| out.len() > before) {
            a.position = Some(last.offset + 1);
        }
        if a.buffer.is_empty() {
            a.position = Some(a.fetch.max(a.position.unwrap_or(a.fetch)));
        }
        result
    }

    /// Sets a position from `auto_offset_reset` when there is none or it left the log.
    fn ensure_position(&mut self, idx: usize) -> Result<()> {
        let reset = self.config.auto_offset_reset;
        let a = &mut self.assigned[idx];
        let (start, end) = (a.log.log_start_offset(), a.log.log_end_offset());
        let latest = self.config.isolation_level.upper(&a.log);
        let valid = a.position.is_some_and(|p| (start..=end).contains(&p));
        if valid {
            return Ok(());
        }
        let to = match (reset, a.position) {
            (OffsetReset::Earliest, _) => start,
            (OffsetReset::Latest, _) => latest,
            (OffsetReset::None, None) => {
                return Err(Error::NoOffset {
                    topic: a.tp.topic.clone(),
                    partition: a.tp.partition,
                });
            }
            (OffsetReset::None, Some(offset)) => {
                return Err(Error::OffsetOutOfRange {
                    partition: a.log.name().to_string(),
                    offset,
                    log_start_offset: start,
                    log_end_offset: end,
                });
            }
        };
        a.position = Some(to);
        a.fetch = to;
        a.buffer.clear();
        Ok(())
    }

    /// Reads and decodes the next batches of a partition (whose buffer is empty): the
    /// first `want` records into `out`, the rest into the buffer. A record goes straight
    /// to the caller, without a stop in the buffer; `out` grows by `want` records at most.
    fn fill(&mut self, idx: usize, out: &mut Vec<ConsumerRecord>, mut want: usize) -> Result<()> {
        let max = self.config.max_partition_fetch_bytes;
        let isolation = self.config.isolation_level;
        let a = &mut self.assigned[idx];
        // Records read now follow the buffered ones, which would have to go first.
        debug_assert!(a.buffer.is_empty(), "fill with records buffered");
        let upper = isolation.upper(&a.log);
        if a.fetch >= upper {
            return Ok(());
        }
        let position = a.position.unwrap_or(a.fetch);
        let aborted = match isolation {
            IsolationLevel::ReadCommitted => a.log.aborted_transactions(a.fetch, upper)?,
            IsolationLevel::ReadUncommitted => Vec::new(),
        };
        let mut batches = std::mem::take(&mut a.batches);
        a.log.read_into(a.fetch, max, &mut a.cursor, &mut batches)?;
        for batch in batches.drain(..) {
            if batch.base_offset() >= upper {
                break;
            }
            let next = batch.next_offset();
            if !batch.is_control() && !is_aborted(&batch, &aborted) {
                let timestamp_type = batch.timestamp_type();
                let corrupt = |source| Error::CorruptRecords {
                    partition: a.log.name().to_string(),
                    offset: batch.base_offset(),
                    source,
                };
                let records = batch.records(a.log.codecs()).map_err(corrupt)?;
                out.reserve(want.min(usize::try_from(batch.records_count()).unwrap_or(0)));
                for r in records {
                    let r = r.map_err(corrupt)?;
                    if r.offset < position {
                        continue;
                    }
                    let record = ConsumerRecord {
                        topic: a.topic.clone(),
                        partition: a.tp.partition,
                        offset: r.offset,
                        timestamp: r.timestamp,
                        timestamp_type,
                        key: r.key,
                        value: r.value,
                        headers: r.headers,
                    };
                    if want > 0 {
                        want -= 1;
                        out.push(record);
                    } else {
                        a.buffer.push_back(record);
                    }
                }
            }
            a.fetch = next;
        }
        // Room for a typical read is kept; a large read's is given back.
        batches.shrink_to(64);
        a.batches = batches;
        Ok(())
    }

    /// Moves the position of an assigned partition; the next `poll` reads from there.
    ///
    /// # Errors
    /// [`Error::NotAssigned`].
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        let i = self.index(tp)?;
        let a = &mut self.assigned[i];
        a.position = Some(offset);
        a.fetch = offset;
        a.buffer.clear();
        Ok(())
    }

    /// Moves each partition to its log start offset.
    ///
    /// # Errors
    /// [`Error::NotAssigned`].
    pub fn seek_to_beginning(&mut self, tps: &[TopicPartition]) -> Result<()> {
        self.seek_each(tps, |log| log.log_start_offset())
    }

    /// Moves each partition to its log end offset.
    ///
    /// # Errors
    /// [`Error::NotAssigned`].
    pub fn seek_to_end(&mut self, tps: &[TopicPartition]) -> Result<()> {
        let isolation = self.config.isolation_level;
        self.seek_each(tps, |log| isolation.upper(log))
    }

    fn seek_each(&mut self, tps: &[TopicPartition], to: impl Fn(&Log) -> i64) -> Result<()> {
        for tp in tps {
            let offset = to(&self.assigned[self.index(tp)?].log);
            self.seek(tp, offset)?;
        }
        Ok(())
    }

    /// The offset of the next record `poll` returns for the partition (resolving
    /// `auto_offset_reset` if there is no position yet).
    ///
    /// # Errors
    /// [`Error::NotAssigned`]; [`Error::NoOffset`] when the reset policy is `None`.
    pub fn position(&mut self, tp: &TopicPartition) -> Result<i64> {
        let i = self.index(tp)?;
        self.ensure_position(i)?;
        Ok(self.assigned[i].position.expect("ensured"))
    }

    /// Stops returning records from these partitions until resumed.
    ///
    /// # Errors
    /// [`Error::NotAssigned`].
    pub fn pause(&mut self, tps: &[TopicPartition]) -> Result<()> {
        for tp in tps {
            let i = self.index(tp)?;
            self.assigned[i].paused = true;
        }
        Ok(())
    }

    /// Returns records from these partitions again.
    ///
    /// # Errors
    /// [`Error::NotAssigned`].
    pub fn resume(&mut self, tps: &[TopicPartition]) -> Result<()> {
        for tp in tps {
            let i = self.index(tp)?;
            self.assigned[i].paused = false;
        }
        Ok(())
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.assigned
            .iter()
            .filter(|a| a.paused)
            .map(|a| a.tp.clone())
            .collect()
    }

    /// The log start offset of each partition (assigned or not).
    ///
    /// # Errors
    /// [`Error::UnknownTopic`] or [`Error::UnknownPartition`].
    pub fn beginning_offsets(
        &self,
        tps: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, i64>> {
        self.offsets_of(tps, Partition::log_start_offset)
    }

    /// The log end offset of each partition (assigned or not); under read_committed,
    /// the last stable offset.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`] or [`Error::UnknownPartition`].
    pub fn end_offsets(&self, tps: &[TopicPartition]) -> Result<HashMap<TopicPartition, i64>> {
        match self.config.isolation_level {
            IsolationLevel::ReadUncommitted => self.offsets_of(tps, Partition::log_end_offset),
            IsolationLevel::ReadCommitted => self.offsets_of(tps, |p| p.log().last_stable_offset()),
        }
    }

    /// How many offsets this consumer is behind on `tp`: its end offset for the
    /// configured isolation level ([`Consumer::end_offsets`]: the log end offset, or the
    /// last stable offset under `read_committed`) minus its position. Kafka's
    /// `currentLag`, computed here rather than from the last fetch.
    ///
    /// # Errors
    /// [`Error::NotAssigned`], or what [`Consumer::position`] returns when there is no
    /// position to start from.
    pub fn current_lag(&mut self, tp: &TopicPartition) -> Result<i64> {
        let position = self.position(tp)?;
        let end = self.end_offsets(std::slice::from_ref(tp))?[tp];
        Ok((end - position).max(0))
    }

    fn offsets_of(
        &self,
        tps: &[TopicPartition],
        offset: fn(&Partition) -> i64,
    ) -> Result<HashMap<TopicPartition, i64>> {
        tps.iter()
            .map(|tp| {
                Ok((
                    tp.clone(),
                    offset(&self.broker.partition(&tp.topic, tp.partition)?),
                ))
            })
            .collect()
    }

    /// For each partition, the first offset whose timestamp is ≥ the given one, or `None`
    /// when every record is older.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`], [`Error::UnknownPartition`], or a read error.
    pub fn offsets_for_times(
        &self,
        times: &HashMap<TopicPartition, i64>,
    ) -> Result<HashMap<TopicPartition, Option<OffsetAndTimestamp>>> {
        times
            .iter()
            .map(|(tp, ts)| {
                let p = self.broker.partition(&tp.topic, tp.partition)?;
                Ok((tp.clone(), p.offset_for_timestamp(*ts)?))
            })
            .collect()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.drop_membership();
        for a in &self.assigned {
            a.log.remove_waiter(&self.waiter);
        }
    }
}

/// Whether `batch` belongs to one of the `aborted` transactions (reference §6.2: a
/// transactional batch of an aborted producer between its first offset and its marker).
fn is_aborted(batch: &crate::record::RecordBatch, aborted: &[crate::log::AbortedTxn]) -> bool {
    batch.is_transactional()
        && aborted.iter().any(|t| {
            t.producer_id == batch.producer_id()
                && t.first_offset <= batch.base_offset()
                && batch.last_offset() < t.last_offset
        })
}
