//! Handles for reading a partition's offsets and data programmatically.

use std::sync::Arc;

use super::TopicConfig;
use crate::error::Result;
use crate::log::{Log, TimestampOffset};
use crate::record::RecordBatch;

/// One partition of a topic: offsets, size, and direct reads.
#[derive(Clone, Debug)]
pub struct Partition {
    topic: Arc<str>,
    partition: i32,
    log: Arc<Log>,
}

impl Partition {
    pub(crate) fn new(topic: Arc<str>, partition: i32, log: Arc<Log>) -> Partition {
        Partition {
            topic,
            partition,
            log,
        }
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition number.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The first offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    /// The offset the next record will get (Kafka's log end offset; the high watermark
    /// too, since an embedded log has no replicas).
    pub fn log_end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    /// The first offset whose timestamp is ≥ `timestamp`, with that record's timestamp.
    ///
    /// # Errors
    /// A corrupt batch or I/O error naming the segment file.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampOffset>> {
        self.log.offset_for_timestamp(timestamp)
    }

    /// Bytes on disk in the partition's segments.
    pub fn size_bytes(&self) -> u64 {
        self.log.size_bytes()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.log.segment_count()
    }

    /// Whole batches from the one holding `offset`, up to `max_bytes` (at least one).
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`](crate::Error::OffsetOutOfRange) naming the valid range.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<Vec<RecordBatch>> {
        self.log.read(offset, max_bytes)
    }

    /// The partition's log, for the storage-level API.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }
}

/// The state of one partition, as `describe_topic` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition number.
    pub partition: i32,
    /// First offset still in the log.
    pub log_start_offset: i64,
    /// Next offset to be written.
    pub log_end_offset: i64,
    /// Bytes of segment data.
    pub size_bytes: u64,
    /// Number of segments.
    pub segments: usize,
    /// Share of the sealed segments' bytes not compacted yet (Kafka's dirty ratio).
    pub dirty_ratio: super::Ratio,
}

impl PartitionInfo {
    pub(crate) fn of(partition: i32, log: &Log) -> PartitionInfo {
        PartitionInfo {
            partition,
            log_start_offset: log.log_start_offset(),
            log_end_offset: log.log_end_offset(),
            size_bytes: log.size_bytes(),
            segments: log.segment_count(),
            dirty_ratio: super::Ratio::new(log.dirty_ratio()).unwrap_or_default(),
        }
    }
}

/// A topic's config and partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicDescription {
    /// The topic name.
    pub name: String,
    /// Its config.
    pub config: TopicConfig,
    /// Each partition, in order.
    pub partitions: Vec<PartitionInfo>,
}
