//! What partlog's internal topics (`__consumer_offsets`, `__transaction_state`) share:
//! their config, finding the partition that holds a key, and Kafka's big-endian record
//! fields (int16-length strings).

use std::sync::Arc;

use crate::broker::{Broker, CleanupPolicy, TopicConfig};
use crate::error::{Error, Result};
use crate::log::{FsyncPolicy, Log};

/// An internal topic's config: compacted, 100 MiB segments (Kafka's), every append
/// fsynced (its records are acknowledged state).
pub(crate) fn internal_topic_config() -> TopicConfig {
    TopicConfig {
        segment_bytes: 100 << 20,
        cleanup_policy: CleanupPolicy::Compact,
        fsync: FsyncPolicy::EveryAppend,
        ..TopicConfig::default()
    }
}

/// The partition log of internal `topic` that holds `key` (Kafka's
/// `Utils.abs(key.hashCode()) % partitions`), creating the topic with `partitions`
/// partitions if it does not exist yet (an existing topic keeps its count).
pub(crate) fn internal_log(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    key: &str,
) -> Result<Arc<Log>> {
    let count = match broker.partition_count(topic) {
        Ok(n) => n,
        Err(Error::UnknownTopic { .. }) => {
            match broker.create_topic(topic, partitions, internal_topic_config()) {
                Ok(()) | Err(Error::TopicExists { .. }) => {}
                Err(e) => return Err(e),
            }
            broker.partition_count(topic)?
        }
        Err(e) => return Err(e),
    };
    let p = partition_for_key(key, count);
    Ok(broker.partition(topic, p)?.log().clone())
}

/// Java's `String.hashCode`: `h = 31 * h + c` over the UTF-16 code units, wrapping.
pub(crate) fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The internal-topic partition of a key (a group id, a transactional id): Kafka's
/// `Utils.abs(key.hashCode()) % n`,
/// where `Utils.abs` maps `i32::MIN` to 0.
pub(crate) fn partition_for_key(key: &str, partitions: i32) -> i32 {
    let h = java_string_hash(key);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

/// Appends `s` as Kafka's int16-length string. Callers check that it fits first.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    // Group ids, topic names and metadata are checked to fit an int16 length before
    // they get here (`check_string`).
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A cursor over big-endian fields that names what ran out.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err(format!("{what} needs {n} bytes, {} left", self.bytes.len()));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn i8(&mut self, what: &str) -> Result<i8, String> {
        Ok(self.take(1, what)?[0] as i8)
    }

    pub(crate) fn i16(&mut self, what: &str) -> Result<i16, String> {
        Ok(i16::from_be_bytes(
            self.take(2, what)?.try_into().expect("2 bytes"),
        ))
    }

    pub(crate) fn i32(&mut self, what: &str) -> Result<i32, String> {
        Ok(i32::from_be_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }

    pub(crate) fn i64(&mut self, what: &str) -> Result<i64, String> {
        Ok(i64::from_be_bytes(
            self.take(8, what)?.try_into().expect("8 bytes"),
        ))
    }

    /// An unsigned varint (Kafka's flexible-version lengths).
    pub(crate) fn uvarint(&mut self, what: &str) -> Result<u32, String> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let b = self.take(1, what)?[0];
            value |= u32::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("{what} has a varint longer than 5 bytes"))
    }

    /// Skips a tagged-field section of a flexible version: a count, then per field its
    /// tag, its size and its bytes.
    pub(crate) fn skip_tagged_fields(&mut self, what: &str) -> Result<(), String> {
        for _ in 0..self.uvarint(what)? {
            self.uvarint(what)?;
            let size = self.uvarint(what)?;
            self.take(size as usize, what)?;
        }
        Ok(())
    }

    /// A compact string: unsigned varint length + 1, then UTF-8 (0 is null, read as "").
    pub(crate) fn compact_string(&mut self, what: &str) -> Result<String, String> {
        let len = self.uvarint(what)?;
        if len == 0 {
            return Ok(String::new());
        }
        let bytes = self.take(len as usize - 1, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }

    pub(crate) fn string(&mut self, what: &str) -> Result<String, String> {
        let len = self.i16(what)?;
        if len < 0 {
            return Err(format!("{what} has negative length {len}"));
        }
        let bytes = self.take(len as usize, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }
}
