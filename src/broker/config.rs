//! Topic and broker settings, each documented with its Kafka name.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::cleaner::{CleanerConfig, Ratio};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::log::{FsyncPolicy, LogConfig};
use crate::record::{Codecs, Compression, TimestampType};

/// Kafka's `cleanup.policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CleanupPolicy {
    /// `delete`: old segments are deleted by `retention.ms` and `retention.bytes`.
    #[default]
    Delete,
    /// `compact`: the latest record per key is kept.
    Compact,
    /// `compact,delete`: both.
    CompactDelete,
}

impl CleanupPolicy {
    /// Kafka's spelling.
    pub const fn name(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        }
    }

    /// Whether the policy includes compaction.
    pub const fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }

    /// Whether the policy includes time and size retention.
    pub const fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }
}

/// Kafka's topic-level `compression.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TopicCompression {
    /// `producer`: keep whatever codec each producer used (Kafka's default).
    #[default]
    Producer,
    /// Store every batch with this codec, whatever the producer asked for.
    Codec(Compression),
}

impl fmt::Display for TopicCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicCompression::Producer => f.write_str("producer"),
            // Kafka's topic-level name for no compression is `uncompressed`.
            TopicCompression::Codec(Compression::None) => f.write_str("uncompressed"),
            TopicCompression::Codec(c) => f.write_str(c.name()),
        }
    }
}

/// Per-topic settings. `Default` gives Kafka's defaults; every field names its Kafka
/// topic config, which is also the key `partlog topics create --config` takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicConfig {
    /// `segment.bytes`: roll before a segment would grow past this (default 1 GiB).
    pub segment_bytes: u32,
    /// `segment.ms`: roll when records span more than this (default 7 days).
    pub segment_ms: i64,
    /// `segment.index.bytes`: index preallocation; a full index rolls (default 10 MiB).
    pub segment_index_bytes: u32,
    /// `index.interval.bytes`: bytes between offset-index entries (default 4096).
    pub index_interval_bytes: u32,
    /// `retention.ms`: delete segments whose newest record is older (-1: keep forever;
    /// default 7 days).
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest segments while a partition is larger
    /// (-1: no limit, the default).
    pub retention_bytes: i64,
    /// `cleanup.policy`: delete, compact, or both (default delete).
    pub cleanup_policy: CleanupPolicy,
    /// `compression.type`: `producer` (default) or a codec forced on every batch.
    pub compression: TopicCompression,
    /// `max.message.bytes`: the largest batch, including 12 bytes of log overhead
    /// (default 1048588).
    pub max_message_bytes: u32,
    /// `message.timestamp.type`: CreateTime (default) or LogAppendTime.
    pub timestamp_type: TimestampType,
    /// `flush.messages` / `flush.ms`: when appends are fsynced (default never; see
    /// [`FsyncPolicy`] for what each choice survives).
    pub fsync: FsyncPolicy,
    /// `delete.retention.ms`: how long a tombstone stays after compaction first sees it
    /// (the delete horizon; default 1 day).
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: the background cleaner compacts a partition once
    /// this share of its sealed bytes is dirty (default 0.5).
    pub min_cleanable_dirty_ratio: Ratio,
    /// `min.compaction.lag.ms`: records stay uncompacted at least this long (default 0).
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a partition is compacted, whatever its dirty ratio, once
    /// its oldest dirty segment is this old (default `i64::MAX`, never).
    pub max_compaction_lag_ms: i64,
}

impl Default for TopicConfig {
    fn default() -> TopicConfig {
        let log = LogConfig::default();
        TopicConfig {
            segment_bytes: log.segment_bytes,
            segment_ms: log.segment_ms,
            segment_index_bytes: log.segment_index_bytes,
            index_interval_bytes: log.index_interval_bytes,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::Delete,
            compression: TopicCompression::Producer,
            max_message_bytes: log.max_message_bytes,
            timestamp_type: log.timestamp_type,
            fsync: log.fsync,
            delete_retention_ms: 86_400_000,
            min_cleanable_dirty_ratio: Ratio::new(0.5).expect("in range"),
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
        }
    }
}

impl TopicConfig {
    /// The partition-log settings this topic config implies.
    pub fn log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            segment_ms: self.segment_ms,
            segment_index_bytes: self.segment_index_bytes,
            index_interval_bytes: self.index_interval_bytes,
            max_message_bytes: self.max_message_bytes,
            timestamp_type: self.timestamp_type,
            fsync: self.fsync,
            leader_epoch: 0,
        }
    }

    /// Sets one setting by its Kafka name, parsing `value` as Kafka does.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unknown key or a value out of range.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let bad = |reason| Error::InvalidConfig {
            name: config_name(key),
            value: value.to_string(),
            reason,
        };
        let int = |v: &str| v.trim().parse::<i64>().map_err(|_| bad("not an integer"));
        match key {
            "segment.bytes" => {
                self.segment_bytes = u32_in(int(value)?).ok_or_else(|| bad("out of range"))?
            }
            "segment.ms" => self.segment_ms = int(value)?,
            "segment.index.bytes" => {
                self.segment_index_bytes = u32_in(int(value)?).ok_or_else(|| bad("out of range"))?
            }
            "index.interval.bytes" => {
                self.index_interval_bytes =
                    u32_in(int(value)?).ok_or_else(|| bad("out of range"))?
            }
            "retention.ms" => self.retention_ms = int(value)?,
            "retention.bytes" => self.retention_bytes = int(value)?,
            "max.message.bytes" => {
                self.max_message_bytes = u32_in(int(value)?).ok_or_else(|| bad("out of range"))?
            }
            "cleanup.policy" => {
                self.cleanup_policy = match value.replace(' ', "").as_str() {
                    "delete" => CleanupPolicy::Delete,
                    "compact" => CleanupPolicy::Compact,
                    "compact,delete" | "delete,compact" => CleanupPolicy::CompactDelete,
                    _ => return Err(bad("expected delete, compact or compact,delete")),
                }
            }
            "compression.type" => {
                self.compression = match value {
                    "producer" => TopicCompression::Producer,
                    "uncompressed" => TopicCompression::Codec(Compression::None),
                    v => TopicCompression::Codec(Compression::from_name(v).ok_or_else(|| {
                        bad("expected producer, none, gzip, snappy, lz4 or zstd")
                    })?),
                }
            }
            "message.timestamp.type" => {
                self.timestamp_type = match value {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => return Err(bad("expected CreateTime or LogAppendTime")),
                }
            }
            "flush.messages" => {
                let n = int(value)?;
                if n < 1 {
                    return Err(bad("must be at least 1"));
                }
                self.fsync = match n {
                    1 => FsyncPolicy::EveryAppend,
                    i64::MAX => FsyncPolicy::Never,
                    n => FsyncPolicy::EveryRecords(n as u64),
                };
            }
            "delete.retention.ms" => self.delete_retention_ms = int(value)?,
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = int(value)?,
            "max.compaction.lag.ms" => self.max_compaction_lag_ms = int(value)?,
            "min.cleanable.dirty.ratio" => {
                self.min_cleanable_dirty_ratio = value
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(Ratio::new)
                    .ok_or_else(|| bad("must be a number in [0, 1]"))?
            }
            "flush.ms" => {
                let ms = int(value)?;
                if ms < 0 {
                    return Err(bad("must be 0 or more"));
                }
                self.fsync = match ms {
                    0 => FsyncPolicy::EveryAppend,
                    i64::MAX => FsyncPolicy::Never,
                    ms => FsyncPolicy::Interval(Duration::from_millis(ms as u64)),
                };
            }
            _ => {
                return Err(Error::UnknownConfig {
                    key: key.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Every setting as Kafka `key=value` pairs, in a fixed order; `set` reads them back.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            ("segment.bytes", self.segment_bytes.to_string()),
            ("segment.ms", self.segment_ms.to_string()),
            ("segment.index.bytes", self.segment_index_bytes.to_string()),
            (
                "index.interval.bytes",
                self.index_interval_bytes.to_string(),
            ),
            ("retention.ms", self.retention_ms.to_string()),
            ("retention.bytes", self.retention_bytes.to_string()),
            ("cleanup.policy", self.cleanup_policy.name().to_string()),
            ("compression.type", self.compression.to_string()),
            ("max.message.bytes", self.max_message_bytes.to_string()),
            (
                "message.timestamp.type",
                self.timestamp_type.name().to_string(),
            ),
        ];
        pairs.extend([
            ("delete.retention.ms", self.delete_retention_ms.to_string()),
            (
                "min.cleanable.dirty.ratio",
                self.min_cleanable_dirty_ratio.to_string(),
            ),
            (
                "min.compaction.lag.ms",
                self.min_compaction_lag_ms.to_string(),
            ),
            (
                "max.compaction.lag.ms",
                self.max_compaction_lag_ms.to_string(),
            ),
        ]);
        match self.fsync {
            FsyncPolicy::Never => pairs.push(("flush.messages", i64::MAX.to_string())),
            FsyncPolicy::EveryAppend => pairs.push(("flush.messages", "1".into())),
            FsyncPolicy::EveryRecords(n) => pairs.push(("flush.messages", n.to_string())),
            FsyncPolicy::Interval(d) => pairs.push(("flush.ms", d.as_millis().to_string())),
        }
        pairs
    }

    /// Checks the values that make a log, as [`LogConfig::validate`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [
            ("retention.ms", self.retention_ms),
            ("retention.bytes", self.retention_bytes),
        ] {
            if value < -1 {
                return Err(Error::InvalidConfig {
                    name,
                    value: value.to_string(),
                    reason: "must be -1 (no limit) or more",
                });
            }
        }
        for (name, value, min) in [
            ("delete.retention.ms", self.delete_retention_ms, 0),
            ("min.compaction.lag.ms", self.min_compaction_lag_ms, 0),
            ("max.compaction.lag.ms", self.max_compaction_lag_ms, 1),
        ] {
            if value < min {
                return Err(Error::InvalidConfig {
                    name,
                    value: value.to_string(),
                    reason: if min == 0 {
                        "must be 0 or more"
                    } else {
                        "must be at least 1"
                    },
                });
            }
        }
        self.log_config().validate()
    }
}

/// The `'static` Kafka name for a key, for error messages.
fn config_name(key: &str) -> &'static str {
    const KEYS: [&str; 16] = [
        "segment.bytes",
        "segment.ms",
        "segment.index.bytes",
        "index.interval.bytes",
        "retention.ms",
        "retention.bytes",
        "cleanup.policy",
        "compression.type",
        "max.message.bytes",
        "message.timestamp.type",
        "flush.messages",
        "flush.ms",
        "delete.retention.ms",
        "min.cleanable.dirty.ratio",
        "min.compaction.lag.ms",
        "max.compaction.lag.ms",
    ];
    KEYS.into_iter().find(|k| *k == key).unwrap_or("config")
}

fn u32_in(v: i64) -> Option<u32> {
    u32::try_from(v).ok().filter(|v| *v <= i32::MAX as u32)
}

/// Settings of a [`Broker`](crate::Broker).
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Kafka: `auto.create.topics.enable`, but off by default here: producing to or
    /// subscribing to an unknown topic creates it with `default_topic_config` and
    /// `default_partitions`.
    pub auto_create_topics: bool,
    /// Kafka: `num.partitions`. Partitions of auto-created topics (default 1).
    pub default_partitions: i32,
    /// Config of auto-created topics, and of partition directories found without a
    /// topic entry (a directory copied from Kafka, say).
    pub default_topic_config: TopicConfig,
    /// Codec implementations for every log.
    pub codecs: Codecs,
    /// The clock for LogAppendTime, time-based rules and record timestamps.
    pub clock: Arc<dyn Clock>,
    /// Kafka: `offsets.topic.num.partitions` (default 50): partitions of the internal
    /// `__consumer_offsets` topic when a first commit creates it. An existing topic keeps
    /// its count.
    pub offsets_topic_partitions: i32,
    /// The background cleaner: retention and compaction (`log.cleaner.*`).
    pub cleaner: CleanerConfig,
    /// Kafka: `offsets.retention.minutes` (default 7 days). A group without members
    /// loses each committed offset this long after the later of its commit and the last
    /// time the group had members (Kafka counts from the moment the group became empty,
    /// or from the commit for a group that never had members); offsets a transaction has
    /// pending are kept. A group's members keep its offsets forever. After a restart,
    /// whether a group had members is not known, so its offsets count from the open.
    pub offsets_retention: Duration,
    /// Kafka: `offsets.retention.check.interval.ms` (default 10 min). How often the
    /// background thread expires offsets; [`Broker::expire_group_offsets`] runs it now.
    ///
    /// [`Broker::expire_group_offsets`]: crate::Broker::expire_group_offsets
    pub offsets_retention_check_interval: Duration,
    /// Kafka: `transactional.id.expiration.ms` (default 7 days). A transactional id
    /// with no open transaction whose state has not changed for this long is forgotten
    /// (a tombstone in `__transaction_state`).
    pub transactional_id_expiration: Duration,
    /// Kafka: `transaction.remove.expired.transaction.cleanup.interval.ms` (default 1
    /// hour). How often the background thread expires transactional ids;
    /// [`Broker::expire_transactional_ids`] runs it now.
    ///
    /// [`Broker::expire_transactional_ids`]: crate::Broker::expire_transactional_ids
    pub transactional_id_expiration_check_interval: Duration,
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        BrokerConfig {
            auto_create_topics: false,
            default_partitions: 1,
            default_topic_config: TopicConfig::default(),
            codecs: Codecs::default(),
            clock: Arc::new(SystemClock),
            offsets_topic_partitions: 50,
            cleaner: CleanerConfig::default(),
            offsets_retention: Duration::from_secs(7 * 24 * 3600),
            offsets_retention_check_interval: Duration::from_secs(600),
            transactional_id_expiration: Duration::from_secs(7 * 24 * 3600),
            transactional_id_expiration_check_interval: Duration::from_secs(3600),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_reads_back() {
        let mut c = TopicConfig::default();
        c.set("segment.bytes", "1048576").unwrap();
        c.set("cleanup.policy", "compact,delete").unwrap();
        c.set("compression.type", "zstd").unwrap();
        c.set("message.timestamp.type", "LogAppendTime").unwrap();
        c.set("flush.ms", "250").unwrap();
        c.set("delete.retention.ms", "1000").unwrap();
        c.set("min.cleanable.dirty.ratio", "0.25").unwrap();
        c.set("min.compaction.lag.ms", "7").unwrap();
        c.set("max.compaction.lag.ms", "9000").unwrap();
        let mut back = TopicConfig::default();
        for (k, v) in c.to_pairs() {
            back.set(k, &v).unwrap();
        }
        assert_eq!(back, c);
        assert_eq!(c.fsync, FsyncPolicy::Interval(Duration::from_millis(250)));
    }

    #[test]
    fn bad_values_name_the_key() {
        let mut c = TopicConfig::default();
        let err = c.set("segment.bytes", "-5").unwrap_err().to_string();
        assert_eq!(err, "invalid config segment.bytes = -5: out of range");
        let err = c.set("retention.hours", "1").unwrap_err().to_string();
        assert!(err.contains("retention.hours"), "{err}");
        assert!(c.set("compression.type", "brotli").is_err());
        let err = c
            .set("min.cleanable.dirty.ratio", "1.5")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid config min.cleanable.dirty.ratio = 1.5: must be a number in [0, 1]"
        );
        c.min_compaction_lag_ms = -1;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("min.compaction.lag.ms = -1"), "{err}");
    }
}
