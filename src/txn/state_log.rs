//! The `__transaction_state` topic: Kafka's `TransactionLogKey` / `TransactionLogValue`
//! (version 0) records, appended and fsynced by every state change of a transactional id,
//! read back whole on open (the latest value per key wins).
//!
//! Key: `int16 version = 0`, `string transactionalId`. Value: `int16 version = 0`,
//! `int64 producerId`, `int16 producerEpoch`, `int32 transactionTimeoutMs`,
//! `int8 transactionStatus`, `[topic string, [int32 partition]] transactionPartitions`
//! (arrays are `int32` count + items, `-1` for null), `int64 lastUpdateTimestampMs`,
//! `int64 startTimestampMs`. Strings are `int16` length + UTF-8.
//!
//! Kafka spreads transactional ids over 50 partitions led by different brokers; partlog
//! has one coordinator, so the topic has one partition (a directory copied from Kafka
//! keeps its own count, and ids go to `abs(hashCode) % count` as in Kafka).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::broker::Broker;
use crate::broker::internal::{Reader, internal_log, put_str};
use crate::consumer::TopicPartition;
use crate::error::{Error, IoContext, Result};
use crate::log::Log;
use crate::record::{BatchBuilder, Codecs, Compression, RecordBatch, batch_size};

use super::{TransactionState, TxnMetadata};

/// The name of the internal transaction state topic.
pub(crate) const TXN_TOPIC: &str = "__transaction_state";

/// The key of `transactional_id`.
pub(crate) fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    out.extend_from_slice(&0i16.to_be_bytes());
    put_str(&mut out, transactional_id);
    out
}

/// The value of `m`.
pub(crate) fn encode_value(m: &TxnMetadata) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(&m.producer_id.to_be_bytes());
    out.extend_from_slice(&m.producer_epoch.to_be_bytes());
    out.extend_from_slice(&m.timeout_ms.to_be_bytes());
    out.push(m.state.id() as u8);
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in &m.partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    out.extend_from_slice(&(by_topic.len() as i32).to_be_bytes());
    for (topic, parts) in by_topic {
        put_str(&mut out, topic);
        out.extend_from_slice(&(parts.len() as i32).to_be_bytes());
        for p in parts {
            out.extend_from_slice(&p.to_be_bytes());
        }
    }
    out.extend_from_slice(&m.last_update_ms.to_be_bytes());
    out.extend_from_slice(&m.start_ms.to_be_bytes());
    out
}

/// The transactional id of a key.
pub(crate) fn decode_key(bytes: &[u8]) -> std::result::Result<String, String> {
    let mut r = Reader::new(bytes);
    match r.i16("key version")? {
        0 => r.string("transactional id"),
        v => Err(format!("unknown key version {v}")),
    }
}

/// A value of version 0, or 1 (Kafka 4's first flexible version: compact arrays and
/// strings, and tagged fields, which are skipped: the previous and next producer ids and
/// the client's transaction version, which partlog's coordinator does not use).
pub(crate) fn decode_value(bytes: &[u8]) -> std::result::Result<TxnMetadata, String> {
    let mut r = Reader::new(bytes);
    let flexible = match r.i16("value version")? {
        0 => false,
        1 => true,
        v => return Err(format!("unknown value version {v} (partlog reads 0 and 1)")),
    };
    let producer_id = r.i64("producer id")?;
    let producer_epoch = r.i16("producer epoch")?;
    let timeout_ms = r.i32("timeout")?;
    let status = r.i8("status")?;
    let state = TransactionState::from_id(status).ok_or(format!("unknown status {status}"))?;
    let mut partitions = BTreeSet::new();
    // A null array (-1, or 0 when compact) is no partitions.
    let topics = if flexible {
        i64::from(r.uvarint("partition count")?) - 1
    } else {
        i64::from(r.i32("partition count")?)
    };
    for _ in 0..topics.max(0) {
        let (topic, n) = if flexible {
            let topic = r.compact_string("topic")?;
            (topic, i64::from(r.uvarint("partition ids")?) - 1)
        } else {
            (r.string("topic")?, i64::from(r.i32("partition ids")?))
        };
        for _ in 0..n.max(0) {
            partitions.insert(TopicPartition::new(topic.as_str(), r.i32("partition")?));
        }
        if flexible {
            r.skip_tagged_fields("partition tagged fields")?;
        }
    }
    let last_update_ms = r.i64("last update")?;
    let start_ms = r.i64("start")?;
    if flexible {
        r.skip_tagged_fields("tagged fields")?;
    }
    Ok(TxnMetadata {
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_ms,
        start_ms,
    })
}

/// The state topic's partition log that holds `transactional_id`, creating the topic
/// (one partition).
fn log_for(broker: &Broker, transactional_id: &str) -> Result<Arc<Log>> {
    internal_log(broker, TXN_TOPIC, 1, transactional_id)
}

/// Appends the state of `transactional_id` and returns once it is fsynced.
pub(crate) fn write(broker: &Broker, transactional_id: &str, m: &TxnMetadata) -> Result<()> {
    append(broker, transactional_id, Some(&encode_value(m)))
}

/// Appends a tombstone for `transactional_id` (an expired id, which loading then
/// forgets) and returns once it is fsynced.
pub(crate) fn write_tombstone(broker: &Broker, transactional_id: &str) -> Result<()> {
    append(broker, transactional_id, None)
}

/// Appends one record of `transactional_id`'s key with `value` and fsyncs it.
fn append(broker: &Broker, transactional_id: &str, value: Option<&[u8]>) -> Result<()> {
    let log = log_for(broker, transactional_id)?;
    let mut batch = BatchBuilder::new(Compression::None);
    let key = encode_key(transactional_id);
    batch.push(broker.config().clock.now_ms(), Some(&key), value, &[]);
    let encoded = batch
        .build(log.codecs())
        .map_err(|source| Error::InvalidBatch {
            partition: log.name().to_string(),
            source,
        })?;
    log.append(encoded)?;
    log.flush()
}

/// Every transactional id's latest state, if the topic exists.
///
/// # Errors
/// A read error, or [`Error::BadOffsetsRecord`] naming the partition and offset of a
/// record that does not decode.
pub(crate) fn load(broker: &Broker) -> Result<BTreeMap<String, TxnMetadata>> {
    let mut out = BTreeMap::new();
    let Ok(count) = broker.partition_count(TXN_TOPIC) else {
        return Ok(out);
    };
    for p in 0..count {
        let log = broker.partition(TXN_TOPIC, p)?.log().clone();
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
                    let bad = |reason: String| Error::BadOffsetsRecord {
                        partition: log.name().to_string(),
                        offset: record.offset,
                        reason,
                    };
                    let key = record.key.as_deref().ok_or_else(|| bad("no key".into()))?;
                    let id = decode_key(key).map_err(bad)?;
                    match &record.value {
                        None => {
                            out.remove(&id);
                        }
                        Some(v) => {
                            out.insert(id, decode_value(v).map_err(bad)?);
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Reads the state topic's segment files under the data directory `data_dir` without
/// opening, locking or changing anything (as `dump` reads segments), so it also works
/// on a directory another process has open. Reading stops at the first batch that is
/// torn or corrupt in each segment.
///
/// # Errors
/// [`Error::Io`] naming the file; [`Error::BadOffsetsRecord`] for a record that does
/// not decode.
pub(crate) fn read_files(data_dir: &Path) -> Result<BTreeMap<String, TxnMetadata>> {
    let mut out = BTreeMap::new();
    let mut partitions: Vec<(i32, std::path::PathBuf)> = Vec::new();
    for entry in fs::read_dir(data_dir).at(data_dir)? {
        let path = entry.at(data_dir)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(p) = name
            .strip_prefix(TXN_TOPIC)
            .and_then(|r| r.strip_prefix('-'))
            && let Ok(p) = p.parse::<i32>()
        {
            partitions.push((p, path));
        }
    }
    partitions.sort();
    for (_, dir) in partitions {
        let mut logs: Vec<std::path::PathBuf> = fs::read_dir(&dir)
            .at(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        logs.sort();
        for path in logs {
            let data = Bytes::from(fs::read(&path).at(&path)?);
            let mut at = 0;
            while let Ok(size) = batch_size(&data[at..]) {
                let Ok(batch) = RecordBatch::from_bytes(data.slice(at..at + size)) else {
                    break;
                };
                at += size;
                if batch.is_control() || batch.verify_crc().is_err() {
                    continue;
                }
                let Ok(records) = batch.records(&Codecs::default()) else {
                    break;
                };
                for record in records.flatten() {
                    let bad = |reason: String| Error::BadOffsetsRecord {
                        partition: path.display().to_string(),
                        offset: record.offset,
                        reason,
                    };
                    let key = record.key.as_deref().ok_or_else(|| bad("no key".into()))?;
                    let id = decode_key(key).map_err(bad)?;
                    match &record.value {
                        None => {
                            out.remove(&id);
                        }
                        Some(v) => {
                            out.insert(id, decode_value(v).map_err(bad)?);
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_in_kafkas_layout() {
        let m = TxnMetadata {
            producer_id: 4000,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state: TransactionState::Ongoing,
            partitions: [
                TopicPartition::new("out", 1),
                TopicPartition::new("out", 0),
                TopicPartition::new("a", 2),
            ]
            .into_iter()
            .collect(),
            last_update_ms: 11,
            start_ms: 10,
        };
        let v = encode_value(&m);
        assert_eq!(&v[..2], &[0, 0]);
        assert_eq!(&v[2..10], &4000i64.to_be_bytes());
        assert_eq!(v[16], 1, "status Ongoing is 1");
        assert_eq!(&v[17..21], &2i32.to_be_bytes(), "two topics");
        assert_eq!(decode_value(&v).unwrap(), m);
        for n in 0..v.len() {
            assert!(decode_value(&v[..n]).is_err(), "truncated at {n}");
        }
        let k = encode_key("tx-1");
        assert_eq!(k, b"\0\0\0\x04tx-1");
        assert_eq!(decode_key(&k).unwrap(), "tx-1");
    }

    /// A version 1 value as Kafka 4 writes it (`TransactionLogValue.json`: flexible from
    /// version 1, with tagged PreviousProducerId (0), NextProducerId (1) and
    /// ClientTransactionVersion (2)), built by hand from the schema.
    #[test]
    fn kafka_4s_flexible_version_decodes() {
        let mut v = Vec::new();
        v.extend_from_slice(&1i16.to_be_bytes());
        v.extend_from_slice(&4001i64.to_be_bytes());
        v.extend_from_slice(&7i16.to_be_bytes());
        v.extend_from_slice(&30_000i32.to_be_bytes());
        v.push(2); // PrepareCommit
        v.push(2 + 1); // two topics, compact
        v.push(3 + 1);
        v.extend_from_slice(b"out");
        v.push(2 + 1); // two partition ids
        v.extend_from_slice(&0i32.to_be_bytes());
        v.extend_from_slice(&5i32.to_be_bytes());
        v.push(0); // no tagged fields in the element
        v.push(1 + 1);
        v.extend_from_slice(b"a");
        v.push(1 + 1);
        v.extend_from_slice(&9i32.to_be_bytes());
        v.extend_from_slice(&[1, 0, 1, 7]); // an unknown tagged field in the element
        v.extend_from_slice(&21i64.to_be_bytes());
        v.extend_from_slice(&20i64.to_be_bytes());
        v.push(3); // tagged fields: 0 and 1 (int64), 2 (int16)
        v.extend_from_slice(&[0, 8]);
        v.extend_from_slice(&4000i64.to_be_bytes());
        v.extend_from_slice(&[1, 8]);
        v.extend_from_slice(&4002i64.to_be_bytes());
        v.extend_from_slice(&[2, 2, 0, 2]);
        let m = decode_value(&v).unwrap();
        assert_eq!(
            (m.producer_id, m.producer_epoch, m.timeout_ms, m.state),
            (4001, 7, 30_000, TransactionState::PrepareCommit)
        );
        let want: BTreeSet<TopicPartition> = [("out", 0), ("out", 5), ("a", 9)]
            .into_iter()
            .map(|(t, p)| TopicPartition::new(t, p))
            .collect();
        assert_eq!(m.partitions, want);
        assert_eq!((m.last_update_ms, m.start_ms), (21, 20));
        for n in 0..v.len() {
            assert!(decode_value(&v[..n]).is_err(), "truncated at {n}");
        }
        // A null partition array (compact 0) is no partitions.
        let mut empty = v[..17].to_vec();
        empty.push(0);
        empty.extend_from_slice(&21i64.to_be_bytes());
        empty.extend_from_slice(&20i64.to_be_bytes());
        empty.push(0);
        assert!(decode_value(&empty).unwrap().partitions.is_empty());
        let mut v2 = v.clone();
        v2[1] = 2;
        let err = decode_value(&v2).unwrap_err();
        assert!(err.contains("unknown value version 2"), "{err}");
    }
}
