//! A RecordBatch v2 held in memory, and the records decoded from it.

use bytes::Bytes;

use super::layout::*;
use super::varint::{get_varint, get_varlong};
use super::{Codecs, Compression};
use crate::error::DecodeError;

/// How the timestamps of a batch were assigned (attribute bit 3).
///
/// Kafka name: `message.timestamp.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// The producer's timestamps, kept as given (`CreateTime`, Kafka's default).
    #[default]
    CreateTime,
    /// The log's clock at append; every record of the batch reports the batch's
    /// `maxTimestamp` (`LogAppendTime`).
    LogAppendTime,
}

impl TimestampType {
    /// Kafka's name: `CreateTime` or `LogAppendTime`.
    pub const fn name(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

/// A record header: a UTF-8 key and an optional value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header key (never null in Kafka's format).
    pub key: String,
    /// The header value; `None` is Kafka's null.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Header {
        Header {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

/// One record decoded from a batch.
///
/// `key`, `value` and header values are slices of the batch's bytes (or of its
/// decompressed payload): decoding copies no record data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The record's offset in its partition.
    pub offset: i64,
    /// The record's timestamp in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The key; `None` is a null key.
    pub key: Option<Bytes>,
    /// The value; `None` is a null value, a tombstone on compacted topics.
    pub value: Option<Bytes>,
    /// The headers, in order.
    pub headers: Vec<Header>,
}

/// A RecordBatch v2: the exact bytes of one batch as stored in a segment.
///
/// Cheap to clone. Accessors read the header fields in place. Construction checks the
/// size, length field and magic; [`RecordBatch::verify_crc`] checks the CRC and
/// [`RecordBatch::records`] decodes (decompressing when needed).
#[derive(Clone, PartialEq, Eq)]
pub struct RecordBatch {
    bytes: Bytes,
}

impl RecordBatch {
    /// Wraps the bytes of exactly one batch, checking size, length field and magic.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`], [`DecodeError::BadLength`] or
    /// [`DecodeError::UnsupportedMagic`].
    pub fn from_bytes(bytes: Bytes) -> Result<RecordBatch, DecodeError> {
        let size = batch_size(&bytes)?;
        if size != bytes.len() {
            return Err(DecodeError::Inconsistent(
                "batchLength does not match the number of bytes given",
            ));
        }
        Ok(RecordBatch { bytes })
    }

    /// Wraps bytes already checked by [`batch_size`].
    pub(crate) fn new_unchecked(bytes: Bytes) -> RecordBatch {
        RecordBatch { bytes }
    }

    /// The batch's bytes, exactly as stored.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Total size in bytes, including the 12-byte log overhead.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// Offset of the first record (`baseOffset`).
    pub fn base_offset(&self) -> i64 {
        get_i64(&self.bytes, BASE_OFFSET)
    }

    /// Offset of the last record: `baseOffset + lastOffsetDelta`. After compaction the
    /// record with this offset may be gone, but the next batch still starts after it.
    pub fn last_offset(&self) -> i64 {
        // baseOffset is outside the CRC; saturate rather than overflow on damaged bytes.
        self.base_offset()
            .saturating_add(i64::from(self.last_offset_delta()))
    }

    /// The offset after this batch: `lastOffset + 1`.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// `lastOffsetDelta`.
    pub fn last_offset_delta(&self) -> i32 {
        get_i32(&self.bytes, LAST_OFFSET_DELTA)
    }

    /// `partitionLeaderEpoch`.
    pub fn partition_leader_epoch(&self) -> i32 {
        get_i32(&self.bytes, PARTITION_LEADER_EPOCH)
    }

    /// The stored CRC-32C.
    pub fn crc(&self) -> u32 {
        get_i32(&self.bytes, CRC) as u32
    }

    /// The raw `attributes` field.
    pub fn attributes(&self) -> i16 {
        get_i16(&self.bytes, ATTRIBUTES)
    }

    /// The codec of the payload.
    ///
    /// # Errors
    /// [`DecodeError::InvalidCodecId`] for ids 5–7.
    pub fn compression(&self) -> Result<Compression, DecodeError> {
        let id = (self.attributes() & ATTR_CODEC_MASK) as u8;
        Compression::from_id(id).ok_or(DecodeError::InvalidCodecId { id })
    }

    /// CreateTime or LogAppendTime.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & ATTR_LOG_APPEND_TIME != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether the batch belongs to a transaction (attribute bit 4).
    pub fn is_transactional(&self) -> bool {
        self.attributes() & ATTR_TRANSACTIONAL != 0
    }

    /// Whether the batch holds control records (attribute bit 5).
    pub fn is_control(&self) -> bool {
        self.attributes() & ATTR_CONTROL != 0
    }

    /// Whether `baseTimestamp` holds a delete horizon (attribute bit 6).
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes() & ATTR_DELETE_HORIZON != 0
    }

    /// `baseTimestamp`: the first record's timestamp, or the delete horizon.
    pub fn base_timestamp(&self) -> i64 {
        get_i64(&self.bytes, BASE_TIMESTAMP)
    }

    /// `maxTimestamp`.
    pub fn max_timestamp(&self) -> i64 {
        get_i64(&self.bytes, MAX_TIMESTAMP)
    }

    /// `producerId` (-1 when not idempotent).
    pub fn producer_id(&self) -> i64 {
        get_i64(&self.bytes, PRODUCER_ID)
    }

    /// `producerEpoch` (-1 when not idempotent).
    pub fn producer_epoch(&self) -> i16 {
        get_i16(&self.bytes, PRODUCER_EPOCH)
    }

    /// `baseSequence` (-1 when not idempotent).
    pub fn base_sequence(&self) -> i32 {
        get_i32(&self.bytes, BASE_SEQUENCE)
    }

    /// `recordsCount`.
    pub fn records_count(&self) -> i32 {
        get_i32(&self.bytes, RECORDS_COUNT)
    }

    /// Checks the stored CRC-32C against bytes 21..end.
    ///
    /// # Errors
    /// [`DecodeError::CrcMismatch`].
    pub fn verify_crc(&self) -> Result<(), DecodeError> {
        let computed = batch_crc(&self.bytes);
        let stored = self.crc();
        if computed == stored {
            Ok(())
        } else {
            Err(DecodeError::CrcMismatch { stored, computed })
        }
    }

    /// The records area after decompression: a slice of the batch when uncompressed.
    ///
    /// # Errors
    /// [`DecodeError::InvalidCodecId`], [`DecodeError::CodecUnavailable`] or
    /// [`DecodeError::Codec`].
    pub fn payload(&self, codecs: &Codecs) -> Result<Bytes, DecodeError> {
        match self.compression()? {
            Compression::None => Ok(self.bytes.slice(RECORDS..)),
            c => {
                let compressed = &self.bytes[RECORDS..];
                let mut out = Vec::with_capacity(compressed.len().saturating_mul(4));
                codecs.decompress(c, compressed, &mut out)?;
                Ok(Bytes::from(out))
            }
        }
    }

    /// Decodes the records, checking the CRC first.
    ///
    /// The iterator yields an error at the first malformed record, and one more if
    /// bytes remain after `recordsCount` records (Kafka's "incorrect declared batch size").
    ///
    /// # Errors
    /// Any [`DecodeError`] from the CRC check or decompression.
    pub fn records(&self, codecs: &Codecs) -> Result<Records, DecodeError> {
        self.verify_crc()?;
        self.records_unverified(codecs)
    }

    /// Decodes the records without checking the CRC (the caller did already).
    pub(crate) fn records_unverified(&self, codecs: &Codecs) -> Result<Records, DecodeError> {
        let count = self.records_count();
        if count < 0 {
            return Err(DecodeError::Inconsistent("negative recordsCount"));
        }
        let payload = self.payload(codecs)?;
        let log_append = self.timestamp_type() == TimestampType::LogAppendTime;
        Ok(Records {
            payload,
            pos: 0,
            index: 0,
            count: count as usize,
            base_offset: self.base_offset(),
            base_timestamp: self.base_timestamp(),
            log_append_time: log_append.then(|| self.max_timestamp()),
            failed: false,
        })
    }
}

impl std::fmt::Debug for RecordBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordBatch")
            .field("base_offset", &self.base_offset())
            .field("last_offset_delta", &self.last_offset_delta())
            .field("size", &self.size())
            .field("attributes", &format_args!("{:#06x}", self.attributes()))
            .field("records_count", &self.records_count())
            .field("max_timestamp", &self.max_timestamp())
            .finish()
    }
}

/// Size of the batch starting at `buf[0]`, from its length field, after checking the
/// length is sane and the magic is 2. `buf` may hold more bytes after the batch.
///
/// # Errors
/// [`DecodeError::Truncated`] when `buf` is shorter than the header or the batch;
/// [`DecodeError::BadLength`] when the length is below Kafka's minimum;
/// [`DecodeError::UnsupportedMagic`] for magic other than 2.
pub fn batch_size(buf: &[u8]) -> Result<usize, DecodeError> {
    if buf.len() < LOG_OVERHEAD {
        return Err(DecodeError::Truncated {
            what: "batch length",
            needed: LOG_OVERHEAD,
            available: buf.len(),
        });
    }
    let length = get_i32(buf, BATCH_LENGTH);
    if length < MIN_BATCH_LENGTH {
        return Err(DecodeError::BadLength {
            length,
            reason: "below Kafka's minimum of 14",
        });
    }
    let size = LOG_OVERHEAD + length as usize;
    if buf.len() < HEADER_UP_TO_MAGIC {
        return Err(DecodeError::Truncated {
            what: "batch magic",
            needed: HEADER_UP_TO_MAGIC,
            available: buf.len(),
        });
    }
    let magic = buf[MAGIC] as i8;
    if magic != MAGIC_V2 {
        return Err(DecodeError::UnsupportedMagic { magic });
    }
    if size < BATCH_HEADER_SIZE {
        return Err(DecodeError::BadLength {
            length,
            reason: "shorter than the 61-byte v2 header",
        });
    }
    if buf.len() < size {
        return Err(DecodeError::Truncated {
            what: "batch",
            needed: size,
            available: buf.len(),
        });
    }
    Ok(size)
}

/// Iterator over the records of one batch; see [`RecordBatch::records`].
#[derive(Debug)]
pub struct Records {
    payload: Bytes,
    pos: usize,
    index: usize,
    count: usize,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    failed: bool,
}

impl Records {
    fn bad(&mut self, reason: &'static str) -> Option<Result<Record, DecodeError>> {
        self.failed = true;
        Some(Err(DecodeError::BadRecord {
            index: self.index,
            reason,
        }))
    }

    /// Decodes the next record, building its `Bytes` fields as it goes. This is the
    /// owned path's own parser: sharing `parse_next` (ranges first, `Bytes` after) made
    /// `next` about a quarter slower in `cargo bench --bench log -- read`.
    fn decode_next(&mut self) -> Result<Record, &'static str> {
        let buf = &self.payload[..];
        let mut pos = self.pos;
        let length = get_varint(buf, &mut pos).ok_or("record length varint")?;
        if length < 0 || buf.len() - pos < length as usize {
            return Err("record length exceeds the batch");
        }
        let end = pos + length as usize;
        let body = &buf[..end];
        pos += 1; // attributes, always 0
        let ts_delta = get_varlong(body, &mut pos).ok_or("timestamp delta")?;
        let offset_delta = get_varint(body, &mut pos).ok_or("offset delta")?;
        let key = self.bytes_field(body, &mut pos).ok_or("key")?;
        let value = self.bytes_field(body, &mut pos).ok_or("value")?;
        let header_count = get_varint(body, &mut pos).ok_or("header count")?;
        if header_count < 0 {
            return Err("negative header count");
        }
        let mut headers = Vec::new();
        for _ in 0..header_count {
            let key = self.bytes_field(body, &mut pos).ok_or("header key")?;
            let key = key.ok_or("null header key")?;
            let key = String::from_utf8(key.to_vec()).map_err(|_| "header key is not UTF-8")?;
            let value = self.bytes_field(body, &mut pos).ok_or("header value")?;
            headers.push(Header { key, value });
        }
        if pos != end {
            return Err("record length does not match its fields");
        }
        self.pos = end;
        let timestamp = match self.log_append_time {
            Some(t) => t,
            None => self.base_timestamp.wrapping_add(ts_delta),
        };
        let offset = self
            .base_offset
            .checked_add(i64::from(offset_delta))
            .ok_or("offset overflows i64")?;
        Ok(Record {
            offset,
            timestamp,
            key,
            value,
            headers,
        })
    }

    /// Reads a varint length and that many bytes; `Some(None)` for length -1.
    #[inline]
    fn bytes_field(&self, body: &[u8], pos: &mut usize) -> Option<Option<Bytes>> {
        let len = get_varint(body, pos)?;
        if len == -1 {
            return Some(None);
        }
        if len < 0 || body.len() - *pos < len as usize {
            return None;
        }
        let start = *pos;
        *pos += len as usize;
        Some(Some(self.payload.slice(start..*pos)))
    }

    /// Parses the next record's fields in place, checking them, without advancing.
    fn parse_next(&self) -> Result<Parsed, &'static str> {
        let buf = &self.payload[..];
        let mut pos = self.pos;
        let length = get_varint(buf, &mut pos).ok_or("record length varint")?;
        if length < 0 || buf.len() - pos < length as usize {
            return Err("record length exceeds the batch");
        }
        let end = pos + length as usize;
        let body = &buf[..end];
        pos += 1; // attributes, always 0
        let ts_delta = get_varlong(body, &mut pos).ok_or("timestamp delta")?;
        let offset_delta = get_varint(body, &mut pos).ok_or("offset delta")?;
        let key = field_range(body, &mut pos).ok_or("key")?;
        let value = field_range(body, &mut pos).ok_or("value")?;
        let header_count = get_varint(body, &mut pos).ok_or("header count")?;
        if header_count < 0 {
            return Err("negative header count");
        }
        let headers_at = pos;
        for _ in 0..header_count {
            let key = field_range(body, &mut pos).ok_or("header key")?;
            let key = key.ok_or("null header key")?;
            std::str::from_utf8(&body[key]).map_err(|_| "header key is not UTF-8")?;
            field_range(body, &mut pos).ok_or("header value")?;
        }
        if pos != end {
            return Err("record length does not match its fields");
        }
        let timestamp = match self.log_append_time {
            Some(t) => t,
            None => self.base_timestamp.wrapping_add(ts_delta),
        };
        let offset = self
            .base_offset
            .checked_add(i64::from(offset_delta))
            .ok_or("offset overflows i64")?;
        Ok(Parsed {
            offset,
            timestamp,
            key,
            value,
            headers: (headers_at..end, header_count as usize),
            end,
        })
    }

    /// The next record as slices borrowed from the batch, without a reference count per
    /// field: the fastest way to read, when the record need not outlive this iterator.
    ///
    /// It moves the same cursor as [`Iterator::next`], so the two can be mixed.
    ///
    /// ```
    /// # use partlog::{BatchBuilder, Codecs, Compression};
    /// let mut b = BatchBuilder::new(Compression::None);
    /// b.push(1_700_000_000_000, Some(b"k"), Some(b"v1"), &[]);
    /// b.push(1_700_000_000_001, None, Some(b"v2"), &[]);
    /// let codecs = Codecs::default();
    /// let batch = b.build(&codecs).unwrap().into_batch();
    /// let mut records = batch.records(&codecs).unwrap();
    /// let mut values = Vec::new();
    /// while let Some(r) = records.next_ref() {
    ///     values.push(r.unwrap().value.unwrap().to_vec());
    /// }
    /// assert_eq!(values, [b"v1".to_vec(), b"v2".to_vec()]);
    /// ```
    pub fn next_ref(&mut self) -> Option<Result<RecordRef<'_>, DecodeError>> {
        let parsed = match self.advance()? {
            Ok(parsed) => parsed,
            Err(e) => return Some(Err(e)),
        };
        let buf = &self.payload[..];
        Some(Ok(RecordRef {
            offset: parsed.offset,
            timestamp: parsed.timestamp,
            key: parsed.key.map(|r| &buf[r]),
            value: parsed.value.map(|r| &buf[r]),
            headers: HeaderRefs {
                buf: &buf[parsed.headers.0],
                left: parsed.headers.1,
            },
        }))
    }

    /// Parses the next record and moves past it; `None` at the end, and after an error.
    fn advance(&mut self) -> Option<Result<Parsed, DecodeError>> {
        if self.failed {
            return None;
        }
        if self.index == self.count {
            if self.pos != self.payload.len() {
                self.failed = true;
                return Some(Err(DecodeError::Inconsistent(
                    "bytes remain after recordsCount records (incorrect declared batch size)",
                )));
            }
            return None;
        }
        match self.parse_next() {
            Ok(parsed) => {
                self.index += 1;
                self.pos = parsed.end;
                Some(Ok(parsed))
            }
            Err(reason) => {
                self.failed = true;
                Some(Err(DecodeError::BadRecord {
                    index: self.index,
                    reason,
                }))
            }
        }
    }
}

/// A record's fields as ranges of its batch's payload, checked by `Records::parse_next`.
struct Parsed {
    offset: i64,
    timestamp: i64,
    key: Option<std::ops::Range<usize>>,
    value: Option<std::ops::Range<usize>>,
    /// The headers' bytes and their count.
    headers: (std::ops::Range<usize>, usize),
    /// Where the record ends.
    end: usize,
}

/// Reads a varint length and the range of that many bytes; `Some(None)` for length -1.
#[inline]
fn field_range(body: &[u8], pos: &mut usize) -> Option<Option<std::ops::Range<usize>>> {
    let len = get_varint(body, pos)?;
    if len == -1 {
        return Some(None);
    }
    if len < 0 || body.len() - *pos < len as usize {
        return None;
    }
    let start = *pos;
    *pos += len as usize;
    Some(Some(start..*pos))
}

/// One record borrowed from its batch; see [`Records::next_ref`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The record's offset in its partition.
    pub offset: i64,
    /// The record's timestamp in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The key; `None` is a null key.
    pub key: Option<&'a [u8]>,
    /// The value; `None` is a null value, a tombstone on compacted topics.
    pub value: Option<&'a [u8]>,
    /// The headers, in order.
    pub headers: HeaderRefs<'a>,
}

/// The headers of a [`RecordRef`]: an iterator of `(key, value)` pairs, decoded as it
/// goes (they were checked when the record was).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderRefs<'a> {
    buf: &'a [u8],
    left: usize,
}

impl<'a> Iterator for HeaderRefs<'a> {
    type Item = (&'a str, Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut pos = 0;
        // Checked by `Records::parse_next`: a non-null UTF-8 key, then a value.
        let key = field_range(self.buf, &mut pos)??;
        let value = field_range(self.buf, &mut pos)?;
        let (buf, rest) = (self.buf, &self.buf[pos..]);
        self.buf = rest;
        let key = std::str::from_utf8(&buf[key]).ok()?;
        Some((key, value.map(|r| &buf[r])))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl Iterator for Records {
    type Item = Result<Record, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.index == self.count {
            if self.pos != self.payload.len() {
                self.failed = true;
                return Some(Err(DecodeError::Inconsistent(
                    "bytes remain after recordsCount records (incorrect declared batch size)",
                )));
            }
            return None;
        }
        match self.decode_next() {
            Ok(r) => {
                self.index += 1;
                Some(Ok(r))
            }
            Err(reason) => self.bad(reason),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.count - self.index;
        (0, Some(left + 1))
    }
}
