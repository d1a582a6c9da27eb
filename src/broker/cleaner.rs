//! The broker's cleaner: retention and compaction of every topic's partitions, by a
//! background thread on an interval and on demand (reference §5, Kafka's `LogManager`
//! retention task and `LogCleaner` threads, folded into one thread here).
//!
//! Kafka runs retention every `log.retention.check.interval.ms` and its cleaner threads
//! look for a log to compact every `log.cleaner.backoff.ms`; partlog's single thread
//! wakes every `backoff`, compacts each compacted partition whose dirty ratio exceeds
//! `min.cleanable.dirty.ratio` (or whose oldest dirty data passed
//! `max.compaction.lag.ms`), and applies retention once `retention_check_interval` has
//! passed since the last time. A pass holds no broker-wide lock: each partition's pass
//! takes only that log's cleanup lock, and the log's own locks only to swap its segment
//! list, so appends and reads wait at most for a swap.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{Broker, Inner, Topic};
use crate::error::Result;
use crate::log::{
    CompactionConfig, CompactionReport, Log, RetentionReport, read_checkpoint, write_checkpoint,
};

/// File at the data directory root holding each compacted partition's first dirty
/// offset, in Kafka's offset-checkpoint format.
pub(crate) const CLEANER_CHECKPOINT: &str = "cleaner-offset-checkpoint";

/// A ratio in `[0, 1]` (`min.cleanable.dirty.ratio`, a partition's dirty ratio).
///
/// A newtype so that configs holding one stay `Eq`: it never holds NaN.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Default)]
pub struct Ratio(f64);

impl Eq for Ratio {}

impl Ratio {
    /// The ratio `v`, when it is a number in `[0, 1]`.
    pub fn new(v: f64) -> Option<Ratio> {
        (0.0..=1.0).contains(&v).then_some(Ratio(v))
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Settings of the broker's cleaner, each named after its Kafka broker config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanerConfig {
    /// Kafka: `log.cleaner.enable`. Whether the background thread runs (default true).
    /// [`Broker::clean_topic`] and [`Broker::clean_now`] work either way.
    pub enable: bool,
    /// Kafka: `log.cleaner.dedupe.buffer.size`. Memory for one compaction's offset map
    /// (default 128 MiB); a dirty range with more keys is compacted over several passes.
    pub dedupe_buffer_size: usize,
    /// Kafka: `log.retention.check.interval.ms`. How often retention runs (default 5 min).
    pub retention_check_interval: Duration,
    /// Kafka: `log.cleaner.backoff.ms`. How often the thread looks for partitions to
    /// compact (default 15 s).
    pub backoff: Duration,
}

impl Default for CleanerConfig {
    fn default() -> CleanerConfig {
        CleanerConfig {
            enable: true,
            dedupe_buffer_size: 128 << 20,
            retention_check_interval: Duration::from_millis(300_000),
            backoff: Duration::from_millis(15_000),
        }
    }
}

/// What cleaning one partition did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionCleanReport {
    /// The partition.
    pub partition: i32,
    /// The retention pass (run for every policy: even a compacted log drops the
    /// segments below its log start offset).
    pub retention: RetentionReport,
    /// The compaction pass, on compacted topics.
    pub compaction: Option<CompactionReport>,
}

#[derive(Debug, Default)]
struct Signal {
    stop: bool,
    /// Each task's error at its last run ([`Task`]), until that task runs again.
    errors: [Option<String>; 4],
}

/// What the background thread does, each at its own interval.
#[derive(Clone, Copy, Debug)]
enum Task {
    /// A pass of retention (every `retention_check_interval`) and compaction.
    Retention,
    /// A pass of compaction alone (every `backoff` in between): its success says
    /// nothing of retention, so it has an error of its own.
    Compaction,
    /// Kafka's `offsets.retention.minutes`.
    OffsetsExpiry,
    /// Kafka's `transactional.id.expiration.ms`.
    TransactionalIdExpiry,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Retention => "retention and compaction",
            Task::Compaction => "compaction",
            Task::OffsetsExpiry => "offsets expiry",
            Task::TransactionalIdExpiry => "transactional id expiry",
        }
    }
}

impl Signal {
    /// Records how `task` ran: its error replaces the one of its previous run, and
    /// success clears it. The other tasks' errors stay.
    fn record(&mut self, task: Task, result: Result<()>) {
        self.errors[task as usize] = result.err().map(|e| format!("{}: {e}", task.name()));
    }

    /// The errors of the tasks whose last run failed, joined; `None` when none did.
    fn last_error(&self) -> Option<String> {
        let errors: Vec<&str> = self.errors.iter().flatten().map(String::as_str).collect();
        (!errors.is_empty()).then(|| errors.join("; "))
    }
}

/// The background thread and its stop signal.
#[derive(Debug, Default)]
pub(crate) struct CleanerThread {
    signal: Arc<(Mutex<Signal>, Condvar)>,
    handle: Mutex<Option<JoinHandle<()>>>,
    /// Whether the thread holds a strong reference to the broker (during a pass); set
    /// and cleared under this lock together with taking and dropping the reference.
    holding: Arc<Mutex<bool>>,
    thread: Mutex<Option<std::thread::ThreadId>>,
}

impl CleanerThread {
    /// Starts the thread for `inner` (it holds only a weak reference).
    ///
    /// The thread also expires group offsets and transactional ids (each at its
    /// `BrokerConfig` interval), so it runs even with the cleaner disabled (then it only
    /// does that).
    pub(crate) fn start(inner: &Arc<Inner>) -> std::io::Result<()> {
        let config = inner.config.cleaner.clone();
        let expiry = Expiry {
            offsets: inner.config.offsets_retention_check_interval,
            transactional_ids: inner.config.transactional_id_expiration_check_interval,
        };
        let weak: Weak<Inner> = Arc::downgrade(inner);
        let signal = inner.cleaner.signal.clone();
        let holding = inner.cleaner.holding.clone();
        let handle = std::thread::Builder::new()
            .name("partlog-cleaner".into())
            .spawn(move || run(&weak, &signal, &holding, &config, expiry))?;
        *inner.cleaner.thread.lock() = Some(handle.thread().id());
        *inner.cleaner.handle.lock() = Some(handle);
        Ok(())
    }

    fn stopping(&self) -> bool {
        self.signal.0.lock().stop
    }

    /// Stops the thread and waits for it (unless called on the thread itself).
    pub(crate) fn stop(&self) {
        {
            let (m, cv) = &*self.signal;
            m.lock().stop = true;
            cv.notify_all();
        }
        if let Some(h) = self.handle.lock().take()
            && h.thread().id() != std::thread::current().id()
        {
            // A panic in the cleaner already lost its pass; nothing more to report.
            let _cleaner_panicked = h.join();
        }
    }

    fn last_error(&self) -> Option<String> {
        self.signal.0.lock().last_error()
    }
}

impl Drop for CleanerThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// When the user drops the last handle of a broker while the cleaner is in a pass, the
/// cleaner's own handle would keep the broker — and its directory lock — alive until the
/// pass ends, so opening the directory again right away would fail with
/// [`Error::Locked`](crate::Error::Locked). The last user handle therefore stops the
/// cleaner and waits for it (it stops after the partition it is cleaning), so the broker
/// is dropped, and its lock released, before this drop returns.
impl Drop for Broker {
    fn drop(&mut self) {
        let cleaner = &self.inner.cleaner;
        if *cleaner.thread.lock() == Some(std::thread::current().id()) {
            return;
        }
        let last = *cleaner.holding.lock() && Arc::strong_count(&self.inner) == 2;
        if last {
            cleaner.stop();
        }
    }
}

/// How often the background thread expires what Kafka's coordinators expire.
#[derive(Clone, Copy, Debug)]
struct Expiry {
    offsets: Duration,
    transactional_ids: Duration,
}

fn run(
    weak: &Weak<Inner>,
    signal: &(Mutex<Signal>, Condvar),
    holding: &Mutex<bool>,
    config: &CleanerConfig,
    expiry: Expiry,
) {
    let mut last_retention = Instant::now();
    let mut last_offsets_check = Instant::now();
    let mut last_ids_check = Instant::now();
    // Without the cleaner, the thread wakes only to expire.
    let expiry_wake = expiry.offsets.min(expiry.transactional_ids);
    let wake = if config.enable {
        config.backoff.min(expiry_wake)
    } else {
        expiry_wake
    }
    .max(Duration::from_millis(1));
    loop {
        {
            let mut s = signal.0.lock();
            if !s.stop {
                signal.1.wait_for(&mut s, wake);
            }
            if s.stop {
                return;
            }
        }
        let broker = {
            let mut holding = holding.lock();
            let Some(inner) = weak.upgrade() else { return };
            *holding = true;
            Broker { inner }
        };
        let record = |task, result| signal.0.lock().record(task, result);
        if config.enable {
            let retention = last_retention.elapsed() >= config.retention_check_interval;
            if retention {
                last_retention = Instant::now();
            }
            let task = if retention {
                Task::Retention
            } else {
                Task::Compaction
            };
            record(task, broker.clean_pass(retention, false));
        }
        if last_offsets_check.elapsed() >= expiry.offsets {
            last_offsets_check = Instant::now();
            let expired = broker.expire_group_offsets().map(drop);
            record(Task::OffsetsExpiry, expired);
        }
        if last_ids_check.elapsed() >= expiry.transactional_ids {
            last_ids_check = Instant::now();
            let expired = broker.expire_transactional_ids().map(drop);
            record(Task::TransactionalIdExpiry, expired);
        }
        let mut holding = holding.lock();
        *holding = false;
        drop(broker);
    }
}

impl Broker {
    /// Runs retention and compaction on every partition of `topic` now, on this thread,
    /// and returns once both are done: retention by `retention.ms` / `retention.bytes`
    /// when `cleanup.policy` includes delete, and a compaction of all sealed segments
    /// (whatever the dirty ratio, as an operator asking for it expects) when it includes
    /// compact. Checkpoints are written afterwards.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`](crate::Error::UnknownTopic); the first failure of
    /// [`Log::apply_retention`] or [`Log::compact`] (the other partitions are still
    /// cleaned).
    pub fn clean_topic(&self, topic: &str) -> Result<Vec<PartitionCleanReport>> {
        self.check_open()?;
        let t = self.existing_topic(topic)?;
        let reports = self.clean_topic_logs(&t, true, true)?;
        self.write_cleaner_checkpoints()?;
        Ok(reports)
    }

    /// One pass of the background cleaner over every topic, now, on this thread:
    /// retention everywhere, and compaction of the partitions that qualify by their dirty
    /// ratio or `max.compaction.lag.ms`.
    ///
    /// # Errors
    /// The first failure; the other partitions are still cleaned.
    pub fn clean_now(&self) -> Result<()> {
        self.check_open()?;
        self.clean_pass(true, false)
    }

    /// Kafka's DeleteRecords: moves the partition's log start offset up to
    /// `before_offset`, deletes the segments wholly below it and checkpoints the new start
    /// offset. Returns the log start offset.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`](crate::Error::UnknownTopic),
    /// [`Error::UnknownPartition`](crate::Error::UnknownPartition),
    /// [`Error::PolicyViolation`](crate::Error::PolicyViolation) when the topic's
    /// `cleanup.policy` does not include `delete` (as Kafka refuses DeleteRecords there),
    /// [`Error::OffsetOutOfRange`](crate::Error::OffsetOutOfRange) above the log end
    /// offset, [`Error::Io`](crate::Error::Io).
    pub fn delete_records(&self, topic: &str, partition: i32, before_offset: i64) -> Result<i64> {
        self.check_open()?;
        let t = self.existing_topic(topic)?;
        let log = t.log(partition)?;
        if !t.config.cleanup_policy.deletes() {
            return Err(crate::Error::PolicyViolation {
                topic: topic.to_string(),
                partition,
                reason: "records cannot be deleted: cleanup.policy does not include delete",
            });
        }
        let start = log.delete_records(before_offset)?;
        self.inner.dir.checkpoint()?;
        Ok(start)
    }

    /// Why the background thread's last run of each of its tasks failed, for those that
    /// did: a pass of retention and compaction, a pass of compaction alone, offsets
    /// expiry and transactional id expiry, each named, joined by `; `. A task's error
    /// stays until that task runs again, whatever the others do meanwhile (a retention
    /// error until the next retention pass, `retention_check_interval` later); `None`
    /// when every last run succeeded.
    pub fn cleaner_error(&self) -> Option<String> {
        self.inner.cleaner.last_error()
    }

    fn clean_pass(&self, retention: bool, force: bool) -> Result<()> {
        let topics: Vec<Arc<Topic>> = self.inner.topics.read().values().cloned().collect();
        let mut first_err = None;
        for t in topics {
            if self.inner.closed.load(Ordering::Acquire) || self.inner.cleaner.stopping() {
                break;
            }
            if let Err(e) = self.clean_topic_logs(&t, retention, force) {
                first_err.get_or_insert(e);
            }
        }
        let written = self.write_cleaner_checkpoints();
        match first_err {
            Some(e) => Err(e),
            None => written,
        }
    }

    fn clean_topic_logs(
        &self,
        t: &Topic,
        retention: bool,
        force: bool,
    ) -> Result<Vec<PartitionCleanReport>> {
        let logs: Vec<Arc<Log>> = t.partitions.read().clone();
        let mut out = Vec::with_capacity(logs.len());
        let mut moved = false;
        // A partition that fails (a corrupt segment, a swap that failed and disabled its
        // cleaning) must not keep the topic's other partitions from being cleaned.
        let mut first_err = None;
        for (p, log) in logs.iter().enumerate() {
            let mut report = PartitionCleanReport {
                partition: p as i32,
                ..PartitionCleanReport::default()
            };
            let result = self.clean_log(t, log, retention, force, &mut report);
            moved |= !report.retention.deleted_segments.is_empty();
            match result {
                Ok(()) => out.push(report),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if moved {
            self.inner.dir.checkpoint()?;
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    fn clean_log(
        &self,
        t: &Topic,
        log: &Log,
        retention: bool,
        force: bool,
        report: &mut PartitionCleanReport,
    ) -> Result<()> {
        let c = &t.config;
        if retention {
            let (ms, bytes) = match c.cleanup_policy.deletes() {
                true => (c.retention_ms, c.retention_bytes),
                false => (-1, -1),
            };
            report.retention = log.apply_retention(ms, bytes)?;
        }
        if c.cleanup_policy.compacts() && (force || self.should_compact(log, c)) {
            let config = CompactionConfig {
                delete_retention_ms: c.delete_retention_ms,
                min_compaction_lag_ms: c.min_compaction_lag_ms,
                dedupe_buffer_bytes: self.inner.config.cleaner.dedupe_buffer_size,
            };
            report.compaction = Some(log.compact(&config)?);
        }
        Ok(())
    }

    /// Kafka's eligibility: dirty ratio above `min.cleanable.dirty.ratio`, or dirty data
    /// older than `max.compaction.lag.ms`.
    fn should_compact(&self, log: &Log, c: &super::TopicConfig) -> bool {
        if log.dirty_ratio() > c.min_cleanable_dirty_ratio.get() {
            return true;
        }
        let now = self.inner.config.clock.now_ms();
        log.first_dirty_segment_timestamp()
            .is_some_and(|ts| ts >= 0 && now.saturating_sub(ts) > c.max_compaction_lag_ms)
    }

    /// Reads `cleaner-offset-checkpoint` into the logs of compacted topics. A file that
    /// does not parse is ignored: compaction then starts over from the log start, which
    /// costs time but loses nothing.
    pub(crate) fn load_cleaner_checkpoints(&self) {
        let path = self.path().join(CLEANER_CHECKPOINT);
        let Ok(offsets) = read_checkpoint(&path) else {
            return;
        };
        for ((topic, p), offset) in offsets {
            if let Some(t) = self.topic_if_exists(&topic)
                && let Ok(log) = t.log(p)
            {
                log.set_first_dirty_offset(offset);
            }
        }
    }

    /// Writes every compacted partition's first dirty offset.
    pub(crate) fn write_cleaner_checkpoints(&self) -> Result<()> {
        let mut offsets = std::collections::BTreeMap::new();
        for (name, t) in self.inner.topics.read().iter() {
            if !t.config.cleanup_policy.compacts() {
                continue;
            }
            for (p, log) in t.partitions.read().iter().enumerate() {
                offsets.insert((name.clone(), p as i32), log.first_dirty_offset());
            }
        }
        write_checkpoint(&self.path().join(CLEANER_CHECKPOINT), &offsets)
    }
}

#[cfg(test)]
mod tests {
    use super::{Signal, Task};
    use crate::Error;

    fn failed(group: &str) -> crate::error::Result<()> {
        Err(Error::UnknownGroup {
            group: group.to_string(),
        })
    }

    /// An expiry's error is still reported after later cleaning passes succeed, a
    /// retention pass's error after later compaction-only passes, and each task's next
    /// run replaces or clears only its own.
    #[test]
    fn each_task_keeps_its_error_until_it_runs_again() {
        let mut s = Signal::default();
        assert_eq!(s.last_error(), None);
        s.record(Task::OffsetsExpiry, failed("a"));
        s.record(Task::Retention, Ok(()));
        s.record(Task::Compaction, Ok(()));
        assert_eq!(
            s.last_error().as_deref(),
            Some("offsets expiry: unknown group \"a\"")
        );
        s.record(Task::Retention, failed("b"));
        s.record(Task::Compaction, Ok(()));
        s.record(Task::TransactionalIdExpiry, failed("c"));
        assert_eq!(
            s.last_error().as_deref(),
            Some(
                "retention and compaction: unknown group \"b\"; offsets expiry: unknown group \"a\"; \
                 transactional id expiry: unknown group \"c\""
            )
        );
        s.record(Task::OffsetsExpiry, Ok(()));
        s.record(Task::Retention, Ok(()));
        assert_eq!(
            s.last_error().as_deref(),
            Some("transactional id expiry: unknown group \"c\"")
        );
        s.record(Task::TransactionalIdExpiry, Ok(()));
        assert_eq!(s.last_error(), None);
    }
}
