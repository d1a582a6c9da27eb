//! Per-partition log settings, each named after its Kafka topic config.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::record::TimestampType;

/// When the log fsyncs what it appended.
///
/// Every policy survives a crash of the process alone: an append returns only after its
/// bytes are in the operating system's page cache, which outlives the process. The
/// policies differ in what survives a power loss or kernel crash.
///
/// Kafka names: `flush.messages` (`EveryRecords`) and `flush.ms` (`Interval`); Kafka's
/// default is neither, which is `Never` here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Never fsync on append; only [`Log::flush`](crate::Log::flush),
    /// [`Log::close`](crate::Log::close) and segment roll do. A power loss can lose every
    /// append since the last of those.
    #[default]
    Never,
    /// fsync once at least this many records were appended since the last fsync. A power
    /// loss can lose up to that many records minus one (plus the batch that crossed it).
    EveryRecords(u64),
    /// fsync when an append finds the last fsync older than this interval. A power loss
    /// can lose the appends of up to one interval (longer if no append comes to trigger
    /// it; call `flush` from a timer for a hard bound).
    Interval(Duration),
    /// fsync before every append returns, shared among concurrent appenders (group
    /// commit). A power loss loses no append that returned.
    EveryAppend,
}

/// The settings of one partition log. `Default` gives Kafka's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Kafka: `segment.bytes`. Roll to a new segment before one would grow past this.
    pub segment_bytes: u32,
    /// Kafka: `segment.ms`. Roll when an incoming batch's max timestamp is this much
    /// later than the segment's first batch's.
    pub segment_ms: i64,
    /// Kafka: `segment.index.bytes`. Size each index is preallocated to; a full index rolls.
    pub segment_index_bytes: u32,
    /// Kafka: `index.interval.bytes`. Bytes between offset-index entries.
    pub index_interval_bytes: u32,
    /// Kafka: `max.message.bytes`. Largest batch accepted, including its 12-byte log overhead.
    pub max_message_bytes: u32,
    /// Kafka: `message.timestamp.type`. With `LogAppendTime` the log stamps its clock.
    pub timestamp_type: TimestampType,
    /// Kafka: `flush.messages` / `flush.ms`. When appends are fsynced.
    pub fsync: FsyncPolicy,
    /// The `partitionLeaderEpoch` stamped on every batch. An embedded log has one leader,
    /// so this stays at its default of 0 unless data is migrated from a cluster.
    pub leader_epoch: i32,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_index_bytes: 10 << 20,
            index_interval_bytes: 4096,
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            fsync: FsyncPolicy::Never,
            leader_epoch: 0,
        }
    }
}

impl LogConfig {
    /// Checks every value against Kafka's valid range.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, value: String, reason| {
            Err(Error::InvalidConfig {
                name,
                value,
                reason,
            })
        };
        if self.segment_bytes < 14 || self.segment_bytes > i32::MAX as u32 {
            return bad(
                "segment.bytes",
                self.segment_bytes.to_string(),
                "must be in 14..=2147483647",
            );
        }
        if self.segment_ms < 1 {
            return bad(
                "segment.ms",
                self.segment_ms.to_string(),
                "must be at least 1",
            );
        }
        if self.segment_index_bytes < 24 || self.segment_index_bytes > i32::MAX as u32 {
            return bad(
                "segment.index.bytes",
                self.segment_index_bytes.to_string(),
                "must hold at least two time-index entries (24 bytes) and fit an int",
            );
        }
        if self.max_message_bytes == 0 || self.max_message_bytes > i32::MAX as u32 {
            return bad(
                "max.message.bytes",
                self.max_message_bytes.to_string(),
                "must be in 1..=2147483647",
            );
        }
        match self.fsync {
            FsyncPolicy::EveryRecords(0) => bad("flush.messages", "0".into(), "must be at least 1"),
            FsyncPolicy::Interval(d) if d.is_zero() => {
                bad("flush.ms", "0".into(), "must be at least 1 ms")
            }
            _ => Ok(()),
        }
    }
}
