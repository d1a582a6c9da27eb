//! Walking the batches of a `.log` file in large reads.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use bytes::{Bytes, BytesMut};

use crate::error::{DecodeError, IoContext, Result};
use crate::record::layout::{BATCH_LENGTH, LOG_OVERHEAD, MIN_BATCH_LENGTH, get_i32};
use crate::record::{RecordBatch, batch_size};

/// Bytes read per refill when scanning a whole file.
pub(crate) const SCAN_CHUNK: usize = 4 << 20;

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

/// Reads batches from `pos` to `end` of one file.
pub(crate) struct Scanner<'a> {
    file: &'a File,
    path: &'a Path,
    pos: u64,
    end: u64,
    chunk: usize,
    buf: Bytes,
    buf_start: u64,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(file: &'a File, path: &'a Path, pos: u64, end: u64, chunk: usize) -> Self {
        Scanner {
            file,
            path,
            pos,
            end,
            chunk: chunk.max(LOG_OVERHEAD),
            buf: Bytes::new(),
            buf_start: pos,
        }
    }

    /// The position of the next batch.
    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    /// The next batch, or why there is none.
    pub(crate) fn next_batch(&mut self) -> Result<Scanned> {
        if self.pos >= self.end {
            return Ok(Scanned::End);
        }
        if self.end - self.pos < LOG_OVERHEAD as u64 {
            return Ok(Scanned::Torn(self.pos));
        }
        self.ensure(LOG_OVERHEAD)?;
        let at = (self.pos - self.buf_start) as usize;
        let length = get_i32(&self.buf[at..], BATCH_LENGTH);
        if length < MIN_BATCH_LENGTH {
            let err = DecodeError::BadLength {
                length,
                reason: "below Kafka's minimum of 14 (a zero-filled or overwritten tail)",
            };
            return Ok(Scanned::Corrupt(self.pos, err));
        }
        let size = LOG_OVERHEAD as u64 + length as u64;
        if self.end - self.pos < size {
            return Ok(Scanned::Torn(self.pos));
        }
        self.ensure(size as usize)?;
        let at = (self.pos - self.buf_start) as usize;
        match batch_size(&self.buf[at..at + size as usize]) {
            Ok(_) => {
                let batch = RecordBatch::new_unchecked(self.buf.slice(at..at + size as usize));
                let pos = self.pos;
                self.pos += size;
                Ok(Scanned::Batch(pos, batch))
            }
            Err(DecodeError::UnsupportedMagic { magic })
                if is_valid_legacy(&self.buf[at..at + size as usize]) =>
            {
                Ok(Scanned::Legacy(self.pos, magic))
            }
            Err(e) => Ok(Scanned::Corrupt(self.pos, e)),
        }
    }

    /// Makes the buffer hold `[pos, pos + need)`, reading at least one chunk.
    fn ensure(&mut self, need: usize) -> Result<()> {
        let at = self.pos.saturating_sub(self.buf_start) as usize;
        if self.pos >= self.buf_start && at + need <= self.buf.len() {
            return Ok(());
        }
        let want = need.max(self.chunk).min((self.end - self.pos) as usize);
        self.buf = read_exact_at(self.file, self.path, self.pos, want)?;
        self.buf_start = self.pos;
        Ok(())
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

/// Reads `len` bytes at `pos` into a new buffer.
pub(crate) fn read_exact_at(file: &File, path: &Path, pos: u64, len: usize) -> Result<Bytes> {
    let mut buf = BytesMut::zeroed(len);
    file.read_exact_at(&mut buf, pos).at(path)?;
    Ok(buf.freeze())
}
