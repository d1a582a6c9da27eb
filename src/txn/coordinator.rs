//! The transaction coordinator: producer ids and epochs per transactional id, the
//! partitions of each open transaction, the two-step end (prepare, markers, complete),
//! fencing, timeouts and recovery at open. See the [module docs](super).

use std::collections::{BTreeMap, HashMap};

use parking_lot::Mutex;

use crate::broker::Broker;
use crate::consumer::TopicPartition;
use crate::error::{Error, Result};
use crate::group::OffsetAndMetadata;
use crate::record::{BatchBuilder, Compression, ControlRecordType, EndTxnMarker, ProducerInfo};

use super::state_log;
use super::{PartitionTransaction, TransactionDescription, TransactionState, TxnMetadata};

/// The coordinator epoch written in every marker (one coordinator that never moves).
pub(crate) const COORDINATOR_EPOCH: i32 = 0;

/// Offsets sent in a transaction: (group, partition, offset), applied to the groups'
/// committed offsets when the transaction commits.
type PendingOffsets = Vec<(String, TopicPartition, OffsetAndMetadata)>;

/// Every transactional id's state; operations on them run one at a time.
#[derive(Debug, Default)]
pub(crate) struct TxnCoordinator {
    txns: Mutex<BTreeMap<String, TxnMetadata>>,
    offsets: Mutex<HashMap<String, PendingOffsets>>,
    /// Set once the timeout thread runs.
    timer: std::sync::OnceLock<()>,
}

/// How often the timeout thread looks for expired transactions (Kafka's
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms` is 10 s; in-process, a
/// shorter period costs little and keeps timeouts close to their setting).
const TIMEOUT_CHECK: std::time::Duration = std::time::Duration::from_millis(200);

/// The least time between two attempts of the timeout thread to finish an end that
/// failed half-way (ms, broker clock).
const END_RETRY_MS: i64 = 10_000;

/// Runs [`TxnCoordinator::abort_expired`] every [`TIMEOUT_CHECK`] until the broker is
/// closed or dropped. It holds the broker weakly, so it never keeps it open.
fn run_timer(broker: std::sync::Weak<crate::broker::Inner>) {
    loop {
        std::thread::sleep(TIMEOUT_CHECK);
        let Some(inner) = broker.upgrade() else {
            return;
        };
        let broker = Broker { inner };
        if broker.is_closed() {
            return;
        }
        // A failed abort leaves the transaction prepared; the next open finishes it, and
        // the next period retries.
        let _retried_later = broker.inner.txns.abort_expired(&broker);
    }
}

impl TxnCoordinator {
    /// Loads the state topic and finishes every transaction a crash left open: prepared
    /// ones get their markers, `Ongoing` ones are aborted. Runs before the groups load
    /// their offsets, so those see only finished transactions.
    ///
    /// # Errors
    /// A read, decode or marker write error.
    pub(crate) fn load(&self, broker: &Broker) -> Result<()> {
        let loaded = state_log::load(broker)?;
        let mut txns = self.txns.lock();
        *txns = loaded;
        let ids: Vec<String> = txns.keys().cloned().collect();
        for id in ids {
            let m = txns.get_mut(&id).expect("listed");
            let commit = match m.state {
                TransactionState::PrepareCommit => true,
                TransactionState::PrepareAbort | TransactionState::Ongoing => false,
                _ => continue,
            };
            complete(broker, &id, m, commit)?;
        }
        Ok(())
    }

    /// Kafka's `InitProducerId` with a transactional id: a new id gets a producer id at
    /// epoch 0; a known one gets its epoch bumped, which fences the previous producer,
    /// and its open transaction (if any) is aborted with the new epoch first.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty or over-long id; a write error.
    pub(crate) fn init_producer(
        &self,
        broker: &Broker,
        transactional_id: &str,
        timeout_ms: i32,
    ) -> Result<(i64, i16)> {
        if transactional_id.is_empty() || transactional_id.len() > i16::MAX as usize {
            return Err(Error::InvalidConfig {
                name: "transactional.id",
                value: transactional_id.chars().take(64).collect(),
                reason: "a transactional id needs 1 to 32767 bytes",
            });
        }
        self.timer.get_or_init(|| {
            let weak = std::sync::Arc::downgrade(&broker.inner);
            let spawned = std::thread::Builder::new()
                .name("partlog-txn-timeout".into())
                .spawn(move || run_timer(weak));
            // Without the thread, `Broker::abort_expired_transactions` still works.
            drop(spawned);
        });
        let now = broker.config().clock.now_ms();
        let mut txns = self.txns.lock();
        let mut m = match txns.get(transactional_id) {
            None => TxnMetadata {
                producer_id: broker.allocate_producer_id()?,
                producer_epoch: 0,
                timeout_ms,
                state: TransactionState::Empty,
                partitions: Default::default(),
                last_update_ms: now,
                start_ms: -1,
            },
            Some(old) => {
                let mut m = old.clone();
                bump_epoch(broker, &mut m)?;
                if m.state.is_open() {
                    // The zombie's transaction ends with the new epoch's markers, which
                    // fence it on every partition it wrote to.
                    let commit = m.state == TransactionState::PrepareCommit;
                    if m.state != TransactionState::Ongoing {
                        // An end decided under the old epoch: its markers now carry the
                        // new one, which must be durable first, since the recovery at
                        // open writes markers with the recorded epoch and a partition
                        // that got the new one refuses an older one.
                        state_log::write(broker, transactional_id, &m)?;
                    }
                    if let Err(e) = complete(broker, transactional_id, &mut m, commit) {
                        // The end was decided with the new epoch even though a marker
                        // write failed: the zombie stays fenced (and the timeout thread
                        // or the next open finishes the end, with the offsets of a
                        // commit).
                        if !commit {
                            self.offsets.lock().remove(transactional_id);
                        }
                        txns.insert(transactional_id.to_string(), m);
                        return Err(e);
                    }
                    // A commit decided before the fencing counts, offsets included.
                    self.settle_offsets(broker, transactional_id, commit);
                }
                m.state = TransactionState::Empty;
                m.timeout_ms = timeout_ms;
                m.last_update_ms = now;
                m.start_ms = -1;
                m
            }
        };
        m.partitions.clear();
        state_log::write(broker, transactional_id, &m)?;
        let out = (m.producer_id, m.producer_epoch);
        txns.insert(transactional_id.to_string(), m);
        Ok(out)
    }

    /// Kafka's `AddPartitionsToTxn`: opens the transaction if needed and records the
    /// partitions durably before any record reaches them.
    ///
    /// # Errors
    /// [`Error::TransactionFenced`] for an old epoch; [`Error::InvalidTxnState`] while
    /// the transaction is being ended or for an unknown id; a write error.
    pub(crate) fn add_partitions(
        &self,
        broker: &Broker,
        transactional_id: &str,
        producer: (i64, i16),
        tps: &[TopicPartition],
    ) -> Result<()> {
        let now = broker.config().clock.now_ms();
        let mut txns = self.txns.lock();
        let m = checked(&mut txns, transactional_id, producer)?;
        if !matches!(m.state, TransactionState::Ongoing) {
            if m.state.is_open() {
                return Err(invalid(transactional_id, "the transaction is being ended"));
            }
            m.partitions.clear();
            m.start_ms = now;
        }
        if m.state == TransactionState::Ongoing && tps.iter().all(|tp| m.partitions.contains(tp)) {
            return Ok(());
        }
        let mut next = m.clone();
        next.state = TransactionState::Ongoing;
        next.partitions.extend(tps.iter().cloned());
        next.last_update_ms = now;
        state_log::write(broker, transactional_id, &next)?;
        *m = next;
        Ok(())
    }

    /// The partitions of `group` with offsets sent to a transaction that has not ended.
    pub(crate) fn pending_offsets(
        &self,
        group: &str,
    ) -> std::collections::BTreeSet<TopicPartition> {
        self.offsets
            .lock()
            .values()
            .flatten()
            .filter(|(g, _, _)| g == group)
            .map(|(_, tp, _)| tp.clone())
            .collect()
    }

    /// Remembers offsets sent in the open transaction, to apply at commit.
    pub(crate) fn add_offsets(&self, transactional_id: &str, group: &str, offsets: PendingOffsets) {
        let mut pending = self.offsets.lock();
        let list = pending.entry(transactional_id.to_string()).or_default();
        list.extend(
            offsets
                .into_iter()
                .map(|(_, tp, o)| (group.to_string(), tp, o)),
        );
    }

    /// Kafka's `EndTxn`: commits or aborts the open transaction (nothing to do when none
    /// is open).
    ///
    /// # Errors
    /// [`Error::TransactionFenced`]; [`Error::InvalidTxnState`] for an unknown id; a
    /// write error (the state stays prepared, and the next open finishes it).
    pub(crate) fn end_transaction(
        &self,
        broker: &Broker,
        transactional_id: &str,
        producer: (i64, i16),
        commit: bool,
    ) -> Result<()> {
        let mut txns = self.txns.lock();
        let m = checked(&mut txns, transactional_id, producer)?;
        match m.state {
            TransactionState::Ongoing => {}
            // An earlier end failed after its decision was made durable: a retry of the
            // same end writes the markers again (a partition that has its marker already
            // is unchanged by a second one); the other end is refused, as Kafka does.
            TransactionState::PrepareCommit | TransactionState::PrepareAbort => {
                if (m.state == TransactionState::PrepareCommit) != commit {
                    let reason = if commit {
                        "the transaction is being aborted"
                    } else {
                        "the transaction is being committed"
                    };
                    return Err(invalid(transactional_id, reason));
                }
            }
            _ => {
                self.offsets.lock().remove(transactional_id);
                return Ok(());
            }
        }
        complete(broker, transactional_id, m, commit)?;
        self.settle_offsets(broker, transactional_id, commit);
        Ok(())
    }

    /// Settles the offsets `transactional_id` sent once its end is complete: applied to
    /// their groups on a commit, then forgotten. They stay listed as pending until they
    /// are applied, so that the offsets expiry, which keeps pending partitions, never
    /// writes a tombstone after the COMMIT marker for an offset that is about to land.
    fn settle_offsets(&self, broker: &Broker, transactional_id: &str, commit: bool) {
        if commit {
            let offsets = self.offsets.lock().get(transactional_id).cloned();
            if let Some(offsets) = offsets {
                broker.inner.groups.apply_transactional_offsets(offsets);
            }
        }
        self.offsets.lock().remove(transactional_id);
    }

    /// Kafka's expiry of transactional ids (`transactional.id.expiration.ms`): forgets
    /// every id without an open transaction whose state has not changed for
    /// `expiration_ms` at `now`, after writing a tombstone for it to the state topic
    /// (fsynced). Returns the ids forgotten, sorted.
    ///
    /// # Errors
    /// The first write error; that id is kept, and the next run retries.
    pub(crate) fn expire_ids(
        &self,
        broker: &Broker,
        now: i64,
        expiration_ms: i64,
    ) -> Result<Vec<String>> {
        let mut txns = self.txns.lock();
        let expired: Vec<String> = txns
            .iter()
            .filter(|(_, m)| {
                !m.state.is_open() && now.saturating_sub(m.last_update_ms) >= expiration_ms
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            state_log::write_tombstone(broker, id)?;
            txns.remove(id);
        }
        Ok(expired)
    }

    /// Aborts every transaction open for longer than its timeout, bumping its epoch so
    /// that its producer is fenced, and finishes every end that failed half-way (its
    /// decision is durable; its markers are written again); returns the transactional
    /// ids aborted.
    ///
    /// A failed abort still takes effect in memory (the bumped epoch, the prepared
    /// state), so the fenced producer cannot commit meanwhile; one transaction's failure
    /// does not keep the others from being aborted.
    ///
    /// # Errors
    /// The first write error.
    pub(crate) fn abort_expired(&self, broker: &Broker) -> Result<Vec<String>> {
        let now = broker.config().clock.now_ms();
        let mut txns = self.txns.lock();
        let mut aborted = Vec::new();
        let mut first_error = None;
        for (id, m) in txns.iter_mut() {
            if matches!(
                m.state,
                TransactionState::PrepareCommit | TransactionState::PrepareAbort
            ) {
                // Each retry writes the markers of the partitions that have one already
                // again, so a partition that keeps failing is retried at a slower pace.
                if now.saturating_sub(m.last_update_ms) < END_RETRY_MS {
                    continue;
                }
                m.last_update_ms = now;
                let commit = m.state == TransactionState::PrepareCommit;
                match complete(broker, id, m, commit) {
                    Ok(()) => {
                        self.settle_offsets(broker, id, commit);
                        if !commit {
                            aborted.push(id.clone());
                        }
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
                continue;
            }
            let expired = m.state == TransactionState::Ongoing
                && now.saturating_sub(m.start_ms) > i64::from(m.timeout_ms);
            if !expired {
                continue;
            }
            let mut next = m.clone();
            if let Err(e) = bump_epoch(broker, &mut next) {
                first_error.get_or_insert(e);
                continue;
            }
            let result = complete(broker, id, &mut next, false);
            // Adopted even when a marker write failed: the abort was decided with the
            // new epoch (durably, unless the prepare write itself failed), so the old
            // producer must be fenced from here on.
            *m = next;
            self.offsets.lock().remove(id);
            match result {
                Ok(()) => aborted.push(id.clone()),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(aborted),
        }
    }

    /// Every transactional id's state, by id.
    pub(crate) fn list(&self) -> Vec<TransactionDescription> {
        self.txns
            .lock()
            .iter()
            .map(|(id, m)| super::describe(id, m))
            .collect()
    }
}

/// The id's metadata, if `producer` is its current producer.
fn checked<'a>(
    txns: &'a mut BTreeMap<String, TxnMetadata>,
    transactional_id: &str,
    (producer_id, epoch): (i64, i16),
) -> Result<&'a mut TxnMetadata> {
    let m = txns.get_mut(transactional_id).ok_or_else(|| {
        invalid(
            transactional_id,
            "the transactional id is unknown: not initialised, or expired after \
                 transactional_id_expiration without a transaction (init_transactions \
                 on a new producer)",
        )
    })?;
    if m.producer_id != producer_id || m.producer_epoch != epoch {
        return Err(Error::TransactionFenced {
            transactional_id: transactional_id.to_string(),
            producer_id,
            epoch,
            current_producer_id: m.producer_id,
            current_epoch: m.producer_epoch,
        });
    }
    Ok(m)
}

fn invalid(transactional_id: &str, reason: &'static str) -> Error {
    Error::InvalidTxnState {
        transactional_id: transactional_id.to_string(),
        reason,
    }
}

/// The next epoch; a new producer id when the epoch would overflow (as Kafka does).
fn bump_epoch(broker: &Broker, m: &mut TxnMetadata) -> Result<()> {
    if m.producer_epoch >= i16::MAX - 1 {
        m.producer_id = broker.allocate_producer_id()?;
        m.producer_epoch = 0;
    } else {
        m.producer_epoch += 1;
    }
    Ok(())
}

/// Ends the transaction of `m`: durable prepare, a marker on every partition (each
/// fsynced), durable complete.
fn complete(broker: &Broker, id: &str, m: &mut TxnMetadata, commit: bool) -> Result<()> {
    let now = broker.config().clock.now_ms();
    let (prepare, done) = if commit {
        (
            TransactionState::PrepareCommit,
            TransactionState::CompleteCommit,
        )
    } else {
        (
            TransactionState::PrepareAbort,
            TransactionState::CompleteAbort,
        )
    };
    if m.state != prepare {
        // Prepared in memory only once it is durable: markers are written only for a
        // decision (and epoch) that the recovery at open will find.
        let mut prepared = m.clone();
        prepared.state = prepare;
        prepared.last_update_ms = now;
        state_log::write(broker, id, &prepared)?;
        *m = prepared;
    }
    for tp in &m.partitions {
        write_marker(broker, tp, m.producer_id, m.producer_epoch, commit)?;
    }
    m.state = done;
    m.last_update_ms = now;
    state_log::write(broker, id, m)?;
    m.partitions.clear();
    Ok(())
}

impl TxnCoordinator {
    /// Every transaction open on a partition of `broker`, with the transactional id whose
    /// open transaction holds the partition (`None`: hanging), by topic, partition and
    /// start offset. Read under the coordinator's lock, so that a transaction is never
    /// seen open on a partition its coordinator has just released.
    pub(crate) fn partition_transactions(&self, broker: &Broker) -> Vec<PartitionTransaction> {
        let txns = self.txns.lock();
        let mut out = Vec::new();
        // By (topic, partition): the directory's logs are kept in that order.
        for ((topic, partition), log) in broker.inner.dir.logs() {
            let tp = TopicPartition::new(topic, partition);
            for (producer_id, producer_epoch, start_offset) in log.open_transactions() {
                out.push(PartitionTransaction {
                    transactional_id: holder(&txns, producer_id, &tp),
                    partition: tp.clone(),
                    producer_id,
                    producer_epoch,
                    start_offset,
                });
            }
        }
        out
    }

    /// Ends the hanging transaction that starts at `start_offset` on `tp` with an ABORT
    /// marker (fsynced), as Kafka's `kafka-transactions.sh abort` does. Under the
    /// coordinator's lock, so that no transaction takes the partition meanwhile.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`] or [`Error::UnknownPartition`];
    /// [`Error::NoOpenTransaction`] when no open transaction starts there;
    /// [`Error::TransactionNotHanging`] when the coordinator holds it; the write's error.
    pub(crate) fn abort_hanging(
        &self,
        broker: &Broker,
        tp: &TopicPartition,
        start_offset: i64,
    ) -> Result<PartitionTransaction> {
        let txns = self.txns.lock();
        let log = broker.partition(&tp.topic, tp.partition)?.log().clone();
        let open = log.open_transactions();
        let Some(&(producer_id, producer_epoch, _)) = open.iter().find(|t| t.2 == start_offset)
        else {
            return Err(Error::NoOpenTransaction {
                topic: tp.topic.clone(),
                partition: tp.partition,
                start_offset,
                open: open.iter().map(|t| t.2).collect(),
            });
        };
        if let Some(transactional_id) = holder(&txns, producer_id, tp) {
            return Err(Error::TransactionNotHanging {
                topic: tp.topic.clone(),
                partition: tp.partition,
                start_offset,
                transactional_id,
            });
        }
        write_marker(broker, tp, producer_id, producer_epoch, false)?;
        Ok(PartitionTransaction {
            partition: tp.clone(),
            producer_id,
            producer_epoch,
            start_offset,
            transactional_id: None,
        })
    }
}

/// The transactional id whose open (or ending) transaction of producer `producer_id`
/// holds `tp`, if any.
fn holder(
    txns: &BTreeMap<String, TxnMetadata>,
    producer_id: i64,
    tp: &TopicPartition,
) -> Option<String> {
    txns.iter()
        .find(|(_, m)| {
            m.producer_id == producer_id && m.state.is_open() && m.partitions.contains(tp)
        })
        .map(|(id, _)| id.clone())
}

/// Appends and fsyncs a COMMIT or ABORT marker (§2.3) on `tp`; a partition whose topic
/// was deleted meanwhile is skipped.
fn write_marker(
    broker: &Broker,
    tp: &TopicPartition,
    producer_id: i64,
    epoch: i16,
    commit: bool,
) -> Result<()> {
    let log = match broker.partition(&tp.topic, tp.partition) {
        Ok(p) => p.log().clone(),
        Err(Error::UnknownTopic { .. } | Error::UnknownPartition { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    let kind = if commit {
        ControlRecordType::Commit
    } else {
        ControlRecordType::Abort
    };
    let mut b = BatchBuilder::new(Compression::None)
        .producer(ProducerInfo {
            producer_id,
            producer_epoch: epoch,
            base_sequence: -1,
        })
        .transactional(true)
        .control(true);
    let key = kind.key();
    let value = EndTxnMarker {
        coordinator_epoch: COORDINATOR_EPOCH,
    }
    .value();
    b.push(
        broker.config().clock.now_ms(),
        Some(&key),
        Some(&value),
        &[],
    );
    let batch = b
        .build(log.codecs())
        .map_err(|source| Error::InvalidBatch {
            partition: log.name().to_string(),
            source,
        })?;
    log.append(batch)?;
    log.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BrokerConfig, ProducerConfig, ProducerRecord, TopicConfig};
    use std::collections::HashMap;

    /// A crash after `PrepareCommit` was made durable and before the markers: reopening
    /// writes the COMMIT marker, so the records become visible, and completes the state.
    #[test]
    fn a_prepared_commit_is_finished_when_the_broker_reopens() {
        let tmp = tempfile::tempdir().unwrap();
        let (pid, epoch) = {
            let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
            broker.create_topic("t", 1, TopicConfig::default()).unwrap();
            let p = broker.producer(ProducerConfig {
                transactional_id: Some("r".into()),
                ..ProducerConfig::default()
            });
            p.init_transactions().unwrap();
            p.begin_transaction().unwrap();
            drop(p.send(ProducerRecord::new("t", b"v").partition(0)).unwrap());
            p.flush().unwrap();
            // What `complete` writes first, then "crash".
            let mut m = broker.inner.txns.txns.lock()["r"].clone();
            assert_eq!(m.state, TransactionState::Ongoing);
            m.state = TransactionState::PrepareCommit;
            state_log::write(&broker, "r", &m).unwrap();
            let log = broker.partition("t", 0).unwrap().log().clone();
            assert_eq!(log.last_stable_offset(), 0);
            (m.producer_id, m.producer_epoch)
        };
        let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
        let t = &broker.transactions()[0];
        assert_eq!(t.state, TransactionState::CompleteCommit);
        let log = broker.partition("t", 0).unwrap().log().clone();
        assert_eq!(log.log_end_offset(), 2, "the record and the COMMIT marker");
        assert_eq!(log.last_stable_offset(), 2);
        let batches = log.read(1, 1 << 20).unwrap();
        let marker = &batches[0];
        assert!(marker.is_control() && marker.is_transactional());
        assert_eq!(
            (marker.producer_id(), marker.producer_epoch()),
            (pid, epoch)
        );
        let records: Vec<_> = marker.records(log.codecs()).unwrap().collect();
        let key = records[0].as_ref().unwrap().key.clone().unwrap();
        assert_eq!(
            ControlRecordType::parse_key(&key).unwrap(),
            ControlRecordType::Commit
        );
        assert!(log.aborted_transactions(0, 2).unwrap().is_empty());
    }

    /// A commit decided (PrepareCommit) but not finished when a new producer with the
    /// same transactional id initialises: its init writes the COMMIT markers, and the
    /// offsets sent in that transaction must become the group's committed offsets then,
    /// not only after a reopen (a consumer starting meanwhile would re-read input whose
    /// output is committed).
    #[test]
    fn an_init_that_finishes_a_prepared_commit_applies_its_offsets() {
        let tmp = tempfile::tempdir().unwrap();
        let broker = Broker::open(tmp.path(), BrokerConfig::default()).unwrap();
        broker
            .create_topic("in", 1, TopicConfig::default())
            .unwrap();
        broker
            .create_topic("out", 1, TopicConfig::default())
            .unwrap();
        let config = ProducerConfig {
            transactional_id: Some("r".into()),
            ..ProducerConfig::default()
        };
        let p = broker.producer(config.clone());
        p.init_transactions().unwrap();
        p.begin_transaction().unwrap();
        drop(
            p.send(ProducerRecord::new("out", b"v").partition(0))
                .unwrap(),
        );
        let input = TopicPartition::new("in", 0);
        let offsets = HashMap::from([(input.clone(), 5)]);
        p.send_offsets_to_transaction(&offsets, "g").unwrap();
        p.flush().unwrap();
        // What `complete` makes durable first; then its marker writes "fail".
        let mut m = broker.inner.txns.txns.lock()["r"].clone();
        m.state = TransactionState::PrepareCommit;
        state_log::write(&broker, "r", &m).unwrap();
        broker.inner.txns.txns.lock().insert("r".into(), m);
        let successor = broker.producer(config);
        successor.init_transactions().unwrap();
        let out = broker.partition("out", 0).unwrap().log().clone();
        assert_eq!(
            out.last_stable_offset(),
            2,
            "the record and its COMMIT marker"
        );
        let committed = broker
            .inner
            .groups
            .committed("g", std::slice::from_ref(&input));
        assert_eq!(committed.get(&input).map(|o| o.offset), Some(5));
    }

    /// An end that failed after its decision was made durable is finished by the
    /// timeout thread's next attempts (not only by a reopen), offsets included.
    #[test]
    fn the_timeout_check_finishes_a_prepared_commit_after_its_retry_interval() {
        let tmp = tempfile::tempdir().unwrap();
        let clock = std::sync::Arc::new(crate::ManualClock::new(1_700_000_000_000));
        let broker = Broker::open(
            tmp.path(),
            BrokerConfig {
                clock: clock.clone(),
                ..BrokerConfig::default()
            },
        )
        .unwrap();
        broker
            .create_topic("in", 1, TopicConfig::default())
            .unwrap();
        broker
            .create_topic("out", 1, TopicConfig::default())
            .unwrap();
        let p = broker.producer(ProducerConfig {
            transactional_id: Some("r".into()),
            ..ProducerConfig::default()
        });
        p.init_transactions().unwrap();
        p.begin_transaction().unwrap();
        drop(
            p.send(ProducerRecord::new("out", b"v").partition(0))
                .unwrap(),
        );
        let input = TopicPartition::new("in", 0);
        p.send_offsets_to_transaction(&HashMap::from([(input.clone(), 7)]), "g")
            .unwrap();
        p.flush().unwrap();
        let mut m = broker.inner.txns.txns.lock()["r"].clone();
        m.state = TransactionState::PrepareCommit;
        state_log::write(&broker, "r", &m).unwrap();
        broker.inner.txns.txns.lock().insert("r".into(), m);
        let out = broker.partition("out", 0).unwrap().log().clone();
        assert_eq!(
            broker.abort_expired_transactions().unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            out.last_stable_offset(),
            0,
            "not retried before the interval"
        );
        clock.advance(END_RETRY_MS + 1);
        broker.abort_expired_transactions().unwrap();
        assert_eq!(
            broker.transactions()[0].state,
            TransactionState::CompleteCommit
        );
        assert_eq!(out.last_stable_offset(), 2);
        let committed = broker
            .inner
            .groups
            .committed("g", std::slice::from_ref(&input));
        assert_eq!(committed.get(&input).map(|o| o.offset), Some(7));
        // The producer's retry of its commit now finds it done.
        p.commit_transaction().unwrap();
    }
}
