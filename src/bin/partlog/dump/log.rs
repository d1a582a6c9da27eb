//! Dumping a `.log` segment: its batches and, on request, their records.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use bytes::Bytes;
use partlog::record::{ControlRecordType, EndTxnMarker, LOG_OVERHEAD, MAGIC_V2, batch_size};
use partlog::{Record, RecordBatch};

use super::{Dump, base_offset, io_error};
use crate::Stop;

/// Bytes a batch needs before its length and magic can be checked: the log overhead,
/// `partitionLeaderEpoch` (4) and `magic` (1).
const HEADER_UP_TO_MAGIC: usize = LOG_OVERHEAD + 4 + 1;

/// Reads a segment's batches in order, from its first byte.
pub(super) struct BatchReader {
    input: BufReader<File>,
    /// Byte position of the next batch.
    pub(super) position: u64,
    len: u64,
}

/// What [`BatchReader::next_batch`] found at its position.
pub(super) enum Next {
    /// A batch with a sane length and magic (its CRC is not checked yet).
    Batch(RecordBatch),
    /// The end of the file, exactly after the last batch.
    End,
    /// Bytes that are not a whole batch; the reason. Nothing after them is read.
    Invalid(String),
}

impl BatchReader {
    /// Opens `path` for reading.
    pub(super) fn open(path: &Path) -> io::Result<BatchReader> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(BatchReader {
            input: BufReader::with_capacity(1 << 20, file),
            position: 0,
            len,
        })
    }

    /// The batch at the current position, checked as Kafka's file reader checks it
    /// (length and magic) before its bytes are read, so a damaged length cannot make it
    /// read past the file.
    pub(super) fn next_batch(&mut self) -> io::Result<Next> {
        let left = self.len - self.position;
        if left == 0 {
            return Ok(Next::End);
        }
        if left < HEADER_UP_TO_MAGIC as u64 {
            return Ok(Next::Invalid(format!(
                "{left} bytes left, fewer than a batch header"
            )));
        }
        let mut head = [0u8; HEADER_UP_TO_MAGIC];
        self.input.read_exact(&mut head)?;
        if let Err(e) = batch_size(&head) {
            // With only the header in hand, "truncated" is the expected answer.
            if !matches!(e, partlog::DecodeError::Truncated { .. }) {
                return Ok(Next::Invalid(e.to_string()));
            }
        }
        let length = i32::from_be_bytes(head[8..12].try_into().expect("4 bytes"));
        let size = LOG_OVERHEAD as u64 + length as u64;
        if size > left {
            return Ok(Next::Invalid(format!(
                "a batch of {size} bytes, but only {left} bytes are left in the file"
            )));
        }
        let mut bytes = vec![0u8; size as usize];
        bytes[..HEADER_UP_TO_MAGIC].copy_from_slice(&head);
        self.input.read_exact(&mut bytes[HEADER_UP_TO_MAGIC..])?;
        self.position += size;
        Ok(match RecordBatch::from_bytes(Bytes::from(bytes)) {
            Ok(b) => Next::Batch(b),
            Err(e) => Next::Invalid(e.to_string()),
        })
    }
}

/// Dumps a `.log` file.
pub(super) fn dump_log(dump: &mut Dump, path: &Path) -> Result<(), Stop> {
    if let Some(base) = base_offset(path) {
        dump.line(format_args!("Log starting offset: {base}"))?;
    }
    let mut reader = BatchReader::open(path).map_err(|e| io_error(path, e))?;
    let mut next_offset: Option<i64> = None;
    loop {
        let position = reader.position;
        match reader.next_batch().map_err(|e| io_error(path, e))? {
            Next::End => return Ok(()),
            Next::Invalid(reason) => {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                dump.line(format_args!(
                    "Found {} invalid bytes at the end of {name}",
                    reader.len - position
                ))?;
                dump.problem(path, position, reason);
                return Ok(());
            }
            Next::Batch(batch) => {
                dump.batches += 1;
                dump.line(batch_line(&batch, position))?;
                if let Some(next) = next_offset.filter(|n| batch.base_offset() < *n) {
                    let what = format!(
                        "base offset {} is below the previous batch's next offset {next}",
                        batch.base_offset()
                    );
                    dump.problem(path, position, what);
                }
                next_offset = Some(batch.next_offset());
                dump_records(dump, path, position, &batch)?;
            }
        }
    }
}

/// Kafka's `lastSequence`/`sequence`: `base + delta`, wrapping past `i32::MAX` to 0.
fn sequence(base: i32, delta: i32) -> i32 {
    if base < 0 {
        base
    } else if base > i32::MAX - delta {
        delta - (i32::MAX - base) - 1
    } else {
        base + delta
    }
}

/// The batch line of `kafka-dump-log`.
fn batch_line(b: &RecordBatch, position: u64) -> String {
    let delete_horizon = if b.has_delete_horizon() {
        format!("OptionalLong[{}]", b.base_timestamp())
    } else {
        "OptionalLong.empty".to_string()
    };
    let codec = match b.compression() {
        Ok(c) => c.name().to_string(),
        Err(_) => format!("unknown({})", b.attributes() & 0x07),
    };
    format!(
        "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} \
         producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} \
         isControl: {} deleteHorizonMs: {delete_horizon} position: {position} {}: {} \
         size: {} magic: {MAGIC_V2} compresscodec: {codec} crc: {} isvalid: {}",
        b.base_offset(),
        b.last_offset(),
        b.records_count(),
        b.base_sequence(),
        sequence(b.base_sequence(), b.last_offset_delta()),
        b.producer_id(),
        b.producer_epoch(),
        b.partition_leader_epoch(),
        b.is_transactional(),
        b.is_control(),
        b.timestamp_type().name(),
        b.max_timestamp(),
        b.size(),
        b.crc(),
        b.verify_crc().is_ok(),
    )
}

/// Checks the CRC and, with `--print-records` or `--verify`, decodes (and prints) every
/// record of the batch.
fn dump_records(dump: &mut Dump, path: &Path, position: u64, b: &RecordBatch) -> Result<(), Stop> {
    if let Err(e) = b.verify_crc() {
        dump.problem(path, position, e);
        return Ok(());
    }
    if !dump.print_records && !dump.verify {
        return Ok(());
    }
    let records = match b.records(&dump.codecs) {
        Ok(records) => records,
        Err(e) => {
            dump.problem(path, position, e);
            return Ok(());
        }
    };
    for record in records {
        let line = record
            .map_err(|e| e.to_string())
            .and_then(|r| record_line(b, &r));
        match line {
            Ok(line) => {
                dump.records += 1;
                if dump.print_records {
                    dump.line(line)?;
                }
            }
            Err(e) => {
                dump.problem(path, position, e);
                break;
            }
        }
    }
    Ok(())
}

/// The record line of `kafka-dump-log --print-data-log`.
fn record_line(b: &RecordBatch, r: &Record) -> Result<String, String> {
    let size = |f: &Option<Bytes>| f.as_ref().map_or(-1, |v| v.len() as i64);
    let header_keys: Vec<&str> = r.headers.iter().map(|h| h.key.as_str()).collect();
    let delta = (r.offset - b.base_offset()) as i32;
    let mut line = format!(
        "| offset: {} {}: {} keySize: {} valueSize: {} sequence: {} headerKeys: [{}]",
        r.offset,
        b.timestamp_type().name(),
        r.timestamp,
        size(&r.key),
        size(&r.value),
        sequence(b.base_sequence(), delta),
        header_keys.join(",")
    );
    if b.is_control() {
        line.push_str(&control_fields(r)?);
        return Ok(line);
    }
    if let Some(key) = &r.key {
        line.push_str(&format!(" key: {}", String::from_utf8_lossy(key)));
    }
    if let Some(value) = &r.value {
        line.push_str(&format!(" payload: {}", String::from_utf8_lossy(value)));
    }
    Ok(line)
}

/// ` endTxnMarker: ABORT coordinatorEpoch: 42` for a transaction marker, else
/// ` controlType: NAME(id)`.
fn control_fields(r: &Record) -> Result<String, String> {
    let key = r.key.as_deref().ok_or("control record without a key")?;
    let kind = ControlRecordType::parse_key(key).map_err(|e| e.to_string())?;
    let name = match kind {
        ControlRecordType::Abort => "ABORT",
        ControlRecordType::Commit => "COMMIT",
        other => {
            let name = match other.id() {
                2 => "LEADER_CHANGE",
                3 => "SNAPSHOT_HEADER",
                4 => "SNAPSHOT_FOOTER",
                5 => "KRAFT_VERSION",
                6 => "KRAFT_VOTERS",
                _ => "UNKNOWN",
            };
            return Ok(format!(" controlType: {name}({})", other.id()));
        }
    };
    let value = r
        .value
        .as_deref()
        .ok_or("transaction marker without a value")?;
    let marker = EndTxnMarker::parse(value).map_err(|e| e.to_string())?;
    Ok(format!(
        " endTxnMarker: {name} coordinatorEpoch: {}",
        marker.coordinator_epoch
    ))
}
