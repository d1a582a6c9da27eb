//! Byte layout of the RecordBatch v2 header (docs/format.md, "Batch header").
//!
//! Each offset is derived from the one before it, so moving a field moves the rest.

/// `baseOffset`, int64: offset of the first record.
pub(crate) const BASE_OFFSET: usize = 0;
/// `batchLength`, int32: bytes after this field.
pub(crate) const BATCH_LENGTH: usize = BASE_OFFSET + 8;
/// `partitionLeaderEpoch`, int32.
pub(crate) const PARTITION_LEADER_EPOCH: usize = BATCH_LENGTH + 4;
/// `magic`, int8: always 2.
pub(crate) const MAGIC: usize = PARTITION_LEADER_EPOCH + 4;
/// `crc`, uint32: CRC-32C of bytes `[ATTRIBUTES, end)`.
pub(crate) const CRC: usize = MAGIC + 1;
/// `attributes`, int16; flags live in the low byte.
pub(crate) const ATTRIBUTES: usize = CRC + 4;
/// `lastOffsetDelta`, int32.
pub(crate) const LAST_OFFSET_DELTA: usize = ATTRIBUTES + 2;
/// `baseTimestamp`, int64: the first record's timestamp (or the delete horizon).
pub(crate) const BASE_TIMESTAMP: usize = LAST_OFFSET_DELTA + 4;
/// `maxTimestamp`, int64.
pub(crate) const MAX_TIMESTAMP: usize = BASE_TIMESTAMP + 8;
/// `producerId`, int64.
pub(crate) const PRODUCER_ID: usize = MAX_TIMESTAMP + 8;
/// `producerEpoch`, int16.
pub(crate) const PRODUCER_EPOCH: usize = PRODUCER_ID + 8;
/// `baseSequence`, int32.
pub(crate) const BASE_SEQUENCE: usize = PRODUCER_EPOCH + 2;
/// `recordsCount`, int32.
pub(crate) const RECORDS_COUNT: usize = BASE_SEQUENCE + 4;
/// First byte of the records (or of the compressed stream holding them).
pub(crate) const RECORDS: usize = RECORDS_COUNT + 4;

/// Kafka's `LOG_OVERHEAD`: `baseOffset` + `batchLength`.
pub const LOG_OVERHEAD: usize = BATCH_LENGTH + 4;
/// Kafka's `RECORD_BATCH_OVERHEAD`: the fixed header size, 61 bytes.
pub const BATCH_HEADER_SIZE: usize = RECORDS;
/// Bytes a reader needs to see before it can tell a batch's magic (`HEADER_SIZE_UP_TO_MAGIC`).
pub(crate) const HEADER_UP_TO_MAGIC: usize = MAGIC + 1;
/// Smallest `batchLength` Kafka accepts before treating the bytes as corrupt (`MIN_RECORD_OVERHEAD`
/// of the legacy format, 14): a zero-filled tail fails this check.
pub(crate) const MIN_BATCH_LENGTH: i32 = 14;

/// Attribute bits 0–2: the codec id.
pub(crate) const ATTR_CODEC_MASK: i16 = 0x07;
/// Attribute bit 3: LogAppendTime.
pub(crate) const ATTR_LOG_APPEND_TIME: i16 = 0x08;
/// Attribute bit 4: transactional.
pub(crate) const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Attribute bit 5: control batch.
pub(crate) const ATTR_CONTROL: i16 = 0x20;
/// Attribute bit 6: `baseTimestamp` holds the delete horizon (set by the log cleaner).
pub(crate) const ATTR_DELETE_HORIZON: i16 = 0x40;

/// `magic` of RecordBatch v2.
pub const MAGIC_V2: i8 = 2;

/// Kafka's "absent" sentinel for timestamps (`NO_TIMESTAMP`).
pub const NO_TIMESTAMP: i64 = -1;
/// Kafka's sentinel for a non-idempotent producer id (`NO_PRODUCER_ID`).
pub const NO_PRODUCER_ID: i64 = -1;
/// Kafka's sentinel for a non-idempotent producer epoch (`NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// Kafka's sentinel for a missing sequence (`NO_SEQUENCE`).
pub const NO_SEQUENCE: i32 = -1;

/// Reads a big-endian i64 at `at`. The caller has checked the length.
#[inline]
pub(crate) fn get_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads a big-endian i32 at `at`. The caller has checked the length.
#[inline]
pub(crate) fn get_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Reads a big-endian i16 at `at`. The caller has checked the length.
#[inline]
pub(crate) fn get_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

/// CRC-32C of a batch: bytes `[ATTRIBUTES, end)`.
#[inline]
pub(crate) fn batch_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES..])
}
