//! The transactional producer (reference §6.2): `init_transactions`,
//! `begin_transaction`, `send`, `send_offsets_to_transaction`, `commit_transaction`,
//! `abort_transaction`.
//!
//! Batches of a transactional producer carry the transactional bit with its producer id,
//! epoch and sequence. Before a partition's first batch of a transaction is appended, the
//! sender registers the partition with the broker's transaction coordinator (Kafka's
//! `AddPartitionsToTxn`), durably; `send` itself does no extra work. Committing flushes
//! every batch, then the coordinator writes the COMMIT markers; aborting flushes too (the
//! records are written, then hidden from read_committed consumers by the ABORT markers),
//! since a batch may already be in the log.
//!
//! `send` outside a transaction, or once its commit or abort has started, fails at once
//! with [`Error::InvalidTxnState`]. A batch refused by the coordinator (fenced) fails
//! through its handle and `flush`, and so does every later one: like Kafka's fatal
//! errors, create a new producer (its `init_transactions` fences and aborts what this one
//! left).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::{Mutex, RwLock};

use super::idempotence::ProducerId;
use super::{Producer, ProducerConfig};
use crate::broker::Broker;
use crate::consumer::{ConsumerGroupMetadata, TopicPartition};
use crate::error::{Error, Result};
use crate::group::OffsetAndMetadata;

/// A transactional producer's side of its transactions.
#[derive(Debug)]
pub(crate) struct TxnState {
    transactional_id: String,
    timeout_ms: i32,
    /// The broker, weakly: queues hold this, and must not keep a closed broker alive.
    broker: std::sync::Weak<crate::broker::Inner>,
    progress: Mutex<Progress>,
    /// Whether `send` may add records: true from `begin_transaction` until
    /// `commit_transaction` or `abort_transaction` starts. Sends hold it shared while
    /// they add their record, and an end takes it exclusively to close it, so every
    /// record is either in the batches the end flushes or refused; none can reach a
    /// partition after its marker and open a transaction the coordinator never heard of.
    pub(crate) accepting: RwLock<bool>,
}

#[derive(Debug, Default)]
struct Progress {
    in_transaction: bool,
    partitions: HashSet<(Arc<str>, i32)>,
    /// Offsets sent to the open transaction were refused by their group, or their write
    /// failed: it can only be aborted (Kafka's abortable error state), so that its
    /// records are not committed without the offsets that say they were processed.
    offsets_refused: bool,
}

impl TxnState {
    /// The state of a producer with a `transactional_id`, if it has one.
    pub(crate) fn new(broker: &Broker, config: &ProducerConfig) -> Option<Arc<TxnState>> {
        let id = config.transactional_id.clone()?;
        Some(Arc::new(TxnState {
            transactional_id: id,
            timeout_ms: config.transaction_timeout.as_millis().min(i32::MAX as u128) as i32,
            broker: Arc::downgrade(&broker.inner),
            progress: Mutex::new(Progress::default()),
            accepting: RwLock::new(false),
        }))
    }

    fn invalid(&self, reason: &'static str) -> Error {
        Error::InvalidTxnState {
            transactional_id: self.transactional_id.clone(),
            reason,
        }
    }

    /// The error of a send outside a transaction (or while it is being ended).
    pub(crate) fn not_accepting(&self) -> Error {
        self.invalid(
            "records can only be sent inside a transaction, before its commit or abort starts",
        )
    }

    /// The error of a call before `init_transactions`.
    pub(crate) fn not_initialised(&self) -> Error {
        self.invalid("call init_transactions before using a transactional producer")
    }

    fn broker(&self) -> Result<Broker> {
        self.broker
            .upgrade()
            .map(|inner| Broker { inner })
            .ok_or_else(|| Error::Closed("broker".into()))
    }

    /// Registers `topic`-`partition` with the coordinator before the transaction's first
    /// batch there is appended.
    pub(crate) fn add_partition(
        &self,
        topic: &Arc<str>,
        partition: i32,
        producer: Option<ProducerId>,
    ) -> Result<()> {
        let Some(id) = producer else {
            return Err(self.not_initialised());
        };
        let mut p = self.progress.lock();
        if !p.in_transaction {
            return Err(self.invalid("records can only be sent inside a transaction"));
        }
        if p.partitions.contains(&(topic.clone(), partition)) {
            return Ok(());
        }
        let broker = self.broker()?;
        let tp = TopicPartition::new(&**topic, partition);
        broker.inner.txns.add_partitions(
            &broker,
            &self.transactional_id,
            (id.id, id.epoch),
            &[tp],
        )?;
        p.partitions.insert((topic.clone(), partition));
        Ok(())
    }
}

impl Producer {
    fn txn(&self) -> Result<&Arc<TxnState>> {
        self.inner
            .txn
            .as_ref()
            .ok_or_else(|| Error::InvalidTxnState {
                transactional_id: String::new(),
                reason: "the producer has no transactional_id",
            })
    }

    fn txn_producer(&self) -> Result<(&Arc<TxnState>, (i64, i16))> {
        let txn = self.txn()?;
        let id = self
            .inner
            .producer_id
            .get()
            .ok_or_else(|| txn.not_initialised())?;
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("producer".into()));
        }
        Ok((txn, (id.id, id.epoch)))
    }

    /// Kafka's `initTransactions`: gets the producer id and a new epoch for the
    /// transactional id from the broker's coordinator. That fences any earlier producer
    /// with the same transactional id (its later writes and commit fail with
    /// [`Error::TransactionFenced`] or [`Error::ProducerFenced`]) and aborts the
    /// transaction it left open. Call once, before anything else.
    ///
    /// # Errors
    /// [`Error::InvalidTxnState`] without a `transactional_id` or when called twice;
    /// [`Error::InvalidConfig`] for a bad id; a write error of the coordinator.
    pub fn init_transactions(&self) -> Result<()> {
        let txn = self.txn()?;
        if self.inner.producer_id.get().is_some() {
            return Err(txn.invalid("init_transactions was already called"));
        }
        self.inner.broker.check_open()?;
        let (id, epoch) = self.inner.broker.inner.txns.init_producer(
            &self.inner.broker,
            &txn.transactional_id,
            txn.timeout_ms,
        )?;
        let id = ProducerId {
            id,
            epoch,
            transactional: true,
        };
        if self.inner.producer_id.set(id).is_err() {
            return Err(txn.invalid("init_transactions was already called"));
        }
        self.inner.closed.store(false, Ordering::Release);
        Ok(())
    }

    /// Kafka's `beginTransaction`: records sent from now on belong to the transaction.
    ///
    /// # Errors
    /// [`Error::InvalidTxnState`] before `init_transactions` or while a transaction is
    /// open.
    pub fn begin_transaction(&self) -> Result<()> {
        let (txn, _) = self.txn_producer()?;
        let mut p = txn.progress.lock();
        if p.in_transaction {
            return Err(txn.invalid("a transaction is already open"));
        }
        p.in_transaction = true;
        p.partitions.clear();
        p.offsets_refused = false;
        *txn.accepting.write() = true;
        Ok(())
    }

    /// Kafka's `sendOffsetsToTransaction`: commits `offsets` (the next offset to read
    /// per partition) for a consumer group inside the transaction. They are written to
    /// the group's `__consumer_offsets` partition now, transactionally, and become the
    /// group's committed offsets only if the transaction commits.
    ///
    /// `group` is the consumer's [`Consumer::group_metadata`](crate::Consumer::group_metadata)
    /// (pass `&consumer.group_metadata()?`), or a bare group id. With the metadata of a
    /// group member, the group coordinator checks the offsets as Kafka's does: the member
    /// must still be in the group, at the group's current generation, and own each
    /// partition. A consumer removed for not polling within `max_poll_interval`, or one
    /// that has not polled since a rebalance began, is refused, so a consumer that
    /// stalled cannot send offsets for input that another member now owns. The
    /// transaction can then only be aborted. (Kafka also makes a new owner's fetch of
    /// committed offsets wait while a transaction has offsets pending for them, its
    /// `require_stable`; partlog does not, so a transaction whose offsets were accepted
    /// and that then stalls past `max_poll_interval` may still commit within its
    /// `transaction_timeout`: keep that below `max_poll_interval`, as the defaults of 60
    /// s and 300 s are. partlog's group generation also moves when a rebalance begins
    /// rather than when its joins complete, so offsets sent during a rebalance are
    /// refused where Kafka may accept them.) A bare group id (Kafka's deprecated
    /// `sendOffsetsToTransaction(offsets, groupId)`) is not checked: use it for a
    /// consumer that assigns its partitions itself, fenced by its transactional id.
    ///
    /// # Errors
    /// [`Error::InvalidTxnState`] outside a transaction; [`Error::CommitFailed`] or
    /// [`Error::FencedInstanceId`] when the group refuses the offsets (nothing is
    /// written, and [`Producer::commit_transaction`] then fails: abort);
    /// [`Error::TransactionFenced`]; [`Error::InvalidConfig`] for a bad group id or a
    /// negative offset; a write error.
    pub fn send_offsets_to_transaction(
        &self,
        offsets: &HashMap<TopicPartition, i64>,
        group: impl Into<ConsumerGroupMetadata>,
    ) -> Result<()> {
        let group: ConsumerGroupMetadata = group.into();
        let group_id = group.group_id();
        let (txn, producer) = self.txn_producer()?;
        if !txn.progress.lock().in_transaction {
            return Err(txn.invalid("offsets can only be sent inside a transaction"));
        }
        // Held until the offsets are written, as a send holds it until its record is
        // appended: a commit or abort on another thread waits for them, so they never
        // land after the transaction's markers (where they would open a transaction that
        // nothing ends).
        let accepting = txn.accepting.read();
        if !*accepting {
            return Err(txn.invalid(
                "offsets can only be sent inside a transaction, before its commit or abort starts",
            ));
        }
        let broker = &self.inner.broker;
        let log = crate::group::store::log_for_group(broker, group_id)?;
        let count = broker.partition_count(crate::group::offsets::OFFSETS_TOPIC)?;
        let partition = crate::broker::internal::partition_for_key(group_id, count);
        let tp = TopicPartition::new(crate::group::offsets::OFFSETS_TOPIC, partition);
        let now = broker.config().clock.now_ms();
        let mut entries: Vec<(TopicPartition, OffsetAndMetadata)> = offsets
            .iter()
            .map(|(tp, &offset)| {
                let value = OffsetAndMetadata {
                    offset,
                    metadata: String::new(),
                    commit_timestamp: now,
                };
                (tp.clone(), value)
            })
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let tps: Vec<TopicPartition> = entries.iter().map(|(tp, _)| tp.clone()).collect();
        let txns = &broker.inner.txns;
        // Before the group's lock: the transaction coordinator's lock comes first.
        txns.add_partitions(broker, &txn.transactional_id, producer, &[tp])?;
        let sent = broker
            .inner
            .groups
            .send_txn_offsets(broker, &group, &tps, move || {
                crate::group::store::write_transactional(
                    broker, &log, group_id, producer, &entries,
                )?;
                let pending = entries
                    .into_iter()
                    .map(|(tp, o)| (group_id.to_string(), tp, o))
                    .collect();
                txns.add_offsets(&txn.transactional_id, group_id, pending);
                Ok(())
            });
        // A refusal, or a write that may have left part of the offsets in the log: the
        // transaction can only be aborted. (A bad group id or offset is refused before
        // anything is written.)
        if let Err(e) = &sent
            && !matches!(e, Error::InvalidConfig { .. })
        {
            txn.progress.lock().offsets_refused = true;
        }
        drop(accepting);
        sent
    }

    /// Kafka's `commitTransaction`: appends every batch of the transaction, then has the
    /// coordinator write the COMMIT markers; read_committed consumers see the records
    /// (and the group the offsets) once it returns.
    ///
    /// # Errors
    /// [`Error::InvalidTxnState`] outside a transaction, or when offsets sent to it were
    /// refused or not fully written (abort then); [`Error::BatchFailed`] when a batch of the
    /// transaction failed (abort then); [`Error::TransactionFenced`]; a
    /// write error (the commit is decided: calling this again finishes it, and so do the
    /// broker's timeout thread and a reopen). From the moment this is called until the
    /// next `begin_transaction`, `send` fails with [`Error::InvalidTxnState`].
    pub fn commit_transaction(&self) -> Result<()> {
        self.end_transaction(true)
    }

    /// Kafka's `abortTransaction`: appends what is pending, then has the coordinator
    /// write the ABORT markers; read_committed consumers never see the records.
    ///
    /// # Errors
    /// As [`Producer::commit_transaction`], except that failed batches do not stop it.
    pub fn abort_transaction(&self) -> Result<()> {
        self.end_transaction(false)
    }

    fn end_transaction(&self, commit: bool) -> Result<()> {
        let (txn, producer) = self.txn_producer()?;
        {
            let p = txn.progress.lock();
            if !p.in_transaction {
                return Err(txn.invalid("no transaction is open"));
            }
            if commit && p.offsets_refused {
                return Err(txn.invalid(
                    "offsets sent to this transaction were refused or not fully written; \
                         abort it",
                ));
            }
        }
        // No record joins the transaction after this point: sends in progress finish
        // adding theirs first, and the flush below takes them all.
        *txn.accepting.write() = false;
        let flushed = self.flush();
        if commit {
            flushed?;
        }
        let broker = &self.inner.broker;
        broker
            .inner
            .txns
            .end_transaction(broker, &txn.transactional_id, producer, commit)?;
        let mut p = txn.progress.lock();
        p.in_transaction = false;
        p.partitions.clear();
        p.offsets_refused = false;
        Ok(())
    }
}
