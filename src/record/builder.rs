//! Encoding records into a RecordBatch v2.

use bytes::Bytes;

use super::batch::{Header, RecordBatch, TimestampType};
use super::layout::*;
use super::varint::{unsigned_len, varint_len};
use super::{Codecs, Compression};
use crate::error::DecodeError;

/// Producer identity and sequence of a batch, for idempotent and transactional writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProducerInfo {
    /// `producerId`.
    pub producer_id: i64,
    /// `producerEpoch`.
    pub producer_epoch: i16,
    /// `baseSequence`: the sequence number of the first record.
    pub base_sequence: i32,
}

impl ProducerInfo {
    /// Kafka's values for a producer that is neither idempotent nor transactional.
    pub const NONE: ProducerInfo = ProducerInfo {
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
        base_sequence: NO_SEQUENCE,
    };
}

impl Default for ProducerInfo {
    fn default() -> ProducerInfo {
        ProducerInfo::NONE
    }
}

/// Builds one RecordBatch v2 from records.
///
/// Records get offset deltas 0, 1, 2, …; the log assigns the base offset at append.
/// The builder keeps the uncompressed records in one buffer, after room for the 61-byte
/// header, and compresses once in [`BatchBuilder::build`]; an uncompressed batch from
/// [`BatchBuilder::into_encoded`] gets its header written in place, without a copy.
/// The buffer is zero-filled a few KiB ahead of the records: a record's fields are
/// written straight into their place without a capacity check each, and the fill brings
/// the buffer's cache lines to the filling thread in sweeps rather than a miss per record.
/// Filling ahead rather than the whole capacity at once keeps a batch of one small record
/// (`send_blocking`) from paying for a 16 KiB fill.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    compression: Compression,
    producer: ProducerInfo,
    transactional: bool,
    control: bool,
    base_timestamp: i64,
    max_timestamp: i64,
    max_timestamp_delta: i32,
    count: i32,
    /// `records[..used]` is the batch so far (room for the header, then the records);
    /// the rest is zeros, room for the next records.
    records: Vec<u8>,
    used: usize,
}

impl BatchBuilder {
    /// An empty builder for a batch compressed with `compression`.
    pub fn new(compression: Compression) -> BatchBuilder {
        BatchBuilder::with_records(compression, vec![0; BATCH_HEADER_SIZE])
    }

    /// An empty builder over `records`, `BATCH_HEADER_SIZE` zeros (its capacity is
    /// kept).
    fn with_records(compression: Compression, records: Vec<u8>) -> BatchBuilder {
        debug_assert!(records.len() == BATCH_HEADER_SIZE && records.iter().all(|&b| b == 0));
        BatchBuilder {
            compression,
            producer: ProducerInfo::NONE,
            transactional: false,
            control: false,
            base_timestamp: NO_TIMESTAMP,
            max_timestamp: NO_TIMESTAMP,
            max_timestamp_delta: 0,
            count: 0,
            records,
            used: BATCH_HEADER_SIZE,
        }
    }

    /// An empty builder whose record buffer starts with `capacity` bytes reserved.
    pub fn with_capacity(compression: Compression, capacity: usize) -> BatchBuilder {
        let mut records = Vec::with_capacity(capacity.max(BATCH_HEADER_SIZE));
        records.resize(BATCH_HEADER_SIZE, 0);
        BatchBuilder::with_records(compression, records)
    }

    /// [`BatchBuilder::with_capacity`] reusing `buffer`'s allocation (its contents are
    /// discarded), as the producer does with the buffers of batches already appended.
    pub(crate) fn with_buffer(
        compression: Compression,
        mut buffer: Vec<u8>,
        capacity: usize,
    ) -> BatchBuilder {
        buffer.clear();
        buffer.reserve(capacity.max(BATCH_HEADER_SIZE));
        buffer.resize(BATCH_HEADER_SIZE, 0);
        BatchBuilder::with_records(compression, buffer)
    }

    /// Sets the producer id, epoch and base sequence.
    pub fn producer(mut self, producer: ProducerInfo) -> BatchBuilder {
        self.producer = producer;
        self
    }

    /// Marks the batch transactional (attribute bit 4).
    pub fn transactional(mut self, transactional: bool) -> BatchBuilder {
        self.transactional = transactional;
        self
    }

    /// Marks the batch as a control batch (attribute bit 5). Control batches are never
    /// compressed, as in Kafka.
    pub fn control(mut self, control: bool) -> BatchBuilder {
        self.control = control;
        if control {
            self.compression = Compression::None;
        }
        self
    }

    /// The codec the batch will be compressed with.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Number of records pushed so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no record has been pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The size the batch would have uncompressed.
    pub fn estimated_size(&self) -> usize {
        self.used
    }

    /// The size a record would add to the uncompressed batch.
    pub fn record_size(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        self.head(timestamp, key, value, headers).size
    }

    /// Computes a record's fixed fields against this builder's current state (its offset
    /// delta and timestamp delta, zigzagged) and sizes the whole record.
    ///
    /// The producer sizes a record before deciding which batch takes it; the head it
    /// gets is what [`BatchBuilder::push_head`] writes, so nothing is computed twice.
    #[inline(always)]
    pub(crate) fn head(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> RecordHead {
        let ts_delta = if self.count == 0 {
            0
        } else {
            timestamp.wrapping_sub(self.base_timestamp)
        };
        let ts_delta = zigzag64(ts_delta);
        let offset_delta = zigzag32(self.count);
        let key_len = zigzag32(len_or_null(key));
        let value_len = zigzag32(len_or_null(value));
        // Attributes (one byte, always 0 in v2), the deltas, the lengths and the data.
        let mut body = 1
            + unsigned_len(ts_delta)
            + unsigned_len(offset_delta)
            + unsigned_len(key_len)
            + unsigned_len(value_len)
            + key.map_or(0, <[u8]>::len)
            + value.map_or(0, <[u8]>::len)
            + varint_len(headers.len() as i32);
        for h in headers {
            body += bytes_len(Some(h.key.as_bytes())) + bytes_len(h.value.as_deref());
        }
        let length = zigzag32(body as i32);
        RecordHead {
            length,
            ts_delta,
            offset_delta,
            key_len,
            value_len,
            size: unsigned_len(length) + body,
        }
    }

    /// Appends a record with the next offset delta.
    ///
    /// `timestamp` is in milliseconds since the Unix epoch; the first record's becomes the
    /// batch's `baseTimestamp` and later ones are stored as (possibly negative) deltas.
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        let head = self.head(timestamp, key, value, headers);
        self.push_head(&head, timestamp, key, value, headers);
    }

    /// [`BatchBuilder::push`] with the head [`BatchBuilder::head`] made for the same
    /// record against this builder's current state.
    #[inline(always)]
    pub(crate) fn push_head(
        &mut self,
        head: &RecordHead,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        if self.count == 0 {
            self.base_timestamp = timestamp;
        }
        if self.count == 0 || timestamp > self.max_timestamp {
            self.max_timestamp = timestamp;
            self.max_timestamp_delta = self.count;
        }
        let end = self.used + head.size;
        if end > self.records.len() {
            self.zero_ahead(end);
        }
        let mut out = Slot {
            buf: &mut self.records[self.used..end],
            at: 0,
        };
        // Each field straight into its place: a head encoded on the stack and copied in
        // stalls on the copy's wide load of the byte stores just made.
        out.unsigned(head.length);
        // The attributes' zero is already there.
        out.at += 1;
        out.unsigned(head.ts_delta);
        out.unsigned(head.offset_delta);
        out.unsigned(head.key_len);
        if let Some(key) = key {
            out.put(key);
        }
        out.unsigned(head.value_len);
        if let Some(value) = value {
            out.put(value);
        }
        // The header count; a record without headers ends with its zero, already there.
        if !headers.is_empty() {
            out.unsigned(zigzag32(headers.len() as i32));
            for h in headers {
                out.bytes(Some(h.key.as_bytes()));
                out.bytes(h.value.as_deref());
            }
        }
        self.used = end;
        self.count += 1;
    }

    /// Extends the zeros past `end` within the buffer's capacity, or to `end` (growing
    /// the buffer) when that lies beyond it. The step doubles with what is zeroed, from
    /// [`MIN_ZERO_AHEAD`] up to [`ZERO_AHEAD`], so a batch of one small record (what
    /// `send_blocking` appends) writes a few cache lines, not 2 KiB of them.
    #[inline(never)]
    fn zero_ahead(&mut self, end: usize) {
        let len = self.records.len();
        let step = len.clamp(MIN_ZERO_AHEAD, ZERO_AHEAD);
        let ahead = (len + step).min(self.records.capacity());
        self.records.resize(end.max(ahead), 0);
    }

    /// Encodes the batch: header, records (compressed once), CRC-32C.
    ///
    /// The base offset is 0 and the leader epoch -1, as a producer sends them; the log
    /// stamps both at append without touching the CRC.
    ///
    /// # Errors
    /// [`DecodeError::CodecUnavailable`] or [`DecodeError::Codec`] from the codec.
    pub fn build(&self, codecs: &Codecs) -> Result<EncodedBatch, DecodeError> {
        let mut out = Vec::with_capacity(self.used);
        out.resize(BATCH_HEADER_SIZE, 0);
        codecs.compress(
            self.compression,
            &self.records[BATCH_HEADER_SIZE..self.used],
            &mut out,
        )?;
        Ok(self.finish(out))
    }

    /// Like [`BatchBuilder::build`], consuming the builder: an uncompressed batch is
    /// finished in the builder's own buffer, without copying the records.
    ///
    /// # Errors
    /// [`DecodeError::CodecUnavailable`] or [`DecodeError::Codec`] from the codec.
    pub fn into_encoded(mut self, codecs: &Codecs) -> Result<EncodedBatch, DecodeError> {
        if self.compression == Compression::None {
            let mut out = std::mem::take(&mut self.records);
            out.truncate(self.used);
            return Ok(self.finish(out));
        }
        self.build(codecs)
    }

    /// Writes the header into `out[..61]` (the records follow) and wraps it.
    fn finish(&self, mut out: Vec<u8>) -> EncodedBatch {
        let mut attributes = i16::from(self.compression.id());
        if self.transactional {
            attributes |= ATTR_TRANSACTIONAL;
        }
        if self.control {
            attributes |= ATTR_CONTROL;
        }
        let header = HeaderFields {
            attributes,
            last_offset_delta: (self.count - 1).max(0),
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
            producer: self.producer,
            records_count: self.count,
        };
        header.write(&mut out);
        EncodedBatch {
            bytes: out,
            max_timestamp_delta: self.max_timestamp_delta,
        }
    }

    /// The builder's buffer, for reuse.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.records
    }

    /// Empties the builder for reuse, keeping its buffer's capacity and settings.
    pub fn clear(&mut self) {
        self.records.truncate(BATCH_HEADER_SIZE);
        self.used = BATCH_HEADER_SIZE;
        self.count = 0;
        self.base_timestamp = NO_TIMESTAMP;
        self.max_timestamp = NO_TIMESTAMP;
        self.max_timestamp_delta = 0;
    }
}

/// The fields of a header that a writer chooses; the rest are stamped by the log.
struct HeaderFields {
    attributes: i16,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer: ProducerInfo,
    records_count: i32,
}

impl HeaderFields {
    /// Writes the 61-byte header into `out[..61]` and the CRC over `out[21..]`.
    fn write(&self, out: &mut [u8]) {
        let length = (out.len() - LOG_OVERHEAD) as i32;
        out[BASE_OFFSET..BATCH_LENGTH].copy_from_slice(&0i64.to_be_bytes());
        out[BATCH_LENGTH..PARTITION_LEADER_EPOCH].copy_from_slice(&length.to_be_bytes());
        out[PARTITION_LEADER_EPOCH..MAGIC].copy_from_slice(&(-1i32).to_be_bytes());
        out[MAGIC] = MAGIC_V2 as u8;
        out[ATTRIBUTES..LAST_OFFSET_DELTA].copy_from_slice(&self.attributes.to_be_bytes());
        out[LAST_OFFSET_DELTA..BASE_TIMESTAMP]
            .copy_from_slice(&self.last_offset_delta.to_be_bytes());
        out[BASE_TIMESTAMP..MAX_TIMESTAMP].copy_from_slice(&self.base_timestamp.to_be_bytes());
        out[MAX_TIMESTAMP..PRODUCER_ID].copy_from_slice(&self.max_timestamp.to_be_bytes());
        let p = &self.producer;
        out[PRODUCER_ID..PRODUCER_EPOCH].copy_from_slice(&p.producer_id.to_be_bytes());
        out[PRODUCER_EPOCH..BASE_SEQUENCE].copy_from_slice(&p.producer_epoch.to_be_bytes());
        out[BASE_SEQUENCE..RECORDS_COUNT].copy_from_slice(&p.base_sequence.to_be_bytes());
        out[RECORDS_COUNT..RECORDS].copy_from_slice(&self.records_count.to_be_bytes());
        let crc = batch_crc(out);
        out[CRC..ATTRIBUTES].copy_from_slice(&crc.to_be_bytes());
    }
}

/// A batch encoded and ready for [`Log::append`](crate::Log::append).
///
/// Made by [`BatchBuilder::build`] or by [`EncodedBatch::from_raw`], which checks a batch
/// that came from elsewhere; either way the header is known to match the records.
#[derive(Debug, Clone)]
pub struct EncodedBatch {
    bytes: Vec<u8>,
    /// Offset delta of the record holding `maxTimestamp` (Kafka's shallow offset uses the
    /// last offset instead; kept for callers that want the exact record).
    max_timestamp_delta: i32,
}

impl EncodedBatch {
    /// Checks a batch from elsewhere (another client, a copied segment) and prepares it
    /// for append: size, magic, CRC, codec, a positive record count equal to
    /// `lastOffsetDelta + 1`, no control flag, and every record decodable. `maxTimestamp`
    /// is recomputed from the records as Kafka's broker does, fixing the CRC if it changes.
    ///
    /// # Errors
    /// The first [`DecodeError`] found.
    pub fn from_raw(bytes: Bytes, codecs: &Codecs) -> Result<EncodedBatch, DecodeError> {
        let batch = RecordBatch::from_bytes(bytes)?;
        batch.verify_crc()?;
        if batch.is_control() {
            return Err(DecodeError::Inconsistent(
                "control batches are written by the log, not appended",
            ));
        }
        let count = batch.records_count();
        if count <= 0 || count - 1 != batch.last_offset_delta() {
            return Err(DecodeError::Inconsistent(
                "recordsCount must be positive and equal lastOffsetDelta + 1",
            ));
        }
        let (mut max_ts, mut max_delta) = (NO_TIMESTAMP, 0);
        for (i, r) in batch.records_unverified(codecs)?.enumerate() {
            let r = r?;
            if r.offset - batch.base_offset() != i as i64 {
                return Err(DecodeError::Inconsistent("offset deltas must run 0..count"));
            }
            if i == 0 || r.timestamp > max_ts {
                max_ts = r.timestamp;
                max_delta = i as i32;
            }
        }
        let mut encoded = EncodedBatch {
            bytes: batch.as_bytes().to_vec(),
            max_timestamp_delta: max_delta,
        };
        if batch.timestamp_type() == TimestampType::CreateTime && batch.max_timestamp() != max_ts {
            encoded.set_max_timestamp(max_ts, false);
        }
        Ok(encoded)
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The buffer holding the bytes, for reuse.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.bytes
    }

    /// Total size in bytes, including the 12-byte log overhead.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// Number of records.
    pub fn records_count(&self) -> i32 {
        get_i32(&self.bytes, RECORDS_COUNT)
    }

    /// `lastOffsetDelta`.
    pub fn last_offset_delta(&self) -> i32 {
        get_i32(&self.bytes, LAST_OFFSET_DELTA)
    }

    /// `maxTimestamp` as it stands.
    pub fn max_timestamp(&self) -> i64 {
        get_i64(&self.bytes, MAX_TIMESTAMP)
    }

    /// Offset delta of the record holding the max timestamp.
    pub fn max_timestamp_delta(&self) -> i32 {
        self.max_timestamp_delta
    }

    /// `producerId`, `producerEpoch`, `baseSequence` and `attributes` as they stand.
    pub(crate) fn producer_header(&self) -> (i64, i16, i32, i16) {
        let b = &self.bytes;
        let pid = get_i64(b, PRODUCER_ID);
        (
            pid,
            get_i16(b, PRODUCER_EPOCH),
            get_i32(b, BASE_SEQUENCE),
            get_i16(b, ATTRIBUTES),
        )
    }

    /// Stamps the base offset and leader epoch; neither is covered by the CRC.
    pub(crate) fn stamp(&mut self, base_offset: i64, leader_epoch: i32) {
        self.bytes[BASE_OFFSET..BATCH_LENGTH].copy_from_slice(&base_offset.to_be_bytes());
        self.bytes[PARTITION_LEADER_EPOCH..MAGIC].copy_from_slice(&leader_epoch.to_be_bytes());
    }

    /// Rewrites `maxTimestamp` (and the LogAppendTime bit when `log_append_time`), then
    /// the CRC, as Kafka's `setMaxTimestamp` does.
    pub(crate) fn set_max_timestamp(&mut self, timestamp: i64, log_append_time: bool) {
        let b = &mut self.bytes;
        if log_append_time {
            let attributes = get_i16(b, ATTRIBUTES) | ATTR_LOG_APPEND_TIME;
            b[ATTRIBUTES..LAST_OFFSET_DELTA].copy_from_slice(&attributes.to_be_bytes());
        }
        b[MAX_TIMESTAMP..PRODUCER_ID].copy_from_slice(&timestamp.to_be_bytes());
        let crc = batch_crc(b);
        b[CRC..ATTRIBUTES].copy_from_slice(&crc.to_be_bytes());
    }

    /// The batch as a [`RecordBatch`], for reading it back.
    pub fn into_batch(self) -> RecordBatch {
        RecordBatch::new_unchecked(Bytes::from(self.bytes))
    }
}

#[inline]
fn bytes_len(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varint_len(b.len() as i32) + b.len(),
    }
}

/// Most bytes a builder zero-fills ahead of its records at a time.
const ZERO_AHEAD: usize = 2048;
/// The first step of zero-filling ahead.
const MIN_ZERO_AHEAD: usize = 256;

/// A record's room in a builder's zero-filled buffer, written front to back.
struct Slot<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Slot<'_> {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }

    /// An unsigned varint; deltas and short lengths take one or two bytes, so those
    /// cases go first.
    #[inline(always)]
    fn unsigned(&mut self, mut u: u64) {
        if u < 0x80 {
            self.buf[self.at] = u as u8;
            self.at += 1;
            return;
        }
        if u < 0x4000 {
            self.buf[self.at] = (u as u8) | 0x80;
            self.buf[self.at + 1] = (u >> 7) as u8;
            self.at += 2;
            return;
        }
        while u >= 0x80 {
            self.buf[self.at] = (u as u8) | 0x80;
            u >>= 7;
            self.at += 1;
        }
        self.buf[self.at] = u as u8;
        self.at += 1;
    }

    fn bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.unsigned(zigzag32(-1)),
            Some(b) => {
                self.unsigned(zigzag32(b.len() as i32));
                self.put(b);
            }
        }
    }
}

/// A record's fixed fields, zigzagged, as [`BatchBuilder::head`] sized them: its
/// length, the timestamp and offset deltas, the key's and the value's lengths. `size` is
/// the whole record's, length included.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordHead {
    length: u64,
    ts_delta: u64,
    offset_delta: u64,
    key_len: u64,
    value_len: u64,
    /// Bytes the record takes in the batch.
    pub(crate) size: usize,
}

#[inline]
fn len_or_null(b: Option<&[u8]>) -> i32 {
    b.map_or(-1, |b| b.len() as i32)
}

#[inline]
fn zigzag32(v: i32) -> u64 {
    ((v << 1) ^ (v >> 31)) as u32 as u64
}

#[inline]
fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[cfg(test)]
mod tests {
    use super::super::varint::{put_varint, put_varlong};
    use super::*;

    fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
        match b {
            None => put_varint(out, -1),
            Some(b) => {
                put_varint(out, b.len() as i32);
                out.extend_from_slice(b);
            }
        }
    }

    /// The record as the format spells it, field by field.
    fn reference(
        offset_delta: i32,
        ts_delta: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Vec<u8> {
        let mut body = vec![0];
        put_varlong(&mut body, ts_delta);
        put_varint(&mut body, offset_delta);
        put_bytes(&mut body, key);
        put_bytes(&mut body, value);
        put_varint(&mut body, headers.len() as i32);
        for h in headers {
            put_bytes(&mut body, Some(h.key.as_bytes()));
            put_bytes(&mut body, h.value.as_deref());
        }
        let mut out = Vec::new();
        put_varint(&mut out, body.len() as i32);
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn records_are_encoded_field_by_field() {
        let long_key = vec![7u8; 200];
        let big_value = vec![9u8; 20_000];
        let headers = [Header {
            key: "h".into(),
            value: Some(Bytes::from_static(b"v")),
        }];
        let base = 1_700_000_000_000;
        type Case<'a> = (i64, Option<&'a [u8]>, Option<&'a [u8]>, &'a [Header]);
        let cases: [Case<'_>; 7] = [
            (base, None, Some(b"first"), &[]),
            (base + 5, Some(b"k"), Some(b"v"), &[]),
            (base - 1_000_000, Some(&long_key), None, &[]),
            (base + i64::from(i32::MAX) * 4, None, None, &headers),
            (i64::MIN, Some(b""), Some(&big_value), &[]),
            (base, Some(&long_key), Some(&big_value), &headers),
            (base, None, Some(b""), &[]),
        ];
        let mut b = BatchBuilder::new(Compression::None);
        let mut expected = vec![0u8; BATCH_HEADER_SIZE];
        for (i, (ts, key, value, headers)) in cases.into_iter().enumerate() {
            let record = reference(i as i32, ts.wrapping_sub(base), key, value, headers);
            assert_eq!(
                b.record_size(ts, key, value, headers),
                record.len(),
                "case {i}"
            );
            b.push(ts, key, value, headers);
            expected.extend_from_slice(&record);
            assert_eq!(b.records[..b.used], expected, "case {i}");
        }
    }
}
