//! Kafka's `__consumer_offsets` record formats (reference §7.2), byte for byte.
//!
//! Key (`OffsetCommitKey`, version 1): `int16 version = 1`, `string group`,
//! `string topic`, `int32 partition`. Value (`OffsetCommitValue`, version 3):
//! `int16 version = 3`, `int64 offset`, `int32 leaderEpoch` (-1: unknown),
//! `string metadata`, `int64 commitTimestamp`. Strings are `int16` length + UTF-8. A null
//! value is a tombstone: the committed offset is deleted.
//!
//! Reading accepts key versions 0 and 1 (the same layout) and value versions 0 to 4 (4 is
//! the flexible encoding: a compact metadata string, then tagged fields, skipped), as
//! Kafka's `GroupCoordinatorRecordSerde` does; `GroupMetadataKey` (version 2) and the
//! newer consumer-protocol records (3 and up) are recognised and skipped, since partlog
//! keeps no group metadata across restarts (see [`crate::group`]).

use crate::broker::internal::{Reader, put_str};
use crate::consumer::TopicPartition;

/// The name of the internal offsets topic.
pub(crate) const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// A committed offset: the next offset the group reads in a partition, with Kafka's
/// `OffsetAndMetadata` fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    /// The next offset to read (last processed + 1).
    pub offset: i64,
    /// Free-form text stored with the offset (empty unless given).
    pub metadata: String,
    /// When the offset was committed (ms since the Unix epoch, by the broker's clock).
    pub commit_timestamp: i64,
}

/// A decoded `__consumer_offsets` key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OffsetsKey {
    /// Versions 0 and 1: a committed offset of one partition.
    Commit {
        /// The group.
        group: String,
        /// The partition.
        tp: TopicPartition,
    },
    /// Version 2 (group metadata) or a newer record type partlog does not use.
    Other(i16),
}

/// Whether `s` fits Kafka's `int16`-length string.
pub(crate) fn fits_string(s: &str) -> bool {
    s.len() <= i16::MAX as usize
}

/// Encodes an `OffsetCommitKey` version 1.
pub(crate) fn encode_key(group: &str, tp: &TopicPartition) -> Vec<u8> {
    let mut out = Vec::with_capacity(10 + group.len() + tp.topic.len());
    out.extend_from_slice(&1i16.to_be_bytes());
    put_str(&mut out, group);
    put_str(&mut out, &tp.topic);
    out.extend_from_slice(&tp.partition.to_be_bytes());
    out
}

/// Encodes an `OffsetCommitValue` version 3 with leader epoch -1.
pub(crate) fn encode_value(value: &OffsetAndMetadata) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + value.metadata.len());
    out.extend_from_slice(&3i16.to_be_bytes());
    out.extend_from_slice(&value.offset.to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes());
    put_str(&mut out, &value.metadata);
    out.extend_from_slice(&value.commit_timestamp.to_be_bytes());
    out
}

/// Decodes a key.
pub(crate) fn decode_key(bytes: &[u8]) -> Result<OffsetsKey, String> {
    let mut r = Reader::new(bytes);
    let version = r.i16("key version")?;
    if !(0..=1).contains(&version) {
        return Ok(OffsetsKey::Other(version));
    }
    let group = r.string("group")?;
    let topic = r.string("topic")?;
    let partition = r.i32("partition")?;
    Ok(OffsetsKey::Commit {
        group,
        tp: TopicPartition { topic, partition },
    })
}

/// Decodes an `OffsetCommitValue` of version 0 to 4.
pub(crate) fn decode_value(bytes: &[u8]) -> Result<OffsetAndMetadata, String> {
    let mut r = Reader::new(bytes);
    let version = r.i16("value version")?;
    if !(0..=4).contains(&version) {
        return Err(format!(
            "OffsetCommitValue version {version} is not supported (partlog reads 0 to 4)"
        ));
    }
    let offset = r.i64("offset")?;
    if version >= 3 {
        r.i32("leaderEpoch")?;
    }
    let metadata = if version >= 4 {
        r.compact_string("metadata")?
    } else {
        r.string("metadata")?
    };
    let commit_timestamp = r.i64("commitTimestamp")?;
    if version == 1 {
        r.i64("expireTimestamp")?;
    }
    Ok(OffsetAndMetadata {
        offset,
        metadata,
        commit_timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_java() {
        // Values from Java's "...".hashCode().
        use crate::broker::internal::{java_string_hash, partition_for_key};
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("my-group"), -1_906_497_762);
        assert_eq!(partition_for_key("my-group", 50), 12);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE: Utils.abs maps it to 0.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for_key("polygenelubricants", 50), 0);
    }

    #[test]
    fn key_and_value_bytes_are_kafkas() {
        let key = encode_key("g", &TopicPartition::new("t", 3));
        assert_eq!(key, [0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3]);
        let value = OffsetAndMetadata {
            offset: 42,
            metadata: "m".into(),
            commit_timestamp: 7,
        };
        let bytes = encode_value(&value);
        let mut expected = vec![0, 3, 0, 0, 0, 0, 0, 0, 0, 42, 0xff, 0xff, 0xff, 0xff];
        expected.extend_from_slice(&[0, 1, b'm', 0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(bytes, expected);
        assert_eq!(decode_value(&bytes).unwrap(), value);
        assert_eq!(
            decode_key(&key).unwrap(),
            OffsetsKey::Commit {
                group: "g".into(),
                tp: TopicPartition::new("t", 3)
            }
        );
    }

    #[test]
    fn older_values_and_other_keys_decode() {
        // Version 1 carries an expireTimestamp after commitTimestamp.
        let mut v1 = vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0];
        v1.extend_from_slice(&9i64.to_be_bytes());
        v1.extend_from_slice(&10i64.to_be_bytes());
        let got = decode_value(&v1).unwrap();
        assert_eq!((got.offset, got.commit_timestamp), (5, 9));
        assert_eq!(
            decode_key(&[0, 2, 0, 1, b'g']).unwrap(),
            OffsetsKey::Other(2)
        );
        assert!(decode_value(&[0, 3, 0]).unwrap_err().contains("offset"));
        assert!(decode_value(&[0, 9]).unwrap_err().contains("version 9"));
        // Version 4 (flexible): compact metadata "ab" (length 2 + 1), tagged fields after.
        let mut v4 = vec![0, 4];
        v4.extend_from_slice(&300i64.to_be_bytes());
        v4.extend_from_slice(&5i32.to_be_bytes());
        v4.extend_from_slice(&[3, b'a', b'b']);
        v4.extend_from_slice(&77i64.to_be_bytes());
        v4.push(0);
        let got = decode_value(&v4).unwrap();
        assert_eq!(
            (got.offset, got.metadata.as_str(), got.commit_timestamp),
            (300, "ab", 77)
        );
    }
}
