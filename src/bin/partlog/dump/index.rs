//! Dumping `.index` and `.timeindex` files, and checking them against their `.log`.
//!
//! An offset-index entry is `int32 relativeOffset, int32 position`; a time-index entry
//! `int64 timestamp, int32 relativeOffset`. The index of an active segment is
//! preallocated and zero-filled past its entries, so, as Kafka's tool does, the dump
//! stops at the first entry that points back at the base offset after entry 0 (and, for
//! the time index, at an all-zero entry 0: a segment that has no entry yet).
//!
//! `--verify` checks each entry the way `kafka-dump-log` does: the batch at an offset
//! entry's position must end at the entry's offset; the batch ending at a time entry's
//! offset must have the entry's timestamp as its `maxTimestamp`; offsets and timestamps
//! must increase.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::log::{BatchReader, Next};
use super::{Dump, base_offset, io_error};
use crate::Stop;

/// Bytes per offset-index entry.
const OFFSET_ENTRY: usize = 8;
/// Bytes per time-index entry.
const TIME_ENTRY: usize = 12;

/// The batches of a segment's `.log`, as the index checks need them.
#[derive(Default)]
struct LogBatches {
    /// Start position → last offset.
    by_position: HashMap<u64, i64>,
    /// Last offset → `maxTimestamp`.
    by_last_offset: HashMap<i64, i64>,
}

/// Reads the entries of an index file, after checking its name and length.
fn read_index(dump: &mut Dump, path: &Path, entry: usize) -> Result<Option<(i64, Vec<u8>)>, Stop> {
    let Some(base) = base_offset(path) else {
        dump.problem(path, 0, "the file name is not a segment base offset");
        return Ok(None);
    };
    let mut bytes = fs::read(path).map_err(|e| io_error(path, e))?;
    let whole = bytes.len() - bytes.len() % entry;
    if whole != bytes.len() {
        let what = format!("{} trailing bytes, not a whole entry", bytes.len() - whole);
        dump.problem(path, whole as u64, what);
    }
    bytes.truncate(whole);
    Ok(Some((base, bytes)))
}

/// The `.log` beside an index file, scanned for `--verify` (`None` without it, or
/// when the log cannot be read, which is then reported).
fn sibling_log(dump: &mut Dump, path: &Path) -> Result<Option<LogBatches>, Stop> {
    if !dump.verify {
        return Ok(None);
    }
    let log: PathBuf = path.with_extension("log");
    let mut reader = match BatchReader::open(&log) {
        Ok(r) => r,
        Err(e) => {
            let what = format!("cannot check the index against {}: {e}", log.display());
            dump.problem(path, 0, what);
            return Ok(None);
        }
    };
    let mut batches = LogBatches::default();
    loop {
        let position = reader.position;
        match reader.next_batch().map_err(|e| io_error(&log, e))? {
            Next::Batch(b) => {
                batches.by_position.insert(position, b.last_offset());
                batches
                    .by_last_offset
                    .insert(b.last_offset(), b.max_timestamp());
            }
            Next::End | Next::Invalid(_) => return Ok(Some(batches)),
        }
    }
}

/// Dumps an offset index: `offset: O position: P` per entry.
pub(super) fn dump_offset_index(dump: &mut Dump, path: &Path) -> Result<(), Stop> {
    let Some((base, bytes)) = read_index(dump, path, OFFSET_ENTRY)? else {
        return Ok(());
    };
    if bytes.is_empty() {
        return dump.line(format_args!("{} is empty.", path.display()));
    }
    let log = sibling_log(dump, path)?;
    let mut previous: Option<(i64, u32)> = None;
    for (i, e) in bytes.chunks_exact(OFFSET_ENTRY).enumerate() {
        let relative = u32::from_be_bytes(e[0..4].try_into().expect("4 bytes"));
        let position = u32::from_be_bytes(e[4..8].try_into().expect("4 bytes"));
        let offset = base + i64::from(relative);
        if offset == base && i > 0 {
            break;
        }
        dump.entries += 1;
        dump.line(format_args!("offset: {offset} position: {position}"))?;
        let at = (i * OFFSET_ENTRY) as u64;
        if let Some(what) = check_offset_entry(log.as_ref(), previous, offset, position) {
            dump.problem(path, at, format!("entry {i}: {what}"));
        }
        previous = Some((offset, position));
    }
    Ok(())
}

/// What is wrong with an offset-index entry, if anything.
fn check_offset_entry(
    log: Option<&LogBatches>,
    previous: Option<(i64, u32)>,
    offset: i64,
    position: u32,
) -> Option<String> {
    let log = log?;
    if let Some((o, p)) = previous.filter(|&(o, p)| offset <= o || position <= p) {
        return Some(format!(
            "(offset {offset}, position {position}) does not increase after ({o}, {p})"
        ));
    }
    match log.by_position.get(&u64::from(position)) {
        None => Some(format!(
            "offset {offset} points at position {position}, where no batch starts"
        )),
        Some(&last) if last != offset => Some(format!(
            "index offset {offset}, but the batch at position {position} ends at log offset {last}"
        )),
        Some(_) => None,
    }
}

/// Dumps a time index: `timestamp: T offset: O` per entry.
pub(super) fn dump_time_index(dump: &mut Dump, path: &Path) -> Result<(), Stop> {
    let Some((base, bytes)) = read_index(dump, path, TIME_ENTRY)? else {
        return Ok(());
    };
    let log = sibling_log(dump, path)?;
    let mut previous: Option<i64> = None;
    for (i, e) in bytes.chunks_exact(TIME_ENTRY).enumerate() {
        let timestamp = i64::from_be_bytes(e[0..8].try_into().expect("8 bytes"));
        let relative = u32::from_be_bytes(e[8..12].try_into().expect("4 bytes"));
        let offset = base + i64::from(relative);
        if (offset == base && i > 0) || e.iter().all(|&b| b == 0) {
            break;
        }
        dump.entries += 1;
        dump.line(format_args!("timestamp: {timestamp} offset: {offset}"))?;
        let at = (i * TIME_ENTRY) as u64;
        if let Some(what) = check_time_entry(log.as_ref(), previous, timestamp, offset) {
            dump.problem(path, at, format!("entry {i}: {what}"));
        }
        previous = Some(timestamp);
    }
    Ok(())
}

/// What is wrong with a time-index entry, if anything.
fn check_time_entry(
    log: Option<&LogBatches>,
    previous: Option<i64>,
    timestamp: i64,
    offset: i64,
) -> Option<String> {
    let log = log?;
    if let Some(p) = previous.filter(|&p| timestamp <= p) {
        return Some(format!("timestamp {timestamp} does not increase after {p}"));
    }
    match log.by_last_offset.get(&offset) {
        None => Some(format!(
            "offset {offset} is not the last offset of any batch"
        )),
        Some(&max) if max != timestamp => Some(format!(
            "index timestamp {timestamp}, but the batch ending at offset {offset} has maxTimestamp {max}"
        )),
        Some(_) => None,
    }
}
