//! Re-encoding a stored batch with fewer records, as Kafka's cleaner does
//! (`MemoryRecords.filterTo`): the batch keeps its base offset, `lastOffsetDelta`,
//! producer fields, leader epoch, codec and flags, so offsets stay with gaps.

use super::batch::{Record, RecordBatch, TimestampType};
use super::layout::*;
use super::varint::{put_varint, put_varlong, varint_len, varlong_len};
use super::{Codecs, Compression};
use crate::error::DecodeError;

/// Encodes `batch` again holding only `kept` (records of `batch`, in order).
///
/// With `horizon` set, attribute bit 6 is set and `baseTimestamp` becomes the delete
/// horizon, every timestamp delta re-encoded against it (reference §5.2); a batch that
/// already has a horizon keeps it. An empty `kept` gives Kafka's empty batch: the header
/// alone, count 0, uncompressed, with `maxTimestamp` as both timestamps.
///
/// # Errors
/// A codec error when recompressing.
pub(crate) fn rebuild(
    batch: &RecordBatch,
    kept: &[Record],
    horizon: Option<i64>,
    codecs: &Codecs,
) -> Result<Vec<u8>, DecodeError> {
    let mut attributes = batch.attributes();
    if kept.is_empty() {
        attributes &= !(ATTR_CODEC_MASK | ATTR_DELETE_HORIZON);
        let ts = batch.max_timestamp();
        let mut out = vec![0u8; BATCH_HEADER_SIZE];
        write_header(&mut out, batch, attributes, ts, ts, 0);
        return Ok(out);
    }
    let base_ts = if let Some(h) = horizon.filter(|_| !batch.has_delete_horizon()) {
        attributes |= ATTR_DELETE_HORIZON;
        h
    } else {
        batch.base_timestamp()
    };
    let mut payload = Vec::with_capacity(batch.size());
    for r in kept {
        put_record(&mut payload, r, batch.base_offset(), base_ts);
    }
    let max_ts = match batch.timestamp_type() {
        TimestampType::LogAppendTime => batch.max_timestamp(),
        TimestampType::CreateTime => kept.iter().map(|r| r.timestamp).max().unwrap_or(-1),
    };
    let mut out = Vec::with_capacity(BATCH_HEADER_SIZE + payload.len());
    out.resize(BATCH_HEADER_SIZE, 0);
    match batch.compression()? {
        Compression::None => out.extend_from_slice(&payload),
        c => codecs.compress(c, &payload, &mut out)?,
    }
    write_header(
        &mut out,
        batch,
        attributes,
        base_ts,
        max_ts,
        kept.len() as i32,
    );
    Ok(out)
}

/// One record in the v2 layout: length, attributes, deltas, key, value, headers.
fn put_record(out: &mut Vec<u8>, r: &Record, base_offset: i64, base_ts: i64) {
    let ts_delta = r.timestamp.wrapping_sub(base_ts);
    let offset_delta = (r.offset - base_offset) as i32;
    let field = |b: Option<&[u8]>| b.map_or(1, |b| varint_len(b.len() as i32) + b.len());
    let mut body = 1 + varlong_len(ts_delta) + varint_len(offset_delta);
    body += field(r.key.as_deref()) + field(r.value.as_deref());
    body += varint_len(r.headers.len() as i32);
    for h in &r.headers {
        body += field(Some(h.key.as_bytes())) + field(h.value.as_deref());
    }
    put_varint(out, body as i32);
    out.push(0);
    put_varlong(out, ts_delta);
    put_varint(out, offset_delta);
    put_field(out, r.key.as_deref());
    put_field(out, r.value.as_deref());
    put_varint(out, r.headers.len() as i32);
    for h in &r.headers {
        put_field(out, Some(h.key.as_bytes()));
        put_field(out, h.value.as_deref());
    }
}

fn put_field(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

/// Writes the 61-byte header into `out[..61]` from `batch`'s fields and the given ones,
/// then the CRC over `out[21..]`.
fn write_header(
    out: &mut [u8],
    batch: &RecordBatch,
    attributes: i16,
    base_ts: i64,
    max_ts: i64,
    count: i32,
) {
    let length = (out.len() - LOG_OVERHEAD) as i32;
    out[BASE_OFFSET..BATCH_LENGTH].copy_from_slice(&batch.base_offset().to_be_bytes());
    out[BATCH_LENGTH..PARTITION_LEADER_EPOCH].copy_from_slice(&length.to_be_bytes());
    out[PARTITION_LEADER_EPOCH..MAGIC]
        .copy_from_slice(&batch.partition_leader_epoch().to_be_bytes());
    out[MAGIC] = MAGIC_V2 as u8;
    out[ATTRIBUTES..LAST_OFFSET_DELTA].copy_from_slice(&attributes.to_be_bytes());
    out[LAST_OFFSET_DELTA..BASE_TIMESTAMP]
        .copy_from_slice(&batch.last_offset_delta().to_be_bytes());
    out[BASE_TIMESTAMP..MAX_TIMESTAMP].copy_from_slice(&base_ts.to_be_bytes());
    out[MAX_TIMESTAMP..PRODUCER_ID].copy_from_slice(&max_ts.to_be_bytes());
    out[PRODUCER_ID..PRODUCER_EPOCH].copy_from_slice(&batch.producer_id().to_be_bytes());
    out[PRODUCER_EPOCH..BASE_SEQUENCE].copy_from_slice(&batch.producer_epoch().to_be_bytes());
    out[BASE_SEQUENCE..RECORDS_COUNT].copy_from_slice(&batch.base_sequence().to_be_bytes());
    out[RECORDS_COUNT..RECORDS].copy_from_slice(&count.to_be_bytes());
    let crc = batch_crc(out);
    out[CRC..ATTRIBUTES].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::record::BatchBuilder;

    fn stored(compression: Compression) -> RecordBatch {
        let mut b = BatchBuilder::new(compression);
        b.push(1000, Some(b"a"), Some(b"1"), &[]);
        b.push(1005, Some(b"b"), None, &[]);
        b.push(1010, Some(b"c"), Some(b"3"), &[]);
        let mut e = b.build(&Codecs::default()).unwrap();
        e.stamp(40, 7);
        e.into_batch()
    }

    #[test]
    fn keeps_offsets_and_last_offset_delta() {
        for c in [Compression::None, Compression::Gzip, Compression::Lz4] {
            let batch = stored(c);
            let codecs = Codecs::default();
            let all: Vec<Record> = batch
                .records(&codecs)
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            let kept = vec![all[1].clone()];
            let out = rebuild(&batch, &kept, Some(9000), &codecs).unwrap();
            let back = RecordBatch::from_bytes(Bytes::from(out)).unwrap();
            assert_eq!((back.base_offset(), back.last_offset()), (40, 42));
            assert_eq!(back.records_count(), 1);
            assert!(back.has_delete_horizon());
            assert_eq!(back.base_timestamp(), 9000);
            assert_eq!(back.partition_leader_epoch(), 7);
            assert_eq!(back.compression().unwrap(), c);
            let recs: Vec<Record> = back.records(&codecs).unwrap().map(|r| r.unwrap()).collect();
            assert_eq!(recs, kept);
        }
    }

    #[test]
    fn empty_batch_is_a_bare_header() {
        let batch = stored(Compression::Gzip);
        let out = rebuild(&batch, &[], None, &Codecs::default()).unwrap();
        assert_eq!(out.len(), BATCH_HEADER_SIZE);
        let back = RecordBatch::from_bytes(Bytes::from(out)).unwrap();
        assert_eq!((back.records_count(), back.next_offset()), (0, 43));
        assert_eq!(back.records(&Codecs::default()).unwrap().count(), 0);
    }
}
