//! The root handle: a data directory of topics, each split into partition logs.

mod cleaner;
mod config;
pub(crate) mod internal;
mod partition;
mod producer_ids;
mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

pub use cleaner::{CleanerConfig, PartitionCleanReport, Ratio};
pub use config::{BrokerConfig, CleanupPolicy, TopicCompression, TopicConfig};
pub use partition::{Partition, PartitionInfo, TopicDescription};

use crate::consumer::{Consumer, ConsumerConfig};
use crate::error::{Error, Result};
use crate::log::{Log, LogDir, validate_topic_name};
use crate::producer::{Producer, ProducerConfig};

/// One topic: its config and its partition logs, indexed by partition number.
#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) name: Arc<str>,
    pub(crate) config: TopicConfig,
    pub(crate) partitions: RwLock<Vec<Arc<Log>>>,
    /// `partitions.len()`, readable on every send without taking the lock.
    count: AtomicI32,
}

impl Topic {
    pub(crate) fn partition_count(&self) -> i32 {
        self.count.load(Ordering::Acquire)
    }

    /// Adds the next partition's log.
    fn push_partition(&self, log: Arc<Log>) {
        let mut parts = self.partitions.write();
        parts.push(log);
        self.count.store(parts.len() as i32, Ordering::Release);
    }

    pub(crate) fn log(&self, partition: i32) -> Result<Arc<Log>> {
        let parts = self.partitions.read();
        usize::try_from(partition)
            .ok()
            .and_then(|p| parts.get(p).cloned())
            .ok_or_else(|| Error::UnknownPartition {
                topic: self.name.to_string(),
                partition,
                partitions: parts.len() as i32,
            })
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) dir: LogDir,
    pub(crate) config: BrokerConfig,
    pub(crate) topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serialises changes to the topic list and its file.
    admin: Mutex<()>,
    /// Bumped by every create, delete and partition change, so producers and consumers
    /// can tell with one atomic load that their cached view of the topics is stale.
    topic_epoch: AtomicU64,
    closed: AtomicBool,
    /// The consumer groups of this broker and their committed offsets.
    pub(crate) groups: crate::group::coordinator::Coordinator,
    /// The background cleaner (retention and compaction).
    cleaner: cleaner::CleanerThread,
    /// Producer ids for idempotent and transactional producers.
    producer_ids: producer_ids::ProducerIds,
    /// The transaction coordinator.
    pub(crate) txns: crate::txn::coordinator::TxnCoordinator,
}

/// The root handle of partlog: a data directory holding topics and their partitions.
///
/// Opening loads every topic (running recovery on each partition as needed) and takes an
/// OS lock on the directory, so a second process gets [`Error::Locked`]. `Broker` is
/// `Send + Sync` and cheap to clone; every clone is the same broker. [`Broker::close`]
/// flushes, trims indexes, writes checkpoints and the clean-shutdown marker; dropping
/// without closing is safe, and the next open recovers.
#[derive(Clone, Debug)]
pub struct Broker {
    pub(crate) inner: Arc<Inner>,
}

impl Broker {
    /// Opens (creating if needed) the data directory `path`.
    ///
    /// Topics come from the `partlog-topics` file; partition directories without an
    /// entry there (copied from Kafka, say) are loaded as topics with
    /// `config.default_topic_config`.
    ///
    /// # Errors
    /// [`Error::Locked`] when another handle has the directory open; [`Error::Io`],
    /// [`Error::BadCheckpoint`] or a recovery error naming the file.
    pub fn open(path: impl AsRef<Path>, config: BrokerConfig) -> Result<Broker> {
        let dir = LogDir::open_with(path, config.codecs.clone(), config.clock.clone())?;
        let path = dir.path().to_path_buf();
        let mut listed = store::read_topics(dir.path())?;
        // Deletions a crash interrupted are finished before the directories are listed,
        // so that none of their partitions comes back as a topic.
        let deleting = store::read_deleting(dir.path())?;
        for name in &deleting {
            remove_partition_dirs(&dir, name)?;
            listed.remove(name);
        }
        for (topic, partition) in dir.partitions_on_disk()? {
            let entry = listed
                .entry(topic)
                .or_insert_with(|| (0, config.default_topic_config.clone()));
            entry.0 = entry.0.max(partition + 1);
        }
        let mut topics = BTreeMap::new();
        for (name, (count, topic_config)) in listed {
            let topic = Topic {
                name: name.as_str().into(),
                config: topic_config,
                partitions: RwLock::new(Vec::new()),
                count: AtomicI32::new(0),
            };
            for p in 0..count {
                let log = dir.open_log(&name, p, topic.config.log_config())?;
                topic.push_partition(log);
            }
            topics.insert(name, Arc::new(topic));
        }
        let inner = Arc::new(Inner {
            dir,
            config,
            topics: RwLock::new(topics),
            admin: Mutex::new(()),
            topic_epoch: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            groups: Default::default(),
            cleaner: cleaner::CleanerThread::default(),
            producer_ids: producer_ids::ProducerIds::open(&path)?,
            txns: Default::default(),
        });
        let broker = Broker { inner };
        broker.save_topics()?;
        store::write_deleting(&path, &BTreeSet::new())?;
        broker.load_cleaner_checkpoints();
        // Transactions a crash left open are finished first, so the groups load only
        // committed offsets.
        broker.inner.txns.load(&broker)?;
        if let Some(id) = producer_ids::highest_in_use(&broker) {
            broker.inner.producer_ids.skip_through(id);
        }
        broker.inner.groups.load(&broker)?;
        cleaner::CleanerThread::start(&broker.inner).map_err(|e| Error::io(broker.path(), e))?;
        Ok(broker)
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        self.inner.dir.path()
    }

    /// The broker's settings.
    pub fn config(&self) -> &BrokerConfig {
        &self.inner.config
    }

    /// Whether the previous session closed this directory cleanly.
    pub fn had_clean_shutdown(&self) -> bool {
        self.inner.dir.had_clean_shutdown()
    }

    /// Changes whenever a topic is created, deleted or grows.
    pub(crate) fn topic_epoch(&self) -> u64 {
        self.inner.topic_epoch.load(Ordering::Acquire)
    }

    #[inline]
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(self.closed_error());
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn closed_error(&self) -> Error {
        Error::Closed(format!("broker at {}", self.path().display()))
    }

    fn save_topics(&self) -> Result<()> {
        store::write_topics(self.path(), &self.topic_list())
    }

    /// Writes the topic list with `name` listed at `partitions` partitions and `config`,
    /// before its partitions exist (see `create_topic`).
    fn save_topics_with(&self, name: &str, partitions: i32, config: &TopicConfig) -> Result<()> {
        let mut list = self.topic_list();
        list.insert(name.to_string(), (partitions, config.clone()));
        store::write_topics(self.path(), &list)
    }

    /// The topics as `partlog-topics` lists them: name, partition count and config.
    fn topic_list(&self) -> BTreeMap<String, (i32, TopicConfig)> {
        self.inner
            .topics
            .read()
            .iter()
            .map(|(n, t)| (n.clone(), (t.partition_count(), t.config.clone())))
            .collect()
    }

    /// Takes back a `create_topic` of `name` whose partition could not be opened, as
    /// `delete_topic` would: the deletion is recorded first, so that if anything below
    /// fails too, the next open (or `create_topic` of the name) finishes it and the
    /// partitions made so far never come back as a topic with the default config.
    fn undo_create(&self, name: &str) {
        // The create's own error is the one returned.
        let _undone = self.delete_files(name, || {});
    }

    /// Deletes topic `name` from disk: records the deletion in `partlog-deleting`, runs
    /// `unlist` (which takes the topic out of memory, if it is there), writes the topic
    /// list, deletes the partition directories and their checkpoint entries, and last
    /// takes the name out of `partlog-deleting`. From the first write on, whatever stops
    /// it is finished by the next open (or `create_topic` of the name).
    fn delete_files(&self, name: &str, unlist: impl FnOnce()) -> Result<()> {
        let mut deleting = store::read_deleting(self.path())?;
        deleting.insert(name.to_string());
        store::write_deleting(self.path(), &deleting)?;
        unlist();
        self.save_topics()?;
        remove_partition_dirs(&self.inner.dir, name)?;
        deleting.remove(name);
        store::write_deleting(self.path(), &deleting)
    }

    /// Finishes the deletion of `name` if one was left unfinished by an I/O error (a
    /// crash's is finished by `open`), so that a topic created under the same name is
    /// not deleted by the next `open`.
    fn finish_deletion(&self, name: &str) -> Result<()> {
        let mut deleting = store::read_deleting(self.path())?;
        if deleting.remove(name) {
            remove_partition_dirs(&self.inner.dir, name)?;
            store::write_deleting(self.path(), &deleting)?;
        }
        Ok(())
    }

    /// Creates a topic with `partitions` partitions.
    ///
    /// The topic list is written first, then the partition directories: a crash in
    /// between leaves a listed topic whose missing directories the next [`Broker::open`]
    /// creates, with the topic's own config. An I/O error takes the topic back out.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a name that breaks Kafka's rules, a partition count
    /// below 1 or a bad config value; [`Error::TopicExists`]; [`Error::Io`].
    pub fn create_topic(&self, name: &str, partitions: i32, config: TopicConfig) -> Result<()> {
        self.check_open()?;
        validate_topic_name(name)?;
        if partitions < 1 {
            return Err(Error::InvalidConfig {
                name: "partitions",
                value: partitions.to_string(),
                reason: "a topic needs at least 1 partition",
            });
        }
        config.validate()?;
        let _admin = self.inner.admin.lock();
        if self.inner.topics.read().contains_key(name) {
            return Err(Error::TopicExists {
                topic: name.to_string(),
            });
        }
        self.finish_deletion(name)?;
        self.save_topics_with(name, partitions, &config)?;
        let topic = Topic {
            name: name.into(),
            config,
            partitions: RwLock::new(Vec::with_capacity(partitions as usize)),
            count: AtomicI32::new(0),
        };
        for p in 0..partitions {
            match self.inner.dir.open_log(name, p, topic.config.log_config()) {
                Ok(log) => topic.push_partition(log),
                Err(e) => {
                    self.undo_create(name);
                    return Err(e);
                }
            }
        }
        self.inner
            .topics
            .write()
            .insert(name.to_string(), Arc::new(topic));
        self.inner.topic_epoch.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Looks a topic up, creating it when `auto_create_topics` is on.
    pub(crate) fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        if let Some(t) = self.inner.topics.read().get(name) {
            return Ok(t.clone());
        }
        if self.inner.config.auto_create_topics {
            let config = self.inner.config.default_topic_config.clone();
            match self.create_topic(name, self.inner.config.default_partitions, config) {
                Ok(()) | Err(Error::TopicExists { .. }) => {}
                Err(e) => return Err(e),
            }
            if let Some(t) = self.inner.topics.read().get(name) {
                return Ok(t.clone());
            }
        }
        Err(Error::UnknownTopic {
            topic: name.to_string(),
        })
    }

    /// The topic, if it exists now (no auto-creation).
    pub(crate) fn topic_if_exists(&self, name: &str) -> Option<Arc<Topic>> {
        self.inner.topics.read().get(name).cloned()
    }

    /// The names of every topic, sorted.
    pub fn topics(&self) -> Vec<String> {
        self.inner.topics.read().keys().cloned().collect()
    }

    /// A topic's config and the state of each of its partitions.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`].
    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let topic = self.existing_topic(name)?;
        let partitions = topic.partitions.read();
        Ok(TopicDescription {
            name: name.to_string(),
            config: topic.config.clone(),
            partitions: partitions
                .iter()
                .enumerate()
                .map(|(p, log)| PartitionInfo::of(p as i32, log))
                .collect(),
        })
    }

    fn existing_topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.inner
            .topics
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownTopic {
                topic: name.to_string(),
            })
    }

    /// Deletes a topic and all its data.
    ///
    /// The deletion is recorded durably first (`partlog-deleting`, beside the topic
    /// list): from then on it completes even if a crash or an I/O error stops it halfway,
    /// as the next [`Broker::open`] (or a `create_topic` of the same name) removes what
    /// is left. A deleted topic never comes back from partition directories not yet
    /// removed.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`]; [`Error::Io`].
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        self.check_open()?;
        let _admin = self.inner.admin.lock();
        self.existing_topic(name)?;
        self.delete_files(name, || {
            self.inner.topics.write().remove(name);
            self.inner.topic_epoch.fetch_add(1, Ordering::AcqRel);
        })
    }

    /// Grows a topic to `total` partitions (Kafka's `--alter --partitions`); keys then
    /// hash to different partitions, as in Kafka.
    ///
    /// As in `create_topic`, the topic list is written first: a crash before every new
    /// partition exists leaves the next [`Broker::open`] to create the rest.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`]; [`Error::InvalidConfig`] when `total` is not larger than
    /// the current count; [`Error::Io`].
    pub fn add_partitions(&self, name: &str, total: i32) -> Result<()> {
        self.check_open()?;
        let _admin = self.inner.admin.lock();
        let topic = self.existing_topic(name)?;
        let current = topic.partition_count();
        if total <= current {
            return Err(Error::InvalidConfig {
                name: "partitions",
                value: total.to_string(),
                reason: "partitions can only be added: the new count must exceed the current one",
            });
        }
        self.save_topics_with(name, total, &topic.config)?;
        let added = (current..total).try_for_each(|p| {
            let log = self
                .inner
                .dir
                .open_log(name, p, topic.config.log_config())?;
            topic.push_partition(log);
            Ok(())
        });
        self.inner.topic_epoch.fetch_add(1, Ordering::AcqRel);
        if added.is_err() {
            // The list then names the partitions that exist; best effort, as the next
            // open creates the rest if this write fails too.
            let _listed = self.save_topics();
        }
        added
    }

    /// A handle on one partition, for reading offsets and data directly.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`] or [`Error::UnknownPartition`].
    pub fn partition(&self, topic: &str, partition: i32) -> Result<Partition> {
        let t = self.existing_topic(topic)?;
        Ok(Partition::new(t.name.clone(), partition, t.log(partition)?))
    }

    /// Number of partitions of a topic.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`].
    pub fn partition_count(&self, topic: &str) -> Result<i32> {
        Ok(self.existing_topic(topic)?.partition_count())
    }

    /// A producer id never handed out before in this data directory (Kafka's
    /// `InitProducerId` without a transactional id).
    pub(crate) fn allocate_producer_id(&self) -> Result<i64> {
        self.inner.producer_ids.allocate()
    }

    /// Every transactional id the transaction coordinator knows, with its state (the
    /// partitions of open transactions included), by id.
    pub fn transactions(&self) -> Vec<crate::txn::TransactionDescription> {
        self.inner.txns.list()
    }

    /// Every transaction open on a partition, by topic, partition and start offset, with
    /// the transactional id whose open transaction holds the partition; those without
    /// one are hanging ([`PartitionTransaction`](crate::PartitionTransaction)): the open
    /// transactions that Kafka's `kafka-transactions.sh describe-producers` shows, over
    /// every partition.
    pub fn partition_transactions(&self) -> Vec<crate::PartitionTransaction> {
        self.inner.txns.partition_transactions(self)
    }

    /// The hanging transactions: open on a partition, with no transactional id whose
    /// open transaction holds it, so that nothing will ever end them (Kafka's
    /// `kafka-transactions.sh find-hanging`). partlog's coordinator ends every
    /// transaction it holds, so in a directory written through its producers this finds
    /// one only after something wrote a transactional batch past the coordinator (such as
    /// [`Log::append`](crate::Log::append) of a transactional batch), or after a producer
    /// id ran out of epochs during a transaction (the coordinator's markers then carry
    /// the new producer id); a directory copied from Kafka may have some, after a
    /// coordinator lost its state.
    pub fn find_hanging_transactions(&self) -> Vec<crate::PartitionTransaction> {
        let mut all = self.partition_transactions();
        all.retain(|t| t.transactional_id.is_none());
        all
    }

    /// Ends the hanging transaction that starts at `start_offset` on a partition with an
    /// ABORT marker, fsynced (Kafka's `kafka-transactions.sh abort --topic --partition
    /// --start-offset`): its records are aborted, and the partition's last stable offset
    /// moves on. Returns what was aborted.
    ///
    /// Unlike Kafka's tool, which writes the marker whatever the coordinator knows, this
    /// refuses a transaction that a transactional id still holds: aborting one partition
    /// of a live transaction behind its producer would break its atomicity. End those
    /// through their producer, or let `transaction_timeout` abort them.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`], [`Error::UnknownPartition`];
    /// [`Error::NoOpenTransaction`] when no transaction open there starts at
    /// `start_offset` (naming those that do); [`Error::TransactionNotHanging`];
    /// [`Error::Closed`]; a write error (which poisons the partition).
    pub fn abort_hanging_transaction(
        &self,
        topic: &str,
        partition: i32,
        start_offset: i64,
    ) -> Result<crate::PartitionTransaction> {
        self.check_open()?;
        let tp = crate::TopicPartition::new(topic, partition);
        self.inner.txns.abort_hanging(self, &tp, start_offset)
    }

    /// Aborts every transaction open for longer than its producer's
    /// `transaction_timeout` now (the broker also does this by itself, a few times a
    /// second, once a transactional producer has initialised); returns their ids.
    ///
    /// # Errors
    /// A write error of the coordinator.
    pub fn abort_expired_transactions(&self) -> Result<Vec<String>> {
        self.check_open()?;
        self.inner.txns.abort_expired(self)
    }

    /// Forgets the transactional ids that have had no transaction for
    /// [`BrokerConfig::transactional_id_expiration`] (Kafka's
    /// `transactional.id.expiration.ms`) now, as the background thread does every
    /// [`BrokerConfig::transactional_id_expiration_check_interval`]; returns them. An id
    /// with an open transaction is kept. A producer whose id expired gets
    /// [`Error::InvalidTxnState`] at its next transaction and cannot be used for
    /// transactions again, as after Kafka's fatal errors: a new producer's
    /// `init_transactions` starts the id afresh, with a new producer id.
    ///
    /// # Errors
    /// A write error of the coordinator (that id is kept until the next run).
    pub fn expire_transactional_ids(&self) -> Result<Vec<String>> {
        self.check_open()?;
        let now = self.config().clock.now_ms();
        let expiration = crate::clock::duration_ms(self.config().transactional_id_expiration);
        self.inner.txns.expire_ids(self, now, expiration)
    }

    /// A new producer writing to this broker.
    pub fn producer(&self, config: ProducerConfig) -> Producer {
        Producer::new(self.clone(), config)
    }

    /// A new consumer reading from this broker.
    pub fn consumer(&self, config: ConsumerConfig) -> Consumer {
        Consumer::new(self.clone(), config)
    }

    /// fsyncs every partition and writes the checkpoints.
    ///
    /// # Errors
    /// The first fsync or write that failed.
    pub fn flush(&self) -> Result<()> {
        for (_, log) in self.inner.dir.logs() {
            log.flush()?;
        }
        self.inner.dir.checkpoint()
    }

    /// Closes every partition cleanly (flush, final time-index entries, trimmed indexes,
    /// checkpoints, clean-shutdown marker). Later calls on any clone fail with
    /// [`Error::Closed`]; closing twice is a no-op. Producers should be flushed first:
    /// records still in a producer's batches are not part of the broker.
    ///
    /// # Errors
    /// The first failure; the marker is then not written, so the next open recovers.
    pub fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.inner.cleaner.stop();
        // The logs close even if the cleaner checkpoint cannot be written: a stale one
        // only makes the next compaction start earlier.
        let cleaner_checkpoint = self.write_cleaner_checkpoints();
        self.inner.dir.close()?;
        cleaner_checkpoint
    }

    /// Whether [`Broker::close`] has run.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }
}

/// Deletes every partition directory of topic `name` in `dir` (closing the logs open on
/// them), then its entries in the checkpoint files.
fn remove_partition_dirs(dir: &LogDir, name: &str) -> Result<()> {
    for (topic, partition) in dir.partitions_on_disk()? {
        if topic == name {
            dir.remove_log(&topic, partition)?;
        }
    }
    dir.forget_checkpoints(name)
}
