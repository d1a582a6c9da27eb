//! The `__consumer_offsets` topic as partlog uses it: created on demand, appended to and
//! fsynced by every commit, read back whole on open.
//!
//! The topic has [`BrokerConfig::offsets_topic_partitions`](crate::BrokerConfig)
//! partitions (Kafka's 50 by default), `cleanup.policy=compact`, 100 MiB segments as
//! Kafka's `offsets.topic.segment.bytes`, and `FsyncPolicy::EveryAppend`, so a commit
//! returns only once its record is on disk. A group's records all go to partition
//! `abs(javaHashCode(group)) % partitions` of the topic as it exists (a directory copied
//! from Kafka keeps its own count), so they stay in order.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::broker::{Broker, CleanupPolicy, TopicConfig};
use crate::consumer::TopicPartition;
use crate::error::{Error, Result};
use crate::log::{FsyncPolicy, Log};
use crate::record::{BatchBuilder, Compression};

use super::offsets::{
    OFFSETS_TOPIC, OffsetAndMetadata, OffsetsKey, decode_key, decode_value, encode_key,
    encode_value, partition_for_group,
};

/// Records per batch when a group's offsets are written together (a reset or a delete
/// of a group with many partitions), well below `max.message.bytes`.
const RECORDS_PER_BATCH: usize = 1000;

/// Committed offsets of every group, as loaded.
pub(crate) type LoadedOffsets = BTreeMap<String, BTreeMap<TopicPartition, OffsetAndMetadata>>;

/// The config the offsets topic is created with.
fn offsets_topic_config() -> TopicConfig {
    TopicConfig {
        segment_bytes: 100 << 20,
        cleanup_policy: CleanupPolicy::Compact,
        fsync: FsyncPolicy::EveryAppend,
        ..TopicConfig::default()
    }
}

/// The offsets-topic partition log that holds `group`'s records, creating the topic if
/// it does not exist yet.
fn log_for_group(broker: &Broker, group: &str) -> Result<Arc<Log>> {
    let count = match broker.partition_count(OFFSETS_TOPIC) {
        Ok(n) => n,
        Err(Error::UnknownTopic { .. }) => {
            let n = broker.config().offsets_topic_partitions;
            match broker.create_topic(OFFSETS_TOPIC, n, offsets_topic_config()) {
                Ok(()) | Err(Error::TopicExists { .. }) => {}
                Err(e) => return Err(e),
            }
            broker.partition_count(OFFSETS_TOPIC)?
        }
        Err(e) => return Err(e),
    };
    let p = partition_for_group(group, count);
    Ok(broker.partition(OFFSETS_TOPIC, p)?.log().clone())
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

fn load_partition(log: &Log, out: &mut LoadedOffsets) -> Result<()> {
    let end = log.log_end_offset();
    let mut next = log.log_start_offset();
    while next < end {
        let batches = log.read(next, 1 << 20)?;
        let Some(last) = batches.last() else { break };
        next = last.next_offset();
        for batch in batches.iter().filter(|b| !b.is_control()) {
            let corrupt = |source| Error::CorruptRecords {
                partition: log.name().to_string(),
                offset: batch.base_offset(),
                source,
            };
            for record in batch.records(log.codecs()).map_err(corrupt)? {
                let record = record.map_err(corrupt)?;
                apply(log, &record, out)?;
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
