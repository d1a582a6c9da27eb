//! Walking the batches of a `.log` file's published bytes.

use bytes::Bytes;

use crate::error::DecodeError;
use crate::record::layout::{BATCH_LENGTH, LOG_OVERHEAD, MIN_BATCH_LENGTH, get_i32};
use crate::record::{RecordBatch, batch_size};

/// What the scanner found at its position.
#[derive(Debug)]
pub(crate) enum Scanned {
    /// A whole batch whose structure (length, magic) is sound; CRC not yet checked.
    Batch(u64, RecordBatch),
    /// The bytes from this position to the end do not hold a whole batch.
    Torn(u64),
    /// The batch at this position is malformed.
    Corrupt(u64, DecodeError),
    /// A legacy (magic 0 or 1) message set with a valid CRC-32: real data from an old
    /// Kafka, which partlog does not read and must not truncate as if it were corrupt.
    Legacy(u64, i8),
    /// Every byte up to the end was a whole batch.
    End,
}

/// Walks the batches in `data`, which starts at file position `start`. Batches are
/// slices of `data`: nothing is copied.
pub(crate) struct Scanner {
    data: Bytes,
    start: u64,
    at: usize,
}

impl Scanner {
    pub(crate) fn new(data: Bytes, start: u64) -> Scanner {
        Scanner { data, start, at: 0 }
    }

    /// The file position of the next batch.
    pub(crate) fn position(&self) -> u64 {
        self.start + self.at as u64
    }

    /// The next batch, or why there is none.
    pub(crate) fn next_batch(&mut self) -> Scanned {
        let rest = &self.data[self.at..];
        let pos = self.position();
        if rest.is_empty() {
            return Scanned::End;
        }
        if rest.len() < LOG_OVERHEAD {
            return Scanned::Torn(pos);
        }
        let length = get_i32(rest, BATCH_LENGTH);
        if length < MIN_BATCH_LENGTH {
            let err = DecodeError::BadLength {
                length,
                reason: "below Kafka's minimum of 14 (a zero-filled or overwritten tail)",
            };
            return Scanned::Corrupt(pos, err);
        }
        let size = LOG_OVERHEAD + length as usize;
        if rest.len() < size {
            return Scanned::Torn(pos);
        }
        match batch_size(&rest[..size]) {
            Ok(_) => {
                let batch = RecordBatch::new_unchecked(self.data.slice(self.at..self.at + size));
                self.at += size;
                Scanned::Batch(pos, batch)
            }
            Err(DecodeError::UnsupportedMagic { magic }) if is_valid_legacy(&rest[..size]) => {
                Scanned::Legacy(pos, magic)
            }
            Err(e) => Scanned::Corrupt(pos, e),
        }
    }
}

/// Whether `msg` is a magic 0/1 message whose CRC-32 (IEEE, over magic..end, stored at
/// bytes 12..16) checks out.
fn is_valid_legacy(msg: &[u8]) -> bool {
    const LEGACY_CRC: usize = LOG_OVERHEAD;
    const LEGACY_MAGIC: usize = LEGACY_CRC + 4;
    if msg.len() <= LEGACY_MAGIC || msg[LEGACY_MAGIC] > 1 {
        return false;
    }
    let stored = u32::from_be_bytes(msg[LEGACY_CRC..LEGACY_MAGIC].try_into().expect("4 bytes"));
    crc32fast::hash(&msg[LEGACY_MAGIC..]) == stored
}
