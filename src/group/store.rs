//! The `__consumer_offsets` topic as partlog uses it: created on demand, appended to and
//! fsynced by every commit, read back whole on open.
//!
//! The topic has [`BrokerConfig::offsets_topic_partitions`](crate::BrokerConfig)
//! partitions (Kafka's 50 by default), `cleanup.policy=compact`, 100 MiB segments as
//! Kafka's `offsets.topic.segment.bytes`, and `FsyncPolicy::EveryAppend`, so a commit
//! returns only once its record is on disk. A group's records all go to partition
//! `abs(javaHashCode(group)) % partitions` of the topic as it exists (a directory copied
//! from Kafka keeps its own count), so they stay in order.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::broker::Broker;
use crate::broker::internal::internal_log;
use crate::consumer::TopicPartition;
use crate::error::{Error, Result};
use crate::log::{FsyncPolicy, Log};
use crate::record::{BatchBuilder, Compression, ControlRecordType, ProducerInfo};

use super::offsets::{
    OFFSETS_TOPIC, OffsetAndMetadata, OffsetsKey, decode_key, decode_value, encode_key,
    encode_value, fits_string,
};

/// Records per batch when a group's offsets are written together (a reset or a delete
/// of a group with many partitions), well below `max.message.bytes`.
const RECORDS_PER_BATCH: usize = 1000;

/// Committed offsets of every group, as loaded.
pub(crate) type LoadedOffsets = BTreeMap<String, BTreeMap<TopicPartition, OffsetAndMetadata>>;

/// The config the offsets topic is created with.
/// The offsets-topic partition log that holds `group`'s records, creating the topic if
/// it does not exist yet.
pub(crate) fn log_for_group(broker: &Broker, group: &str) -> Result<Arc<Log>> {
    let partitions = broker.config().offsets_topic_partitions;
    internal_log(broker, OFFSETS_TOPIC, partitions, group)
}

/// Appends `group`'s records (a `None` offset is a tombstone) and returns once they are
/// fsynced.
///
/// # Errors
/// Whatever creating the topic, appending or fsyncing returned, naming the partition.
pub(crate) fn write(
    broker: &Broker,
    group: &str,
    records: &[(TopicPartition, Option<OffsetAndMetadata>)],
) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let log = log_for_group(broker, group)?;
    let now = broker.config().clock.now_ms();
    let mut batches = Vec::new();
    for chunk in records.chunks(RECORDS_PER_BATCH) {
        let mut batch = BatchBuilder::new(Compression::None);
        for (tp, value) in chunk {
            let key = encode_key(group, tp);
            let value = value.as_ref().map(encode_value);
            batch.push(now, Some(&key), value.as_deref(), &[]);
        }
        batches.push(
            batch
                .build(log.codecs())
                .map_err(|source| Error::InvalidBatch {
                    partition: log.name().to_string(),
                    source,
                })?,
        );
    }
    log.append_batches(batches)?;
    if log.config().fsync != FsyncPolicy::EveryAppend {
        log.flush()?;
    }
    Ok(())
}

/// Appends `group`'s offsets as one transactional batch of `producer` (id, epoch; no
/// sequence, as Kafka's `TxnOffsetCommit`) to `log` (from [`log_for_group`]) and fsyncs
/// it. They count only once the transaction's COMMIT marker follows.
///
/// # Errors
/// [`Error::InvalidConfig`] for an empty or over-long group id (its key would not
/// decode when the offsets are loaded again), an over-long topic or metadata; the
/// write's error.
pub(crate) fn write_transactional(
    broker: &Broker,
    log: &Log,
    group: &str,
    producer: (i64, i16),
    offsets: &[(TopicPartition, OffsetAndMetadata)],
) -> Result<()> {
    if group.is_empty() || !fits_string(group) {
        return Err(Error::InvalidConfig {
            name: "group.id",
            value: group.chars().take(64).collect(),
            reason: "a group id must be non-empty and at most 32767 bytes",
        });
    }
    let mut batch = BatchBuilder::new(Compression::None)
        .producer(ProducerInfo {
            producer_id: producer.0,
            producer_epoch: producer.1,
            base_sequence: -1,
        })
        .transactional(true);
    let now = broker.config().clock.now_ms();
    for (tp, value) in offsets {
        if !fits_string(&value.metadata) || !fits_string(&tp.topic) || value.offset < 0 {
            return Err(Error::InvalidConfig {
                name: "offset",
                value: format!("{}-{} at {}", tp.topic, tp.partition, value.offset),
                reason: "a committed offset must be 0 or more, with metadata under 32 KiB",
            });
        }
        let key = encode_key(group, tp);
        let value = encode_value(value);
        batch.push(now, Some(&key), Some(&value), &[]);
    }
    let encoded = batch
        .build(log.codecs())
        .map_err(|source| Error::InvalidBatch {
            partition: log.name().to_string(),
            source,
        })?;
    log.append(encoded)?;
    log.flush()
}

/// Reads every partition of the offsets topic, if it exists: the latest value per key
/// wins and a tombstone deletes.
///
/// # Errors
/// A read error, or [`Error::BadOffsetsRecord`] naming the partition and offset of a key
/// or value that does not decode.
pub(crate) fn load(broker: &Broker) -> Result<LoadedOffsets> {
    let mut out = LoadedOffsets::new();
    let Ok(count) = broker.partition_count(OFFSETS_TOPIC) else {
        return Ok(out);
    };
    for p in 0..count {
        let log = broker.partition(OFFSETS_TOPIC, p)?.log().clone();
        load_partition(&log, &mut out)?;
    }
    out.retain(|_, offsets| !offsets.is_empty());
    Ok(out)
}

/// Folds a partition's records into `out`. Offsets committed inside a transaction
/// (transactional batches) are held per producer id until its COMMIT marker, and dropped
/// at its ABORT marker or when no marker follows (the transaction coordinator finishes
/// every transaction it holds before the groups load; one that no marker ends, a hanging
/// transaction, is dropped so).
fn load_partition(log: &Log, out: &mut LoadedOffsets) -> Result<()> {
    let end = log.log_end_offset();
    let mut next = log.log_start_offset();
    let mut pending: HashMap<i64, Vec<crate::record::Record>> = HashMap::new();
    while next < end {
        let batches = log.read(next, 1 << 20)?;
        let Some(last) = batches.last() else { break };
        next = last.next_offset();
        for batch in &batches {
            let corrupt = |source| Error::CorruptRecords {
                partition: log.name().to_string(),
                offset: batch.base_offset(),
                source,
            };
            let records = batch.records(log.codecs()).map_err(corrupt)?;
            if batch.is_control() {
                let held = pending.remove(&batch.producer_id()).unwrap_or_default();
                let commit = records
                    .filter_map(|r| r.ok()?.key)
                    .any(|k| ControlRecordType::parse_key(&k) == Ok(ControlRecordType::Commit));
                if commit {
                    for record in &held {
                        apply(log, record, out)?;
                    }
                }
                continue;
            }
            for record in records {
                let record = record.map_err(corrupt)?;
                if batch.is_transactional() {
                    pending.entry(batch.producer_id()).or_default().push(record);
                } else {
                    apply(log, &record, out)?;
                }
            }
        }
    }
    Ok(())
}

/// Folds one record into the loaded state.
fn apply(log: &Log, record: &crate::record::Record, out: &mut LoadedOffsets) -> Result<()> {
    let bad = |reason: String| Error::BadOffsetsRecord {
        partition: log.name().to_string(),
        offset: record.offset,
        reason,
    };
    let Some(key) = &record.key else {
        return Err(bad("the record has no key".into()));
    };
    let OffsetsKey::Commit { group, tp } = decode_key(key).map_err(bad)? else {
        return Ok(());
    };
    match &record.value {
        None => {
            if let Some(offsets) = out.get_mut(&group) {
                offsets.remove(&tp);
            }
        }
        Some(v) => {
            let value = decode_value(v).map_err(bad)?;
            out.entry(group).or_default().insert(tp, value);
        }
    }
    Ok(())
}
